//! A report over one or more jobs: the leaderboard rows, paired comparisons against the
//! first row, breakdowns by task metadata, failure modes, and every trial. This is the one
//! data model the terminal table, `--json` and the HTML page are all rendered from.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use prodbench_score::evidence::ANSWER_COPY;
use prodbench_store::{JobRecord, JobTask, Liveness, Outcome, TrialRecord, TrialStatus, final_tries};
use prodbench_trajectory::stats::TrialStats;
use serde::Serialize;

use crate::leaderboard::{LEVEL, RESAMPLES, Row, SEED, ScoredTrial, Usage, common_k, row};
use crate::live::LiveTrial;
use crate::stats::{PairedComparison, paired_comparison};

/// A task's metadata as recorded with its job (`tasks.json`): what breakdowns group by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct TaskMeta {
    pub category: Option<String>,
    pub difficulty: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One job's input to a report.
pub struct JobInput {
    pub job: JobRecord,
    pub trials: Vec<TrialRecord>,
    pub tasks: BTreeMap<String, TaskMeta>,
    /// Per trial id: what its trajectory says about how the agent worked (trials of agents
    /// that leave no trajectory are absent).
    pub stats: BTreeMap<String, TrialStats>,
    /// The job's directory, where its trials' answers and verifier output are read from.
    pub dir: PathBuf,
    /// Whether the job finished, runs, was interrupted or died: a report of an unfinished
    /// job covers fewer trials than it planned, and says so.
    pub liveness: Liveness,
    /// The tasks found at the job's paths that it did not run, with why.
    pub skipped: Vec<JobTask>,
}

/// A job the report covers, as its header lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportJob {
    pub job_id: String,
    /// Its row's label.
    pub agent: String,
    pub liveness: Liveness,
    /// Tasks it did not run (broken, or unable to run on its backend).
    pub skipped: Vec<JobTask>,
}

impl ReportJob {
    /// Whether the job's results are all it will have.
    pub fn is_complete(&self) -> bool {
        self.liveness == Liveness::Finished
    }
}

impl JobInput {
    /// A finished job's trials, without task metadata, statistics or skipped tasks.
    pub fn new(job: JobRecord, trials: Vec<TrialRecord>, dir: PathBuf) -> Self {
        JobInput { job, trials, tasks: BTreeMap::new(), stats: BTreeMap::new(), dir, liveness: Liveness::Finished, skipped: Vec::new() }
    }

