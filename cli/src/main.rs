//! `observra`: tail, summarise and replay the JSONL span files observra writes.
//!
//! ```sh
//! observra tail spans.jsonl            # each trace as a tree; --follow for a growing file
//! observra report spans.jsonl -o report.html   # one HTML page: runs, waterfalls, totals
//! observra summary spans.jsonl --since 1h --format json
//! observra replay spans.jsonl --endpoint http://collector:4318
//! observra verify spans.jsonl --key $OBSERVRA_AUDIT_KEY       # exit 1 on tampering
//! observra verify spans.jsonl --key K --save-head safe/spans.head   # keep the head elsewhere
//! observra verify spans.jsonl --key K --expect-head safe/spans.head # exit 1 if rolled back since
//! observra decrypt spans.jsonl --key $OBSERVRA_JSONL_KEY > plain.jsonl
//! observra baseline update --from logs/ --since 7d        # per-agent baselines
//! observra baseline check <trace or run id> --from logs/  # exit 1 when anomalous
//! observra export --format audit --from logs/ --since 30d -o report.json
//! observra verify --from-export report.json --key $OBSERVRA_AUDIT_KEY
//! ```
//!
//! Exit codes: 0 success, 1 the work failed (an export was refused, a chain
//! was tampered with, a line did not decrypt), 2 bad input (unreadable
//! file, malformed line, bad option value), 3 (`verify`) a chain is intact
//! up to an unfinished last line that a crash left: not tampering.

