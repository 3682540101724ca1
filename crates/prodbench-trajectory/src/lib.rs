//! Agent trajectories in ATIF, Harbor's Agent Trajectory Interchange Format (v1.4).
//!
//! Every trial's agent, built-in or installed, leaves `agent/trajectory.json` in this one
//! format, so the judge, the report's per-trial statistics, `prodbench trajectory` and the
//! replay agent read one thing whatever ran. ATIF was chosen over a format of our own because
//! Harbor's tools and datasets already speak it; we write nothing outside its fields but
//! what its `extra` objects allow.
//!
//! - [`types`]: the schema as serde types.
//! - [`Recorder`]: writes a trajectory step by step. After every step the whole file is
//!   rewritten through a temporary file and a rename, so a crash at any moment leaves a
//!   valid trajectory up to the last completed step.
//! - [`validate`]: the format's rules (required fields, step order, agent-only fields,
//!   tool-call references, timestamps, totals), every violation with its JSON path.
//! - [`render`]: one trajectory as text for people.
//! - [`stats`]: what a trajectory says about how the agent worked (commands, files read and
//!   edited, searches, tokens, cost), for reports.

mod recorder;
pub mod render;
pub mod stats;
pub mod types;
mod validate;

pub use recorder::Recorder;
pub use types::{AgentInfo, FinalMetrics, Metrics, Observation, ObservationResult, SCHEMA_VERSION, Step, StepSource, ToolCallRecord, Trajectory};
pub use validate::validate;

/// Where every trial's trajectory lives, relative to the trial's `agent/` log directory.
pub const TRAJECTORY_FILE: &str = "trajectory.json";

/// Reads and parses a trajectory file. The error names the file.
pub fn load(path: &std::path::Path) -> Result<Trajectory, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not an ATIF trajectory: {e}", path.display()))
}
