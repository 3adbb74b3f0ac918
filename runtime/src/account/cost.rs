//! Model prices and the cost of a call.
//!
//! Cost follows the cache-aware formula (prices per million tokens): with I
//! input tokens of which R were read from cache and W written to it, and O
//! output tokens of which Z were reasoning tokens,
//!
//! ```text
//! cost = (I - R - W) * input + R * cache_read + W * cache_write
//!      + (O - Z) * output + Z * reasoning
//! ```
//!
//! `reasoning` defaults to `output`, the cache prices to `input`, so cached
//! tokens are never billed twice. A model missing from the table has no
//! cost (one warning per model), never a guess.
//!
//! Every price must be a finite, non-negative amount: a NaN, infinite or
//! negative price (from a price file, [`crate::Builder::price`] or
//! [`crate::Builder::cost_table`]) is a typed error at `install()` naming the
//! setting and the model. A cost is always finite and non-negative: one too
//! large for an `f64` saturates at `f64::MAX`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;

use crate::account::usage::Usage;
use crate::error::{Error, Result, Setting};

/// Prices of one model, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Uncached input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens read from cache (default: `input`).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input tokens written to cache (default: `input`).
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Reasoning output tokens (default: `output`).
    #[serde(default)]
    pub reasoning: Option<f64>,
}

impl Price {
    /// Input and output prices, USD per million tokens.
    pub fn new(input: f64, output: f64) -> Self {
        Price { input, output, cache_read: None, cache_write: None, reasoning: None }
    }
    /// Sets the cache-read price.
    pub fn cache_read(mut self, price: f64) -> Self {
        self.cache_read = Some(price);
        self
    }
    /// Sets the cache-write price.
    pub fn cache_write(mut self, price: f64) -> Self {
        self.cache_write = Some(price);
        self
    }
    /// Sets the reasoning-token price.
    pub fn reasoning(mut self, price: f64) -> Self {
        self.reasoning = Some(price);
        self
    }

    /// The prices this sets, by field name (`None` for a default).
    fn fields(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("reasoning", self.reasoning),
        ]
    }

    /// Whether every price is a finite, non-negative amount.
    fn is_valid(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none_or(|v| v.is_finite() && v >= 0.0))
    }

    /// Checks that every price is a finite, non-negative amount; the error
    /// names the first one that is not.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        match self.fields().into_iter().find(|(_, v)| v.is_some_and(|v| !(v.is_finite() && v >= 0.0))) {
            Some((field, Some(v))) => {
                Err(format!("the {field} price {v} is not a finite, non-negative amount (USD per million tokens)"))
            }
            _ => Ok(()),
        }
    }

    /// The cost of `usage` at these prices, USD; `None` when the usage has
    /// neither input nor output counts, or when a price is NaN, infinite or
    /// negative (`install()` refuses such prices). Finite and non-negative:
    /// a cost too large for an `f64` saturates at `f64::MAX`.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        if usage.input_tokens.is_none() && usage.output_tokens.is_none() || !self.is_valid() {
            return None;
        }
        let i = usage.input_tokens.unwrap_or(0) as f64;
        let r = usage.cache_read_input_tokens.unwrap_or(0) as f64;
        let w = usage.cache_creation_input_tokens.unwrap_or(0) as f64;
        let o = usage.output_tokens.unwrap_or(0) as f64;
        let z = usage.reasoning_output_tokens.unwrap_or(0) as f64;
        let uncached = (i - r - w).max(0.0);
        let plain_out = (o - z).max(0.0);
        let per_million = uncached * self.input
            + r * self.cache_read.unwrap_or(self.input)
            + w * self.cache_write.unwrap_or(self.input)
            + plain_out * self.output
            + z * self.reasoning.unwrap_or(self.output);
        // Finite, non-negative prices times token counts: non-negative, and
        // at worst +inf (never NaN), which saturates.
        Some((per_million / 1_000_000.0).min(f64::MAX))
    }
}

#[derive(Deserialize)]
struct PriceFile {
    #[serde(default)]
    as_of: Option<String>,
    models: HashMap<String, Price>,
}

