#!/usr/bin/env bash
# Runs the whole suite (scripts/test.sh) N times idle and N times while two
# release builds of another crate load the machine, and prints one line per
# run and a closing count. Usage: bash scripts/stability.sh [N] [idle|loaded]
# (default 5, both).
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
which=${2:-both}
log_dir=target/stability
mkdir -p "$log_dir"
pass=0; fail=0
run() {
  local label=$1 i=$2 start rc
  start=$(date +%s)
  bash scripts/test.sh >"$log_dir/$label-$i.log" 2>&1
  rc=$?
  local secs=$(( $(date +%s) - start ))
  local counts
  counts=$(grep -E '^test result:' "$log_dir/$label-$i.log" | awk '{p+=$4; f+=$6} END {print p" passed, "f" failed"}')
  if [ $rc -eq 0 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
  echo "$label run $i: rc=$rc in ${secs}s ($counts)"
}
cargo test --workspace --no-run -q >/dev/null 2>&1
if [ "$which" != loaded ]; then
  for i in $(seq 1 "$n"); do run idle "$i"; done
fi
if [ "$which" = idle ]; then
  echo "stability: $pass passed, $fail failed"
  [ $fail -eq 0 ]
  exit
fi
# The load: two release builds at once of the benchmark crate's benches
# (divan, fastrace and the otel stack; the crate has no library, so
# --benches: a plain `cargo build` of it compiles nothing), each in a
# target dir of its own, over and over.
loaders=()
for k in 1 2; do
  ( while true; do
      CARGO_TARGET_DIR=target/stability-load-$k cargo build --release --benches -q -p observra-benches >/dev/null 2>&1
      rm -rf target/stability-load-$k
    done ) &
  loaders+=($!)
done
sleep 20
for i in $(seq 1 "$n"); do run loaded "$i"; done
for l in "${loaders[@]}"; do kill -- -"$l" 2>/dev/null || kill "$l" 2>/dev/null; done
pkill -f 'stability-load' 2>/dev/null
rm -rf target/stability-load-1 target/stability-load-2
echo "stability: $pass passed, $fail failed"
[ $fail -eq 0 ]
