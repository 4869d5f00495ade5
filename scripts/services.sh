#!/usr/bin/env bash
# Start or stop the throwaway PostgreSQL and Redis servers the test suite uses (loopback only).
# Usage: scripts/services.sh start|stop|env
# Exports nothing itself: tests read CORTEX_TEST_POSTGRES_URL / CORTEX_TEST_REDIS_URL, which
# pytest's conftest derives from the same fixed ports below.
set -euo pipefail
PG_PORT=${CORTEX_TEST_PG_PORT:-55432}
REDIS_PORT=${CORTEX_TEST_REDIS_PORT:-56379}
ROOT=${CORTEX_TEST_SERVICES_DIR:-/tmp/cortex-test-services}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  mkdir -p "$ROOT"
  # Redis: no persistence, loopback only.
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize yes --pidfile "$ROOT/redis.pid" --logfile "$ROOT/redis.log"
  fi
  # PostgreSQL: a private cluster with trust auth on loopback.
  if [ -n "$PG_BIN" ]; then
    if [ ! -s "$ROOT/pg/PG_VERSION" ]; then
      mkdir -p "$ROOT/pg"
      [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$ROOT" "$ROOT/pg"
      as_pg "$PG_BIN/initdb" -D "$ROOT/pg" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    # A port held in TIME-WAIT by a server that just stopped refuses the bind for up to a
    # minute: retry rather than fail the whole run.
    for attempt in $(seq 1 30); do
      as_pg "$PG_BIN/pg_ctl" -D "$ROOT/pg" status >/dev/null 2>&1 && break
      as_pg "$PG_BIN/pg_ctl" -D "$ROOT/pg" -l "$ROOT/pg.log" -w \
        -o "-p $PG_PORT -k $ROOT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null 2>&1 && break
      [ "$attempt" -eq 30 ] && { echo "PostgreSQL did not start; see $ROOT/pg.log" >&2; exit 1; }
      sleep 3
    done
  fi
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "test services: PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT"
}

stop() {
  if [ -f "$ROOT/redis.pid" ]; then
    kill "$(cat "$ROOT/redis.pid")" 2>/dev/null || true
    rm -f "$ROOT/redis.pid"
  fi
  if [ -n "$PG_BIN" ] && [ -d "$ROOT/pg" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$ROOT/pg" -m fast stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
