//! Turning [`Usage`] into dollars, per model.
//!
//! Benchmark reports put a price on each run. Prices change and differ per
//! contract, so the built-in table is only a starting point that a TOML file
//! can override.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Usage;

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Per million uncached prompt tokens.
    pub prompt: f64,
    /// Per million generated tokens.
    pub completion: f64,
    /// Per million prompt tokens served from the cache.
    pub cached_prompt: f64,
}

impl Price {
    /// Costs nothing: for models served locally.
    pub const FREE: Price = Price::new(0.0, 0.0, 0.0);

    /// A price from USD per million prompt, completion and cached-prompt tokens.
    pub const fn new(prompt: f64, completion: f64, cached_prompt: f64) -> Self {
        Self { prompt, completion, cached_prompt }
    }

    /// USD for `usage`; cached tokens are billed at the cached rate, the rest of
    /// the prompt at the prompt rate.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let uncached = usage.prompt_tokens.saturating_sub(usage.cached_tokens);
        let micro_usd = uncached as f64 * self.prompt + usage.cached_tokens as f64 * self.cached_prompt + usage.completion_tokens as f64 * self.completion;
        micro_usd / 1_000_000.0
    }
}

/// Prices per model name.
///
/// Lookup is by exact name, else by the longest listed name that prefixes the
/// model followed by `-`, `:`, `@`, `.` or `/`, so dated and tagged variants
/// (`gpt-4o-2024-08-06`, `qwen2.5-coder:7b`) find their family's price.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
}

/// `[models."name"]` tables in a TOML price file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    models: BTreeMap<String, PriceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    prompt: f64,
    completion: f64,
    /// Defaults to `prompt` (no cache discount).
    cached_prompt: Option<f64>,
}

impl PriceTable {
    /// A handful of well-known models.
    ///
    /// The prices are illustrative list prices (USD per million tokens) at the
    /// time of writing, not a source of truth: override them with
    /// [`PriceTable::from_toml_str`] and [`PriceTable::merge`]. Local models cost
    /// nothing: the `local` entry covers names like `local` or `local-qwen`, and
    /// other local names can be added with [`Price::FREE`].
    pub fn builtin() -> Self {
        let entries = [
            ("gpt-4o", Price::new(2.50, 10.00, 1.25)),
            ("gpt-4o-mini", Price::new(0.15, 0.60, 0.075)),
            ("gpt-4.1", Price::new(2.00, 8.00, 0.50)),
            ("gpt-4.1-mini", Price::new(0.40, 1.60, 0.10)),
            ("gpt-5", Price::new(1.25, 10.00, 0.125)),
            ("gpt-5-mini", Price::new(0.25, 2.00, 0.025)),
            ("claude-sonnet-4", Price::new(3.00, 15.00, 0.30)),
            ("claude-sonnet-4-5", Price::new(3.00, 15.00, 0.30)),
            ("claude-opus-4", Price::new(15.00, 75.00, 1.50)),
            ("claude-haiku-4-5", Price::new(1.00, 5.00, 0.10)),
            ("claude-3-5-haiku", Price::new(0.80, 4.00, 0.08)),
            ("local", Price::FREE),
        ];
        let models = entries.into_iter().map(|(name, price)| (name.to_owned(), price));
        Self { models: models.collect() }
    }

    /// Parses a TOML price file:
    ///
    /// ```toml
    /// [models."gpt-4o"]
    /// prompt = 2.5          # USD per million uncached prompt tokens
    /// completion = 10.0     # USD per million generated tokens
    /// cached_prompt = 1.25  # optional, defaults to `prompt`
    /// ```
    ///
    /// # Errors
    /// Invalid TOML, unknown keys, a missing `prompt`/`completion`, or a price
    /// that is negative or not finite.
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| format!("invalid price table: {e}"))?;
        let mut table = Self::default();
        for (model, entry) in file.models {
            let price = entry.validate(&model)?;
            table.models.insert(model, price);
        }
        Ok(table)
    }

    /// Sets the price of `model`, replacing any previous one.
    pub fn insert(&mut self, model: impl Into<String>, price: Price) {
        self.models.insert(model.into(), price);
    }

    /// This table with every entry of `overrides` added or replacing its own.
    pub fn merge(mut self, overrides: PriceTable) -> Self {
        self.models.extend(overrides.models);
        self
    }

    /// The price for `model` (see the type docs for how names match).
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.models
            .get(model)
            .or_else(|| self.models.iter().filter(|(name, _)| is_family_of(name, model)).max_by_key(|(name, _)| name.len()).map(|(_, price)| price))
    }

    /// USD for `usage` on `model`, or `None` if the model is not in the table.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|price| price.cost(usage))
    }
}

