# The whole firewall of the stack in one file. Three network paths exist and nothing else:
#   internet -> load balancer (80, and 443 when HTTPS is on)
#   load balancer -> tasks (app_port)
#   tasks -> database (db_port)
# plus the tasks' HTTPS egress to AWS APIs (see app_to_aws_apis below). The groups carry no inline
# rules: every rule is a separate resource so tests can enumerate them and no rule hides in a group.

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:Attached to the load balancer (service module) through this module's outputs; checkov's graph does not follow module outputs.
  # A prefix, not a fixed name: create_before_destroy needs the old and new group to coexist.
  name_prefix = "${var.name}-alb-"
  description = "revwallet load balancer: HTTP(S) from the internet, forwards to the tasks only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-alb" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "app" {
  #checkov:skip=CKV2_AWS_5:Attached to the ECS service (service module) through this module's outputs; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-app-"
  description = "revwallet tasks: reachable from the load balancer only, reach the database and AWS APIs"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-app" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "db" {
  #checkov:skip=CKV2_AWS_5:Attached to the DB instance (database module) through this module's outputs; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-db-"
  description = "revwallet PostgreSQL: reachable from the tasks only, no egress"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-db" }

  lifecycle {
    create_before_destroy = true
  }
}

# Path 1: the internet reaches the load balancer's listeners, and nothing else. The load balancer is
# the public entry point, so this is the one rule open to 0.0.0.0/0.
resource "aws_vpc_security_group_ingress_rule" "internet_to_alb" {
  #checkov:skip=CKV_AWS_260:Port 80 is open on purpose: it serves the app without a certificate, or redirects to HTTPS with one.
  for_each = toset([for port in var.alb_listener_ports : tostring(port)])

  security_group_id = aws_security_group.alb.id
  description       = "internet to load balancer listener ${each.key}"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)

  tags = { Name = "internet-to-alb-${each.key}" }
}

locals {
  # Paths 2 and 3 between our own groups; each becomes an egress rule on the source group and a
  # matching ingress rule on the destination group.
  internal_paths = {
    "alb-to-app" = { from = aws_security_group.alb.id, to = aws_security_group.app.id, port = var.app_port }
    "app-to-db"  = { from = aws_security_group.app.id, to = aws_security_group.db.id, port = var.db_port }
  }
}

resource "aws_vpc_security_group_egress_rule" "internal" {
  for_each = local.internal_paths

  security_group_id            = each.value.from
  referenced_security_group_id = each.value.to
  description                  = "${each.key} on ${each.value.port}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port

  tags = { Name = "${each.key}-out" }
}

resource "aws_vpc_security_group_ingress_rule" "internal" {
  for_each = local.internal_paths

  security_group_id            = each.value.to
  referenced_security_group_id = each.value.from
  description                  = "${each.key} on ${each.value.port}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port

  tags = { Name = "${each.key}-in" }
}

# Fargate pulls the image (ECR API and S3), reads the database secret (Secrets Manager) and ships logs
# (CloudWatch Logs) through the task's own network interface, so the tasks need HTTPS to those public
# AWS endpoints, reached via the NAT gateway (S3 via the gateway endpoint). Only 443/tcp; no inbound.
#trivy:ignore:AVD-AWS-0104 AWS API endpoints have no fixed address range; egress is limited to 443/tcp and leaves through NAT.
resource "aws_vpc_security_group_egress_rule" "app_to_aws_apis" {
  security_group_id = aws_security_group.app.id
  description       = "tasks to AWS APIs (ECR, S3, Secrets Manager, CloudWatch Logs) over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443

  tags = { Name = "app-to-aws-apis" }
}
