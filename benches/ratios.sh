#!/usr/bin/env bash
# Runs the benchmark suite once and prints the ratios of BENCHMARKS.md:
# every figure is a divan median from this run, divided by a baseline from
# the same run (no absolute time is compared with anything).
#
#   bash benches/ratios.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for b in disabled compare throughput burst; do
    echo ">> cargo bench -p observra-benches --bench $b" >&2
    cargo bench -q -p observra-benches --bench "$b" >"$out/$b.txt" 2>"$out/$b.err" || { cat "$out/$b.err" >&2; exit 1; }
done

# "├─ name  fastest │ slowest │ median │ mean │ ..." -> "name median_ns"
medians() {
    awk -F'│' '/[├╰]─/ {
        split($1, a, " "); name = a[2];
        split($3, m, " "); v = m[1]; u = m[2];
        f = (u == "ns") ? 1 : (u == "µs") ? 1000 : (u == "ms") ? 1000000 : (u == "ps") ? 0.001 : 1;
        printf "%s %.3f\n", name, v * f
    }' "$1"
}
medians "$out/disabled.txt" >"$out/disabled.m"
medians "$out/compare.txt" >"$out/compare.m"
m() { awk -v n="$2" '$1 == n { print $2 }' "$out/$1.m"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

printf '\n%-58s %12s %8s %s\n' "measure (divan medians, same run)" "median" "ratio" "target"
row() { printf '%-58s %9.1f ns %7sx %s\n' "$1" "$2" "$3" "$4"; }
p=$(m disabled a_plain)
row "plain function (~100 ns of work)" "$p" "1.00" "baseline"
row "#[traced], telemetry not installed / plain" "$(m disabled b_traced_not_installed)" "$(ratio "$(m disabled b_traced_not_installed)" "$p")" "<= 1.10"
row "#[traced(attrs, fields)], not installed / plain" "$(m disabled c_traced_attrs_not_installed)" "$(ratio "$(m disabled c_traced_attrs_not_installed)" "$p")" "<= 1.10"
row "#[llm_call], not installed / plain" "$(m disabled d_llm_call_not_installed)" "$(ratio "$(m disabled d_llm_call_not_installed)" "$p")" "<= 1.10"
cp=$(m compare a_plain); llm=$(m compare c_llm_call); raw=$(m compare d_raw_sdk); to=$(m compare e_tracing_opentelemetry)
row "plain function, in the comparison process" "$cp" "1.00" "baseline"
row "#[traced] enabled / plain" "$(m compare b_traced)" "$(ratio "$(m compare b_traced)" "$cp")" ""
row "#[llm_call] enabled / raw OpenTelemetry SDK" "$llm" "$(ratio "$llm" "$raw")" "<= 0.50 (floor 1.0)"
row "#[llm_call] enabled / tracing-opentelemetry" "$llm" "$(ratio "$llm" "$to")" "<= 0.25"
row "raw OpenTelemetry SDK (span + 3 histogram records)" "$raw" "$(ratio "$raw" "$cp")" "x plain"
row "tracing::instrument + tracing-opentelemetry (+ records)" "$to" "$(ratio "$to" "$cp")" "x plain"
row "fastrace root span, discarding reporter" "$(m compare f_fastrace)" "$(ratio "$(m compare f_fastrace)" "$cp")" "x plain"
tr=$(m compare b_traced); child=$(m compare h_traced_child); fchild=$(m compare g_fastrace_child)
row "#[traced] child under a #[traced] parent / fastrace child" "$child" "$(ratio "$child" "$fchild")" "<= 1.50"
row "#[agent] child / #[traced] child" "$(m compare i_agent_child)" "$(ratio "$(m compare i_agent_child)" "$child")" "<= 1.20"
row "#[tool_call] child / #[traced] child" "$(m compare j_tool_call_child)" "$(ratio "$(m compare j_tool_call_child)" "$child")" "<= 1.20"
row "#[llm_call] enabled / raw OpenTelemetry SDK (target)" "$llm" "$(ratio "$llm" "$raw")" "<= 0.35"
user=$(m compare k_traced_user_subscriber); top=$(m compare l_tracing_opentelemetry_plain)
row "#[traced], registry().with(observra::layer()) / tracing-otel" "$user" "$(ratio "$user" "$top")" "<= 0.50"
row "fastrace child span under a local parent" "$fchild" "$(ratio "$fchild" "$cp")" "x plain"
echo
grep '^throughput:' "$out/throughput.txt"
grep '^burst: ratio' "$out/burst.txt"
grep -h 'observra pipeline' "$out/compare.err" || true
