//! Per-task and per-job figures from stored trials: what `run` prints at the end and
//! `show` prints later.
//!
//! Only each slot's *final* try counts. Infrastructure errors and interrupted trials are
//! listed apart and never averaged in as zeros; a verifier error is scored as reward 0
//! (see [`TrialStatus::VerifierError`] for why).

use std::collections::BTreeMap;

use prodbench_store::{TrialRecord, TrialStatus};
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskSummary {
    pub task: String,
    /// Final tries that count toward the mean reward.
    pub scored: usize,
    pub passed: usize,
    /// Mean reward over scored trials; `None` when none was scored.
    pub mean_reward: Option<f64>,
    /// Final tries per status.
    pub statuses: BTreeMap<String, usize>,
    /// Retried infrastructure failures (earlier tries), kept as evidence.
    pub retried: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobSummary {
    pub tasks: Vec<TaskSummary>,
    pub trials: usize,
    pub scored: usize,
    pub passed: usize,
    pub mean_reward: Option<f64>,
    pub statuses: BTreeMap<String, usize>,
    /// Slots that have not finished (the job was stopped): resume runs them.
    pub unfinished: usize,
    /// Criteria left ungraded because the judge failed on them (final tries).
    pub judge_failures: usize,
}

impl JobSummary {
    /// Final tries that ended in infrastructure or verifier errors.
    pub fn errors(&self) -> usize {
        ["infra_error", "verifier_error"].iter().map(|s| self.statuses.get(*s).copied().unwrap_or(0)).sum()
    }
}

/// Summarises a job's trials.
pub fn summarize(trials: &[TrialRecord]) -> JobSummary {
    let mut tries: BTreeMap<&str, usize> = BTreeMap::new();
    for t in trials {
        *tries.entry(&t.task_name).or_default() += 1;
    }
    let mut by_task: BTreeMap<&str, (TaskSummary, f64)> = BTreeMap::new();
    let mut job = JobSummary::default();
    let mut reward_sum = 0.0;
    for t in prodbench_store::final_tries(trials) {
        let (summary, sum) = by_task.entry(&t.task_name).or_insert_with(|| (TaskSummary { task: t.task_name.clone(), ..Default::default() }, 0.0));
        let status = t.status.map(TrialStatus::as_str).unwrap_or("running");
        *summary.statuses.entry(status.to_string()).or_default() += 1;
        *job.statuses.entry(status.to_string()).or_default() += 1;
        job.trials += 1;
        if matches!(t.status, None | Some(TrialStatus::Interrupted)) {
            job.unfinished += 1;
        }
        if let Some(reward) = t.scored_reward() {
            summary.scored += 1;
            *sum += reward;
            job.scored += 1;
            reward_sum += reward;
        }
        job.judge_failures += t.grade.as_ref().map_or(0, |g| g.checks.iter().filter(|c| c.judge_error.is_some()).count());
        if t.status == Some(TrialStatus::Passed) {
            summary.passed += 1;
            job.passed += 1;
        }
    }
    for (task, (mut summary, sum)) in by_task {
        summary.mean_reward = (summary.scored > 0).then(|| sum / summary.scored as f64);
        summary.retried = tries.get(task).copied().unwrap_or(0) - summary.statuses.values().sum::<usize>();
        job.tasks.push(summary);
    }
    job.mean_reward = (job.scored > 0).then(|| reward_sum / job.scored as f64);
    job
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(task: &str, attempt: u32, try_number: u32, status: TrialStatus, reward: Option<f64>) -> TrialRecord {
        TrialRecord {
            trial_id: format!("{task}-{attempt}-{try_number}"),
            job_id: "j".into(),
            task_name: task.into(),
            task_digest: String::new(),
            environment_digest: None,
            agent: "nop".into(),
            attempt,
            try_number,
            status: Some(status),
            reward,
            rewards: Default::default(),
            error: None,
            started_at: String::new(),
            finished_at: None,
            phases: vec![],
            dir: String::new(),
            grade: None,
            agent_limit: None,
        }
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
        let s = summarize(&trials);
        assert_eq!(s.trials, 4);
        // The verifier error counts as a 0; the final infrastructure error not at all.
        assert_eq!(s.scored, 3);
        assert_eq!(s.mean_reward, Some(1.0 / 3.0));
        assert_eq!(s.errors(), 2);
        assert_eq!(s.tasks[0].retried, 1);
        assert_eq!(s.tasks[0].mean_reward, Some(0.5));
        assert_eq!(s.tasks[1].scored, 1);
        assert_eq!(s.tasks[1].mean_reward, Some(0.0));
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
        assert_eq!(summarize(&[graded]).judge_failures, 2, "the typed errors, not a reason that reads like one");
    }
}
