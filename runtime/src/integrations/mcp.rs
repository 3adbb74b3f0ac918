//! MCP (Model Context Protocol) through [rmcp](https://docs.rs/rmcp), the
//! official Rust SDK (feature `mcp`): a CLIENT span per request the client
//! sends and a SERVER span per request the server handles, per the MCP
//! semantic conventions, in one trace across processes (the W3C context
//! travels in the request's `params._meta`, SEP-414), and the
//! `mcp.client.operation.duration` / `mcp.server.operation.duration`
//! histograms.
//!
//! One line at each end:
//!
//! ```ignore
//! // client: wrap the running client (or a `&Peer<RoleClient>`)
//! let client = observra::integrations::mcp::TracedClient::new(().serve(transport).await?).stdio();
//! let result = client.call_tool(CallToolRequestParams::new("lookup_order")).await?;
//!
//! // server: wrap the handler
//! observra::integrations::mcp::TracedServer::new(OrderTools::new()).serve(stdio()).await?;
//! ```
//!
//! - Span names `{mcp.method.name} {target}` (`tools/call lookup_order`,
//!   `prompts/get {name}`), else `{mcp.method.name}`; `mcp.method.name`,
//!   `jsonrpc.request.id`, `mcp.protocol.version`, `mcp.session.id` (server,
//!   streamable HTTP), `network.transport`
//!   (`pipe` for stdio, `tcp` for HTTP), `server.address`/`server.port`
//!   (client, HTTP); a tool call adds `gen_ai.tool.name` and
//!   `gen_ai.operation.name = execute_tool`, so it counts as a tool call in
//!   the GenAI metrics too; `prompts/get` adds `gen_ai.prompt.name`, and
//!   `resources/read` adds `mcp.resource.uri` (on the span only: the
//!   metrics leave the unbounded URI out, as the conventions' opt-in says).
//! - Failure: `error.type = tool_error` when the result has `isError: true`;
//!   the JSON-RPC error code (`-32602`) as `error.type` and
//!   `rpc.response.status_code` when the server answers an error.
//! - A tool call made inside a `#[tool_call]` of the same tool gets the MCP
//!   attributes on that span instead of a second span (as the conventions
//!   ask).
//! - Tool arguments and results are content: absent unless capture is on,
//!   redacted when it is.
//! - On the server, the tool and prompt names a client asks for are the
//!   client's choice: in the metrics (the MCP and GenAI ones) a name is
//!   kept only when the server declares it (`get_tool`, or its `tools/list`
//!   / `prompts/list`), and is `_OTHER` otherwise, so random names cannot
//!   fill the metric SDK's series limit; the span keeps the name asked for
//!   (redacted, like every string).

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, Peer, PeerRequestOptions, RequestContext, ServiceError, SubscriptionContext,
};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler};
use tracing::Instrument;

use crate::record::span_ref::SpanRef;
use observra_semconv as sc;

/// `mcp.method.name` of a tool call.
const TOOLS_CALL: &str = "tools/call";

/// How the MCP session travels (`network.transport`, `server.*`).
#[derive(Debug, Clone, Default)]
enum Wire {
    #[default]
    Unknown,
    /// stdio: `pipe`.
    Pipe,
    /// Streamable HTTP: `tcp`, with the server's address and port.
    Tcp { address: Option<String>, port: Option<i64> },
}

impl Wire {
    fn transport(&self) -> Option<&'static str> {
        match self {
            Wire::Unknown => None,
            Wire::Pipe => Some("pipe"),
            Wire::Tcp { .. } => Some("tcp"),
        }
    }
    fn http(url: &str) -> Wire {
        match crate::genai::request::endpoint_of(url) {
            Some((host, port, _)) => {
                Wire::Tcp { address: Some(host.trim_matches(['[', ']']).to_string()), port: Some(i64::from(port)) }
            }
            None => Wire::Tcp { address: None, port: None },
        }
    }
}

