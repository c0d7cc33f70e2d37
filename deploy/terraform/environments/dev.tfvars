# dev: smallest footprint that still has the production shape (two AZs, two tasks, private database).
environment        = "dev"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b"]
vpc_cidr           = "10.40.0.0/16"
# allowed_account_ids = ["111111111111"]

# The image to run is pinned as `image_digest = "sha256:..."` by the release's pin pull request
# (.github/scripts/pin_image_digest.py appends the line on the first release). Until then, pass
# -var image_digest=sha256:... by hand (docs/aws.md).

# One NAT gateway for both AZs: an AZ outage cuts outbound traffic of the other AZ's tasks; fine for dev.
nat_gateway_per_az = false

# No certificate: the load balancer serves plain HTTP on its AWS DNS name.
certificate_arn = null

db_instance_class        = "db.t4g.micro"
db_multi_az              = false
db_deletion_protection   = false
db_backup_retention_days = 1
db_final_snapshot        = false

task_cpu        = 256
task_memory     = 512
desired_count   = 2
autoscaling_max = 4
rust_log        = "info,revwallet=debug"

alb_deletion_protection  = false
log_retention_days       = 30
force_destroy            = true
kms_deletion_window_days = 7
