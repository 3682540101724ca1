//! Aggregation from trials to leaderboard rows: one row per agent (and model), over every
//! job given, with intervals, pass@k and breakdowns.
//!
//! Which trials count: each (task, attempt)'s final try. What a trial counts as is defined
//! once, by [`TrialRecord::score`], [`TrialRecord::passed`], [`TrialRecord::resolved`] and
//! [`TrialRecord::outcome`] (the run summary can share them): infrastructure errors and
//! interrupted trials are never scored and are counted apart; a verifier error scores 0 and
//! neither passes nor resolves, whatever reward it kept (the agent's work could not be shown
//! to work), and is counted apart too.
//!
//! A trial's *score* is its grade's composite (the reward for tasks without a rubric), x100.
//! Its pass and resolve are its grade's, unknown when the grade could not decide them (an
//! ungraded criterion): an unknown is left out of the rate rather than guessed, and the trial
//! counts as `undecided`, not `passed`, wherever trials are counted by outcome.
//! The headline mean weights every task equally: per-task means, then their mean, which is
//! also what the t interval is over; the bootstrap resamples tasks with their attempts.
//! The t interval is clipped to the 0-100 a score can take (the bootstrap's never leaves it).

use std::collections::BTreeMap;

use prodbench_store::{Outcome, TrialRecord, TrialStatus};
use prodbench_trajectory::stats::TrialStats;
use serde::Serialize;

use crate::stats::{Interval, bootstrap_mean, pass_at_k, pass_hat_k, t_interval};

/// Bootstrap resamples for every interval in a report.
pub const RESAMPLES: usize = 10_000;
/// The seed of every bootstrap: the same jobs always give the same report.
pub const SEED: u64 = 0x005e_ed0f_bec4;
pub const LEVEL: f64 = 0.95;

/// One finished trial as the report sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredTrial {
    pub job_id: String,
    pub trial_id: String,
    pub task: String,
    pub attempt: u32,
    pub status: TrialStatus,
    /// What the trial counts as ([`TrialRecord::outcome`]): the status, except that only a
    /// trial that passed is `passed` and a scored one whose pass is unknown is `undecided`.
    pub outcome: Outcome,
    /// 0..=100; `None` for infrastructure errors.
    pub score: Option<f64>,
    pub pass: Option<bool>,
    pub resolve: Option<bool>,
    pub points: Option<f64>,
    /// Criteria without a verdict.
    pub ungraded: usize,
    pub dir: String,
}

impl ScoredTrial {
    /// `None` for a trial that has not finished.
    pub fn from_record(t: &TrialRecord) -> Option<ScoredTrial> {
        let grade = t.grade.as_ref();
        Some(ScoredTrial {
            job_id: t.job_id.clone(),
            trial_id: t.trial_id.clone(),
            task: t.task_name.clone(),
            attempt: t.attempt,
            status: t.status?,
            outcome: t.outcome()?,
            score: t.score().map(|s| s * 100.0),
            pass: t.passed(),
            resolve: t.resolved(),
            points: grade.and_then(|g| g.points).map(|p| p * 100.0),
            ungraded: grade.map_or(0, |g| g.checks.iter().filter(|c| c.score.is_none()).count()),
            dir: t.dir.clone(),
        })
    }

    /// A scored trial with an ungraded check: its score covers the graded checks only.
    pub fn is_incomplete(&self) -> bool {
        self.score.is_some() && self.ungraded > 0
    }
}

/// `count` of `of` trials, the trials whose outcome is known.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub count: usize,
    pub of: usize,
    pub rate: Option<f64>,
}

