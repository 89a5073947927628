#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server: its own data folder and port, trust auth on loopback.
# Source it: `. Scripts/pg.sh; pg_start` sets DATAJOIN_TEST_PG; pg_stop removes it all.
# PG_OPTS adds server settings (`-c name=value …`).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

pg_start() {
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] || { echo "error: no PostgreSQL server binaries found" >&2; return 1; }
  PG_TMP=$(mktemp -d /tmp/datajoin-pg.XXXXXX)
  chmod 755 "$PG_TMP"
  PG_PORT=${PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
  local runas=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: use the postgres system user.
    id postgres >/dev/null 2>&1 || useradd -r -M postgres
    chown postgres "$PG_TMP"
    runas=(runuser -u postgres --)
  fi
  "${runas[@]}" "$bin/initdb" -D "$PG_TMP/data" -U datajoin --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  "${runas[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w \
    -o "-p $PG_PORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${PG_OPTS:-}" start >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; return 1; }
  PG_RUNAS="${runas[*]}"
  export DATAJOIN_TEST_PG="postgresql://datajoin@127.0.0.1:$PG_PORT/postgres"
  export PG_TMP PG_PORT PG_RUNAS
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') running on port $PG_PORT ($PG_TMP)" >&2
}

pg_stop() {
  [ -n "${PG_TMP:-}" ] || return 0
  local bin; bin=$(pg_bin)
  $PG_RUNAS "$bin/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_TMP"
  PG_TMP=""
}
