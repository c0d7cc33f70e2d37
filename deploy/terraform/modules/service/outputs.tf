output "url" {
  description = "Public URL of the service (the load balancer's DNS name; point a domain at it for HTTPS)."
  value       = local.https ? "https://${coalesce(var.domain_name, aws_lb.this.dns_name)}" : "http://${aws_lb.this.dns_name}"
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer (target of a CNAME or alias record)."
  value       = aws_lb.this.dns_name
}

output "repository_url" {
  description = "ECR repository to push images to."
  value       = aws_ecr_repository.this.repository_url
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.this.name
}

output "log_group_name" {
  description = "CloudWatch log group of the service's stdout (JSON lines)."
  value       = aws_cloudwatch_log_group.service.name
}

output "task_definition_arn" {
  description = "Task definition revision the service runs."
  value       = aws_ecs_task_definition.this.arn
}

output "task_secret_arns" {
  description = "The secrets the service's container reads (by ARN, without the JSON key): the app's own database secret and the bootstrap admin API key."
  # valueFrom is either ARN:json-key:: (a key of a JSON secret) or the ARN itself (the whole value).
  value = distinct([for s in local.container_secrets : try(regex("^(.*):[^:]*::$", s.valueFrom)[0], s.valueFrom)])
}

output "db_bootstrap_task_family" {
  description = "Task definition family of the one-off database bootstrap (run it once after the first apply)."
  value       = aws_ecs_task_definition.db_bootstrap.family
}

output "redeploy_state_machine_arn" {
  description = "Step Functions state machine that redeploys the service when the database secret rotates."
  value       = aws_sfn_state_machine.redeploy.arn
}
