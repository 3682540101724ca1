//! The `replay` agent: re-executes a recorded trajectory's tool calls in a fresh
//! environment.
//!
//! Two uses. Re-checking a result: replay a passing trial's actions and the verifier must
//! pass again, without a model (so without its cost or nondeterminism). And turning a
//! trajectory into a regression test for a task: a replay that once passed must keep
//! passing as the task's environment evolves, and one that failed must keep failing.
//!
//! It replays the built-in agent's tools (`bash`, `read_file`, `write_file`, `edit_file`,
//! `search`, `submit`) through the same [`Toolbox`], so the shell session behaves as it did.
//! A recording of the built-in agent is replayed call for call, its malformed calls
//! included (they get the same error back); from another agent's recording, calls to tools
//! of other names are skipped and listed. Each replayed step is recorded in the new
//! trajectory with the new observations, and every observation that differs from the
//! recording is listed in `agent/replay.txt`: where a replay diverges is usually the
//! finding.
//!
//! `--agent-arg trajectory=PATH` names the recording: a `trajectory.json`, a trial
//! directory, or a job directory (then the first trial of the same task that has one).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use prodbench_trajectory::{AgentInfo, Observation, ObservationResult, Recorder, Step, StepSource, TRAJECTORY_FILE, Trajectory};
use serde_json::json;

use crate::builtin::tools::{RAW_ARGUMENTS, ToolOutcome, Toolbox};
use crate::{Agent, AgentContext, AgentError, AgentOptions, AgentOutcome};

const REPLAYABLE: &[&str] = &["bash", "read_file", "write_file", "edit_file", "search", "submit"];

pub struct ReplayAgent {
    source: PathBuf,
}

impl ReplayAgent {
    pub fn from_options(options: &AgentOptions) -> Result<Self, String> {
        let source = options
            .args
            .get("trajectory")
            .ok_or("the replay agent needs --agent-arg trajectory=PATH (a trajectory.json, a trial directory or a job directory)")?;
        if let Some(other) = options.args.keys().find(|k| *k != "trajectory") {
            return Err(format!("the replay agent takes only --agent-arg trajectory=PATH (got {other:?})"));
        }
        let source = PathBuf::from(source);
        if !source.exists() {
            return Err(format!("--agent-arg trajectory={}: no such file or directory", source.display()));
        }
        Ok(ReplayAgent { source })
    }

    /// The recording for `task`, found from the configured path.
    fn recording_for(&self, task: &str) -> Result<PathBuf, AgentError> {
        let direct = [self.source.clone(), self.source.join(TRAJECTORY_FILE), self.source.join("agent").join(TRAJECTORY_FILE)];
        if let Some(path) = direct.into_iter().find(|p| p.is_file()) {
            return Ok(path);
        }
        find_in_job(&self.source, task).ok_or_else(|| AgentError::Failed(format!("{} holds no trajectory for task {task:?}", self.source.display())))
    }
}

