# Network module with a mocked AWS provider: nothing is created, the assertions read the planned and
# mock-applied values. Most important: the security groups allow exactly the three paths.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name               = "revwallet-test"
  cidr_block         = "10.40.0.0/16"
  availability_zones = ["eu-west-1a", "eu-west-1b"]
  kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

run "vpc_spans_two_azs_with_public_and_private_subnets" {
  command = apply

  module {
    source = "./modules/network"
  }

  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_subnet.private) == 2
    error_message = "expected one public and one private subnet per availability zone"
  }

  assert {
    condition = (
      tolist(aws_subnet.public[*].availability_zone) == tolist(var.availability_zones) &&
      tolist(aws_subnet.private[*].availability_zone) == tolist(var.availability_zones)
    )
    error_message = "subnets must be spread over the two given availability zones"
  }

  assert {
    condition     = alltrue([for s in concat(aws_subnet.public, aws_subnet.private) : s.map_public_ip_on_launch == false])
    error_message = "no subnet may hand out public IPs implicitly"
  }

  assert {
    condition = alltrue([
      for rt in aws_route_table.private : alltrue([for r in rt.route : r.gateway_id == null || r.gateway_id == ""])
    ])
    error_message = "private subnets must not route through the internet gateway"
  }

  assert {
    condition     = aws_flow_log.this.vpc_id == aws_vpc.this.id && aws_flow_log.this.traffic_type == "ALL"
    error_message = "flow logs must record all traffic of the VPC"
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs.kms_key_id == var.kms_key_arn
    error_message = "flow logs must be encrypted with the given key"
  }
}

run "one_nat_gateway_by_default" {
  command = apply

  module {
    source = "./modules/network"
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1
    error_message = "a single NAT gateway is the default"
  }

  assert {
    condition = alltrue([
      for rt in aws_route_table.private : [for r in rt.route : r.nat_gateway_id] == [aws_nat_gateway.this[0].id]
    ])
    error_message = "both private route tables must use the single NAT gateway"
  }
}

run "one_nat_gateway_per_az_as_an_option" {
  command = apply

  module {
    source = "./modules/network"
  }

  variables {
    nat_gateway_per_az = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 2
    error_message = "expected a NAT gateway in each availability zone"
  }

  assert {
    condition = alltrue([
      for i, rt in aws_route_table.private : [for r in rt.route : r.nat_gateway_id] == [aws_nat_gateway.this[i].id]
    ])
    error_message = "each private route table must use the NAT gateway of its own zone"
  }

  assert {
    condition     = tolist(aws_nat_gateway.this[*].subnet_id) == tolist(aws_subnet.public[*].id)
    error_message = "NAT gateways belong in the public subnets"
  }
}

run "security_groups_allow_exactly_the_three_paths" {
  command = apply

  module {
    source = "./modules/network"
  }

  variables {
    alb_listener_ports = [80, 443]
  }

  # Path 1: internet -> load balancer, on the listener ports only.
  assert {
    condition     = toset(keys(aws_vpc_security_group_ingress_rule.internet_to_alb)) == toset(["80", "443"])
    error_message = "the internet may reach the load balancer on 80 and 443 only"
  }

  assert {
    condition = alltrue([
      for r in values(aws_vpc_security_group_ingress_rule.internet_to_alb) :
      r.security_group_id == aws_security_group.alb.id && r.cidr_ipv4 == "0.0.0.0/0" &&
      r.ip_protocol == "tcp" && r.from_port == r.to_port
    ])
    error_message = "internet ingress must target the load balancer's group only, one TCP port per rule"
  }

  # Paths 2 and 3, and nothing else between our groups.
  assert {
    condition = (
      toset(keys(aws_vpc_security_group_ingress_rule.internal)) == toset(["alb-to-app", "app-to-db"]) &&
      toset(keys(aws_vpc_security_group_egress_rule.internal)) == toset(["alb-to-app", "app-to-db"])
    )
    error_message = "the only internal paths are load balancer -> tasks and tasks -> database"
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.internal["alb-to-app"].security_group_id == aws_security_group.app.id &&
      aws_vpc_security_group_ingress_rule.internal["alb-to-app"].referenced_security_group_id == aws_security_group.alb.id &&
      aws_vpc_security_group_ingress_rule.internal["alb-to-app"].ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.internal["alb-to-app"].from_port == 8080 &&
      aws_vpc_security_group_ingress_rule.internal["alb-to-app"].to_port == 8080 &&
      aws_vpc_security_group_egress_rule.internal["alb-to-app"].security_group_id == aws_security_group.alb.id &&
      aws_vpc_security_group_egress_rule.internal["alb-to-app"].referenced_security_group_id == aws_security_group.app.id &&
      aws_vpc_security_group_egress_rule.internal["alb-to-app"].from_port == 8080 &&
      aws_vpc_security_group_egress_rule.internal["alb-to-app"].to_port == 8080
    )
    error_message = "the tasks accept the load balancer on 8080 only, and the load balancer sends nowhere else"
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.internal["app-to-db"].security_group_id == aws_security_group.db.id &&
      aws_vpc_security_group_ingress_rule.internal["app-to-db"].referenced_security_group_id == aws_security_group.app.id &&
      aws_vpc_security_group_ingress_rule.internal["app-to-db"].ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.internal["app-to-db"].from_port == 5432 &&
      aws_vpc_security_group_ingress_rule.internal["app-to-db"].to_port == 5432 &&
      aws_vpc_security_group_egress_rule.internal["app-to-db"].security_group_id == aws_security_group.app.id &&
      aws_vpc_security_group_egress_rule.internal["app-to-db"].referenced_security_group_id == aws_security_group.db.id &&
      aws_vpc_security_group_egress_rule.internal["app-to-db"].from_port == 5432 &&
      aws_vpc_security_group_egress_rule.internal["app-to-db"].to_port == 5432
    )
    error_message = "the database accepts the tasks on 5432 only"
  }

  # The tasks' only other rule: HTTPS out to AWS APIs. Nothing may reach the database or tasks from elsewhere.
  assert {
    condition = (
      aws_vpc_security_group_egress_rule.app_to_aws_apis.security_group_id == aws_security_group.app.id &&
      aws_vpc_security_group_egress_rule.app_to_aws_apis.ip_protocol == "tcp" &&
      aws_vpc_security_group_egress_rule.app_to_aws_apis.from_port == 443 &&
      aws_vpc_security_group_egress_rule.app_to_aws_apis.to_port == 443
    )
    error_message = "the tasks' only egress besides the database is HTTPS to AWS APIs"
  }

  assert {
    condition = length([
      for r in concat(values(aws_vpc_security_group_egress_rule.internal), [aws_vpc_security_group_egress_rule.app_to_aws_apis]) :
      r if r.security_group_id == aws_security_group.db.id
    ]) == 0
    error_message = "the database must have no egress rule"
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "the default security group must stay empty"
  }
}

run "http_only_opens_port_80_only" {
  command = apply

  module {
    source = "./modules/network"
  }

  variables {
    alb_listener_ports = [80]
  }

  assert {
    condition     = toset(keys(aws_vpc_security_group_ingress_rule.internet_to_alb)) == toset(["80"])
    error_message = "without HTTPS only port 80 may be open"
  }
}
