# The Rust service: formatting, lints, and the test suite on SQLite and PostgreSQL.

# A PostgreSQL server where tests may create and drop their own databases. Unset: `make test` starts the
# machine's Debian cluster (pg-up) and uses the role it creates.
LOCAL_POSTGRES_URL := postgres://revwallet_test:revwallet_test@127.0.0.1:5432/postgres
PG_CLUSTER         ?= 15 main

.PHONY: deps-rust fmt-check clippy build release test pg-up deny
deps-rust: ## check the Rust toolchain and install cargo-nextest if missing
	@command -v cargo >/dev/null || { echo "FAILED: cargo is not installed (install Rust stable with rustup)"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
	@# The backup tests run pg_dump and pg_restore against the test server.
	@$(call apt_need,pg_restore,postgresql-client)

fmt-check: ## cargo fmt --check
	@cargo fmt --all -- --check || { echo "FAILED: code is not formatted; run cargo fmt"; exit 1; }

clippy: ## cargo clippy on every target, warnings are errors
	@cargo clippy --all-targets --locked -- -D warnings || { echo "FAILED: clippy found problems (above)"; exit 1; }

build: ## debug build of the binary (used by the stack and UI tests)
	@cargo build --locked

release: ## optimised build: target/release/revwallet
	@cargo build --release --locked

pg-up: ## start the machine's PostgreSQL and create the test role (idempotent)
	@command -v pg_ctlcluster >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@pg_ctlcluster --skip-systemctl-redirect $(PG_CLUSTER) start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect $(PG_CLUSTER) status >/dev/null \
		|| { echo "FAILED: could not start PostgreSQL cluster $(PG_CLUSTER)"; exit 1; }
	@for _ in $$(seq 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
	@su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname = 'revwallet_test'\"" | grep -q 1 \
		|| su postgres -c "psql -qc \"create role revwallet_test login createdb password 'revwallet_test'\""

# Postgres is required here: the tests fail (rather than skip) when no server is configured.
test: ## the whole Rust test suite, on SQLite and PostgreSQL (starts local PostgreSQL when none is given)
	@if [ -z "$${REVWALLET_TEST_POSTGRES_URL:-}" ]; then $(MAKE) --no-print-directory pg-up; fi
	@REVWALLET_TEST_POSTGRES_URL="$${REVWALLET_TEST_POSTGRES_URL:-$(LOCAL_POSTGRES_URL)}" REVWALLET_REQUIRE_POSTGRES=1 \
		cargo nextest run --locked --no-fail-fast || { echo "FAILED: Rust tests (above)"; exit 1; }

deny: ## cargo-deny: advisories, licenses, sources and bans (advisories need the network: GitHub Actions runs them)
	@command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
	@cargo deny --log-level error check $(DENY_CHECKS) || { echo "FAILED: cargo-deny (above)"; exit 1; }
