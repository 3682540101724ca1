//! Installed CLI agents: Claude Code, Codex, mini-swe-agent, or any command, installed and
//! run inside the trial's sandbox.
//!
//! These agents act through tools of their own (shells, editors), so they must run where the
//! task's files and programs are; prodbench installs them, starts them and reads back what
//! they leave. One machinery serves all of them. An adapter (one module per agent) turns the
//! command line's settings into a [`Plan`]: an install script, a command line, its
//! environment, the files the agent writes and the format of its log. [`InstalledAgent`]
//! carries out any plan the same way:
//!
//! - `setup` (before the agent's clock) creates `/logs/agent` (writable by every user) and
//!   [`BIN_DIR`], then runs the install script with bash as root; its output goes to
//!   `agent/<name>-install.txt`. A failed install is [`AgentError::Failed`] with the tail of
//!   that log, not `Infrastructure`: nothing in the log tells a registry or network outage
//!   from a bad version pin or a broken `install=` script, and retrying the latter as
//!   infrastructure would only spend the job's retry budget.
//! - `run` writes the instruction to [`INSTRUCTION_PATH`] and runs the command with bash in
//!   the workdir, as the task's `[agent] user`, under the agent timeout, with [`BIN_DIR`] first
//!   on `PATH`. Its stdout and stderr go to `agent/<name>.txt`, the files the agent writes
//!   are downloaded next to it, and its log is converted to `agent/trajectory.json`
//!   ([`atif`]). A log that cannot be converted is kept as it is and the problem noted in
//!   `agent/<name>.txt`: it never fails the trial.
//! - The API key reaches the agent only through its environment, never its command line,
//!   and every file under `agent/` is scrubbed of it (`[redacted]`) before `run` returns.
//!
//! Of the limits only wall time applies (`--max-agent-time`, the task's timeout): the CLIs
//! make their own model calls, so turns, tokens and cost are theirs to count.

pub mod atif;
mod claude_code;
mod codex;
mod command;
mod install;
mod logs;
mod mini_swe_agent;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prodbench_llm::Protocol;
use prodbench_sandbox::{ExecOutput, ExecRequest};

use crate::{Agent, AgentContext, AgentError, AgentOptions, AgentOutcome};
use atif::LogFormat;

/// Where installed agents live in the sandbox (writable in every backend).
pub const AGENT_DIR: &str = "/tmp/prodbench-agent";
/// Put first on the agent's `PATH`. An adapter links only its CLI here, so the agent's own
/// runtime (a venv's `python3`, say) never shadows the task's.
pub const BIN_DIR: &str = "/tmp/prodbench-agent/bin";
/// The task's instruction, as the agent's command reads it.
pub const INSTRUCTION_PATH: &str = "/logs/agent/instruction.txt";
/// Where agents write their own logs inside the sandbox.
const SANDBOX_LOGS: &str = "/logs/agent";
/// Time an install may take, within the harness's 10 minutes for the setup phase, so that a
/// stuck install still leaves its log.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(540);
/// Bytes kept of each of the agent's stdout and stderr: a long session's stream-json runs
/// to megabytes, and its end (the totals) matters most.
const OUTPUT_CAP: usize = 64 << 20;
/// Sent as the API key to CLIs that refuse to start without one, when the model needs none
/// (a local server).
const NO_KEY: &str = "prodbench-no-key";

/// The installed agent called `name`, if there is one.
pub fn build(name: &str, options: &AgentOptions) -> Option<Result<Arc<dyn Agent>, String>> {
    let adapter = ADAPTERS.iter().find(|a| a.name == name)?;
    Some(InstalledAgent::new(adapter, options).map(|agent| Arc::new(agent) as Arc<dyn Agent>))
}

/// One kind of installed agent: its name, the `--agent-arg`s it takes, and how its settings
/// become a plan.
struct Adapter {
    name: &'static str,
    args: &'static [&'static str],
    plan: fn(&Settings) -> Result<Plan, String>,
}

const ADAPTERS: &[Adapter] = &[claude_code::ADAPTER, codex::ADAPTER, mini_swe_agent::ADAPTER, command::ADAPTER];

/// What an adapter is given: the model (if any) and the `--agent-arg`s.
struct Settings<'a> {
    name: &'static str,
    model: Option<ModelSettings>,
    args: &'a BTreeMap<String, String>,
}

