#!/usr/bin/env bash
# Installs what DataJoin needs to build and test, when it is missing (Debian/Ubuntu).
set -euo pipefail
need=()
[ -f /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
[ -f /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v rsync >/dev/null || need+=(rsync)
command -v script >/dev/null || need+=(bsdutils)
[ -x /usr/bin/time ] || need+=(time)
[ -f /usr/include/mariadb/mysql.h ] || need+=(libmariadb-dev)
for arg in "$@"; do
  case "$arg" in
    --postgres)
      ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
      command -v psql >/dev/null || need+=(postgresql-client)
      ;;
    --mariadb)
      { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || need+=(mariadb-server)
      command -v mariadb >/dev/null || need+=(mariadb-client)
      ;;
    --orm)
      command -v python3 >/dev/null || need+=(python3)
      python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
      ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v swift >/dev/null; then
  echo "error: swift is not on PATH; install the Swift toolchain (swift.org) first" >&2
  exit 1
fi
