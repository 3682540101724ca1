//! `rubric.toml`: what a task grades beyond its behavioural tests, and how everything counts.
//!
//! Production work is judged on three components: feature correctness, operational
//! correctness and engineering quality (0.6/0.3/0.1 by default). A rubric lists *criteria*,
//! claims an LLM judge decides from the trial's evidence, each counting toward one component
//! with a weight, or with signed points (a penalty such as "claims completion while outputs
//! are missing: -5" is a criterion with negative points, which counts when its claim is
//! true). It also maps the behavioural tests to components: per test name from the CTRF or
//! JUnit report the tests write, or per key of `reward.json`.
//!
//! Parsed like `task.toml`: a raw serde mirror (type errors with their line, unknown keys as
//! warnings), then checks that turn every problem into a [`Diagnostic`] naming file, line
//! and key. See docs/TASK-FORMAT.md, "rubric.toml".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::diagnostic::Diagnostic;
use crate::raw::{deserialize_raw, key_line};

const RUBRIC_DOC: &str = "docs/TASK-FORMAT.md (rubric.toml)";

/// What a check counts toward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Feature,
    Operational,
    Engineering,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Feature, Component::Operational, Component::Engineering];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Feature => "feature",
            Component::Operational => "operational",
            Component::Engineering => "engineering",
        }
    }

    pub fn parse(text: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// How much each component counts in the composite score.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComponentWeights {
    pub feature: f64,
    pub operational: f64,
    pub engineering: f64,
}

impl Default for ComponentWeights {
    fn default() -> Self {
        ComponentWeights { feature: 0.6, operational: 0.3, engineering: 0.1 }
    }
}

impl ComponentWeights {
    pub fn of(&self, component: Component) -> f64 {
        match component {
            Component::Feature => self.feature,
            Component::Operational => self.operational,
            Component::Engineering => self.engineering,
        }
    }

    /// Parses `feature=0.5,operational=0.4,engineering=0.1` (the `--weights` flag); missing
    /// components keep their default.
    pub fn parse_flag(text: &str) -> Result<ComponentWeights, String> {
        let mut weights = ComponentWeights::default();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| format!("expected component=weight, got {pair:?}"))?;
            let component = Component::parse(name.trim()).ok_or_else(|| format!("unknown component {name:?} (feature, operational, engineering)"))?;
            let value: f64 = value.trim().parse().map_err(|_| format!("{name}: expected a number, got {value:?}"))?;
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("{name}: expected a weight of 0 or more, got {value}"));
            }
            match component {
                Component::Feature => weights.feature = value,
                Component::Operational => weights.operational = value,
                Component::Engineering => weights.engineering = value,
            }
        }
        if weights.feature + weights.operational + weights.engineering <= 0.0 {
            return Err("the weights add up to 0".into());
        }
        Ok(weights)
    }
}

/// What a judge is shown for a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// The workspace's changes, against the original, at the end of the agent phase.
    Diff,
    /// The agent's trajectory, condensed to fit the judge's context.
    Trajectory,
    /// The agent's final answer.
    Answer,
    /// Output of the rubric's state probes, taken right after the agent phase.
    State,
    /// The verifier's output and per-test results.
    Tests,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 5] = [EvidenceKind::Diff, EvidenceKind::Trajectory, EvidenceKind::Answer, EvidenceKind::State, EvidenceKind::Tests];

    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Diff => "diff",
            EvidenceKind::Trajectory => "trajectory",
            EvidenceKind::Answer => "answer",
            EvidenceKind::State => "state",
            EvidenceKind::Tests => "tests",
        }
    }
}

/// One claim for the judge.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Criterion {
    pub id: String,
    pub claim: String,
    pub component: Component,
    /// Weight within its component's score (0 for penalties).
    pub weight: f64,
    /// Signed points; a negative value makes the criterion a penalty that counts when its
    /// claim is true.
    pub points: Option<f64>,
    pub evidence: Vec<EvidenceKind>,
    /// Must be met for the trial to count as resolved.
    pub must_pass: bool,
}

impl Criterion {
    pub fn is_penalty(&self) -> bool {
        self.points.is_some_and(|p| p < 0.0)
    }

