//! The OTLP exporters (cargo feature `otlp`): span, log and metric
//! exporters over HTTP/protobuf on observra's own client
//! ([`crate::export::http_client`], TLS with the `tls` feature) or over gRPC
//! (`grpc` feature), built the same way for every signal; and the metric
//! exporter wrapper that counts what it delivered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::diag::{METRIC_POINTS_EXPORTED, METRIC_POINTS_FAILED, MetricsDiag};
use crate::error::{Error, Result};
use crate::export::otlp_settings::{Protocol, SignalSettings};

fn exporter_error(backend: &'static str) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> Error {
    move |e| Error::exporter(backend, e.to_string())
}

#[cfg(feature = "grpc")]
fn grpc_metadata(headers: &[(String, String)]) -> Result<opentelemetry_otlp::tonic_types::metadata::MetadataMap> {
    let map = crate::export::otlp_settings::header_map(crate::error::Setting::Builder("header"), headers)?;
    Ok(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map))
}

/// The same OTLP builder calls for every signal: the SDK's span, log and
/// metric exporter builders have the same methods but no common trait.
/// Over HTTP the client is ours ([`crate::export::http_client`]); its transport
/// cause comes back beside the exporter.
macro_rules! otlp_exporter {
    ($builder:expr, $settings:expr, $end:expr, $what:literal $(, $extra:ident($arg:expr))*) => {{
        use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
        #[cfg(feature = "grpc")]
        use opentelemetry_otlp::WithTonicConfig;
        let s: &SignalSettings = $settings;
        match s.protocol {
            Protocol::HttpProtobuf => {
                let client = crate::export::http_client::CauseKeepingClient::new(s.timeout, &s.tls, s.retry, $end.clone())
                    .map_err(|reason| Error::exporter($what, reason))?;
                let cause = client.last_cause();
                $builder
                    .with_http()
                    .with_http_client(client)
                    // The client retries (it sees Retry-After and the transport error).
                    .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(s.timeout)
                    .with_headers(s.headers.iter().cloned().collect())
                    $(.$extra($arg))*
                    .build()
                    .map(|e| (e, Some(cause)))
            }
            #[cfg(feature = "grpc")]
            Protocol::Grpc => {
                let builder = $builder
                    .with_tonic()
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(s.timeout)
                    .with_retry_policy(grpc_retry(s.retry))
                    .with_metadata(grpc_metadata(&s.headers)?);
                let builder = match grpc_tls(s)? {
                    Some(tls) => builder.with_tls_config(tls),
                    None => builder,
                };
                builder
                    $(.$extra($arg))*
                    .build()
                    .map(|e| (e, None))
            }
            // Refused when the settings were resolved, with the feature named.
            #[cfg(not(feature = "grpc"))]
            Protocol::Grpc => {
                return Err(Error::exporter($what, "grpc needs observra's `grpc` cargo feature"))
            }
        }
        .map_err(exporter_error($what))
    }};
}

/// gRPC's TLS settings for an `https://` endpoint: Mozilla's roots, the
/// configured CA and client certificate (tonic on rustls with aws-lc-rs,
/// the provider the HTTP client uses).
#[cfg(feature = "grpc")]
fn grpc_tls(s: &SignalSettings) -> Result<Option<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig>> {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
    if !s.endpoint.starts_with("https://") {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new().with_webpki_roots();
    if let Some(ca) = &s.tls.ca {
        tls = tls.ca_certificate(Certificate::from_pem(&ca.pem));
    }
    if let (Some(cert), Some(key)) = (&s.tls.client_certificate, &s.tls.client_key) {
        tls = tls.identity(Identity::from_pem(&cert.pem, &key.pem));
    }
    Ok(Some(tls))
}

/// The SDK's gRPC retry with observra's back-off: bounded by the retry
/// budget's count of attempts and by the exporter's timeout (the SDK's
/// deadline for one batch over gRPC).
#[cfg(feature = "grpc")]
fn grpc_retry(r: crate::export::otlp_settings::RetrySettings) -> opentelemetry_otlp::RetryPolicy {
    if r.budget.is_zero() {
        return opentelemetry_otlp::RetryPolicy::disabled();
    }
    opentelemetry_otlp::RetryPolicy::recommended()
        .with_initial_delay(r.initial)
        .with_max_delay(r.max)
        .with_max_retries(64)
}

pub(crate) type WithCause<E> = (E, Option<crate::diag::LastCause>);

/// The OTLP span exporter for the configured transport: observra's own
/// encoder over HTTP ([`crate::export::otlp_spans`]), the SDK's over gRPC.
#[derive(Debug)]
pub(crate) enum OtlpSpans {
    Http(crate::export::otlp_spans::OtlpHttpSpans),
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    Sdk(opentelemetry_otlp::SpanExporter),
}

impl opentelemetry_sdk::trace::SpanExporter for OtlpSpans {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            OtlpSpans::Http(e) => e.export(batch).await,
            OtlpSpans::Sdk(e) => e.export(batch).await,
        }
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            OtlpSpans::Http(e) => e.shutdown_with_timeout(timeout),
            OtlpSpans::Sdk(e) => e.shutdown_with_timeout(timeout),
        }
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            OtlpSpans::Http(e) => e.force_flush(),
            OtlpSpans::Sdk(e) => e.force_flush(),
        }
    }
    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        match self {
            OtlpSpans::Http(e) => e.set_resource(resource),
            OtlpSpans::Sdk(e) => e.set_resource(resource),
        }
    }
}

