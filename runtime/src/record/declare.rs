//! The runtime side of [`crate::metrics!`]: label values that cannot be
//! unbounded by accident, and instruments that register lazily.
//!
//! A declared instrument is a `static`. On first use after `install()` it
//! registers against the installed meter provider; before `install()` (or
//! with no metrics backend) recording is a no-op costing one atomic load.
//! After a re-installation it registers again against the new provider.
//! Recording with `&'static str` labels allocates nothing on observra's side.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge, UpDownCounter};
use opentelemetry::{StringValue, Value};

/// A metric label value. Implemented for `&'static str` and `bool`, so a
/// call site cannot pass a request id or a user name by accident. For your
/// own bounded set, implement it on an enum:
///
/// ```
/// enum Channel { Web, Mobile }
///
/// impl observra::LabelValue for Channel {
///     fn label_value(self) -> observra::opentelemetry::Value {
///         match self {
///             Channel::Web => "web",
///             Channel::Mobile => "mobile",
///         }
///         .label_value()
///     }
/// }
/// ```
///
/// Escape hatch, when you know a runtime string is bounded (a model name
/// from a fixed config, say): wrap it in [`Unbounded`], which allocates.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a bounded metric label value",
    label = "label values must come from a fixed set",
    note = "use a `&'static str`, a `bool`, or an enum implementing `observra::LabelValue`",
    note = "if you know this value is bounded, wrap it: `observra::Unbounded(value)`"
)]
pub trait LabelValue {
    /// The label's value.
    fn label_value(self) -> Value;
}

impl LabelValue for &'static str {
    #[inline]
    fn label_value(self) -> Value {
        Value::String(StringValue::from(self))
    }
}

impl LabelValue for bool {
    #[inline]
    fn label_value(self) -> Value {
        Value::String(StringValue::from(if self { "true" } else { "false" }))
    }
}

/// A label value taken at run time: you vouch that the set of values is
/// small. Every distinct value is a new time series.
#[derive(Debug, Clone)]
pub struct Unbounded<T>(pub T);

impl<T: Into<String>> LabelValue for Unbounded<T> {
    fn label_value(self) -> Value {
        Value::String(self.0.into().into())
    }
}

/// The install's generation and meter, when one is installed and exports
/// metrics: lazily-built instruments are rebuilt for each install.
fn installed_meter() -> Option<(u64, Meter)> {
    if !crate::base::state::ACTIVE.load(Ordering::Relaxed) {
        return None;
    }
    crate::base::state::with_installed(|g, i| i.meter.clone().map(|m| (g, m))).flatten()
}

/// What a declaration says about one instrument.
#[derive(Debug)]
pub struct Spec {
    /// Instrument name.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Description (the doc comment).
    pub description: &'static str,
    /// Explicit bucket boundaries, for histograms.
    pub buckets: Option<&'static [f64]>,
}

/// Instruments a declaration can build.
pub trait Build: Sized {
    #[doc(hidden)]
    fn build(spec: &Spec, meter: &Meter) -> Self;
}

impl Build for Counter<u64> {
    fn build(spec: &Spec, meter: &Meter) -> Self {
        meter.u64_counter(spec.name).with_unit(spec.unit).with_description(spec.description).build()
    }
}
impl Build for UpDownCounter<i64> {
    fn build(spec: &Spec, meter: &Meter) -> Self {
        meter.i64_up_down_counter(spec.name).with_unit(spec.unit).with_description(spec.description).build()
    }
}
impl Build for Histogram<f64> {
    fn build(spec: &Spec, meter: &Meter) -> Self {
        let b = meter.f64_histogram(spec.name).with_unit(spec.unit).with_description(spec.description);
        match spec.buckets {
            Some(buckets) => b.with_boundaries(buckets.to_vec()).build(),
            None => b.build(),
        }
    }
}

/// An instrument built on first use for the current installation.
pub struct Lazy<I> {
    spec: Spec,
    cell: RwLock<Option<(u64, I)>>,
}

impl<I: Build> Lazy<I> {
    /// A declaration; nothing is registered until first use after `install()`.
    pub const fn new(spec: Spec) -> Self {
        Lazy { spec, cell: RwLock::new(None) }
    }

    /// Runs `f` on the instrument; does nothing before `install()`.
    #[inline]
    pub fn with(&self, f: impl FnOnce(&I)) {
        let Some((generation, meter)) = installed_meter() else { return };
        if let Ok(guard) = self.cell.read() {
            if let Some((g, instrument)) = guard.as_ref() {
                if *g == generation {
                    f(instrument);
                    return;
                }
            }
        }
        let instrument = I::build(&self.spec, &meter);
        f(&instrument);
        if let Ok(mut guard) = self.cell.write() {
            *guard = Some((generation, instrument));
        }
    }
}

type GaugeCallback = Arc<dyn Fn() -> f64 + Send + Sync>;

/// A declared observable gauge: its callback is registered with every
/// meter provider installed from now on.
pub struct LazyGauge {
    spec: Spec,
    callback: Mutex<Option<GaugeCallback>>,
}

static GAUGES: Mutex<Vec<&'static LazyGauge>> = Mutex::new(Vec::new());

impl LazyGauge {
    /// A declaration; observed once a callback is set.
    pub const fn new(spec: Spec) -> Self {
        LazyGauge { spec, callback: Mutex::new(None) }
    }

    /// Sets the function read at each collection. Calling it again swaps
    /// the function: the gauge is registered once per installed pipeline,
    /// however often it is observed.
    pub fn observe(&'static self, callback: impl Fn() -> f64 + Send + Sync + 'static) {
        let callback: GaugeCallback = Arc::new(callback);
        *self.callback.lock().unwrap_or_else(|p| p.into_inner()) = Some(callback);
        let first = {
            let mut all = GAUGES.lock().unwrap_or_else(|p| p.into_inner());
            let first = !all.iter().any(|g| std::ptr::eq(*g, self));
            if first {
                all.push(self);
            }
            first
        };
        // Already known: registered at install (or at its first observe),
        // and its SDK callback reads the function swapped in above.
        if first {
            if let Some(installed) = crate::base::state::installed() {
                if let Some(meter) = &installed.meter {
                    installed.keep_gauge(self.register(meter));
                }
            }
        }
    }

    fn register(&'static self, meter: &Meter) -> ObservableGauge<f64> {
        meter
            .f64_observable_gauge(self.spec.name)
            .with_unit(self.spec.unit)
            .with_description(self.spec.description)
            .with_callback(move |observer| {
                let callback = self.callback.lock().ok().and_then(|c| c.clone());
                if let Some(callback) = callback {
                    if let Ok(v) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback())) {
                        observer.observe(v, &[]);
                    }
                }
            })
            .build()
    }
}

/// Registers every declared gauge with a new meter provider.
pub(crate) fn register_gauges(meter: &Meter) -> Vec<ObservableGauge<f64>> {
    let all: Vec<&'static LazyGauge> = GAUGES.lock().map(|g| g.clone()).unwrap_or_default();
    all.iter().map(|g| g.register(meter)).collect()
}
