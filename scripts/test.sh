#!/usr/bin/env bash
# Runs observra's whole test suite on a machine with only Rust installed:
# unit tests, integration tests that decode real exports with the in-process
# OTLP receiver (HTTP and gRPC), a real Prometheus server scraping the
# /metrics endpoint, the examples run as child processes, trybuild UI
# snapshots and doc tests.
#
# Real peers the suite needs are installed from here, so this stays the one
# command to run:
# - prometheus (Debian package), for tests/tests/prometheus.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing prometheus (Debian package) for the real-Prometheus test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "== installing prometheus (Debian package) with sudo for the real-Prometheus test"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "!!!! prometheus is not installed and cannot be installed here (needs root and apt-get):" >&2
    echo "!!!! the real-Prometheus test will be SKIPPED" >&2
  fi
fi

cargo test --workspace "$@"