/// Whether `model` is `family` plus a version or tag suffix.
fn is_family_of(family: &str, model: &str) -> bool {
    model.strip_prefix(family).and_then(|rest| rest.chars().next()).is_some_and(|c| matches!(c, '-' | ':' | '@' | '.' | '/'))
}

impl PriceEntry {
    fn validate(self, model: &str) -> Result<Price, String> {
        let price = Price::new(self.prompt, self.completion, self.cached_prompt.unwrap_or(self.prompt));
        let fields = [("prompt", price.prompt), ("completion", price.completion), ("cached_prompt", price.cached_prompt)];
        match fields.iter().find(|(_, value)| !(value.is_finite() && *value >= 0.0)) {
            Some((field, value)) => Err(format!("price for `{model}`: `{field}` must be a finite non-negative number, got {value}")),
            None => Ok(price),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USAGE: Usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 500_000, cached_tokens: 200_000 };

    #[test]
    fn cost_bills_cached_tokens_at_the_cached_rate() {
        // 800k uncached * $2.50 + 200k cached * $1.25 + 500k out * $10.
        let cost = PriceTable::builtin().cost("gpt-4o", &USAGE).unwrap();
        assert!((cost - (2.0 + 0.25 + 5.0)).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn unknown_models_have_no_cost_and_local_ones_are_free() {
        let table = PriceTable::builtin();
        assert_eq!(table.cost("mystery-model", &USAGE), None);
        assert_eq!(table.cost("gpt-4", &USAGE), None);
        assert_eq!(table.cost("local", &USAGE), Some(0.0));
        assert_eq!(table.cost("local-qwen2.5-coder", &USAGE), Some(0.0));
        assert_eq!(table.cost("localhost-thing", &USAGE), None);
    }

    #[test]
    fn variants_match_the_longest_family() {
        let table = PriceTable::builtin();
        assert_eq!(table.price("gpt-4o-2024-08-06"), table.price("gpt-4o"));
        assert_eq!(table.price("gpt-4o-mini-2024-07-18"), table.price("gpt-4o-mini"));
        assert_eq!(table.price("claude-sonnet-4-5-20250929"), table.price("claude-sonnet-4-5"));
        assert_ne!(table.price("gpt-4o-mini"), table.price("gpt-4o"));
    }

    #[test]
    fn toml_overrides_merge_into_the_builtin_table() {
        let overrides =
            PriceTable::from_toml_str("[models.\"gpt-4o\"]\nprompt = 1.0\ncompletion = 2.0\n\n[models.\"qwen2.5-coder\"]\nprompt = 0\ncompletion = 0\n")
                .unwrap();
        let table = PriceTable::builtin().merge(overrides);
        assert_eq!(table.price("gpt-4o"), Some(&Price::new(1.0, 2.0, 1.0)));
        assert_eq!(table.cost("qwen2.5-coder:7b", &USAGE), Some(0.0));
        assert!(table.price("claude-opus-4").is_some());
    }

    #[test]
    fn bad_price_files_are_rejected() {
        let negative = PriceTable::from_toml_str("[models.m]\nprompt = -1\ncompletion = 1\n");
        assert!(negative.unwrap_err().contains("`prompt`"));
        assert!(PriceTable::from_toml_str("[models.m]\nprompt = 1\n").is_err());
        assert!(PriceTable::from_toml_str("[models.m]\nprompt = 1\ncompletion = 1\nextra = 2\n").is_err());
        assert!(PriceTable::from_toml_str("[models.m]\nprompt = nan\ncompletion = 1\n").is_err());
        assert_eq!(PriceTable::from_toml_str("").unwrap(), PriceTable::default());
    }

    #[test]
    fn insert_sets_a_price() {
        let mut table = PriceTable::default();
        table.insert("my-local-model", Price::FREE);
        assert_eq!(table.cost("my-local-model", &USAGE), Some(0.0));
    }
}
