output "url" {
  description = "Public URL of revwallet."
  value       = module.service.url
}

output "repository_url" {
  description = "ECR repository to push the image to."
  value       = module.service.repository_url
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.service.cluster_name
}

output "service_name" {
  description = "ECS service name."
  value       = module.service.service_name
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer, for the domain's CNAME/alias record."
  value       = module.service.load_balancer_dns_name
}

output "log_group_name" {
  description = "CloudWatch log group of the service."
  value       = module.service.log_group_name
}

output "database_address" {
  description = "Private host name of the database."
  value       = module.database.address
}

output "database_secret_arn" {
  description = "Secrets Manager secret (RDS-managed) with the database user name and password."
  value       = module.database.master_user_secret_arn
}
