#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the Postgres tests and the demo.
#
#   eval "$(scripts/postgres-up.sh)"     # exports PG*, DAGSTER_PG_* and dlt's credentials
#   scripts/postgres-down.sh             # stops it and removes its data dir
#
# Idempotent: a second call reuses the running cluster and prints the same lines.
# Installs Debian's server with apt-get when none is under /usr/lib/postgresql/*/bin.
# Progress goes to stderr, only `export` lines go to stdout.
# Exit 3 (last stderr line = the reason) when the server cannot be installed, so a
# caller can skip its Postgres tests with that reason.
#
# Settings: PGDATA_DIR (default /tmp/conversation-assets-pg); PGPORT (default: a free
# loopback port; eval'ing the output sets it, so a later call reuses that port);
# CA_PG_USER / CA_PG_PASSWORD (default conversation_assets; letters, digits and _ only,
# since they go into a URL unescaped).
set -euo pipefail

DATA_DIR="${PGDATA_DIR:-/tmp/conversation-assets-pg}"
PGDATA="$DATA_DIR/data"
ROLE="${CA_PG_USER:-conversation_assets}"
PASSWORD="${CA_PG_PASSWORD:-conversation_assets}"
MARKER="$DATA_DIR/.conversation-assets-pg"
SUPER=postgres
[[ $EUID -eq 0 ]] || SUPER=$(id -un)

log() { printf 'postgres-up: %s\n' "$*" >&2; }
die() { printf 'postgres-up: %s\n' "$1" >&2; exit "${2:-1}"; }

# The newest installed major version's bin dir, or nothing.
pg_bindir() {
  local initdb
  initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  [[ -x "$initdb" ]] && dirname "$initdb"
  return 0
}

# initdb and the server refuse to run as root: run them as the postgres OS user.
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

[[ $ROLE =~ ^[A-Za-z_][A-Za-z0-9_]*$ && $PASSWORD =~ ^[A-Za-z0-9_]+$ ]] ||
  die "CA_PG_USER/CA_PG_PASSWORD may hold only letters, digits and _" 2

install_server() {
  local apt_log="${TMPDIR:-/tmp}/conversation-assets-pg-apt.log"
  [[ $EUID -eq 0 ]] || die "cannot install PostgreSQL: not root and no server under /usr/lib/postgresql" 3
  command -v apt-get >/dev/null || die "cannot install PostgreSQL: apt-get not found (not Debian?)" 3
  # No default 'main' cluster (nor a server on 5432): this script makes its own.
  mkdir -p /etc/postgresql-common/createcluster.d
  [[ -e /etc/postgresql-common/createcluster.d/no-main-cluster.conf ]] ||
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/no-main-cluster.conf
  log "installing Debian's postgresql with apt-get (a minute or two; log: $apt_log)"
  export DEBIAN_FRONTEND=noninteractive
  local update_error=""
  if ! apt-get update >"$apt_log" 2>&1; then
    update_error="; apt-get update: $(grep -m1 '^E:' "$apt_log" || tail -n 1 "$apt_log")"
    log "apt-get update failed; trying the package lists already present"
  fi
  if ! apt-get install -y --no-install-recommends postgresql >>"$apt_log" 2>&1; then
    die "cannot install PostgreSQL: apt-get install postgresql failed ($(grep '^E:' "$apt_log" | tail -n 1)$update_error)" 3
  fi
}

BIN=$(pg_bindir)
if [[ -z $BIN ]]; then
  install_server
  BIN=$(pg_bindir)
  [[ -n $BIN ]] || die "cannot install PostgreSQL: apt-get succeeded but no initdb under /usr/lib/postgresql/*/bin" 3
fi
log "using $BIN"

if [[ ! -f $PGDATA/PG_VERSION ]]; then
  [[ ! -e $DATA_DIR || -f $MARKER || -z "$(ls -A "$DATA_DIR")" ]] ||
    die "$DATA_DIR exists and is not ours: set PGDATA_DIR to another path"
  mkdir -p "$DATA_DIR"
  touch "$MARKER"
  [[ $EUID -ne 0 ]] || chown -R postgres:postgres "$DATA_DIR"
  chmod 700 "$DATA_DIR"
  log "initdb $PGDATA"
  as_pg "$BIN/initdb" -D "$PGDATA" -U "$SUPER" -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$DATA_DIR/initdb.log" 2>&1 ||
    die "initdb failed: see $DATA_DIR/initdb.log"
  # Loopback only, socket in our own dir; durability off: this cluster is thrown away.
  cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi

if as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  PORT=$(<"$DATA_DIR/port")
  log "already running on 127.0.0.1:$PORT"
else
  PORT="${PGPORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  echo "$PORT" >"$DATA_DIR/port"
  log "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$DATA_DIR/server.log" -o "-p $PORT" -w -t 60 start >&2 ||
    die "server did not start: $(tail -n 3 "$DATA_DIR/server.log" 2>/dev/null | tr '\n' ' ')"
fi

for _ in $(seq 60); do
  "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.5
done
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "server on 127.0.0.1:$PORT is not ready after 30 s"

log "role $ROLE, databases dixa and dagster"
as_pg "$BIN/psql" -h "$DATA_DIR" -p "$PORT" -U "$SUPER" -d postgres -qAt -v ON_ERROR_STOP=1 \
  -v role="$ROLE" -v pw="$PASSWORD" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', d, :'role')
  FROM unnest(ARRAY['dixa', 'dagster']) AS d
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d) \gexec
SQL

cat <<EOF
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=$ROLE PGPASSWORD=$PASSWORD
export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT=$PORT DAGSTER_PG_USERNAME=$ROLE DAGSTER_PG_PASSWORD=$PASSWORD DAGSTER_PG_DB=dagster
export DESTINATION__POSTGRES__CREDENTIALS=postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/dixa
EOF
log "ready: postgresql://$ROLE:***@127.0.0.1:$PORT/{dixa,dagster}"
