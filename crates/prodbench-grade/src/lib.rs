//! Verification: run a task's tests where the agent cannot interfere, and read rewards from
//! where the agent could never write.
//!
//! Harbor's known holes, and how each is closed here:
//! - *A reward file the agent pre-wrote wins.* Before the tests are uploaded, every agent
//!   process is killed ([`Sandbox::kill_all_processes`]) and `/logs/verifier` and `/tests`
//!   are wiped; the wipe is then checked through the sandbox's file API (which does not run
//!   the sandbox's own, possibly tampered, binaries). Nothing can write there afterwards but
//!   the tests.
//! - *A daemon the agent left rewrites the tests or the reward.* Killed with every other
//!   agent process, whatever it did to detach.
//! - *Tampered tools on PATH.* With `environment_mode = "separate"` the tests run in a fresh
//!   sandbox of the task image into which only the agent's final workspace is copied.
//! - *A missing or malformed reward silently scores 0.* It is a [`VerifyError::Reward`], a
//!   verifier error recorded as such.

pub mod evidence;
pub mod judge;
pub mod llm_judge;
mod test_evidence;

use std::path::Path;
use std::time::Duration;

use prodbench_sandbox::{ExecOutput, ExecRequest, PreparedEnvironment, Provider, Role, Sandbox, SandboxError, StartSpec};
use prodbench_score::reward::{Rewards, parse_rewards};
use prodbench_task::{EnvironmentMode, TEST_SCRIPT, Task};

/// Where tests are uploaded inside the sandbox (Harbor's path).
pub const TESTS_MOUNT: &str = "/tests";
/// Where tests write `reward.txt` or `reward.json` (Harbor's path).
pub const VERIFIER_LOGS: &str = "/logs/verifier";

/// Where, under verification's output directory, the downloaded `/logs/verifier` goes.
pub const VERIFIER_LOGS_COPY: &str = "logs";

/// Everything verification produced.
#[derive(Debug)]
pub struct Verification {
    pub rewards: Rewards,
    pub test_output: ExecOutput,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The sandbox failed: infrastructure, retried by the job.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The verifier ran but gave no usable reward (missing, malformed, timed out, or its
    /// reward directory was tampered with).
    #[error("{message}")]
    Reward { message: String, test_output: Option<ExecOutput> },
}

impl VerifyError {
    fn reward(message: impl Into<String>) -> Self {
        VerifyError::Reward { message: message.into(), test_output: None }
    }
}

/// What verification needs to know about the trial.
pub struct VerifyContext<'a> {
    pub task: &'a Task,
    pub provider: &'a dyn Provider,
    pub environment: &'a PreparedEnvironment,
    /// The spec the agent's sandbox was started with; the separate verifier reuses it.
    pub spec: &'a StartSpec,
    pub timeout: Duration,
    /// Host directory that receives the verifier's logs and reward files.
    pub output_dir: &'a Path,
    /// Set for a live task: the tests run in a sandbox of their own inside the agent's
    /// network, against the services as the agent left them.
    pub live: Option<LiveVerification<'a>>,
}

/// How a live task's tests reach the live system and its traffic record.
pub struct LiveVerification<'a> {
    /// The tests' own sandbox, started in the agent's network namespace
    /// ([`prodbench_sandbox::StartSpec::join_network`]), so `127.0.0.1:PORT` is a service.
    pub verifier: &'a dyn Sandbox,
    /// The trial's traffic record on the host, copied to [`TRAFFIC_MOUNT`] for the tests.
    pub traffic: Option<&'a Path>,
}

/// Where a live task's tests find the traffic record (`summary.json`, `timeline.json`,
/// `metrics.prom`).
pub const TRAFFIC_MOUNT: &str = "/logs/traffic";

/// Runs the task's tests against the agent's final state in `agent_sandbox`.
pub async fn verify(ctx: &VerifyContext<'_>, agent_sandbox: &dyn Sandbox) -> Result<Verification, VerifyError> {
    if let Some(live) = &ctx.live {
        return verify_live(ctx, live, agent_sandbox).await;
    }
    match ctx.task.config.verifier.environment_mode {
        EnvironmentMode::Shared => {
            agent_sandbox.kill_all_processes().await?;
            run_tests(ctx, agent_sandbox).await
        }
        EnvironmentMode::Separate => {
            let mut spec = ctx.spec.clone();
            spec.role = Role::Verifier;
            let verifier = ctx.provider.start(ctx.environment, &spec).await?;
            let result = async {
                copy_workspace(agent_sandbox, verifier.as_ref()).await?;
                run_tests(ctx, verifier.as_ref()).await
            }
            .await;
            let stopped = verifier.stop().await;
            let verification = result?;
            stopped?;
            Ok(verification)
        }
    }
}

/// A live task: the services keep running in the agent's sandbox (their processes may be
/// the agent's own code), so the tests run in a fresh sandbox of the task image in its
/// network (started by the trial, stopped at its teardown), with a copy of the agent's
/// workspace and of the traffic record. Nothing in the agent's sandbox can reach the
/// verifier's files.
async fn verify_live(ctx: &VerifyContext<'_>, live: &LiveVerification<'_>, agent_sandbox: &dyn Sandbox) -> Result<Verification, VerifyError> {
    copy_workspace(agent_sandbox, live.verifier).await?;
    if let Some(traffic) = live.traffic {
        live.verifier.upload(traffic, TRAFFIC_MOUNT).await?;
    }
    run_tests(ctx, live.verifier).await
}

