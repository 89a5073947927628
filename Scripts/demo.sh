#!/usr/bin/env bash
# The seed's scenario on two embedded SQLite databases, no server needed:
# testapp1 inserts ord2, updates its description, deletes it; after each step the change is
# exported into a bundle, the file is copied to a "USB stick" folder, ingested into testapp2,
# and both tables are printed. Then testapp2 sends a change back the other way.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
echo "== building datajoin" >&2
swift build -c debug --product datajoin 2>&1 | tail -1 >&2
DJ="$PWD/.build/debug/datajoin"
WORK=${DEMO_DIR:-$(mktemp -d /tmp/datajoin-demo.XXXXXX)}
mkdir -p "$WORK/testapp1-out" "$WORK/usb-stick"
A="$WORK/testapp1.db"; B="$WORK/testapp2.db"
rm -f "$A" "$B"
sqlite3 "$A" < Scripts/sql/sales_order.sqlite.sql
sqlite3 "$B" < Scripts/sql/sales_order.sqlite.sql

run() { echo "\$ datajoin $*"; "$DJ" "$@"; }
table() {
  echo "-- $2.sales_order:"
  local out; out=$(sqlite3 -header -column "$1" "SELECT order_id, description, quantity FROM sales_order ORDER BY order_id")
  if [ -n "$out" ]; then echo "$out"; else echo "(no rows)"; fi
}
show() { table "$A" testapp1; table "$B" testapp2; echo; }
sync_1_to_2() {
  run export --db "$A" --to "$WORK/testapp1-out"
  cp "$WORK"/testapp1-out/*.djb "$WORK/usb-stick/"
  run ingest --db "$B" "$WORK/usb-stick"
}

echo "== set up two nodes" 
run init --db "$A" --node testapp1
run init --db "$B" --node testapp2
run trust --db "$B" testapp1 "$("$DJ" key --db "$A")"
run trust --db "$A" testapp2 "$("$DJ" key --db "$B")"
run track --db "$A" sales_order
run track --db "$B" sales_order
echo

echo "== step 1: insert ord2 on testapp1"
sqlite3 "$A" "INSERT INTO sales_order (order_id, order_type, description, customer_id, quantity, order_date) VALUES ('ord2', 'online', 'first order', 'cust1', '2', '2025-06-24')"
sync_1_to_2; show

echo "== step 2: update its description on testapp1"
sqlite3 "$A" "UPDATE sales_order SET description = 'changed description' WHERE order_id = 'ord2'"
sync_1_to_2; show

echo "== step 3: delete it on testapp1"
sqlite3 "$A" "DELETE FROM sales_order WHERE order_id = 'ord2'"
sync_1_to_2; show

echo "== and back: testapp2 inserts ord3"
sqlite3 "$B" "INSERT INTO sales_order (order_id, description, quantity) VALUES ('ord3', 'from the laptop', '5')"
mkdir -p "$WORK/testapp2-out"
run export --db "$B" --to "$WORK/testapp2-out"
run ingest --db "$A" "$WORK/testapp2-out"
show
run status --db "$A"
echo
echo "demo files are in $WORK"
