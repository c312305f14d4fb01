#!/usr/bin/env bash
# Replay deploy/Dockerfile without a Docker engine:
#   - a fresh `python -m venv` stands in for the python:3.11-slim system Python;
#   - the Dockerfile's COPY lines are read from the Dockerfile and copied into a temp "/app";
#   - its RUN lines that start with `pip` or `uv` are run as written, in that "/app"
#     (other RUN lines, e.g. useradd, are listed and skipped);
#   - then `import conversation_assets.definitions`, and the CMD is started (on a free
#     loopback port instead of 0.0.0.0:4000) until `dagster api grpc-health-check` passes.
# Exit 0: all passed; 1: an install step failed; 2: installed, but import or code server failed.
# PYTHON picks the interpreter (default python3; the image has 3.11); KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE="$ROOT/deploy/Dockerfile"
PYTHON="${PYTHON:-python3}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/image-layout.XXXXXX")
APP="$WORK/app"
SERVER_PID=""

log() { printf 'check_image_layout: %s\n' "$*" >&2; }
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  # The code server runs in its own session (setsid): stop its whole group, TERM then KILL.
  if [[ -n $SERVER_PID ]] && kill -TERM -- "-$SERVER_PID" 2>/dev/null; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- FROM python:3.11-slim ------------------------------------------------------------------
log "base: $("$PYTHON" --version 2>&1) in a fresh venv (the image has Python 3.11)"
"$PYTHON" -m venv "$WORK/base"
unset VIRTUAL_ENV PYTHONPATH UV_PROJECT_ENVIRONMENT
export PATH="$WORK/base/bin:$PATH"
# --- ENV (as in the Dockerfile; /app/.venv becomes $APP/.venv) -------------------------------
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
export UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT="$APP/.venv" UV_PYTHON="$WORK/base/bin/python"
mkdir -p "$APP"

# COPY <src>... <dest>: a directory source copies its contents (Docker's rule), a file source
# lands in <dest>/ when <dest> ends with '/', else at <dest>. Paths are relative to the repo
# root (the build context) and to WORKDIR (/app).
copy_line() {
  local -a parts=("$@")
  local dest="${parts[-1]}" src target
  unset 'parts[-1]'
  for src in "${parts[@]}"; do
    [[ -e $ROOT/$src ]] || { log "COPY source missing in the repo: $src"; return 1; }
    if [[ -d $ROOT/$src ]]; then
      mkdir -p "$APP/$dest"
      cp -a "$ROOT/$src/." "$APP/$dest/"
      find "$APP/$dest" -name __pycache__ -type d -prune -exec rm -rf {} +
    else
      target="$APP/$dest"
      [[ $dest == */ ]] && target="$APP/$dest$(basename "$src")"
      mkdir -p "$(dirname "$target")"
      cp -a "$ROOT/$src" "$target"
    fi
  done
}

# --- RUN / COPY, in Dockerfile order ------------------------------------------------------------
while read -r instruction rest; do
  case $instruction in
    COPY)
      log "COPY $rest"
      read -r -a words <<<"$rest"
      copy_line "${words[@]}" || exit 1
      ;;
    RUN)
      if [[ $rest =~ ^(pip|uv)[[:space:]] ]]; then
        log "RUN $rest"
        (cd "$APP" && eval "$rest") >&2 || { log "FAILED: RUN $rest"; exit 1; }
      else
        log "skipped (image-only): RUN $rest"
      fi
      ;;
    *) ;;
  esac
done < <(grep -E '^(COPY|RUN) ' "$DOCKERFILE")
log "install steps passed; layout:"
(cd "$APP" && find . -path ./.venv -prune -o -type f -print | sort | sed 's/^/  /') >&2

# --- ENV PATH, then import and CMD -------------------------------------------------------------
export PATH="$APP/.venv/bin:$PATH"
cd "$APP"
if ! python -c 'import conversation_assets.definitions as m; print("imported", m.__name__, "from", m.__file__)' >&2; then
  log "installed, but 'import conversation_assets.definitions' failed"
  exit 2
fi

PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mapfile -t CMD < <(python - "$DOCKERFILE" "$PORT" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
cmd = [sys.argv[2] if a == "4000" else "127.0.0.1" if a == "0.0.0.0" else a for a in cmd]
print("\n".join(cmd))
PY
)
log "CMD ${CMD[*]}"
setsid "${CMD[@]}" >"$WORK/code-server.log" 2>&1 </dev/null &
SERVER_PID=$!
for _ in $(seq 120); do
  if dagster api grpc-health-check -p "$PORT" >/dev/null 2>&1; then
    log "code server healthy on 127.0.0.1:$PORT (dagster api grpc-health-check)"
    exit 0
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 1
done
log "code server did not become healthy; its log:"
tail -n 30 "$WORK/code-server.log" >&2
exit 2
