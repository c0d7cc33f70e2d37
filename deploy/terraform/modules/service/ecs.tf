# ECS cluster, task definition and Fargate service.

data "aws_region" "current" {}

locals {
  container_name = "revwallet"
  # By digest, never by tag: the task definition names exactly one build.
  image = "${aws_ecr_repository.this.repository_url}@${var.image_digest}"
  # Injected by ECS at start from the application's own secret (rotated by alternating users, ADR 0045);
  # never the master user's, never in the task definition itself.
  # The first admin API key comes the same way, as the secret's whole value (revwallet ensures it at start).
  container_secrets = [
    { name = "DB_USERNAME", valueFrom = "${var.db_secret_arn}:username::" },
    { name = "DB_PASSWORD", valueFrom = "${var.db_secret_arn}:password::" },
    { name = "REVWALLET_BOOTSTRAP_ADMIN_KEY", valueFrom = var.bootstrap_admin_key_secret_arn },
  ]
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "service" {
  name              = "/ecs/${var.name}/revwallet"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The root filesystem is read-only; this task-local scratch volume is the only writable path, mounted on the
  # image's (empty, world-writable) /tmp.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name      = local.container_name
    image     = local.image
    essential = true
    user      = var.container_user
    # Read-only root and no Linux capabilities: the binary only needs to open a socket above 1024.
    readonlyRootFilesystem = true
    privileged             = false
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    portMappings = [{
      name          = "http"
      containerPort = var.container_port
      hostPort      = var.container_port
      protocol      = "tcp"
      appProtocol   = "http"
    }]
    environment = [
      # Listen on every interface of the task ENI (the binary defaults to loopback).
      { name = "REVWALLET_LISTEN", value = "0.0.0.0:${var.container_port}" },
      { name = "REVWALLET_LOG_FORMAT", value = "json" },
      { name = "RUST_LOG", value = var.rust_log },
      { name = "DB_HOST", value = var.db_host },
      { name = "DB_PORT", value = tostring(var.db_port) },
      { name = "DB_NAME", value = var.db_name },
      # libpq-style setting honoured by sqlx: encrypt the connection (the server refuses plain text too).
      { name = "PGSSLMODE", value = "require" },
    ]
    secrets = local.container_secrets
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = local.container_name
      }
    }
    # Liveness, as in the Dockerfile's HEALTHCHECK (ECS ignores that one): the binary GETs its own /healthz.
    # Readiness (/readyz, which needs the database) is the load balancer's check.
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/revwallet", "healthcheck"]
      interval    = 10
      timeout     = 3
      startPeriod = 30
      retries     = 3
    }
    # The service drains in-flight requests on SIGTERM; give it time before SIGKILL.
    stopTimeout = 30
  }])
}

resource "aws_ecs_service" "this" {
  name            = "revwallet"
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.desired_count
  launch_type     = "FARGATE"
  # LATEST tracks the current Fargate platform (security patches) rather than freezing an old one.
  platform_version = "LATEST"

  # Roll forward with full capacity; a deployment whose tasks never get healthy is rolled back.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Migrations run at start-up; give a new task time before failed health checks count.
  health_check_grace_period_seconds = 60
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false
  # Apply returns only when the rollout settled, so a pipeline sees a failed deployment.
  wait_for_steady_state = true

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.app_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = var.container_port
  }

  lifecycle {
    # Autoscaling owns the running count after creation.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener_rule.public_paths, aws_iam_role_policy.execution]
}
