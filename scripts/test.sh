#!/usr/bin/env bash
# Runs observra's whole test suite on a machine with only Rust installed:
# unit tests, integration tests that decode real exports with the in-process
# OTLP receiver (HTTP and gRPC), the examples run as child processes,
# trybuild UI snapshots and doc tests.
#
# Real peers the suite needs (none yet beyond the in-process receiver) are
# installed from here, so this stays the one command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace "$@"
