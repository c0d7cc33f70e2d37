# AWS WAF in front of the load balancer: AWS-managed baseline rules (common exploits, known bad
# inputs such as Log4Shell, IP reputation, anonymising proxies) and a per-address rate limit.
# Blocked requests are logged.
#
# Request bodies (ADR 0046): the API accepts up to 64 KiB and answers larger ones with a 413 problem JSON.
# The Common Rule Set's SizeRestrictions_BODY would block anything over 8 KB with a bare 403, so it only
# counts; a rule of our own answers a declared body over 64 KiB the way the API does, and anything else
# (a chunked body) reaches the app, which enforces the same limit.

locals {
  # Content-Length values above 65536 (the API's default body limit, REVWALLET_BODY_LIMIT): WAF compares
  # strings, not numbers, so the range is spelled out: 6+ digits, 70000-99999, 66000-69999, 65600-65999,
  # 65540-65599, 65537-65539 (tests/service.tftest.hcl checks the boundaries).
  body_too_large_regex = "^(0*[1-9][0-9]{5,}|[7-9][0-9]{4}|6[6-9][0-9]{3}|65[6-9][0-9]{2}|655[4-9][0-9]|6553[7-9])$"
}

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "revwallet public entry point"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # The API's own answer for an oversized body, so a client sees the same 413 with or without the WAF.
  custom_response_body {
    key          = "payload-too-large"
    content_type = "APPLICATION_JSON"
    content = jsonencode({
      type   = "about:blank"
      title  = "Payload Too Large"
      status = 413
      code   = "payload_too_large"
      detail = "the request body is larger than 65536 bytes"
    })
  }

  rule {
    name     = "body-too-large"
    priority = 5

    action {
      block {
        custom_response {
          response_code            = 413
          custom_response_body_key = "payload-too-large"
        }
      }
    }

    statement {
      regex_match_statement {
        regex_string = local.body_too_large_regex

        field_to_match {
          single_header {
            name = "content-length"
          }
        }

        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-body-too-large"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # API clients (the data generator, scripts) often send no User-Agent; count instead of block.
        rule_action_override {
          name = "NoUserAgent_HEADER"

          action_to_use {
            count {}
          }
        }

        # Blocks bodies over 8 KB with a bare 403; the API takes up to 64 KiB (body-too-large above).
        rule_action_override {
          name = "SizeRestrictions_BODY"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-ip-reputation"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  # Anonymising services (Tor, open proxies) have no business moving money. Hosting-provider addresses
  # are only counted: legitimate API clients run on servers.
  rule {
    name     = "aws-anonymous-ip"
    priority = 35

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"

        rule_action_override {
          name = "HostingProviderIPList"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  # Requests per 5 minutes per client address: far above a person, well below a flood. Raise it
  # before running the load generator against AWS from a single machine.
  rule {
    name     = "rate-limit-per-ip"
    priority = 40

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

# WAF requires the aws-waf-logs- prefix on its log destinations.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Only blocked requests: allowed ones are already in the load balancer's access logs.
  logging_filter {
    default_behavior = "DROP"

    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"

      condition {
        action_condition {
          action = "BLOCK"
        }
      }
    }
  }
}
