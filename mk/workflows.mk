# GitHub Actions: the workflows and dependabot.yml are code too, checked offline before they ever run.
# check-jsonschema validates against GitHub's published schemas (vendored in the wheel, so no network);
# zizmor --offline audits for template injection, over-broad permissions, credential persistence, unpinned
# actions and the like; tests/deploy/test_workflows.py checks what neither tool knows: every action pinned to
# a full commit SHA with its version in a comment, `permissions` everywhere, and every project check a
# workflow runs is a make target that exists (the Makefile is the one source of truth for CI and people).
WORKFLOW_FILES  := $(sort $(wildcard .github/workflows/*.yml))
DEPENDABOT_FILE := .github/dependabot.yml
# Where the compose end-to-end checks point (nginx publishes port 80 on the host).
E2E_BASE_URL    ?= http://localhost

.PHONY: deps-workflows workflows-check compose-e2e deps-image-scan image-scan
deps-workflows: deps-pytest deps-check-jsonschema ## install check-jsonschema, zizmor, pytest and pyyaml (pinned) for workflows-check
	@$(call pip_need,zizmor,$(ZIZMOR_VERSION))

workflows-check: ## validate workflows + dependabot.yml against GitHub's schemas, zizmor --offline (medium+), workflow pin/permission/make-target tests
	@test -n "$(WORKFLOW_FILES)" || $(call fail,no workflow files under .github/workflows)
	@check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOW_FILES) \
		|| $(call fail,a workflow does not match the GitHub workflow schema (see above))
	@check-jsonschema --builtin-schema vendor.dependabot $(DEPENDABOT_FILE) \
		|| $(call fail,$(DEPENDABOT_FILE) does not match the Dependabot schema (see above))
	@zizmor --offline --min-severity medium --strict-collection --no-progress .github \
		|| $(call fail,zizmor found medium/high findings; fix them or justify inline with '# zizmor: ignore[rule] <reason>')
	@python3 -m pytest -q -p no:cacheprovider tests/deploy/test_workflows.py \
		|| $(call fail,tests/deploy/test_workflows.py (SHA pins$(comma) permissions or make targets; see above))
	@echo "workflows-check: OK ($(words $(WORKFLOW_FILES)) workflows and dependabot.yml)"

compose-e2e: ## end-to-end checks against a running Compose stack (API via nginx with its key, basic auth, Grafana data sources, Loki lines); needs E2E_ADMIN_USER/E2E_ADMIN_PASSWORD
	@# The API key: E2E_API_KEY, else the bootstrap key `make up` wrote to .env (read here, never printed).
	@E2E_API_KEY="$${E2E_API_KEY:-$$(sed -n 's/^REVWALLET_BOOTSTRAP_ADMIN_KEY=//p' .env 2>/dev/null)}" \
		python3 .github/scripts/compose_e2e.py --base-url '$(E2E_BASE_URL)' \
		|| $(call fail,the running stack at $(E2E_BASE_URL) failed an end-to-end check (see above))

deps-image-scan: deps-trivy ## install trivy (pinned in mk/00-tools.mk) for image-scan

image-scan: ## scan IMAGE (a local or pushed image) with trivy; fails on any CRITICAL vulnerability
	@test -n "$(IMAGE)" || $(call fail,set IMAGE=<image reference>)
	@trivy image --scanners vuln --severity CRITICAL --exit-code 1 --no-progress '$(IMAGE)' \
		|| $(call fail,$(IMAGE) has CRITICAL vulnerabilities (or could not be scanned); see the table above)
