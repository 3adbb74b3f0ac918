//! The traced MCP server: a SERVER span per request it handles, a child
//! of the client's span when the request carries its context, and the
//! server duration metric with undeclared names as `_OTHER`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::*;
use rmcp::service::{MaybeSendFuture, NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tracing::Instrument;

use super::wire::{Subject, TOOLS_CALL, Wire, fail, result_content};
use crate::record::span_ref::SpanRef;
use observra_semconv as sc;

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

    /// Served over stdio (`network.transport = pipe`). Standard output is
    /// the protocol's channel then: observra never writes there
    /// ([`crate::keep_off_stdout`]), and the `stdout` backend writes its
    /// JSON lines to standard error instead.
    pub fn stdio(mut self) -> Self {
        // Standard output is the protocol's channel now.
        crate::export::jsonl::keep_off_stdout();
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
                // The result is recorded for a tool that succeeded; a tool
                // that failed (`isError`) is an error, its content not a result.
                if r.is_error == Some(true) {
                    fail(&target, Cow::Borrowed("tool_error"), None, None);
                } else if crate::policy::content::capturing() {
                    crate::__private::capture_content(&target, sc::GEN_AI_TOOL_CALL_RESULT, &result_content(r));
                }
            }
        }
        Err(e) => {
            let code = e.code.0.to_string();
            fail(&target, Cow::Owned(code.clone()), Some(code), Some(e.message.to_string()));
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
        let target = SpanRef::from(&span);
        let answer = answered(span, self.inner.initialize(request, context), no_tool_result);
        async move {
            let result = answer.await;
            // The version in use is the one negotiated, not the one the
            // client asked for in the request.
            if let Ok(r) = &result {
                target.set_attribute(sc::MCP_PROTOCOL_VERSION, r.protocol_version.to_string().as_str());
            }
            result
        }
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
