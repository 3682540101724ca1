//! Per-task and per-job figures from stored trials: what `run` prints at the end and
//! `show` prints later.
//!
//! Only each slot's *final* try counts. Infrastructure errors and interrupted trials are
//! listed apart and never averaged in as zeros; a verifier error is scored as reward 0
//! (see [`TrialStatus::VerifierError`] for why). *Errors* are the final tries whose status
//! [`TrialStatus::is_error`] (infrastructure and verifier errors): the one count behind the
//! table, the progress display and the exit code. A slot the job planned but never
//! started (it was killed first) is *not started*; tasks the job skipped are listed with
//! their reason.

use std::collections::{BTreeMap, BTreeSet};

use prodbench_store::{JobRecord, JobTask, Store, StoreError, TrialRecord, TrialStatus};
use serde::Serialize;

use crate::JobConfig;
use crate::trial::JUDGE_FAILED;

/// What a job set out to run: its tasks (run or skipped) and attempts per task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPlan {
    pub tasks: Vec<JobTask>,
    pub attempts: u32,
}

impl JobPlan {
    /// The plan recorded with `job` (its tasks and attempts); empty for jobs recorded
    /// before plans were.
    pub fn load(store: &Store, job: &JobRecord) -> Result<Self, StoreError> {
        let attempts = serde_json::from_value::<JobConfig>(job.config.clone()).map_or(0, |c| c.attempts);
        Ok(JobPlan { tasks: store.job_tasks(&job.job_id)?, attempts })
    }

