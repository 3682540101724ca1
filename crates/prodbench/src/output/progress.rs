//! The live display of a running job, fed by `prodbench_run::Reporter` callbacks.
//!
//! On a terminal it is a bar with done/total, ETA and running/failed/errors/score;
//! where nothing redraws (a CI log, a pipe) the same events are one plain line each, so a
//! log shows the job id at the start and every finished trial as it finishes.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prodbench_run::Reporter;
use prodbench_store::{Outcome, TrialRecord, TrialStatus};

use super::table::{first_line, format_reward, format_score};

/// How the events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bar,
    Lines,
    Hidden,
}

pub struct Progress {
    style: Style,
    bar: ProgressBar,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    running: usize,
    failed: usize,
    errors: usize,
    score_sum: f64,
    scored: usize,
    finished: usize,
}

impl Progress {
    pub(super) fn new(style: Style) -> Self {
        let target = if style == Style::Bar { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} done  {msg}  eta {eta}").expect("valid template"));
        if style == Style::Bar {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { style, bar, state: Mutex::new(ProgressState::default()) }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// A line above the bar, or on its own where there is no bar.
    fn println(&self, line: String) {
        match self.style {
            Style::Bar => self.bar.println(line),
            Style::Lines => super::write_err(format_args!("{line}\n")),
            Style::Hidden => {}
        }
    }

    fn refresh(&self, state: &ProgressState) {
        let score = (state.scored > 0).then(|| 100.0 * state.score_sum / state.scored as f64);
        self.bar.set_message(format!("running {}  failed {}  errors {}  score {}", state.running, state.failed, state.errors, format_score(score)));
    }

    fn count_finished(&self, state: &mut ProgressState, trial: &TrialRecord) {
        self.bar.inc(1);
        state.finished += 1;
        let status = trial.status.unwrap_or(TrialStatus::Interrupted);
        if status.is_error() {
            state.errors += 1;
        } else if trial.passed() == Some(false) {
            state.failed += 1;
        }
        if let Some(score) = trial.score() {
            state.score_sum += score;
            state.scored += 1;
        }
    }

    /// `[3/10] passed  my-task (attempt 2)  reward 1.000  12.3s`, plus the error's first line.
    fn finished_line(&self, state: &ProgressState, trial: &TrialRecord) -> String {
        let status = trial.outcome().map_or("unfinished", Outcome::as_str);
        let seconds: u64 = trial.phases.iter().map(|p| p.duration_ms).sum();
        let mut line = format!(
            "[{}/{}] {status:<14} {} (attempt {})  reward {}  {:.1}s",
            state.finished,
            self.bar.length().unwrap_or(0),
            trial.task_name,
            trial.attempt,
            format_reward(trial.reward),
            seconds as f64 / 1000.0
        );
        if let Some(error) = trial.error.as_deref().filter(|_| trial.status != Some(TrialStatus::Passed)) {
            line.push_str(&format!(": {}", first_line(Some(error))));
        }
        line
    }
}

impl Reporter for Progress {
    fn job_started(&self, job_id: &str, pending: usize, done: usize) {
        self.bar.set_length(pending as u64);
        self.println(format!("job {job_id}: {pending} trials to run{}", if done > 0 { format!(", {done} already done") } else { String::new() }));
    }

    fn trial_started(&self, _trial: &TrialRecord) {
        let mut state = self.state.lock().expect("progress lock");
        state.running += 1;
        self.refresh(&state);
    }

    fn trial_finished(&self, trial: &TrialRecord, retrying: bool) {
        let mut state = self.state.lock().expect("progress lock");
        state.running -= 1;
        if retrying {
            self.println(format!("retrying {} after an infrastructure error: {}", trial.task_name, first_line(trial.error.as_deref())));
        } else {
            self.count_finished(&mut state, trial);
            let status = trial.status.unwrap_or(TrialStatus::Interrupted);
            if self.style == Style::Lines {
                self.println(self.finished_line(&state, trial));
            } else if status.is_error() || status == TrialStatus::AgentError {
                self.println(format!("{} {}: {}", status.as_str(), trial.task_name, first_line(trial.error.as_deref())));
            }
        }
        self.refresh(&state);
    }
}
