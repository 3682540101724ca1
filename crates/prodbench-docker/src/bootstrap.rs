//! Base images without a registry: `debian:bookworm-slim` made from Debian's packages.
//!
//! On a machine that reaches Debian's mirror but no container registry, tasks that say
//! `FROM debian:bookworm-slim` still build: debootstrap a minimal root filesystem, then
//! import it through the Engine API (`POST /images/create?fromSrc=-`), as `docker import`
//! does.

use std::path::Path;
use std::process::Stdio;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use prodbench_sandbox::{Result, SandboxError};
use tokio::process::Command;

/// One base image prodbench knows how to make.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub repository: &'static str,
    pub tag: &'static str,
    /// Debian suite passed to debootstrap.
    pub suite: &'static str,
}

impl BaseImage {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// The base images the examples (and most Harbor tasks) build on.
pub const BASE_IMAGES: &[BaseImage] = &[BaseImage { repository: "debian", tag: "bookworm-slim", suite: "bookworm" }];

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What bootstrapping one image did.
#[derive(Debug)]
pub enum Outcome {
    AlreadyPresent,
    Created,
}

/// Makes `image` unless the daemon already has it (or `force`).
pub async fn bootstrap(docker: &Docker, image: &BaseImage, mirror: &str, force: bool) -> Result<Outcome> {
    if !force && docker.inspect_image(&image.reference()).await.is_ok() {
        return Ok(Outcome::AlreadyPresent);
    }
    let rootfs = tempfile::Builder::new().prefix("prodbench-rootfs-").tempdir().map_err(|e| SandboxError::op("creating a directory for debootstrap", e))?;
    debootstrap(image.suite, rootfs.path(), mirror).await?;
    let tarball = pack_rootfs(rootfs.path()).await?;
    import(docker, image, tarball).await?;
    Ok(Outcome::Created)
}

async fn debootstrap(suite: &str, dir: &Path, mirror: &str) -> Result<()> {
    let output = Command::new("debootstrap").args(["--variant=minbase", suite]).arg(dir).arg(mirror).stdin(Stdio::null()).output().await.map_err(|e| {
        SandboxError::Unavailable {
            backend: "debootstrap",
            reason: e.to_string(),
            hint: "install it (Debian: apt-get install debootstrap) and run as root".into(),
        }
    })?;
    if !output.status.success() {
        let log = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        return Err(SandboxError::op("debootstrap", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    // Like the registry's -slim images: no downloaded packages, no apt lists.
    for leftover in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(leftover)) {
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
    Ok(())
}

/// `tar -C dir -c .`: GNU tar keeps device nodes, owners and hard links exactly.
async fn pack_rootfs(dir: &Path) -> Result<Vec<u8>> {
    let output = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "-c", "."])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| SandboxError::op("packing the root filesystem", e))?;
    if !output.status.success() {
        return Err(SandboxError::op("packing the root filesystem", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(output.stdout)
}

async fn import(docker: &Docker, image: &BaseImage, tarball: Vec<u8>) -> Result<()> {
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(image.repository.into()),
        tag: Some(image.tag.into()),
        changes: vec!["CMD [\"bash\"]".into()],
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), Some(bollard::body_full(tarball.into())), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| SandboxError::op("importing the image", e))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(SandboxError::op("importing the image", message));
        }
    }
    Ok(())
}
