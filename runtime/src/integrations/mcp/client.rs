//! The traced MCP client: a CLIENT span per request it sends, with the
//! trace context in the request's `_meta`.

use std::borrow::Cow;
use std::ops::Deref;

use rmcp::RoleClient;
use rmcp::model::*;
use rmcp::service::{Peer, PeerRequestOptions, ServiceError};
use tracing::Instrument;

use super::wire::{Subject, TOOLS_CALL, Wire, fail, failure, inject, result_content};
use crate::record::span_ref::SpanRef;
use observra_semconv as sc;

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
            // The result is recorded for a tool that succeeded; a tool that
            // failed (`isError`) is an error, its content not a result.
            if r.is_error == Some(true) {
                fail(&target, Cow::Borrowed("tool_error"), None, None);
            } else if crate::policy::content::capturing() {
                crate::__private::capture_content(&target, sc::GEN_AI_TOOL_CALL_RESULT, &result_content(r));
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
            let (kind, code, message) = failure(e);
            fail(target, kind, code, message);
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
        fail(self.target, Cow::Borrowed("cancelled"), None, None);
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
