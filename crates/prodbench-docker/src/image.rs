//! Task images: built once per environment digest, shared by every trial and job.
//!
//! The tag is the content digest of `environment/`, so the daemon's own image store is the
//! cache across processes; within a process, a per-tag once-cell makes concurrent trials of
//! one environment wait for a single build. A failed build is not cached: the next trial
//! tries again (and the failure is an infrastructure error, retried by the job).
//!
//! A compose task's sidecar services with `build` are built the same way, each tagged by
//! the digest of its build context, Dockerfile name and build args: a service unchanged
//! across tasks or task versions builds once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use prodbench_sandbox::{LABEL_MANAGED, PreparedEnvironment, Result, SandboxError};
use prodbench_task::compose::{BuildSpec, ServiceImage};
use prodbench_task::{DEFAULT_WORKDIR, Task, digest_dir};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Repository of every image prodbench builds.
pub const IMAGE_REPOSITORY: &str = "prodbench-env";
/// Lines of the build log kept in an error message.
const LOG_TAIL_LINES: usize = 20;

pub struct ImageCache {
    docker: Docker,
    builds: Mutex<HashMap<String, Arc<OnceCell<PreparedEnvironment>>>>,
    /// Sidecar service images, by tag: each built once.
    service_builds: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
}

impl ImageCache {
    pub fn new(docker: Docker) -> Self {
        ImageCache { docker, builds: Mutex::new(HashMap::new()), service_builds: Mutex::new(HashMap::new()) }
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
        let compose_workdir = task.compose.as_ref().and_then(|c| c.main.settings.working_dir.clone());
        if let Some(workdir) = task.config.environment.workdir.clone().or(compose_workdir) {
            prepared.workdir = workdir;
        }
        if let Some(compose) = &task.compose {
            prepared.service_images = self.prepare_services(compose, build_timeout).await?;
            prepared.compose = Some(Arc::new(compose.clone()));
        }
        Ok(prepared)
    }

    /// The image of every sidecar service, built if need be, by service name.
    async fn prepare_services(&self, compose: &prodbench_task::Compose, timeout: Duration) -> Result<BTreeMap<String, String>> {
        let mut images = BTreeMap::new();
        for service in &compose.services {
            let reference = match &service.image {
                ServiceImage::Image(reference) => {
                    if self.docker.inspect_image(reference).await.is_err() {
                        return Err(SandboxError::BuildFailed {
                            message: format!("service {}: image {reference} is not present and prodbench does not pull images", service.name),
                            log: String::new(),
                        });
                    }
                    reference.clone()
                }
                ServiceImage::Build(spec) => self.build_service(&service.name, spec, timeout).await?,
            };
            images.insert(service.name.clone(), reference);
        }
        Ok(images)
    }

    /// Builds a service's image once per content hash; concurrent callers wait for one build.
    async fn build_service(&self, name: &str, spec: &BuildSpec, timeout: Duration) -> Result<String> {
        let failed = |message: String| SandboxError::BuildFailed { message, log: String::new() };
        let digest = build_digest(spec).map_err(|e| failed(format!("service {name}: reading {}: {e}", spec.context.display())))?;
        let reference = format!("{IMAGE_REPOSITORY}:{}", &digest[..16]);
        let cell = Arc::clone(self.service_builds.lock().expect("builds lock").entry(reference.clone()).or_default());
        cell.get_or_try_init(|| async {
            if self.docker.inspect_image(&reference).await.is_ok() {
                return Ok(());
            }
            let build = self.build_context(&spec.context, &spec.dockerfile, &spec.args, &reference);
            tokio::time::timeout(timeout, build).await.map_err(|_| SandboxError::BuildTimeout(timeout))?.map_err(|e| match e {
                SandboxError::BuildFailed { message, log } => SandboxError::BuildFailed { message: format!("service {name}: {message}"), log },
                other => other,
            })
        })
        .await?;
        Ok(reference)
    }

    async fn find_or_build(&self, task: &Task, reference: String, digest: String, timeout: Duration) -> Result<PreparedEnvironment> {
        if let Some(workdir) = self.image_workdir(&reference).await {
            return Ok(PreparedEnvironment { reference, digest, workdir, compose: None, service_images: BTreeMap::new() });
        }
        if task.config.environment.docker_image.is_some() {
            return Err(SandboxError::BuildFailed {
                message: format!("image {reference} is not present and prodbench does not pull images"),
                log: String::new(),
            });
        }
        tokio::time::timeout(timeout, self.build(task, &reference)).await.map_err(|_| SandboxError::BuildTimeout(timeout))??;
        let workdir = self.image_workdir(&reference).await.unwrap_or_else(|| DEFAULT_WORKDIR.to_string());
        Ok(PreparedEnvironment { reference, digest, workdir, compose: None, service_images: BTreeMap::new() })
    }

    /// The image's WORKDIR (or the default when it has none), or `None` if it is absent.
    async fn image_workdir(&self, reference: &str) -> Option<String> {
        let image = self.docker.inspect_image(reference).await.ok()?;
        let workdir = image.config.and_then(|c| c.working_dir).filter(|w| !w.is_empty() && w != "/");
        Some(workdir.unwrap_or_else(|| DEFAULT_WORKDIR.to_string()))
    }

    async fn build(&self, task: &Task, reference: &str) -> Result<()> {
        self.build_context(&task.environment_dir(), "Dockerfile", &BTreeMap::new(), reference).await
    }

    async fn build_context(&self, dir: &Path, dockerfile: &str, args: &BTreeMap<String, String>, reference: &str) -> Result<()> {
        let context = pack_context(dir).map_err(|e| SandboxError::BuildFailed { message: format!("packing {}: {e}", dir.display()), log: String::new() })?;
        let options = BuildImageOptions {
            dockerfile: dockerfile.into(),
            buildargs: (!args.is_empty()).then(|| args.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
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

/// sha256 of a service's build: its context's files, its Dockerfile's name and its args.
fn build_digest(spec: &BuildSpec) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(digest_dir(&spec.context)?);
    hasher.update(format!("\0{}\0", spec.dockerfile));
    for (key, value) in &spec.args {
        hasher.update(format!("{key}={value}\0"));
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
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
