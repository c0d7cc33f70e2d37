provider "aws" {
  region = var.region

  # Only `make terraform-check` sets offline_check: it plans with dummy credentials and no network.
  # Real runs leave it false, so credentials, account and region are all validated as usual.
  skip_credentials_validation = var.offline_check
  skip_requesting_account_id  = var.offline_check
  skip_metadata_api_check     = var.offline_check
  skip_region_validation      = var.offline_check

  # Refuse to touch any account but the intended one, when it is named (offline there is no account).
  allowed_account_ids = var.offline_check ? null : var.allowed_account_ids

  default_tags {
    tags = {
      Project     = "revwallet"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
