//! Every default and bound of the configuration, in one place: what a
//! setting is when neither the code nor the environment sets it.

use std::time::Duration;

/// Default deadline for the flush-and-shutdown the guard does on drop.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default OTLP export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default span queue bound (`OTEL_BSP_MAX_QUEUE_SIZE`).
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;
/// The largest span queue accepted (its slots are allocated at install).
pub const MAX_QUEUE_SIZE: usize = 1 << 18;
/// Default largest batch handed to an exporter (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Default delay between two scheduled exports (`OTEL_BSP_SCHEDULE_DELAY`).
pub const DEFAULT_SCHEDULED_DELAY: Duration = Duration::from_millis(5000);
/// Default metric export interval (`OTEL_METRIC_EXPORT_INTERVAL`).
pub const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_millis(60_000);
/// Default OTLP/HTTP base endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// Default OTLP/gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default path of the `jsonl` backend when `OBSERVRA_JSONL_PATH` is not set.
pub const DEFAULT_JSONL_PATH: &str = "observra-spans.jsonl";
