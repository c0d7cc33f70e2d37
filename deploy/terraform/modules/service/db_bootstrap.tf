# One-off bootstrap of the database roles (ADR 0045): a task definition, never a service. Run it once after
# the first apply, and after any change to db-bootstrap.sql.tftpl (docs/aws.md):
#   aws ecs run-task --cluster <cluster> --task-definition <name>-db-bootstrap --launch-type FARGATE ...
# It is the only thing that logs in as the master user, with a role of its own that can read the master
# secret; the service's execution role cannot.

locals {
  db_bootstrap_sql = templatefile("${path.module}/db-bootstrap.sql.tftpl", {
    owner    = "${var.db_app_username}_owner"
    app      = var.db_app_username
    database = var.db_name
  })
}

resource "aws_iam_role" "db_bootstrap_execution" {
  name               = "${var.name}-db-bootstrap-execution"
  assume_role_policy = local.ecs_tasks_trust
}

resource "aws_iam_role_policy" "db_bootstrap_execution" {
  name = "start-db-bootstrap-task"
  role = aws_iam_role.db_bootstrap_execution.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadTheMasterSecret"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = var.db_master_secret_arn
      },
      {
        Sid      = "DecryptTheMasterSecret"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = var.kms_key_arn
        Condition = {
          StringLike = { "kms:ViaService" = ["secretsmanager.*.amazonaws.com"] }
        }
      },
      {
        Sid      = "WriteBootstrapLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.service.arn}:log-stream:*"
      },
    ]
  })
}

resource "aws_ecs_task_definition" "db_bootstrap" {
  family                   = "${var.name}-db-bootstrap"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.db_bootstrap_execution.arn
  # No task role: psql calls no AWS API.

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([{
    name      = "db-bootstrap"
    image     = var.db_bootstrap_image
    essential = true
    # The image's postgres user; psql writes nothing, so the root filesystem stays read-only.
    user                   = "postgres"
    readonlyRootFilesystem = true
    privileged             = false
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
    entryPoint             = ["sh", "-c"]
    command                = ["printf '%s' \"$BOOTSTRAP_SQL\" | psql --no-psqlrc --echo-errors"]
    environment = [
      { name = "PGHOST", value = var.db_host },
      { name = "PGPORT", value = tostring(var.db_port) },
      { name = "PGDATABASE", value = var.db_name },
      { name = "PGSSLMODE", value = "require" },
      { name = "BOOTSTRAP_SQL", value = local.db_bootstrap_sql },
    ]
    secrets = [
      { name = "PGUSER", valueFrom = "${var.db_master_secret_arn}:username::" },
      { name = "PGPASSWORD", valueFrom = "${var.db_master_secret_arn}:password::" },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "db-bootstrap"
      }
    }
  }])
}
