#!/usr/bin/env bash
# Installs what is missing, starts a throwaway PostgreSQL and a throwaway MariaDB, and runs
# every test. Server tests never skip here: DATAJOIN_REQUIRE_PG=1 and DATAJOIN_REQUIRE_MARIADB=1
# make a missing server a failure, and DATAJOIN_REQUIRE_ORM=1 a missing SQLAlchemy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh --postgres --mariadb --orm
# The ORM test's application (Tests/ORM/orders_app.py) runs SQLAlchemy from PyPI in its own venv.
venv=.build/orm-venv
if ! "$venv/bin/python" -c 'import sqlalchemy, psycopg2, pymysql' >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "sqlalchemy>=2.0,<3" "psycopg2-binary>=2.9,<3" "pymysql>=1.1,<2"
fi
export DATAJOIN_TEST_PYTHON="$PWD/$venv/bin/python" DATAJOIN_REQUIRE_ORM=1
. Scripts/pg.sh
. Scripts/maria.sh
trap 'pg_stop; maria_stop' EXIT
# The tests make a few hundred databases; each one's copy of the template goes through the WAL,
# which a checkpoint recycles sooner with a smaller max_wal_size (about 1 GiB less on disk).
PG_OPTS="-c max_wal_size=128MB -c min_wal_size=32MB"
# A disk that fills mid-run fails tests with the servers' errors ("No more room in record
# file"): say so first, in one line.
free_mib=$(df -Pm . /tmp | awk 'NR > 1 { print $4 }' | sort -n | head -1)
if [ "${free_mib:-0}" -lt 6144 ]; then
  echo "warning: only $free_mib MiB free on disk; the build and the tests' servers need about 6 GiB" >&2
fi
pg_start
maria_start
export DATAJOIN_REQUIRE_PG=1 DATAJOIN_REQUIRE_MARIADB=1
swift build --build-tests "$@"
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee /tmp/datajoin-test-output.txt
status=${PIPESTATUS[0]}
echo "disk used by the test servers: PostgreSQL $(du -sh "$PG_TMP" | cut -f1), MariaDB $(du -sh "$MARIA_TMP" | cut -f1)" >&2
# Every ERROR the server logged must be one a test provokes on purpose.
bash Scripts/pg-log-check.sh "$PG_TMP/server.log" || status=1
bash Scripts/maria-log-check.sh "$MARIA_TMP/errors.log" || status=1
exit "$status"