/// `error.type` and `rpc.response.status_code` of a failed request.
fn failure(e: &ServiceError) -> (Cow<'static, str>, Option<String>) {
    match e {
        ServiceError::McpError(ErrorData { code, .. }) => {
            let code = code.0.to_string();
            (Cow::Owned(code.clone()), Some(code))
        }
        ServiceError::Timeout { .. } => (Cow::Borrowed("timeout"), None),
        ServiceError::TransportClosed => (Cow::Borrowed("transport_closed"), None),
        ServiceError::TransportSend(_) => (Cow::Borrowed("transport_send"), None),
        ServiceError::Cancelled { .. } => (Cow::Borrowed("cancelled"), None),
        ServiceError::UnexpectedResponse => (Cow::Borrowed("unexpected_response"), None),
        _ => (Cow::Borrowed("_OTHER"), None),
    }
}

/// The tool result as captured content: its structured content, else its text.
fn result_content(r: &CallToolResult) -> serde_json::Value {
    match &r.structured_content {
        Some(v) => v.clone(),
        None => serde_json::to_value(&r.content).unwrap_or_default(),
    }
}

/// What a request is about: the target in its span name and the attribute
/// naming it.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    None,
    /// `gen_ai.tool.name` (and `gen_ai.operation.name = execute_tool`).
    Tool(&'a str),
    /// `gen_ai.prompt.name`.
    Prompt(&'a str),
    /// `mcp.resource.uri`; not in the span name, where an unbounded URI
    /// does not belong.
    Resource(&'a str),
}

impl<'a> Subject<'a> {
    /// `{method} {target}` for a tool or a prompt, else `{method}`.
    fn span_name(self, method: &str) -> String {
        match self {
            Subject::Tool(t) | Subject::Prompt(t) => format!("{method} {t}"),
            Subject::None | Subject::Resource(_) => method.to_string(),
        }
    }
    fn tool(self) -> Option<&'a str> {
        if let Subject::Tool(t) = self { Some(t) } else { None }
    }
    fn prompt(self) -> Option<&'a str> {
        if let Subject::Prompt(p) = self { Some(p) } else { None }
    }
    fn resource(self) -> Option<&'a str> {
        if let Subject::Resource(r) = self { Some(r) } else { None }
    }
}

/// The CLIENT span of a `method` request.
fn client_span(method: &'static str, subject: Subject<'_>) -> tracing::Span {
    tracing::info_span!(
        "mcp.client",
        otel.name = subject.span_name(method).as_str(),
        otel.kind = "client",
        mcp.method.name = method,
        gen_ai.operation.name = subject.tool().map(|_| sc::operation::EXECUTE_TOOL),
        gen_ai.tool.name = subject.tool(),
        gen_ai.prompt.name = subject.prompt(),
        mcp.resource.uri = subject.resource(),
        jsonrpc.request.id = tracing::field::Empty,
        mcp.protocol.version = tracing::field::Empty,
        network.transport = tracing::field::Empty,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
        error.type = tracing::field::Empty,
        rpc.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        gen_ai.tool.call.arguments = tracing::field::Empty,
        gen_ai.tool.call.result = tracing::field::Empty,
    )
}

/// The answer of one kind: `answer!(ListToolsResult)` picks
/// `ServerResult::ListToolsResult` (anything else is unexpected).
macro_rules! answer {
    ($variant:ident) => {
        |answer| match answer {
            ServerResult::$variant(r) => Some(r),
            _ => None,
        }
    };
}

/// An rmcp client (a `RunningService<RoleClient, _>`, or a
/// `&Peer<RoleClient>`) whose requests are traced. Everything the client
/// has stays reachable through `Deref`; [`TracedClient::call_tool`],
/// [`TracedClient::get_prompt`], [`TracedClient::read_resource`] and the
/// `list_tools` / `list_prompts` / `list_resources` requests record a
/// CLIENT span each (other requests go through `Deref`, untraced).
///
/// A traced request is sent as `Peer::call_tool` sends it: one round (a
/// tool or prompt that asks for input, SEP-2322, answers
/// `UnexpectedResponse`), always to the server (not from rmcp's response
/// cache), and a call dropped before its answer sends
/// `notifications/cancelled`.
#[derive(Debug)]
pub struct TracedClient<C> {
    inner: C,
    wire: Wire,
}

impl<C> Deref for TracedClient<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.inner
    }
}