mod audit_export;
mod baseline;
mod replay;
mod report;
mod spans;
mod summary;
mod tail;
mod tree;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "observra", version, about = "Tail, summarise, report on and replay observra's JSONL span files")]
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
    /// Write one self-contained HTML page of the runs: a waterfall per trace, each span's attributes, events and
    /// captured messages, and the totals. It opens in any browser with no network.
    Report {
        /// JSONL files (plaintext or encrypted), or directories of them; rotated parts are read too.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The page to write.
        #[arg(short, long, default_value = "report.html")]
        output: PathBuf,
        /// Only traces that started at or after this (30m, 2h, 7d, or 2026-11-23T09:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only traces that started before this (same forms as --since).
        #[arg(long)]
        until: Option<String>,
        /// Only this trace (its id, 32 hex digits).
        #[arg(long)]
        trace: Option<String>,
        /// Key(s) of encrypted files, 32 bytes as base64 or hex; the right one is found by its id.
        #[arg(long = "key", env = "OBSERVRA_JSONL_KEY", hide_env_values = true, value_delimiter = ',')]
        keys: Vec<String>,
        /// Spans embedded in full, newest traces first; older traces are listed with their figures only.
        #[arg(long, default_value_t = report::DEFAULT_MAX_SPANS)]
        max_spans: usize,
        /// Runs listed, newest first; older traces count in the totals only.
        #[arg(long, default_value_t = report::DEFAULT_MAX_RUNS)]
        max_runs: usize,
    },
    /// Check the hash chains of JSONL files (exit 1 on tampering, naming the file and the first bad record;
    /// 3 for an unfinished last line a crash left).
    Verify {
        /// JSONL files or directories of them; each file with its rotated parts is one chain, verified on its own.
        #[arg(required_unless_present = "from_export")]
        files: Vec<PathBuf>,
        /// Instead: authenticate an audit export (its package_hmac, under --key) and re-check it against its
        /// source files.
        #[arg(long, conflicts_with = "files")]
        from_export: Option<PathBuf>,
        /// The audit key (32 bytes, base64 or hex).
        #[arg(long, env = "OBSERVRA_AUDIT_KEY", hide_env_values = true)]
        key: String,
        /// After a chain verifies, write its head anchor here: keep it where the writer's host cannot change it.
        #[arg(long, value_name = "FILE", conflicts_with = "from_export")]
        save_head: Option<PathBuf>,
        /// Also check the chain against a head saved earlier (--save-head): a trail rolled back together with its
        /// anchor no longer reaches it.
        #[arg(long, value_name = "FILE", conflicts_with = "from_export")]
        expect_head: Option<PathBuf>,
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
    /// Per-agent baselines of cost, duration, calls, errors, retries, tokens and tools; anomaly checks.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Write an audit evidence package (JSON) of what the agents did over a period.
    Export {
        /// The package format (only `audit` for now).
        #[arg(long, value_parser = ["audit"])]
        format: String,
        /// JSONL files (of one chain, oldest first), or directories of them.
        #[arg(long, num_args = 1.., required = true)]
        from: Vec<PathBuf>,
        /// Only spans that started at or after this (30m, 2h, 7d, or an RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// Only spans that started before this.
        #[arg(long)]
        until: Option<String>,
        /// Where to write the package.
        #[arg(short, long)]
        output: PathBuf,
        /// The audit key, to verify the hash chain and authenticate the package (32 bytes, base64 or hex);
        /// `verify --from-export` refuses a package exported without it.
        #[arg(long, env = "OBSERVRA_AUDIT_KEY", hide_env_values = true)]
        key: Option<String>,
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

#[derive(Subcommand)]
enum BaselineCommand {
    /// Compute the baselines from JSONL files and write them.
    Update {
        /// JSONL files, or directories of them.
        #[arg(long, num_args = 1.., required = true)]
        from: Vec<PathBuf>,
        /// Only the last N runs of each agent.
        #[arg(long)]
        last: Option<usize>,
        /// Only runs that started at or after this (30m, 2h, 7d, or an RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// The baseline file.
        #[arg(long, env = "OBSERVRA_BASELINE", default_value = "observra-baseline.json")]
        baseline: PathBuf,
    },
    /// Check a run (an agent span id) or every run of a trace; exit code 1 when anomalous.
    Check {
        /// Run (agent span) id or trace id.
        id: String,
        /// JSONL files holding the run, or directories of them.
        #[arg(long, num_args = 1.., required = true)]
        from: Vec<PathBuf>,
        /// Flag metrics more than this many standard deviations from the mean.
        #[arg(long, default_value_t = 2.0)]
        threshold: f64,
        /// ...and more than this fraction of the mean away from it.
        #[arg(long, default_value_t = 0.1)]
        min_change: f64,
        /// Output: a table or JSON.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// The baseline file.
        #[arg(long, env = "OBSERVRA_BASELINE", default_value = "observra-baseline.json")]
        baseline: PathBuf,
    },
    /// Print the baselines.
    Show {
        /// Output: a table or JSON.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// The baseline file.
        #[arg(long, env = "OBSERVRA_BASELINE", default_value = "observra-baseline.json")]
        baseline: PathBuf,
    },
}

fn run_baseline(command: BaselineCommand) -> Result<(), (u8, String)> {
    let input = |e: spans::ReadError| (2, e.to_string());
    match command {
        BaselineCommand::Update { from, last, since, baseline } => {
            let (since, _) = period(since, None)?;
            let spans = spans::read_all(&from).map_err(input)?;
            let runs = baseline::select_runs(&spans, since, last);
            let b = observra::analytics::Baseline::compute(&runs);
            baseline::save(&baseline, &b).map_err(|e| (2, e))?;
            print!("{}", baseline::update_summary(&b));
            println!("baseline of {} run(s) written to {}", runs.len(), baseline.display());
            Ok(())
        }
        BaselineCommand::Check { id, from, threshold, min_change, format, baseline } => {
            if !(threshold.is_finite() && threshold > 0.0) {
                return Err((2, format!("--threshold {threshold}: expected a positive number")));
            }
            if !(min_change.is_finite() && min_change >= 0.0) {
                return Err((2, format!("--min-change {min_change}: expected a non-negative fraction")));
            }
            let rule = observra::analytics::Rule::threshold(threshold).min_change(min_change);
            let b = baseline::load(&baseline).map_err(|e| (2, e))?;
            let spans = spans::read_all(&from).map_err(input)?;
            let runs = baseline::find_runs(&spans, &id);
            if runs.is_empty() {
                return Err((2, format!("no agent run with span or trace id {id} in the files given")));
            }
            let reports: Vec<_> = runs.iter().map(|r| b.check(r, rule)).collect();
            if format == "json" {
                println!("{:#}", baseline::check_json(&reports));
            } else {
                print!("{}", baseline::check_table(&reports));
            }
            let anomalous = reports.iter().filter(|r| r.verdict == observra::analytics::Verdict::Anomalous).count();
            if anomalous > 0 { Err((1, format!("{anomalous} anomalous run(s)"))) } else { Ok(()) }
        }
        BaselineCommand::Show { format, baseline } => {
            let b = baseline::load(&baseline).map_err(|e| (2, e))?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&b).unwrap_or_default());
            } else {
                print!("{}", baseline::show_table(&b));
            }
            Ok(())
        }
    }
}

