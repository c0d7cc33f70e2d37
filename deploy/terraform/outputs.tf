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
  description = "The application's database secret (its own role, rotated by alternating users): what the tasks read."
  value       = module.database.app_secret_arn
}

output "database_master_secret_arn" {
  description = "RDS-managed master secret: the bootstrap task and the rotation function only."
  value       = module.database.master_user_secret_arn
}

output "task_secret_arns" {
  description = "The secrets the service's tasks read: the database login and the bootstrap admin API key."
  value       = module.service.task_secret_arns
}

output "bootstrap_admin_key_secret_arn" {
  description = "Secrets Manager secret holding revwallet's first admin API key (REVWALLET_BOOTSTRAP_ADMIN_KEY). Read it with: aws secretsmanager get-secret-value --secret-id <this> --query SecretString --output text"
  value       = aws_secretsmanager_secret.bootstrap_admin_key.arn
}

output "db_bootstrap_task_family" {
  description = "Run once after the first apply: aws ecs run-task --task-definition <this> (docs/aws.md)."
  value       = module.service.db_bootstrap_task_family
}
