//! The two agents every task is checked with: `nop` and `oracle`.

use async_trait::async_trait;
use prodbench_sandbox::ExecRequest;
use prodbench_task::{SOLUTION_DIR, SOLVE_SCRIPT};

use crate::{Agent, AgentContext, AgentError, AgentOutcome};

/// Where the oracle puts the solution inside the sandbox (Harbor's path).
pub const SOLUTION_MOUNT: &str = "/solution";

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
            return Err(AgentError::Failed(format!("{} has no {SOLUTION_DIR}/{SOLVE_SCRIPT}: the oracle cannot run this task", ctx.task.dir.display())));
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
        std::fs::write(ctx.logs_dir.join("oracle.txt"), log).map_err(|e| AgentError::Failed(format!("writing {}: {e}", ctx.logs_dir.display())))?;
        if output.timed_out {
            return Err(AgentError::timed_out(ctx.timeout));
        }
        if output.success() {
            Ok(AgentOutcome { summary: "solve.sh exited 0".into() })
        } else {
            Err(AgentError::Failed(format!("solve.sh failed: {}", output.summary())))
        }
    }
}
