# Service module with a mocked AWS provider: private tasks, image by digest, the runtime contract,
# least-privilege execution role, load balancer and autoscaling; the app's own database secret, the redeploy on
# rotation and the one-off bootstrap task that alone reads the master secret.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                  = "revwallet-test"
  vpc_id                = "vpc-test"
  public_subnet_ids     = ["subnet-public-a", "subnet-public-b"]
  private_subnet_ids    = ["subnet-private-a", "subnet-private-b"]
  alb_security_group_id = "sg-alb"
  app_security_group_id = "sg-app"
  kms_key_arn           = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  image_digest          = "sha256:3f1c2b0e9d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
  db_host               = "revwallet-test.abcdefghijkl.eu-west-1.rds.amazonaws.com"
  db_port               = 5432
  db_name               = "revwallet"
  db_secret_arn         = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:revwallet-test/db/app-AbCdEf"
  db_master_secret_arn  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock-AbCdEf"

  bootstrap_admin_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:revwallet-test/revwallet/bootstrap-admin-key-AbCdEf"
}

run "tasks_run_in_private_subnets_without_public_ips" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].assign_public_ip == false
    error_message = "tasks must not get public IPs"
  }

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].subnets == toset(var.private_subnet_ids)
    error_message = "tasks must run in the private subnets only"
  }

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].security_groups == toset([var.app_security_group_id])
    error_message = "tasks must use only the app security group"
  }

  assert {
    condition     = aws_ecs_service.this.launch_type == "FARGATE" && aws_ecs_service.this.desired_count == 2
    error_message = "expected two Fargate tasks"
  }

  assert {
    condition     = aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
    error_message = "failed deployments must roll back"
  }

  assert {
    condition     = one([for s in aws_ecs_cluster.this.setting : s.value if s.name == "containerInsights"]) == "enabled"
    error_message = "Container Insights must be on"
  }
}

run "task_runs_the_image_by_digest_with_the_runtime_contract" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].image == "${aws_ecr_repository.this.repository_url}@${var.image_digest}"
    error_message = "the image must be the repository's image at the given digest"
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].user == "10001:10001" &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem == true &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].privileged == false
    )
    error_message = "the container must run as uid 10001 with a read-only root filesystem"
  }

  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value
      if contains(["REVWALLET_LISTEN", "DB_HOST", "DB_PORT", "DB_NAME"], e.name)
      } == {
      REVWALLET_LISTEN = "0.0.0.0:8080"
      DB_HOST          = var.db_host
      DB_PORT          = "5432"
      DB_NAME          = "revwallet"
    }
    error_message = "listen address and database location must come from the variables"
  }

  assert {
    condition = {
      for s in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets : s.name => s.valueFrom
      } == {
      DB_USERNAME                   = "${var.db_secret_arn}:username::"
      DB_PASSWORD                   = "${var.db_secret_arn}:password::"
      REVWALLET_BOOTSTRAP_ADMIN_KEY = var.bootstrap_admin_key_secret_arn
    }
    error_message = "credentials must come from the app's database secret's username and password keys and the bootstrap key's secret, and nothing else"
  }

  assert {
    condition = alltrue([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : !contains(["DB_USERNAME", "DB_PASSWORD", "DATABASE_URL", "REVWALLET_BOOTSTRAP_ADMIN_KEY"], e.name)
    ])
    error_message = "credentials must never be plain environment variables"
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration.logDriver == "awslogs" &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration.options["awslogs-group"] == aws_cloudwatch_log_group.service.name &&
      aws_cloudwatch_log_group.service.retention_in_days == 365
    )
    error_message = "logs must go to the service's CloudWatch log group, which has a retention"
  }

  assert {
    condition = (
      aws_ecs_task_definition.this.execution_role_arn == aws_iam_role.execution.arn &&
      aws_ecs_task_definition.this.task_role_arn == aws_iam_role.task.arn
    )
    error_message = "the app runs with its own task role, not the execution role"
  }
}

