//! One trial's grade: every check (test, reward key, rubric criterion) with its component,
//! then component scores, the composite, pass/fail, resolve and points.
//!
//! - A *component score* is the weighted mean of its checks' scores (a test or criterion
//!   scores 1 or 0; a reward key its value, clamped to [0, 1]).
//! - The *composite* is the weighted mean of the component scores, over the components that
//!   have checks (a task without a rubric: composite = reward).
//! - *Pass* means there is at least one feature or operational check and every one passed
//!   (engineering excluded), and no tracked file changed in a `forbid_code_changes` task.
//!   A test report that counts no test (all skipped, or none collected) is no evidence of
//!   anything: the reward decides instead, as if there were no report.
//! - *Resolve* means every must-pass criterion is met; a rubric without must-pass criteria
//!   needs every criterion, and a task without criteria resolves when it passes.
//! - *Points* are the signed rubric sum (a criterion without points counts its weight; a
//!   triggered penalty its negative points; each scratch file left in a
//!   `forbid_code_changes` task its penalty), divided by the positive total, clamped to [0, 1].
//!
//! A criterion with no verdict (no judge configured, or the judge failed) is *ungraded*. It
//! is never counted as met or unmet: scores are computed over the graded checks and marked
//! incomplete, and a pass, resolve or points value that depends on it is `None` (unknown)
//! unless a graded check already decides it. When the judge failed on it, its check's
//! `judge_error` says why (its `reason` stays the judge's, so none).

use std::collections::BTreeMap;

use prodbench_task::rubric::{Component, ComponentWeights, Rubric};
use serde::{Deserialize, Serialize};

use crate::evidence::WorkspaceChanges;
use crate::reward::Rewards;
use crate::test_report::TestOutcome;
use crate::verdict::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Test,
    Reward,
    Criterion,
}

/// One thing that counts toward a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub kind: CheckKind,
    pub name: String,
    /// What the criterion claims (criteria only).
    #[serde(default)]
    pub claim: Option<String>,
    pub component: Component,
    /// Weight within the component (0 for penalties, which count only in points).
    pub weight: f64,
    /// In [0, 1]; `None` when ungraded.
    pub score: Option<f64>,
    /// Whether the outcome is good (for a penalty: its claim is false); `None` when ungraded.
    pub passed: Option<bool>,
    pub must_pass: bool,
    /// Signed points (criteria only).
    pub points: Option<f64>,
    /// The judge's reason (criteria only).
    pub reason: Option<String>,
    /// With a majority vote: samples that said "met", of `samples` (the disagreement).
    #[serde(default)]
    pub votes_met: Option<u32>,
    #[serde(default)]
    pub samples: Option<u32>,
    /// With a split vote: a reason the losing side gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minority_reason: Option<String>,
    /// The judge model that decided (criteria only).
    #[serde(default)]
    pub judge: Option<String>,
    /// Why the judge gave no verdict, for a criterion left ungraded because it failed
    /// (absent from grades written before it was recorded here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentScore {
    pub component: Component,
    pub weight: f64,
    /// Weighted mean over graded checks; `None` when no check is graded.
    pub score: Option<f64>,
    pub checks: usize,
    pub ungraded: usize,
}

/// Everything graded about one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialGrade {
    pub checks: Vec<Check>,
    pub components: Vec<ComponentScore>,
    pub composite: Option<f64>,
    /// False when some check is ungraded: the scores cover the graded checks only.
    pub complete: bool,
    pub pass: Option<bool>,
    pub resolve: Option<bool>,
    pub points: Option<f64>,
    /// Files the workspace started with that the agent changed or deleted, in a
    /// `forbid_code_changes` task.
    pub forbidden_changes: Vec<String>,
    /// Files the agent left behind in a `forbid_code_changes` task.
    pub scratch_files: Vec<String>,
}

