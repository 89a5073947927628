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
pg_start
maria_start
export DATAJOIN_REQUIRE_PG=1 DATAJOIN_REQUIRE_MARIADB=1
swift build --build-tests "$@"
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee /tmp/datajoin-test-output.txt
status=${PIPESTATUS[0]}
# Every ERROR the server logged must be one a test provokes on purpose.
bash Scripts/pg-log-check.sh "$PG_TMP/server.log" || status=1
bash Scripts/maria-log-check.sh "$MARIA_TMP/errors.log" || status=1
exit "$status"
