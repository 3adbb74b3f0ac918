//! Attribute macros for [observra](https://docs.rs/observra).
//!
//! Use them through the `observra` crate (`use observra::traced;`), which
//! re-exports them. Each macro is two halves: `args` parses the attribute's
//! arguments into a checked model (every problem reported, each pointing at
//! the offending tokens), and `expand` turns that model plus the function
//! into code that calls only `::observra::__private`. No runtime logic lives
//! here.

mod args;
mod expand;

use proc_macro::TokenStream;

/// Records each call of a function as an OpenTelemetry span.
///
/// Works on sync and async functions, methods (`&self`, `&mut self`,
/// `self`), generic functions, and any return type. An `Err` return sets the
/// span status to ERROR, `error.type` (the error's type name, or what
/// `observra::ErrorType` says) and an `exception` event; a panic ends the
/// span with `error.type = panic`; an async call dropped before it finishes
/// ends it with `error.type = cancelled`.
///
/// No argument values are recorded unless asked for.
///
/// Arguments (all optional):
/// - `name = "..."`: the span name (default: the function's name).
/// - `kind = client | server | internal | producer | consumer` (default `internal`).
/// - `attrs(key = value, ...)`: attributes; keys may be dotted
///   (`gen_ai.request.model`) or string literals; values are literals or any
///   expression over the parameters whose type implements
///   `observra::AttributeValue` (strings, numbers, booleans, and slices,
///   `Vec`s and `Option`s of those).
/// - `args`: record every parameter (except `self` and skipped ones) with `Debug`.
/// - `fields(a, b)`: record only these parameters with `Debug`.
/// - `skip(a, b)`: never record these parameters (with `args`).
///
/// ```ignore
/// #[observra::traced(kind = client, attrs(component = "rag", top_k = k), fields(query))]
/// async fn retrieve(query: &str, k: u32) -> Result<Vec<Doc>, Error> { ... }
/// ```
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::traced(args.into(), item.into()).into()
}