impl<C: Deref<Target = Peer<RoleClient>>> TracedClient<C> {
    /// Wraps a client; say how it is connected with [`Self::stdio`] or
    /// [`Self::http`] so `network.transport` and `server.*` are recorded.
    pub fn new(inner: C) -> Self {
        TracedClient { inner, wire: Wire::Unknown }
    }

    /// The client talks to a server over stdio (`network.transport = pipe`).
    pub fn stdio(mut self) -> Self {
        self.wire = Wire::Pipe;
        self
    }

    /// The client talks to the server at `url` over streamable HTTP
    /// (`network.transport = tcp`, `server.address`, `server.port`).
    pub fn http(mut self, url: &str) -> Self {
        self.wire = Wire::http(url);
        self
    }

    /// The client it wraps.
    pub fn into_inner(self) -> C {
        self.inner
    }

    fn protocol_version(&self) -> Option<String> {
        self.inner.peer_info().map(|i| i.protocol_version.to_string())
    }

    /// `tools/call`, traced: a CLIENT span `tools/call {tool}` (or the MCP
    /// attributes on the enclosing `#[tool_call]` of the same tool), the
    /// trace context in `params._meta`, and the client duration metric.
    pub async fn call_tool(&self, params: CallToolRequestParams) -> Result<CallToolResult, ServiceError> {
        let tool = params.name.to_string();
        let enclosing = enclosing_tool_call(&tool);
        let span = match &enclosing {
            Some(_) => None,
            None => Some(client_span(TOOLS_CALL, Subject::Tool(&tool))),
        };
        let target: SpanRef = match (&enclosing, &span) {
            (Some(outer), _) => outer.clone(),
            (None, Some(s)) => s.into(),
            (None, None) => SpanRef::current(),
        };
        target.set_attribute(sc::MCP_METHOD_NAME, TOOLS_CALL);
        if crate::policy::content::capturing() {
            if let Some(args) = &params.arguments {
                crate::__private::capture_content(
                    &target,
                    sc::GEN_AI_TOOL_CALL_ARGUMENTS,
                    &serde_json::Value::Object(args.clone()),
                );
            }
        }
        let result = self
            .exchange(span.as_ref(), &target, params, |p| CallToolRequest::new(p).into(), answer!(CallToolResult))
            .await;
        if let Ok(r) = &result {
            if crate::policy::content::capturing() {
                crate::__private::capture_content(&target, sc::GEN_AI_TOOL_CALL_RESULT, &result_content(r));
            }
            if r.is_error == Some(true) {
                fail(&target, Cow::Borrowed("tool_error"), None);
            }
        }
        result
    }

    /// `tools/list`, traced: a CLIENT span `tools/list`. Always asked of
    /// the server (rmcp's own `list_tools` may answer from its cache).
    pub async fn list_tools(&self, params: Option<PaginatedRequestParams>) -> Result<ListToolsResult, ServiceError> {
        self.request(
            "tools/list",
            Subject::None,
            params.unwrap_or_default(),
            |p| ListToolsRequest::with_param(p).into(),
            answer!(ListToolsResult),
        )
        .await
    }

    /// `prompts/list`, traced: a CLIENT span `prompts/list`.
    pub async fn list_prompts(
        &self,
        params: Option<PaginatedRequestParams>,
    ) -> Result<ListPromptsResult, ServiceError> {
        self.request(
            "prompts/list",
            Subject::None,
            params.unwrap_or_default(),
            |p| ListPromptsRequest::with_param(p).into(),
            answer!(ListPromptsResult),
        )
        .await
    }

    /// `prompts/get`, traced: a CLIENT span `prompts/get {name}` with
    /// `gen_ai.prompt.name`. One round, like `Peer::call_tool`: a prompt
    /// that asks for input (SEP-2322) answers `UnexpectedResponse`.
    pub async fn get_prompt(&self, params: GetPromptRequestParams) -> Result<GetPromptResult, ServiceError> {
        let name = params.name.clone();
        self.request(
            "prompts/get",
            Subject::Prompt(&name),
            params,
            |p| GetPromptRequest::new(p).into(),
            answer!(GetPromptResult),
        )
        .await
    }

