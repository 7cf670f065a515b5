#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: its own directory under
# /var/tmp, listening on 127.0.0.1 on a free port, trusting local connections.
#
#   eval "$(scripts/test-postgres.sh start)"   # prints the exports
#   npm test                                   # the store tests now run on it too
#   scripts/test-postgres.sh stop              # stops it, removes its directory
#
#   scripts/test-postgres.sh run npm test      # all three in one
#
# `start` exports FLEET_TEST_DATABASE_URL (what the tests use) and
# FLEET_TEST_PG_DIR (what `stop` stops). It needs Debian's postgresql package
# (installed when missing, with apt-get) and, as root, runs the server as the
# postgres user, since PostgreSQL refuses to run as root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

free_port() {
  node -e 'const s = require("node:net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

# Runs a command as the server's owner: postgres when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  bash "$here/ensure-tools.sh" 'postgresql:/usr/lib/postgresql/*/bin/initdb'
  local bin dir port attempt
  bin="$(bindir)" || { echo "no PostgreSQL server binaries found (initdb, pg_ctl)" >&2; exit 1; }
  # Under /var/tmp (sticky, world-writable) the postgres user reaches its own directory.
  dir="$(mktemp -d "${FLEET_TEST_PG_PARENT:-/var/tmp}/effect-omaha-pg.XXXXXX")"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=off" \
      >/dev/null 2>&1; then
      echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for the tests on 127.0.0.1:$port ($dir)" >&2
      echo "export FLEET_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
      echo "export FLEET_TEST_PG_DIR=$dir"
      return 0
    fi
    # Most likely someone took the port in the meantime: try another.
  done
  cat "$dir/server.log" >&2 || true
  rm -rf "$dir"
  echo "PostgreSQL did not start" >&2
  exit 1
}

stop() {
  local dir="${1:-${FLEET_TEST_PG_DIR:-}}" bin
  [ -n "$dir" ] || { echo "usage: $0 stop DIR (or set FLEET_TEST_PG_DIR)" >&2; exit 2; }
  case "$dir" in */effect-omaha-pg.*) ;; *) echo "$dir is not a directory made by $0 start" >&2; exit 2 ;; esac
  if [ -f "$dir/data/postmaster.pid" ]; then
    bin="$(bindir)"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  run)
    shift
    [ "$#" -gt 0 ] || { echo "usage: $0 run COMMAND [ARG...]" >&2; exit 2; }
    exports="$(start)"
    eval "$exports"
    trap 'stop "$FLEET_TEST_PG_DIR"' EXIT
    "$@"
    ;;
  *) echo "usage: $0 start | stop [DIR] | run COMMAND [ARG...]" >&2; exit 2 ;;
esac