/// The OTLP span exporter; `end` bounds its retries once shutdown starts.
pub(crate) fn span_exporter(t: &SignalSettings, end: &crate::export::retry::RetryEnd) -> Result<WithCause<OtlpSpans>> {
    if t.protocol == Protocol::HttpProtobuf {
        let client = crate::export::http_client::CauseKeepingClient::new(t.timeout, &t.tls, t.retry, end.clone())
            .map_err(|reason| Error::exporter("otlp traces", reason))?;
        let cause = client.last_cause();
        let spans = crate::export::otlp_spans::OtlpHttpSpans::new(client, &t.endpoint, &t.headers)
            .map_err(|reason| Error::exporter("otlp traces", reason))?;
        return Ok((OtlpSpans::Http(spans), Some(cause)));
    }
    let (e, cause) = otlp_exporter!(opentelemetry_otlp::SpanExporter::builder(), t, end, "otlp traces")?;
    Ok((OtlpSpans::Sdk(e), cause))
}

/// The OTLP log exporter; `end` bounds its retries once shutdown starts.
pub(crate) fn log_exporter(
    t: &SignalSettings,
    end: &crate::export::retry::RetryEnd,
) -> Result<WithCause<opentelemetry_otlp::LogExporter>> {
    otlp_exporter!(opentelemetry_otlp::LogExporter::builder(), t, end, "otel_log")
}

/// The OTLP metric exporter; `end` bounds its retries once shutdown starts.
pub(crate) fn metric_exporter(
    m: &SignalSettings,
    temporality: crate::export::otlp_settings::Temporality,
    end: &crate::export::retry::RetryEnd,
) -> Result<WithCause<opentelemetry_otlp::MetricExporter>> {
    let temporality = match temporality {
        crate::export::otlp_settings::Temporality::Cumulative => opentelemetry_sdk::metrics::Temporality::Cumulative,
        crate::export::otlp_settings::Temporality::Delta => opentelemetry_sdk::metrics::Temporality::Delta,
    };
    otlp_exporter!(opentelemetry_otlp::MetricExporter::builder(), m, end, "otlp metrics", with_temporality(temporality))
}

/// Counts the data points of every metric export, for [`health`], and
/// reports failures like a span backend does.
#[derive(Debug)]
pub(crate) struct CountingMetricExporter<E>(pub E, pub Arc<MetricsDiag>);

fn count_points(metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics) -> u64 {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics as A, MetricData as D};
    fn n<T>(d: &D<T>) -> usize {
        match d {
            D::Gauge(g) => g.data_points().count(),
            D::Sum(s) => s.data_points().count(),
            D::Histogram(h) => h.data_points().count(),
            D::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    let mut total = 0;
    for scope in metrics.scope_metrics() {
        for m in scope.metrics() {
            total += match m.data() {
                A::F64(d) => n(d),
                A::U64(d) => n(d),
                A::I64(d) => n(d),
            };
        }
    }
    total as u64
}

impl<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>
    opentelemetry_sdk::metrics::exporter::PushMetricExporter for CountingMetricExporter<E>
{
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let points = count_points(metrics);
        let result = self.0.export(metrics).await;
        let counter = if result.is_ok() { &METRIC_POINTS_EXPORTED } else { &METRIC_POINTS_FAILED };
        counter.fetch_add(points, Ordering::Relaxed);
        match &result {
            Ok(()) => self.1.reporter.export_ok(),
            Err(e) => {
                let e = crate::diag::explain(e.to_string(), self.1.cause.as_ref());
                self.1.failed_points.fetch_add(points, Ordering::Relaxed);
                self.1.reporter.export_failed(points, &e, "not delivered; the next collection is still sent");
                if let Ok(mut last) = self.1.last_error.lock() {
                    *last = Some(crate::diag::scrub(&e));
                }
            }
        }
        result
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.0.temporality()
    }
}
