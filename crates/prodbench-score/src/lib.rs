//! The typed grading core: what a trial's grade is made of and how it is computed, with
//! nothing that reaches a sandbox or the network.
//!
//! Grading (`prodbench-grade`) needs a sandbox and a model client to *collect* rewards,
//! reports and verdicts; the store and the report only *read* what came out. This crate is
//! the part both sides share, so storing and reporting build without an HTTP stack or a
//! sandbox backend:
//!
//! - [`reward`]: the reward file contract (`reward.txt`, `reward.json`).
//! - [`test_report`]: per-test CTRF and JUnit reports.
//! - [`verdict`]: a judge's decision on one criterion, and the cache verdicts are kept in.
//! - [`evidence`]: where a trial directory keeps the evidence a grade was computed from.
//! - [`score`]: checks, component scores, the composite, pass, resolve and points.
//! - [`traffic`]: what a live trial's load generator measured (`summary.json`,
//!   `timeline.json`, `metrics.prom`), which the tests grade against and the report draws.

pub mod evidence;
pub mod reward;
pub mod score;
pub mod test_report;
pub mod traffic;
pub mod verdict;
