//! Per-task and per-job figures from stored trials: what `run` prints at the end and
//! `show` prints later.
//!
//! Only each slot's *final* try counts, and every number has the one definition the
//! report uses too: a trial's score, pass and outcome are [`TrialRecord::score`],
//! [`TrialRecord::passed`] and [`TrialRecord::outcome`]. Infrastructure errors and
//! interrupted trials are listed apart and never averaged in as zeros; a verifier error
//! scores 0 (see [`TrialStatus::VerifierError`] for why). *Errors* are the final tries whose status
//! [`TrialStatus::is_error`] (infrastructure and verifier errors): the one count behind the
//! table, the progress display and the exit code. A slot the job planned but never
//! started (it was killed first) is *not started*; tasks the job skipped are listed with
//! their reason.

use std::collections::{BTreeMap, BTreeSet};

use prodbench_store::{JobRecord, JobTask, Outcome, Store, StoreError, TrialRecord, TrialStatus};
use serde::Serialize;

use crate::JobConfig;

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
    /// Final tries, running ones included.
    pub trials: usize,
    /// Final tries that count toward the score.
    pub scored: usize,
    /// Scored trials that passed ([`TrialRecord::passed`]).
    pub passed: usize,
    /// Scored trials whose pass is unknown (a check they depend on was never judged).
    pub undecided: usize,
    /// Mean score (0-100) over scored trials; `None` when none was scored.
    pub score: Option<f64>,
    /// Final tries per outcome ([`TrialRecord::outcome`]: the status, but `passed` only for
    /// a decided pass, and `undecided`).
    pub statuses: BTreeMap<Outcome, usize>,
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
    pub undecided: usize,
    /// Mean score (0-100) over scored trials.
    pub score: Option<f64>,
    /// Final tries per outcome, as [`TaskSummary::statuses`].
    pub statuses: BTreeMap<Outcome, usize>,
    /// Final tries that are errors ([`TrialStatus::is_error`]).
    pub errors: usize,
    /// Slots that have not finished: running, interrupted, or never started. Resume runs
    /// them. (A final infrastructure error is counted among the errors instead.)
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
        summary.score = mean_score(finals.iter().filter(|t| t.task_name == summary.task));
    }
    job.tasks = by_task.into_values().collect();
    job.score = mean_score(finals.iter());
    job
}

/// The mean score (0-100) of the scored trials; `None` when none is scored.
fn mean_score<'a>(trials: impl Iterator<Item = &'a &'a TrialRecord>) -> Option<f64> {
    let (sum, scored) = trials.filter_map(|t| t.score()).fold((0.0, 0), |(sum, n), s| (sum + s, n + 1));
    (scored > 0).then(|| 100.0 * sum / scored as f64)
}

fn count_final_try(summary: &mut TaskSummary, job: &mut JobSummary, t: &TrialRecord) {
    summary.trials += 1;
    job.trials += 1;
    match t.status {
        Some(status) => {
            let outcome = t.outcome().unwrap_or(Outcome::from(status));
            *summary.statuses.entry(outcome).or_default() += 1;
            *job.statuses.entry(outcome).or_default() += 1;
            if status.is_error() {
                summary.errors += 1;
                job.errors += 1;
            }
            if status == TrialStatus::Interrupted {
                job.unfinished += 1;
            }
        }
        // Still running, or its process died before marking it.
        None => job.unfinished += 1,
    }
    if t.score().is_some() {
        summary.scored += 1;
        job.scored += 1;
        match t.passed() {
            Some(true) => (summary.passed, job.passed) = (summary.passed + 1, job.passed + 1),
            Some(false) => {}
            None => (summary.undecided, job.undecided) = (summary.undecided + 1, job.undecided + 1),
        }
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

fn judge_failures(grade: &prodbench_score::score::TrialGrade) -> usize {
    grade.checks.iter().filter(|c| c.judge_error.is_some()).count()
}

#[cfg(test)]
mod tests {
    use prodbench_store::SkipReason;

    use super::*;

    fn trial(task: &str, attempt: u32, try_number: u32, status: TrialStatus, reward: Option<f64>) -> TrialRecord {
        let mut t = TrialRecord::starting("j", task, attempt, try_number);
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
        assert_eq!(s.score, Some(100.0 / 3.0));
        assert_eq!(s.errors, 2);
        assert_eq!((s.tasks[0].errors, s.tasks[1].errors), (0, 2));
        assert_eq!(s.tasks[0].retried, 1);
        assert_eq!(s.tasks[0].score, Some(50.0));
        assert_eq!(s.tasks[1].scored, 1);
        assert_eq!(s.tasks[1].score, Some(0.0));
        assert_eq!((s.unfinished, s.not_started), (0, 0), "a final infrastructure error is an error, not unfinished");
    }

    #[test]
    fn the_summary_counts_passes_and_scores_as_the_report_does() {
        // test.sh wrote reward 1, but the per-test report failed 4 of 5: the grade decides.
        let grade = serde_json::json!({"checks": [], "components": [], "composite": 0.2, "complete": true, "pass": false, "resolve": false,
                                       "points": null, "forbidden_changes": [], "scratch_files": []});
        let mut ctrf = trial("a", 1, 1, TrialStatus::Passed, Some(1.0));
        ctrf.grade = Some(serde_json::from_value(grade).unwrap());
        let s = summarize(&[ctrf], &JobPlan::default());
        assert_eq!((s.passed, s.score, s.statuses.get(&Outcome::Failed)), (0, Some(20.0), Some(&1)));
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

    #[test]
    fn judge_failures_are_the_checks_with_a_judge_error() {
        let check = |name: &str, reason: Option<&str>, judge_error: Option<&str>| {
            serde_json::json!({"kind": "criterion", "name": name, "component": "feature", "weight": 1.0, "score": null, "passed": null,
                               "must_pass": false, "points": 1.0, "reason": reason, "judge_error": judge_error})
        };
        let grade = serde_json::json!({"checks": [check("failed", None, Some("judge model: 401")), check("timed-out", None, Some("judge model: timed out")),
                                                  check("unjudged", None, None),
                                                  check("quoting", Some("judge failed: is what the agent wrote"), None)],
                                       "components": [], "composite": null, "complete": false, "pass": null, "resolve": null, "points": null,
                                       "forbidden_changes": [], "scratch_files": []});
        let mut graded = trial("a", 1, 1, TrialStatus::Failed, Some(0.0));
        graded.grade = Some(serde_json::from_value(grade).unwrap());
        assert_eq!(summarize(&[graded], &JobPlan::default()).judge_failures, 2, "the typed errors, not a reason that reads like one");
    }
}
