#!/usr/bin/env bash
# Installs what is missing, starts a throwaway PostgreSQL and a throwaway MariaDB, and runs
# every test. Server tests never skip here: DATAJOIN_REQUIRE_PG=1 and DATAJOIN_REQUIRE_MARIADB=1
# make a missing server a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh --postgres --mariadb
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
