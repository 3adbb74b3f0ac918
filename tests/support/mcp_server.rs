//! A real rmcp MCP server, the second process of the MCP test: tools
//! `lookup_order` (succeeds), `cancel_order` (answers `isError: true`) and
//! `slow_order` (waits to be cancelled); any other tool answers JSON-RPC
//! -32602. A prompt `triage` and a resource `orders://recent`; any other
//! prompt or resource answers -32602 too. `tools/list` and `prompts/list`
//! declare those tools and that prompt (the names the server's metrics may
//! carry: any other is `_OTHER` there). Telemetry from the environment
//! (`OTEL_*`); the handler is wrapped in `observra::integrations::mcp::TracedServer`,
//! the one line the server side needs.
//!
//! `mcp-server stdio`: serves on stdin/stdout until the client closes them.
//! `mcp-server http`: serves streamable HTTP on 127.0.0.1, prints
//! `LISTEN http://ADDR/mcp`, and stops when its stdin closes. Both flush
//! their telemetry before exiting.

use std::io::BufRead;

use observra::integrations::mcp::TracedServer;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, ListPromptsResult, ListToolsResult, PaginatedRequestParams, Prompt, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents, Role, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

#[derive(Clone)]
struct Orders;

fn schema() -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({"type": "object", "properties": {"id": {"type": "string"}}});
    v.as_object().cloned().unwrap_or_default()
}

impl ServerHandler for Orders {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().build())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        match request.name.as_str() {
            "triage" => {
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, "Sort the tickets by urgency.")])
                    .into())
            }
            other => Err(ErrorData::invalid_params(format!("no prompt named {other}"), None)),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new("triage", Some("Sorts tickets by urgency."), None)]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match request.uri.as_str() {
            "orders://recent" => {
                Ok(ReadResourceResult::new(vec![ResourceContents::text("3 orders", &request.uri)]).into())
            }
            other => Err(ErrorData::invalid_params(format!("no resource {other}"), None)),
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("lookup_order", "Looks an order up.", schema()),
            Tool::new("cancel_order", "Cancels an order.", schema()),
            Tool::new("slow_order", "Waits to be cancelled.", schema()),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let id = request.arguments.as_ref().and_then(|a| a.get("id")).and_then(|v| v.as_str()).unwrap_or("?");
        match request.name.as_ref() {
            // Waits to be cancelled (up to 10 s); says so on its span and in
            // the file MCP_CANCEL_MARKER names.
            "slow_order" => {
                tokio::select! {
                    _ = context.ct.cancelled() => {
                        observra::current_span().set_attribute("order.cancelled", &true);
                        if let Ok(path) = std::env::var("MCP_CANCEL_MARKER") {
                            let _ = std::fs::write(path, "cancelled");
                        }
                    }
                    _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
                }
                Ok(CallToolResult::success(vec![ContentBlock::text("done")]).into())
            }
            "lookup_order" => {
                Ok(CallToolResult::success(vec![ContentBlock::text(format!("order {id} shipped"))]).into())
            }
            "cancel_order" => {
                Ok(CallToolResult::error(vec![ContentBlock::text(format!("order {id} has shipped"))]).into())
            }
            other => Err(ErrorData::invalid_params(format!("no tool named {other}"), None)),
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let telemetry = observra::init().service_name("mcp-server").install()?;
    match std::env::args().nth(1).as_deref() {
        Some("stdio") => {
            // The one line: the handler, traced.
            let service = TracedServer::new(Orders).stdio().serve(rmcp::transport::stdio()).await?;
            let _ = service.waiting().await;
        }
        Some("http") => {
            use rmcp::transport::streamable_http_server::{
                StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
            };
            let service: StreamableHttpService<TracedServer<Orders>, LocalSessionManager> = StreamableHttpService::new(
                || Ok(TracedServer::new(Orders).http()),
                Default::default(),
                StreamableHttpServerConfig::default(),
            );
            let router = axum::Router::new().nest_service("/mcp", service);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("LISTEN http://{}/mcp", listener.local_addr()?);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            // Stops when the test closes our stdin.
            std::thread::spawn(move || {
                for _ in std::io::stdin().lock().lines() {}
                let _ = stop.send(());
            });
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await?;
        }
        _ => anyhow::bail!("usage: mcp-server stdio|http"),
    }
    telemetry.shutdown();
    Ok(())
}
