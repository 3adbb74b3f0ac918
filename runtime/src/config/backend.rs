//! The backends: the public [`Backend`] names, their parsing from
//! `OBSERVRA_BACKEND` (and `OBSERVRA_BACKENDS`), the checks on a list of
//! them, and the [`Sink`] each one resolves to.

use std::io::Write;
use std::path::PathBuf;

use super::defaults::DEFAULT_JSONL_PATH;
use super::env::EnvSource;
use super::jsonl::JsonlSettings;
use crate::error::{Error, Result, Setting};
use crate::export::batch::StartBackend;

/// Where finished spans go. Several at once is the `multi` set-up: see
/// [`Builder::backends`](super::Builder::backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// OTLP traces and metrics to a collector (HTTP/protobuf or gRPC).
    Otlp,
    /// GenAI operations and `tracing` events as OTLP log records (plus
    /// metrics over OTLP); see the `otel_log` section of the README.
    OtelLog,
    /// JSON lines appended to a file (`OBSERVRA_JSONL_PATH`).
    Jsonl,
    /// JSON lines on standard output: the embedded default.
    Stdout,
    /// JSON batches POSTed to a URL; see `observra::Webhook` (feature `webhook`).
    Webhook,
}

impl Backend {
    /// The name used in `OBSERVRA_BACKEND`, in `health()` and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Otlp => "otlp",
            Backend::OtelLog => "otel_log",
            Backend::Jsonl => "jsonl",
            Backend::Stdout => "stdout",
            Backend::Webhook => "webhook",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "otlp" => Some(Backend::Otlp),
            "otel_log" | "otel-log" => Some(Backend::OtelLog),
            "jsonl" => Some(Backend::Jsonl),
            "stdout" => Some(Backend::Stdout),
            "webhook" => Some(Backend::Webhook),
            _ => None,
        }
    }
}

impl Backend {
    /// The cargo feature this backend needs, when this build lacks it.
    fn feature_missing(self) -> Option<&'static str> {
        match self {
            Backend::Otlp | Backend::OtelLog if !cfg!(feature = "otlp") => Some("otlp"),
            Backend::Webhook if !cfg!(feature = "webhook") => Some("webhook"),
            _ => None,
        }
    }
}

const BACKEND_NAMES: &str = "otlp, otel_log, jsonl, stdout, webhook (or a comma-separated list of them, or multi)";

/// Parses `OBSERVRA_BACKEND` (one name, a comma-separated list, or `multi`
/// with the list in `OBSERVRA_BACKENDS`).
pub(super) fn parse_backends(env: &EnvSource) -> Result<Option<Vec<Backend>>> {
    let Some(v) = env.get("OBSERVRA_BACKEND") else { return Ok(None) };
    let (var, list) = if v.trim().eq_ignore_ascii_case("multi") {
        match env.get("OBSERVRA_BACKENDS") {
            Some(list) => ("OBSERVRA_BACKENDS", list),
            None => {
                return Err(Error::invalid(
                    Setting::Env("OBSERVRA_BACKEND"),
                    v,
                    "multi needs the list of backends in OBSERVRA_BACKENDS, e.g. otlp,jsonl",
                ));
            }
        }
    } else {
        ("OBSERVRA_BACKEND", v)
    };
    let mut out = Vec::new();
    for item in list.split(',').filter(|i| !i.trim().is_empty()) {
        let b = Backend::parse(item).ok_or_else(|| {
            Error::invalid(
                Setting::Env(var),
                list.clone(),
                format!("unknown backend {:?}; expected {BACKEND_NAMES}", item.trim()),
            )
        })?;
        out.push(b);
    }
    check_backends(Setting::Env(var), &out, &list)?;
    Ok(Some(out))
}

pub(super) fn check_backends(setting: Setting, list: &[Backend], shown: &str) -> Result<()> {
    if list.is_empty() {
        return Err(Error::invalid(setting, shown, format!("no backend given; expected {BACKEND_NAMES}")));
    }
    for (i, b) in list.iter().enumerate() {
        if list[..i].contains(b) {
            return Err(Error::invalid(setting, shown, format!("backend {} is listed twice", b.name())));
        }
    }
    if list.contains(&Backend::Jsonl) && list.contains(&Backend::Stdout) {
        return Err(Error::invalid(setting, shown, "jsonl and stdout both write JSON lines; choose one"));
    }
    Ok(())
}

/// Refuses a backend this build left out, naming the cargo feature and the
/// setting that asked for it.
pub(super) fn check_features(list: &[Backend], env: &EnvSource, any_otlp_env: bool) -> Result<()> {
    for b in list {
        if let Some(feature) = b.feature_missing() {
            let setting = if env.get("OBSERVRA_BACKEND").is_some() {
                Setting::Env("OBSERVRA_BACKEND")
            } else if any_otlp_env && *b == Backend::Otlp {
                Setting::Env("OTEL_EXPORTER_OTLP_ENDPOINT")
            } else {
                Setting::Builder("backends")
            };
            return Err(Error::invalid(
                setting,
                b.name(),
                format!("the {} backend needs observra's `{feature}` cargo feature", b.name()),
            ));
        }
    }
    Ok(())
}

/// The resolved destination of spans.
pub(crate) enum Sink {
    Otlp,
    OtelLog,
    /// The details events of the OTLP backend's spans, as OTLP log records
    /// (added when content is captured as events and no `otel_log` backend
    /// is configured).
    OtlpEvents,
    Stdout,
    File(PathBuf),
    Writer(Box<dyn Write + Send>),
    #[cfg(feature = "webhook")]
    Webhook(crate::export::webhook::Webhook),
    /// A user's exporter, ready to start.
    Custom(StartBackend),
}

/// The name of the [`Sink::OtlpEvents`] backend in `health()`.
pub(crate) const OTLP_EVENTS: &str = "otlp_events";

/// One sink per backend, named after it and in the list's order, then the
/// user's exporters. A JSONL writer set in code takes the place of stdout or
/// the file; `webhook` is the webhook's sink, resolved whenever the list has
/// that backend.
pub(super) fn sinks(
    backends: &[Backend],
    jsonl: &mut JsonlSettings,
    mut webhook: Option<Sink>,
    custom: Vec<(&'static str, StartBackend)>,
) -> Vec<(Sink, &'static str)> {
    backends
        .iter()
        .map(|b| {
            let sink = match b {
                Backend::Otlp => Sink::Otlp,
                Backend::OtelLog => Sink::OtelLog,
                Backend::Stdout => match jsonl.writer.take() {
                    Some(w) => Sink::Writer(w),
                    None => Sink::Stdout,
                },
                Backend::Jsonl => match jsonl.writer.take() {
                    Some(w) => Sink::Writer(w),
                    None => Sink::File(jsonl.path.take().unwrap_or_else(|| PathBuf::from(DEFAULT_JSONL_PATH))),
                },
                // Never `None`: resolved whenever listed, and without the
                // `webhook` feature refused before, with the feature named.
                Backend::Webhook => webhook.take().unwrap_or(Sink::Stdout),
            };
            (sink, b.name())
        })
        .chain(custom.into_iter().map(|(name, start)| (Sink::Custom(start), name)))
        .collect()
}
