#!/usr/bin/env bash
# Runs observra's OpenAI conformance scenarios under Weaver live-check and
# prints Weaver's verdict per scenario. Not part of CI: building Weaver from
# its source takes about 15 minutes on two cores.
#
# The scenarios (examples/src/openai_conformance.rs) are the official
# harness's OpenAI scenario programs (open-telemetry/semantic-conventions-
# conformance, scenarios/gen-ai/python/openai/scenarios/*.py) made with
# async-openai through observra's instrumented client. Each runs with
# content capture SPAN_AND_EVENT and OBSERVRA_BACKEND=otlp: spans, metrics and
# the details event (an OTLP log record, as observra sends it by default
# wherever OTLP is configured) exported over OTLP/gRPC to a `weaver registry
# live-check` listening on 127.0.0.1, which checks everything it receives
# against the semantic conventions plus observra's extension registry
# (model/observra). A zero in the violations column is the goal.
#
# Inputs (environment; each has a default that needs network to GitHub):
#   WEAVER          a weaver binary (0.25.1); else built from WEAVER_SRC
#   WEAVER_SRC      a checkout of open-telemetry/weaver (default: cloned at v0.25.1)
#   SEMCONV_SRC     a checkout of open-telemetry/semantic-conventions (default: cloned)
#   SEMCONV_REF     its tag to check against (default v1.41.1: the registry the
#                   GenAI conventions were measured against before they moved)
#   CONFORMANCE_SRC a checkout of semantic-conventions-conformance: when set, the
#                   harness's advice policies (its span validation, and the GenAI
#                   content validation against the conventions' message JSON
#                   schemas) run in the live-check as the harness runs them, and
#                   its GenAI mock server answers (in a venv under target/)
#                   instead of observra's fake OpenAI server
#   SCENARIOS       which to run (default: all six)
#   CONVENTIONS     v1.41 (default: observra's default mode, checked against
#                   SEMCONV_REF) or latest (the scenarios run with
#                   OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and
#                   are checked against the GenAI repository at GENAI_REF
#                   on top of the core conventions it depends on, SEMCONV_REF
#                   v1.43.0 there, without their gen-ai, mcp and openai models)
#   GENAI_SRC       with CONVENTIONS=latest: a git directory or checkout of
#                   open-telemetry/semantic-conventions-genai (default: cloned)
#   GENAI_REF       its commit (default fe5608e2, what observra's newest mode follows)
#
# Output: target/conformance/<mode>/<scenario>/ holds Weaver's JSON report; the
# summary table is printed and written to target/conformance/<mode>/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/conformance
mkdir -p "$OUT"
CONVENTIONS=${CONVENTIONS:-v1.41}
case "$CONVENTIONS" in
  v1.41) SEMCONV_REF=${SEMCONV_REF:-v1.41.1}; OPT_IN= ;;
  latest) SEMCONV_REF=${SEMCONV_REF:-v1.43.0}; OPT_IN=gen_ai_latest_experimental
    GENAI_REF=${GENAI_REF:-fe5608e249d64bc5961329a82f8915fe95ced51a} ;;
  *) echo "CONVENTIONS is v1.41 or latest, not $CONVENTIONS" >&2; exit 2 ;;
esac
RUN=$OUT/$CONVENTIONS
mkdir -p "$RUN"
SCENARIOS=${SCENARIOS:-"inference streaming tool_calling structured_output multimodal embeddings"}

# 1. Weaver.
if [ -z "${WEAVER:-}" ]; then
  if [ -z "${WEAVER_SRC:-}" ]; then
    WEAVER_SRC=$OUT/weaver-src
    [ -d "$WEAVER_SRC" ] || git clone --quiet --depth 1 --branch v0.25.1 https://github.com/open-telemetry/weaver "$WEAVER_SRC"
  fi
  echo "== building weaver from $WEAVER_SRC (about 15 minutes the first time)"
  # Its rust-toolchain.toml pins a toolchain that may not be installed: any
  # stable >= 1.88 builds it. Its web UI is embedded from ui/dist, built with
  # pnpm; live-check does not use it, so an empty page stands in.
  [ -d "$WEAVER_SRC/ui/dist" ] || { mkdir -p "$WEAVER_SRC/ui/dist" && echo '<html></html>' >"$WEAVER_SRC/ui/dist/index.html"; }
  (cd "$WEAVER_SRC" && RUSTUP_TOOLCHAIN=stable CARGO_TARGET_DIR=$OUT/weaver-target cargo build --quiet --release --bin weaver)
  WEAVER=$OUT/weaver-target/release/weaver