/// What a grade is computed from.
pub struct GradeInputs<'a> {
    pub rubric: &'a Rubric,
    pub weights: ComponentWeights,
    pub rewards: Option<&'a Rewards>,
    pub tests: Option<&'a [TestOutcome]>,
    /// By criterion id; a criterion without one is ungraded.
    pub verdicts: &'a BTreeMap<String, Verdict>,
    /// By criterion id: why the judge gave no verdict on it.
    pub judge_failures: &'a BTreeMap<String, String>,
    pub workspace: Option<&'a WorkspaceChanges>,
}

/// No verdicts, no judge failures: what [`GradeInputs::new`] starts from.
static NO_VERDICTS: BTreeMap<String, Verdict> = BTreeMap::new();
static NO_JUDGE_FAILURES: BTreeMap<String, String> = BTreeMap::new();

impl<'a> GradeInputs<'a> {
    /// Grading by `rubric` alone: default weights, no rewards, tests, verdicts or workspace
    /// changes yet (set the rest with struct update syntax).
    pub fn new(rubric: &'a Rubric) -> Self {
        GradeInputs {
            rubric,
            weights: ComponentWeights::default(),
            rewards: None,
            tests: None,
            verdicts: &NO_VERDICTS,
            judge_failures: &NO_JUDGE_FAILURES,
            workspace: None,
        }
    }
}

pub fn grade(inputs: &GradeInputs) -> TrialGrade {
    let mut checks = behavioural_checks(inputs);
    checks.extend(criterion_checks(inputs));
    let (forbidden_changes, scratch_files) = code_changes(inputs);
    let components = component_scores(&checks, &inputs.weights);
    TrialGrade {
        composite: composite(&components),
        complete: checks.iter().all(|c| c.score.is_some()),
        pass: pass(&checks, &forbidden_changes),
        resolve: resolve(&checks, &forbidden_changes),
        points: points(&checks, scratch_files.len(), inputs.rubric.scratch_file_points),
        checks,
        components,
        forbidden_changes,
        scratch_files,
    }
}

/// Per-test checks when the tests wrote a report that counts some test; else per mapped
/// reward key; else the reward as one check.
impl Check {
    /// A test or reward check of weight 1 with `score` (`None`: ungraded), passed at 1.
    pub fn scored(kind: CheckKind, name: &str, component: Component, score: Option<f64>) -> Check {
        Check {
            kind,
            name: name.to_string(),
            claim: None,
            component,
            weight: 1.0,
            score,
            passed: score.map(|s| s >= 1.0),
            must_pass: false,
            points: None,
            reason: None,
            votes_met: None,
            samples: None,
            minority_reason: None,
            judge: None,
            judge_error: None,
        }
    }
}

fn behavioural_checks(inputs: &GradeInputs) -> Vec<Check> {
    let rubric = inputs.rubric;
    let check = |kind, name: &str, component, score: f64| Check::scored(kind, name, component, Some(score));
    if let Some(tests) = inputs.tests.filter(|t| !t.is_empty()) {
        return tests.iter().map(|t| check(CheckKind::Test, &t.name, rubric.component_of_test(&t.name), if t.passed { 1.0 } else { 0.0 })).collect();
    }
    let Some(rewards) = inputs.rewards else { return Vec::new() };
    if rubric.reward_keys.is_empty() {
        return vec![check(CheckKind::Reward, "reward", rubric.tests_component, rewards.reward.clamp(0.0, 1.0))];
    }
    rubric
        .reward_keys
        .iter()
        // A mapped key the tests did not write scores 0: the check was promised and is absent.
        .map(|(key, &component)| check(CheckKind::Reward, key, component, rewards.values.get(key).copied().unwrap_or(0.0).clamp(0.0, 1.0)))
        .collect()
}

