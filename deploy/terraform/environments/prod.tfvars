# prod: every protection on, a NAT gateway and a database standby per AZ.
environment        = "prod"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b"]
vpc_cidr           = "10.50.0.0/16"
# allowed_account_ids = ["222222222222"]

# The image to run is pinned as `image_digest = "sha256:..."` by the release's pin pull request
# (.github/scripts/pin_image_digest.py appends the line on the first release). Until then, pass
# -var image_digest=sha256:... by hand (docs/aws.md).

nat_gateway_per_az = true

# Set both to serve HTTPS (HTTP then redirects); the certificate must be in the same region.
# certificate_arn = "arn:aws:acm:eu-west-1:222222222222:certificate/..."
# domain_name     = "wallet.example.com"

db_instance_class        = "db.t4g.medium"
db_multi_az              = true
db_deletion_protection   = true
db_backup_retention_days = 14
db_final_snapshot        = true

task_cpu        = 512
task_memory     = 1024
desired_count   = 2
autoscaling_max = 10
rust_log        = "info"

alb_deletion_protection  = true
log_retention_days       = 365
force_destroy            = false
kms_deletion_window_days = 30
