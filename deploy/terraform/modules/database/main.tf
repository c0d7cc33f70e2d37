# RDS PostgreSQL 17: private, encrypted, TLS-only, master password owned by RDS in Secrets Manager.

data "aws_partition" "current" {}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  # A prefix plus create_before_destroy lets a major-version upgrade swap in a new family's group.
  name_prefix = "${var.name}-pg17-"
  family      = "postgres17"
  description = "revwallet: TLS required, slow and DDL statements logged"

  # Refuse unencrypted connections server-side, whatever the client asks for.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "ssl_min_protocol_version"
    value = "TLSv1.2"
  }

  # Schema changes are rare and worth a trace; every statement would log wallet data.
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  # Statements slower than 500 ms show up in the log (and in CloudWatch via the log export).
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# RDS would create these itself with no expiry and no encryption; creating them first sets both.
resource "aws_cloudwatch_log_group" "postgres" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# Enhanced Monitoring (OS-level metrics every 60 s) needs a role RDS can assume.
resource "aws_iam_role" "monitoring" {
  name = "${var.name}-rds-monitoring"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier = var.name

  engine = "postgres"
  # Major version pinned; AWS applies minor (security) releases in the maintenance window.
  engine_version              = "17"
  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  instance_class              = var.instance_class
  parameter_group_name        = aws_db_parameter_group.this.name

  db_name  = var.database_name
  username = var.master_username
  port     = var.port
  # RDS generates the password, stores it in Secrets Manager (keys "username" and "password") and
  # rotates it; it never appears in Terraform state or variables.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn
  # IAM authentication costs nothing and allows short-lived tokens for humans instead of the master password.
  iam_database_authentication_enabled = true

  storage_type          = "gp3"
  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.security_group_id]
  publicly_accessible    = false
  multi_az               = var.multi_az

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = !var.final_snapshot
  final_snapshot_identifier = var.final_snapshot ? "${var.name}-final" : null

  enabled_cloudwatch_logs_exports       = keys(aws_cloudwatch_log_group.postgres)
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = var.performance_insights_enabled
  performance_insights_kms_key_id       = var.performance_insights_enabled ? var.kms_key_arn : null
  performance_insights_retention_period = var.performance_insights_enabled ? 7 : null

  # Changes wait for the maintenance window unless someone applies them by hand.
  apply_immediately = false

  depends_on = [aws_cloudwatch_log_group.postgres, aws_iam_role_policy_attachment.monitoring]
}
