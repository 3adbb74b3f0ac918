//! Attribute macros for [observra](https://docs.rs/observra).
//!
//! Use them through the `observra` crate (`use observra::traced;`), which
//! re-exports them. Each macro is two halves: `args` parses the attribute's
//! arguments into a checked model (every problem reported, each pointing at
//! the offending tokens), and `expand` turns that model plus the function
//! into code that calls only `::observra::__private`. No runtime logic lives
//! here.

mod args;
mod expand;
mod genai;
mod metrics;
/// The attribute names, shared with the runtime: one file, compiled into both crates.
#[allow(dead_code)]
use observra_semconv as semconv;

use proc_macro::TokenStream;

/// Records each call of a function as an OpenTelemetry span.
///
/// Works on sync and async functions, methods (`&self`, `&mut self`,
/// `self`), generic functions, and any return type. An `Err` return sets the
/// span status to ERROR, `error.type` (the error's type name, or what
/// `observra::ErrorType` says) and an `exception` event; a panic ends the
/// span with `error.type = panic`; an async call dropped before it finishes
/// ends it with `error.type = cancelled`.
///
/// No argument values are recorded unless asked for.
///
/// Arguments (all optional):
/// - `name = "..."`: the span name (default: the function's name).
/// - `kind = client | server | internal | producer | consumer` (default `internal`).
/// - `attrs(key = value, ...)`: attributes; keys may be dotted
///   (`gen_ai.request.model`) or string literals; values are literals or any
///   expression over the parameters whose type implements
///   `observra::AttributeValue` (strings, numbers, booleans, and slices,
///   `Vec`s and `Option`s of those).
/// - `args`: record every parameter (except `self` and skipped ones) with `Debug`.
/// - `fields(a, b)`: record only these parameters with `Debug`.
/// - `skip(a, b)`: never record these parameters (with `args`).
/// - `metrics`: also count calls (`observra.function.calls`) and time them
///   (`observra.function.duration`) by `code.function.name` and `observra.result`
///   (`ok`/`error`), like autometrics.
///
/// ```ignore
/// #[observra::traced(kind = client, attrs(component = "rag", top_k = k), fields(query))]
/// async fn retrieve(query: &str, k: u32) -> Result<Vec<Doc>, Error> { ... }
/// ```
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::traced(args.into(), item.into()).into()
}

/// Records a call to a model as a GenAI client span (`{operation} {model}`,
/// kind CLIENT) with the request parameters, and reads usage, response id,
/// response model and finish reasons from the returned value (or the `Ok`
/// value), which must implement `observra::LlmResponse`.
///
/// Arguments:
/// - `provider = "openai"` (required): `gen_ai.provider.name`.
/// - `model = <expr>` (required): `gen_ai.request.model`, any expression over
///   the parameters that gives a `&str`/`String` (e.g. `req.model`).
/// - `operation = "chat"` (default), `"text_completion"`, `"generate_content"`, `"embeddings"`.
/// - request parameters as expressions: `temperature`, `max_tokens`, `top_p`,
///   `top_k`, `stop_sequences`, `seed`, `frequency_penalty`,
///   `presence_penalty`, `choice_count`; and `server_address`,
///   `server_port`, `conversation_id`.
/// - `stream`: the function returns `impl Stream` of `observra::LlmChunk`s;
///   the span ends when the stream does, with time-to-first-chunk recorded.
/// - `input = <expr>`, `system = <expr>`: content captured (redacted) only
///   when content capture is on.
/// - `response = manual`: do not read the return value (for foreign types);
///   record with `observra::current_llm_call()` in the body.
/// - and `attrs(...)`, `args`, `fields(...)`, `skip(...)` as on `#[traced]`.
///
/// ```ignore
/// #[observra::llm_call(provider = "openai", model = req.model, temperature = req.temperature)]
/// async fn complete(req: &ChatRequest) -> Result<ChatResponse, Error> { ... }
/// ```
#[proc_macro_attribute]
pub fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    genai::llm_call(args.into(), item.into()).into()
}

