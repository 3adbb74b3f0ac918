//! The low layer every other one builds on: the one record type
//! ([`frame`]), the queue that takes closed frames to the collector
//! ([`queue`]), the strings that go there and come back ([`recycle`]), and
//! the installed-state slot ([`state`]). It imports only
//! the accounting rules and the leaf modules (names, usage), never the
//! layers above it: the caller's side (`record`), the collector
//! (`collect`), the exporters and the composition root (`config`,
//! `pipeline`) all find what is installed here.

pub(crate) mod attr_value;
pub(crate) mod clock;
pub(crate) mod deadline;
pub(crate) mod durable;
pub(crate) mod frame;
pub(crate) mod graded;
pub(crate) mod loss;
pub(crate) mod queue;
pub(crate) mod recycle;
pub(crate) mod state;
