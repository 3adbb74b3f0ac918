//! `observra`: tail, summarise and replay the JSONL span files observra writes.
//!
//! ```sh
//! observra tail spans.jsonl            # each trace as a tree; --follow for a growing file
//! observra summary spans.jsonl --since 1h --format json
//! observra replay spans.jsonl --endpoint http://collector:4318
//! ```
//!
//! Exit codes: 0 success, 1 the work failed (an export was refused), 2 bad
//! input (unreadable file, malformed line, bad option value).

mod replay;
mod spans;
mod summary;
mod tail;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "observra", version, about = "Tail, summarise and replay observra's JSONL span files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show each trace in a JSONL file as a tree with tokens, cost and errors.
    Tail {
        /// The JSONL file.
        file: PathBuf,
        /// Keep reading as the file grows; a trace is shown when its root span ends.
        #[arg(short, long)]
        follow: bool,
        /// Colour: auto (on a terminal), always or never.
        #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
        color: String,
    },
    /// Tokens, cost, errors and latency per model, agent and tool.
    Summary {
        /// JSONL files, or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only spans that started at or after this (30m, 2h, 7d, or 2026-11-23T09:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only spans that started before this (same forms as --since).
        #[arg(long)]
        until: Option<String>,
        /// Output: a table or JSON.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Send a JSONL file's spans to an OTLP endpoint (ids, times and attributes kept).
    Replay {
        /// The JSONL file.
        file: PathBuf,
        /// Collector base URL (http/protobuf appends /v1/traces).
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
        endpoint: String,
        /// http/protobuf or grpc.
        #[arg(long, default_value = "http/protobuf", value_parser = ["http/protobuf", "grpc"])]
        protocol: String,
        /// A header to send, key=value (repeatable).
        #[arg(long = "header", value_name = "KEY=VALUE")]
        headers: Vec<String>,
    },
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn run(cli: Cli) -> Result<(), (u8, String)> {
    let input = |e: spans::ReadError| (2, e.to_string());
    match cli.command {
        Command::Tail { file, follow, color } => {
            let style = tail::Style::new(&color);
            let mut out = std::io::stdout().lock();
            if follow {
                tail::follow(&file, style, &mut out).map_err(input)
            } else {
                tail::print_file(&file, style, &mut out).map_err(input)
            }
        }
        Command::Summary { files, since, until, format } => {
            let now = now_ns();
            let since =
                since.map(|s| summary::parse_time(&s, now)).transpose().map_err(|e| (2, format!("--since: {e}")))?;
            let until =
                until.map(|s| summary::parse_time(&s, now)).transpose().map_err(|e| (2, format!("--until: {e}")))?;
            let spans: Vec<_> = spans::read_all(&files)
                .map_err(input)?
                .into_iter()
                .filter(|s| since.is_none_or(|t| s.start_ns >= t) && until.is_none_or(|t| s.start_ns < t))
                .collect();
            let result = summary::summarize(&spans);
            if format == "json" {
                println!("{result:#}");
            } else {
                print!("{}", summary::table(&result));
            }
            Ok(())
        }
        Command::Replay { file, endpoint, protocol, headers } => {
            let headers = headers
                .iter()
                .map(|h| h.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| (2, "--header takes key=value".to_string()))?;
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err((2, format!("--endpoint {endpoint:?}: expected an http:// or https:// URL")));
            }
            let spans = spans::read_file(&file).map_err(input)?;
            let progress = if std::io::stderr().is_terminal() {
                indicatif::ProgressBar::new(spans.len() as u64)
            } else {
                indicatif::ProgressBar::hidden()
            };
            let target = replay::Target { endpoint, grpc: protocol == "grpc", headers };
            let sent = replay::replay(&spans, &target, &progress).map_err(|e| (1, e))?;
            progress.finish_and_clear();
            eprintln!("replayed {sent} spans from {}", file.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("observra: {message}");
            ExitCode::from(code)
        }
    }
}
