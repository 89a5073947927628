#!/usr/bin/env bash
# Writes seed bundles of every kind for the fuzzer into DIR: inserts, updates, deletes, key
# changes, composite keys, typed and wide rows, several origins relayed by a hub, a snapshot.
# Every node signs with the fuzz key (32 bytes of 0x42, Fuzz/BundleReaderFuzz), so the fuzz
# target can re-seal mutated content and still ingest it as from a trusted sender.
#   bash Scripts/fuzz-seeds.sh DIR [DATAJOIN]
set -euo pipefail
out=$1
dj=${2:-.build/debug/datajoin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
pub=$(python3 -c "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as K; print(K.from_private_bytes(b'\x42'*32).public_key().public_bytes_raw().hex())")
priv=$(printf '42%.0s' $(seq 32))
schema="CREATE TABLE sales_order (order_id TEXT PRIMARY KEY NOT NULL, order_type TEXT, description TEXT, product_type_name TEXT,
  customer_id TEXT, quantity TEXT, order_date TEXT, update_datetime TEXT, updated_by_user TEXT, updated_by_server TEXT);
CREATE TABLE line (order_id TEXT NOT NULL, line_no INTEGER NOT NULL, product TEXT, qty INTEGER, PRIMARY KEY (order_id, line_no));
CREATE TABLE wide (k INTEGER PRIMARY KEY, b BLOB, r REAL, t TEXT, i INTEGER);"
for n in a b hub; do
  sqlite3 "$work/$n.db" "$schema"
  "$dj" init --db "$work/$n.db" --node "$n" >/dev/null
  sqlite3 "$work/$n.db" "UPDATE ds_node_key SET private_key = '$priv'; UPDATE ds_node SET public_key = '$pub'"
  "$dj" track --db "$work/$n.db" --no-key-blocks sales_order line wide >/dev/null
done
for x in a b hub; do for y in a b hub; do
  # Written directly: `trust` refuses a node's own key and one key for two nodes, and here every
  # node shares the fuzz key on purpose.
  [ "$x" = "$y" ] || sqlite3 "$work/$x.db" "INSERT INTO ds_trusted_key (node_id, public_key, trusted_at) VALUES ('$y', '$pub', '2026-01-01T00:00:00Z')"
done; done
mkdir -p "$work/o"
sqlite3 "$work/a.db" "INSERT INTO sales_order (order_id, description, quantity) VALUES ('ord1', 'first', '1'), ('ord2', 'it''s', '2');
  INSERT INTO line VALUES ('ord1', 1, 'pen', 3), ('ord1', 2, 'ink', 1);
  INSERT INTO wide VALUES (1, x'00ff10', 0.5, 'ünïcødé 🙂', 9223372036854775807), (2, NULL, -0.0, '', -9223372036854775808)"
"$dj" export -q --db "$work/a.db" --to "$work/o" >/dev/null
sqlite3 "$work/a.db" "UPDATE sales_order SET description = 'changed', quantity = NULL WHERE order_id = 'ord1';
  UPDATE line SET line_no = 3 WHERE line_no = 2; DELETE FROM sales_order WHERE order_id = 'ord2'; UPDATE wide SET b = zeroblob(300) WHERE k = 2"
"$dj" export -q --db "$work/a.db" --to "$work/o" --max-changes 2 >/dev/null
sqlite3 "$work/b.db" "INSERT INTO sales_order (order_id, order_type, customer_id) VALUES ('b1', 'web', 'c9'); INSERT INTO wide (k, t) VALUES (7, 'from b')"
"$dj" export -q --db "$work/b.db" --to "$work/o" >/dev/null
"$dj" ingest -q --db "$work/hub.db" "$work/o" >/dev/null || true
"$dj" export -q --db "$work/hub.db" --to "$work/o" --relay >/dev/null
"$dj" snapshot --db "$work/hub.db" --to "$work/o" >/dev/null
i=0
for f in "$work"/o/*.djb; do
  i=$((i + 1))
  { printf '\x00'; cat "$f"; } > "$out/file-$i"
  { printf '\x01'; zcat "$f"; } > "$out/content-$i"
  { printf '\x02'; zcat "$f"; } > "$out/sealed-$i"
  { printf '\x04'; zcat "$f"; } > "$out/encrypted-content-$i"
done
# Encrypted (format v2) files to the fuzz target's encryption key (32 bytes of 0x43), for the
# layer that signs their outer trailer again.
xpub=$(python3 -c "from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey as K; print(K.from_private_bytes(b'\x43'*32).public_key().public_bytes_raw().hex())")
mkdir -p "$work/e"
for n in a hub; do
  sqlite3 "$work/$n.db" "INSERT INTO ds_trusted_key (node_id, public_key, trusted_at, encryption_key) VALUES ('target', '$pub', '2026-01-01T00:00:00Z', '$xpub')"
done
sqlite3 "$work/a.db" "INSERT INTO sales_order (order_id, description) VALUES ('enc1', 'secret'); INSERT INTO wide (k, b) VALUES (9, zeroblob(200000))"
"$dj" export -q --db "$work/a.db" --to "$work/e" --recipient target >/dev/null
"$dj" export -q --db "$work/hub.db" --to "$work/e" --relay --resend --recipient target >/dev/null || true
"$dj" snapshot --db "$work/hub.db" --to "$work/e" --recipient target >/dev/null
for f in "$work"/e/*.djb; do
  i=$((i + 1))
  { printf '\x05'; cat "$f"; } > "$out/encrypted-file-$i"
done
# Programs for the structured layer, from a fixed seed.
python3 - "$out" <<'PY'
import random, sys
r = random.Random(20261202)
for i in range(64):
    n = r.choice([16, 64, 256, 1024])
    open(f"{sys.argv[1]}/structured-{i}", "wb").write(bytes([3]) + bytes(r.randrange(256) for _ in range(n)))
PY
echo "$i bundles, $(ls "$out" | wc -l) seeds in $out" >&2