/// Per-model prices. Starts from the built-in table (see
/// [`CostTable::builtin_as_of`]); extend or override it with
/// [`crate::Builder::price`], [`crate::Builder::cost_table`] or a JSON/TOML
/// file named by `OBSERVRA_PRICES`:
///
/// ```toml
/// [models.my-finetune]
/// input = 3.0
/// output = 12.0
/// cache_read = 0.3
/// ```
#[derive(Debug, Clone, Default)]
pub struct CostTable {
    models: HashMap<String, Price>,
    as_of: Option<String>,
}

const BUILTIN: &str = include_str!("../../prices.json");

impl CostTable {
    /// The built-in table of mainstream models.
    pub fn builtin() -> Self {
        // The file is ours and tested; should it ever fail to parse, an empty
        // table (no cost attributes) is safer than a panic in the host.
        Self::from_json(BUILTIN).unwrap_or_default()
    }
    /// The date the built-in prices were taken.
    pub fn builtin_as_of() -> Option<String> {
        Self::builtin().as_of
    }
    /// A table with no prices.
    pub fn empty() -> Self {
        CostTable::default()
    }
    /// Adds or replaces a model's prices.
    pub fn insert(&mut self, model: impl Into<String>, price: Price) {
        self.models.insert(model.into(), price);
    }
    /// Adds or replaces every model of `other`.
    pub fn extend(&mut self, other: CostTable) {
        self.models.extend(other.models);
    }
    /// Number of models priced.
    pub fn len(&self) -> usize {
        self.models.len()
    }
    /// Whether no model is priced.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
    /// Parses `{"models": {"name": {"input": .., "output": .., ...}}}`; a
    /// price that is not a finite, non-negative amount is an error naming
    /// the model.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let t = Self::parse_json(text)?;
        t.check().map_err(|(model, reason)| format!("model {model:?}: {reason}"))?;
        Ok(t)
    }
    fn parse_json(text: &str) -> std::result::Result<Self, String> {
        let f: PriceFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(CostTable { models: f.models, as_of: f.as_of })
    }
    /// Parses the same shape as TOML (`[models.name]` tables); a price that
    /// is not a finite, non-negative amount (TOML has `nan` and `inf`) is an
    /// error naming the model.
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml(text: &str) -> std::result::Result<Self, String> {
        let t = Self::parse_toml(text)?;
        t.check().map_err(|(model, reason)| format!("model {model:?}: {reason}"))?;
        Ok(t)
    }
    #[cfg(feature = "toml")]
    fn parse_toml(text: &str) -> std::result::Result<Self, String> {
        let f: PriceFile = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(CostTable { models: f.models, as_of: f.as_of })
    }
    /// Checks every price (see [`Price::cost`]); the error names the first
    /// model, by name, with a price that is NaN, infinite or negative.
    pub(crate) fn check(&self) -> std::result::Result<(), (String, String)> {
        let mut bad: Vec<(&String, String)> =
            self.models.iter().filter_map(|(name, p)| p.check().err().map(|reason| (name, reason))).collect();
        bad.sort();
        match bad.into_iter().next() {
            Some((name, reason)) => Err((name.clone(), reason)),
            None => Ok(()),
        }
    }
    /// Reads a `.json` or `.toml` price file.
    pub(crate) fn from_path(path: &Path, setting: Setting) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            setting: setting.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = match path.extension().and_then(|e| e.to_str()) {
            #[cfg(feature = "toml")]
            Some("toml") => Self::parse_toml(&text),
            #[cfg(not(feature = "toml"))]
            Some("toml") => Err("TOML price files need observra's `toml` cargo feature; use JSON or enable it".into()),
            _ => Self::parse_json(&text),
        };
        let table = parsed.map_err(|reason| {
            Error::invalid(setting.clone(), path.display().to_string(), format!("malformed price file: {reason}"))
        })?;
        table.check().map_err(|(model, reason)| {
            Error::invalid(setting, path.display().to_string(), format!("price file: model {model:?}: {reason}"))
        })?;
        Ok(table)
    }

    /// The prices of `model`: an exact match, or else the longest priced name
    /// that `model` extends with a `-` suffix (dated snapshots such as
    /// `gpt-4o-2024-08-06` use `gpt-4o`).
    pub fn price(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.models.get(model) {
            return Some(p);
        }
        self.models
            .iter()
            .filter(|(name, _)| {
                model.len() > name.len() && model.starts_with(name.as_str()) && model.as_bytes()[name.len()] == b'-'
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| p)
    }

    /// The cost of `usage` for `model`, USD; `None` for an unknown model.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model)?.cost(usage)
    }
}

