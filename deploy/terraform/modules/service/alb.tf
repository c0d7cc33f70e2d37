# Internet-facing Application Load Balancer in the public subnets. HTTP only without a certificate;
# with certificate_arn, HTTPS on 443 and HTTP answers with a permanent redirect.

locals {
  https = var.certificate_arn != null

  # The same public surface as the nginx edge (deploy/nginx): the web UI, its static files and the API.
  # /metrics, /healthz, /readyz and unknown paths stay inside; the ALB probes /readyz on the targets
  # directly. Five patterns is the most one listener rule may hold.
  public_paths = ["/", "/ui/*", "/static/*", "/wallet", "/wallet/*"]

  # Same body as the edge's 404 (ALB fixed responses cannot say application/problem+json).
  not_found_body = jsonencode({ type = "about:blank", title = "Not Found", status = 404, code = "not_found", detail = "no such path" })
}

#trivy:ignore:AVD-AWS-0053 The load balancer is the service's public entry point; it is internet-facing by design.
resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_20:HTTP redirects to HTTPS whenever a certificate is configured; without one (dev) HTTP is the only listener.
  name               = var.name
  load_balancer_type = "application"
  internal           = false
  security_groups    = [var.alb_security_group_id]
  subnets            = var.public_subnet_ids

  # Requests with malformed headers are dropped rather than passed on (request smuggling).
  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  enable_deletion_protection = var.alb_deletion_protection

  access_logs {
    bucket  = aws_s3_bucket.alb_logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays in private subnets, limited by security groups to this one path.
  # Target group names are capped at 32 characters and must be unique while create_before_destroy
  # swaps groups, hence a short prefix; the Name tag carries the full name.
  name_prefix = "rw-"
  target_type = "ip" # Fargate tasks register by ENI address
  protocol    = "HTTP"
  port        = var.container_port
  vpc_id      = var.vpc_id
  # Short drain: requests are short, and rollouts should not wait five minutes per task.
  deregistration_delay = 30

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = { Name = var.name }

  lifecycle {
    create_before_destroy = true
  }
}

# Without a certificate: plain HTTP serves the public paths (dev without a domain).
#trivy:ignore:AVD-AWS-0054 Only created when no certificate is configured; with one, port 80 only redirects to HTTPS.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Only created when no certificate_arn is given (dev without a domain); with one, HTTP redirects.
  #checkov:skip=CKV_AWS_103:Same listener: plain HTTP has no TLS version to set; the HTTPS listener uses a TLS 1.2+ policy.
  count = local.https ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "fixed-response"

    fixed_response {
      status_code  = "404"
      content_type = "application/json"
      message_body = local.not_found_body
    }
  }
}

resource "aws_lb_listener" "http_redirect" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  # TLS 1.3 preferred, TLS 1.2 still accepted, nothing older.
  ssl_policy      = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn = var.certificate_arn

  default_action {
    type = "fixed-response"

    fixed_response {
      status_code  = "404"
      content_type = "application/json"
      message_body = local.not_found_body
    }
  }
}

# Only the public paths reach the service, on whichever listener serves (HTTPS, or HTTP without a certificate).
resource "aws_lb_listener_rule" "public_paths" {
  listener_arn = local.https ? aws_lb_listener.https[0].arn : aws_lb_listener.http[0].arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  condition {
    path_pattern {
      values = local.public_paths
    }
  }
}

# --- access logs -----------------------------------------------------------------------------------

data "aws_elb_service_account" "current" {}

#trivy:ignore:AVD-AWS-0089 This bucket only receives access logs; logging access to the log bucket would log itself.
resource "aws_s3_bucket" "alb_logs" {
  #checkov:skip=CKV_AWS_145:ALB access logs only support SSE-S3 (AES256) encryption, not KMS.
  #checkov:skip=CKV_AWS_18:This is the access-log bucket itself; logging its own access would recurse.
  #checkov:skip=CKV_AWS_144:Access logs are operational data kept for a limited time; cross-region replication is not worth it.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events from the access-log bucket.
  bucket_prefix = "${var.name}-alb-logs-"
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  bucket                  = aws_s3_bucket.alb_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

#trivy:ignore:AVD-AWS-0132 ALB access logs can only be written to buckets encrypted with SSE-S3, not KMS.
resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.alb_logs]
}

resource "aws_s3_bucket_policy" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Regions older than August 2022 deliver as the regional ELB account, newer ones as the service.
        Sid    = "LoadBalancerWritesAccessLogs"
        Effect = "Allow"
        Principal = {
          AWS     = data.aws_elb_service_account.current.arn
          Service = "logdelivery.elasticloadbalancing.amazonaws.com"
        }
        Action   = "s3:PutObject"
        Resource = "${aws_s3_bucket.alb_logs.arn}/alb/AWSLogs/*"
      },
      {
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.alb_logs.arn, "${aws_s3_bucket.alb_logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.alb_logs]
}
