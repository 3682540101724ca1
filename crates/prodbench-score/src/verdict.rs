//! A judge's decision on one criterion, and where decisions are kept between runs.

use serde::{Deserialize, Serialize};

/// The judge's decision on one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub met: bool,
    /// A short reason quoting the evidence.
    pub reason: String,
    /// Samples that said "met", out of `samples`, the samples that voted (majority vote; 1
    /// of 1 without voting).
    pub votes_met: u32,
    pub samples: u32,
    /// The judge model that decided.
    pub judge: String,
    /// A reason given by the losing side of a split vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minority_reason: Option<String>,
    /// Why samples that did not vote failed (the vote is over the others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_errors: Vec<String>,
}

/// Where verdicts are kept between runs (the job store), by a key the judge derives from
/// everything the verdict depends on.
pub trait VerdictCache: Send + Sync {
    fn get(&self, key: &str) -> Option<Verdict>;
    fn put(&self, key: &str, verdict: &Verdict);
}
