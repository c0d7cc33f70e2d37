# The Rust service: formatting, lints, and the test suite on SQLite and PostgreSQL.

# The PostgreSQL server where tests may create and drop their own databases, defined here only and exported, so
# every recipe (make test, stack-test, bench) and .ci/run's stages read the same URL. Set
# REVWALLET_TEST_POSTGRES_URL to use your own server; unset, it is the machine's Debian cluster, which `make test`
# starts (pg-up) with the role below.
ifeq ($(strip $(REVWALLET_TEST_POSTGRES_URL)),)
override REVWALLET_TEST_POSTGRES_URL := postgres://revwallet_test:revwallet_test@127.0.0.1:5432/postgres
TEST_POSTGRES_IS_LOCAL := yes
endif
export REVWALLET_TEST_POSTGRES_URL
PG_CLUSTER         ?= 15 main

.PHONY: deps-rust fmt-check clippy build release test pg-up deny
deps-rust: ## check the Rust toolchain and install cargo-nextest if missing
	@command -v cargo >/dev/null || $(call fail,cargo is not installed (install Rust stable with rustup))
	@rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
	@# The backup tests run pg_dump and pg_restore against the test server.
	@$(call apt_need,pg_restore,postgresql-client)

fmt-check: ## cargo fmt --check
	@cargo fmt --all -- --check || $(call fail,code is not formatted; run cargo fmt)

clippy: ## cargo clippy on every target, warnings are errors
	@cargo clippy --all-targets --locked -- -D warnings || $(call fail,clippy found problems (above))

build: ## debug build of the binary (used by the stack and UI tests)
	@cargo build --locked

release: ## optimised build: target/release/revwallet
	@cargo build --release --locked

pg-up: ## start the machine's PostgreSQL and create the test role (idempotent)
	@$(call apt_need,pg_ctlcluster,postgresql)
	@pg_ctlcluster --skip-systemctl-redirect $(PG_CLUSTER) start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect $(PG_CLUSTER) status >/dev/null \
		|| $(call fail,could not start PostgreSQL cluster $(PG_CLUSTER))
	@for _ in $$(seq 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
	@su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname = 'revwallet_test'\"" | grep -q 1 \
		|| su postgres -c "psql -qc \"create role revwallet_test login createdb password 'revwallet_test'\""

# Postgres is required here: the tests fail (rather than skip) when no server is configured.
test: ## the whole Rust test suite, on SQLite and PostgreSQL (starts local PostgreSQL when none is given)
	@if [ -n "$(TEST_POSTGRES_IS_LOCAL)" ]; then $(MAKE) --no-print-directory pg-up; fi
	@REVWALLET_REQUIRE_POSTGRES=1 cargo nextest run --locked --no-fail-fast || $(call fail,Rust tests (above))

deny: ## cargo-deny: advisories, licenses, sources and bans (advisories need the network: GitHub Actions runs them)
	@command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
	@cargo deny --log-level error check $(DENY_CHECKS) || $(call fail,cargo-deny (above))
