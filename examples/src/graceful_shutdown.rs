//! A long-running tokio service that shuts telemetry down cleanly on SIGTERM
//! (or Ctrl-C) and prints what the shutdown did.
//!
//! ```sh
//! OBSERVRA_JSONL_PATH=spans.jsonl cargo run -p observra-examples --bin graceful-shutdown &
//! kill -TERM %1
//! ```
//!
//! Configured from the environment like every example: point it at a
//! collector with `OTEL_EXPORTER_OTLP_ENDPOINT`, or several backends with
//! `OBSERVRA_BACKEND=otlp,jsonl`.

use std::time::Duration;

use observra::{LlmResponse, Usage, agent, llm_call};

struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(300, 40))
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
async fn ask(question: u64) -> Result<Reply, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let _ = question;
    Ok(Reply)
}

#[agent(name = "ticket-worker")]
async fn handle(ticket: u64) -> Result<(), std::io::Error> {
    ask(ticket).await?;
    Ok(())
}

/// The service: handles a ticket every 20 ms until aborted.
async fn serve() {
    for ticket in 0.. {
        let _ = handle(ticket).await;
        if ticket == 1 {
            eprintln!("handled tickets 0 and 1");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = observra::init().service_name("graceful-shutdown").install()?;
    let server = tokio::spawn(serve());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    eprintln!("serving as pid {}; send SIGTERM to stop", std::process::id());
    tokio::select! {
        _ = term.recv() => eprintln!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => eprintln!("Ctrl-C: shutting down"),
    }
    server.abort();
    // Flushing blocks for at most the shutdown deadline: keep it off the
    // async worker threads.
    let report = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    match report {
        Some(report) => eprintln!("{report}"),
        None => eprintln!("telemetry was not active"),
    }
    Ok(())
}
