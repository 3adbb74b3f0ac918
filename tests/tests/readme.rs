//! Every ```rust block of the README compiles: each is written below,
//! line for line, inside what it needs around it (the types and values a
//! fragment assumes), and `every_rust_block_of_the_readme_is_compiled_here`
//! fails when a block of the README is not found here as it is written
//! (leading whitespace aside). So the README cannot drift from the API:
//! change a block there, and this file must change with it, and compile.
//!
//! Nothing here runs but that check: the blocks are compiled, not called.
#![allow(dead_code, unused_variables, unused_imports, unreachable_code, clippy::all)]

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// README line numbers of the rust blocks no file here contains.
#[test]
fn every_rust_block_of_the_readme_is_compiled_here() {
    let readme = include_str!("../../README.md");
    let here: Vec<&str> = include_str!("readme.rs").lines().map(str::trim).collect();
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (n, line) in readme.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```rust") => current = Some((n + 1, Vec::new())),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some((_, lines)), _) => lines.push(line.trim()),
            _ => {}
        }
    }
    assert!(blocks.len() >= 19, "found the README's rust blocks: {}", blocks.len());
    let missing: Vec<usize> = blocks
        .iter()
        .filter(|(_, lines)| !here.windows(lines.len()).any(|w| w == lines.as_slice()))
        .map(|(line, _)| *line)
        .collect();
    assert!(missing.is_empty(), "README rust blocks (by line) not compiled in tests/tests/readme.rs: {missing:?}");
}

/// The blocks, as the README writes them (rustfmt would rewrite them).
#[rustfmt::skip]
mod blocks {


    mod quick_start {
        use observra::traced;

        #[traced(kind = client, attrs(component = "rag", top_k = k), fields(query))]
        async fn retrieve(query: &str, k: u32, api_key: &str) -> Result<Vec<String>, std::io::Error> {
            Ok(vec![format!("doc about {query}")])
        }

        fn main() -> Result<(), observra::Error> {
            // Reads OTEL_* and OBSERVRA_* from the environment; code overrides them.
            let _telemetry = observra::init().service_name("support-bot").install()?;
            // ... run the agent ...
            Ok(())
        } // the guard flushes and shuts down here, within 5 s (configurable)
    }

    mod genai_macros {
        type Error = std::io::Error;
        pub struct Ticket {
            pub id: String,
            pub order_id: String,
        }
        pub struct Order;
        pub struct ChatRequest {
            pub model: String,
            pub temperature: f64,
            pub max_tokens: u32,
        }
        impl ChatRequest {
            pub fn about(_: &Ticket, _: &Order) -> Self {
                ChatRequest { model: "gpt-4o-mini".into(), temperature: 0.2, max_tokens: 256 }
            }
        }
        pub struct ApiUsage {
            pub prompt_tokens: u64,
            pub completion_tokens: u64,
            pub cached_tokens: Option<u64>,
            pub reasoning_tokens: Option<u64>,
        }
        pub struct ChatResponse {
            pub id: String,
            pub text: String,
            pub usage: ApiUsage,
        }
        mod my_api {
            pub async fn chat(_: &super::ChatRequest) -> Result<super::ChatResponse, super::Error> {
                unimplemented!()
            }
        }
        mod my_db {
            pub async fn order(_: &str) -> Result<super::Order, super::Error> {
                Ok(super::Order)
            }
        }
        mod my_index {
            pub async fn search(_: &str, _: usize) -> Result<Vec<observra::RetrievedDocument>, super::Error> {
                Ok(Vec::new())
            }
        }

        use observra::{agent, llm_call, tool_call, LlmResponse, Usage};

        #[agent(name = "support", conversation_id = ticket.id)]        // invoke_agent support
        async fn answer(ticket: &Ticket) -> Result<String, Error> {
            let order = lookup(&ticket.order_id).await?;
            Ok(complete(&ChatRequest::about(ticket, &order)).await?.text)
        }

        #[llm_call(provider = "openai", model = req.model,               // chat {model}, CLIENT
                   temperature = req.temperature, max_tokens = req.max_tokens)]
        async fn complete(req: &ChatRequest) -> Result<ChatResponse, Error> {
            my_api::chat(req).await                                      // your client, as it is
        }

        #[tool_call(name = "lookup_order")]                              // execute_tool lookup_order
        async fn lookup(id: &str) -> Result<Order, Error> {
            my_db::order(id).await
        }

        impl LlmResponse for ChatResponse {                              // usage, ids, finish reasons
            fn usage(&self) -> Option<Usage> {
                Some(Usage::openai(self.usage.prompt_tokens, self.usage.completion_tokens,
                                   self.usage.cached_tokens, self.usage.reasoning_tokens))
            }
            fn response_id(&self) -> Option<&str> { Some(&self.id) }
        }

        mod retrieval {
            use super::{Error, my_index};

            use observra::{retrieval, RetrievedDocument};

            #[retrieval(data_source = "orders-index", top_k = k, query = question)]   // retrieval orders-index, CLIENT
            async fn search(question: &str, k: usize) -> Result<Vec<RetrievedDocument>, Error> {
                my_index::search(question, k).await
            }
        }

        fn evaluations(reply: &ChatResponse) {
            use observra::Evaluation;

            // while the call's span is open (inside the #[llm_call]):
            observra::evaluate(observra::current_span(), Evaluation::new("format").score(1.0).label("pass"));

            // after it ended, by its response id (an LLM-as-judge, a grader, a human label):
            observra::evaluate(reply.id.as_str(),
                Evaluation::new("relevance").score(0.8).label("relevant").explanation("names the order"));
        }
    }

    mod ids {
        #[observra::traced]
        fn handle_request() {
            if let Some(trace) = observra::current_span().trace_id() {
                eprintln!("see trace {trace}");
            }
        }
    }

    fn with_tracing_subscriber() -> Result<(), crate::BoxError> {
        use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer())
            .with(observra::layer())
            .init();
        let _telemetry = observra::init().install()?;
        Ok(())
    }

    mod rig_agent_span {
        use rig_agent::prelude::*;

        async fn set_up() -> Result<(), crate::BoxError> {
            let _telemetry = observra::init().install()?;       // the one line

            #[observra::workflow(name = "rig-desk")]            // optional: your own span above rig's
            async fn handle(agent: &Agent, question: &str) -> Result<String, PromptError> {
                ask(agent, question).await
            }

            // rig adopts the span current when `prompt` is called as its agent span
            // (it opens `invoke_agent` of its own only when there is none): name it
            // as rig names the agent.
            #[observra::agent(name = "support")]
            async fn ask(agent: &Agent, question: &str) -> Result<String, PromptError> {
                agent.prompt(question).await.map(|r| r.output())
            }
            Ok(())
        }
    }

    fn configuration() -> Result<(), crate::BoxError> {
        let _telemetry = observra::init()
            .otlp(observra::Otlp::new().endpoint("https://collector:4318").header("x-tenant", "acme"))
            .redact(observra::Redaction::new().rule("ticket", "TCK-[0-9]{6}"))
            .metrics(observra::Metrics::new().prometheus_addr("127.0.0.1:9464".parse()?))
            .install()?;
        Ok(())
    }

    async fn async_openai_no_code(
        request: async_openai::types::chat::CreateChatCompletionRequest,
        embedding_request: async_openai::types::embeddings::CreateEmbeddingRequest,
    ) -> Result<(), crate::BoxError> {
        use observra::integrations::async_openai::instrument;

        let client = instrument(async_openai::Client::new()); // the one line (OPENAI_API_KEY, OPENAI_BASE_URL)
        let reply = client.chat().create(request.clone()).await?;          // chat {model}, CLIENT
        let stream = client.chat().create_stream(request).await?;          // ends with the stream
        let vectors = client.embeddings().create(embedding_request).await?; // embeddings {model}
        Ok(())
    }

    async fn genai_no_code(request: genai::chat::ChatRequest, options: genai::chat::ChatOptions) -> Result<(), crate::BoxError> {
        let client = observra::integrations::genai::instrument(genai::Client::new()?);
        let reply = client.exec_chat("claude-sonnet-4-5", request.clone(), Some(&options)).await?; // chat claude-sonnet-4-5
        let stream = client.exec_chat_stream("gemini-2.5-flash", request, None).await?;     // ends with the stream
        let vectors = client.embed("text-embedding-3-small", "orders", None).await?;         // embeddings ...
        Ok(())
    }

    fn propagation() {
        // client: inside any observra span
        let mut headers = http::HeaderMap::new();
        observra::propagation::inject(&mut headers);       // traceparent, tracestate, baggage

        // server: first thing in the handler's span
        #[observra::traced(kind = server)]
        fn handle(headers: &http::HeaderMap) {
            observra::propagation::set_remote_parent(observra::current_span(), headers);
            // everything opened from here on is part of the caller's trace
        }
    }

    fn http_servers_and_clients() {
        use axum::routing::{get, post};
        async fn ask() {}
        async fn order() {}

        // server (features `tower`, `axum`): after the routes, so the route is known
        let app = axum::Router::new()
            .route("/ask", post(ask))
            .route("/orders/{id}", get(order))
            .layer(observra::web::TraceContextLayer);

        // client (feature `reqwest`): where the client is built
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(observra::web::TracingMiddleware)
            .build();
        let _: axum::Router = app; // what axum::serve would take
    }

    mod mcp {
        use rmcp::ServiceExt;
        use rmcp::model::CallToolRequestParams;
        use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
        use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
        use std::sync::Arc;

        #[derive(Clone)]
        struct OrderTools;
        impl OrderTools {
            fn new() -> Self {
                OrderTools
            }
        }
        impl rmcp::ServerHandler for OrderTools {}

        async fn wirings(
            transport: rmcp::transport::StreamableHttpClientTransport<reqwest::Client>,
            code: i32,
        ) -> anyhow::Result<()> {
            use observra::integrations::mcp::{TracedClient, TracedServer};

            // client over streamable HTTP: wrap the running client (or a &Peer<RoleClient>)
            let client = TracedClient::new(().serve(transport).await?).http("http://127.0.0.1:8000/mcp");
            let result = client.call_tool(CallToolRequestParams::new("lookup_order")).await?;

            // client of a server it spawned over stdio (rmcp's TokioChildProcess)
            let child = rmcp::transport::TokioChildProcess::new(tokio::process::Command::new("order-tools"))?;
            let client = TracedClient::new(().serve(child).await?).stdio();

            // server over stdio
            TracedServer::new(OrderTools::new()).stdio().serve(rmcp::transport::stdio()).await?;

            // server over streamable HTTP: wrap the handler in the service's factory
            // (from rmcp::transport::streamable_http_server: StreamableHttpService,
            // StreamableHttpServerConfig, session::local::LocalSessionManager)
            let service = StreamableHttpService::new(
                || Ok(TracedServer::new(OrderTools::new()).http()),
                Arc::new(LocalSessionManager::default()),
                StreamableHttpServerConfig::default(),
            );

            let _ = client.into_inner().cancel().await; // ends the session; a stdio server sees EOF and exits
            let _ = observra::shutdown(std::time::Duration::from_secs(5)); // exports what is still queued
            std::process::exit(code);
        }
    }

    fn backends(siem_secret: String) -> Result<(), crate::BoxError> {
        let _telemetry = observra::init()
            .backends([observra::Backend::Otlp, observra::Backend::Webhook])
            .webhook(observra::Webhook::new("https://siem.example.com/ingest").secret(siem_secret))
            .install()?;
        Ok(())
    }

    fn tail_sampling() -> Result<(), crate::BoxError> {
        use observra::Sampler;
        use std::time::Duration;

        let _telemetry = observra::init()
            .sampler(
                Sampler::keep_interesting()
                    .ratio(0.05)                          // of the other traces (default 0.1)
                    .slower_than(Duration::from_secs(20)) // keep slow roots (default 10 s)
                    .timeout(Duration::from_secs(300))    // decide an unfinished root after (default 60 s)
                    .max_traces(4096)                     // what it may hold: traces,
                    .max_spans(65_536)                    // spans,
                    .max_bytes(64 << 20)                  // bytes, as exported,
                    .max_spans_per_trace(1024),           // and spans per trace (these four are the defaults)
            )
            .install()?;
        // or: OBSERVRA_TRACES_SAMPLER=keep_interesting OBSERVRA_TRACES_SAMPLER_ARG=0.05,
        // OBSERVRA_TAIL_SLOWER_THAN_MS, OBSERVRA_TAIL_TIMEOUT_MS, OBSERVRA_TAIL_MAX_*
        Ok(())
    }

    fn health() {
        let h = observra::health();
        if h.spans_dropped > 0 || h.spans_failed > 0 {
            eprintln!(
                "telemetry: {} exported, {} failed, {} dropped ({} at full buffers, {} at full queues), {} queued; last error: {:?}",
                h.spans_exported, h.spans_failed, h.spans_dropped, h.spans_dropped_collector_queue,
                h.spans_dropped_backend_queue, h.spans_queued, h.last_error,
            );
        }
        for b in &h.backends {
            eprintln!("{}: {} of {} exported, p99 {:?}", b.backend, b.exported, b.produced, b.latency_p99);
        }
    }

    mod sigterm_async {
        async fn serve() {}

        #[tokio::main]
        async fn main() -> Result<(), Box<dyn std::error::Error>> {
            let telemetry = observra::init().service_name("support-bot").install()?;
            let server = tokio::spawn(serve());
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            server.abort();
            // Flushing blocks for at most the deadline: keep it off the async workers.
            let report = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
            if let Some(report) = report.filter(|r| !r.is_clean()) {
                eprintln!("{report}");
            }
            Ok(())
        }
    }

    mod sigterm_sync {
        fn work_one_item() {}

        fn main() -> Result<(), Box<dyn std::error::Error>> {
            let telemetry = observra::init().install()?;
            let term = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
            while !term.load(std::sync::atomic::Ordering::Relaxed) {
                work_one_item();
            }
            if let Some(report) = telemetry.shutdown() {
                eprintln!("{report}");
            }
            Ok(())
        }
    }

    fn declared_metrics(queue: std::sync::Arc<Vec<u8>>) {
        observra::metrics! {
            /// Orders placed.
            pub counter ORDERS: "shop.orders", unit = "{order}", labels(channel);
            /// Basket value at checkout.
            histogram BASKET: "shop.basket.value", unit = "{USD}", buckets = [1, 10, 100], labels(channel);
            /// Sessions open now.
            updown SESSIONS: "shop.sessions.active", unit = "{session}";
            /// Items waiting.
            gauge QUEUE_DEPTH: "shop.queue.depth", unit = "{item}";
        }

        ORDERS.add(1, "web");
        BASKET.record(42.0, "mobile");
        SESSIONS.add(-1);
        QUEUE_DEPTH.observe(move || queue.len() as f64); // queue: an Arc the callback keeps
    }
}