    /// The planned (task, attempt) slots no try has started.
    pub fn not_started<'a>(&'a self, trials: &'a [TrialRecord]) -> impl Iterator<Item = (&'a str, u32)> + 'a {
        let started: BTreeSet<(&str, u32)> = trials.iter().map(|t| (t.task_name.as_str(), t.attempt)).collect();
        self.runnable().flat_map(move |name| (1..=self.attempts).map(move |a| (name, a))).filter(move |slot| !started.contains(slot))
    }

    /// Names of the tasks the job runs.
    pub fn runnable(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().filter(|t| t.skipped.is_none()).filter_map(|t| t.name.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskSummary {
    pub task: String,
    /// Final tries that count toward the mean reward.
    pub scored: usize,
    pub passed: usize,
    /// Mean reward over scored trials; `None` when none was scored.
    pub mean_reward: Option<f64>,
    /// Final tries per status.
    pub statuses: BTreeMap<TrialStatus, usize>,
    /// Final tries that are errors ([`TrialStatus::is_error`]).
    pub errors: usize,
    /// Attempts planned but never started.
    pub not_started: usize,
    /// Retried infrastructure failures (earlier tries), kept as evidence.
    pub retried: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobSummary {
    pub tasks: Vec<TaskSummary>,
    /// Final tries (one per started slot).
    pub trials: usize,
    pub scored: usize,
    pub passed: usize,
    pub mean_reward: Option<f64>,
    pub statuses: BTreeMap<TrialStatus, usize>,
    /// Final tries that are errors ([`TrialStatus::is_error`]).
    pub errors: usize,
    /// Slots that have not finished: started and stopped, or never started. Resume runs them.
    pub unfinished: usize,
    /// Slots planned but never started (included in `unfinished`).
    pub not_started: usize,
    /// Criteria left ungraded because the judge failed on them (final tries).
    pub judge_failures: usize,
    /// Tasks found at the job's path that it does not run, with the reason.
    pub skipped: Vec<JobTask>,
}

/// Summarises a job's trials against its plan (an empty plan: the trials alone).
pub fn summarize(trials: &[TrialRecord], plan: &JobPlan) -> JobSummary {
    let mut by_task: BTreeMap<&str, TaskSummary> = plan.runnable().map(|name| (name, TaskSummary { task: name.to_string(), ..Default::default() })).collect();
    let mut job = JobSummary { skipped: plan.tasks.iter().filter(|t| t.skipped.is_some()).cloned().collect(), ..Default::default() };
    for t in trials {
        by_task.entry(&t.task_name).or_insert_with(|| TaskSummary { task: t.task_name.clone(), ..Default::default() }).retried += 1;
    }
    let finals = prodbench_store::final_tries(trials);
    for t in &finals {
        let summary = by_task.get_mut(t.task_name.as_str()).expect("every trial's task has a row");
        summary.retried -= 1;
        count_final_try(summary, &mut job, t);
    }
    count_not_started(&mut by_task, &mut job, trials, plan);
    for summary in by_task.values_mut() {
        summary.mean_reward = mean_reward(finals.iter().filter(|t| t.task_name == summary.task));
    }
    job.tasks = by_task.into_values().collect();
    job.mean_reward = mean_reward(finals.iter());
    job
}

/// The mean of the trials' scored rewards; `None` when none is scored.
fn mean_reward<'a>(trials: impl Iterator<Item = &'a &'a TrialRecord>) -> Option<f64> {
    let (sum, scored) = trials.filter_map(|t| t.scored_reward()).fold((0.0, 0), |(sum, n), r| (sum + r, n + 1));
    (scored > 0).then(|| sum / scored as f64)
}

fn count_final_try(summary: &mut TaskSummary, job: &mut JobSummary, t: &TrialRecord) {
    job.trials += 1;
    match t.status {
        Some(status) => {
            *summary.statuses.entry(status).or_default() += 1;
            *job.statuses.entry(status).or_default() += 1;
            if status.is_error() {
                summary.errors += 1;
                job.errors += 1;
            }
            if status.is_retryable() {
                job.unfinished += 1;
            }
        }
        // Still running, or its process died before marking it.
        None => job.unfinished += 1,
    }
    if t.scored_reward().is_some() {
        summary.scored += 1;
        job.scored += 1;
    }
    if t.status == Some(TrialStatus::Passed) {
        summary.passed += 1;
        job.passed += 1;
    }
    job.judge_failures += t.grade.as_ref().map_or(0, judge_failures);
}

/// Counts the planned slots no try started.
fn count_not_started(by_task: &mut BTreeMap<&str, TaskSummary>, job: &mut JobSummary, trials: &[TrialRecord], plan: &JobPlan) {
    for (name, _) in plan.not_started(trials) {
        if let Some(summary) = by_task.get_mut(name) {
            summary.not_started += 1;
        }
        job.not_started += 1;
        job.unfinished += 1;
    }
}

fn judge_failures(grade: &prodbench_grade::score::TrialGrade) -> usize {
    grade.checks.iter().filter(|c| c.reason.as_deref().is_some_and(|r| r.starts_with(JUDGE_FAILED))).count()
}

#[cfg(test)]
mod tests {
    use prodbench_store::SkipReason;

    use super::*;

    fn trial(task: &str, attempt: u32, try_number: u32, status: TrialStatus, reward: Option<f64>) -> TrialRecord {
        let mut t = TrialRecord::starting("j", format!("{task}-{attempt}-{try_number}"), "d", task, "", "nop", attempt, try_number);
        (t.status, t.reward) = (Some(status), reward);
        t
    }

    fn planned(name: &str, skipped: Option<SkipReason>) -> JobTask {
        JobTask { dir: format!("/tasks/{name}"), name: Some(name.into()), skipped, diagnostics: vec![] }
    }

    #[test]
    fn infra_errors_are_not_averaged_in_verifier_errors_are_zeros_and_only_final_tries_count() {
        let trials = vec![
            trial("a", 1, 1, TrialStatus::InfraError, None),
            trial("a", 1, 2, TrialStatus::Passed, Some(1.0)),
            trial("a", 2, 1, TrialStatus::Failed, Some(0.0)),
            trial("b", 1, 1, TrialStatus::InfraError, None),
            trial("b", 2, 1, TrialStatus::VerifierError, None),
        ];
        let s = summarize(&trials, &JobPlan::default());
        assert_eq!(s.trials, 4);
        // The verifier error counts as a 0; the final infrastructure error not at all.
        assert_eq!(s.scored, 3);
        assert_eq!(s.mean_reward, Some(1.0 / 3.0));
        assert_eq!(s.errors, 2);
        assert_eq!((s.tasks[0].errors, s.tasks[1].errors), (0, 2));
        assert_eq!(s.tasks[0].retried, 1);
        assert_eq!(s.tasks[0].mean_reward, Some(0.5));
        assert_eq!(s.tasks[1].scored, 1);
        assert_eq!(s.tasks[1].mean_reward, Some(0.0));
        assert_eq!((s.unfinished, s.not_started), (1, 0), "b's final infra error is unfinished");
    }

    #[test]
    fn agent_failures_are_failures_not_errors() {
        let trials = [trial("a", 1, 1, TrialStatus::AgentError, None), trial("a", 2, 1, TrialStatus::AgentLimit, Some(0.0))];
        let s = summarize(&trials, &JobPlan::default());
        assert_eq!((s.errors, s.scored, s.passed), (0, 2, 0));
    }

    #[test]
    fn a_killed_job_counts_every_planned_attempt_and_the_tasks_it_skipped() {
        let plan = JobPlan { tasks: vec![planned("a", None), planned("b", None), planned("c", Some(SkipReason::Broken))], attempts: 2 };
        let mut running = trial("a", 2, 1, TrialStatus::Passed, None);
        running.status = None;
        let s = summarize(&[trial("a", 1, 1, TrialStatus::Passed, Some(1.0)), running], &plan);
        assert_eq!(s.tasks.iter().map(|t| (t.task.as_str(), t.not_started)).collect::<Vec<_>>(), [("a", 0), ("b", 2)]);
        assert_eq!((s.trials, s.not_started, s.unfinished), (2, 2, 3));
        assert_eq!(s.skipped, vec![planned("c", Some(SkipReason::Broken))]);
    }
}
