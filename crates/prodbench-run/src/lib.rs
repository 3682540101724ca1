//! Jobs: agents x tasks x attempts under one config, run with bounded concurrency,
//! resumable, with infrastructure failures retried and kept apart.
//!
//! A job is planned as *slots* (task, attempt). Each slot runs tries until one ends with a
//! status that is not retryable, or the retry budget for infrastructure errors is spent.
//! Planning reads what the store already holds, so `--resume` is the same code path as a
//! fresh run: slots with a final try are skipped, everything else runs. Every try gets its
//! own row and directory; nothing is overwritten.
//!
//! Progress is reported through [`Reporter`] callbacks; this crate never prints.

mod summary;
mod trial;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use prodbench_agent::Agent;
use prodbench_sandbox::Provider;
use prodbench_store::{now, Store, StoreError, TrialRecord, TrialStatus};
use prodbench_task::Task;
use serde::{Deserialize, Serialize};

pub use summary::{summarize, JobSummary, TaskSummary};
pub use trial::{run_trial, TrialContext};

/// Everything that defines a job; stored as the job's `config.json` so `--resume` can
/// rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    /// The task or dataset directory, absolute.
    pub path: PathBuf,
    pub agent: String,
    pub attempts: u32,
    pub concurrency: usize,
    /// Sandbox backend: `docker` or `local`.
    pub env: String,
    pub timeout_multiplier: f64,
    pub max_retries: u32,
}

/// Callbacks for progress displays. Every method has an empty default.
pub trait Reporter: Send + Sync {
    /// `pending` slots will run; `done` were already finished (resume).
    fn job_started(&self, _job_id: &str, _pending: usize, _done: usize) {}
    fn trial_started(&self, _trial: &TrialRecord) {}
    /// `retrying` is true when the slot will be tried again.
    fn trial_finished(&self, _trial: &TrialRecord, _retrying: bool) {}
}

/// One (task, attempt) still to run, and the number its next try gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub task_index: usize,
    pub attempt: u32,
    pub next_try: u32,
}

/// The slots of `tasks` x `attempts` that `existing` trials have not finished.
pub fn plan(tasks: &[Task], attempts: u32, max_retries: u32, existing: &[TrialRecord]) -> (Vec<Slot>, usize) {
    let mut tries: HashMap<(&str, u32), Vec<&TrialRecord>> = HashMap::new();
    for t in existing {
        tries.entry((t.task_name.as_str(), t.attempt)).or_default().push(t);
    }
    let mut pending = Vec::new();
    let mut done = 0;
    for (task_index, task) in tasks.iter().enumerate() {
        for attempt in 1..=attempts {
            let previous = tries.get(&(task.name.as_str(), attempt)).map(Vec::as_slice).unwrap_or_default();
            if slot_is_finished(previous, max_retries) {
                done += 1;
            } else {
                let next_try = previous.iter().map(|t| t.try_number).max().unwrap_or(0) + 1;
                pending.push(Slot { task_index, attempt, next_try });
            }
        }
    }
    (pending, done)
}

/// A slot is finished when a try ended with a non-retryable status, or its infrastructure
/// errors used up the retries. Interrupted tries never count against the budget.
fn slot_is_finished(tries: &[&TrialRecord], max_retries: u32) -> bool {
    let final_status = tries.iter().any(|t| t.status.is_some_and(|s| !s.is_retryable()));
    let infra = tries.iter().filter(|t| t.status == Some(TrialStatus::InfraError)).count() as u32;
    final_status || infra > max_retries
}

/// Everything a job run needs.
pub struct JobRunner<'a> {
    pub job_id: String,
    pub config: JobConfig,
    pub tasks: Vec<Task>,
    pub store: &'a Store,
    pub provider: Arc<dyn Provider>,
    pub agent: Arc<dyn Agent>,
    pub reporter: &'a dyn Reporter,
}

impl JobRunner<'_> {
    /// Runs every unfinished slot. Returns when all are done; dropping the future stops
    /// the job (the caller then removes the job's sandboxes with `Provider::cleanup_job`).
    pub async fn run(&self) -> Result<(), StoreError> {
        self.store.mark_unfinished_interrupted(&self.job_id)?;
        let existing = self.store.trials(&self.job_id)?;
        let (slots, done) = plan(&self.tasks, self.config.attempts, self.config.max_retries, &existing);
        self.reporter.job_started(&self.job_id, slots.len(), done);
        self.store.set_job_state(&self.job_id, "running")?;
        let results: Vec<Result<(), StoreError>> = futures_util::stream::iter(slots)
            .map(|slot| self.run_slot(slot))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        self.store.set_job_state(&self.job_id, "finished")
    }

    async fn run_slot(&self, slot: Slot) -> Result<(), StoreError> {
        let task = &self.tasks[slot.task_index];
        let mut try_number = slot.next_try;
        loop {
            let mut record = self.new_record(task, slot.attempt, try_number);
            let dir = self.store.job_dir(&self.job_id).join(&record.dir);
            std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
            self.store.start_trial(&record)?;
            self.reporter.trial_started(&record);
            let ctx = TrialContext {
                task,
                provider: self.provider.as_ref(),
                agent: self.agent.as_ref(),
                job_id: &self.job_id,
                timeout_multiplier: self.config.timeout_multiplier,
                dir: &dir,
            };
            run_trial(&ctx, &mut record).await;
            self.store.finish_trial(&record)?;
            let infra_tries = self.infra_tries(task, slot.attempt)?;
            let retrying = record.status == Some(TrialStatus::InfraError) && infra_tries <= self.config.max_retries;
            self.reporter.trial_finished(&record, retrying);
            if !retrying {
                return Ok(());
            }
            try_number += 1;
        }
    }

    fn infra_tries(&self, task: &Task, attempt: u32) -> Result<u32, StoreError> {
        let trials = self.store.trials(&self.job_id)?;
        Ok(trials
            .iter()
            .filter(|t| t.task_name == task.name && t.attempt == attempt && t.status == Some(TrialStatus::InfraError))
            .count() as u32)
    }

    fn new_record(&self, task: &Task, attempt: u32, try_number: u32) -> TrialRecord {
        let safe_name: String = task.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
        let trial_id = format!("{safe_name}__a{attempt}__t{try_number}");
        TrialRecord {
            dir: format!("trials/{trial_id}"),
            trial_id: format!("{}.{trial_id}", self.job_id),
            job_id: self.job_id.clone(),
            task_name: task.name.clone(),
            task_digest: task.digest.clone(),
            environment_digest: None,
            agent: self.agent.name().to_string(),
            attempt,
            try_number,
            status: None,
            reward: None,
            rewards: Default::default(),
            error: None,
            started_at: now(),
            finished_at: None,
            phases: Vec::new(),
        }
    }
}

/// A new job id: UTC time plus four hex digits of entropy, sortable and unique enough for
/// one jobs directory.
pub fn new_job_id() -> String {
    let now = chrono::Utc::now();
    let noise = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{noise:04x}", now.format("%Y%m%d-%H%M%S"))
}
