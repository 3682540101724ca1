//! Where a trial directory keeps the evidence its grade was computed from, and the
//! workspace changes among it.
//!
//! Grading writes these at the end of the agent phase, regrading and the judge read them
//! back, and the report shows the answer: the names live here so that all of them agree
//! without the report depending on grading.

use serde::{Deserialize, Serialize};

/// The agent's final workspace.
pub const WORKSPACE_DIR: &str = "workspace";
/// The workspace's unified diff against the original.
pub const DIFF_FILE: &str = "diff.patch";
/// The [`WorkspaceChanges`], as JSON.
pub const CHANGES_FILE: &str = "changes.json";
/// The agent's final answer, if it left one.
pub const ANSWER_COPY: &str = "agent/answer.txt";
/// One `<probe>.txt` per state probe.
pub const STATE_DIR: &str = "state";
/// The [`WorkspaceCut`], when the saved workspace was cut to its cap.
pub const WORKSPACE_CUT_FILE: &str = "workspace-cut.json";
/// A live trial's traffic record ([`crate::traffic::TrafficRecord`]'s files), which the tests
/// read a copy of under `/logs/traffic/`.
pub const TRAFFIC_DIR: &str = "traffic";
/// A live trial's service logs, one `<service>.log` each.
pub const SERVICES_DIR: &str = "services";
/// What each fault proxy of a live trial did (forwarded, delayed, errored, ...), by service.
pub const FAULTS_FILE: &str = "faults.json";
/// The saved workspace's default cap (`run --workspace-cap`).
pub const DEFAULT_WORKSPACE_CAP_BYTES: u64 = 100 << 20;

/// What the cap left out of a trial's saved workspace (a regrade refuses such a trial: it
/// would verify an incomplete copy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceCut {
    pub cap_bytes: u64,
    /// The whole workspace, as downloaded.
    pub total_bytes: u64,
    /// Left out, largest first: path (relative to the workspace) and size.
    pub omitted: Vec<(String, u64)>,
}

/// How the workspace changed during the agent phase (paths relative to the workspace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceChanges {
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
    pub added: Vec<String>,
}
