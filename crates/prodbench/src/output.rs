//! Terminal output: aligned tables, the live progress display, JSON on stdout.
//!
//! Data goes to stdout (tables, JSON); progress, warnings and errors go to stderr, so
//! `prodbench run ... --json | jq` sees only JSON.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prodbench_run::{JobSummary, Reporter};
use prodbench_store::{TrialRecord, TrialStatus};
use serde::Serialize;

/// Version of every `--json` document; fields are only ever added.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// A `--json` document: the value with its format version and kind.
pub fn json_document(kind: &str, value: &impl Serialize) -> serde_json::Value {
    let mut doc = serde_json::to_value(value).expect("serializable");
    if let Some(object) = doc.as_object_mut() {
        object.insert("format_version".into(), JSON_FORMAT_VERSION.into());
        object.insert("kind".into(), kind.into());
    }
    doc
}

/// Prints a JSON document with its format version on stdout.
pub fn print_json(kind: &str, value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(&json_document(kind, value)).expect("serializable"));
}

/// Renders rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

pub fn format_reward(reward: Option<f64>) -> String {
    reward.map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into())
}

/// The end-of-job table: per task, trials, mean reward, passes, errors.
pub fn summary_table(summary: &JobSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .tasks
        .iter()
        .map(|t| {
            let count = |s: &str| t.statuses.get(s).copied().unwrap_or(0);
            let errors = count("infra_error") + count("verifier_error") + count("agent_error") + count("agent_limit");
            vec![
                t.task.clone(),
                t.statuses.values().sum::<usize>().to_string(),
                format_reward(t.mean_reward),
                t.passed.to_string(),
                errors.to_string(),
                status_counts(&t.statuses),
            ]
        })
        .collect();
    let mut out = table(&["TASK", "TRIALS", "MEAN REWARD", "PASSED", "ERRORS", "STATUSES"], &rows);
    out.push_str(&format!(
        "\n{} trials, {} scored, {} passed, mean reward {}",
        summary.trials,
        summary.scored,
        summary.passed,
        format_reward(summary.mean_reward)
    ));
    let count = |status: TrialStatus| summary.statuses.get(status.as_str()).copied().unwrap_or(0);
    if count(TrialStatus::InfraError) > 0 {
        out.push_str(&format!(", {} infra errors (not scored)", count(TrialStatus::InfraError)));
    }
    if count(TrialStatus::VerifierError) > 0 {
        out.push_str(&format!(", {} verifier errors (scored as 0)", count(TrialStatus::VerifierError)));
    }
    if summary.judge_failures > 0 {
        out.push_str(&format!(", {} criteria ungraded because the judge failed (see judge/errors.txt in the trials)", summary.judge_failures));
    }
    if summary.unfinished > 0 {
        out.push_str(&format!(", {} unfinished", summary.unfinished));
    }
    out.push('\n');
    out
}

fn status_counts(statuses: &std::collections::BTreeMap<String, usize>) -> String {
    statuses.iter().map(|(s, n)| format!("{s}={n}")).collect::<Vec<_>>().join(" ")
}

/// Live progress on stderr: a bar with done/total and ETA, and a message with running,
/// failed and the mean reward so far. Hidden when stderr is not a terminal or with --json.
pub struct Progress {
    bar: ProgressBar,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    running: usize,
    failed: usize,
    errors: usize,
    reward_sum: f64,
    scored: usize,
}

impl Progress {
    pub fn new(visible: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if visible && std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} done  {msg}  eta {eta}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar, state: Mutex::new(ProgressState::default()) }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn refresh(&self, state: &ProgressState) {
        let mean = if state.scored > 0 { format!("{:.3}", state.reward_sum / state.scored as f64) } else { "-".into() };
        self.bar.set_message(format!("running {}  failed {}  errors {}  mean reward {mean}", state.running, state.failed, state.errors));
    }
}

impl Reporter for Progress {
    fn job_started(&self, job_id: &str, pending: usize, done: usize) {
        self.bar.set_length(pending as u64);
        self.bar.println(format!("job {job_id}: {pending} trials to run{}", if done > 0 { format!(", {done} already done") } else { String::new() }));
    }

    fn trial_started(&self, _trial: &TrialRecord) {
        let mut state = self.state.lock().expect("progress lock");
        state.running += 1;
        self.refresh(&state);
    }

    fn trial_finished(&self, trial: &TrialRecord, retrying: bool) {
        let mut state = self.state.lock().expect("progress lock");
        state.running -= 1;
        let status = trial.status.unwrap_or(TrialStatus::Interrupted);
        if retrying {
            self.bar.println(format!("retrying {} after an infrastructure error: {}", trial.task_name, first_line(trial.error.as_deref())));
        } else {
            self.bar.inc(1);
            match status {
                TrialStatus::Passed => {}
                TrialStatus::InfraError | TrialStatus::VerifierError => state.errors += 1,
                _ => state.failed += 1,
            }
            if let Some(reward) = trial.scored_reward() {
                state.reward_sum += reward;
                state.scored += 1;
            }
            if matches!(status, TrialStatus::InfraError | TrialStatus::VerifierError | TrialStatus::AgentError) {
                self.bar.println(format!("{} {}: {}", status.as_str(), trial.task_name, first_line(trial.error.as_deref())));
            }
        }
        self.refresh(&state);
    }
}

pub fn first_line(text: Option<&str>) -> String {
    text.and_then(|t| t.lines().next()).unwrap_or_default().chars().take(160).collect()
}
