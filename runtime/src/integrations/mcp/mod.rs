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

mod client;
mod server;
mod wire;

pub use client::TracedClient;
pub use server::TracedServer;
