//! Cost and token budgets: per model call, per agent invocation (the sum of
//! everything beneath that agent span) and per rolling time window for the
//! process.
//!
//! Crossing a limit emits one WARN `tracing` event (target `observra::budget`),
//! increments the `observra.budget.exceeded` counter and calls the callback
//! given to [`crate::Builder::on_budget_exceeded`]. To stop an agent, have
//! the callback set a flag (or cancel a token) your agent loop checks before
//! its next model call:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! let stop = Arc::new(AtomicBool::new(false));
//! let flag = stop.clone();
//! let _telemetry = observra::init()
//!     .budget(observra::Budget::new().per_agent_usd(2.0))
//!     .on_budget_exceeded(move |event| {
//!         eprintln!("budget exceeded: {event:?}");
//!         flag.store(true, Ordering::Relaxed);
//!     })
//!     .install();
//! // in the agent loop: if stop.load(Ordering::Relaxed) { return Err(...) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits; each is optional.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub(crate) call_usd: Option<f64>,
    pub(crate) call_tokens: Option<u64>,
    pub(crate) agent_usd: Option<f64>,
    pub(crate) agent_tokens: Option<u64>,
    pub(crate) window: Option<(Duration, f64)>,
}

impl Budget {
    /// No limits.
    pub fn new() -> Self {
        Budget::default()
    }
    /// Cost limit of one model call, USD.
    pub fn per_call_usd(mut self, usd: f64) -> Self {
        self.call_usd = Some(usd);
        self
    }
    /// Token limit (input + output) of one model call.
    pub fn per_call_tokens(mut self, tokens: u64) -> Self {
        self.call_tokens = Some(tokens);
        self
    }
    /// Cost limit of one agent invocation (everything beneath it), USD.
    pub fn per_agent_usd(mut self, usd: f64) -> Self {
        self.agent_usd = Some(usd);
        self
    }
    /// Token limit of one agent invocation.
    pub fn per_agent_tokens(mut self, tokens: u64) -> Self {
        self.agent_tokens = Some(tokens);
        self
    }
    /// Cost limit of all model calls of the process within any rolling `window`, USD.
    pub fn per_window_usd(mut self, window: Duration, usd: f64) -> Self {
        self.window = Some((window, usd));
        self
    }
}

/// Which limit was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetKind {
    /// One model call.
    Call,
    /// One agent invocation.
    Agent,
    /// The rolling window of the process.
    Window,
}

impl BudgetKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BudgetKind::Call => "call",
            BudgetKind::Agent => "agent",
            BudgetKind::Window => "window",
        }
    }
}

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BudgetUnit {
    /// US dollars (`"usd"`).
    Usd,
    /// Input plus output tokens (`"tokens"`).
    Tokens,
}

impl BudgetUnit {
    /// `"usd"` or `"tokens"`, as warnings and metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetUnit::Usd => "usd",
            BudgetUnit::Tokens => "tokens",
        }
    }
}

impl std::fmt::Display for BudgetUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for BudgetUnit {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a crossing reports to the callback.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BudgetEvent {
    /// Which limit.
    pub kind: BudgetKind,
    /// What the limit is in.
    pub unit: BudgetUnit,
    /// The limit.
    pub limit: f64,
    /// What was observed (the call's, the agent's or the window's total).
    pub observed: f64,
    /// The model of the call that crossed it, if known.
    pub model: Option<String>,
    /// The agent, for agent budgets.
    pub agent: Option<String>,
    /// Trace of the call that crossed it (hex).
    pub trace_id: String,
}

/// The callback type.
pub type BudgetCallback = Arc<dyn Fn(&BudgetEvent) + Send + Sync>;

/// Rolling window of spend: 60 buckets, bounded memory.
#[derive(Debug)]
pub(crate) struct Window {
    width: Duration,
    limit: f64,
    buckets: Mutex<WindowState>,
}

#[derive(Debug)]
struct WindowState {
    start: Instant,
    spend: [f64; 60],
    last_index: u64,
    over: bool,
}

impl Window {
    pub(crate) fn new(width: Duration, limit: f64) -> Self {
        Window {
            width,
            limit,
            buckets: Mutex::new(WindowState { start: Instant::now(), spend: [0.0; 60], last_index: 0, over: false }),
        }
    }

    /// Adds spend; returns the window total when this addition crossed the
    /// limit. Spend that is NaN or negative adds nothing; sums saturate at
    /// `f64::MAX`.
    pub(crate) fn add(&self, usd: f64) -> Option<f64> {
        let usd = saturating_add_usd(0.0, usd);
        let slot = (self.width / 60).max(Duration::from_millis(1));
        let mut st = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let index = (st.start.elapsed().as_nanos() / slot.as_nanos().max(1)) as u64;
        // Clear the buckets that slid out since the last addition.
        let stale = index.saturating_sub(st.last_index).min(60);
        let last = st.last_index;
        for k in 1..=stale {
            st.spend[((last + k) % 60) as usize] = 0.0;
        }
        st.last_index = index;
        let bucket = &mut st.spend[(index % 60) as usize];
        *bucket = saturating_add_usd(*bucket, usd);
        let total = st.spend.iter().fold(0.0, |sum, s| saturating_add_usd(sum, *s));
        let crossed = total > self.limit && !st.over;
        st.over = total > self.limit;
        crossed.then_some(total)
    }

    pub(crate) fn limit(&self) -> f64 {
        self.limit
    }
}

/// `total + usd`, USD: a cost that is NaN or negative adds nothing, and the
/// sum saturates at `f64::MAX` rather than becoming infinite.
pub(crate) fn saturating_add_usd(total: f64, usd: f64) -> f64 {
    if usd >= 0.0 { (total + usd).min(f64::MAX) } else { total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_spend_ignores_nan_and_negative_amounts_and_saturates() {
        let w = Window::new(Duration::from_secs(3600), 10.0);
        assert_eq!(w.add(-100.0), None);
        assert_eq!(w.add(f64::NAN), None);
        assert_eq!(w.add(5.0), None);
        assert_eq!(w.add(6.0), Some(11.0), "neither the NaN nor the negative spend hid the crossing");

        let w = Window::new(Duration::from_secs(3600), 1.0);
        assert_eq!(w.add(f64::MAX), Some(f64::MAX));
        assert_eq!(w.add(f64::MAX), None, "still over: reported once");
        assert_eq!(w.add(f64::INFINITY), None);
        let total = w.buckets.lock().unwrap().spend.iter().sum::<f64>();
        assert_eq!(total, f64::MAX, "the total saturates");
    }
}