fn criterion_checks(inputs: &GradeInputs) -> Vec<Check> {
    inputs
        .rubric
        .criteria
        .iter()
        .map(|criterion| {
            let verdict = inputs.verdicts.get(&criterion.id);
            let passed = verdict.map(|v| criterion.passes(v.met));
            Check {
                kind: CheckKind::Criterion,
                name: criterion.id.clone(),
                claim: Some(criterion.claim.clone()),
                component: criterion.component,
                weight: criterion.weight,
                score: passed.map(|p| if p { 1.0 } else { 0.0 }),
                passed,
                must_pass: criterion.must_pass,
                points: Some(criterion.points.unwrap_or(criterion.weight)),
                reason: verdict.map(|v| v.reason.clone()),
                votes_met: verdict.map(|v| v.votes_met),
                samples: verdict.map(|v| v.samples),
                minority_reason: verdict.and_then(|v| v.minority_reason.clone()),
                judge: verdict.map(|v| v.judge.clone()),
                judge_error: if verdict.is_none() { inputs.judge_failures.get(&criterion.id).cloned() } else { None },
            }
        })
        .collect()
}

fn code_changes(inputs: &GradeInputs) -> (Vec<String>, Vec<String>) {
    match inputs.workspace {
        Some(changes) if inputs.rubric.forbid_code_changes => {
            let mut forbidden: Vec<String> = changes.modified.iter().chain(&changes.deleted).cloned().collect();
            forbidden.sort();
            (forbidden, changes.added.clone())
        }
        _ => (Vec::new(), Vec::new()),
    }
}

fn component_scores(checks: &[Check], weights: &ComponentWeights) -> Vec<ComponentScore> {
    Component::ALL
        .into_iter()
        .filter_map(|component| {
            let mine: Vec<&Check> = checks.iter().filter(|c| c.component == component && c.weight > 0.0).collect();
            if mine.is_empty() {
                return None;
            }
            let graded: Vec<(f64, f64)> = mine.iter().filter_map(|c| c.score.map(|s| (c.weight, s))).collect();
            let total: f64 = graded.iter().map(|(w, _)| w).sum();
            let score = (total > 0.0).then(|| graded.iter().map(|(w, s)| w * s).sum::<f64>() / total);
            Some(ComponentScore { component, weight: weights.of(component), score, checks: mine.len(), ungraded: mine.len() - graded.len() })
        })
        .collect()
}

fn composite(components: &[ComponentScore]) -> Option<f64> {
    let scored: Vec<(f64, f64)> = components.iter().filter_map(|c| c.score.map(|s| (c.weight, s))).collect();
    let total: f64 = scored.iter().map(|(w, _)| w).sum();
    (total > 0.0).then(|| scored.iter().map(|(w, s)| w * s).sum::<f64>() / total)
}

