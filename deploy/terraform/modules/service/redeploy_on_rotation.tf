# ECS injects secrets only when a task starts. When Secrets Manager has rotated the database secret, this
# starts a new deployment of the service, so every task picks up the new credentials (ADR 0045). With
# alternating users the old credentials stay valid until the rotation after next, so the rolling deployment
# (minimum 100 % healthy, circuit breaker) replaces tasks without a failed connection.
#
#   Secrets Manager RotationSucceeded (CloudTrail) -> EventBridge rule -> Step Functions -> ecs:UpdateService
#
# Step Functions calls the ECS API directly (AWS SDK integration): no function code to build or patch.

resource "aws_cloudwatch_event_rule" "db_secret_rotated" {
  name        = "${var.name}-db-secret-rotated"
  description = "The database secret of ${var.name} was rotated: redeploy the service"

  event_pattern = jsonencode({
    source        = ["aws.secretsmanager"]
    "detail-type" = ["AWS Service Event via CloudTrail"]
    detail = {
      eventSource         = ["secretsmanager.amazonaws.com"]
      eventName           = ["RotationSucceeded"]
      additionalEventData = { SecretId = [var.db_secret_arn] }
    }
  })
}

resource "aws_cloudwatch_event_target" "redeploy" {
  rule     = aws_cloudwatch_event_rule.db_secret_rotated.name
  arn      = aws_sfn_state_machine.redeploy.arn
  role_arn = aws_iam_role.redeploy_events.arn
}

resource "aws_cloudwatch_log_group" "redeploy" {
  name              = "/aws/vendedlogs/states/${var.name}-redeploy-on-rotation"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_sfn_state_machine" "redeploy" {
  name     = "${var.name}-redeploy-on-rotation"
  role_arn = aws_iam_role.redeploy_sfn.arn

  definition = jsonencode({
    Comment = "Force a new deployment of ${var.name} so its tasks read the rotated database secret"
    StartAt = "ForceNewDeployment"
    States = {
      ForceNewDeployment = {
        Type     = "Task"
        Resource = "arn:${data.aws_partition.current.partition}:states:::aws-sdk:ecs:updateService"
        Parameters = {
          Cluster            = aws_ecs_cluster.this.arn
          Service            = aws_ecs_service.this.name
          ForceNewDeployment = true
        }
        Retry = [{
          ErrorEquals     = ["States.ALL"]
          IntervalSeconds = 30
          MaxAttempts     = 5
          BackoffRate     = 2
        }]
        End = true
      }
    }
  })

  logging_configuration {
    log_destination = "${aws_cloudwatch_log_group.redeploy.arn}:*"
    # The input is the rotation event (the secret's ARN, never its value); the output, ECS's service description.
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }
}

locals {
  # The account, from an ARN this module owns (no extra API call: the offline plan has no credentials).
  account_id = split(":", aws_ecs_cluster.this.arn)[4]
  events_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
  states_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role" "redeploy_events" {
  name               = "${var.name}-redeploy-events"
  assume_role_policy = local.events_trust
}

resource "aws_iam_role_policy" "redeploy_events" {
  name = "start-redeploy"
  role = aws_iam_role.redeploy_events.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "StartTheRedeploy"
      Effect   = "Allow"
      Action   = "states:StartExecution"
      Resource = aws_sfn_state_machine.redeploy.arn
    }]
  })
}

resource "aws_iam_role" "redeploy_sfn" {
  name               = "${var.name}-redeploy-sfn"
  assume_role_policy = local.states_trust
}

resource "aws_iam_role_policy" "redeploy_sfn" {
  name = "force-new-deployment"
  role = aws_iam_role.redeploy_sfn.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # This one service, nothing else: no task definition change, no scaling.
        Sid      = "RedeployTheService"
        Effect   = "Allow"
        Action   = "ecs:UpdateService"
        Resource = aws_ecs_service.this.id
      },
      {
        # Step Functions' log delivery and X-Ray APIs take no resource (AWS documents "*" for them).
        Sid    = "DeliverLogsAndTraces"
        Effect = "Allow"
        Action = [
          "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
          "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        ]
        Resource = "*"
      },
    ]
  })
}
