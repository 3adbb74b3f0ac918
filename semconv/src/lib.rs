//! Every attribute, metric, event and field name observra emits or
//! interprets, in one place, shared by the `observra` runtime and the
//! `observra-macros` attribute macros so no name is spelled twice.
//!
//! Names follow the OpenTelemetry semantic conventions (GenAI, `server.*`,
//! `error.type`, `code.*`), always their newest spelling; observra's own
//! additions live under `observra.*` and are described in the Weaver
//! registry `model/observra` of the repository. The test suite checks every
//! `gen_ai.*` name here against a vendored copy of the conventions' registry.

#![deny(missing_docs)]

/// `error.type`: low-cardinality class of an error (`cancelled`, `panic`, a type name).
pub const ERROR_TYPE: &str = "error.type";
/// Span event name for an exception.
pub const EXCEPTION_EVENT: &str = "exception";
/// `exception.type` on the exception event.
pub const EXCEPTION_TYPE: &str = "exception.type";
/// `exception.message` on the exception event.
pub const EXCEPTION_MESSAGE: &str = "exception.message";

/// `error.type` value for a future dropped before it completed.
pub const ERROR_CANCELLED: &str = "cancelled";
/// `error.type` value for a function that panicked.
pub const ERROR_PANIC: &str = "panic";

/// `tracing` field that overrides the exported span name.
pub const OTEL_NAME: &str = "otel.name";
/// `tracing` field that sets the span kind (`client`, `server`, ...).
pub const OTEL_KIND: &str = "otel.kind";
/// `tracing` field that sets the span status code (`OK`, `ERROR`).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// `tracing` field that sets the span status description.
pub const OTEL_STATUS_MESSAGE: &str = "otel.status_message";
/// `tracing` field holding an event's message.
pub const MESSAGE: &str = "message";

/// Event attribute: the `tracing` level of an event.
pub const EVENT_LEVEL: &str = "level";
/// Event attribute: the `tracing` target of an event.
pub const EVENT_TARGET: &str = "target";

/// Resource attribute `service.name`.
pub const SERVICE_NAME: &str = "service.name";
/// Resource attribute `service.version`.
pub const SERVICE_VERSION: &str = "service.version";
/// Resource attribute `deployment.environment.name`.
pub const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment.name";
/// Resource attribute `telemetry.sdk.name`.
pub const TELEMETRY_SDK_NAME: &str = "telemetry.sdk.name";
/// Resource attribute `telemetry.sdk.language`.
pub const TELEMETRY_SDK_LANGUAGE: &str = "telemetry.sdk.language";
/// Resource attribute `telemetry.sdk.version`.
pub const TELEMETRY_SDK_VERSION: &str = "telemetry.sdk.version";
/// Resource attribute `telemetry.distro.name`: observra itself.
pub const TELEMETRY_DISTRO_NAME: &str = "telemetry.distro.name";
/// Resource attribute `telemetry.distro.version`.
pub const TELEMETRY_DISTRO_VERSION: &str = "telemetry.distro.version";

/// Instrumentation scope name of the spans observra exports.
pub const SCOPE_NAME: &str = "observra";

// ---- GenAI (semantic conventions v1.41 names; see GENAI_SEMCONV.md) ----

