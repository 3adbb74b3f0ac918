//! Every attribute and field name observra emits or interprets, in one place.
//!
//! Names follow the OpenTelemetry semantic conventions (see
//! `GENAI_SEMCONV.md` in the design notes); our own additions live under
//! `observra.*`. No other module spells an attribute name.

/// `error.type`: low-cardinality class of an error (`cancelled`, `panic`, a type name).
pub const ERROR_TYPE: &str = "error.type";
/// Span event name for an exception.
pub const EXCEPTION_EVENT: &str = "exception";
/// `exception.type` on the exception event.
pub const EXCEPTION_TYPE: &str = "exception.type";
/// `exception.message` on the exception event.
pub const EXCEPTION_MESSAGE: &str = "exception.message";

/// `error.type` value for a future dropped before it completed.
pub const ERROR_CANCELLED: &str = "cancelled";
/// `error.type` value for a function that panicked.
pub const ERROR_PANIC: &str = "panic";

/// `tracing` field that overrides the exported span name.
pub const OTEL_NAME: &str = "otel.name";
/// `tracing` field that sets the span kind (`client`, `server`, ...).
pub const OTEL_KIND: &str = "otel.kind";
/// `tracing` field that sets the span status code (`OK`, `ERROR`).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// `tracing` field that sets the span status description.
pub const OTEL_STATUS_MESSAGE: &str = "otel.status_message";
/// `tracing` field holding an event's message.
pub const MESSAGE: &str = "message";

/// Event attribute: the `tracing` level of an event.
pub const EVENT_LEVEL: &str = "level";
/// Event attribute: the `tracing` target of an event.
pub const EVENT_TARGET: &str = "target";

/// Resource attribute `service.name`.
pub const SERVICE_NAME: &str = "service.name";
/// Resource attribute `service.version`.
pub const SERVICE_VERSION: &str = "service.version";
/// Resource attribute `deployment.environment.name`.
pub const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment.name";
/// Resource attribute `telemetry.sdk.name`.
pub const TELEMETRY_SDK_NAME: &str = "telemetry.sdk.name";
/// Resource attribute `telemetry.sdk.language`.
pub const TELEMETRY_SDK_LANGUAGE: &str = "telemetry.sdk.language";
/// Resource attribute `telemetry.sdk.version`.
pub const TELEMETRY_SDK_VERSION: &str = "telemetry.sdk.version";
/// Resource attribute `telemetry.distro.name`: observra itself.
pub const TELEMETRY_DISTRO_NAME: &str = "telemetry.distro.name";
/// Resource attribute `telemetry.distro.version`.
pub const TELEMETRY_DISTRO_VERSION: &str = "telemetry.distro.version";

/// Instrumentation scope name of the spans observra exports.
pub const SCOPE_NAME: &str = "observra";