/// Records a tool execution: span `execute_tool {name}`, kind INTERNAL.
///
/// Arguments: `name = "..."` (default: the function name), `description =
/// "..."`, `tool_type = function | extension | datastore` (default
/// `function`), `call_id = <expr>`, `arguments = <expr>` (content, captured
/// only when capture is on; the result is captured then too), plus the
/// `#[traced]` recording arguments.
#[proc_macro_attribute]
pub fn tool_call(args: TokenStream, item: TokenStream) -> TokenStream {
    genai::tool_call(args.into(), item.into()).into()
}

/// Records a retrieval (a vector-store search, a search API): span
/// `retrieval {data_source}`, CLIENT, `gen_ai.operation.name = retrieval`.
/// The function returns a [`RetrievalResponse`](../observra/trait.RetrievalResponse.html)
/// (or a `Result` of one): its documents (id and score) are captured as
/// `gen_ai.retrieval.documents` when content capture is on.
///
/// Arguments: `data_source = "..."` (`gen_ai.data_source.id`),
/// `provider = "..."` and `model = "..."` (when a model does the
/// retrieval), `top_k = <expr>` (`gen_ai.request.top_k`), `query = <expr>`
/// (content, captured only when capture is on), plus the `#[traced]`
/// recording arguments.
#[proc_macro_attribute]
pub fn retrieval(args: TokenStream, item: TokenStream) -> TokenStream {
    genai::retrieval(args.into(), item.into()).into()
}

/// Records an agent invocation: span `invoke_agent {name}`. The span carries
/// totals of the model and tool calls beneath it (`observra.total.*`), and a
/// `conversation_id` set here reaches every GenAI span beneath it.
///
/// Arguments: `name = "..."`, `id = <expr>`, `description = "..."`,
/// `version = "..."`, `provider = "..."`, `conversation_id = <expr>`,
/// `remote` (kind CLIENT), plus the `#[traced]` recording arguments.
#[proc_macro_attribute]
pub fn agent(args: TokenStream, item: TokenStream) -> TokenStream {
    genai::agent(args.into(), item.into()).into()
}

/// Records a workflow: span `invoke_workflow {name}` (default: the function
/// name), with totals of what ran beneath it.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    genai::workflow(args.into(), item.into()).into()
}

/// Declares metrics: counters, up-down counters, histograms (with optional
/// bucket boundaries) and observable gauges, each a `static` with a name, a
/// unit, a description (its doc comment) and a fixed set of labels.
///
/// ```ignore
/// observra::metrics! {
///     /// Orders placed.
///     pub counter ORDERS: "shop.orders", unit = "{order}", labels(channel);
///     /// Basket value.
///     histogram BASKET: "shop.basket.value", unit = "{USD}", buckets = [1, 10, 100], labels(channel);
///     /// Sessions open now.
///     updown SESSIONS: "shop.sessions.active", unit = "{session}";
///     /// Items waiting.
///     gauge QUEUE_DEPTH: "shop.queue.depth", unit = "{item}";
/// }
///
/// ORDERS.add(1, "web");            // one parameter per declared label
/// BASKET.record(42.0, "mobile");
/// SESSIONS.add(-1);
/// QUEUE_DEPTH.observe(|| 3.0);
/// ```
///
/// Names follow the OpenTelemetry rules (ASCII, a letter first,
/// `[A-Za-z0-9_.-/]`, at most 255 characters) and units are printable ASCII
/// of at most 63 characters: both are checked at compile time. Label values
/// must implement `observra::LabelValue` (`&'static str`, `bool`, your
/// enums; `observra::Unbounded(..)` as the escape hatch).
#[proc_macro]
pub fn metrics(input: TokenStream) -> TokenStream {
    metrics::metrics(input.into()).into()
}