/// `gen_ai.operation.name`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// `gen_ai.provider.name`.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// `gen_ai.request.model`.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// `gen_ai.request.max_tokens`.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// `gen_ai.request.temperature`.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// `gen_ai.request.top_p`.
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
/// `gen_ai.request.top_k`: a double in v1.41, an integer in the newest
/// conventions.
pub const GEN_AI_REQUEST_TOP_K: &str = "gen_ai.request.top_k";
/// `gen_ai.retrieval.top_k` (integer): the documents a retrieval asked
/// for; in the newest conventions (v1.41 has `gen_ai.request.top_k`).
pub const GEN_AI_RETRIEVAL_TOP_K: &str = "gen_ai.retrieval.top_k";
/// `gen_ai.request.frequency_penalty`.
pub const GEN_AI_REQUEST_FREQUENCY_PENALTY: &str = "gen_ai.request.frequency_penalty";
/// `gen_ai.request.presence_penalty`.
pub const GEN_AI_REQUEST_PRESENCE_PENALTY: &str = "gen_ai.request.presence_penalty";
/// `gen_ai.request.stop_sequences` (string array).
pub const GEN_AI_REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
/// `gen_ai.request.seed`.
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
/// `gen_ai.request.choice.count`.
pub const GEN_AI_REQUEST_CHOICE_COUNT: &str = "gen_ai.request.choice.count";
/// `gen_ai.request.stream` (bool).
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
/// `gen_ai.conversation.id` (span attribute only, never a metric attribute).
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// The requested output type (`text`, `json`, `image`, `speech`).
pub const GEN_AI_OUTPUT_TYPE: &str = "gen_ai.output.type";
/// Embeddings: the requested encoding formats.
pub const GEN_AI_REQUEST_ENCODING_FORMATS: &str = "gen_ai.request.encoding_formats";
/// Embeddings: the number of dimensions of each embedding.
pub const GEN_AI_EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
/// The tools offered to the model (opt-in content).
pub const GEN_AI_TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
/// OpenAI: the service tier asked for.
pub const OPENAI_REQUEST_SERVICE_TIER: &str = "openai.request.service_tier";
/// OpenAI: the service tier that served the request.
pub const OPENAI_RESPONSE_SERVICE_TIER: &str = "openai.response.service_tier";
/// OpenAI: the backend configuration fingerprint of the response.
pub const OPENAI_RESPONSE_SYSTEM_FINGERPRINT: &str = "openai.response.system_fingerprint";

/// `server.address`.
pub const SERVER_ADDRESS: &str = "server.address";
/// `server.port`.
pub const SERVER_PORT: &str = "server.port";

/// HTTP (stable HTTP conventions): `http.request.method`.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// `http.request.method_original`: the method as sent, when it is not a known one.
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
/// `http.route`: the matched route template (`/orders/{id}`).
pub const HTTP_ROUTE: &str = "http.route";
/// `http.response.status_code`.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// `url.path`.
pub const URL_PATH: &str = "url.path";
/// `url.scheme`.
pub const URL_SCHEME: &str = "url.scheme";
/// `url.full` (credentials and query values redacted).
pub const URL_FULL: &str = "url.full";
/// `network.protocol.version` (`1.1`, `2`).
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
/// `user_agent.original`.
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";

/// MCP: `mcp.method.name` (`tools/call`, `initialize`, ...).
pub const MCP_METHOD_NAME: &str = "mcp.method.name";
/// MCP: `mcp.protocol.version` (`2025-06-18`).
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
/// MCP: `mcp.session.id`.
pub const MCP_SESSION_ID: &str = "mcp.session.id";
/// MCP: `mcp.resource.uri`, the resource a request reads (`resources/read`).
pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
/// `gen_ai.prompt.name`: the prompt (template) a request is about (`prompts/get`).
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
/// `jsonrpc.request.id`.
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
/// `rpc.response.status_code` (a JSON-RPC error code, `-32602`).
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
/// `network.transport` (`pipe`, `tcp`).
pub const NETWORK_TRANSPORT: &str = "network.transport";

/// `gen_ai.response.id`.
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
/// `gen_ai.response.model`.
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// `gen_ai.response.finish_reasons` (string array).
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// `gen_ai.response.time_to_first_chunk` (seconds, streams).
pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
/// `gen_ai.usage.input_tokens` (all input tokens, cached ones included).
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// `gen_ai.usage.output_tokens`.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// `gen_ai.usage.cache_read.input_tokens`.
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// `gen_ai.usage.cache_creation.input_tokens`.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
/// `gen_ai.usage.reasoning.output_tokens`.
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";

