#!/usr/bin/env python3
"""Reads `terraform show -json <plan>` on stdin; fails unless the plan creates ADR 0045's credential strategy.

Run by `make terraform-check` on the offline dev and prod plans: the app's own secret, its alternating-users
rotation (AWS's function) against the master secret, the redeploy on RotationSucceeded, the bootstrap task,
and an ECS service whose task definition does not read the master secret.
"""

import json
import sys

REQUIRED = {
    "module.database.aws_secretsmanager_secret.app": "the application's own secret",
    "module.database.aws_secretsmanager_secret_rotation.app": "its rotation schedule",
    "module.database.aws_serverlessapplicationrepository_cloudformation_stack.rotation": "the alternating-users rotation function",
    "module.service.aws_cloudwatch_event_rule.db_secret_rotated": "the RotationSucceeded rule",
    "module.service.aws_cloudwatch_event_target.redeploy": "its target",
    "module.service.aws_sfn_state_machine.redeploy": "the redeploy state machine",
    "module.service.aws_iam_role_policy.redeploy_sfn": "the state machine's permission to redeploy the service",
    "module.service.aws_ecs_task_definition.db_bootstrap": "the one-off bootstrap task",
}


def main() -> int:
    plan = json.load(sys.stdin)
    changes = {c["address"]: c for c in plan.get("resource_changes", [])}
    problems = [f"missing from the plan: {address} ({why})" for address, why in REQUIRED.items()
                if address not in changes or "create" not in changes[address]["change"]["actions"]]
    stack = changes.get("module.database.aws_serverlessapplicationrepository_cloudformation_stack.rotation")
    if stack and not stack["change"]["after"]["application_id"].endswith("SecretsManagerRDSPostgreSQLRotationMultiUser"):
        problems.append("the rotation function is not AWS's alternating-users PostgreSQL application")
    rotation = changes.get("module.database.aws_secretsmanager_secret_rotation.app")
    if rotation and rotation["change"]["after"].get("rotate_immediately") is not False:
        problems.append("the first rotation must wait for the bootstrap step (rotate_immediately = false)")
    # The references the plan records: the service's task definition must not point at the master secret.
    config = plan.get("configuration", {}).get("root_module", {})
    service_call = config.get("module_calls", {}).get("service", {})
    refs = service_call.get("expressions", {}).get("db_secret_arn", {}).get("references", [])
    if "module.database.app_secret_arn" not in refs:
        problems.append(f"the service's db_secret_arn must be module.database.app_secret_arn, not {refs}")
    for problem in problems:
        print(f"plan_has_rotation: {problem}", file=sys.stderr)
    if not problems:
        print(f"  credential rotation: all {len(REQUIRED)} resources planned; the service reads the app's secret")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
