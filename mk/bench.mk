# Performance and resilience harness (bench/, docs/performance.md). Not part of `make test`: the figures depend on
# the machine, so nothing here asserts a timing; `make bench` reports the ratios we track.

BENCH_PYTHON ?= python3
# The optimised binary is what we measure; a debug build is enough to check behaviour under faults.
BENCH_BIN            ?= $(or $(REVWALLET_BIN),target/release/revwallet)
BENCH_RESILIENCE_BIN ?= $(or $(REVWALLET_BIN),target/debug/revwallet)

.PHONY: deps-bench bench bench-check bench-resilience

deps-bench: deps-pytest ## install wrk, pgbench/psql and the PostgreSQL server binaries (initdb) for the bench
	@$(call apt_need,python3,python3)
	@$(call apt_need,wrk,wrk)
	@$(call apt_need,pgbench,postgresql-client)
	@$(call apt_need,pg_isready,postgresql-client)
	@# initdb is not on PATH in Debian's layout: the PostgreSQL-restart run starts a private cluster with it.
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@for tool in wrk pgbench psql pg_isready; do \
		command -v $$tool >/dev/null 2>&1 || $(call fail,$$tool is still missing after installing); \
	done

bench: release pg-up ## build release, measure revwallet (PostgreSQL, SQLite) against pgbench, run the fault runs; writes bench/results/
	@REVWALLET_BIN='$(BENCH_BIN)' $(BENCH_PYTHON) bench/run.py \
		|| $(call fail,a measurement or a resilience run failed (see above; raw output in bench/results/tmp/))

bench-check: ## the pgbench scripts still carry revwallet's exact SQL (a Rust test); harness unit tests (no database, no timing)
	@cargo nextest run --locked --lib -E 'test(pgbench)' \
		|| $(call fail,bench/pgbench no longer matches src/store (run REVWALLET_WRITE_PGBENCH=1 cargo test pgbench and review))
	@$(BENCH_PYTHON) -m pytest -p no:cacheprovider -q bench/tests \
		|| $(call fail,the harness unit tests failed (see above))
	@echo "bench-check: OK"

bench-resilience: build pg-up ## only the fault runs (kill -9, PostgreSQL restart, SIGTERM, clients hanging up) on the debug build, ~1.5 minutes
	@REVWALLET_BIN='$(BENCH_RESILIENCE_BIN)' BENCH_ONLY=resilience $(BENCH_PYTHON) bench/run.py \
		|| $(call fail,an acknowledged operation was lost$(comma) the audit was not clean$(comma) or recovery failed (see above))

.PHONY: bench-statement
bench-statement: build pg-up ## a 200,000-entry statement streams with flat server memory (peak RSS vs a 10-entry one) and equals the ledger; ~1 minute
	@REVWALLET_BIN='$(BENCH_RESILIENCE_BIN)' timeout 600 $(BENCH_PYTHON) bench/statement.py \
		|| $(call fail,the statement bench failed (see above; server log in bench/results/tmp/statement-server.log))
