variable "name" {
  description = "Identifier of the DB instance and prefix of related resources, e.g. revwallet-dev."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two AZs) the database may live in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "security_group_id" {
  description = "Security group of the database (ingress from the tasks only), created by the network module."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, the master-password secret, Performance Insights and log groups."
  type        = string
}

variable "database_name" {
  description = "Database created at launch; the app's DB_NAME."
  type        = string
  default     = "revwallet"
}

variable "master_username" {
  description = "Master user name; its password is generated and rotated by RDS in Secrets Manager."
  type        = string
  default     = "revwallet"
}

variable "port" {
  description = "PostgreSQL port."
  type        = number
  default     = 5432
}

variable "instance_class" {
  description = "Instance class, e.g. db.t4g.micro for dev."
  type        = string
}

variable "allocated_storage" {
  description = "Initial gp3 storage in GiB (20 is the minimum)."
  type        = number
  default     = 20
}

variable "max_allocated_storage" {
  description = "Ceiling for storage autoscaling in GiB, so a full disk grows instead of stopping writes."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "Standby in the second AZ with automatic failover (doubles the instance price)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window), 1-35."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35 (0 would turn backups off)."
  }
}

variable "final_snapshot" {
  description = "Take a final snapshot when the instance is destroyed."
  type        = bool
  default     = true
}

variable "performance_insights_enabled" {
  description = "Performance Insights (free tier: 7 days) for query-level load analysis."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the PostgreSQL log groups."
  type        = number
  default     = 365
}

variable "app_username" {
  description = "Login role of the application (its alternate is <name>_clone); created by the bootstrap step, never the master user."
  type        = string
  default     = "revwallet_app"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,56}$", var.app_username)) && var.app_username != var.master_username
    error_message = "app_username must be a lower-case PostgreSQL identifier of at most 57 characters (room for _clone), not the master user."
  }
}

variable "app_password_rotation_days" {
  description = "Days between rotations of the application's password (alternating users)."
  type        = number
  default     = 30

  validation {
    condition     = var.app_password_rotation_days >= 1 && var.app_password_rotation_days <= 365
    error_message = "app_password_rotation_days must be between 1 and 365."
  }
}

variable "rotation_security_group_id" {
  description = "Security group of the rotation function: needs the database port and HTTPS to Secrets Manager (the tasks' group)."
  type        = string
}

variable "rotation_function_version" {
  description = "Version of AWS's SecretsManagerRDSPostgreSQLRotationMultiUser application."
  type        = string
  default     = "1.1.671"
}
