#!/usr/bin/env bash
# Writes the golden v2 (encrypted) bundle in bundles/v2: the seed's insert of ord2 exported by
# node testapp1, encrypted to node testapp2, plus testapp1's public key word and testapp2's
# encryption key pair. testapp2's private key is a TEST key, committed on purpose so that every
# later version proves it still opens this file (GoldenBundleTests). Never regenerate in place.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product datajoin >/dev/null
DJ="$PWD/.build/debug/datajoin"
OUT=${1:-bundles/v2}
mkdir -p "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for n in testapp1 testapp2; do
  sqlite3 "$W/$n.db" < Scripts/sql/sales_order.sqlite.sql
  "$DJ" init --db "$W/$n.db" --node "$n" >/dev/null
done
"$DJ" track --db "$W/testapp1.db" sales_order >/dev/null 2>&1
"$DJ" trust --db "$W/testapp1.db" testapp2 "$("$DJ" key --db "$W/testapp2.db")" >/dev/null
sqlite3 "$W/testapp1.db" "INSERT INTO sales_order VALUES ('ord2', 'online', 'first order', 'book', 'cust1', '2', '2025-06-24', '2025-06-24 10:00:00', 'milan', 'testapp1')"
"$DJ" export --db "$W/testapp1.db" --to "$OUT" --encrypt | grep '\.djb$'
{
  echo "sender testapp1 $("$DJ" key --db "$W/testapp1.db")"
  sqlite3 "$W/testapp2.db" "SELECT 'recipient testapp2 ' || public_key || ' ' || private_key FROM ds_encryption_key"
} > "$OUT/keys.txt"
