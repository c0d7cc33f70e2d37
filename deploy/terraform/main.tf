# revwallet on AWS: network (VPC, subnets, NAT, flow logs, security groups), database (RDS
# PostgreSQL 17, the app's own rotated login) and service (ECR, ECS Fargate, ALB, WAF, autoscaling, redeploy on
# rotation, the one-off database bootstrap task). See docs/aws.md.

locals {
  name = "revwallet-${var.environment}"
}

module "network" {
  source = "./modules/network"

  name                    = local.name
  cidr_block              = var.vpc_cidr
  availability_zones      = var.availability_zones
  nat_gateway_per_az      = var.nat_gateway_per_az
  app_port                = 8080
  db_port                 = 5432
  alb_listener_ports      = var.certificate_arn == null ? [80] : [80, 443]
  kms_key_arn             = aws_kms_key.this.arn
  flow_log_retention_days = var.log_retention_days
}

module "database" {
  source = "./modules/database"

  name                  = local.name
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.network.db_security_group_id
  kms_key_arn           = aws_kms_key.this.arn
  port                  = 5432
  instance_class        = var.db_instance_class
  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  multi_az              = var.db_multi_az
  deletion_protection   = var.db_deletion_protection
  backup_retention_days = var.db_backup_retention_days
  final_snapshot        = var.db_final_snapshot
  log_retention_days    = var.log_retention_days

  # The app's own login, rotated by alternating users (ADR 0045); the rotation function runs with the
  # tasks' network paths (database port, HTTPS to Secrets Manager).
  rotation_security_group_id = module.network.app_security_group_id
}

module "service" {
  source = "./modules/service"

  name                  = local.name
  vpc_id                = module.network.vpc_id
  public_subnet_ids     = module.network.public_subnet_ids
  private_subnet_ids    = module.network.private_subnet_ids
  alb_security_group_id = module.network.alb_security_group_id
  app_security_group_id = module.network.app_security_group_id
  kms_key_arn           = aws_kms_key.this.arn

  image_digest     = var.image_digest
  container_port   = 8080
  cpu_architecture = var.cpu_architecture
  task_cpu         = var.task_cpu
  task_memory      = var.task_memory
  desired_count    = var.desired_count
  autoscaling_min  = 2
  autoscaling_max  = var.autoscaling_max
  rust_log         = var.rust_log

  db_host              = module.database.address
  db_port              = module.database.port
  db_name              = module.database.database_name
  db_secret_arn        = module.database.app_secret_arn
  db_master_secret_arn = module.database.master_user_secret_arn
  db_app_username      = module.database.app_username

  # The version's ARN (the secret's): the service waits until the key has a value before its tasks start.
  bootstrap_admin_key_secret_arn = aws_secretsmanager_secret_version.bootstrap_admin_key.arn

  certificate_arn         = var.certificate_arn
  domain_name             = var.domain_name
  alb_deletion_protection = var.alb_deletion_protection
  waf_rate_limit          = var.waf_rate_limit
  log_retention_days      = var.log_retention_days
  force_destroy           = var.force_destroy
}