/// All of `outcomes` good: `Some(false)` as soon as one is known bad, `None` if some are
/// unknown and none bad.
fn all_good(outcomes: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for outcome in outcomes {
        match outcome {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

fn pass(checks: &[Check], forbidden_changes: &[String]) -> Option<bool> {
    if !forbidden_changes.is_empty() {
        return Some(false);
    }
    let behaviour: Vec<&Check> = checks.iter().filter(|c| c.component != Component::Engineering).collect();
    if behaviour.is_empty() {
        return Some(false);
    }
    all_good(behaviour.iter().map(|c| c.passed))
}

fn resolve(checks: &[Check], forbidden_changes: &[String]) -> Option<bool> {
    let criteria: Vec<&Check> = checks.iter().filter(|c| c.kind == CheckKind::Criterion).collect();
    if criteria.is_empty() {
        return pass(checks, forbidden_changes);
    }
    if !forbidden_changes.is_empty() {
        return Some(false);
    }
    let must: Vec<&&Check> = criteria.iter().filter(|c| c.must_pass).collect();
    if must.is_empty() { all_good(criteria.iter().map(|c| c.passed)) } else { all_good(must.iter().map(|c| c.passed)) }
}

fn points(checks: &[Check], scratch_files: usize, scratch_file_points: f64) -> Option<f64> {
    let criteria: Vec<&Check> = checks.iter().filter(|c| c.kind == CheckKind::Criterion).collect();
    let positive_total: f64 = criteria.iter().filter_map(|c| c.points).filter(|p| *p > 0.0).sum();
    if positive_total <= 0.0 || criteria.iter().any(|c| c.passed.is_none()) {
        return None;
    }
    let earned: f64 = criteria
        .iter()
        .map(|c| match (c.points, c.passed) {
            (Some(p), Some(true)) if p > 0.0 => p,
            (Some(p), Some(false)) if p < 0.0 => p,
            _ => 0.0,
        })
        .sum::<f64>()
        + scratch_files as f64 * scratch_file_points;
    Some((earned / positive_total).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn rubric(text: &str) -> Rubric {
        let (rubric, diagnostics) = prodbench_task::rubric::parse(Path::new("rubric.toml"), text);
        rubric.unwrap_or_else(|| panic!("{diagnostics:?}"))
    }

    fn verdict(met: bool) -> Verdict {
        Verdict { met, reason: "because".into(), votes_met: met as u32, samples: 1, judge: "j".into(), minority_reason: None, sample_errors: Vec::new() }
    }

    fn tests(results: &[(&str, bool)]) -> Vec<TestOutcome> {
        results.iter().map(|(n, p)| TestOutcome { name: n.to_string(), passed: *p, message: None }).collect()
    }

    const RUBRIC: &str = r#"
[[tests.map]]
pattern = "test_health*"
component = "operational"

[[criteria]]
id = "drains"
claim = "drains on SIGTERM"
component = "operational"
points = 3
must_pass = true

[[criteria]]
id = "readable"
claim = "the change is readable"
component = "engineering"
points = 2

[[criteria]]
id = "false-claim"
claim = "claims completion while outputs are missing"
component = "feature"
points = -5
"#;

    #[test]
    fn composite_pass_resolve_and_points_by_hand() {
        let rubric = rubric(RUBRIC);
        let tests = tests(&[("test_add", true), ("test_sub", false), ("test_health_ok", true)]);
        let verdicts = BTreeMap::from([("drains".into(), verdict(true)), ("readable".into(), verdict(false)), ("false-claim".into(), verdict(false))]);
        let grade = grade(&GradeInputs { tests: Some(&tests), verdicts: &verdicts, ..GradeInputs::new(&rubric) });
        // feature: test_add 1, test_sub 0 (the penalty has weight 0) -> 0.5
        // operational: test_health_ok 1 (w 1), drains 1 (w 3) -> 1.0
        // engineering: readable 0 -> 0.0
        // composite: (0.6*0.5 + 0.3*1.0 + 0.1*0.0) / 1.0 = 0.6
        let scores: Vec<Option<f64>> = grade.components.iter().map(|c| c.score).collect();
        assert_eq!(scores, vec![Some(0.5), Some(1.0), Some(0.0)]);
        assert!((grade.composite.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(grade.pass, Some(false), "test_sub failed");
        assert_eq!(grade.resolve, Some(true), "the one must-pass criterion is met");
        // points: drains +3, readable unmet 0, penalty not triggered 0 -> 3 / (3 + 2) = 0.6
        assert!((grade.points.unwrap() - 0.6).abs() < 1e-12);
        assert!(grade.complete);
        let drains = grade.checks.iter().find(|c| c.name == "drains").unwrap();
        assert_eq!((drains.votes_met, drains.samples, drains.reason.as_deref()), (Some(1), Some(1), Some("because")), "the verdict's vote is kept");
        assert_eq!((drains.claim.as_deref(), drains.judge.as_deref()), (Some("drains on SIGTERM"), Some("j")), "the claim and the judge are kept");
    }

    #[test]
    fn a_grade_written_before_claims_and_judges_were_kept_still_loads() {
        let old = r#"{"kind": "criterion", "name": "drains", "component": "operational", "weight": 3.0, "score": 1.0, "passed": true,
                      "must_pass": true, "points": 3.0, "reason": "because"}"#;
        let check: Check = serde_json::from_str(old).expect("an old check loads");
        assert_eq!((check.claim, check.judge, check.votes_met, check.judge_error), (None, None, None, None));
    }

    #[test]
    fn a_grade_written_before_judge_errors_were_typed_still_loads() {
        let old = r#"{"checks": [{"kind": "criterion", "name": "drains", "claim": "drains on SIGTERM", "component": "operational", "weight": 3.0,
                       "score": null, "passed": null, "must_pass": true, "points": 3.0, "reason": "judge failed: judge model: 401", "judge": null}],
                      "components": [], "composite": null, "complete": false, "pass": null, "resolve": null, "points": null,
                      "forbidden_changes": [], "scratch_files": []}"#;
        let grade: TrialGrade = serde_json::from_str(old).expect("an old grade loads");
        assert_eq!((grade.checks[0].judge_error.as_deref(), grade.checks[0].reason.as_deref()), (None, Some("judge failed: judge model: 401")));
    }

    #[test]
    fn a_judge_failure_is_recorded_on_its_ungraded_criterion_only() {
        let rubric = rubric(RUBRIC);
        let verdicts = BTreeMap::from([("drains".into(), verdict(true))]);
        let failures = BTreeMap::from([("readable".to_string(), "judge model: 401".to_string()), ("drains".to_string(), "a lost sample".to_string())]);
        let grade = grade(&GradeInputs { verdicts: &verdicts, judge_failures: &failures, ..GradeInputs::new(&rubric) });
        let error_of = |name: &str| grade.checks.iter().find(|c| c.name == name).unwrap().judge_error.clone();
        assert_eq!(error_of("readable").as_deref(), Some("judge model: 401"));
        assert_eq!((error_of("drains"), error_of("false-claim")), (None, None), "a verdict, or no failure, is no judge error");
        let readable = grade.checks.iter().find(|c| c.name == "readable").unwrap();
        assert_eq!((readable.score, readable.reason.as_deref()), (None, None), "ungraded, and the error is not a reason");
        let json = serde_json::to_value(&grade).unwrap();
        assert_eq!(json["checks"][1]["judge_error"], "judge model: 401");
        assert!(json["checks"][0].get("judge_error").is_none(), "left out when there is none");
    }

    #[test]
    fn a_triggered_penalty_costs_points_and_fails_the_pass() {
        let rubric = rubric(RUBRIC);
        let tests = tests(&[("test_add", true)]);
        let verdicts = BTreeMap::from([("drains".into(), verdict(true)), ("readable".into(), verdict(true)), ("false-claim".into(), verdict(true))]);
        let grade = grade(&GradeInputs { tests: Some(&tests), verdicts: &verdicts, ..GradeInputs::new(&rubric) });
        // (3 + 2 - 5) / 5 = 0
        assert_eq!(grade.points, Some(0.0));
        assert_eq!(grade.pass, Some(false), "a feature penalty was triggered");
    }

    #[test]
    fn ungraded_criteria_are_never_counted_as_met_or_unmet() {
        let rubric = rubric(RUBRIC);
        let tests = tests(&[("test_add", true), ("test_health", true)]);
        let grade = grade(&GradeInputs { tests: Some(&tests), ..GradeInputs::new(&rubric) });
        assert!(!grade.complete);
        assert_eq!((grade.pass, grade.resolve, grade.points), (None, None, None));
        let engineering = grade.components.iter().find(|c| c.component == Component::Engineering).unwrap();
        assert_eq!((engineering.score, engineering.ungraded), (None, 1));
        // The graded part still scores: feature 1, operational 1 (test only) -> composite 1.
        assert_eq!(grade.composite, Some(1.0));

        // A failing graded test decides the pass even with ungraded criteria.
        let failing = self::tests(&[("test_add", false)]);
        let grade = self::grade(&GradeInputs { tests: Some(&failing), ..GradeInputs::new(&rubric) });
        assert_eq!(grade.pass, Some(false));
    }

    #[test]
    fn without_a_rubric_the_composite_is_the_reward() {
        let rubric = Rubric::tests_only();
        let rewards = Rewards { reward: 0.75, values: BTreeMap::from([("reward".into(), 0.75)]), source: "reward.txt".into() };
        let grade = grade(&GradeInputs { rewards: Some(&rewards), ..GradeInputs::new(&rubric) });
        assert_eq!(grade.composite, Some(0.75));
        assert_eq!((grade.pass, grade.resolve, grade.points), (Some(false), Some(false), None));
    }

    #[test]
    fn a_report_that_counts_no_test_falls_back_to_the_reward() {
        let skipped = crate::test_report::parse_ctrf(r#"{"results": {"tests": [{"name": "test_a", "status": "skipped"}]}}"#).unwrap();
        let rewards = Rewards { reward: 0.0, values: BTreeMap::from([("reward".into(), 0.0)]), source: "reward.txt".into() };
        let rubric = Rubric::tests_only();
        let grade = grade(&GradeInputs { rewards: Some(&rewards), tests: Some(&skipped), ..GradeInputs::new(&rubric) });
        assert_eq!((grade.pass, grade.resolve, grade.composite), (Some(false), Some(false), Some(0.0)), "{grade:?}");
        assert_eq!(grade.checks.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![CheckKind::Reward]);
    }

    #[test]
    fn nothing_to_pass_is_not_a_pass() {
        let rubric = rubric("[rewards]\nstyle = \"engineering\"\n");
        let rewards = Rewards { reward: 1.0, values: BTreeMap::from([("style".into(), 1.0)]), source: "reward.json".into() };
        let grade = grade(&GradeInputs { rewards: Some(&rewards), ..GradeInputs::new(&rubric) });
        assert_eq!(grade.pass, Some(false), "no feature or operational check: {grade:?}");
    }

    #[test]
    fn reward_keys_map_to_components() {
        let rubric = rubric("[rewards]\ncorrect = \"feature\"\nlatency = \"operational\"\nmissing = \"operational\"\n");
        let rewards = Rewards { reward: 0.5, values: BTreeMap::from([("correct".into(), 1.0), ("latency".into(), 0.5)]), source: "reward.json".into() };
        let grade = grade(&GradeInputs { rewards: Some(&rewards), ..GradeInputs::new(&rubric) });
        // feature 1.0; operational (0.5 + 0 for the missing key) / 2 = 0.25; composite (0.6 + 0.075) / 0.9 = 0.75
        assert!((grade.composite.unwrap() - 0.75).abs() < 1e-12, "{grade:?}");
    }

    #[test]
    fn forbidden_code_changes_fail_and_scratch_files_cost_points() {
        let rubric = rubric(
            "[grading]\nforbid_code_changes = true\nscratch_file_points = -1\n[[criteria]]\nid = \"answer\"\nclaim = \"the answer names the function\"\ncomponent = \"feature\"\npoints = 4\n",
        );
        let verdicts = BTreeMap::from([("answer".into(), verdict(true))]);
        let clean = WorkspaceChanges { added: vec!["notes.txt".into()], ..Default::default() };
        let grade1 = grade(&GradeInputs { verdicts: &verdicts, workspace: Some(&clean), ..GradeInputs::new(&rubric) });
        assert_eq!((grade1.pass, grade1.resolve), (Some(true), Some(true)));
        assert_eq!(grade1.points, Some(0.75), "(4 - 1) / 4");
        let dirty = WorkspaceChanges { modified: vec!["src/lib.rs".into()], ..Default::default() };
        let grade2 = grade(&GradeInputs { verdicts: &verdicts, workspace: Some(&dirty), ..GradeInputs::new(&rubric) });
        assert_eq!((grade2.pass, grade2.resolve), (Some(false), Some(false)));
        assert_eq!(grade2.forbidden_changes, vec!["src/lib.rs".to_string()]);
    }
}
