//! Compile-pass and compile-fail cases for the observra macros live under `pass/` and `fail/`; `tests/ui.rs` runs them.
