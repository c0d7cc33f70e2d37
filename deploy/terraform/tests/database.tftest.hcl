# Database module with a mocked AWS provider: private, encrypted, TLS-only, password owned by RDS; the app's own
# secret, rotated by AWS's alternating-users function against the master secret.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name              = "revwallet-test"
  subnet_ids        = ["subnet-private-a", "subnet-private-b"]
  security_group_id = "sg-database"
  kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  instance_class    = "db.t4g.micro"

  rotation_security_group_id = "sg-app"
}

run "database_is_private_and_encrypted" {
  command = apply

  module {
    source = "./modules/database"
  }

  assert {
    condition     = aws_db_instance.this.publicly_accessible == false
    error_message = "the database must not be publicly accessible"
  }

  assert {
    condition     = aws_db_subnet_group.this.subnet_ids == toset(var.subnet_ids)
    error_message = "the database must live in the given private subnets"
  }

  assert {
    condition     = aws_db_instance.this.vpc_security_group_ids == toset([var.security_group_id])
    error_message = "the database must use only its own security group"
  }

  assert {
    condition     = aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == var.kms_key_arn
    error_message = "storage must be encrypted with the given key"
  }

  assert {
    condition     = aws_db_instance.this.engine == "postgres" && aws_db_instance.this.engine_version == "17" && aws_db_parameter_group.this.family == "postgres17"
    error_message = "expected PostgreSQL 17"
  }

  assert {
    condition = contains(
      [for p in aws_db_parameter_group.this.parameter : "${p.name}=${p.value}"], "rds.force_ssl=1"
    )
    error_message = "the parameter group must require TLS"
  }

  assert {
    condition     = aws_db_instance.this.manage_master_user_password && aws_db_instance.this.password == null
    error_message = "the master password must be generated and kept by RDS in Secrets Manager"
  }

  assert {
    condition     = output.master_user_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock-AbCdEf"
    error_message = "the module must expose the RDS-managed secret"
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period >= 1
    error_message = "automated backups must be on"
  }

  assert {
    condition     = aws_db_instance.this.multi_az && aws_db_instance.this.deletion_protection
    error_message = "Multi-AZ and deletion protection are on unless turned off"
  }
}

run "dev_can_turn_multi_az_and_deletion_protection_off" {
  command = apply

  module {
    source = "./modules/database"
  }

  variables {
    multi_az            = false
    deletion_protection = false
    final_snapshot      = false
  }

  assert {
    condition     = !aws_db_instance.this.multi_az && !aws_db_instance.this.deletion_protection && aws_db_instance.this.skip_final_snapshot
    error_message = "the variables must reach the instance"
  }
}

run "backups_cannot_be_turned_off" {
  command = plan

  module {
    source = "./modules/database"
  }

  variables {
    backup_retention_days = 0
  }

  expect_failures = [var.backup_retention_days]
}

run "the_app_has_its_own_secret_rotated_by_alternating_users" {
  command = apply

  module {
    source = "./modules/database"
  }

  assert {
    condition     = output.app_secret_arn == aws_secretsmanager_secret.app.arn && output.app_secret_arn != output.master_user_secret_arn
    error_message = "the module must expose the application's own secret, distinct from the master's"
  }

  assert {
    condition     = aws_secretsmanager_secret.app.kms_key_id == var.kms_key_arn
    error_message = "the application's secret is encrypted with the stack's key"
  }

  assert {
    condition = {
      for k, v in jsondecode(aws_secretsmanager_secret_version.app_initial.secret_string) : k => v if k != "password"
      } == {
      engine    = "postgres"
      host      = aws_db_instance.this.address
      port      = aws_db_instance.this.port
      dbname    = "revwallet"
      username  = "revwallet_app"
      masterarn = output.master_user_secret_arn
    }
    error_message = "the secret must name the app's role (not the master user) and the master secret the rotation uses"
  }

  assert {
    condition     = jsondecode(aws_secretsmanager_secret_version.app_initial.secret_string).password == ""
    error_message = "Terraform must never hold a usable password (the first rotation sets it)"
  }

  assert {
    condition     = endswith(aws_serverlessapplicationrepository_cloudformation_stack.rotation.application_id, ":applications/SecretsManagerRDSPostgreSQLRotationMultiUser")
    error_message = "rotation must use AWS's alternating-users (multi-user) PostgreSQL function"
  }

  assert {
    condition = (
      aws_serverlessapplicationrepository_cloudformation_stack.rotation.parameters.masterSecretArn == output.master_user_secret_arn
      && aws_serverlessapplicationrepository_cloudformation_stack.rotation.parameters.vpcSecurityGroupIds == var.rotation_security_group_id
      && aws_serverlessapplicationrepository_cloudformation_stack.rotation.parameters.vpcSubnetIds == join(",", var.subnet_ids)
    )
    error_message = "the rotation function runs in the private subnets and changes passwords as the master user"
  }

  assert {
    condition = (
      aws_secretsmanager_secret_rotation.app.secret_id == aws_secretsmanager_secret.app.id
      && aws_secretsmanager_secret_rotation.app.rotation_lambda_arn == output.rotation_function_arn
      && aws_secretsmanager_secret_rotation.app.rotation_rules[0].automatically_after_days == 30
    )
    error_message = "the application's secret rotates every 30 days with the alternating-users function"
  }
}

run "the_app_role_cannot_be_the_master_user" {
  command = plan

  module {
    source = "./modules/database"
  }

  variables {
    app_username = "revwallet"
  }

  expect_failures = [var.app_username]
}