/// The trajectory of the first trial of `task` in a job directory, by trial directory name.
fn find_in_job(job_dir: &Path, task: &str) -> Option<PathBuf> {
    let safe: String = task.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let mut trials: Vec<PathBuf> = std::fs::read_dir(job_dir.join("trials")).ok()?.flatten().map(|e| e.path()).collect();
    trials.sort();
    trials
        .into_iter()
        .filter(|dir| dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{safe}__"))))
        .map(|dir| dir.join("agent").join(TRAJECTORY_FILE))
        .find(|path| path.is_file())
}

#[async_trait]
impl Agent for ReplayAgent {
    fn name(&self) -> &str {
        "replay"
    }

    async fn setup(&self, _ctx: &AgentContext<'_>) -> Result<(), AgentError> {
        Ok(())
    }

    async fn run(&self, ctx: &AgentContext<'_>) -> Result<AgentOutcome, AgentError> {
        let path = self.recording_for(&ctx.task.name)?;
        let recording = prodbench_trajectory::load(&path).map_err(AgentError::Failed)?;
        let info = AgentInfo {
            name: "replay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            model_name: None,
            extra: json!({"replayed": path.display().to_string(), "original_agent": recording.agent.name}).as_object().cloned().unwrap_or_default(),
        };
        let io = |e: std::io::Error| AgentError::Infrastructure(format!("writing {}: {e}", ctx.logs_dir.display()));
        let mut recorder = Recorder::create(&ctx.logs_dir.join(TRAJECTORY_FILE), ctx.trial_id, info).map_err(io)?;
        let toolbox = Toolbox::builtin_only(ctx.sandbox, ctx.task.config.agent.user.clone());
        let report = tokio::time::timeout(ctx.timeout, replay(&recording, &toolbox, &mut recorder)).await.map_err(|_| AgentError::timed_out(ctx.timeout))??;
        std::fs::write(ctx.logs_dir.join("replay.txt"), report.text(&path)).map_err(io)?;
        Ok(AgentOutcome { summary: report.summary() })
    }
}

#[derive(Default)]
struct ReplayReport {
    replayed: usize,
    skipped: Vec<String>,
    diverged: Vec<String>,
    submitted: bool,
}

impl ReplayReport {
    fn summary(&self) -> String {
        format!(
            "replayed {} tool calls ({} skipped, {} observations differ){}",
            self.replayed,
            self.skipped.len(),
            self.diverged.len(),
            if self.submitted { ", submitted" } else { "" }
        )
    }

    fn text(&self, source: &Path) -> String {
        let mut text = format!("replay of {}\n{}\n", source.display(), self.summary());
        for line in self.skipped.iter().map(|s| format!("skipped: {s}")).chain(self.diverged.iter().map(|d| format!("differs: {d}"))) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}

async fn replay(recording: &Trajectory, toolbox: &Toolbox<'_>, recorder: &mut Recorder) -> Result<ReplayReport, AgentError> {
    let io = |e: std::io::Error| AgentError::Infrastructure(format!("writing the replay trajectory: {e}"));
    let mut report = ReplayReport::default();
    let every_call = matches!(recording.agent.name.as_str(), "prodbench" | "replay");
    for original in recording.steps.iter().filter(|s| s.source == StepSource::Agent && !s.tool_calls.is_empty()) {
        let mut step = Step::new(StepSource::Agent, original.message.clone());
        step.extra.insert("replayed_step".into(), json!(original.step_id));
        let mut results = Vec::new();
        for call in &original.tool_calls {
            if !every_call && !REPLAYABLE.contains(&call.function_name.as_str()) {
                report.skipped.push(format!("step {} {} (not a built-in tool)", original.step_id, call.function_name));
                continue;
            }
            step.tool_calls.push(call.clone());
            let content = match toolbox.call(&call.function_name, &as_written(&call.arguments)).await? {
                ToolOutcome::Result { content, .. } | ToolOutcome::FormatError(content) => content,
                ToolOutcome::Submitted { .. } => {
                    report.submitted = true;
                    "submitted".to_string()
                }
            };
            report.replayed += 1;
            if recorded_content(original, &call.tool_call_id).is_some_and(|recorded| recorded != content) {
                report.diverged.push(format!("step {} {} {}", original.step_id, call.function_name, call.arguments));
            }
            results.push(ObservationResult { source_call_id: Some(call.tool_call_id.clone()), content: Some(content) });
        }
        step.observation = Some(Observation { results });
        recorder.push(step).map_err(io)?;
        if report.submitted {
            break;
        }
    }
    Ok(report)
}

/// The arguments as the model wrote them: arguments that were not a JSON object are
/// recorded as `{"_raw": TEXT}`.
fn as_written(arguments: &serde_json::Value) -> String {
    match arguments.as_object().and_then(|o| o.get(RAW_ARGUMENTS).filter(|_| o.len() == 1)).and_then(|raw| raw.as_str()) {
        Some(raw) => raw.to_string(),
        None => arguments.to_string(),
    }
}

fn recorded_content<'t>(step: &'t Step, call_id: &str) -> Option<&'t str> {
    step.observation.as_ref()?.results.iter().find(|r| r.source_call_id.as_deref() == Some(call_id))?.content.as_deref()
}
