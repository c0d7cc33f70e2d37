# revwallet — every CI stage is a target here that a person can also run alone.
# Area-specific targets live in mk/*.mk (terraform, k8s, stack, observability, workflows).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

include $(sort $(wildcard mk/*.mk))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'