/// Runs the tests again, later, against a workspace saved on the host (`regrade`): in a
/// fresh sandbox of the task image into which only that workspace is copied, as in
/// `environment_mode = "separate"`.
/// The agent's saved final answer, if any, is put back where the tests read it.
pub async fn verify_saved_workspace(ctx: &VerifyContext<'_>, workspace: &Path, answer: Option<&Path>) -> Result<Verification, VerifyError> {
    let sandbox = ctx.provider.start(ctx.environment, ctx.spec).await?;
    let result = async {
        replace_workspace(sandbox.as_ref(), workspace).await?;
        if let Some(answer) = answer {
            sandbox.upload(answer, evidence::ANSWER_FILE).await?;
        }
        run_tests(ctx, sandbox.as_ref()).await
    }
    .await;
    let stopped = sandbox.stop().await;
    let verification = result?;
    stopped?;
    Ok(verification)
}

/// Replaces the fresh sandbox's workspace with the agent's final one, and carries over
/// the agent's final answer (question-answering tasks' tests read it).
async fn copy_workspace(from: &dyn Sandbox, to: &dyn Sandbox) -> Result<(), VerifyError> {
    let staging = tempfile::tempdir().map_err(|e| SandboxError::op("staging the workspace", e))?;
    let copy = staging.path().join("workspace");
    from.download(from.workdir(), &copy).await?;
    replace_workspace(to, &copy).await?;
    let answer = staging.path().join("answer.txt");
    if from.download(evidence::ANSWER_FILE, &answer).await.is_ok() {
        to.upload(&answer, evidence::ANSWER_FILE).await?;
    }
    Ok(())
}

async fn replace_workspace(to: &dyn Sandbox, copy: &Path) -> Result<(), VerifyError> {
    let clear = to.exec(root(ExecRequest::shell(format!("find '{}' -mindepth 1 -delete", to.workdir())))).await?;
    if !clear.success() {
        return Err(SandboxError::op("clearing the verifier's workspace", clear.summary()).into());
    }
    to.upload(copy, to.workdir()).await?;
    Ok(())
}

async fn run_tests(ctx: &VerifyContext<'_>, sandbox: &dyn Sandbox) -> Result<Verification, VerifyError> {
    reset_verifier_dirs(sandbox, ctx.output_dir).await?;
    sandbox.upload(&ctx.task.tests_dir(), TESTS_MOUNT).await?;
    let verifier = &ctx.task.config.verifier;
    let request = ExecRequest::shell(format!("/bin/bash {TESTS_MOUNT}/{TEST_SCRIPT}")).envs(&verifier.env).user(verifier.user.clone()).timeout(ctx.timeout);
    let output = sandbox.exec(request).await?;
    write_test_log(ctx.output_dir, &output);
    if output.timed_out {
        return Err(VerifyError::Reward { message: format!("tests timed out after {:?}", ctx.timeout), test_output: Some(output) });
    }
    let logs = ctx.output_dir.join(VERIFIER_LOGS_COPY);
    sandbox.download(VERIFIER_LOGS, &logs).await?;
    match parse_rewards(&logs) {
        Ok(rewards) => Ok(Verification { rewards, test_output: output }),
        Err(message) => Err(VerifyError::Reward { message: format!("{message} (test.sh {})", output.summary()), test_output: Some(output) }),
    }
}

/// Empties `/logs/verifier` and `/tests` (replacing symlinks the agent may have planted),
/// then checks through the file API that the reward directory really is empty: a shell or
/// `find` the agent replaced cannot fake that.
async fn reset_verifier_dirs(sandbox: &dyn Sandbox, output_dir: &Path) -> Result<(), VerifyError> {
    let script = format!(
        "for d in /logs {VERIFIER_LOGS} {TESTS_MOUNT}; do \
           if [ -L \"$d\" ] || [ -f \"$d\" ]; then rm -f \"$d\"; fi; \
         done; \
         for d in {VERIFIER_LOGS} {TESTS_MOUNT}; do \
           if [ -d \"$d\" ]; then find \"$d\" -mindepth 1 -delete; fi; mkdir -p \"$d\"; \
         done; chmod 777 {VERIFIER_LOGS}"
    );
    let output = sandbox.exec(root(ExecRequest::shell(script))).await?;
    if !output.success() {
        return Err(VerifyError::reward(format!("could not reset {VERIFIER_LOGS}: {}", output.summary())));
    }
    let check = output_dir.join("reset-check");
    sandbox.download(VERIFIER_LOGS, &check).await?;
    let leftover: Vec<String> = std::fs::read_dir(&check)
        .map_err(|e| SandboxError::op("checking the verifier directory", e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let _ = std::fs::remove_dir_all(&check);
    if !leftover.is_empty() {
        return Err(VerifyError::reward(format!("{VERIFIER_LOGS} still holds {leftover:?} after it was wiped: the sandbox's tools were tampered with")));
    }
    Ok(())
}

fn root(request: ExecRequest) -> ExecRequest {
    request.user(Some("0".into())).timeout(Duration::from_secs(60))
}

fn write_test_log(dir: &Path, output: &ExecOutput) {
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(dir.join("test-stdout.txt"), &output.stdout);
    let _ = std::fs::write(dir.join("test-stderr.txt"), &output.stderr);
}
