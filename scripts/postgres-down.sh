#!/usr/bin/env bash
# Stop the throwaway cluster that scripts/postgres-up.sh started and remove its data dir.
# Safe to run twice; refuses to delete a directory that postgres-up.sh did not create.
set -euo pipefail

DATA_DIR="${PGDATA_DIR:-/tmp/conversation-assets-pg}"
PGDATA="$DATA_DIR/data"

log() { printf 'postgres-down: %s\n' "$*" >&2; }
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

[[ -e $DATA_DIR ]] || { log "nothing at $DATA_DIR"; exit 0; }
[[ -f $DATA_DIR/.conversation-assets-pg ]] ||
  { log "$DATA_DIR was not made by postgres-up.sh; leaving it alone"; exit 1; }

pg_ctl=$(printf '%s\n' /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
if [[ -f $PGDATA/postmaster.pid && -x $pg_ctl ]]; then
  log "stopping the server in $PGDATA"
  as_pg "$pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >&2 || log "pg_ctl stop failed (already stopped?)"
fi
rm -rf -- "$DATA_DIR"
log "removed $DATA_DIR"