run "execution_role_reads_only_that_secret_and_pulls_only_that_repository" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Resource
      if length(regexall("secretsmanager:", jsonencode(s.Action))) > 0
    ] == [var.db_secret_arn, var.bootstrap_admin_key_secret_arn]
    error_message = "the execution role may read the database secret and the bootstrap admin key, and no other"
  }

  assert {
    condition = alltrue([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name != "REVWALLET_AUTH" || e.value == "api-key"
    ])
    error_message = "the service must never run with access control off"
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Resource
      if length(regexall("ecr:(BatchGetImage|GetDownloadUrlForLayer|BatchCheckLayerAvailability)", jsonencode(s.Action))) > 0
    ] == [aws_ecr_repository.this.arn]
    error_message = "the execution role may pull from this repository only"
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Action if s.Resource == "*"
    ] == ["ecr:GetAuthorizationToken"]
    error_message = "only the registry login (which has no resource) may use a wildcard resource"
  }

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Effect == "Allow" && !can(regex("\\*$", jsonencode(s.Action)))])
    error_message = "no wildcard actions"
  }
}

run "load_balancer_serves_http_and_probes_readyz" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition     = !aws_lb.this.internal && aws_lb.this.subnets == toset(var.public_subnet_ids) && aws_lb.this.security_groups == toset([var.alb_security_group_id])
    error_message = "the load balancer is public, in the public subnets, with its own security group"
  }

  assert {
    condition = (
      aws_lb_target_group.this.health_check[0].path == "/readyz" &&
      aws_lb_target_group.this.port == 8080 && aws_lb_target_group.this.target_type == "ip"
    )
    error_message = "targets are the tasks' port 8080, probed on /readyz"
  }

  assert {
    condition     = length(aws_lb_listener.http) == 1 && length(aws_lb_listener.https) == 0 && length(aws_lb_listener.http_redirect) == 0
    error_message = "without a certificate there is one plain HTTP listener"
  }

  assert {
    condition     = startswith(output.url, "http://")
    error_message = "the URL is plain HTTP without a certificate"
  }

  assert {
    condition = (
      aws_lb_listener.http[0].default_action[0].type == "fixed-response" &&
      aws_lb_listener.http[0].default_action[0].fixed_response[0].status_code == "404"
    )
    error_message = "paths that are not public get a 404 from the load balancer"
  }

  assert {
    condition = (
      aws_lb_listener_rule.public_paths.listener_arn == aws_lb_listener.http[0].arn &&
      aws_lb_listener_rule.public_paths.action[0].target_group_arn == aws_lb_target_group.this.arn &&
      one([for c in aws_lb_listener_rule.public_paths.condition : c.path_pattern[0].values]) == toset(["/", "/ui/*", "/static/*", "/wallet", "/wallet/*"])
    )
    error_message = "only /, /ui/, /static/ and /wallet reach the service (not /metrics, /healthz, /readyz)"
  }
}

run "https_and_redirect_when_a_certificate_is_given" {
  command = apply

  module {
    source = "./modules/service"
  }

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    domain_name     = "wallet.example.com"
  }

  # A distinct ARN for the HTTPS listener, so the rule's listener can be told apart from the redirect.
  override_resource {
    target = aws_lb_listener.https
    values = {
      arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/revwallet-mock/0123456789abcdef/443443443443"
    }
  }

  assert {
    condition     = length(aws_lb_listener.http) == 0 && aws_lb_listener.https[0].certificate_arn == var.certificate_arn
    error_message = "with a certificate, HTTPS serves and HTTP no longer forwards"
  }

  assert {
    condition = (
      aws_lb_listener.http_redirect[0].default_action[0].type == "redirect" &&
      aws_lb_listener.http_redirect[0].default_action[0].redirect[0].protocol == "HTTPS" &&
      aws_lb_listener.http_redirect[0].default_action[0].redirect[0].status_code == "HTTP_301"
    )
    error_message = "HTTP must redirect permanently to HTTPS"
  }

  assert {
    condition     = aws_lb_listener_rule.public_paths.listener_arn == aws_lb_listener.https[0].arn
    error_message = "with a certificate, the public paths are served over HTTPS only"
  }

  assert {
    condition     = output.url == "https://wallet.example.com"
    error_message = "the URL is the HTTPS domain"
  }
}