    /// `resources/list`, traced: a CLIENT span `resources/list`.
    pub async fn list_resources(
        &self,
        params: Option<PaginatedRequestParams>,
    ) -> Result<ListResourcesResult, ServiceError> {
        self.request(
            "resources/list",
            Subject::None,
            params.unwrap_or_default(),
            |p| ListResourcesRequest::with_param(p).into(),
            answer!(ListResourcesResult),
        )
        .await
    }

    /// `resources/read`, traced: a CLIENT span `resources/read` with
    /// `mcp.resource.uri`. Always asked of the server (rmcp's own
    /// `read_resource` may answer from its cache); one round.
    pub async fn read_resource(&self, params: ReadResourceRequestParams) -> Result<ReadResourceResult, ServiceError> {
        let uri = params.uri.clone();
        self.request(
            "resources/read",
            Subject::Resource(&uri),
            params,
            |p| ReadResourceRequest::new(p).into(),
            answer!(ReadResourceResult),
        )
        .await
    }

    /// One traced request other than a tool call, in a CLIENT span of its own.
    async fn request<P: RequestParamsMeta, T>(
        &self,
        method: &'static str,
        subject: Subject<'_>,
        params: P,
        request: fn(P) -> ClientRequest,
        expected: fn(ServerResult) -> Option<T>,
    ) -> Result<T, ServiceError> {
        let span = client_span(method, subject);
        self.exchange(Some(&span), &SpanRef::from(&span), params, request, expected).await
    }

    /// Every traced request: the session's attributes on `target`, the
    /// context in `params._meta` (even when they carry nothing else), then
    /// [`Self::send`], inside `span` when the request has one of its own.
    async fn exchange<P: RequestParamsMeta, T>(
        &self,
        span: Option<&tracing::Span>,
        target: &SpanRef,
        mut params: P,
        request: fn(P) -> ClientRequest,
        expected: fn(ServerResult) -> Option<T>,
    ) -> Result<T, ServiceError> {
        self.describe(target);
        inject(target, &mut params);
        let send = self.send(request(params), target, expected);
        match span {
            Some(s) => send.instrument(s.clone()).await,
            None => send.await,
        }
    }

    /// Sends `request` and waits for its answer, as `Peer::call_tool` does
    /// (one round; `notifications/cancelled` when dropped first), recording
    /// the request id on `target`, and the failure when there is one;
    /// `expected` picks the answer of the request's kind.
    async fn send<T>(
        &self,
        request: ClientRequest,
        target: &SpanRef,
        expected: fn(ServerResult) -> Option<T>,
    ) -> Result<T, ServiceError> {
        let answer = async {
            let handle = self.inner.send_request_with_option(request, PeerRequestOptions::no_options()).await?;
            target.set_attribute(sc::JSONRPC_REQUEST_ID, handle.id.to_string().as_str());
            let mut guard = CancelOnDrop { peer: &self.inner, id: Some(handle.id.clone()), target };
            let answer = handle.await_response().await;
            guard.id = None;
            expected(answer?).ok_or(ServiceError::UnexpectedResponse)
        };
        let result = answer.await;
        if let Err(e) = &result {
            let (kind, code) = failure(e);
            fail(target, kind, code);
        }
        result
    }

    /// The session's attributes: protocol version, transport, server.
    fn describe(&self, target: &SpanRef) {
        if let Some(v) = self.protocol_version() {
            target.set_attribute(sc::MCP_PROTOCOL_VERSION, v.as_str());
        }
        if let Some(t) = self.wire.transport() {
            target.set_attribute(sc::NETWORK_TRANSPORT, t);
        }
        if let Wire::Tcp { address, port } = &self.wire {
            if let Some(a) = address {
                target.set_attribute(sc::SERVER_ADDRESS, a.as_str());
            }
            if let Some(p) = port {
                target.set_attribute(sc::SERVER_PORT, p);
            }
        }
    }
}

/// Tells the server a request was abandoned when the caller drops the
/// traced call before its answer (`notifications/cancelled`, sent from a
/// task on the caller's tokio runtime), as rmcp's own `call_tool` does, and
/// marks the call's span `error.type = cancelled`.
struct CancelOnDrop<'a> {
    peer: &'a Peer<RoleClient>,
    id: Option<RequestId>,
    /// The call's span: marked `cancelled`.
    target: &'a SpanRef,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        fail(self.target, Cow::Borrowed("cancelled"), None);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let peer = self.peer.clone();
        let reason = Some("request abandoned by the caller".to_string());
        runtime.spawn(async move {
            let _ = peer.notify_cancelled(CancelledNotificationParam::new(Some(id), reason)).await;
        });
    }
}

