#!/usr/bin/env bash
# Starts a throwaway MariaDB server: its own data folder, socket and port, a passwordless
# `datajoin` user on loopback, and a statement error log (sql_errlog) for maria-log-check.sh.
# Source it: `. Scripts/maria.sh; maria_start` sets DATAJOIN_TEST_MARIADB; maria_stop removes it.
maria_start() {
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] \
    || { echo "error: no MariaDB server found (apt-get install mariadb-server)" >&2; return 1; }
  local server; server=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  MARIA_TMP=$(mktemp -d /tmp/datajoin-maria.XXXXXX)
  chmod 755 "$MARIA_TMP"
  MARIA_PORT=${MARIA_PORT:-$(( 20000 + RANDOM % 20000 ))}
  local user; user=$(id -un)
  mariadb-install-db --no-defaults --datadir="$MARIA_TMP/data" --user="$user" \
    --auth-root-authentication-method=normal --skip-test-db >"$MARIA_TMP/install.log" 2>&1 \
    || { cat "$MARIA_TMP/install.log" >&2; return 1; }
  "$server" --no-defaults --datadir="$MARIA_TMP/data" --user="$user" --port="$MARIA_PORT" \
    --bind-address=127.0.0.1 --socket="$MARIA_TMP/sock" --pid-file="$MARIA_TMP/pid" \
    --log-error="$MARIA_TMP/server.log" --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --innodb-buffer-pool-size=256M --max-connections=300 --max-allowed-packet=1G \
    --plugin-load-add=sql_errlog --sql-error-log-filename="$MARIA_TMP/errors.log" >/dev/null 2>&1 &
  local i
  for i in $(seq 1 100); do
    mariadb-admin --no-defaults --socket="$MARIA_TMP/sock" -u root ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  mariadb --no-defaults --socket="$MARIA_TMP/sock" -u root -e "
    CREATE USER 'datajoin'@'127.0.0.1'; GRANT ALL ON *.* TO 'datajoin'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER 'datajoin'@'localhost'; GRANT ALL ON *.* TO 'datajoin'@'localhost' WITH GRANT OPTION;
    CREATE DATABASE datajoin;" || { cat "$MARIA_TMP/server.log" >&2; return 1; }
  export DATAJOIN_TEST_MARIADB="mariadb://datajoin@127.0.0.1:$MARIA_PORT/datajoin"
  export MARIA_TMP MARIA_PORT
  echo "MariaDB $("$server" --version | awk '{print $3}') running on port $MARIA_PORT ($MARIA_TMP)" >&2
}

maria_stop() {
  [ -n "${MARIA_TMP:-}" ] || return 0
  mariadb-admin --no-defaults --socket="$MARIA_TMP/sock" -u root shutdown >/dev/null 2>&1 \
    || kill "$(cat "$MARIA_TMP/pid" 2>/dev/null)" 2>/dev/null || true
  rm -rf "$MARIA_TMP"
  MARIA_TMP=""
}
