#!/usr/bin/env bash
# Runs inside a private network namespace (see tests/tests/phoenix.rs):
# starts Arize Phoenix on 127.0.0.1, runs the support-agent, rig-agent and
# rag-agent examples exporting OTLP/HTTP to it, waits until Phoenix has ingested the spans, writes what
# Phoenix's own HTTP API returns to $OUT, and stops Phoenix by its pid.
# Inputs (environment): PHOENIX_BIN, PORT, WORK, OUT, CARGO, REPO, EXPECTED, IN_NETNS.
set -u
if [ "${IN_NETNS:-0}" = 1 ]; then
  ip link set lo up || { echo "cannot bring loopback up" >&2; exit 3; }
fi
mkdir -p "$WORK"
PHOENIX_WORKING_DIR="$WORK" PHOENIX_HOST=127.0.0.1 PHOENIX_PORT="$PORT" PHOENIX_GRPC_PORT="${GRPC_PORT:-4317}" \
PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ALLOW_EXTERNAL_RESOURCES=false \
PHOENIX_SQL_DATABASE_URL="sqlite:///:memory:" \
  "$PHOENIX_BIN" serve > "$WORK/phoenix.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT

get() { python3 -c "import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$1"; }

for _ in $(seq 1 120); do
  get "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { echo "phoenix exited early:" >&2; tail -20 "$WORK/phoenix.log" >&2; exit 4; }
  sleep 1
done
get "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 || { echo "phoenix did not come up" >&2; tail -20 "$WORK/phoenix.log" >&2; exit 5; }

cd "$REPO" && OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$PORT" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
  OTEL_METRICS_EXPORTER=none OTEL_SERVICE_NAME=support-agent \
  "$CARGO" run --offline --quiet -p observra-examples --bin support-agent > /dev/null \
  || { echo "the example failed" >&2; exit 6; }
# The rig example: rig's own spans, made GenAI spans by observra.
cd "$REPO" && OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$PORT" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
  OTEL_METRICS_EXPORTER=none OTEL_SERVICE_NAME=rig-agent \
  "$CARGO" run --offline --quiet -p observra-examples --bin rig-agent > /dev/null 2>&1 \
  || { echo "the rig example failed" >&2; exit 6; }
# The RAG example: embeddings, a retrieval and a graded answer.
cd "$REPO" && OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$PORT" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
  OTEL_METRICS_EXPORTER=none OTEL_SERVICE_NAME=rag-agent \
  "$CARGO" run --offline --quiet -p observra-examples --bin rag-agent > /dev/null 2>&1 \
  || { echo "the rag example failed" >&2; exit 6; }

# Ingestion is asynchronous: poll until every span is there.
for _ in $(seq 1 60); do
  get "http://127.0.0.1:$PORT/v1/projects/default/spans?limit=1000" > "$OUT" 2>/dev/null || true
  python3 -c "import json,sys; sys.exit(0 if len(json.load(open(sys.argv[1]))['data']) >= int(sys.argv[2]) else 1)" "$OUT" "$EXPECTED" 2>/dev/null && exit 0
  sleep 1
done
echo "phoenix did not ingest $EXPECTED spans in time" >&2
exit 7