/// The current span, when it is a `#[tool_call]` (or any `execute_tool`
/// span) of `tool`: the MCP call is that span's.
fn enclosing_tool_call(tool: &str) -> Option<SpanRef> {
    let current = SpanRef::current();
    let mut same = false;
    crate::record::target::with_sink(&current, |f| {
        same = f.operation == Some(sc::operation::EXECUTE_TOOL) && f.tool_name().is_some_and(|n| n.as_str() == tool);
    });
    same.then_some(current)
}

/// Puts the span's W3C context in the request's `_meta`.
fn inject(target: &SpanRef, params: &mut impl RequestParamsMeta) {
    let mut headers = http::HeaderMap::new();
    crate::integrations::propagation::inject_span(target, &mut headers);
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        params.set_traceparent(tp);
    }
    if let Some(ts) = headers.get("tracestate").and_then(|v| v.to_str().ok()) {
        params.set_tracestate(ts);
    }
}

/// Marks the span failed with `kind` (and the JSON-RPC code).
fn fail(target: &SpanRef, kind: Cow<'static, str>, code: Option<String>) {
    if let Some(code) = code {
        target.set_attribute(sc::RPC_RESPONSE_STATUS_CODE, code.as_str());
    }
    crate::record::target::with_sink(target, |f| f.set_error(kind, String::new()));
}

/// An rmcp `ServerHandler` whose requests are traced: a SERVER span
/// `{mcp.method.name} {target}` per request (a child of the client's span
/// when the request carries its context in `_meta`) and the server duration
/// metric. It forwards every method of `ServerHandler` to the handler it
/// wraps, so the wrapped handler's tools, prompts and resources all stay
/// reachable (a method left to its default would hide the inner one).
///
/// A tool or prompt name the client asks for is recorded in the metrics
/// only when the server declares it (the handler's `get_tool`, else the
/// names of its `tools/list` / `prompts/list`, asked of the handler when
/// first needed, refreshed by every listing a client asks for and, on a
/// name not found, at most once a minute); any other is `_OTHER` there.
/// The span keeps the name asked for. A request that arrives while such a
/// listing is under way does not wait for it: it goes by the names known.
#[derive(Debug, Clone)]
pub struct TracedServer<S> {
    inner: S,
    wire: Wire,
    /// The names the server declares, as last listed (shared by clones).
    declared: Arc<Declared>,
}

/// The tools and prompts a server declares: the names its metrics may carry.
#[derive(Debug, Default)]
struct Declared {
    tools: Mutex<Names>,
    prompts: Mutex<Names>,
}

/// Declared names of one kind, as last listed.
#[derive(Debug, Default)]
struct Names {
    set: HashSet<String>,
    /// When the handler was last listed (by a client, or here), if ever.
    listed: Option<Instant>,
    /// A listing asked for here is under way (no other starts meanwhile).
    listing: bool,
}

/// The lock, whether or not a panic poisoned it.
fn lock(names: &Mutex<Names>) -> std::sync::MutexGuard<'_, Names> {
    names.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// At most this many declared names of a kind are remembered ...
const MAX_DECLARED: usize = 4096;
/// ... from at most this many pages of a listing asked for here.
const MAX_PAGES: usize = 64;
/// A name not found re-lists the handler at most this often.
const RELIST: Duration = Duration::from_secs(60);

impl Names {
    /// Takes the names of one page of a listing a client asked for (the
    /// first page starts afresh).
    fn take_page<'a>(&mut self, first: bool, names: impl Iterator<Item = &'a str>) {
        if first {
            self.set.clear();
        }
        for n in names {
            if self.set.len() >= MAX_DECLARED {
                break;
            }
            self.set.insert(n.to_string());
        }
        self.listed = Some(Instant::now());
    }

    /// Whether a name not found may start a listing now.
    fn may_list(&self) -> bool {
        !self.listing && self.listed.is_none_or(|at| at.elapsed() >= RELIST)
    }
}

