# revwallet — every CI stage is a target here that a person can also run alone.
# Area-specific targets live in mk/*.mk (terraform, k8s, stack, observability, workflows).
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
