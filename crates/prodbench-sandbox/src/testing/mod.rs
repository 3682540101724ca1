//! Test support for sandbox backends (the `testing` cargo feature).
//!
//! [`contract`] is what every backend must do, as functions a backend's tests call with its
//! provider, so a new backend is held to exactly the checks the others pass. The fixtures
//! here give those checks (and a backend's own tests) a task and sandboxes to run on.

pub mod contract;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prodbench_task::Task;
use prodbench_task::scaffold::TaskFiles;

use crate::{ExecOutput, ExecRequest, Provider, Role, Sandbox, StartSpec};

/// A task every backend can start: `debian:bookworm-slim` (for image-based backends) with
/// workdir `/app`, and a `seed.txt` in its environment directory.
pub fn task(dir: &Path) -> Task {
    TaskFiles::new("sandbox-contract").file("environment/seed.txt", "seed\n").create(dir).expect("the contract's task is valid")
}

/// A job id no other test uses (this process's id, the time, a counter), so that cleaning
/// up its job touches no other test's sandboxes.
pub fn unique_job_id(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("test-{what}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Prepares `task` and starts the agent's sandbox of trial `trial` in job `job`.
pub async fn start(provider: &dyn Provider, task: &Task, job: &str, trial: &str) -> Box<dyn Sandbox> {
    let env = provider.prepare(task, Duration::from_secs(600)).await.unwrap_or_else(|e| panic!("{}: prepare: {e}", provider.name()));
    let spec = StartSpec::for_task(task, job, trial, Role::Agent, Duration::from_secs(60));
    provider.start(&env, &spec).await.unwrap_or_else(|e| panic!("{}: start: {e}", provider.name()))
}

/// Runs `script` under `sh -c` (30 s at most); an infrastructure error panics.
pub async fn sh(sandbox: &dyn Sandbox, script: &str) -> ExecOutput {
    sandbox.exec(ExecRequest::shell(script).timeout(Duration::from_secs(30))).await.unwrap_or_else(|e| panic!("exec {script:?}: {e}"))
}