fi
"$WEAVER" --version

# 2. The registry: the conventions at SEMCONV_REF, and observra's on top.
if [ -z "${SEMCONV_SRC:-}" ]; then
  SEMCONV_SRC=$OUT/semconv-src
  [ -d "$SEMCONV_SRC" ] || git clone --quiet --depth 1 --branch "$SEMCONV_REF" https://github.com/open-telemetry/semantic-conventions "$SEMCONV_SRC"
fi
REG=$OUT/registry
rm -rf "$REG" && mkdir -p "$REG/semconv" "$REG/observra" "$REG/combined"
if git -C "$SEMCONV_SRC" rev-parse --verify -q "$SEMCONV_REF^{commit}" >/dev/null; then
  git -C "$SEMCONV_SRC" archive "$SEMCONV_REF" model | tar -x -C "$REG/semconv"
else
  cp -r "$SEMCONV_SRC/model" "$REG/semconv/"
fi
cp model/observra/*.yaml "$REG/observra/"
if [ "$CONVENTIONS" = latest ]; then
  # The GenAI repository's model on the core conventions it depends on,
  # without the core's own (moved) copies of the GenAI models, as its
  # Makefile assembles them.
  if [ -z "${GENAI_SRC:-}" ]; then
    GENAI_SRC=$OUT/genai-src
    [ -d "$GENAI_SRC" ] || git clone --quiet https://github.com/open-telemetry/semantic-conventions-genai "$GENAI_SRC"
  fi
  rm -rf "$REG/semconv/model/gen-ai" "$REG/semconv/model/mcp" "$REG/semconv/model/openai"
  GIT_DIR_ARG=(-C "$GENAI_SRC"); [ -d "$GENAI_SRC/objects" ] && GIT_DIR_ARG=(--git-dir "$GENAI_SRC")
  mkdir -p "$REG/combined/genai"
  git "${GIT_DIR_ARG[@]}" archive "$GENAI_REF" model | tar -x -C "$REG/combined/genai" --strip-components=1
  # Its manifest names the dependency assembled here; its aws-bedrock
  # attributes are the core's own too (defined twice, weaver refuses).
  rm -rf "$REG/combined/genai/manifest.yaml" "$REG/combined/genai/aws-bedrock"
else
  # The dependency, local: no download at check time.
  sed -i "s|registry_path: .*|registry_path: $REG/semconv/model|" "$REG/observra/manifest.yaml"
  echo "== checking observra's registry against its dependency"
  "$WEAVER" registry check -r "$REG/observra" >"$OUT/registry-check.txt" 2>&1 || { cat "$OUT/registry-check.txt"; exit 1; }
fi
# Live-check resolves one registry, and a dependency only contributes what
# the dependent registry references or imports: the conventions and
# observra's definitions are checked as one registry.
cp -r "$REG/semconv/model/." "$REG/combined/"
mkdir -p "$REG/combined/observra"
cp model/observra/attributes.yaml model/observra/metrics.yaml model/observra/events.yaml "$REG/combined/observra/"
"$WEAVER" registry check -r "$REG/combined" >"$OUT/combined-check.txt" 2>&1 || { cat "$OUT/combined-check.txt"; exit 1; }

# The harness's policies and the data they read, as the harness assembles them.
POLICY_ARGS=()
if [ -n "${CONFORMANCE_SRC:-}" ]; then
  POL=$OUT/policies DATA=$OUT/advice-data
  rm -rf "$POL" "$DATA" && mkdir -p "$POL" "$DATA"
  cp "$CONFORMANCE_SRC"/tools/runner/src/opentelemetry/conformance/policies/*.rego \
     "$CONFORMANCE_SRC"/tools/gen-ai/runner/src/genai_conformance/policies/*.rego "$POL/"
  # The message schemas; their draft-07 meta-schema $ref cannot be fetched by weaver's rego engine.
  meta='s|"\$ref": "http://json-schema.org/draft-07/schema#"|"type": "object"|'
  if [ "$CONVENTIONS" = latest ]; then
    # The GenAI repository keeps them beside its model.
    for f in "$REG/combined/genai/gen-ai/"*.json; do sed "$meta" "$f" >"$DATA/$(basename "$f")"; done
  else
    for f in $(git -C "$SEMCONV_SRC" ls-tree --name-only "$SEMCONV_REF" docs/gen-ai/ 2>/dev/null | grep '\.json$' || true); do
      git -C "$SEMCONV_SRC" show "$SEMCONV_REF:$f" | sed "$meta" >"$DATA/$(basename "$f")"
    done
  fi
  # The coverage model the harness's policies read (enums, expected kinds), resolved from the registry.
  "$WEAVER" registry generate --quiet --v2 --registry "$REG/combined" \
    --templates "$CONFORMANCE_SRC/tools/runner/src/opentelemetry/conformance/weaver-templates" coverage-model "$OUT/coverage"
  cp "$OUT/coverage/coverage-model.json" "$DATA/"
  POLICY_ARGS=(--advice-policies "$POL" --advice-data "$DATA/*.json")
fi

# 3. The model server.
SERVER_PID=
if [ -n "${CONFORMANCE_SRC:-}" ]; then
  VENV=$ROOT/target/conformance-venv
  [ -x "$VENV/bin/genai-mock-server" ] || {
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "$CONFORMANCE_SRC/tools/gen-ai/mock-server"
  }
  "$VENV/bin/genai-mock-server" --port 18080 >"$OUT/mock-server.log" 2>&1 &
  SERVER_PID=$!
  export OPENAI_BASE_URL=http://127.0.0.1:18080/v1 OPENAI_API_KEY=test_openai_api_key
  sleep 2
fi
trap '[ -n "$SERVER_PID" ] && kill $SERVER_PID 2>/dev/null || true' EXIT

cargo build --quiet -p observra-examples --bin openai-conformance
BIN=$ROOT/target/debug/openai-conformance

# 4. Each scenario under its own live-check.
printf '| scenario | spans, metrics, logs checked | violations | improvements | information |\n|---|---|---|---|---|\n' >"$RUN/summary.md"
for s in $SCENARIOS; do
  dir=$RUN/$s
  rm -rf "$dir" && mkdir -p "$dir"
  "$WEAVER" registry live-check -r "$REG/combined" --input-source otlp --otlp-grpc-port 14317 --admin-port 14320 \
    --inactivity-timeout 30 --format json --output "$dir" --fail-on none "${POLICY_ARGS[@]}" >"$dir/weaver.log" 2>&1 &
  wpid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/14317) 2>/dev/null && break
    sleep 0.2
  done
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    OBSERVRA_BACKEND=otlp OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_AND_EVENT \
    OTEL_SERVICE_NAME=observra-conformance OTEL_SEMCONV_STABILITY_OPT_IN=$OPT_IN "$BIN" "$s" >"$dir/scenario.log" 2>&1
  curl -s -X POST http://127.0.0.1:14320/stop >/dev/null || true
  wait $wpid || true
  python3 - "$dir" "$s" >>"$RUN/summary.md" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
reports = sorted(d.glob("*.json"))
if not reports:
    print(f"| {sys.argv[2]} | no report (see {d}/weaver.log) | | | |")
    sys.exit()
stats = {}
for r in reports:
    text = r.read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = [json.loads(l) for l in text.splitlines() if l.strip()][-1]
    if isinstance(doc, dict) and "statistics" in doc:
        stats = doc["statistics"]
    elif isinstance(doc, dict) and "total_entities" in doc:
        stats = doc
by_level = stats.get("advice_level_counts", {}) or {}
seen = stats.get("total_entities_by_type", stats.get("total_entities", ""))
print(f"| {sys.argv[2]} | {seen} | {by_level.get('violation', 0)} | {by_level.get('improvement', 0)} | {by_level.get('information', 0)} |")
PY
done
cat "$RUN/summary.md"
echo "Reports: $RUN/<scenario>/"
