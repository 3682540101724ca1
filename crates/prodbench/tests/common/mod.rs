//! Helpers shared by the integration tests: run the real binary, find the backends.
//!
//! Docker tests run when a daemon answers at /var/run/docker.sock. With
//! `PRODBENCH_REQUIRE_DOCKER=1` (set by `.ci/run`) a missing daemon fails them instead, so CI
//! can never pass by skipping.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_prodbench"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs `prodbench ARGS` with its own jobs directory.
pub fn prodbench(jobs: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--jobs-dir").arg(jobs).args(args).output().expect("run prodbench")
}

/// Runs a command that prints JSON, returning the parsed document and the exit code.
pub fn prodbench_json(jobs: &Path, args: &[&str]) -> (serde_json::Value, i32) {
    let out = prodbench(jobs, args);
    let text = String::from_utf8_lossy(&out.stdout);
    let doc = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{text}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)));
    (doc, out.status.code().unwrap_or(-1))
}

/// Score (0-100) per task from a `run --json` or `show --json` summary.
pub fn task_scores(doc: &serde_json::Value) -> Vec<(String, Option<f64>)> {
    doc["summary"]["tasks"].as_array().expect("summary.tasks").iter().map(|t| (t["task"].as_str().unwrap().to_string(), t["score"].as_f64())).collect()
}

/// True when Docker tests should run; panics when they are required but impossible.
pub fn docker_available() -> bool {
    let up = Path::new("/var/run/docker.sock").exists()
        && Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output().is_ok_and(|o| o.status.success());
    if !up && std::env::var("PRODBENCH_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("PRODBENCH_REQUIRE_DOCKER=1 but no Docker daemon answers");
    }
    if !up {
        eprintln!("note: no Docker daemon; skipping Docker assertions");
    }
    up
}

/// Containers (any state) carrying a label, via the docker CLI: an independent check of
/// what prodbench says it removed.
pub fn containers_with_label(label: &str) -> Vec<String> {
    let out = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label={label}")]).output().expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
}

/// Copies a directory tree (files and directories only), e.g. an example task to edit.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` that contains `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            found.push(path);
        }
    }
    found
}
