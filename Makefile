# revwallet — every CI stage is a target here that a person can also run alone.
# Each area's targets live in its own mk/*.mk (rust, ui, bench, stack, observability, k8s, terraform, workflows);
# mk/00-tools.mk, included first, pins the tool versions and defines the shared helpers (apt_need, pip_need, fail).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

include $(sort $(wildcard mk/*.mk))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

# Every area's tools; each deps-* target is idempotent and quick when things are installed.
.PHONY: deps
deps: ## install every tool the checks need
	@$(MAKE) --no-print-directory $(filter deps-%,$(shell grep -hoE '^deps-[a-z0-9-]+:' $(MAKEFILE_LIST) | tr -d ':' | sort -u))
