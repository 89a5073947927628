#!/usr/bin/env bash
# Writes the golden v1 bundles in bundles/: the seed's scenario (insert ord2, update its
# description, delete it) exported by node testapp1, one bundle per step, plus the public key
# that signed them. Run once per format version; tests read the committed files and must keep
# reading them forever (docs/bundle-format.md). Never regenerate v1 files in place.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product datajoin >/dev/null
DJ="$PWD/.build/debug/datajoin"
OUT=${1:-bundles/v1}
mkdir -p "$OUT"
W=$(mktemp -d)
sqlite3 "$W/testapp1.db" < Scripts/sql/sales_order.sqlite.sql
"$DJ" init --db "$W/testapp1.db" --node testapp1 >/dev/null
"$DJ" track --db "$W/testapp1.db" sales_order >/dev/null
step() { sqlite3 "$W/testapp1.db" "$1"; "$DJ" export --db "$W/testapp1.db" --to "$OUT" | grep '\.djb$'; }
step "INSERT INTO sales_order VALUES ('ord2', 'online', 'first order', 'book', 'cust1', '2', '2025-06-24', '2025-06-24 10:00:00', 'milan', 'testapp1')"
step "UPDATE sales_order SET description = 'changed description' WHERE order_id = 'ord2'"
step "DELETE FROM sales_order WHERE order_id = 'ord2'"
echo "testapp1 $("$DJ" key --db "$W/testapp1.db")" > "$OUT/keys.txt"
rm -rf "$W"