/// Ends a listing asked for here, also when its request is dropped first.
struct Listing<'a>(&'a Mutex<Names>);

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        lock(self.0).listing = false;
    }
}

/// Whether `name` is among `names`, listing the handler with `list` (one
/// page per call, from a cursor) when it is not found and the last listing
/// is old enough (or there was none). No lock is held while the handler
/// lists, and nobody waits for another's listing: a request that finds a
/// listing under way goes on with the names known.
async fn declares<F, Fut>(names: &Mutex<Names>, name: &str, mut list: F) -> bool
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Option<(Vec<String>, Option<String>)>>,
{
    {
        let mut known = lock(names);
        if known.set.contains(name) {
            return true;
        }
        if !known.may_list() {
            return false;
        }
        // Counted from the start: a listing that fails or is dropped is not retried before RELIST.
        known.listing = true;
        known.listed = Some(Instant::now());
    }
    let _listing = Listing(names);
    let mut found: Vec<String> = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let Some((page, next)) = list(cursor).await else { break };
        let room = MAX_DECLARED.saturating_sub(found.len());
        found.extend(page.into_iter().take(room));
        cursor = next;
        if cursor.is_none() || found.len() >= MAX_DECLARED {
            break;
        }
    }
    let mut known = lock(names);
    if !found.is_empty() {
        known.set = found.into_iter().collect();
    }
    known.set.contains(name)
}

/// Says the span's tool or prompt was not declared: `_OTHER` in its metrics.
fn undeclared(span: &tracing::Span) {
    crate::record::target::with_sink(&SpanRef::from(span), |f| f.more().undeclared = true);
}

impl<S> TracedServer<S> {
    /// Wraps a handler; [`Self::stdio`] or [`Self::http`] say how it is served.
    pub fn new(inner: S) -> Self {
        TracedServer { inner, wire: Wire::Unknown, declared: Arc::default() }
    }

    /// Served over stdio (`network.transport = pipe`).
    pub fn stdio(mut self) -> Self {
        self.wire = Wire::Pipe;
        self
    }

    /// Served over streamable HTTP (`network.transport = tcp`).
    pub fn http(mut self) -> Self {
        self.wire = Wire::Tcp { address: None, port: None };
        self
    }

    /// The handler it wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Opens the SERVER span of a `method` request (a child of the
    /// caller's span when `_meta` carries its context).
    fn open(
        &self,
        method: &'static str,
        subject: Subject<'_>,
        context: &RequestContext<RoleServer>,
        arguments: Option<serde_json::Value>,
    ) -> tracing::Span {
        let name = subject.span_name(method);
        // Not a child of rmcp's own session-long span: the caller's, or a root.
        let span = tracing::info_span!(
            parent: None,
            "mcp.server",
            otel.name = name.as_str(),
            otel.kind = "server",
            mcp.method.name = method,
            gen_ai.operation.name = subject.tool().map(|_| sc::operation::EXECUTE_TOOL),
            gen_ai.tool.name = subject.tool(),
            gen_ai.prompt.name = subject.prompt(),
            mcp.resource.uri = subject.resource(),
            jsonrpc.request.id = context.id.to_string().as_str(),
            mcp.protocol.version = context.protocol_version().map(|v| v.to_string()).as_deref(),
            mcp.session.id = session_id(context),
            network.transport = self.wire.transport(),
            error.type = tracing::field::Empty,
            rpc.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            gen_ai.tool.call.arguments = tracing::field::Empty,
            gen_ai.tool.call.result = tracing::field::Empty,
        );
        let mut headers = http::HeaderMap::new();
        for (key, value) in
            [("traceparent", context.meta.get_traceparent()), ("tracestate", context.meta.get_tracestate())]
        {
            if let Some(v) = value.and_then(|v| http::HeaderValue::from_str(v).ok()) {
                headers.insert(key, v);
            }
        }
        crate::integrations::propagation::set_remote_parent(&span, &headers);
        if let (true, Some(args)) = (crate::policy::content::capturing(), arguments) {
            crate::__private::capture_content(&SpanRef::from(&span), sc::GEN_AI_TOOL_CALL_ARGUMENTS, &args);
        }
        span
    }
}

