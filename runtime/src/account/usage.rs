//! Token counts of one model call ([`Usage`]), normalised across providers:
//! a leaf type shared by the record, the accounting rules and the public
//! GenAI API.

use observra_semconv as sc;

/// Token counts of one model call. Every field is optional: only what the
/// provider reported is recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input (prompt) tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// All output (completion) tokens, reasoning ones included.
    pub output_tokens: Option<u64>,
    /// Input tokens read from the provider's cache (part of `input_tokens`).
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the provider's cache (part of `input_tokens`).
    pub cache_creation_input_tokens: Option<u64>,
    /// Output tokens spent on reasoning (part of `output_tokens`).
    pub reasoning_output_tokens: Option<u64>,
}

impl Usage {
    /// Input and output token counts.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage { input_tokens: Some(input_tokens), output_tokens: Some(output_tokens), ..Usage::default() }
    }

    /// From OpenAI's `usage`: `prompt_tokens` already include
    /// `prompt_tokens_details.cached_tokens`, and `completion_tokens` include
    /// `completion_tokens_details.reasoning_tokens`.
    pub fn openai(
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: Option<u64>,
        reasoning_tokens: Option<u64>,
    ) -> Self {
        Usage {
            input_tokens: Some(prompt_tokens),
            output_tokens: Some(completion_tokens),
            cache_read_input_tokens: cached_tokens,
            cache_creation_input_tokens: None,
            reasoning_output_tokens: reasoning_tokens,
        }
    }

    /// From Anthropic's `usage`: `input_tokens` exclude
    /// `cache_read_input_tokens` and `cache_creation_input_tokens`, so they are
    /// added to give the total input.
    pub fn anthropic(
        input_tokens: u64,
        output_tokens: u64,
        cache_read_input_tokens: Option<u64>,
        cache_creation_input_tokens: Option<u64>,
    ) -> Self {
        let total = input_tokens
            .saturating_add(cache_read_input_tokens.unwrap_or(0))
            .saturating_add(cache_creation_input_tokens.unwrap_or(0));
        Usage {
            input_tokens: Some(total),
            output_tokens: Some(output_tokens),
            cache_read_input_tokens,
            cache_creation_input_tokens,
            reasoning_output_tokens: None,
        }
    }

    /// Sets the cache-read input tokens (already counted in `input_tokens`).
    pub fn with_cache_read(mut self, tokens: u64) -> Self {
        self.cache_read_input_tokens = Some(tokens);
        self
    }
    /// Sets the cache-write input tokens (already counted in `input_tokens`).
    pub fn with_cache_creation(mut self, tokens: u64) -> Self {
        self.cache_creation_input_tokens = Some(tokens);
        self
    }
    /// Sets the reasoning output tokens (already counted in `output_tokens`).
    pub fn with_reasoning(mut self, tokens: u64) -> Self {
        self.reasoning_output_tokens = Some(tokens);
        self
    }

    /// Input plus output tokens, saturating at `u64::MAX`.
    pub(crate) fn total_tokens(&self) -> u64 {
        self.input_tokens.unwrap_or(0).saturating_add(self.output_tokens.unwrap_or(0))
    }

    /// The `gen_ai.usage.*` attributes of the reported values.
    pub(crate) fn attributes(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let values = [
            self.input_tokens,
            self.output_tokens,
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
            self.reasoning_output_tokens,
        ];
        USAGE_KEYS.into_iter().zip(values).filter_map(|(k, v)| v.map(|v| (k, v)))
    }
}

/// The `gen_ai.usage.*` keys, in the order of [`Usage`]'s fields (and of
/// [`PackedUsage`]'s values).
const USAGE_KEYS: [&str; 5] = [
    sc::GEN_AI_USAGE_INPUT_TOKENS,
    sc::GEN_AI_USAGE_OUTPUT_TOKENS,
    sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
];

/// Usage as a frame keeps it: 48 bytes where [`Usage`] takes 80, since a
/// frame moves a few times on the caller's thread.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct PackedUsage {
    values: [u64; 5],
    /// Bit `i`: `values[i]` was reported.
    present: u8,
}

impl PackedUsage {
    /// Sets the figure `key` names; `false` when `key` is no usage figure.
    pub(crate) fn set(&mut self, key: &str, n: u64) -> bool {
        match USAGE_KEYS.iter().position(|k| *k == key) {
            Some(i) => {
                self.values[i] = n;
                self.present |= 1 << i;
                true
            }
            None => false,
        }
    }

    /// Sets every figure `usage` reports, as setting each one's attribute
    /// would (no key is looked up); the others keep what they hold.
    pub(crate) fn merge(&mut self, usage: &Usage) {
        let figures = [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens,
            usage.reasoning_output_tokens,
        ];
        for (i, n) in figures.into_iter().enumerate() {
            if let Some(n) = n {
                // The attribute is an i64: a larger figure reads as i64::MAX there.
                self.values[i] = n.min(i64::MAX as u64);
                self.present |= 1 << i;
            }
        }
    }

    /// The usage reported, if any figure was.
    pub(crate) fn get(&self) -> Option<Usage> {
        let at = |i: usize| (self.present & (1 << i) != 0).then_some(self.values[i]);
        (self.present != 0).then(|| Usage {
            input_tokens: at(0),
            output_tokens: at(1),
            cache_read_input_tokens: at(2),
            cache_creation_input_tokens: at(3),
            reasoning_output_tokens: at(4),
        })
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;

    #[test]
    fn packed_usage_gives_back_what_was_set_and_nothing_else() {
        let mut p = PackedUsage::default();
        assert_eq!(p.get(), None);
        assert!(p.set(sc::GEN_AI_USAGE_OUTPUT_TOKENS, 0));
        assert!(p.set(sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 7));
        assert!(!p.set("gen_ai.usage.other", 1));
        let u = p.get().unwrap();
        assert_eq!((u.input_tokens, u.output_tokens, u.cache_read_input_tokens), (None, Some(0), Some(7)));
        assert_eq!((u.cache_creation_input_tokens, u.reasoning_output_tokens), (None, None));
        assert!(std::mem::size_of::<PackedUsage>() < std::mem::size_of::<Usage>());
        let mut merged = p;
        merged.merge(&Usage { input_tokens: Some(3), cache_read_input_tokens: Some(u64::MAX), ..Usage::default() });
        let m = merged.get().unwrap();
        assert_eq!((m.input_tokens, m.output_tokens), (Some(3), Some(0)), "a figure not reported keeps its value");
        assert_eq!(m.cache_read_input_tokens, Some(i64::MAX as u64), "as the i64 attribute reads it");
    }
}
