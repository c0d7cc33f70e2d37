output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (load balancer only), one per AZ."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (tasks and database), one per AZ."
  value       = aws_subnet.private[*].id
}

output "nat_public_ips" {
  description = "Addresses the tasks' outbound traffic leaves from (for allow-lists elsewhere)."
  value       = aws_eip.nat[*].public_ip
}

output "alb_security_group_id" {
  description = "Security group of the load balancer."
  value       = aws_security_group.alb.id
}

output "app_security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.app.id
}

output "db_security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.db.id
}
