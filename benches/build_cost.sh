#!/usr/bin/env bash
# Build cost of observra against instrumentation written by hand: two clean
# release builds of the same small agent in one run (a, b, then a, b again
# with ROUNDS=2), each in its own empty target directory:
#
#   a. observra with its default features (OTLP over HTTP/protobuf with
#      TLS, JSONL, redaction): `#[agent]`, `#[llm_call]`, `#[tool_call]`
#      and `observra::init().install()`;
#   b. the same agent by hand on tracing + tracing-subscriber +
#      tracing-opentelemetry + opentelemetry-otlp (HTTP/protobuf, reqwest
#      with rustls): spans with the same GenAI attributes, a batch
#      exporter, a meter provider with the two GenAI metrics.
#
# Prints the build times, the stripped binary sizes, the number of crates
# compiled, and the ratios a/b. Not a test: it takes minutes, and the
# numbers go to BENCHMARKS.md. Needs the crates in the local cargo cache or
# the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/build-cost
ROUNDS=${ROUNDS:-1}
mkdir -p "$WORK"
rm -rf "$WORK/observra-agent" "$WORK/handwritten-agent"
cp -r benches/build-cost/observra-agent benches/build-cost/handwritten-agent "$WORK/"
sed -i "s|@ROOT@|$ROOT|" "$WORK/observra-agent/Cargo.toml"
# Same dependency versions as the workspace where the two share crates.
cp Cargo.lock "$WORK/observra-agent/Cargo.lock"

build() { # dir -> "seconds bytes crates"
  local dir=$1 target=$WORK/target-$(basename "$1")
  rm -rf "$target"
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && CARGO_TARGET_DIR=$target cargo build --release --quiet 2>"$target.log" || { cat "$target.log"; exit 1; })
  end=$(date +%s.%N)
  local bin
  bin=$(find "$target/release" -maxdepth 1 -type f -executable -name 'agent' | head -1)
  strip -o "$target/agent.stripped" "$bin"
  local crates
  crates=$(ls "$target/release/deps" | grep -E '\.rlib$|\.so$' | sed -E 's/-[0-9a-f]+\.(rlib|so)$//' | sort -u | wc -l)
  echo "$(echo "$end - $start" | bc) $(stat -c %s "$target/agent.stripped") $crates"
}

declare -a A B
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: observra (default features)"
  A+=("$(build "$WORK/observra-agent")")
  echo "   ${A[-1]}"
  echo "== round $r: by hand (tracing + tracing-opentelemetry + opentelemetry-otlp, HTTP, rustls)"
  B+=("$(build "$WORK/handwritten-agent")")
  echo "   ${B[-1]}"
done

python3 - "${A[@]}" -- "${B[@]}" <<'PY'
import sys
args = sys.argv[1:]
i = args.index("--")
a = [list(map(float, x.split())) for x in args[:i]]
b = [list(map(float, x.split())) for x in args[i + 1:]]
mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)
print()
print("| | build (s) | stripped binary (MB) | crates compiled |")
print("|---|---|---|---|")
print(f"| observra, default features | {' / '.join(f'{r[0]:.0f}' for r in a)} | {mean(a, 1) / 1e6:.2f} | {mean(a, 2):.0f} |")
print(f"| by hand | {' / '.join(f'{r[0]:.0f}' for r in b)} | {mean(b, 1) / 1e6:.2f} | {mean(b, 2):.0f} |")
print(f"| ratio | {mean(a, 0) / mean(b, 0):.2f}x | {mean(a, 1) / mean(b, 1):.2f}x | |")
PY
