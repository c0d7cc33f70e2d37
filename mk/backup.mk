# Backups and restores (docs/operations.md, ADR 0090). SQLite: `revwallet backup --to FILE` / `revwallet restore
# --from FILE`. Docker Compose: the revwallet-backup service dumps PostgreSQL on a schedule; these targets take
# one now and restore one. Docker cannot run on the development machine: the restore drill runs where it can.

BACKUP_DIR  ?= backups
COMPOSE_BACKUP := docker compose exec -T revwallet-backup /bin/sh /usr/local/bin/pg-backup.sh

.PHONY: backup restore

backup: ## Compose: a PostgreSQL backup now (pg_dump custom format) in the backup volume, copied to ./backups/
	@mkdir -p $(BACKUP_DIR)
	@out=$$($(COMPOSE_BACKUP) once) || { echo "backup: FAILED: pg_dump in revwallet-backup (is the stack up? make up)" >&2; exit 1; }; \
	echo "$$out"; \
	file=$$(printf '%s\n' "$$out" | sed -n 's/.*backup written: \([^ ]*\) .*/\1/p'); \
	docker compose exec -T revwallet-backup cat "$$file" >"$(BACKUP_DIR)/$$(basename "$$file")" \
		|| { echo "backup: FAILED: copying $$file out of the backup volume" >&2; exit 1; }; \
	echo "backup: copied to $(BACKUP_DIR)/$$(basename "$$file") -- keep a copy off this machine"

restore: ## Compose: restore FILE=backups/revwallet-....dump into a new database, switch the API to it, audit
	@test -n "$(FILE)" && test -f "$(FILE)" || { echo "restore: usage: make restore FILE=backups/revwallet-YYYYMMDDTHHMMSSZ.dump" >&2; exit 1; }
	@# Into a new database first, while the API keeps serving the current one.
	docker compose exec -T revwallet-backup sh -c 'cat >/var/lib/postgresql/data/restore.dump' <"$(FILE)"
	$(COMPOSE_BACKUP) restore /var/lib/postgresql/data/restore.dump \
		|| { echo "restore: FAILED: pg_restore (nothing was switched; the service still runs on its database)" >&2; exit 1; }
	@# The switch renames databases, which needs them idle: the API stops for these seconds.
	docker compose stop revwallet-api
	$(COMPOSE_BACKUP) switch \
		|| { docker compose start revwallet-api; echo "restore: FAILED: switching databases (the service is back on its old database)" >&2; exit 1; }
	docker compose up -d --wait revwallet-api nginx
	@docker compose exec -T revwallet-api /usr/local/bin/revwallet audit \
		|| { echo "restore: AUDIT FAILED: the restored ledger is inconsistent. The previous database is kept as <db>_before_<time>; docs/operations.md says how to switch back" >&2; exit 1; }
	@echo "restore: done; the service runs on the restored database and its audit is clean"