impl Settings<'_> {
    fn arg(&self, key: &str) -> Option<&str> {
        self.args.get(key).map(String::as_str)
    }

    /// The model, which every CLI agent needs.
    fn model(&self) -> Result<&ModelSettings, String> {
        self.model.as_ref().ok_or_else(|| {
            format!(
                "{} needs a model: pass --model NAME (with --model-protocol and --model-base-url for a server other than the protocol's default)",
                self.name
            )
        })
    }

    fn version(&self) -> Result<Option<&str>, String> {
        match self.arg("version") {
            Some(v) if v.trim().is_empty() => Err("--agent-arg version= needs a version, e.g. version=1.2.3".into()),
            other => Ok(other),
        }
    }
}

/// The model settings a CLI needs, from the job's model client.
#[derive(Debug, Clone)]
struct ModelSettings {
    protocol: Protocol,
    name: String,
    /// Without a trailing `/`.
    base_url: String,
    api_key: Option<String>,
}

impl ModelSettings {
    fn from_options(options: &AgentOptions) -> Option<ModelSettings> {
        let config = options.model.as_ref()?.config();
        Some(ModelSettings {
            protocol: config.protocol,
            name: config.model.clone(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_key: config.api_key.as_ref().map(|k| k.expose().to_string()).filter(|k| !k.is_empty()),
        })
    }

    /// The key, or a placeholder for CLIs that insist on one.
    fn key_or_placeholder(&self) -> String {
        self.api_key.clone().unwrap_or_else(|| NO_KEY.to_string())
    }

    /// The base URL without its `/v1`: Anthropic clients append `/v1/messages` themselves.
    fn root_url(&self) -> &str {
        self.base_url.strip_suffix("/v1").unwrap_or(&self.base_url)
    }
}

/// Everything an installed agent does, decided when it is built.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// Bash script run as root in `setup`; `None` installs nothing.
    install: Option<String>,
    /// The agent's command line, run with bash in the workdir.
    command: Vec<Arg>,
    /// The command's environment (where the API key goes).
    env: BTreeMap<String, String>,
    /// An environment variable that also carries the instruction.
    instruction_var: Option<&'static str>,
    /// Directories the command needs and does not create itself, made (by the agent's user)
    /// before it runs.
    dirs: Vec<String>,
    /// Files or directories the agent writes in the sandbox, and their names under `agent/`.
    logs: Vec<(String, String)>,
    /// The log to convert to ATIF, and its format.
    trajectory: Option<(LogFormat, LogSource)>,
}

/// One word of a command line.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Literal(String),
    /// The instruction, read from [`INSTRUCTION_PATH`] when the command runs.
    Instruction,
}

fn lit(text: impl Into<String>) -> Arg {
    Arg::Literal(text.into())
}

/// Where the log to convert comes from.
#[derive(Debug, Clone, PartialEq)]
enum LogSource {
    Stdout,
    /// A file of [`Plan::logs`], by its name under `agent/`.
    Downloaded(String),
}

impl Plan {
    /// The command as bash runs it, after making its directories, with standard input
    /// closed (some CLIs wait for it).
    fn command_line(&self) -> String {
        let words: Vec<String> = self
            .command
            .iter()
            .map(|arg| match arg {
                Arg::Literal(text) => quote(text),
                Arg::Instruction => format!("\"$(cat {INSTRUCTION_PATH})\""),
            })
            .collect();
        let mkdir =
            if self.dirs.is_empty() { String::new() } else { format!("mkdir -p {} && ", self.dirs.iter().map(|d| quote(d)).collect::<Vec<_>>().join(" ")) };
        format!("{mkdir}exec {} </dev/null", words.join(" "))
    }
}