/// Remembers which unknown models were already warned about.
pub(crate) fn first_miss(model: &str) -> bool {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut guard = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    // Bounded: a flood of distinct model names cannot grow this without limit.
    if set.len() >= 1024 || set.contains(model) {
        return false;
    }
    set.insert(model.to_string());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_a_date() {
        let t = CostTable::from_json(BUILTIN).expect("prices.json parses");
        assert!(t.len() >= 20);
        assert!(CostTable::builtin_as_of().is_some());
    }

    #[test]
    fn dated_snapshots_use_the_longest_priced_prefix() {
        let t = CostTable::builtin();
        assert_eq!(t.price("gpt-4o-2024-08-06"), t.price("gpt-4o"));
        assert_eq!(t.price("gpt-4o-mini-2024-07-18"), t.price("gpt-4o-mini"));
        assert!(t.price("gpt-4").is_none());
        assert!(t.price("gpt-4ox").is_none());
    }

    #[test]
    fn nan_infinite_and_negative_prices_are_refused_naming_the_model() {
        let err =
            CostTable::from_json(r#"{"models": {"ok": {"input": 1, "output": 2}, "bad": {"input": -1, "output": 2}}}"#)
                .expect_err("a negative price is refused");
        assert!(err.contains("\"bad\"") && err.contains("input"), "{err}");
        let err = CostTable::from_json(r#"{"models": {"m": {"input": 1, "output": 2, "cache_read": -0.5}}}"#)
            .expect_err("a negative cache price is refused");
        assert!(err.contains("\"m\"") && err.contains("cache_read"), "{err}");
        assert!(CostTable::from_json(r#"{"models": {"free": {"input": 0, "output": 0}}}"#).is_ok(), "zero is a price");
        // NaN and infinite prices cannot be written in JSON; from code, they price nothing.
        let u = Usage::new(1_000, 1_000);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            for p in [Price::new(bad, 1.0), Price::new(1.0, bad), Price::new(1.0, 1.0).reasoning(bad)] {
                assert_eq!(p.cost(&u.with_reasoning(10)), None, "{p:?}");
            }
        }
    }

    #[cfg(feature = "toml")]
    #[test]
    fn toml_price_files_cannot_smuggle_nan_or_infinity() {
        for v in ["nan", "inf", "-inf", "-2.0"] {
            let err = CostTable::from_toml(&format!("[models.m]\ninput = {v}\noutput = 1.0\n")).expect_err(v);
            assert!(err.contains("\"m\""), "{err}");
        }
    }

    #[test]
    fn the_cost_of_huge_counts_stays_finite_and_non_negative() {
        let u = Usage::new(u64::MAX, u64::MAX).with_cache_read(u64::MAX).with_reasoning(u64::MAX);
        for p in
            [Price::new(2.0, 8.0), Price::new(f64::MAX, f64::MAX), Price::new(0.0, f64::MAX / 2.0).cache_read(1e300)]
        {
            let c = p.cost(&u).unwrap();
            assert!(c.is_finite() && c >= 0.0, "{p:?}: {c}");
        }
        assert_eq!(Price::new(f64::MAX, f64::MAX).cost(&u), Some(f64::MAX), "saturates");
    }

    #[test]
    fn cached_tokens_are_not_billed_twice() {
        let p = Price::new(2.0, 8.0).cache_read(0.5);
        let u = Usage::new(1_000_000, 0).with_cache_read(400_000);
        // 600k uncached at 2.0 + 400k cached at 0.5 = 1.2 + 0.2
        assert!((p.cost(&u).unwrap() - 1.4).abs() < 1e-12);
    }
}
