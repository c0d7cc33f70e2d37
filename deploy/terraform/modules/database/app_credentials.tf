# The application's own database credentials (ADR 0045). The app never uses the master user: RDS rotates
# the master password every 7 days, and ECS reads secrets only when a task starts, so a task holding the
# master password would lose the database at the next rotation.
#
# The app logs in as revwallet_app or revwallet_app_clone, two roles with the same rights (db-bootstrap.sql,
# run once as the master user). Secrets Manager rotates this secret with AWS's alternating-users function:
# each rotation sets a new password on the role that is *not* current and then switches the secret to it, so
# the credentials the running tasks hold stay valid until the rotation after next. The service module
# redeploys on RotationSucceeded, long before that.

locals {
  # AWS's published rotation functions (Serverless Application Repository), multi-user PostgreSQL variant.
  rotation_application_id = "arn:${data.aws_partition.current.partition}:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
}

data "aws_region" "current" {}

resource "aws_secretsmanager_secret" "app" {
  name        = "${var.name}/db/app"
  description = "revwallet's database login (${var.app_username} or ${var.app_username}_clone), rotated by alternating users"
  kms_key_id  = var.kms_key_arn
}

# The shape the rotation function expects. The password is empty until the first rotation, which the
# bootstrap step starts once the roles exist (docs/aws.md); Terraform never holds a usable password.
resource "aws_secretsmanager_secret_version" "app_initial" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    engine    = "postgres"
    host      = aws_db_instance.this.address
    port      = aws_db_instance.this.port
    dbname    = aws_db_instance.this.db_name
    username  = var.app_username
    password  = ""
    masterarn = aws_db_instance.this.master_user_secret[0].secret_arn
  })

  lifecycle {
    # Rotation owns the value from the first rotation on.
    ignore_changes = [secret_string]
  }
}

# AWS's rotation function for alternating users, deployed in the private subnets. It reaches the database on
# its port and Secrets Manager over HTTPS: exactly the tasks' network paths, so it uses their security group.
resource "aws_serverlessapplicationrepository_cloudformation_stack" "rotation" {
  name             = "${var.name}-db-app-rotation"
  application_id   = local.rotation_application_id
  semantic_version = var.rotation_function_version
  capabilities     = ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]

  parameters = {
    endpoint              = "https://secretsmanager.${data.aws_region.current.name}.${data.aws_partition.current.dns_suffix}"
    functionName          = "${var.name}-db-app-rotation"
    vpcSubnetIds          = join(",", var.subnet_ids)
    vpcSecurityGroupIds   = var.rotation_security_group_id
    kmsKeyArn             = var.kms_key_arn
    masterSecretArn       = aws_db_instance.this.master_user_secret[0].secret_arn
    masterSecretKmsKeyArn = var.kms_key_arn
  }
}

resource "aws_secretsmanager_secret_rotation" "app" {
  secret_id           = aws_secretsmanager_secret.app.id
  rotation_lambda_arn = aws_serverlessapplicationrepository_cloudformation_stack.rotation.outputs["RotationLambdaARN"]
  # The roles do not exist until the bootstrap step has run; it starts the first rotation itself.
  rotate_immediately = false

  rotation_rules {
    automatically_after_days = var.app_password_rotation_days
  }

  depends_on = [aws_secretsmanager_secret_version.app_initial]
}