/// The session a request belongs to over streamable HTTP: the
/// `Mcp-Session-Id` header of the HTTP request rmcp hands the handler.
fn session_id(context: &RequestContext<RoleServer>) -> Option<&str> {
    let parts = context.extensions.get::<http::request::Parts>()?;
    parts.headers.get("mcp-session-id").and_then(|v| v.to_str().ok())
}

/// Runs `fut`, the handler's answer, in `span`, and records how it ended;
/// `tool_result` finds a tool result in the answer.
async fn answered<T>(
    span: tracing::Span,
    fut: impl Future<Output = Result<T, ErrorData>>,
    tool_result: fn(&T) -> Option<&CallToolResult>,
) -> Result<T, ErrorData> {
    let result = fut.instrument(span.clone()).await;
    let target = SpanRef::from(&span);
    match &result {
        Ok(answer) => {
            if let Some(r) = tool_result(answer) {
                if crate::policy::content::capturing() {
                    crate::__private::capture_content(&target, sc::GEN_AI_TOOL_CALL_RESULT, &result_content(r));
                }
                if r.is_error == Some(true) {
                    fail(&target, Cow::Borrowed("tool_error"), None);
                }
            }
        }
        Err(e) => {
            let code = e.code.0.to_string();
            fail(&target, Cow::Owned(code.clone()), Some(code));
        }
    }
    result
}

fn no_tool_result<T>(_: &T) -> Option<&CallToolResult> {
    None
}

fn completed(r: &CallToolResponse) -> Option<&CallToolResult> {
    match r {
        CallToolResponse::Complete(r) => Some(r),
        _ => None,
    }
}

/// The methods that are forwarded as they are (no request of their own, or
/// synchronous).
macro_rules! forward {
    ($($(#[$meta:meta])* $name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {$(
        $(#[$meta])*
        fn $name(&self, $($arg: $ty),*) -> impl Future<Output = $out> + MaybeSendFuture + '_ {
            self.inner.$name($($arg),*)
        }
    )*};
}

/// The request methods, each in a SERVER span named after its method.
macro_rules! traced_requests {
    ($($name:ident($req:ident: $ty:ty) -> $out:ty = $method:literal;)*) => {$(
        fn $name(
            &self,
            $req: $ty,
            context: RequestContext<RoleServer>,
        ) -> impl Future<Output = Result<$out, ErrorData>> + MaybeSendFuture + '_ {
            let span = self.open($method, Subject::None, &context, None);
            answered(span, self.inner.$name($req, context), no_tool_result)
        }
    )*};
}

impl<S: ServerHandler> TracedServer<S> {
    /// Whether the server declares the tool `name`: its handler's
    /// `get_tool` knows it, or its `tools/list` names it.
    async fn declares_tool(&self, name: &str, context: &RequestContext<RoleServer>) -> bool {
        if self.inner.get_tool(name).is_some() {
            return true;
        }
        declares(&self.declared.tools, name, |cursor| async move {
            let page = PaginatedRequestParams::default().with_cursor(cursor);
            let r = self.inner.list_tools(Some(page), context.clone()).await.ok()?;
            Some((r.tools.iter().map(|t| t.name.to_string()).collect(), r.next_cursor))
        })
        .await
    }

    /// Whether the server declares the prompt `name`: its `prompts/list` names it.
    async fn declares_prompt(&self, name: &str, context: &RequestContext<RoleServer>) -> bool {
        declares(&self.declared.prompts, name, |cursor| async move {
            let page = PaginatedRequestParams::default().with_cursor(cursor);
            let r = self.inner.list_prompts(Some(page), context.clone()).await.ok()?;
            Some((r.prompts.into_iter().map(|p| p.name).collect(), r.next_cursor))
        })
        .await
    }
}

