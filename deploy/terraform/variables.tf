# Protections default to the production-safe choice; environments/dev.tfvars relaxes them explicitly.
# The NAT default is the issue's: one gateway, one per AZ as an option (prod.tfvars takes it).

variable "environment" {
  description = "Environment name (dev, prod); part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}$", var.environment))
    error_message = "environment must be 2-14 lowercase letters, digits or dashes."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "availability_zones" {
  description = "The two availability zones to use (names, e.g. eu-west-1a); given so that plans need no AWS lookup."
  type        = list(string)
}

variable "allowed_account_ids" {
  description = "AWS account IDs this configuration may run against (null: any). Set it per environment."
  type        = list(string)
  default     = null
}

variable "offline_check" {
  description = "Plan without AWS: skip credential, account and region validation and use a placeholder account ID. For CI only."
  type        = bool
  default     = false
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC (/16)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per AZ (survives an AZ outage; prod) instead of the default single shared gateway (cheaper)."
  type        = bool
  default     = false
}

variable "image_digest" {
  description = "Digest (sha256:...) of the revwallet image in this environment's ECR repository. Tags are refused."
  type        = string

  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest must be an image digest of the form sha256:<64 lowercase hex digits>, not a tag."
  }
}

variable "certificate_arn" {
  description = "ACM certificate ARN for HTTPS on the load balancer (same region); null serves plain HTTP."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "Domain the certificate covers, pointed at the load balancer by its owner; only used for the url output."
  type        = string
  default     = null
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial database storage in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Upper bound of database storage autoscaling in GiB."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Multi-AZ database with a standby in the other AZ."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Deletion protection on the database."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups."
  type        = number
  default     = 14
}

variable "db_final_snapshot" {
  description = "Take a final snapshot when the database is destroyed."
  type        = bool
  default     = true
}

variable "task_cpu" {
  description = "Fargate CPU units per task."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate memory per task in MiB."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"
}

variable "desired_count" {
  description = "Tasks started with the service."
  type        = number
  default     = 2
}

variable "autoscaling_max" {
  description = "Upper bound of the task count."
  type        = number
  default     = 10
}

variable "rust_log" {
  description = "RUST_LOG of the service."
  type        = string
  default     = "info"
}

variable "waf_rate_limit" {
  description = "Requests per client address per 5 minutes before WAF blocks it."
  type        = number
  default     = 2000
}

variable "alb_deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of every log group and of the access logs, in days."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Allow destroy to delete the non-empty image repository and access-log bucket (dev)."
  type        = bool
  default     = false
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is really deleted after a destroy (7-30)."
  type        = number
  default     = 30
}

variable "bootstrap_admin_key_version" {
  description = "Version of the generated bootstrap admin API key in Secrets Manager; raise it by one to write a new random key (then redeploy and revoke the old key, docs/aws.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.bootstrap_admin_key_version >= 1 && floor(var.bootstrap_admin_key_version) == var.bootstrap_admin_key_version
    error_message = "bootstrap_admin_key_version must be a whole number, 1 or more."
  }
}