/// `gen_ai.agent.id`.
pub const GEN_AI_AGENT_ID: &str = "gen_ai.agent.id";
/// `gen_ai.agent.name`.
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
/// `gen_ai.agent.description`.
pub const GEN_AI_AGENT_DESCRIPTION: &str = "gen_ai.agent.description";
/// `gen_ai.agent.version`.
pub const GEN_AI_AGENT_VERSION: &str = "gen_ai.agent.version";
/// `gen_ai.workflow.name`.
pub const GEN_AI_WORKFLOW_NAME: &str = "gen_ai.workflow.name";
/// `gen_ai.tool.name`.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// `gen_ai.tool.call.id`.
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// `gen_ai.tool.type` (`function`, `extension`, `datastore`).
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
/// `gen_ai.tool.description`.
pub const GEN_AI_TOOL_DESCRIPTION: &str = "gen_ai.tool.description";

/// `gen_ai.input.messages` (JSON, opt-in content).
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// `gen_ai.output.messages` (JSON, opt-in content).
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// `gen_ai.system_instructions` (JSON, opt-in content).
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// `gen_ai.tool.call.arguments` (opt-in content).
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// `gen_ai.tool.call.result` (opt-in content).
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// `observra.human_oversight`: marks a span or event where a human approved,
/// overrode, rejected or escalated what an agent did. Values: `approved`,
/// `overridden`, `rejected`, `escalated` (or your own word). The audit
/// export lists every such point.
pub const OBSERVRA_HUMAN_OVERSIGHT: &str = "observra.human_oversight";
/// Who decided (a user id, not a name, where possible).
pub const OBSERVRA_HUMAN_OVERSIGHT_ACTOR: &str = "observra.human_oversight.actor";
/// Why, in a few words.
pub const OBSERVRA_HUMAN_OVERSIGHT_REASON: &str = "observra.human_oversight.reason";
/// Event name of the log record the `otel_log` backend makes of a GenAI span.
pub const GENAI_OPERATION_LOG_EVENT: &str = "observra.genai.operation";
/// Attribute of that record: the span's duration in seconds.
pub const OBSERVRA_DURATION: &str = "observra.duration";
/// Attribute of that record: the failed span's status description.
pub const OBSERVRA_STATUS_MESSAGE: &str = "observra.status.message";
/// The event carrying captured content in the event form.
pub const GEN_AI_DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";
/// The evaluation event: `gen_ai.evaluation.result`.
pub const GEN_AI_EVALUATION_EVENT: &str = "gen_ai.evaluation.result";
/// `gen_ai.evaluation.name`.
pub const GEN_AI_EVALUATION_NAME: &str = "gen_ai.evaluation.name";
/// `gen_ai.evaluation.score.value`.
pub const GEN_AI_EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// `gen_ai.evaluation.score.label`.
pub const GEN_AI_EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// `gen_ai.evaluation.explanation`.
pub const GEN_AI_EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
/// `gen_ai.data_source.id`: the data source a retrieval searched.
pub const GEN_AI_DATA_SOURCE_ID: &str = "gen_ai.data_source.id";
/// `gen_ai.retrieval.query.text` (content).
pub const GEN_AI_RETRIEVAL_QUERY_TEXT: &str = "gen_ai.retrieval.query.text";
/// `gen_ai.retrieval.documents` (content): `[{"id": ..., "score": ...}]`.
pub const GEN_AI_RETRIEVAL_DOCUMENTS: &str = "gen_ai.retrieval.documents";
/// `gen_ai.token.type` metric attribute (`input`, `output`).
pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";

/// Operation names.
pub mod operation {
    /// A chat completion.
    pub const CHAT: &str = "chat";
    /// A plain text completion.
    pub const TEXT_COMPLETION: &str = "text_completion";
    /// Gemini-style content generation.
    pub const GENERATE_CONTENT: &str = "generate_content";
    /// An embeddings request.
    pub const EMBEDDINGS: &str = "embeddings";
    /// A tool execution.
    pub const EXECUTE_TOOL: &str = "execute_tool";
    /// An agent invocation.
    pub const INVOKE_AGENT: &str = "invoke_agent";
    /// A workflow invocation.
    pub const INVOKE_WORKFLOW: &str = "invoke_workflow";
    /// `retrieval`.
    pub const RETRIEVAL: &str = "retrieval";
    /// The model operations `#[llm_call]` accepts.
    pub const LLM: &[&str] = &[CHAT, TEXT_COMPLETION, GENERATE_CONTENT, EMBEDDINGS];
}

