variable "name" {
  description = "Prefix for every resource name, e.g. revwallet-dev (at most 24 characters: load balancer names are capped at 32)."
  type        = string

  validation {
    condition     = length(var.name) <= 24
    error_message = "name must be at most 24 characters."
  }
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets the tasks run in (no public IPs)."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer (from the network module)."
  type        = string
}

variable "app_security_group_id" {
  description = "Security group of the tasks (from the network module)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the image repository and the log groups; also the key of the database secret."
  type        = string
}

variable "image_digest" {
  description = "Digest of the image to run (sha256:<64 hex>). Tags are refused: a digest names exactly one build, so a plan says precisely what will run."
  type        = string

  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest must be an image digest of the form sha256:<64 lowercase hex digits>, not a tag."
  }
}

variable "container_port" {
  description = "Port the container listens on (REVWALLET_LISTEN)."
  type        = number
  default     = 8080
}

variable "container_user" {
  description = "uid:gid the container runs as; the image's non-root user."
  type        = string
  default     = "10001:10001"

  validation {
    condition     = can(regex("^[1-9][0-9]*:[0-9]+$", var.container_user))
    error_message = "container_user must be a numeric non-root uid:gid."
  }
}

variable "health_check_path" {
  description = "Path the load balancer probes; /readyz answers 200 only while the database is reachable."
  type        = string
  default     = "/readyz"
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64 (Graviton, about 20% cheaper)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "task_cpu" {
  description = "Fargate CPU units per task (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "task_memory" {
  description = "Fargate memory per task in MiB (must fit task_cpu)."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Tasks at creation; afterwards autoscaling owns the count within min/max."
  type        = number
  default     = 2
}

variable "autoscaling_min" {
  description = "Fewest tasks autoscaling may leave running (two keeps one per AZ)."
  type        = number
  default     = 2
}

variable "autoscaling_max" {
  description = "Most tasks autoscaling may start."
  type        = number
  default     = 6
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation autoscaling aims for."
  type        = number
  default     = 60
}

variable "requests_per_target" {
  description = "Requests per task per minute autoscaling aims for (ALBRequestCountPerTarget)."
  type        = number
  default     = 1000
}

variable "db_host" {
  description = "Database host name (DB_HOST)."
  type        = string
}

variable "db_port" {
  description = "Database port (DB_PORT)."
  type        = number
}

variable "db_name" {
  description = "Database name (DB_NAME)."
  type        = string
}

variable "db_secret_arn" {
  description = "ARN of the application's rotated database secret (not the master's); its username and password keys become DB_USERNAME and DB_PASSWORD."
  type        = string
}

variable "bootstrap_admin_key_secret_arn" {
  description = "ARN of the Secrets Manager secret whose whole value is revwallet's first admin API key; it becomes REVWALLET_BOOTSTRAP_ADMIN_KEY."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.bootstrap_admin_key_secret_arn))
    error_message = "bootstrap_admin_key_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "rust_log" {
  description = "RUST_LOG filter of the service."
  type        = string
  default     = "info"
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on the load balancer; when null the load balancer serves plain HTTP only."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "Domain the certificate is for (its DNS record points at the load balancer); used in the url output."
  type        = string
  default     = null
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the load balancer until this is turned off."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests per client address per 5 minutes before WAF blocks it (100 to 2e9)."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Retention of the service, load balancer and WAF logs."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let a destroy delete a non-empty image repository and access-log bucket (dev only)."
  type        = bool
  default     = false
}

variable "db_master_secret_arn" {
  description = "RDS-managed master secret: read only by the one-off bootstrap task, never by the service."
  type        = string

  validation {
    condition     = var.db_master_secret_arn != var.db_secret_arn
    error_message = "the service must log in with the application's own secret, not the master user's (ADR 0045)."
  }
}

variable "db_app_username" {
  description = "The application's login role (the bootstrap task creates it and its _clone)."
  type        = string
  default     = "revwallet_app"
}

variable "db_bootstrap_image" {
  description = "Image with psql for the bootstrap task (the PostgreSQL image Compose and Kubernetes run)."
  type        = string
  default     = "postgres:17.6-bookworm"
}
