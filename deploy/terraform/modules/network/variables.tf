variable "name" {
  description = "Prefix for every resource name, e.g. revwallet-dev."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 range of the VPC; a /16 leaves room for /24 public and /20 private subnets."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 16
    error_message = "cidr_block must be an IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zones" {
  description = "Exactly two availability zones (names, e.g. eu-west-1a); given rather than looked up so plans run offline."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 2 && length(distinct(var.availability_zones)) == 2
    error_message = "availability_zones must list two distinct zones."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per availability zone (survives an AZ outage) instead of a single shared one (cheaper)."
  type        = bool
  default     = false
}

variable "app_port" {
  description = "Port the application tasks listen on; the only port the load balancer may reach."
  type        = number
  default     = 8080
}

variable "db_port" {
  description = "PostgreSQL port; the only port the tasks may reach on the database."
  type        = number
  default     = 5432
}

variable "alb_listener_ports" {
  description = "Ports the internet may reach on the load balancer (80, plus 443 when HTTPS is on)."
  type        = list(number)
  default     = [80, 443]

  validation {
    condition     = length(var.alb_listener_ports) > 0 && alltrue([for p in var.alb_listener_ports : contains([80, 443], p)])
    error_message = "alb_listener_ports may only contain 80 and 443."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log log group."
  type        = string
}

variable "flow_log_retention_days" {
  description = "How long VPC flow logs are kept."
  type        = number
  default     = 365
}