    /// Whether the outcome is good: a met claim, or an unmet penalty.
    pub fn passes(&self, met: bool) -> bool {
        met != self.is_penalty()
    }
}

/// Maps tests whose name matches `pattern` (`*` and `?` wildcards) to a component.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestMapping {
    pub pattern: String,
    pub component: Component,
}

/// A command run in the sandbox right after the agent phase, before its processes are
/// killed: the live system's state, as evidence for the judge.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateProbe {
    pub name: String,
    pub command: String,
    pub timeout_sec: f64,
}

/// The resolved contents of `rubric.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rubric {
    /// The task's own component weights; `None` means the job's (default 0.6/0.3/0.1).
    pub weights: Option<ComponentWeights>,
    pub criteria: Vec<Criterion>,
    /// Component of tests (or the reward) no mapping names.
    pub tests_component: Component,
    pub test_map: Vec<TestMapping>,
    /// `reward.json` keys and their components; when empty the reward is one check.
    pub reward_keys: BTreeMap<String, Component>,
    pub state: Vec<StateProbe>,
    /// A question-answering task: any change to a file the workspace started with fails
    /// the trial.
    pub forbid_code_changes: bool,
    /// Points per file the agent left behind in a `forbid_code_changes` task (at most 0).
    pub scratch_file_points: f64,
}

impl Rubric {
    /// The component a test counts toward.
    pub fn component_of_test(&self, name: &str) -> Component {
        self.test_map.iter().find(|m| glob_match(&m.pattern, name)).map_or(self.tests_component, |m| m.component)
    }

    /// The rubric of a task without `rubric.toml`: tests and reward count as features.
    pub fn tests_only() -> Rubric {
        Rubric {
            weights: None,
            criteria: Vec::new(),
            tests_component: Component::Feature,
            test_map: Vec::new(),
            reward_keys: BTreeMap::new(),
            state: Vec::new(),
            forbid_code_changes: false,
            scratch_file_points: DEFAULT_SCRATCH_FILE_POINTS,
        }
    }
}

const DEFAULT_SCRATCH_FILE_POINTS: f64 = -1.0;
const DEFAULT_PROBE_TIMEOUT_SEC: f64 = 30.0;

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

// ---- raw mirror of the file -----------------------------------------------------------

#[derive(Deserialize, Default)]
struct RawRubric {
    weights: Option<RawWeights>,
    grading: Option<RawGrading>,
    tests: Option<RawTests>,
    rewards: Option<BTreeMap<String, String>>,
    #[serde(default)]
    criteria: Vec<RawCriterion>,
    #[serde(default)]
    state: Vec<RawProbe>,
}

#[derive(Deserialize)]
struct RawWeights {
    feature: Option<f64>,
    operational: Option<f64>,
    engineering: Option<f64>,
}

#[derive(Deserialize)]
struct RawGrading {
    forbid_code_changes: Option<bool>,
    scratch_file_points: Option<f64>,
}

#[derive(Deserialize)]
struct RawTests {
    component: Option<String>,
    #[serde(default)]
    map: Vec<RawTestMapping>,
}

#[derive(Deserialize)]
struct RawTestMapping {
    pattern: String,
    component: String,
}

#[derive(Deserialize)]
struct RawCriterion {
    id: Option<String>,
    claim: Option<String>,
    component: Option<String>,
    weight: Option<f64>,
    points: Option<f64>,
    evidence: Option<Vec<String>>,
    must_pass: Option<bool>,
}

#[derive(Deserialize)]
struct RawProbe {
    name: Option<String>,
    command: Option<String>,
    timeout_sec: Option<f64>,
}

