# The root configuration wired together, with a mocked AWS provider (no credentials, no network).

mock_provider "aws" {
  source = "./tests/mocks"
}

# The bootstrap key's secret gets its own ARN (the shared mock gives every secret the database secret's).
override_resource {
  target = aws_secretsmanager_secret.bootstrap_admin_key
  values = {
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:revwallet-test/revwallet/bootstrap-admin-key-AbCdEf"
  }
}

override_resource {
  target = aws_secretsmanager_secret_version.bootstrap_admin_key
  values = {
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:revwallet-test/revwallet/bootstrap-admin-key-AbCdEf"
  }
}

variables {
  environment        = "test"
  region             = "eu-west-1"
  availability_zones = ["eu-west-1a", "eu-west-1b"]
  image_digest       = "sha256:3f1c2b0e9d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
}

run "the_stack_applies_and_reports_its_outputs" {
  command = apply

  assert {
    condition     = output.cluster_name == "revwallet-test" && output.service_name == "revwallet"
    error_message = "cluster and service names are derived from the environment"
  }

  assert {
    condition     = startswith(output.url, "http://") && output.repository_url != ""
    error_message = "the URL and the repository URL are reported"
  }

  assert {
    condition     = output.task_secret_arns == tolist([output.database_secret_arn, output.bootstrap_admin_key_secret_arn]) && output.database_secret_arn == module.database.app_secret_arn
    error_message = "the tasks read the application's own secret and the bootstrap admin key, and nothing else"
  }

  assert {
    condition = (
      aws_secretsmanager_secret.bootstrap_admin_key.kms_key_id == aws_kms_key.this.arn &&
      aws_secretsmanager_secret_version.bootstrap_admin_key.secret_string_wo_version == var.bootstrap_admin_key_version
    )
    error_message = "the bootstrap admin key is encrypted with the stack's key and written through the write-only argument"
  }

  assert {
    condition     = output.database_master_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock-AbCdEf" && !contains(output.task_secret_arns, output.database_master_secret_arn)
    error_message = "the app never connects as the master user"
  }

  assert {
    condition     = module.database.app_username == "revwallet_app" && module.database.rotation_function_arn != ""
    error_message = "the app has its own role and a rotation function"
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "the data key rotates"
  }
}

run "prod_defaults_keep_every_protection_on" {
  command = plan

  assert {
    condition     = var.db_multi_az && var.db_deletion_protection && var.alb_deletion_protection && var.db_final_snapshot
    error_message = "protections must default to on"
  }
}

run "a_tag_is_rejected_at_the_root" {
  command = plan

  variables {
    image_digest = "revwallet:latest"
  }

  expect_failures = [var.image_digest]
}

run "the_plan_holds_the_rotation_strategy" {
  command = plan

  assert {
    condition     = output.db_bootstrap_task_family == "revwallet-test-db-bootstrap"
    error_message = "the plan must hold the one-off bootstrap task that creates the app's roles"
  }
}