run "repository_scans_on_push_and_keeps_tags_immutable" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE" && aws_ecr_repository.this.image_scanning_configuration[0].scan_on_push
    error_message = "the repository must refuse tag overwrites and scan every push"
  }
}

run "autoscaling_tracks_cpu_and_requests" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition     = aws_appautoscaling_target.this.min_capacity == 2 && aws_appautoscaling_target.this.max_capacity >= 2
    error_message = "autoscaling keeps at least two tasks"
  }

  assert {
    condition = toset([
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type,
      aws_appautoscaling_policy.requests.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type,
    ]) == toset(["ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"])
    error_message = "scaling must track CPU and requests per target"
  }
}

run "a_tag_is_rejected" {
  command = plan

  module {
    source = "./modules/service"
  }

  variables {
    image_digest = "latest"
  }

  expect_failures = [var.image_digest]
}

run "a_tagged_image_reference_is_rejected" {
  command = plan

  module {
    source = "./modules/service"
  }

  variables {
    image_digest = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/revwallet-test:1.4.0"
  }

  expect_failures = [var.image_digest]
}

run "the_app_connects_as_its_own_role_never_the_master_user" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition = [
      for s in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets : s.valueFrom
      ] == [
      "${var.db_secret_arn}:username::", "${var.db_secret_arn}:password::", var.bootstrap_admin_key_secret_arn,
    ]
    error_message = "DB_USERNAME and DB_PASSWORD must come from the application's own secret"
  }

  assert {
    condition     = output.task_secret_arns == tolist([var.db_secret_arn, var.bootstrap_admin_key_secret_arn])
    error_message = "the service's container must read no secret but the application's and the bootstrap admin key"
  }

  assert {
    condition     = !strcontains(aws_iam_role_policy.execution.policy, var.db_master_secret_arn)
    error_message = "the service's execution role must not be able to read the master secret"
  }

  assert {
    condition     = !strcontains(aws_ecs_task_definition.this.container_definitions, var.db_master_secret_arn)
    error_message = "the service's task definition must not name the master secret"
  }
}

run "the_master_secret_is_read_only_by_the_one_off_bootstrap_task" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.db_bootstrap_execution.policy).Statement : s.Resource
      if length(regexall("secretsmanager:", jsonencode(s.Action))) > 0
    ] == [var.db_master_secret_arn]
    error_message = "the bootstrap task's execution role reads the master secret and nothing else"
  }

  assert {
    condition     = aws_iam_role.db_bootstrap_execution.arn != "" && aws_ecs_task_definition.db_bootstrap.execution_role_arn == aws_iam_role.db_bootstrap_execution.arn && aws_ecs_task_definition.db_bootstrap.task_role_arn == null
    error_message = "the bootstrap task runs with its own execution role and no task role"
  }

  assert {
    condition = alltrue([
      for needle in [
        "CREATE ROLE revwallet_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
        "CREATE ROLE revwallet_app_clone LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
        "ALTER ROLE revwallet_app SET role = 'revwallet_app_owner'",
        "ALTER ROLE revwallet_app_clone SET role = 'revwallet_app_owner'",
        "ALTER SCHEMA public OWNER TO revwallet_app_owner",
      ] : strcontains(one([for e in jsondecode(aws_ecs_task_definition.db_bootstrap.container_definitions)[0].environment : e.value if e.name == "BOOTSTRAP_SQL"]), needle)
    ])
    error_message = "the bootstrap SQL must create the two login roles (no superuser, role or database rights) running as the owner role"
  }

  assert {
    condition = [
      for s in jsondecode(aws_ecs_task_definition.db_bootstrap.container_definitions)[0].secrets : s.valueFrom
    ] == ["${var.db_master_secret_arn}:username::", "${var.db_master_secret_arn}:password::"]
    error_message = "the bootstrap task logs in as the master user"
  }
}

