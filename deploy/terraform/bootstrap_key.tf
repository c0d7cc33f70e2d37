# revwallet's first admin API key (REVWALLET_BOOTSTRAP_ADMIN_KEY, ensured by revwallet at every start): a random
# key in Secrets Manager, which ECS injects into the service's tasks (modules/service). Secrets Manager makes the
# random part (the hashicorp/random provider is not in the offline provider mirror). A data source rather than an
# ephemeral resource because `terraform test` cannot mock ephemeral resources (Terraform 1.11); like a
# random_password it leaves the value in the (encrypted) state. The secret is written through the write-only
# argument, once per bootstrap_admin_key_version, so the fresh value each plan reads changes nothing.
# docs/aws.md says how to read and rotate the key.

data "aws_secretsmanager_random_password" "bootstrap_admin_key" {
  # The offline check has no credentials to call GetRandomPassword with; it plans with a placeholder that is
  # never applied.
  count = var.offline_check ? 0 : 1

  # 64 letters and digits: revwallet's format is rw_ followed by 32-200 of [A-Za-z0-9_-] (about 380 random bits).
  password_length            = 64
  exclude_punctuation        = true
  include_space              = false
  require_each_included_type = true
}

resource "aws_secretsmanager_secret" "bootstrap_admin_key" {
  #checkov:skip=CKV2_AWS_57:An API key lives in revwallet's database, not in a service a rotation function can log in to; rotating is a new secret_string_wo_version (bootstrap_admin_key_version), a redeploy, then `revwallet keys revoke` of the old key (docs/aws.md).
  name        = "${local.name}/revwallet/bootstrap-admin-key"
  description = "revwallet's first admin API key (REVWALLET_BOOTSTRAP_ADMIN_KEY); clients send it as Authorization: Bearer"
  kms_key_id  = aws_kms_key.this.arn
}

resource "aws_secretsmanager_secret_version" "bootstrap_admin_key" {
  secret_id = aws_secretsmanager_secret.bootstrap_admin_key.id
  # Written once per version number; bumping bootstrap_admin_key_version writes a freshly generated key.
  secret_string_wo         = var.offline_check ? "rw_offline-check-placeholder-never-applied" : "rw_${data.aws_secretsmanager_random_password.bootstrap_admin_key[0].random_password}"
  secret_string_wo_version = var.bootstrap_admin_key_version
}