impl Rate {
    fn of(outcomes: impl Iterator<Item = Option<bool>>) -> Rate {
        let known: Vec<bool> = outcomes.flatten().collect();
        let count = known.iter().filter(|b| **b).count();
        Rate { count, of: known.len(), rate: (!known.is_empty()).then(|| count as f64 / known.len() as f64) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PassAtK {
    pub k: u32,
    pub pass_at_k: f64,
    pub pass_hat_k: f64,
    /// Tasks averaged over, the same for every k: every scored task with an attempt whose pass
    /// is known. k stops at the fewest such attempts any of them has.
    pub tasks: usize,
}

/// One leaderboard row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub agent: String,
    pub jobs: Vec<String>,
    pub tasks: usize,
    pub trials: usize,
    /// Mean score (0-100) over tasks, with the clustered bootstrap and the t interval (both
    /// need 2 tasks; the t interval is clipped to 0-100).
    pub score: Option<f64>,
    pub score_bootstrap: Option<Interval>,
    pub score_t: Option<Interval>,
    /// Scored trials that passed, of those whose pass is known (the `undecided` are left out).
    pub pass: Rate,
    pub resolve: Rate,
    pub mean_points: Option<f64>,
    /// k = 1 up to the fewest attempts (with a known pass) of any task.
    pub pass_at_k: Vec<PassAtK>,
    /// Final tries per outcome ([`ScoredTrial::outcome`]), infrastructure errors included
    /// (they are not scored): `passed` counts what [`Row::pass`] counts.
    pub statuses: BTreeMap<Outcome, usize>,
    /// Scored trials whose grade is incomplete ([`ScoredTrial::is_incomplete`]).
    pub ungraded_trials: usize,
    /// Per task: the mean score over its attempts.
    pub task_scores: BTreeMap<String, f64>,
    /// Mean cost, tokens and steps per trial, from the trials' trajectories.
    #[serde(flatten)]
    pub usage: Usage,
}

/// Means per trial of what the agent spent. A mean is left out unless every trial reported
/// it: a mean over the trials that happened to record a cost would flatter the row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub cost_usd: Option<f64>,
    pub tokens: Option<f64>,
    pub steps: Option<f64>,
}

impl Usage {
    pub fn over(trials: &[Option<&TrialStats>]) -> Usage {
        let mean = |field: fn(&TrialStats) -> Option<f64>| -> Option<f64> {
            let values: Option<Vec<f64>> = trials.iter().map(|t| t.and_then(field)).collect();
            values.filter(|v| !v.is_empty()).map(|v| v.iter().sum::<f64>() / v.len() as f64)
        };
        Usage {
            cost_usd: mean(|s| s.cost_usd),
            tokens: mean(|s| Some((s.prompt_tokens? + s.completion_tokens?) as f64)),
            steps: mean(|s| Some(s.steps as f64)),
        }
    }
}

/// Builds one row from an agent's trials (any number of jobs).
pub fn row(agent: &str, jobs: Vec<String>, trials: &[ScoredTrial]) -> Row {
    let mut by_task: BTreeMap<&str, Vec<&ScoredTrial>> = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    for t in trials {
        *statuses.entry(t.outcome).or_default() += 1;
        if t.score.is_some() {
            by_task.entry(&t.task).or_default().push(t);
        }
    }
    let clusters: Vec<Vec<f64>> = by_task.values().map(|ts| ts.iter().filter_map(|t| t.score).collect()).collect();
    let task_means: Vec<f64> = clusters.iter().map(|c| c.iter().sum::<f64>() / c.len() as f64).collect();
    let scored: Vec<&ScoredTrial> = by_task.values().flatten().copied().collect();
    let points: Vec<f64> = scored.iter().filter_map(|t| t.points).collect();
    Row {
        agent: agent.to_string(),
        jobs,
        tasks: by_task.len(),
        trials: scored.len(),
        score: (!task_means.is_empty()).then(|| task_means.iter().sum::<f64>() / task_means.len() as f64),
        score_bootstrap: bootstrap_task_means(&clusters),
        score_t: t_interval(&task_means, LEVEL).map(|i| i.clipped(0.0, 100.0)),
        pass: Rate::of(scored.iter().map(|t| t.pass)),
        resolve: Rate::of(scored.iter().map(|t| t.resolve)),
        mean_points: (!points.is_empty()).then(|| points.iter().sum::<f64>() / points.len() as f64),
        pass_at_k: pass_at_ks(&by_task),
        statuses,
        ungraded_trials: scored.iter().filter(|t| t.is_incomplete()).count(),
        task_scores: by_task.keys().zip(&task_means).map(|(task, mean)| (task.to_string(), *mean)).collect(),
        usage: Usage::default(),
    }
}

/// The largest k whose pass@k every row has, to compare rows at one k; rows without any (no
/// scored task) are left out. `None` when no row has one.
pub fn common_k(rows: &[Row]) -> Option<u32> {
    rows.iter().filter_map(|r| r.pass_at_k.last().map(|p| p.k)).min()
}

/// The bootstrap of the mean of per-task means: each task's attempts are first averaged so
/// every task weighs the same, matching the headline score.
fn bootstrap_task_means(clusters: &[Vec<f64>]) -> Option<Interval> {
    let means: Vec<Vec<f64>> = clusters.iter().map(|c| vec![c.iter().sum::<f64>() / c.len() as f64]).collect();
    bootstrap_mean(&means, RESAMPLES, SEED, LEVEL)
}

/// pass@k and pass^k for k = 1 up to the fewest attempts of any task, each averaged over
/// every task. Going further would average each k over the tasks that happen to have k
/// attempts, and a task with fewer (its other attempts were infrastructure errors) would
/// silently drop out of the larger k. As in the pass rate, only attempts whose pass is known
/// count, and a task with none is left out.
fn pass_at_ks(by_task: &BTreeMap<&str, Vec<&ScoredTrial>>) -> Vec<PassAtK> {
    let counts: Vec<(u32, u32)> = by_task
        .values()
        .map(|ts| {
            let known: Vec<bool> = ts.iter().filter_map(|t| t.pass).collect();
            (known.len() as u32, known.iter().filter(|p| **p).count() as u32)
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    let max_k = counts.iter().map(|(n, _)| *n).min().unwrap_or(0);
    (1..=max_k)
        .map(|k| {
            let mean = |f: fn(u32, u32, u32) -> Option<f64>| counts.iter().filter_map(|(n, c)| f(*n, *c, k)).sum::<f64>() / counts.len() as f64;
            PassAtK { k, pass_at_k: mean(pass_at_k), pass_hat_k: mean(pass_hat_k), tasks: counts.len() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use prodbench_score::score::{Check, CheckKind, TrialGrade};
    use prodbench_task::rubric::Component;

    use super::*;

    fn trial(task: &str, attempt: u32, status: TrialStatus, score: Option<f64>) -> ScoredTrial {
        ScoredTrial {
            job_id: "j".into(),
            trial_id: format!("{task}-{attempt}"),
            task: task.into(),
            attempt,
            status,
            outcome: Outcome::from(status),
            score,
            pass: score.map(|s| s >= 100.0),
            resolve: score.map(|s| s >= 100.0),
            points: None,
            ungraded: 0,
            dir: String::new(),
        }
    }

    fn record(status: TrialStatus, reward: Option<f64>, grade: Option<TrialGrade>) -> TrialRecord {
        let mut record = TrialRecord::starting("j", "task", 1, 1).with_ids("t".into(), "t").task_digest("digest").agent("agent");
        (record.status, record.reward, record.grade) = (Some(status), reward, grade);
        record
    }

    /// A grade whose one criterion went unjudged: pass and resolve are unknown.
    fn undecided_grade(composite: f64) -> TrialGrade {
        let unjudged = Check {
            kind: CheckKind::Criterion,
            name: "c".into(),
            component: Component::Feature,
            weight: 1.0,
            score: None,
            passed: None,
            must_pass: true,
            points: None,
            reason: None,
            votes_met: None,
            samples: None,
            minority_reason: None,
            claim: None,
            judge: None,
            judge_error: None,
        };
        TrialGrade {
            checks: vec![unjudged],
            components: vec![],
            composite: Some(composite),
            complete: false,
            pass: None,
            resolve: None,
            points: None,
            forbidden_changes: vec![],
            scratch_files: vec![],
        }
    }

    fn outcome(t: &ScoredTrial) -> (Option<f64>, Option<bool>, Option<bool>) {
        (t.score, t.pass, t.resolve)
    }

    #[test]
    fn a_verifier_error_is_a_failure_whatever_reward_it_kept() {
        // Grading failed after the tests wrote reward 1: the trial still scores 0.
        let trial = ScoredTrial::from_record(&record(TrialStatus::VerifierError, Some(1.0), None)).unwrap();
        assert_eq!(outcome(&trial), (Some(0.0), Some(false), Some(false)));
        let passed = ScoredTrial::from_record(&record(TrialStatus::Passed, Some(1.0), None)).unwrap();
        assert_eq!(outcome(&passed), (Some(100.0), Some(true), Some(true)));
        let infra = ScoredTrial::from_record(&record(TrialStatus::InfraError, Some(1.0), None)).unwrap();
        assert_eq!(outcome(&infra), (None, None, None));
    }

    #[test]
    fn an_unknown_pass_stays_unknown() {
        // The tests passed (status passed) but a must-pass criterion went unjudged.
        let undecided = ScoredTrial::from_record(&record(TrialStatus::Passed, Some(1.0), Some(undecided_grade(0.75)))).unwrap();
        assert_eq!(outcome(&undecided), (Some(75.0), None, None));
        assert_eq!(undecided.ungraded, 1);
        let failed = trial("task", 2, TrialStatus::Failed, Some(0.0));
        let row = row("agent", vec!["j".into()], &[undecided, failed]);
        // Left out of the rates, counted as ungraded: 0 of 1 known, not 1 of 2.
        assert_eq!((row.pass.count, row.pass.of, row.pass.rate), (0, 1, Some(0.0)));
        assert_eq!((row.resolve.count, row.resolve.of), (0, 1));
        assert_eq!(row.ungraded_trials, 1);
        // pass@1 over the one known attempt, 0 of 1, not over both.
        let pass_at_1: Vec<(u32, f64, usize)> = row.pass_at_k.iter().map(|p| (p.k, p.pass_at_k, p.tasks)).collect();
        assert_eq!(pass_at_1, [(1, 0.0, 1)]);
    }

    #[test]
    fn the_outcomes_count_passes_as_the_pass_rate_does() {
        // The status read `passed` from the reward, but a must-pass criterion went unjudged.
        let undecided = ScoredTrial::from_record(&record(TrialStatus::Passed, Some(1.0), Some(undecided_grade(1.0)))).unwrap();
        let passed = ScoredTrial::from_record(&record(TrialStatus::Passed, Some(1.0), None)).unwrap();
        let row = row("agent", vec![], &[undecided, passed]);
        assert_eq!((row.pass.count, row.pass.of), (1, 1));
        let outcomes: Vec<(Outcome, usize)> = row.statuses.iter().map(|(outcome, n)| (*outcome, *n)).collect();
        assert_eq!(outcomes, [(Outcome::Passed, 1), (Outcome::Undecided, 1)], "not 2 passed");
        assert_eq!(row.ungraded_trials, 1);
    }

    #[test]
    fn a_task_without_a_known_pass_is_left_out_of_pass_at_k() {
        let mut unknown = trial("u", 1, TrialStatus::Passed, Some(100.0));
        unknown.pass = None;
        let known = trial("k", 1, TrialStatus::Passed, Some(100.0));
        let pass_at_ks =
            |trials: &[ScoredTrial]| -> Vec<(u32, f64, usize)> { row("agent", vec![], trials).pass_at_k.iter().map(|p| (p.k, p.pass_at_k, p.tasks)).collect() };
        assert_eq!(pass_at_ks(&[unknown.clone(), known]), [(1, 1.0, 1)], "task u neither passes nor fails");
        assert!(pass_at_ks(&[unknown]).is_empty());
    }

    #[test]
    fn a_row_by_hand() {
        use TrialStatus::*;
        // task a: 100, 0, 100 -> mean 66.67, c=2 of n=3; task b: 0, 0 -> 0, c=0 of 2;
        // task c: 100 -> 100, c=1 of 1. Infra errors are listed, not scored.
        let trials = vec![
            trial("a", 1, Passed, Some(100.0)),
            trial("a", 2, Failed, Some(0.0)),
            trial("a", 3, Passed, Some(100.0)),
            trial("b", 1, Failed, Some(0.0)),
            trial("b", 2, Failed, Some(0.0)),
            trial("c", 1, Passed, Some(100.0)),
            trial("d", 1, InfraError, None),
        ];
        let row = row("oracle", vec!["j".into()], &trials);
        assert_eq!((row.tasks, row.trials), (3, 6));
        // (66.667 + 0 + 100) / 3 = 55.556
        assert!((row.score.unwrap() - 500.0 / 9.0).abs() < 1e-9);
        assert_eq!((row.pass.count, row.pass.of), (3, 6));
        assert_eq!(row.statuses[&Outcome::InfraError], 1);
        // Task c has one attempt, so only k = 1, over all three tasks: mean(2/3, 0, 1) = 5/9.
        assert_eq!(row.pass_at_k.len(), 1);
        assert_eq!(row.pass_at_k[0].tasks, 3);
        assert!((row.pass_at_k[0].pass_at_k - 5.0 / 9.0).abs() < 1e-9);
        assert!((row.pass_at_k[0].pass_hat_k - 5.0 / 9.0).abs() < 1e-9);
        // t: 55.556 ± 4.302653 · 50.9175 / sqrt(3) = [-70.93, 182.04] (see stats), clipped to 0-100.
        let t = row.score_t.unwrap();
        assert_eq!((t.low, t.high), (0.0, 100.0));
        // Bootstrap: a resample of three 0s has probability 1/27 = 3.7% > 2.5% (three 100s too),
        // so both quantiles sit on the extremes.
        let boot = row.score_bootstrap.unwrap();
        assert_eq!((boot.low, boot.high), (0.0, 100.0));
    }

    #[test]
    fn intervals_of_five_uneven_tasks() {
        use TrialStatus::*;
        let scores: [(&str, &[f64]); 5] = [("a", &[100.0, 0.0, 60.0]), ("b", &[0.0, 25.0]), ("c", &[100.0]), ("d", &[80.0, 40.0]), ("e", &[10.0])];
        let trials: Vec<ScoredTrial> = scores
            .iter()
            .flat_map(|(task, scores)| scores.iter().zip(1..).map(|(s, attempt)| trial(task, attempt, if *s >= 100.0 { Passed } else { Failed }, Some(*s))))
            .collect();
        let row = row("agent", vec!["j".into()], &trials);
        // Task means 53.333, 12.5, 100, 60, 10: mean 235.833 / 5 = 47.1667.
        assert!((row.score.unwrap() - 283.0 / 6.0).abs() < 1e-9);
        // Deviations 6.167, -34.667, 52.833, 12.833, -37.167; squares sum 5577.222; s² = 1394.306,
        // s = 37.3404; s/sqrt(5) = 16.6991; half-width = 2.776445 · 16.6991 = 46.3642.
        let t = row.score_t.unwrap();
        assert!((t.low - 0.802435).abs() < 1e-5 && (t.high - 93.530898).abs() < 1e-5, "{t:?}");
        // With SEED and 10,000 resamples (confirmed by an independent copy of the generator).
        let boot = row.score_bootstrap.unwrap();
        assert!((boot.low - 20.0).abs() < 1e-9 && (boot.high - 74.666667).abs() < 1e-6, "{boot:?}");
    }

    #[test]
    fn pass_at_k_stops_at_the_fewest_attempts() {
        use TrialStatus::*;
        // a: P F P (n=3, c=2); b: F F F (n=3, c=0); c: P P P F (n=4, c=3). k stops at 3.
        let outcomes: [(&str, &[bool]); 3] = [("a", &[true, false, true]), ("b", &[false; 3]), ("c", &[true, true, true, false])];
        let trials: Vec<ScoredTrial> = outcomes
            .iter()
            .flat_map(|(task, passes)| {
                passes.iter().zip(1..).map(|(p, attempt)| trial(task, attempt, if *p { Passed } else { Failed }, Some(if *p { 100.0 } else { 0.0 })))
            })
            .collect();
        let row = row("agent", vec!["j".into()], &trials);
        let got: Vec<(u32, f64, f64, usize)> = row.pass_at_k.iter().map(|p| (p.k, p.pass_at_k, p.pass_hat_k, p.tasks)).collect();
        // k=1: pass@1 = pass^1 = mean(2/3, 0, 3/4) = 17/36.
        // k=2: pass@2: a 1 - C(1,2)/C(3,2) = 1, b 0, c 1 (one failure) -> 2/3;
        //      pass^2: a C(2,2)/C(3,2) = 1/3, b 0, c C(3,2)/C(4,2) = 1/2 -> 5/18.
        // k=3: pass@3: a 1, b 0, c 1 -> 2/3; pass^3: a 0, b 0, c C(3,3)/C(4,3) = 1/4 -> 1/12.
        let expected = [(1, 17.0 / 36.0, 17.0 / 36.0), (2, 2.0 / 3.0, 5.0 / 18.0), (3, 2.0 / 3.0, 1.0 / 12.0)];
        assert_eq!(got.len(), expected.len());
        for ((k, at, hat, tasks), (want_k, want_at, want_hat)) in got.into_iter().zip(expected) {
            assert_eq!((k, tasks), (want_k, 3));
            assert!((at - want_at).abs() < 1e-12 && (hat - want_hat).abs() < 1e-12, "k={k}: {at} {hat}");
        }
    }

    #[test]
    fn rows_are_compared_at_the_largest_k_they_all_have() {
        use TrialStatus::*;
        let attempts = |n: u32| -> Vec<ScoredTrial> { (1..=n).map(|a| trial("a", a, Passed, Some(100.0))).collect() };
        let rows = [row("three", vec![], &attempts(3)), row("two", vec![], &attempts(2)), row("none", vec![], &[])];
        assert_eq!(common_k(&rows), Some(2), "the row without scored tasks has no say");
        assert_eq!(common_k(&rows[2..]), None);
    }

    #[test]
    fn usage_means_need_every_trial_to_report() {
        let costed = |cost: Option<f64>| TrialStats { steps: 4, prompt_tokens: Some(100), completion_tokens: Some(10), cost_usd: cost, ..Default::default() };
        let (a, b) = (costed(Some(0.5)), costed(Some(1.5)));
        let usage = Usage::over(&[Some(&a), Some(&b)]);
        assert_eq!((usage.cost_usd, usage.tokens, usage.steps), (Some(1.0), Some(110.0), Some(4.0)));
        let unpriced = costed(None);
        assert_eq!(Usage::over(&[Some(&a), Some(&unpriced)]).cost_usd, None, "a partial mean would flatter the row");
        assert_eq!(Usage::over(&[Some(&a), None]).steps, None, "a trial without a trajectory");
        assert_eq!(Usage::over(&[]).steps, None);
    }
}
