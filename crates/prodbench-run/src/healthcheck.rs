//! Harbor's `[environment.healthcheck]`: a command run in the agent's container after the
//! environment starts, until it passes; the agent starts only then.
//!
//! It keeps Docker's HEALTHCHECK semantics, as Harbor documents: each attempt may take
//! `timeout_sec`; within `start_period_sec` of the first attempt failures do not count and
//! attempts come every `start_interval_sec`; after it they come every `interval_sec`, and
//! `retries` failures in a row fail the check. So it ends by itself; [`time_limit`] is the
//! longest it can take, which the trial gives it as its phase's limit.

use std::time::{Duration, Instant};

use prodbench_sandbox::{ExecRequest, Result, Sandbox};
use prodbench_task::EnvironmentHealthcheck;

/// How the check ended, when it did not pass.
#[derive(Debug, PartialEq)]
pub struct Unhealthy {
    pub message: String,
}

/// Runs the check until it passes (`Ok(Ok(()))`) or fails for good (`Ok(Err(..))`);
/// `Err` when the sandbox itself failed.
pub async fn wait_until_healthy(sandbox: &dyn Sandbox, check: &EnvironmentHealthcheck) -> Result<std::result::Result<(), Unhealthy>> {
    let started = Instant::now();
    let start_period = Duration::from_secs_f64(check.start_period_sec);
    let mut failures = 0;
    loop {
        let request = ExecRequest::shell(check.command.clone()).timeout(Duration::from_secs_f64(check.timeout_sec));
        let output = sandbox.exec(request).await?;
        if output.success() {
            return Ok(Ok(()));
        }
        let in_start_period = started.elapsed() < start_period;
        if !in_start_period {
            failures += 1;
            if failures >= check.retries {
                let message = format!("the environment healthcheck `{}` failed {failures} times in a row (the last: {})", check.command, output.summary());
                return Ok(Err(Unhealthy { message }));
            }
        }
        let pause = if in_start_period { check.start_interval_sec } else { check.interval_sec };
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
    }
}

/// The longest [`wait_until_healthy`] can take: the start period, then `retries` attempts
/// each with its timeout and interval, and one attempt more for the period's boundary.
pub fn time_limit(check: &EnvironmentHealthcheck) -> Duration {
    let attempt = check.timeout_sec + check.interval_sec.max(check.start_interval_sec);
    Duration::from_secs_f64(check.start_period_sec + attempt * f64::from(check.retries + 1))
}