    /// The row label: the agent, and its model when it has one.
    pub fn agent_label(&self) -> String {
        let config = &self.job.config;
        let agent = config.get("agent").and_then(|a| a.as_str()).unwrap_or("?");
        match config.pointer("/agent_settings/model/model").and_then(|m| m.as_str()) {
            Some(model) => format!("{agent} ({model})"),
            None => agent.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub other: String,
    /// `other - baseline`, in score points.
    pub difference: PairedComparison,
}

/// Mean score of one agent over the tasks of one group (a category, a difficulty, a tag).
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// `category`, `difficulty` or `tag`.
    pub by: String,
    pub group: String,
    /// Agent label -> its mean score over the group's tasks.
    pub scores: BTreeMap<String, GroupScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupScore {
    pub score: f64,
    pub tasks: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every job the report covers, in the order given (each once).
    pub jobs: Vec<ReportJob>,
    pub rows: Vec<Row>,
    pub comparisons: Vec<Comparison>,
    pub breakdowns: Vec<Breakdown>,
    /// The k at which every row's pass@k and pass^k are shown side by side: the largest all
    /// rows have (see [`common_k`]).
    pub common_k: Option<u32>,
    /// Agent label -> final outcome ([`ScoredTrial::outcome`]) -> trials.
    pub failure_modes: BTreeMap<String, BTreeMap<Outcome, usize>>,
    pub trials: Vec<ReportTrial>,
    pub settings: Settings,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// A trial with its row label, for per-trial pages.
#[derive(Debug, Clone, Serialize)]
pub struct ReportTrial {
    pub agent: String,
    #[serde(flatten)]
    pub trial: ScoredTrial,
    pub error: Option<String>,
    pub grade: Option<prodbench_score::score::TrialGrade>,
    /// For `agent_limit`: which limit stopped the agent.
    pub agent_limit: Option<String>,
    pub stats: Option<TrialStats>,
    /// The trial's directory on disk.
    pub path: String,
    /// The agent's final answer, if it left one: its first [`ANSWER_CHARS`] characters.
    pub answer: Option<String>,
    /// The end of the run's verifier output (a regrade's is under `regrade/<n>/`).
    pub verifier_output: Option<VerifierOutput>,
    /// A live trial's traffic, event timeline and logs; `None` for a trial without a live
    /// environment.
    pub live: Option<LiveTrial>,
    /// The services (compose sidecars or `[[services]]`) whose log the trial kept
    /// (`services/<name>.log`), by name.
    pub service_logs: Vec<String>,
}

/// The last [`VERIFIER_LINES`] lines of what the tests printed, each stream.
#[derive(Debug, Clone, Serialize)]
pub struct VerifierOutput {
    pub stdout: String,
    pub stderr: String,
}

/// How much of a trial's answer a report keeps: its start.
pub const ANSWER_CHARS: usize = 4000;
/// How much of the verifier's output a report keeps: the end, where the failures and the
/// summary are.
pub const VERIFIER_LINES: usize = 40;
/// Where a trial keeps its verifier's output, relative to its directory.
const VERIFIER_DIR: &str = "verifier";
pub use prodbench_score::evidence::SERVICES_DIR;

/// The names of the services whose `<name>.log` is in the trial's `services/`, sorted.
fn service_logs(trial_dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(trial_dir.join(SERVICES_DIR)).into_iter().flatten().flatten();
    let mut names: Vec<String> = entries.filter_map(|e| e.file_name().to_str()?.strip_suffix(".log").map(String::from)).collect();
    names.sort();
    names
}

/// Builds the report. `by_job` makes every job its own row (to compare two runs of one
/// agent); otherwise jobs of the same agent and model share a row. A job given twice (its
/// id and `latest`, say) counts once: merged with itself, it would double its attempts.
pub fn build(inputs: &[JobInput], by_job: bool) -> Report {
    let mut groups: Vec<(String, Vec<String>, Vec<&TrialRecord>)> = Vec::new();
    let mut meta: BTreeMap<String, TaskMeta> = BTreeMap::new();
    let stats: BTreeMap<&str, &TrialStats> = inputs.iter().flat_map(|i| i.stats.iter().map(|(id, s)| (id.as_str(), s))).collect();
    let job_dirs: BTreeMap<&str, &Path> = inputs.iter().map(|i| (i.job.job_id.as_str(), i.dir.as_path())).collect();
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for input in inputs.iter().filter(|i| seen.insert(i.job.job_id.as_str())) {
        let label = if by_job { format!("{} [{}]", input.agent_label(), input.job.job_id) } else { input.agent_label() };
        jobs.push(ReportJob { job_id: input.job.job_id.clone(), agent: label.clone(), liveness: input.liveness, skipped: input.skipped.clone() });
        let finals = final_tries(&input.trials);
        match groups.iter_mut().find(|(l, _, _)| *l == label) {
            Some((_, jobs, trials)) => {
                jobs.push(input.job.job_id.clone());
                trials.extend(finals);
            }
            None => groups.push((label, vec![input.job.job_id.clone()], finals)),
        }
        meta.extend(input.tasks.clone());
    }
    let mut rows = Vec::new();
    let mut trials = Vec::new();
    let mut failure_modes = BTreeMap::new();
    for (label, jobs, records) in &groups {
        let scored: Vec<ScoredTrial> = records.iter().filter_map(|t| ScoredTrial::from_record(t)).collect();
        let mut built = row(label, jobs.clone(), &scored);
        let finished: Vec<&&TrialRecord> = records.iter().filter(|t| t.status.is_some()).collect();
        let row_stats: Vec<Option<&TrialStats>> = finished.iter().map(|t| stats.get(t.trial_id.as_str()).copied()).collect();
        // What the agent spent, over the trials it ran in: an infrastructure error or an
        // interrupted trial leaves no trajectory, and would otherwise blank the row's usage.
        let ran: Vec<Option<&TrialStats>> =
            finished.iter().zip(&row_stats).filter(|(t, _)| t.status.is_some_and(TrialStatus::is_scored)).map(|(_, s)| *s).collect();
        built.usage = Usage::over(&ran);
        failure_modes.insert(label.clone(), built.statuses.clone());
        rows.push(built);
        for ((record, trial), stats) in finished.into_iter().zip(scored).zip(row_stats) {
            let dir = job_dirs[record.job_id.as_str()].join(&record.dir);
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            trials.push(ReportTrial {
                agent: label.clone(),
                trial,
                error: record.error.clone(),
                grade: record.grade.clone(),
                agent_limit: record.agent_limit.clone(),
                stats: stats.cloned(),
                path: dir.to_string_lossy().into_owned(),
                answer: read_answer(&dir),
                verifier_output: VerifierOutput::read(&dir),
                live: LiveTrial::read(&dir),
                service_logs: service_logs(&dir),
            });
        }
    }
    Report {
        jobs,
        comparisons: comparisons(&rows),
        breakdowns: breakdowns(&rows, &meta),
        common_k: common_k(&rows),
        failure_modes,
        rows,
        trials,
        settings: Settings { level: LEVEL, resamples: RESAMPLES, seed: SEED },
    }
}

/// Every other row against the first, over shared tasks.
fn comparisons(rows: &[Row]) -> Vec<Comparison> {
    let Some((baseline, others)) = rows.split_first() else { return Vec::new() };
    others.iter().map(|other| Comparison { baseline: baseline.agent.clone(), other: other.agent.clone(), difference: difference(other, baseline) }).collect()
}

/// `other - baseline` over shared tasks. Differences of 0-100 scores lie in [-100, 100], and
/// so must the t interval (the bootstrap's resampled means of differences already do).
fn difference(other: &Row, baseline: &Row) -> PairedComparison {
    let scores = |row: &Row| -> Vec<(String, f64)> { row.task_scores.iter().map(|(t, s)| (t.clone(), *s)).collect() };
    let mut difference = paired_comparison(&scores(other), &scores(baseline), RESAMPLES, SEED, LEVEL);
    difference.t = difference.t.map(|i| i.clipped(-100.0, 100.0));
    difference
}

fn breakdowns(rows: &[Row], meta: &BTreeMap<String, TaskMeta>) -> Vec<Breakdown> {
    let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (task, m) in meta {
        let keys = m
            .category
            .iter()
            .map(|c| ("category", c.clone()))
            .chain(m.difficulty.iter().map(|d| ("difficulty", d.clone())))
            .chain(m.tags.iter().map(|t| ("tag", t.clone())));
        for (by, group) in keys {
            groups.entry((by.to_string(), group)).or_default().push(task);
        }
    }
    groups
        .into_iter()
        .map(|((by, group), tasks)| {
            let scores = rows
                .iter()
                .filter_map(|r| {
                    let mine: Vec<f64> = tasks.iter().filter_map(|t| r.task_scores.get(*t).copied()).collect();
                    (!mine.is_empty()).then(|| (r.agent.clone(), GroupScore { score: mine.iter().sum::<f64>() / mine.len() as f64, tasks: mine.len() }))
                })
                .collect();
            Breakdown { by, group, scores }
        })
        .collect()
}

impl VerifierOutput {
    /// The run's verifier output of the trial in `trial_dir`; `None` when the tests never ran.
    fn read(trial_dir: &Path) -> Option<VerifierOutput> {
        let read = |name: &str| std::fs::read(trial_dir.join(VERIFIER_DIR).join(name)).ok().map(|bytes| tail(&String::from_utf8_lossy(&bytes), VERIFIER_LINES));
        let (stdout, stderr) = (read("test-stdout.txt"), read("test-stderr.txt"));
        (stdout.is_some() || stderr.is_some()).then(|| VerifierOutput { stdout: stdout.unwrap_or_default(), stderr: stderr.unwrap_or_default() })
    }
}

/// The agent's answer in `trial_dir`, cut to [`ANSWER_CHARS`] characters.
fn read_answer(trial_dir: &Path) -> Option<String> {
    let answer = std::fs::read_to_string(trial_dir.join(ANSWER_COPY)).ok()?;
    Some(match answer.char_indices().nth(ANSWER_CHARS) {
        Some((cut, _)) => format!("{}\n[{} more characters]", &answer[..cut], answer[cut..].chars().count()),
        None => answer,
    })
}

/// The last `lines` lines of `text`, with a first line saying how many were left out.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    let omitted = all.len().saturating_sub(lines);
    let kept = all[omitted..].join("\n");
    if omitted == 0 { kept } else { format!("[{omitted} earlier lines]\n{kept}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(trials: &[TrialStatus], stats: impl Fn(u32) -> Option<TrialStats>) -> JobInput {
        let trials: Vec<TrialRecord> = (1..)
            .zip(trials)
            .map(|(attempt, status)| {
                let mut trial = TrialRecord::starting("j", "t", attempt, 1)
                    .with_ids(format!("j.t__a{attempt}"), &format!("t__a{attempt}"))
                    .task_digest("digest")
                    .agent("a");
                trial.status = Some(*status);
                trial
            })
            .collect();
        let stats = trials.iter().filter_map(|t| Some((t.trial_id.clone(), stats(t.attempt)?))).collect();
        let job = JobRecord { state: prodbench_store::JobState::Finished, ..JobRecord::new("j", serde_json::json!({"agent": "a"})) };
        JobInput { stats, ..JobInput::new(job, trials, PathBuf::from("jobs/j")) }
    }

    #[test]
    fn usage_leaves_out_trials_the_agent_never_ran() {
        use TrialStatus::*;
        let spent = |cost| TrialStats { steps: 4, prompt_tokens: Some(100), completion_tokens: Some(10), cost_usd: Some(cost), ..Default::default() };
        // Attempt 3 hit an infrastructure error and attempt 4 was interrupted: no trajectory.
        let input = job(&[Passed, Failed, InfraError, Interrupted], |attempt| (attempt <= 2).then(|| spent(f64::from(attempt))));
        let report = build(&[input], false);
        let usage = &report.rows[0].usage;
        assert_eq!((usage.cost_usd, usage.tokens, usage.steps), (Some(1.5), Some(110.0), Some(4.0)));
        assert_eq!(report.trials.len(), 4, "every finished trial is listed");
        assert!(report.trials[2].stats.is_none());
    }

    #[test]
    fn a_trial_keeps_its_answer_and_the_end_of_its_verifier_output() {
        let jobs = tempfile::tempdir().unwrap();
        let trial_dir = jobs.path().join("j/trials/t__a1");
        std::fs::create_dir_all(trial_dir.join("agent")).unwrap();
        std::fs::create_dir_all(trial_dir.join(VERIFIER_DIR)).unwrap();
        std::fs::write(trial_dir.join(ANSWER_COPY), "é".repeat(ANSWER_CHARS + 2)).unwrap();
        let stdout: String = (1..=VERIFIER_LINES + 5).map(|n| format!("line {n}\n")).collect();
        std::fs::write(trial_dir.join(VERIFIER_DIR).join("test-stdout.txt"), stdout).unwrap();
        std::fs::create_dir_all(trial_dir.join(SERVICES_DIR)).unwrap();
        for file in ["web.log", "db.log", "notes.txt"] {
            std::fs::write(trial_dir.join(SERVICES_DIR).join(file), "x\n").unwrap();
        }

        let mut input = job(&[TrialStatus::Failed], |_| None);
        input.dir = jobs.path().join("j");
        let report = build(&[input], false);
        let trial = &report.trials[0];
        assert_eq!(trial.path, trial_dir.to_string_lossy());
        assert_eq!(trial.answer.as_deref(), Some(format!("{}\n[2 more characters]", "é".repeat(ANSWER_CHARS)).as_str()));
        let output = trial.verifier_output.as_ref().expect("the tests' output");
        assert!(
            output.stdout.starts_with("[5 earlier lines]\nline 6\n") && output.stdout.ends_with(&format!("line {}", VERIFIER_LINES + 5)),
            "{}",
            output.stdout
        );
        assert_eq!(output.stderr, "");
        assert_eq!(trial.service_logs, ["db", "web"], "every service's log, nothing else");

        let report = build(&[job(&[TrialStatus::InfraError], |_| None)], false);
        assert!(report.trials[0].answer.is_none() && report.trials[0].verifier_output.is_none(), "nothing to read");
    }

    /// A job of the `oracle` agent with one attempt per task, rewarded as given.
    fn oracle_job(id: &str, rewards: &[(&str, f64)]) -> JobInput {
        let trials = rewards
            .iter()
            .map(|(task, reward)| {
                let mut t = TrialRecord::starting(id, task, 1, 1).with_ids(format!("{id}-{task}"), task).task_digest("digest").agent("oracle");
                t.status = Some(if *reward >= 1.0 { TrialStatus::Passed } else { TrialStatus::Failed });
                t.reward = Some(*reward);
                t
            })
            .collect();
        let job = JobRecord { state: prodbench_store::JobState::Finished, ..JobRecord::new(id, serde_json::json!({"agent": "oracle"})) };
        JobInput::new(job, trials, PathBuf::from("jobs").join(id))
    }

    #[test]
    fn a_job_given_twice_counts_once() {
        let j1 = || oracle_job("j1", &[("a", 1.0), ("b", 0.0)]);
        let report = build(&[j1(), j1(), oracle_job("j2", &[("a", 0.0)])], false);
        let row = &report.rows[0];
        assert_eq!(row.jobs, ["j1", "j2"]);
        // a: 100 (j1) and 0 (j2); b: 0. j1's trials once, not twice.
        assert_eq!((row.tasks, row.trials, report.trials.len()), (2, 3, 3));
        assert_eq!(row.task_scores["a"], 50.0);
    }

    #[test]
    fn a_comparison_by_hand() {
        let inputs = [oracle_job("base", &[("a", 0.0), ("b", 0.0), ("c", 0.0)]), oracle_job("new", &[("a", 1.0), ("b", 0.0), ("c", 1.0)])];
        let report = build(&inputs, true);
        let d = &report.comparisons[0].difference;
        // Differences 100, 0, 100: mean 66.667, s = 57.735, s/sqrt(3) = 33.333;
        // 66.667 ± 4.302653 · 33.333 = [-76.755, 210.088], clipped to [-76.755, 100].
        assert!((d.mean_difference - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!((d.wins, d.losses, d.ties), (2, 0, 1));
        let t = d.t.unwrap();
        assert!((t.low - -76.755091).abs() < 1e-5 && t.high == 100.0, "{t:?}");
        // Three zeros are drawn with probability 1/27 = 3.7% > 2.5%, three 100s with 8/27.
        let boot = d.bootstrap.unwrap();
        assert_eq!((boot.low, boot.high), (0.0, 100.0));
    }
}