/// `text` as one shell word.
fn quote(text: &str) -> String {
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

/// `script` with [`BIN_DIR`] first on `PATH`.
fn with_agent_path(script: &str) -> String {
    format!("export PATH={BIN_DIR}:\"$PATH\"\n{script}")
}

/// An agent installed and run in the sandbox by a [`Plan`].
pub struct InstalledAgent {
    name: &'static str,
    plan: Plan,
    /// Scrubbed from every log.
    secret: Option<String>,
    max_wall_time: Option<Duration>,
    /// For the trajectory's agent record.
    model: Option<String>,
    version: Option<String>,
}

impl InstalledAgent {
    fn new(adapter: &Adapter, options: &AgentOptions) -> Result<Self, String> {
        if let Some(unknown) = options.args.keys().find(|k| !adapter.args.contains(&k.as_str())) {
            return Err(format!("{} takes no --agent-arg {unknown:?}; it takes {}", adapter.name, adapter.args.join(", ")));
        }
        let settings = Settings { name: adapter.name, model: ModelSettings::from_options(options), args: &options.args };
        let mut plan = (adapter.plan)(&settings)?;
        if let Some(script) = settings.arg("install") {
            plan.install = Some(script.to_string());
        }
        let version = settings.arg("version").map(String::from);
        let model = settings.model.as_ref().map(|m| m.name.clone());
        let secret = settings.model.and_then(|m| m.api_key);
        Ok(InstalledAgent { name: adapter.name, plan, secret, max_wall_time: options.limits.max_wall_time, model, version })
    }

    fn time_limit(&self, ctx: &AgentContext<'_>) -> Duration {
        self.max_wall_time.map_or(ctx.timeout, |own| own.min(ctx.timeout))
    }

    fn log_dir(&self, ctx: &AgentContext<'_>) -> logs::Logs {
        logs::Logs::new(ctx.logs_dir, self.secret.clone())
    }

    async fn install(&self, ctx: &AgentContext<'_>, script: &str) -> Result<(), AgentError> {
        let request = bash(&with_agent_path(script)).user(Some("root".into())).timeout(INSTALL_TIMEOUT);
        let output = ctx.sandbox.exec(request).await?;
        let log_dir = self.log_dir(ctx);
        let log_name = format!("{}-install.txt", self.name);
        log_dir.write(&log_name, &logs::command_log(script, &output))?;
        if output.success() {
            return Ok(());
        }
        let tail = logs::tail(if output.stderr.trim().is_empty() { &output.stdout } else { &output.stderr }, 20);
        Err(AgentError::Failed(log_dir.scrub(&format!("installing {} failed ({}); the end of agent/{log_name}:\n{tail}", self.name, logs::status(&output)))))
    }

    async fn run_command(&self, ctx: &AgentContext<'_>, limit: Duration) -> Result<ExecOutput, AgentError> {
        let mut env = self.plan.env.clone();
        if let Some(var) = self.plan.instruction_var {
            env.insert(var.to_string(), ctx.task.instruction.clone());
        }
        let mut request =
            bash(&with_agent_path(&self.plan.command_line())).envs(&env).cwd(ctx.sandbox.workdir()).user(ctx.task.config.agent.user.clone()).timeout(limit);
        request.output_cap = OUTPUT_CAP;
        Ok(ctx.sandbox.exec(request).await?)
    }

    /// The ATIF trajectory from the agent's log, or why there is none.
    fn convert(&self, ctx: &AgentContext<'_>, log_dir: &logs::Logs, stdout: &str) -> Result<usize, String> {
        let Some((format, source)) = &self.plan.trajectory else { return Err("this agent writes no log to convert".into()) };
        let text = match source {
            LogSource::Stdout => log_dir.scrub(stdout),
            LogSource::Downloaded(name) => log_dir.read(name)?,
        };
        let context = atif::Context {
            session_id: ctx.trial_id,
            agent: self.name,
            version: self.version.as_deref(),
            model: self.model.as_deref(),
            instruction: &ctx.task.instruction,
        };
        let trajectory = atif::convert(*format, &text, &context)?;
        let json = serde_json::to_string_pretty(&trajectory).map_err(|e| e.to_string())?;
        log_dir.write(prodbench_trajectory::TRAJECTORY_FILE, &json).map_err(|e| e.to_string())?;
        Ok(trajectory.steps.len())
    }
}

/// `bash -c SCRIPT`.
fn bash(script: &str) -> ExecRequest {
    ExecRequest { argv: vec!["/bin/bash".into(), "-c".into(), script.into()], ..ExecRequest::shell("") }
}

#[async_trait]
impl Agent for InstalledAgent {
    fn name(&self) -> &str {
        self.name
    }

    async fn setup(&self, ctx: &AgentContext<'_>) -> Result<(), AgentError> {
        let prepare = format!("mkdir -p {SANDBOX_LOGS} {BIN_DIR} && chmod 777 {SANDBOX_LOGS}");
        let output = ctx.sandbox.exec(ExecRequest::shell(prepare).user(Some("root".into()))).await?;
        if !output.success() {
            return Err(AgentError::Failed(format!("preparing {SANDBOX_LOGS} and {BIN_DIR} failed: {}", output.summary())));
        }
        match &self.plan.install {
            Some(script) => self.install(ctx, script).await,
            None => Ok(()),
        }
    }

    async fn run(&self, ctx: &AgentContext<'_>) -> Result<AgentOutcome, AgentError> {
        let log_dir = self.log_dir(ctx);
        logs::upload_text(ctx.sandbox, &ctx.task.instruction, INSTRUCTION_PATH).await?;
        let limit = self.time_limit(ctx);
        let output = self.run_command(ctx, limit).await?;
        let log_name = format!("{}.txt", self.name);
        let log = logs::command_log(&self.plan.command_line(), &output);
        log_dir.write(&log_name, &log)?;
        let downloaded = logs::download(ctx.sandbox, &log_dir, &self.plan.logs).await;
        let trajectory = self.convert(ctx, &log_dir, &output.stdout);
        if let Err(problem) = &trajectory {
            log_dir.write(&log_name, &format!("{log}--- no trajectory: {problem}\n"))?;
        }
        log_dir.scrub_all()?;
        downloaded?;
        outcome(self.name, &output, limit, &trajectory).map_err(|e| match e {
            AgentError::Failed(message) => AgentError::Failed(log_dir.scrub(&message)),
            other => other,
        })
    }
}

/// How the run ended, from the command's exit.
fn outcome(name: &str, output: &ExecOutput, limit: Duration, trajectory: &Result<usize, String>) -> Result<AgentOutcome, AgentError> {
    if output.timed_out {
        return Err(AgentError::timed_out(limit));
    }
    if !output.success() {
        return Err(AgentError::Failed(format!("{name} failed: {}", output.summary())));
    }
    let steps = match trajectory {
        Ok(steps) => format!("trajectory of {steps} steps"),
        Err(_) => "no trajectory".to_string(),
    };
    Ok(AgentOutcome { summary: format!("{name} exited 0 ({steps})") })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use prodbench_llm::{ApiKey, Client, ModelConfig};

    fn model(protocol: Protocol, base_url: &str) -> Arc<Client> {
        let mut config = ModelConfig::new(protocol, "test-model", base_url);
        config.api_key = Some(ApiKey::new("sk-secret"));
        Arc::new(Client::new(config))
    }

    fn options(name: &str, model: Option<Arc<Client>>, args: &[(&str, &str)]) -> AgentOptions {
        let args = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AgentOptions { name: name.into(), model, args, ..Default::default() }
    }

    /// An adapter's settings with the test model ("test-model", key "sk-secret").
    pub(super) fn settings(name: &'static str, protocol: Protocol, base_url: &str, args: &[(&str, &str)]) -> Settings<'static> {
        let options = Box::leak(Box::new(options(name, Some(model(protocol, base_url)), args)));
        Settings { name, model: ModelSettings::from_options(options), args: &options.args }
    }

    pub(super) fn settings_without_model(name: &'static str, args: &[(&str, &str)]) -> Settings<'static> {
        let options = Box::leak(Box::new(options(name, None, args)));
        Settings { name, model: None, args: &options.args }
    }

    /// The plan's command line, the instruction shown as `<instruction>`.
    pub(super) fn argv(plan: &Plan) -> Vec<String> {
        plan.command
            .iter()
            .map(|arg| match arg {
                Arg::Literal(text) => text.clone(),
                Arg::Instruction => "<instruction>".into(),
            })
            .collect()
    }

    fn built(name: &str, model: Option<Arc<Client>>, args: &[(&str, &str)]) -> Result<InstalledAgent, String> {
        let adapter = ADAPTERS.iter().find(|a| a.name == name).unwrap();
        InstalledAgent::new(adapter, &options(name, model, args))
    }

    #[test]
    fn the_four_agents_are_built_by_name() {
        let anthropic = || Some(model(Protocol::Anthropic, "https://api.anthropic.com/v1"));
        let openai = || Some(model(Protocol::OpenAi, "https://api.openai.com/v1"));
        assert!(build("claude-code", &options("claude-code", anthropic(), &[])).unwrap().is_ok());
        assert!(build("codex", &options("codex", openai(), &[])).unwrap().is_ok());
        assert!(build("mini-swe-agent", &options("mini-swe-agent", openai(), &[])).unwrap().is_ok());
        assert!(build("command", &options("command", None, &[("command", "true")])).unwrap().is_ok());
        assert!(build("aider", &options("aider", None, &[])).is_none());
    }

    #[test]
    fn unknown_agent_args_are_rejected_with_the_accepted_ones() {
        let error = built("codex", Some(model(Protocol::OpenAi, "http://127.0.0.1:1/v1")), &[("colour", "red")]).err().unwrap();
        assert_eq!(error, "codex takes no --agent-arg \"colour\"; it takes version, install");
        let error = built("command", None, &[("command", "x"), ("version", "1")]).err().unwrap();
        assert_eq!(error, "command takes no --agent-arg \"version\"; it takes command, install, log_format, log_path");
    }

    #[test]
    fn cli_agents_need_a_model() {
        for name in ["claude-code", "codex", "mini-swe-agent"] {
            let error = built(name, None, &[]).err().unwrap();
            assert!(error.starts_with(&format!("{name} needs a model: pass --model NAME")), "{error}");
        }
        assert!(built("claude-code", Some(model(Protocol::Anthropic, "http://h/v1")), &[("version", " ")]).err().unwrap().contains("needs a version"));
    }

    #[test]
    fn an_install_script_replaces_the_default_and_the_key_stays_for_scrubbing() {
        let agent = built("claude-code", Some(model(Protocol::Anthropic, "http://h/v1")), &[("install", "echo fake")]).unwrap();
        assert_eq!(agent.plan.install.as_deref(), Some("echo fake"));
        assert_eq!(agent.secret.as_deref(), Some("sk-secret"));
        assert_eq!((agent.model.as_deref(), agent.version), (Some("test-model"), None));
        let command = built("command", None, &[("command", "x"), ("install", "make install")]).unwrap();
        assert_eq!(command.plan.install.as_deref(), Some("make install"));
    }

    #[test]
    fn without_a_key_the_clis_get_a_placeholder_and_nothing_is_scrubbed() {
        let agent = built("codex", Some(Arc::new(Client::new(ModelConfig::new(Protocol::OpenAi, "m", "http://127.0.0.1:1/v1")))), &[]).unwrap();
        assert_eq!(agent.plan.env.get("OPENAI_API_KEY").map(String::as_str), Some(NO_KEY));
        assert_eq!(agent.secret, None);
    }

    #[test]
    fn words_are_quoted_for_bash_and_the_instruction_is_read_from_its_file() {
        assert_eq!(quote("plain-word_1.2/x:y=z@v"), "plain-word_1.2/x:y=z@v");
        assert_eq!(quote("it's $HOME"), "'it'\\''s $HOME'");
        assert_eq!(quote(""), "''");
        let plan = Plan {
            command: vec![lit("run"), lit("two words"), Arg::Instruction],
            ..(command::ADAPTER.plan)(&settings_without_model("command", &[("command", "x")])).unwrap()
        };
        assert_eq!(plan.command_line(), "exec run 'two words' \"$(cat /logs/agent/instruction.txt)\" </dev/null");
        assert_eq!(with_agent_path("x"), "export PATH=/tmp/prodbench-agent/bin:\"$PATH\"\nx");
    }

    #[test]
    fn a_run_ends_by_its_exit() {
        let limit = Duration::from_secs(5);
        let exited = |code, timed_out| ExecOutput { exit_code: code, timed_out, stderr: "boom".into(), ..Default::default() };
        let ok = outcome("codex", &exited(Some(0), false), limit, &Ok(4)).unwrap();
        assert_eq!(ok.summary, "codex exited 0 (trajectory of 4 steps)");
        let untraced = outcome("codex", &exited(Some(0), false), limit, &Err("no log".into())).unwrap();
        assert_eq!(untraced.summary, "codex exited 0 (no trajectory)");
        assert!(matches!(outcome("codex", &exited(Some(2), false), limit, &Ok(1)), Err(AgentError::Failed(m)) if m == "codex failed: exit code 2: boom"));
        assert!(matches!(outcome("codex", &exited(None, true), limit, &Ok(1)), Err(AgentError::LimitReached { limit: crate::LimitKind::WallTime, .. })));
    }
}