/// Metric instrument names, units and bucket boundaries.
pub mod metrics {
    /// `gen_ai.client.operation.duration` (s).
    pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
    /// `gen_ai.client.token.usage` ({token}).
    pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
    /// `gen_ai.client.operation.time_to_first_chunk` (s).
    pub const TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
    /// `gen_ai.client.operation.time_per_output_chunk` (s).
    pub const TIME_PER_OUTPUT_CHUNK: &str = "gen_ai.client.operation.time_per_output_chunk";
    /// `http.server.request.duration` (s).
    pub const HTTP_SERVER_DURATION: &str = "http.server.request.duration";
    /// `http.client.request.duration` (s).
    pub const HTTP_CLIENT_DURATION: &str = "http.client.request.duration";
    /// Buckets of the HTTP duration histograms, seconds (the HTTP conventions' advice).
    pub const HTTP_DURATION_BUCKETS: &[f64] =
        &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
    /// `observra.evaluation.score`: evaluation scores, by evaluation name and label.
    pub const EVALUATION_SCORE: &str = "observra.evaluation.score";
    /// Buckets of the evaluation score histogram: fine from 0 to 1, then the
    /// usual 1-to-5 and 1-to-10 scales.
    pub const EVALUATION_BUCKETS: &[f64] =
        &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 100.0];
    /// `mcp.client.operation.duration` (s).
    pub const MCP_CLIENT_DURATION: &str = "mcp.client.operation.duration";
    /// `mcp.server.operation.duration` (s).
    pub const MCP_SERVER_DURATION: &str = "mcp.server.operation.duration";
    /// Buckets of the MCP duration histograms, seconds (the MCP conventions' advice).
    pub const MCP_DURATION_BUCKETS: &[f64] =
        &[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
    /// `gen_ai.invoke_agent.duration` (s).
    pub const INVOKE_AGENT_DURATION: &str = "gen_ai.invoke_agent.duration";
    /// `gen_ai.execute_tool.duration` (s).
    pub const EXECUTE_TOOL_DURATION: &str = "gen_ai.execute_tool.duration";
    /// `gen_ai.workflow.duration` (s).
    pub const WORKFLOW_DURATION: &str = "gen_ai.workflow.duration";
    /// `gen_ai.invoke_agent.inference_calls` ({inference_call}): model calls
    /// one agent invocation made itself (newest conventions only).
    pub const INVOKE_AGENT_INFERENCE_CALLS: &str = "gen_ai.invoke_agent.inference_calls";
    /// `gen_ai.invoke_agent.tool_calls` ({tool_call}): tool calls one agent
    /// invocation made itself (newest conventions only).
    pub const INVOKE_AGENT_TOOL_CALLS: &str = "gen_ai.invoke_agent.tool_calls";
    /// Buckets of [`INVOKE_AGENT_DURATION`], seconds (the conventions' advice).
    pub const AGENT_DURATION_BUCKETS: &[f64] =
        &[0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6];
    /// Buckets of [`WORKFLOW_DURATION`], seconds (the conventions' advice).
    pub const WORKFLOW_DURATION_BUCKETS: &[f64] =
        &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];
    /// Buckets of the per-invocation call counts (the conventions' advice).
    pub const CALL_COUNT_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
    /// `observra.cost` ({USD}).
    pub const COST: &str = "observra.cost";
    /// `observra.budget.exceeded` ({event}).
    pub const BUDGET_EXCEEDED: &str = "observra.budget.exceeded";

    /// `observra.agent.requests` ({request}): agent invocations (the agent
    /// metric set of the custom-OTel lesson, in observra's namespace).
    pub const AGENT_REQUESTS: &str = "observra.agent.requests";
    /// `observra.agent.errors` ({request}): failed agent invocations; starts
    /// at 0 when an agent is first seen.
    pub const AGENT_ERRORS: &str = "observra.agent.errors";
    /// `observra.agent.request.duration` (s).
    pub const AGENT_DURATION: &str = "observra.agent.request.duration";
    /// `observra.agent.tokens` ({token}): input and output tokens.
    pub const AGENT_TOKENS: &str = "observra.agent.tokens";
    /// `observra.agent.cost` ({USD}).
    pub const AGENT_COST: &str = "observra.agent.cost";
    /// `observra.agent.tool.calls` ({call}).
    pub const AGENT_TOOL_CALLS: &str = "observra.agent.tool.calls";
    /// `observra.agent.tool.errors` ({call}).
    pub const AGENT_TOOL_ERRORS: &str = "observra.agent.tool.errors";
    /// `observra.agent.requests.active` ({request}, up-down counter).
    pub const AGENT_ACTIVE: &str = "observra.agent.requests.active";
    /// Label of the agent metric set: the agent's name (the conventions' attribute).
    pub const LABEL_AGENT: &str = super::GEN_AI_AGENT_NAME;
    /// Label of the agent metric set: the model a call is priced by.
    pub const LABEL_MODEL: &str = super::GEN_AI_REQUEST_MODEL;
    /// Label of the agent metric set: the tool.
    pub const LABEL_TOOL: &str = super::GEN_AI_TOOL_NAME;
    /// `observra.function.calls` ({call}): calls of `#[traced(metrics)]`
    /// functions (autometrics-style).
    pub const FUNCTION_CALLS: &str = "observra.function.calls";
    /// `observra.function.duration` (s).
    pub const FUNCTION_DURATION: &str = "observra.function.duration";
    /// Label of the function metrics: the function's fully qualified name
    /// (`module::function`), the conventions' `code.function.name`.
    pub const LABEL_FUNCTION: &str = "code.function.name";
    /// Label of the function metrics: `ok` or `error`.
    pub const LABEL_RESULT: &str = "observra.result";

    /// `observra.pipeline.spans`: spans the pipeline handled, by `observra.state`
    /// (`exported`, `failed`, `dropped`; counters) since the process started;
    /// `dropped` by [`PIPELINE_REASON`] (`backend_queue` and `stopped` per
    /// `observra.backend`; `collector_queue`, `stopped`, `assembly_failed`
    /// and `redaction_failed` before any backend, without one).
    pub const PIPELINE_SPANS: &str = "observra.pipeline.spans";
    /// `observra.pipeline.queue.depth`: spans waiting or being exported now.
    pub const PIPELINE_QUEUE: &str = "observra.pipeline.queue.depth";
    /// `observra.pipeline.export.errors`: failed export calls.
    pub const PIPELINE_EXPORT_ERRORS: &str = "observra.pipeline.export.errors";
    /// `observra.pipeline.exports`: export calls, by `observra.backend` and `observra.result`
    /// (`success`, `failure`).
    pub const PIPELINE_EXPORTS: &str = "observra.pipeline.exports";
    /// `observra.pipeline.export.duration` (s): time of each export call, by
    /// `observra.backend` and `observra.result`.
    pub const PIPELINE_EXPORT_DURATION: &str = "observra.pipeline.export.duration";
    /// `observra.pipeline.metric_points`: metric data points the OTLP metric
    /// exporter delivered (`observra.state` = `exported`) or failed to (`failed`).
    pub const PIPELINE_METRIC_POINTS: &str = "observra.pipeline.metric_points";
    /// `observra.pipeline.log_records`: log records the `otel_log` backend delivered.
    pub const PIPELINE_LOG_RECORDS: &str = "observra.pipeline.log_records";
    /// `observra.pipeline.metric_jobs.dropped` ({span}): closed spans whose
    /// metrics were lost, by [`PIPELINE_REASON`] (`collector_queue`,
    /// `stopped`, `assembly_failed`).
    pub const PIPELINE_METRIC_JOBS_DROPPED: &str = "observra.pipeline.metric_jobs.dropped";
    /// Attribute of [`PIPELINE_SPANS`].
    pub const PIPELINE_STATE: &str = "observra.state";
    /// Attribute of the pipeline metrics: the backend's name.
    pub const PIPELINE_BACKEND: &str = "observra.backend";
    /// `observra.pipeline.sampler.dropped` ({span}): spans the tail sampler dropped, by [`PIPELINE_REASON`].
    pub const PIPELINE_SAMPLER_DROPPED: &str = "observra.pipeline.sampler.dropped";
    /// `observra.pipeline.sampler.untold` ({span}): spans dropped on the
    /// callers' threads that the tail sampler could not be told about.
    pub const PIPELINE_SAMPLER_UNTOLD: &str = "observra.pipeline.sampler.untold";
    /// `observra.pipeline.sampler.held` ({span}): spans the tail sampler holds now.
    pub const PIPELINE_SAMPLER_HELD: &str = "observra.pipeline.sampler.held";
    /// `observra.pipeline.evaluations.dropped` ({evaluation}): evaluations lost before they
    /// landed, by [`PIPELINE_REASON`] (`queue_full`, `pending_full`).
    pub const PIPELINE_EVALUATIONS_DROPPED: &str = "observra.pipeline.evaluations.dropped";
    /// Why something was lost: on [`PIPELINE_SAMPLER_DROPPED`], `not_selected`,
    /// `trace_too_large` or `late`; on [`PIPELINE_SPANS`] (`dropped`) and
    /// [`PIPELINE_METRIC_JOBS_DROPPED`], `collector_queue`, `backend_queue`,
    /// `stopped`, `assembly_failed` or `redaction_failed`; on
    /// [`PIPELINE_EVALUATIONS_DROPPED`], `queue_full` or `pending_full`.
    pub const PIPELINE_REASON: &str = "observra.reason";
    /// Attribute of [`PIPELINE_EXPORTS`]: `success` or `failure`.
    pub const PIPELINE_RESULT: &str = "observra.result";

    /// Buckets of every duration histogram, seconds.
    pub const DURATION_BUCKETS: &[f64] =
        &[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    /// Buckets of the token usage histogram.
    pub const TOKEN_BUCKETS: &[f64] = &[
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
        67108864.0,
    ];
}

