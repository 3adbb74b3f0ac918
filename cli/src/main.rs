//! `observra`: tail, summarise and replay the JSONL span files observra writes.
//!
//! ```sh
//! observra tail spans.jsonl            # each trace as a tree; --follow for a growing file
//! observra summary spans.jsonl --since 1h --format json
//! observra replay spans.jsonl --endpoint http://collector:4318
//! observra verify spans.jsonl --key $OBSERVRA_AUDIT_KEY       # exit 1 on tampering
//! observra decrypt spans.jsonl --key $OBSERVRA_JSONL_KEY > plain.jsonl
//! ```
//!
//! Exit codes: 0 success, 1 the work failed (an export was refused, a chain
//! was tampered with, a line did not decrypt), 2 bad input (unreadable
//! file, malformed line, bad option value).

mod replay;
mod spans;
mod summary;
mod tail;

use std::io::{IsTerminal, Write};
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
    /// Check the hash chain of JSONL files (exit code 1 on tampering, naming the first bad record).
    Verify {
        /// The files of one chain, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The audit key (32 bytes, base64 or hex).
        #[arg(long, env = "OBSERVRA_AUDIT_KEY", hide_env_values = true)]
        key: String,
    },
    /// Decrypt an encrypted JSONL file to stdout, one record per line.
    Decrypt {
        /// The file.
        file: PathBuf,
        /// Key(s), 32 bytes as base64 or hex; the right one is found by its id.
        #[arg(
            long = "key",
            env = "OBSERVRA_JSONL_KEY",
            hide_env_values = true,
            value_delimiter = ',',
            required = true
        )]
        keys: Vec<String>,
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
        Command::Verify { files, key } => {
            let key = observra::audit::parse_key(&key).map_err(|e| (2, format!("--key: {e}")))?;
            let report = observra::audit::verify(&files, &key).map_err(|e| (2, e.to_string()))?;
            match &report.first_bad {
                None => {
                    println!(
                        "intact: {} records, sequence 1..{}, {} seal(s)",
                        report.records, report.last_seq, report.seals
                    );
                    Ok(())
                }
                Some((seq, why)) => Err((1, format!("TAMPERED at sequence {seq}: {why}"))),
            }
        }
        Command::Decrypt { file, keys } => {
            let keys = keys
                .iter()
                .map(|k| observra::audit::parse_key(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| (2, format!("--key: {e}")))?;
            let records = observra::audit::decrypt(&file, &keys).map_err(|e| (1, e.to_string()))?;
            let mut out = std::io::stdout().lock();
            for r in records {
                let _ = writeln!(out, "{r}");
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
