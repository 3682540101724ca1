//! Task images: built once per environment digest, shared by every trial and job.
//!
//! The tag is the content digest of `environment/`, so the daemon's own image store is the
//! cache across processes; within a process, a per-tag once-cell makes concurrent trials of
//! one environment wait for a single build. A failed build is not cached: the next trial
//! tries again (and the failure is an infrastructure error, retried by the job).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use prodbench_sandbox::{LABEL_MANAGED, PreparedEnvironment, Result, SandboxError};
use prodbench_task::{DEFAULT_WORKDIR, Task};
use tokio::sync::OnceCell;

/// Repository of every image prodbench builds.
pub const IMAGE_REPOSITORY: &str = "prodbench-env";
/// Lines of the build log kept in an error message.
const LOG_TAIL_LINES: usize = 20;

pub struct ImageCache {
    docker: Docker,
    builds: Mutex<HashMap<String, Arc<OnceCell<PreparedEnvironment>>>>,
}

impl ImageCache {
    pub fn new(docker: Docker) -> Self {
        ImageCache { docker, builds: Mutex::new(HashMap::new()) }
    }

    pub async fn prepare(&self, task: &Task, build_timeout: Duration) -> Result<PreparedEnvironment> {
        let (reference, digest) = match &task.config.environment.docker_image {
            Some(image) => (image.clone(), image.clone()),
            None => {
                let digest = task.environment_digest.clone();
                (format!("{IMAGE_REPOSITORY}:{}", &digest[..16]), digest)
            }
        };
        let cell = Arc::clone(self.builds.lock().expect("builds lock").entry(reference.clone()).or_default());
        let mut prepared = cell.get_or_try_init(|| self.find_or_build(task, reference.clone(), digest, build_timeout)).await?.clone();
        if let Some(workdir) = &task.config.environment.workdir {
            prepared.workdir = workdir.clone();
        }
        Ok(prepared)
    }

    async fn find_or_build(&self, task: &Task, reference: String, digest: String, timeout: Duration) -> Result<PreparedEnvironment> {
        if let Some(workdir) = self.image_workdir(&reference).await {
            return Ok(PreparedEnvironment { reference, digest, workdir });
        }
        if task.config.environment.docker_image.is_some() {
            return Err(SandboxError::BuildFailed {
                message: format!("image {reference} is not present and prodbench does not pull images"),
                log: String::new(),
            });
        }
        tokio::time::timeout(timeout, self.build(task, &reference)).await.map_err(|_| SandboxError::BuildTimeout(timeout))??;
        let workdir = self.image_workdir(&reference).await.unwrap_or_else(|| DEFAULT_WORKDIR.to_string());
        Ok(PreparedEnvironment { reference, digest, workdir })
    }

    /// The image's WORKDIR (or the default when it has none), or `None` if it is absent.
    async fn image_workdir(&self, reference: &str) -> Option<String> {
        let image = self.docker.inspect_image(reference).await.ok()?;
        let workdir = image.config.and_then(|c| c.working_dir).filter(|w| !w.is_empty() && w != "/");
        Some(workdir.unwrap_or_else(|| DEFAULT_WORKDIR.to_string()))
    }

    async fn build(&self, task: &Task, reference: &str) -> Result<()> {
        let context = pack_context(&task.environment_dir())
            .map_err(|e| SandboxError::BuildFailed { message: format!("packing {}: {e}", task.environment_dir().display()), log: String::new() })?;
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(reference.to_string()),
            rm: true,
            forcerm: true,
            labels: Some(HashMap::from([(LABEL_MANAGED.to_string(), "true".to_string())])),
            ..Default::default()
        };
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut log = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(line) = info.stream {
                        log.push_str(&line);
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(build_failed(detail, &log));
                    }
                }
                Err(e) => return Err(build_failed(e.to_string(), &log)),
            }
        }
        Ok(())
    }
}

/// The build context: `dir` packed with paths relative to it.
fn pack_context(dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir)?;
    builder.into_inner()
}

fn build_failed(message: String, log: &str) -> SandboxError {
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    SandboxError::BuildFailed { message, log: tail }
}
