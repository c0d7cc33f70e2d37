output "address" {
  description = "Host name of the database (the app's DB_HOST)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database (the app's DB_PORT)."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of the application database (the app's DB_NAME)."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret holding the keys username and password."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "instance_id" {
  description = "Identifier of the DB instance."
  value       = aws_db_instance.this.identifier
}
