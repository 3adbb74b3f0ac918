//! Integrations with third-party clients, each behind a cargo feature.

#[cfg(feature = "async-openai")]
pub mod async_openai;
#[cfg(feature = "genai")]
pub mod genai;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod propagation;
pub mod web;