/// `--since` and `--until` (30m, 2h, 7d, or an RFC 3339 time) as ns since the epoch.
fn period(since: Option<String>, until: Option<String>) -> Result<(Option<u64>, Option<u64>), (u8, String)> {
    let now = now_ns();
    let parse = |flag: &str, v: Option<String>| {
        v.map(|s| summary::parse_time(&s, now)).transpose().map_err(|e| (2, format!("{flag}: {e}")))
    };
    Ok((parse("--since", since)?, parse("--until", until)?))
}

/// Every span of `files` that started in `[since, until)`.
fn read_period(files: &[PathBuf], since: Option<u64>, until: Option<u64>) -> Result<Vec<spans::Span>, (u8, String)> {
    let period = spans::Period { since, until };
    Ok(spans::read_all(files)
        .map_err(|e| (2, e.to_string()))?
        .into_iter()
        .filter(|s| period.contains(s.start_ns))
        .collect())
}

fn now_ns() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// `observra verify --from-export`: an audit package authenticated and re-checked against its sources.
fn verify_export(export: &std::path::Path, key: &str) -> Result<(), (u8, String)> {
    let key = observra::audit::parse_key(key).map_err(|e| (2, format!("--key: {e}")))?;
    // The bytes as read: the package's HMAC covers them, not a re-serialisation.
    let bytes = std::fs::read(export).map_err(|e| (2, format!("{}: {e}", export.display())))?;
    let package: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| (2, format!("{}: not JSON: {e}", export.display())))?;
    let summary =
        audit_export::verify_package(&bytes, &package, &key).map_err(|e| (1, format!("{}: {e}", export.display())))?;
    println!("{summary}");
    Ok(())
}

/// `observra verify`: an audit export, or the hash chains of files.
fn run_verify(
    files: Vec<PathBuf>,
    from_export: Option<PathBuf>,
    key: String,
    save_head: Option<PathBuf>,
    expect_head: Option<PathBuf>,
) -> Result<(), (u8, String)> {
    if let Some(export) = from_export {
        return verify_export(&export, &key);
    }
    use observra::audit::Verdict;
    let key = observra::audit::parse_key(&key).map_err(|e| (2, format!("--key: {e}")))?;
    let mut reports = observra::audit::verify_all(&files, &key).map_err(|e| (2, e.to_string()))?;
    if reports.is_empty() {
        return Err((2, "no JSONL files to verify".into()));
    }
    if (save_head.is_some() || expect_head.is_some()) && reports.len() > 1 {
        return Err((2, "--save-head and --expect-head take the files of one chain".into()));
    }
    if let Some(saved) = &expect_head {
        let text = std::fs::read_to_string(saved).map_err(|e| (2, format!("{}: {e}", saved.display())))?;
        let saved_head = observra::audit::HeadAnchor::parse(&text, &key)
            .map_err(|e| (2, format!("--expect-head {}: {e}", saved.display())))?;
        let (chain, report) = &mut reports[0];
        *report = observra::audit::verify_against(&chain.files, &key, &saved_head).map_err(|e| (2, e.to_string()))?;
    }
    if let (Some(to), Some((_, report))) = (&save_head, reports.first()) {
        if let (Verdict::Intact, Some(head)) = (report.verdict(), &report.head) {
            std::fs::write(to, head.to_json(&key) + "\n")
                .map_err(|e| (2, format!("--save-head {}: {e}", to.display())))?;
            eprintln!("head saved to {} (sequence {}, chain {})", to.display(), head.seq, head.chain);
        }
    }
    let several = reports.len() > 1;
    let (mut tampered, mut unsealed) = (0, 0);
    for (chain, report) in &reports {
        match report.verdict() {
            Verdict::Tampered => tampered += 1,
            Verdict::UnsealedTail => unsealed += 1,
            Verdict::Intact => {}
        }
        match (several, report.verdict()) {
            (true, _) => println!("{}: {}", chain.base.display(), report.summary()),
            (false, Verdict::Intact) => println!("{}", report.summary()),
            (false, _) => {}
        }
    }
    let summary = |(c, r): &(observra::audit::ChainFiles, observra::audit::VerifyReport)| {
        if several { format!("{}: {}", c.base.display(), r.summary()) } else { r.summary() }
    };
    if tampered > 0 {
        let bad: Vec<String> = reports.iter().filter(|(_, r)| r.verdict() == Verdict::Tampered).map(summary).collect();
        Err((1, bad.join("\n")))
    } else if unsealed > 0 {
        let tails: Vec<String> =
            reports.iter().filter(|(_, r)| r.verdict() == Verdict::UnsealedTail).map(summary).collect();
        Err((3, tails.join("\n")))
    } else {
        Ok(())
    }
}

