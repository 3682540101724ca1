//! Agents: what acts in a trial's sandbox between environment start and verification.
//!
//! An [`Agent`] gets the sandbox, the task's instruction and config, and a host directory
//! for its logs. It never sees the task's tests; only the oracle sees the solution, which
//! it uploads itself. This agents are `oracle` (runs `solution/solve.sh`) and `nop`
//! (does nothing: the floor every task's tests must reject).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use prodbench_sandbox::{ExecRequest, Sandbox, SandboxError};
use prodbench_task::{Task, SOLUTION_DIR, SOLVE_SCRIPT};

/// Where the oracle puts the solution inside the sandbox (Harbor's path).
pub const SOLUTION_MOUNT: &str = "/solution";

/// Everything an agent may use during a trial.
pub struct AgentContext<'a> {
    pub sandbox: &'a dyn Sandbox,
    pub task: &'a Task,
    /// Host directory for the agent's own logs (kept with the trial).
    pub logs_dir: &'a Path,
    /// The agent phase's time limit (the task's, times the job's multiplier).
    pub timeout: Duration,
}

/// How an agent's run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    /// One line for the trial record, e.g. `solve.sh exited 0`.
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The sandbox failed under the agent: an infrastructure error, not the agent's.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The agent itself failed (crashed, exited non-zero, could not start).
    #[error("{0}")]
    Failed(String),
    /// The agent ran out of its time limit.
    #[error("the agent did not finish within {0:?}")]
    TimedOut(Duration),
}

#[async_trait]
pub trait Agent: Send + Sync {
    fn name(&self) -> &str;

    /// Installs or uploads what the agent needs, before the agent phase's clock starts.
    async fn setup(&self, ctx: &AgentContext<'_>) -> Result<(), AgentError>;

    async fn run(&self, ctx: &AgentContext<'_>) -> Result<AgentOutcome, AgentError>;
}

/// Does nothing. Every task's tests must give it reward 0.
pub struct NopAgent;

#[async_trait]
impl Agent for NopAgent {
    fn name(&self) -> &str {
        "nop"
    }

    async fn setup(&self, _ctx: &AgentContext<'_>) -> Result<(), AgentError> {
        Ok(())
    }

    async fn run(&self, _ctx: &AgentContext<'_>) -> Result<AgentOutcome, AgentError> {
        Ok(AgentOutcome { summary: "did nothing".into() })
    }
}

/// Runs the task's reference solution: uploads `solution/` to `/solution` and runs
/// `solve.sh` in the workdir, with `[solution] env`, as `[agent] user`.
pub struct OracleAgent;

#[async_trait]
impl Agent for OracleAgent {
    fn name(&self) -> &str {
        "oracle"
    }

    async fn setup(&self, ctx: &AgentContext<'_>) -> Result<(), AgentError> {
        if !ctx.task.has_solution() {
            return Err(AgentError::Failed(format!(
                "{} has no {SOLUTION_DIR}/{SOLVE_SCRIPT}: the oracle cannot run this task",
                ctx.task.dir.display()
            )));
        }
        ctx.sandbox.upload(&ctx.task.solution_dir(), SOLUTION_MOUNT).await?;
        Ok(())
    }

    async fn run(&self, ctx: &AgentContext<'_>) -> Result<AgentOutcome, AgentError> {
        let request = ExecRequest::shell(format!("/bin/bash {SOLUTION_MOUNT}/{SOLVE_SCRIPT}"))
            .envs(&ctx.task.config.solution.env)
            .user(ctx.task.config.agent.user.clone())
            .timeout(ctx.timeout);
        let output = ctx.sandbox.exec(request).await?;
        let log = format!("$ bash {SOLUTION_MOUNT}/{SOLVE_SCRIPT}\n--- stdout\n{}\n--- stderr\n{}\n--- {}\n", output.stdout, output.stderr, output.summary());
        std::fs::write(ctx.logs_dir.join("oracle.txt"), log)
            .map_err(|e| AgentError::Failed(format!("writing {}: {e}", ctx.logs_dir.display())))?;
        if output.timed_out {
            return Err(AgentError::TimedOut(ctx.timeout));
        }
        if output.success() {
            Ok(AgentOutcome { summary: "solve.sh exited 0".into() })
        } else {
            Err(AgentError::Failed(format!("solve.sh failed: {}", output.summary())))
        }
    }
}

/// The agent named on the command line.
pub fn by_name(name: &str) -> Option<Box<dyn Agent>> {
    match name {
        "oracle" => Some(Box::new(OracleAgent)),
        "nop" => Some(Box::new(NopAgent)),
        _ => None,
    }
}

/// Names [`by_name`] accepts, for help and error messages.
pub const AGENT_NAMES: &[&str] = &["oracle", "nop"];
