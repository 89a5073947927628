#!/usr/bin/env bash
# Builds in release mode and runs the benchmark on SQLite, a throwaway PostgreSQL and a
# throwaway MariaDB.
#   bash Scripts/bench.sh [--changes N] [other datajoin-bench options]
# Prints a table and writes bench-results.json (docs/performance.md explains each figure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh --postgres --mariadb
. Scripts/pg.sh
. Scripts/maria.sh
trap 'pg_stop; maria_stop' EXIT
pg_start
maria_start
swift build -c release --product datajoin 2>&1 | tail -1
swift build -c release --product datajoin-bench 2>&1 | tail -1
WORK=$(mktemp -d /tmp/datajoin-bench.XXXXXX)
.build/release/datajoin-bench --datajoin "$PWD/.build/release/datajoin" --pg "$DATAJOIN_TEST_PG" --mariadb "$DATAJOIN_TEST_MARIADB" \
  --work "$WORK" --json "${BENCH_JSON:-bench-results.json}" "$@"
rm -rf "$WORK"
# A figure measured on a path that failed and fell back is no figure: the server's log must
# hold no ERROR at all (the bench provokes none) but the server's own autovacuum, cancelled when
# an export's ANALYZE needs its lock.
if grep -E '(ERROR|FATAL|PANIC):' "$PG_TMP/server.log" | grep -v 'canceling autovacuum task'; then
  echo "the PostgreSQL server logged errors during the bench (above): its figures are not trustworthy" >&2
  exit 1
fi
if grep -a ' ERROR ' "$MARIA_TMP/errors.log"; then
  echo "the MariaDB server logged statement errors during the bench (above): its figures are not trustworthy" >&2
  exit 1
fi
