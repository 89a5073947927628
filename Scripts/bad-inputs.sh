#!/usr/bin/env bash
# The bad-input table of issue 11: runs each bad input through one datajoin binary, each in a
# fresh scratch folder, and prints TSV: input, exit status, first line of output, and whether
# the files, the databases' nodes, inbox or trust list changed. Usage: bash Scripts/bad-inputs.sh BINARY
D=${1:?usage: bash Scripts/bad-inputs.sh BINARY}
W=$(mktemp -d)
q() { "$D" "$@" >/dev/null 2>&1; }
setup() {
  cd /; rm -rf "$W"; mkdir -p "$W"; cd "$W"
  q init --db a.db --node a; q init --db b.db --node b
  for db in a.db b.db; do sqlite3 $db "CREATE TABLE sales_order (order_id TEXT PRIMARY KEY, description TEXT)"; q track --db $db sales_order; done
  q trust --db b.db a "$("$D" key --db a.db)"
  mkdir -p out drop; echo "my notes" > notes.txt
}
snap() { (cd "$W"; find . -path ./w.pid -prune -o -print | grep -v -- '-wal$\|-shm$' | sort; for f in *.db; do [ -f "$f" ] && sqlite3 "$f" "SELECT node_id, public_key FROM ds_trusted_key; SELECT count(*) FROM ds_change_inbox; SELECT * FROM ds_node" 2>/dev/null; done) | md5sum | cut -c1-8; }
row() {
  local label=$1 cmd=$2 pre=${3:-true} post=${4:-true}
  setup; eval "$pre"
  local before; before=$(snap)
  local out rc
  out=$(eval "$cmd" 2>&1); rc=$?
  local after; after=$(snap)
  eval "$post" >/dev/null 2>&1
  local first; first=$(printf '%s\n' "$out" | tr '\t' ' ' | grep -v '^$' | head -1 | cut -c1-160)
  local changed="nothing"; [ "$before" != "$after" ] && changed="**changed**"
  printf '%s\t%s\t%s\t%s\n' "$label" "$rc" "$first" "$changed"
}
row "\`status\` of a missing database" "$D status --db nosuch.db"
row "\`init\` with a bad node name" "$D init --db new.db --node 'bad name!'"
row "\`ingest\` of a named file that is not a bundle" "$D ingest --db b.db notes.txt"
row "a folder given as \`--db\`" "$D status --db dir.db" "mkdir dir.db"
row "\`trust\` of another key for a trusted node" "$D trust --db b.db a 0000000000000000000000000000000000000000000000000000000000000001"
row "\`trust\` of the node's own name" "$D trust --db a.db a \$($D key --db b.db)"
row "\`verify --db\` of an untrusted sender's bundle" "$D verify --db a.db out" "sqlite3 b.db \"INSERT INTO sales_order VALUES ('x','y')\"; q export --db b.db --to out"
row "\`export\` to a missing folder" "$D export --db a.db --to /no/such"
row "an unreachable server" "$D status --db postgresql://u:secret@127.0.0.1:1/x"
row "\`verify\` of a damaged file" "$D verify j.djb" "echo junk > j.djb"
row "\`ingest\` of a missing path" "$D ingest --db b.db /no/such/folder"
row "\`export --max-changes -5\`" "$D export --db a.db --to out --max-changes -5"
row "a misspelt command (\`exprot\`)" "$D exprot --db a.db"
row "\`export\` without \`--to\`" "$D export --db a.db"
row "a database another writer holds (\`--lock-timeout 2\`)" "$D export --db a.db --to out --lock-timeout 2" "sqlite3 a.db \"INSERT INTO sales_order VALUES ('k','v')\"; (echo 'BEGIN IMMEDIATE;'; sleep 6) | sqlite3 a.db >/dev/null 2>&1 & sleep 0.5"
row "a second \`watch\` on one database" "$D watch --db a.db --in drop --out out --every 30" "($D watch --db a.db --in drop --out out --every 30 >/dev/null 2>&1 & echo \$! > w.pid); sleep 1" "kill \$(cat w.pid)"
row "\`track\` of a table that holds rows" "$D track --db a.db t2" "sqlite3 a.db \"CREATE TABLE t2 (k TEXT PRIMARY KEY NOT NULL); INSERT INTO t2 VALUES ('r1')\""
row "\`status -q\`" "$D status -q --db a.db"
cd /; rm -rf "$W"