impl<S: ServerHandler> ServerHandler for TracedServer<S> {
    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        let span = self.open("ping", Subject::None, &context, None);
        answered(span, self.inner.ping(context), no_tool_result)
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, ErrorData>> + MaybeSendFuture + '_ {
        let span = self.open("initialize", Subject::None, &context, None);
        answered(span, self.inner.initialize(request, context), no_tool_result)
    }

    fn negotiate_initialize(&self, request: &InitializeRequestParams) -> Result<InitializeResult, ErrorData> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, ErrorData>> + MaybeSendFuture + '_ {
        let span = self.open("server/discover", Subject::None, &context, None);
        answered(span, self.inner.discover(context), no_tool_result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let declared = self.declares_prompt(&request.name, &context).await;
        let span = self.open("prompts/get", Subject::Prompt(&request.name), &context, None);
        if !declared {
            undeclared(&span);
        }
        answered(span, self.inner.get_prompt(request, context), no_tool_result).await
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, ErrorData>> + MaybeSendFuture + '_ {
        let span = self.open("resources/read", Subject::Resource(&request.uri), &context, None);
        answered(span, self.inner.read_resource(request, context), no_tool_result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let declared = self.declares_tool(&request.name, &context).await;
        let arguments = request.arguments.clone().map(serde_json::Value::Object);
        let span = self.open(TOOLS_CALL, Subject::Tool(&request.name), &context, arguments);
        if !declared {
            undeclared(&span);
        }
        answered(span, self.inner.call_tool(request, context), completed).await
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, ErrorData>> + MaybeSendFuture + '_ {
        let first = request.as_ref().is_none_or(|r| r.cursor.is_none());
        let span = self.open("tools/list", Subject::None, &context, None);
        async move {
            let result = answered(span, self.inner.list_tools(request, context), no_tool_result).await;
            if let Ok(r) = &result {
                lock(&self.declared.tools).take_page(first, r.tools.iter().map(|t| t.name.as_ref()));
            }
            result
        }
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, ErrorData>> + MaybeSendFuture + '_ {
        let first = request.as_ref().is_none_or(|r| r.cursor.is_none());
        let span = self.open("prompts/list", Subject::None, &context, None);
        async move {
            let result = answered(span, self.inner.list_prompts(request, context), no_tool_result).await;
            if let Ok(r) = &result {
                lock(&self.declared.prompts).take_page(first, r.prompts.iter().map(|p| p.name.as_str()));
            }
            result
        }
    }

    traced_requests! {
        complete(request: CompleteRequestParams) -> CompleteResult = "completion/complete";
        list_resources(request: Option<PaginatedRequestParams>) -> ListResourcesResult = "resources/list";
        list_resource_templates(request: Option<PaginatedRequestParams>) -> ListResourceTemplatesResult = "resources/templates/list";
        get_task(request: GetTaskParams) -> GetTaskResult = "tasks/get";
        update_task(request: UpdateTaskParams) -> () = "tasks/update";
        cancel_task(request: CancelTaskParams) -> () = "tasks/cancel";
        list_skills(request: Option<PaginatedRequestParams>) -> ListSkillsResult = "skills/list";
        get_skill(request: GetSkillRequestParams) -> GetSkillResult = "skills/get";
        read_resource_directory(request: ReadResourceDirectoryRequestParams) -> ReadResourceDirectoryResult = "resources/directory/read";
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    forward! {
        #[allow(deprecated)]
        set_level(request: SetLevelRequestParams, context: RequestContext<RoleServer>) -> Result<(), ErrorData>;
        #[allow(deprecated)]
        subscribe(request: SubscribeRequestParams, context: RequestContext<RoleServer>) -> Result<(), ErrorData>;
        #[allow(deprecated)]
        unsubscribe(request: UnsubscribeRequestParams, context: RequestContext<RoleServer>) -> Result<(), ErrorData>;
        listen(context: SubscriptionContext) -> Result<(), ErrorData>;
        on_custom_request(request: CustomRequest, context: RequestContext<RoleServer>) -> Result<CustomResult, ErrorData>;
        on_cancelled(notification: CancelledNotificationParam, context: NotificationContext<RoleServer>) -> ();
        on_progress(notification: ProgressNotificationParam, context: NotificationContext<RoleServer>) -> ();
        on_initialized(context: NotificationContext<RoleServer>) -> ();
        on_roots_list_changed(context: NotificationContext<RoleServer>) -> ();
        on_custom_notification(notification: CustomNotification, context: NotificationContext<RoleServer>) -> ();
    }
}
