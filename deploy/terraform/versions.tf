terraform {
  # 1.11: native S3 state locking (use_lockfile) and mock providers for terraform test.
  required_version = "~> 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, key and region come from environments/<env>.s3.tfbackend
  # (terraform init -backend-config=...). Locking uses an S3 lock object; no DynamoDB table.
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}