/// Parses and validates `rubric.toml` text: the rubric if there were no errors, and every
/// diagnostic found.
pub fn parse(file: &Path, text: &str) -> (Option<Rubric>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let Some(raw) = deserialize_raw::<RawRubric>(file, text, &mut diagnostics, RUBRIC_DOC) else {
        return (None, diagnostics);
    };
    let mut checker = Checker { file, text, diagnostics };
    let rubric = checker.resolve(raw);
    let has_errors = checker.diagnostics.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { Some(rubric) }, checker.diagnostics)
}

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn resolve(&mut self, raw: RawRubric) -> Rubric {
        let grading = raw.grading.unwrap_or(RawGrading { forbid_code_changes: None, scratch_file_points: None });
        let scratch_file_points = grading.scratch_file_points.unwrap_or(DEFAULT_SCRATCH_FILE_POINTS);
        if !(scratch_file_points.is_finite() && scratch_file_points <= 0.0) {
            self.error(
                "grading.scratch_file_points",
                format!("expected 0 or a negative number, got {scratch_file_points}"),
                "it is a penalty per leftover file, e.g. -1",
            );
        }
        let forbid_code_changes = grading.forbid_code_changes.unwrap_or(false);
        if grading.scratch_file_points.is_some() && !forbid_code_changes {
            self.warning(
                "grading.scratch_file_points",
                "has no effect without forbid_code_changes = true".into(),
                "leftover files are only charged in tasks that forbid code changes",
            );
        }
        let explicit_state: Vec<usize> =
            raw.criteria.iter().enumerate().filter(|(_, c)| c.evidence.as_ref().is_some_and(|e| e.iter().any(|k| k == "state"))).map(|(i, _)| i).collect();
        let (tests_component, test_map) = self.tests(raw.tests);
        let rubric = Rubric {
            weights: raw.weights.map(|w| self.weights(w)),
            criteria: self.criteria(raw.criteria),
            tests_component,
            test_map,
            reward_keys: self.reward_keys(raw.rewards.unwrap_or_default()),
            state: self.probes(raw.state),
            forbid_code_changes,
            scratch_file_points,
        };
        if rubric.state.is_empty() {
            for i in explicit_state {
                self.error(
                    &format!("criteria.{i}.evidence"),
                    "asks for the final state, but the rubric has no [[state]] probes".into(),
                    "add a [[state]] probe whose output the judge reads, or drop \"state\"",
                );
            }
        }
        self.criteria_that_count_for_nothing(&rubric);
        if rubric == Rubric::tests_only() {
            let diagnostic = Diagnostic::warning(self.file, "defines nothing: the task is graded as without a rubric");
            self.diagnostics.push(diagnostic.hint("add [[criteria]] for the judge (note the plural), or delete rubric.toml"));
        }
        rubric
    }

    /// Warns about criteria whose component has weight 0 and that carry no points: their
    /// verdicts change no score.
    fn criteria_that_count_for_nothing(&mut self, rubric: &Rubric) {
        let Some(weights) = rubric.weights else { return };
        for (i, c) in rubric.criteria.iter().enumerate() {
            if weights.of(c.component) == 0.0 && c.points.is_none() && !c.must_pass {
                let message = format!("counts for nothing: the {} component's weight is 0 and the criterion has no points", c.component.as_str());
                self.warning(&format!("criteria.{i}.component"), message, "give the component a weight, or the criterion points or must_pass");
            }
        }
    }

    fn weights(&mut self, raw: RawWeights) -> ComponentWeights {
        let default = ComponentWeights::default();
        let mut weight = |key: &str, value: Option<f64>, default: f64| {
            let value = value.unwrap_or(default);
            if !(value.is_finite() && value >= 0.0) {
                self.error(key, format!("expected a weight of 0 or more, got {value}"), "weights are relative; they need not add up to 1");
            }
            value
        };
        let weights = ComponentWeights {
            feature: weight("weights.feature", raw.feature, default.feature),
            operational: weight("weights.operational", raw.operational, default.operational),
            engineering: weight("weights.engineering", raw.engineering, default.engineering),
        };
        if weights.feature + weights.operational + weights.engineering <= 0.0 {
            self.error("weights", "the weights add up to 0".into(), "give at least one component a positive weight");
        }
        weights
    }

    fn tests(&mut self, raw: Option<RawTests>) -> (Component, Vec<TestMapping>) {
        let Some(raw) = raw else { return (Component::Feature, Vec::new()) };
        let component = match raw.component {
            Some(name) => self.component("tests.component", &name),
            None => Component::Feature,
        };
        let map = raw
            .map
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                if m.pattern.trim().is_empty() {
                    self.error(&format!("tests.map.{i}.pattern"), "empty".into(), "a test name or glob, e.g. pattern = \"test_health*\"");
                }
                TestMapping { component: self.component(&format!("tests.map.{i}.component"), &m.component), pattern: m.pattern }
            })
            .collect();
        (component, map)
    }

    fn reward_keys(&mut self, raw: BTreeMap<String, String>) -> BTreeMap<String, Component> {
        raw.into_iter().map(|(key, name)| (key.clone(), self.component(&format!("rewards.{key}"), &name))).collect()
    }

    fn criteria(&mut self, raw: Vec<RawCriterion>) -> Vec<Criterion> {
        let mut seen = BTreeSet::new();
        let mut criteria = Vec::new();
        for (i, c) in raw.into_iter().enumerate() {
            let at = |field: &str| format!("criteria.{i}.{field}");
            let id = c.id.unwrap_or_default();
            if !valid_id(&id) {
                self.error(
                    &at("id"),
                    format!("expected an id of letters, digits and -_. (got {id:?})"),
                    "every criterion needs a short unique id, e.g. id = \"drains-on-sigterm\"",
                );
            } else if !seen.insert(id.clone()) {
                self.error(&at("id"), format!("duplicate criterion id {id:?}"), "ids must be unique within the rubric");
            }
            let claim = c.claim.unwrap_or_default();
            if claim.trim().is_empty() {
                self.error(&at("claim"), "missing or empty".into(), "state what the judge decides, e.g. claim = \"The service drains requests on SIGTERM\"");
            }
            let component = match c.component {
                Some(name) => self.component(&at("component"), &name),
                None => {
                    self.error(&at("component"), "missing".into(), "one of feature, operational, engineering");
                    Component::Feature
                }
            };
            let (weight, points) = self.weight_and_points(&at(""), c.weight, c.points);
            let must_pass = c.must_pass.unwrap_or(false);
            if must_pass && points.is_some_and(|p| p < 0.0) {
                self.error(&at("must_pass"), "a penalty (negative points) cannot be must-pass".into(), "make the claim positive, or drop must_pass");
            }
            let evidence = self.evidence(&at("evidence"), c.evidence);
            criteria.push(Criterion { id, claim, component, weight, points, evidence, must_pass });
        }
        criteria
    }

    /// `prefix` ends with a dot: `criteria.3.`.
    fn weight_and_points(&mut self, prefix: &str, weight: Option<f64>, points: Option<f64>) -> (f64, Option<f64>) {
        if let Some(p) = points.filter(|p| !p.is_finite() || *p == 0.0) {
            self.error(&format!("{prefix}points"), format!("expected a non-zero number, got {p}"), "positive points reward, negative points penalise");
        }
        let penalty = points.is_some_and(|p| p < 0.0);
        match weight {
            Some(w) if penalty => {
                self.error(
                    &format!("{prefix}weight"),
                    format!("a penalty (negative points) has no weight, got {w}"),
                    "drop `weight`; penalties count only in points",
                );
                (0.0, points)
            }
            Some(w) if !(w.is_finite() && w > 0.0) => {
                self.error(&format!("{prefix}weight"), format!("expected a weight above 0, got {w}"), "weights are relative within a component");
                (1.0, points)
            }
            Some(w) => (w, points),
            None if penalty => (0.0, points),
            None => (points.unwrap_or(1.0), points),
        }
    }

    fn evidence(&mut self, key: &str, raw: Option<Vec<String>>) -> Vec<EvidenceKind> {
        let Some(names) = raw else { return EvidenceKind::ALL.to_vec() };
        let mut evidence = BTreeSet::new();
        for name in names {
            match EvidenceKind::ALL.into_iter().find(|e| e.as_str() == name) {
                Some(e) => {
                    evidence.insert(e);
                }
                None => self.error(key, format!("unknown evidence {name:?}"), "use diff, trajectory, answer, state, tests"),
            }
        }
        if evidence.is_empty() {
            self.error(key, "empty".into(), "leave the key out to show the judge everything");
        }
        evidence.into_iter().collect()
    }

    fn probes(&mut self, raw: Vec<RawProbe>) -> Vec<StateProbe> {
        let mut seen = BTreeSet::new();
        let mut probes = Vec::new();
        for (i, p) in raw.into_iter().enumerate() {
            let name = p.name.unwrap_or_default();
            if !valid_id(&name) || !seen.insert(name.clone()) {
                self.error(
                    &format!("state.{i}.name"),
                    format!("expected a unique name of letters, digits and -_. (got {name:?})"),
                    "the name is the file the output is saved to",
                );
            }
            let command = p.command.unwrap_or_default();
            if command.trim().is_empty() {
                self.error(&format!("state.{i}.command"), "missing or empty".into(), "a shell command, e.g. command = \"curl -s localhost:8080/health\"");
            }
            let timeout_sec = p.timeout_sec.unwrap_or(DEFAULT_PROBE_TIMEOUT_SEC);
            if let Err(message) = crate::check_timeout(timeout_sec) {
                self.error(&format!("state.{i}.timeout_sec"), message, "for example timeout_sec = 10");
            }
            probes.push(StateProbe { name, command, timeout_sec });
        }
        probes
    }

    fn component(&mut self, key: &str, name: &str) -> Component {
        Component::parse(name).unwrap_or_else(|| {
            self.error(key, format!("unknown component {name:?}"), "one of feature, operational, engineering");
            Component::Feature
        })
    }

    fn error(&mut self, key: &str, message: String, hint: &str) {
        let diagnostic = Diagnostic::error(self.file, message);
        self.push(diagnostic, key, hint);
    }

    fn warning(&mut self, key: &str, message: String, hint: &str) {
        let diagnostic = Diagnostic::warning(self.file, message);
        self.push(diagnostic, key, hint);
    }

    fn push(&mut self, diagnostic: Diagnostic, key: &str, hint: &str) {
        let key = key.trim_end_matches('.');
        // Point at the key itself, or at the nearest enclosing key that exists in the file.
        let line = std::iter::successors(Some(key), |k| k.rsplit_once('.').map(|(head, _)| head)).find_map(|k| key_line(self.text, k));
        self.diagnostics.push(diagnostic.at_line(line).key(key).hint(hint));
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (Option<Rubric>, Vec<String>) {
        let (rubric, diagnostics) = parse(Path::new("t/rubric.toml"), text);
        (rubric, diagnostics.iter().map(|d| d.to_string()).collect())
    }

    const FULL: &str = r#"
[weights]
feature = 0.5
operational = 0.5
engineering = 0

[grading]
forbid_code_changes = true

[tests]
component = "feature"
[[tests.map]]
pattern = "test_health*"
component = "operational"

[rewards]
latency = "operational"

[[criteria]]
id = "drains"
claim = "The service drains in-flight requests on SIGTERM."
component = "operational"
weight = 2
evidence = ["diff", "state"]
must_pass = true

[[criteria]]
id = "false-claim"
claim = "The agent claims completion while outputs are missing."
component = "feature"
points = -5

[[state]]
name = "health"
command = "curl -s localhost:8080/health"
"#;

    #[test]
    fn a_full_rubric_parses() {
        let (rubric, diagnostics) = check(FULL);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let rubric = rubric.unwrap();
        assert_eq!(rubric.weights, Some(ComponentWeights { feature: 0.5, operational: 0.5, engineering: 0.0 }));
        assert!(rubric.forbid_code_changes);
        assert_eq!(rubric.component_of_test("test_health_endpoint"), Component::Operational);
        assert_eq!(rubric.component_of_test("test_add"), Component::Feature);
        assert_eq!(rubric.reward_keys["latency"], Component::Operational);
        let [drains, claim] = &rubric.criteria[..] else { panic!("two criteria") };
        assert_eq!((drains.weight, drains.must_pass, drains.evidence.clone()), (2.0, true, vec![EvidenceKind::Diff, EvidenceKind::State]));
        assert!(claim.is_penalty() && claim.weight == 0.0 && claim.evidence.len() == 5);
        assert!(claim.passes(false) && !claim.passes(true) && drains.passes(true));
        assert_eq!(rubric.state[0].timeout_sec, DEFAULT_PROBE_TIMEOUT_SEC);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let text = "[[criteria]]\nid = \"a\"\nclaim = \"x\"\ncomponent = \"features\"\n\n[[criteria]]\nid = \"a\"\nclaim = \"\"\ncomponent = \"feature\"\npoints = -2\nmust_pass = true\n";
        let (rubric, diagnostics) = check(text);
        assert!(rubric.is_none());
        let all = diagnostics.join("\n");
        assert!(all.contains("t/rubric.toml:4: error: `criteria.0.component`: unknown component \"features\""), "{all}");
        assert!(all.contains("t/rubric.toml:7: error: `criteria.1.id`: duplicate criterion id"), "{all}");
        assert!(all.contains("`criteria.1.claim`: missing or empty"), "{all}");
        assert!(all.contains("t/rubric.toml:11: error: `criteria.1.must_pass`"), "{all}");
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_reported() {
        let (rubric, diagnostics) = check("[[criteria]]\nid = \"a\"\nclaim = \"x\"\ncomponent = \"feature\"\nweight = \"heavy\"\n");
        assert!(rubric.is_none());
        assert!(diagnostics[0].starts_with("t/rubric.toml:5: error:"), "{diagnostics:?}");
        let (rubric, diagnostics) = check("[[criteria]]\nid = \"a\"\nclaim = \"x\"\ncomponent = \"feature\"\nmustpass = true\n");
        assert!(rubric.is_some());
        assert!(diagnostics[0].starts_with("t/rubric.toml:5: warning: `criteria.0.mustpass`: unknown key"), "{diagnostics:?}");
    }

    #[test]
    fn rubrics_that_would_silently_grade_nothing_are_reported() {
        let criterion = "[[criteria]]\nid = \"a\"\nclaim = \"x\"\ncomponent = \"engineering\"\n";
        let (rubric, diagnostics) = check(&format!("{criterion}evidence = [\"state\"]\n"));
        assert!(rubric.is_none());
        assert!(diagnostics[0].starts_with("t/rubric.toml:5: error: `criteria.0.evidence`: asks for the final state"), "{diagnostics:?}");
        let (rubric, diagnostics) = check("[tests]\n[[tests.map]]\npattern = \" \"\ncomponent = \"feature\"\n");
        assert!(rubric.is_none() && diagnostics[0].contains("`tests.map.0.pattern`: empty"), "{diagnostics:?}");
        let (rubric, diagnostics) = check(&format!("[weights]\nengineering = 0\n[grading]\nscratch_file_points = -2\n{criterion}"));
        assert!(rubric.is_some(), "warnings only: {diagnostics:?}");
        assert!(diagnostics.iter().any(|d| d.contains("warning: `grading.scratch_file_points`: has no effect")), "{diagnostics:?}");
        assert!(diagnostics.iter().any(|d| d.contains("warning: `criteria.0.component`: counts for nothing")), "{diagnostics:?}");
        let (rubric, diagnostics) = check(&criterion.replace("[[criteria]]", "[[criterion]]"));
        assert!(rubric.is_some());
        assert!(diagnostics.iter().any(|d| d.contains("warning: defines nothing") && d.contains("note the plural")), "{diagnostics:?}");
    }

    #[test]
    fn penalties_take_points_not_weights() {
        let (_, diagnostics) = check("[[criteria]]\nid = \"a\"\nclaim = \"x\"\ncomponent = \"feature\"\npoints = -1\nweight = 2\n");
        assert!(diagnostics[0].contains("`criteria.0.weight`: a penalty"), "{diagnostics:?}");
        let (rubric, _) = check("[[criteria]]\nid = \"a\"\nclaim = \"x\"\ncomponent = \"feature\"\npoints = 3\n");
        assert_eq!(rubric.unwrap().criteria[0].weight, 3.0, "positive points double as the weight");
    }

    #[test]
    fn weights_flag_parses_and_rejects_nonsense() {
        assert_eq!(ComponentWeights::parse_flag("feature=1,engineering=0").unwrap(), ComponentWeights { feature: 1.0, operational: 0.3, engineering: 0.0 });
        assert!(ComponentWeights::parse_flag("speed=1").unwrap_err().contains("unknown component"));
        assert!(ComponentWeights::parse_flag("feature=-1").is_err());
        assert!(ComponentWeights::parse_flag("feature=0,operational=0,engineering=0").is_err());
    }

    #[test]
    fn globs_match() {
        assert!(glob_match("test_*", "test_a") && glob_match("*health*", "x_health_y") && glob_match("t?st", "test"));
        assert!(!glob_match("test_*", "tests") && !glob_match("a?", "a"));
    }
}
