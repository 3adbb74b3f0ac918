#!/usr/bin/env bash
# Runs observra's whole test suite on a machine with only Rust installed:
# unit tests, integration tests that decode real exports with the in-process
# OTLP receiver (HTTP and gRPC), a real Prometheus server scraping the
# /metrics endpoint, the examples run as child processes, trybuild UI
# snapshots and doc tests.
#
# Real peers the suite needs are installed from here, so this stays the one
# command to run:
# - prometheus (Debian package), for tests/tests/prometheus.rs;
# - chromium (Debian package), which opens `observra report`'s page in
#   cli/tests/report_browser.rs;
# - Arize Phoenix (PyPI, in a virtualenv under target/, kept between runs),
#   for tests/tests/phoenix.rs;
# - rotel, a Rust OpenTelemetry collector (PyPI, likewise), for
#   tests/tests/rotel.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

# A Python tool from PyPI in a virtualenv under target/ (kept between runs):
# venv_tool VENV PACKAGE==VERSION INSTALLED_FILE_GLOB WHAT. A failed install
# is loud, and the test that needs the tool says SKIPPED.
venv_tool() {
  local venv=$1 package=$2 installed=$3 what=$4
  # shellcheck disable=SC2086 # the glob is meant to expand
  if ls $venv/$installed >/dev/null 2>&1; then
    return 0
  fi
  echo "== installing $package into $venv (once) for $what"
  mkdir -p target
  if ! { python3 -m venv "$venv" \
         && "$venv/bin/pip" install --quiet --disable-pip-version-check "$package"; }; then
    echo "!!!! $package could not be installed: $what will be SKIPPED" >&2
    rm -rf "$venv"
  fi
}
venv_tool target/phoenix-venv arize-phoenix==20.26.1 bin/phoenix "the Phoenix end-to-end test (about 850 MB)"
venv_tool target/rotel-venv rotel==0.0.1a15 'lib/python*/site-packages/rotel/rotel-agent' "the real-collector fault test"

# A Debian package, installed when its command is missing:
# apt_tool COMMAND PACKAGE WHAT. Without root (or sudo) and apt-get it is
# loud, and the test that needs it says SKIPPED.
apt_tool() {
  local command=$1 package=$2 what=$3 sudo=""
  if command -v "$command" >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
  fi
  if { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; } && command -v apt-get >/dev/null 2>&1; then
    echo "== installing $package (Debian package)${sudo:+ with sudo} for $what"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
  else
    echo "!!!! $command is not installed and cannot be installed here (needs root and apt-get):" >&2
    echo "!!!! $what will be SKIPPED" >&2
  fi
}
apt_tool prometheus prometheus "the real-Prometheus test"
apt_tool chromium chromium "the report page's browser tests (cli/tests/report_browser.rs)"

# Tests run the examples and the observra command with `cargo run -p ...`,
# which builds a package with its own features rather than the workspace's
# union, so it is a build of its own: make it here, where a failure is loud
# and no test spends its time budget compiling.
echo "== building the examples and the observra command as the tests run them"
cargo build -p observra-examples --bins
cargo build -p observra-cli --bins
# The observra command built on its own (as `cargo install` builds it,
# without the features the workspace's other crates turn on in serde_json)
# must verify an honest hash-chained trail full of floats (costs): the
# chain's MAC covers the bytes written, never a re-serialisation.
echo "== the observra command, built on its own, verifies a hash-chained trail with floats"
bin_dir="${CARGO_TARGET_DIR:-target}/debug"
trail=$(mktemp -d)
audit_key=$(printf 'ab%.0s' $(seq 32))
OBSERVRA_BACKEND=jsonl OBSERVRA_JSONL_PATH="$trail/spans.jsonl" OBSERVRA_AUDIT_KEY="$audit_key" \
  "$bin_dir/graceful-shutdown" 2>/dev/null &
writer=$!
sleep 4
kill -TERM "$writer"
wait "$writer"
floats=$(grep -c 'observra.cost.usd' "$trail/spans.jsonl" || true)
"$bin_dir/observra" verify "$trail" --key "$audit_key"
echo "   ($floats records with a cost verified)"
rm -rf "$trail"
# --no-fail-fast: one failing test binary does not hide the others' results.
cargo test --workspace --no-fail-fast "$@"
