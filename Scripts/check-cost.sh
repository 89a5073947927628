#!/usr/bin/env bash
# Measures `datajoin check` on nodes holding N changes (default 1,000,000): a SQLite node with N
# captured and exported changes, a second SQLite node that ingested them (N inbox rows and row
# versions), and the same on PostgreSQL when DATAJOIN_TEST_PG names a server.
#   bash Scripts/check-cost.sh [N] [DATAJOIN]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
DJ=${2:-.build/release/datajoin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in a b; do
  sqlite3 "$work/$n.db" < Scripts/sql/sales_order.sqlite.sql
  "$DJ" init --db "$work/$n.db" --node "$n" >/dev/null
  "$DJ" track --db "$work/$n.db" sales_order >/dev/null
done
"$DJ" trust --db "$work/b.db" a "$("$DJ" key --db "$work/a.db")" >/dev/null
sqlite3 "$work/a.db" "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $N)
  INSERT INTO sales_order (order_id, description, quantity) SELECT printf('o%08d', i), 'row ' || i, i FROM g"
mkdir "$work/out"
"$DJ" export -q --db "$work/a.db" --to "$work/out" >/dev/null
"$DJ" ingest -q --db "$work/b.db" "$work/out" >/dev/null
for n in a b; do
  /usr/bin/time -f "sqlite node $n ($N changes): check %e s, peak %M KiB" "$DJ" check --db "$work/$n.db"
done
if [ -n "${DATAJOIN_TEST_PG:-}" ]; then
  base=${DATAJOIN_TEST_PG%/*}
  db=dj_checkcost_$$
  psql -q "$DATAJOIN_TEST_PG" -c "CREATE DATABASE $db"
  url="$base/$db"
  psql -q "$url" -f Scripts/sql/sales_order.postgres.sql
  "$DJ" init --db "$url" --node p >/dev/null
  "$DJ" track --db "$url" sales_order >/dev/null
  "$DJ" trust --db "$url" a "$("$DJ" key --db "$work/a.db")" >/dev/null
  "$DJ" ingest -q --db "$url" "$work/out" >/dev/null
  psql -q "$url" -c "INSERT INTO sales_order (order_id, description) SELECT 'p' || g, 'pg ' || g FROM generate_series(1, $N) g"
  mkdir "$work/pout"
  "$DJ" export -q --db "$url" --to "$work/pout" >/dev/null
  /usr/bin/time -f "postgres node ($N changes out, $N in): check %e s, peak %M KiB" "$DJ" check --db "$url"
  psql -q "$DATAJOIN_TEST_PG" -c "DROP DATABASE $db"
fi
