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
  description = "ARN of the RDS-managed master secret (keys username, password): for the bootstrap step and the rotation function only, never the app."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "instance_id" {
  description = "Identifier of the DB instance."
  value       = aws_db_instance.this.identifier
}

output "app_secret_arn" {
  description = "ARN of the application's rotated secret (keys username, password, host, port, dbname): what the tasks read."
  value       = aws_secretsmanager_secret.app.arn
}

output "app_username" {
  description = "The application's login role (its alternate is <name>_clone)."
  value       = var.app_username
}

output "rotation_function_arn" {
  description = "ARN of the alternating-users rotation function."
  value       = aws_serverlessapplicationrepository_cloudformation_stack.rotation.outputs["RotationLambdaARN"]
}
