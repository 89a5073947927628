#!/usr/bin/env bash
# Fuzzes bundles with libFuzzer (the Swift toolchain's -sanitize=fuzzer) and AddressSanitizer:
# the file layer, the content layer, re-sealed content ingested into a real SQLite node, and a
# structure-aware builder (Fuzz/BundleReaderFuzz). Seeds: the golden bundles and bundles of
# every kind (Scripts/fuzz-seeds.sh). Refusal reasons reached go to .build-fuzz/reasons.txt;
# crash inputs are kept in Tests/DataJoinTests/FuzzRegressions (replayed by a test).
#   bash Scripts/fuzz.sh [SECONDS]        default 600
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
bash Scripts/install-deps.sh
DATAJOIN_FUZZ=1 swift build -c release --product datajoin-fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -g -Xswiftc -enable-testing
BIN=.build-fuzz/release/datajoin-fuzz
CORPUS=.build-fuzz/corpus
mkdir -p "$CORPUS"
for f in bundles/v1/*.djb; do
  n=$(basename "$f")
  { printf '\x00'; cat "$f"; } > "$CORPUS/file-$n"
  { printf '\x01'; zcat "$f"; } > "$CORPUS/content-$n"
done
swift build --product datajoin >/dev/null
bash Scripts/fuzz-seeds.sh "$CORPUS"
cp Tests/DataJoinTests/FuzzRegressions/* "$CORPUS/" 2>/dev/null || true
export DATAJOIN_FUZZ_REASONS=$PWD/.build-fuzz/reasons.txt
echo "fuzzing for $SECONDS_TO_RUN s" >&2
"$BIN" "$CORPUS" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix=.build-fuzz/ 2>&1 | tee .build-fuzz/fuzz.log | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|SUMMARY|stat::" || true
if grep -qE "ERROR: (libFuzzer|AddressSanitizer)|SUMMARY: AddressSanitizer" .build-fuzz/fuzz.log; then
  echo "fuzzing found a problem: see .build-fuzz/fuzz.log and .build-fuzz/crash-*; copy the input into Tests/DataJoinTests/FuzzRegressions" >&2
  exit 1
fi
echo "no crash, hang or leak found in $SECONDS_TO_RUN s" >&2