run "a_rotation_of_the_app_secret_redeploys_the_service" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.db_secret_rotated.event_pattern) == {
      source        = ["aws.secretsmanager"]
      "detail-type" = ["AWS Service Event via CloudTrail"]
      detail = {
        eventSource         = ["secretsmanager.amazonaws.com"]
        eventName           = ["RotationSucceeded"]
        additionalEventData = { SecretId = [var.db_secret_arn] }
      }
    }
    error_message = "the rule must match RotationSucceeded of the application's secret"
  }

  assert {
    condition     = aws_cloudwatch_event_target.redeploy.arn == aws_sfn_state_machine.redeploy.arn && aws_cloudwatch_event_target.redeploy.rule == aws_cloudwatch_event_rule.db_secret_rotated.name
    error_message = "the rule must start the redeploy state machine"
  }

  assert {
    condition = jsondecode(aws_sfn_state_machine.redeploy.definition).States.ForceNewDeployment.Parameters == {
      Cluster            = aws_ecs_cluster.this.arn
      Service            = aws_ecs_service.this.name
      ForceNewDeployment = true
    } && endswith(jsondecode(aws_sfn_state_machine.redeploy.definition).States.ForceNewDeployment.Resource, ":states:::aws-sdk:ecs:updateService")
    error_message = "the state machine must force a new deployment of this service"
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.redeploy_sfn.policy).Statement : s.Resource if s.Action == "ecs:UpdateService"
    ] == [aws_ecs_service.this.id]
    error_message = "the state machine may update this one service only"
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.redeploy_events.policy).Statement == [{
      Sid = "StartTheRedeploy", Effect = "Allow", Action = "states:StartExecution", Resource = aws_sfn_state_machine.redeploy.arn
    }]
    error_message = "EventBridge may only start this state machine"
  }
}

run "the_service_refuses_the_master_secret" {
  command = plan

  module {
    source = "./modules/service"
  }

  variables {
    db_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock-AbCdEf"
  }

  expect_failures = [var.db_master_secret_arn]
}

run "an_oversized_body_gets_the_apis_413_not_a_bare_403" {
  command = apply

  module {
    source = "./modules/service"
  }

  assert {
    condition = one([
      for r in aws_wafv2_web_acl.this.rule : [
        for o in r.statement[0].managed_rule_group_statement[0].rule_action_override : length(o.action_to_use[0].count) == 1
        if o.name == "SizeRestrictions_BODY"
      ] if r.name == "aws-common"
    ]) == [true]
    error_message = "the Common Rule Set's SizeRestrictions_BODY (8 KB) must only count"
  }

  assert {
    condition = alltrue([
      for r in aws_wafv2_web_acl.this.rule : r.action[0].block[0].custom_response[0].response_code == 413
      && r.action[0].block[0].custom_response[0].custom_response_body_key == "payload-too-large"
      && r.priority < 10 if r.name == "body-too-large"
    ]) && length([for r in aws_wafv2_web_acl.this.rule : r if r.name == "body-too-large"]) == 1
    error_message = "a rule ahead of the managed ones answers 413 with the API's problem JSON"
  }

  assert {
    condition = jsondecode(one([for b in aws_wafv2_web_acl.this.custom_response_body : b.content if b.key == "payload-too-large"])) == {
      type   = "about:blank", title = "Payload Too Large", status = 413, code = "payload_too_large",
      detail = "the request body is larger than 65536 bytes"
    }
    error_message = "the 413 body is the API's problem JSON with code payload_too_large"
  }

  assert {
    condition = alltrue([
      for r in aws_wafv2_web_acl.this.rule : alltrue(concat(
        [for n in ["65537", "65540", "65600", "66000", "70000", "99999", "100000", "1048576"] : can(regex(r.statement[0].regex_match_statement[0].regex_string, n))],
        [for n in ["0", "1", "8193", "65535", "65536", "9999", "06553"] : !can(regex(r.statement[0].regex_match_statement[0].regex_string, n))],
      )) if r.name == "body-too-large"
    ])
    error_message = "the Content-Length pattern must match exactly the values above 65536"
  }
}

run "the_bootstrap_key_must_be_a_secrets_manager_secret" {
  command = plan

  module {
    source = "./modules/service"
  }

  variables {
    bootstrap_admin_key_secret_arn = "rw_0123456789abcdef0123456789abcdef"
  }

  expect_failures = [var.bootstrap_admin_key_secret_arn]
}
