# Database module with a mocked AWS provider: private, encrypted, TLS-only, password owned by RDS.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name              = "revwallet-test"
  subnet_ids        = ["subnet-private-a", "subnet-private-b"]
  security_group_id = "sg-database"
  kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  instance_class    = "db.t4g.micro"
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