/// `--key` values (32 bytes as base64 or hex each).
fn parse_keys(keys: &[String]) -> Result<Vec<[u8; 32]>, (u8, String)> {
    keys.iter()
        .map(|k| observra::audit::parse_key(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (2, format!("--key: {e}")))
}

/// `observra report`: writes the page, then says where, and what was skipped.
fn run_report(options: &report::Options) -> Result<(), (u8, String)> {
    let written = report::write(options, now_ns()).map_err(|e| (2, e.to_string()))?;
    for w in &written.warnings {
        eprintln!("observra: warning: {w}");
    }
    let embedded = if written.embedded == written.listed {
        String::new()
    } else {
        format!(" ({} in full; see --max-spans)", written.embedded)
    };
    eprintln!(
        "wrote {}: {} trace(s){embedded}, {} span(s), {} KB{}",
        options.output.display(),
        written.traces,
        written.spans,
        written.bytes.div_ceil(1024),
        if written.warnings.is_empty() { String::new() } else { format!(", {} warning(s)", written.warnings.len()) }
    );
    Ok(())
}

/// `observra export --format audit`: the evidence package of a period.
fn run_export(
    from: Vec<PathBuf>,
    since: Option<String>,
    until: Option<String>,
    output: PathBuf,
    key: Option<String>,
) -> Result<(), (u8, String)> {
    let input = |e: spans::ReadError| (2, e.to_string());
    let (since, until) = period(since, until)?;
    let key = key.map(|k| observra::audit::parse_key(&k)).transpose().map_err(|e| (2, format!("--key: {e}")))?;
    let files = spans::expand(&from).map_err(input)?;
    let spans = read_period(&files, since, until)?;
    let opts = audit_export::Options { files: &files, since, until, key };
    let package = audit_export::build(&spans, &opts).map_err(|e| (2, e))?;
    let text = audit_export::render(&package, key.as_ref()).map_err(|e| (2, e))?;
    std::fs::write(&output, text).map_err(|e| (2, format!("{}: {e}", output.display())))?;
    eprintln!(
        "wrote {}: {} runs, {} spans; hash chain: {}; {}",
        output.display(),
        package["totals"]["runs"],
        package["totals"]["spans"],
        package["integrity"]["verification"]["status"],
        if key.is_some() {
            "package authenticated (package_hmac)"
        } else {
            "package NOT authenticated: without --key, verify --from-export will refuse it"
        }
    );
    Ok(())
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
            let (since, until) = period(since, until)?;
            let spans = read_period(&files, since, until)?;
            let result = summary::summarize(&spans);
            if format == "json" {
                println!("{result:#}");
            } else {
                print!("{}", summary::table(&result));
            }
            Ok(())
        }
        Command::Baseline { command } => run_baseline(command),
        Command::Export { format: _, from, since, until, output, key } => run_export(from, since, until, output, key),
        Command::Verify { files, from_export, key, save_head, expect_head } => {
            run_verify(files, from_export, key, save_head, expect_head)
        }
        Command::Report { files, output, since, until, trace, keys, max_spans, max_runs } => {
            let (since, until) = period(since, until)?;
            let period = spans::Period { since, until };
            let selection = report::model::Selection { period, trace, max_spans, max_runs };
            let options = report::Options { files, keys: parse_keys(&keys)?, selection, output };
            run_report(&options)
        }
        Command::Decrypt { file, keys } => {
            let keys = parse_keys(&keys)?;
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
