# One customer-managed key per environment for everything at rest that accepts one: database
# storage, the master-password secret, Performance Insights, the image repository and log groups.

data "aws_partition" "current" {}

# Not looked up in offline checks: there are no credentials to ask STS with.
data "aws_caller_identity" "current" {
  count = var.offline_check ? 0 : 1
}

locals {
  account_id = var.offline_check ? "123456789012" : data.aws_caller_identity.current[0].account_id
  partition  = data.aws_partition.current.partition
}

resource "aws_kms_key" "this" {
  description             = "revwallet ${var.environment}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Standard: the account's IAM policies decide who may use the key (the execution role does).
        Sid       = "AccountIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch Logs encrypts log groups itself and needs a grant in the key policy, limited to
        # this account's log groups in this region.
        Sid       = "CloudWatchLogsEncryptLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/revwallet-${var.environment}"
  target_key_id = aws_kms_key.this.key_id
}
