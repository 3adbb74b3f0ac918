#!/usr/bin/env bash
# Draws dashboards/agents.svg, the README's picture of the Grafana dashboard:
# runs the dashboard test (a real Prometheus scraping an agent workload) for
# an extra 90 seconds and draws every panel's query from what Prometheus
# answered. Needs the `prometheus` binary (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
OBSERVRA_DASHBOARD_PICTURE="$PWD/dashboards/agents.svg" \
  cargo test -p observra-test-support --test dashboards -- --nocapture