/// `observra.cost.model`: on the unknown-model warning event, the model no price was found for.
pub const OBSERVRA_COST_MODEL: &str = "observra.cost.model";
/// `observra.cost.usd`: the cost of one model call, USD (double).
pub const OBSERVRA_COST_USD: &str = "observra.cost.usd";
/// Totals on an agent or workflow span of what ran beneath it (clearly totals).
pub const OBSERVRA_TOTAL_INPUT_TOKENS: &str = "observra.total.input_tokens";
/// See [`OBSERVRA_TOTAL_INPUT_TOKENS`].
pub const OBSERVRA_TOTAL_OUTPUT_TOKENS: &str = "observra.total.output_tokens";
/// See [`OBSERVRA_TOTAL_INPUT_TOKENS`].
pub const OBSERVRA_TOTAL_COST_USD: &str = "observra.total.cost.usd";
/// Number of model calls beneath an agent or workflow span.
pub const OBSERVRA_TOTAL_LLM_CALLS: &str = "observra.total.llm_calls";
/// Number of tool calls beneath an agent or workflow span.
pub const OBSERVRA_TOTAL_TOOL_CALLS: &str = "observra.total.tool_calls";
/// Budget kind on the budget event and counter (`call`, `agent`, `window`).
pub const OBSERVRA_BUDGET_KIND: &str = "observra.budget.kind";
/// `tracing` field marking a span whose function metrics are wanted
/// (`#[traced(metrics)]`); not exported as an attribute.
pub const OBSERVRA_FUNCTION_METRICS: &str = "observra.metrics";
/// Number of chunks a streamed response delivered.
pub const OBSERVRA_STREAM_CHUNKS: &str = "observra.stream.chunks";
