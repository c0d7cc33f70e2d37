#!/bin/sh
# revwallet's PostgreSQL backups, run in the revwallet-backup service of compose.yaml (the database's own pinned
# postgres image, so pg_dump matches the server's major version). docs/operations.md, ADR 0090.
#
#   pg-backup.sh schedule        a backup now, then one every BACKUP_INTERVAL_SECONDS, keeping BACKUP_KEEP
#   pg-backup.sh once            one backup now; prints its path
#   pg-backup.sh restore FILE    FILE (a pg_dump custom archive) into a new database, audited by the caller
#                                after `switch`; the current database is left untouched
#   pg-backup.sh switch [NAME]   renames the current database to DB_before_<time> and NAME (DB_restored) into its place
#
# Connection from the libpq environment (PGHOST, PGUSER, PGPASSWORD, PGDATABASE). Backups are custom-format
# archives written as FILE.partial and renamed when complete, so a listed .dump is always whole.
set -eu

dir=${BACKUP_DIR:-/var/lib/postgresql/data}
interval=${BACKUP_INTERVAL_SECONDS:-3600}
keep=${BACKUP_KEEP:-48}

log() { printf '%s pg-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

backup_once() {
    file="$dir/revwallet-$(date -u +%Y%m%dT%H%M%SZ).dump"
    pg_dump --format=custom --file "$file.partial"
    mv "$file.partial" "$file"
    # The health check reads this file's age: the service is healthy while backups keep succeeding.
    touch "$dir/last-success"
    # Retention: the newest $keep archives stay (names sort by time).
    find "$dir" -maxdepth 1 -name 'revwallet-*.dump' | sort -r | tail -n +"$((keep + 1))" | while read -r old; do
        rm -f -- "$old"
    done
    log "backup written: $file ($(wc -c <"$file") bytes); last ledger entry: $(last_entry "$PGDATABASE")"
}

last_entry() {
    psql -d "$1" -qtAX -c "select coalesce((select '#' || id || ' at ' || created_at from transactions order by id desc limit 1), 'none')"
}

case "${1:-}" in
    schedule)
        while true; do
            # A failed run is logged and retried next time; the stale last-success turns the health check red.
            backup_once || log "backup FAILED (see above); next attempt in ${interval}s"
            sleep "$interval"
        done
        ;;
    once)
        backup_once
        ;;
    restore)
        file=${2:?usage: pg-backup.sh restore FILE}
        pg_restore --list "$file" | grep -q 'TABLE public transactions' \
            || { log "$file is not a revwallet backup (no ledger table in the archive)"; exit 1; }
        target="${PGDATABASE}_restored"
        psql -d postgres -qtAX -c "select 1 from pg_database where datname = '$target'" | grep -q 1 \
            && { log "database $target exists (an earlier restore?); drop it or switch to it first"; exit 1; }
        createdb "$target"
        # One transaction: a failed restore leaves an empty database to drop, never a half one.
        pg_restore --exit-on-error --single-transaction --no-owner --no-privileges -d "$target" "$file"
        log "restored $file into database $target; last ledger entry: $(last_entry "$target")"
        ;;
    switch)
        name=${2:-${PGDATABASE}_restored}
        old="${PGDATABASE}_before_$(date -u +%Y%m%dT%H%M%SZ)"
        # Renaming needs both databases idle: the caller stops revwallet-api first.
        psql -d postgres -v ON_ERROR_STOP=1 -qX \
            -c "alter database \"$PGDATABASE\" rename to \"$old\"" \
            -c "alter database \"$name\" rename to \"$PGDATABASE\""
        log "database $PGDATABASE is now the restored one; the previous one is kept as $old"
        ;;
    *)
        echo "usage: pg-backup.sh schedule | once | restore FILE | switch [NAME]" >&2
        exit 2
        ;;
esac
