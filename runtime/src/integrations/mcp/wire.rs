//! What the client and the server share: how the session travels
//! ([`Wire`]), what a request is about ([`Subject`]), the trace context in
//! a request's `_meta`, and how a failed request is recorded.

use std::borrow::Cow;

use rmcp::ErrorData;
use rmcp::model::*;
use rmcp::service::ServiceError;

use crate::record::span_ref::SpanRef;
use observra_semconv as sc;

/// `mcp.method.name` of a tool call.
pub(super) const TOOLS_CALL: &str = "tools/call";

/// How the MCP session travels (`network.transport`, `server.*`).
#[derive(Debug, Clone, Default)]
pub(super) enum Wire {
    #[default]
    Unknown,
    /// stdio: `pipe`.
    Pipe,
    /// Streamable HTTP: `tcp`, with the server's address and port.
    Tcp { address: Option<String>, port: Option<i64> },
}

impl Wire {
    pub(super) fn transport(&self) -> Option<&'static str> {
        match self {
            Wire::Unknown => None,
            Wire::Pipe => Some("pipe"),
            Wire::Tcp { .. } => Some("tcp"),
        }
    }
    pub(super) fn http(url: &str) -> Wire {
        match crate::genai::request::endpoint_of(url) {
            Some((host, port, _)) => {
                Wire::Tcp { address: Some(host.trim_matches(['[', ']']).to_string()), port: Some(i64::from(port)) }
            }
            None => Wire::Tcp { address: None, port: None },
        }
    }
}

/// `error.type`, `rpc.response.status_code` and the status description
/// (the JSON-RPC error's message) of a failed request.
pub(super) fn failure(e: &ServiceError) -> (Cow<'static, str>, Option<String>, Option<String>) {
    match e {
        ServiceError::McpError(ErrorData { code, message, .. }) => {
            let code = code.0.to_string();
            (Cow::Owned(code.clone()), Some(code), Some(message.to_string()))
        }
        ServiceError::Timeout { .. } => (Cow::Borrowed("timeout"), None, None),
        ServiceError::TransportClosed => (Cow::Borrowed("transport_closed"), None, None),
        ServiceError::TransportSend(_) => (Cow::Borrowed("transport_send"), None, None),
        ServiceError::Cancelled { .. } => (Cow::Borrowed("cancelled"), None, None),
        ServiceError::UnexpectedResponse => (Cow::Borrowed("unexpected_response"), None, None),
        _ => (Cow::Borrowed("_OTHER"), None, None),
    }
}

/// The tool result as captured content: its structured content, else its text.
pub(super) fn result_content(r: &CallToolResult) -> serde_json::Value {
    match &r.structured_content {
        Some(v) => v.clone(),
        None => serde_json::to_value(&r.content).unwrap_or_default(),
    }
}

/// What a request is about: the target in its span name and the attribute
/// naming it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject<'a> {
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
    pub(super) fn span_name(self, method: &str) -> String {
        match self {
            Subject::Tool(t) | Subject::Prompt(t) => format!("{method} {t}"),
            Subject::None | Subject::Resource(_) => method.to_string(),
        }
    }
    pub(super) fn tool(self) -> Option<&'a str> {
        if let Subject::Tool(t) = self { Some(t) } else { None }
    }
    pub(super) fn prompt(self) -> Option<&'a str> {
        if let Subject::Prompt(p) = self { Some(p) } else { None }
    }
    pub(super) fn resource(self) -> Option<&'a str> {
        if let Subject::Resource(r) = self { Some(r) } else { None }
    }
}

/// Puts the span's W3C context in the request's `_meta`.
pub(super) fn inject(target: &SpanRef, params: &mut impl RequestParamsMeta) {
    let mut headers = http::HeaderMap::new();
    crate::integrations::propagation::inject_span(target, &mut headers);
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        params.set_traceparent(tp);
    }
    if let Some(ts) = headers.get("tracestate").and_then(|v| v.to_str().ok()) {
        params.set_tracestate(ts);
    }
}

/// Marks the span failed with `kind` (and the JSON-RPC code and message).
pub(super) fn fail(target: &SpanRef, kind: Cow<'static, str>, code: Option<String>, message: Option<String>) {
    if let Some(code) = code {
        target.set_attribute(sc::RPC_RESPONSE_STATUS_CODE, code.as_str());
    }
    // The status description is the JSON-RPC error's message, as the
    // conventions say (redacted on the collector like any text).
    crate::record::target::with_sink(target, |f| f.set_error(kind, message.unwrap_or_default()));
}
