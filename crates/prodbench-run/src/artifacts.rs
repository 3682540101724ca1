//! Harbor's `artifacts` and `[[verifier.collect]]`: files kept with the trial after
//! verification, from the agent's container (`main`) or a compose service.
//!
//! First each `[[verifier.collect]]` command runs in its service (a database dump, say);
//! then the convention directory `/logs/artifacts/` of `main` and every `artifacts` entry
//! are copied into the trial's `artifacts/`. As in Harbor this is best effort: the tests
//! have already decided the reward, so a command that fails or a path that is missing does
//! not change the trial's outcome; each such problem is one line of `artifacts/errors.txt`.

use std::path::Path;
use std::time::Duration;

use prodbench_sandbox::{ExecRequest, Sandbox};
use prodbench_task::compose::MAIN_SERVICE;
use prodbench_task::{Artifact, CollectHook, Task};

/// The trial's directory of artifacts.
pub const ARTIFACTS_DIR: &str = "artifacts";
/// One line per collect command or artifact that failed.
pub const ERRORS_FILE: &str = "errors.txt";
/// Files any command in `main` may leave here are kept without being asked for (Harbor's
/// convention).
pub const CONVENTION_DIR: &str = "/logs/artifacts";

/// Whether the task declares anything to collect.
pub fn declared(task: &Task) -> bool {
    !task.config.artifacts.is_empty() || !task.config.verifier.collect.is_empty()
}

/// Runs the collect commands, then copies the artifacts (and, with `convention_dir`,
/// what `main` left in [`CONVENTION_DIR`]) into `<trial_dir>/artifacts/`.
pub async fn collect(sandbox: &dyn Sandbox, task: &Task, trial_dir: &Path, convention_dir: bool) {
    let dir = trial_dir.join(ARTIFACTS_DIR);
    let mut errors = Vec::new();
    for hook in &task.config.verifier.collect {
        if let Err(message) = run_hook(sandbox, hook).await {
            errors.push(format!("[[verifier.collect]] in {}: {message}", hook.service));
        }
    }
    if convention_dir {
        if let Err(e) = sandbox.download(CONVENTION_DIR, &dir).await {
            errors.push(format!("{CONVENTION_DIR}: {e}"));
        }
    }
    for artifact in &task.config.artifacts {
        if let Err(message) = copy(sandbox, artifact, &dir).await {
            let from = artifact.service.as_deref().unwrap_or(MAIN_SERVICE);
            errors.push(format!("artifact {} from {from}: {message}", artifact.source));
        }
    }
    if !errors.is_empty() {
        let _ = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(dir.join(ERRORS_FILE), errors.join("\n") + "\n"));
    }
}

/// `main` itself, or the sidecar service `name`.
fn container<'a>(sandbox: &'a dyn Sandbox, name: &str) -> Result<&'a dyn Sandbox, String> {
    if name == MAIN_SERVICE {
        return Ok(sandbox);
    }
    sandbox.service(name).ok_or_else(|| format!("no running service {name:?}"))
}

async fn run_hook(sandbox: &dyn Sandbox, hook: &CollectHook) -> Result<(), String> {
    let target = container(sandbox, &hook.service)?;
    let request = ExecRequest::shell(hook.command.clone()).timeout(Duration::from_secs_f64(hook.timeout_sec));
    let output = target.exec(request).await.map_err(|e| e.to_string())?;
    if output.success() { Ok(()) } else { Err(output.summary()) }
}

/// Whether `main` holds anything in [`CONVENTION_DIR`] (one short command).
pub async fn has_convention_dir(sandbox: &dyn Sandbox) -> bool {
    let probe = ExecRequest::shell(format!("[ -d {CONVENTION_DIR} ] && [ -n \"$(ls -A {CONVENTION_DIR})\" ]")).timeout(Duration::from_secs(30));
    sandbox.exec(probe).await.is_ok_and(|output| output.success())
}

async fn copy(sandbox: &dyn Sandbox, artifact: &Artifact, dir: &Path) -> Result<(), String> {
    let target = container(sandbox, artifact.service.as_deref().unwrap_or(MAIN_SERVICE))?;
    let name = match &artifact.destination {
        Some(destination) => destination.clone(),
        None => artifact.source.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string(),
    };
    let dest = dir.join(&name);
    target.download(&artifact.source, &dest).await.map_err(|e| e.to_string())?;
    if !artifact.exclude.is_empty() && dest.is_dir() {
        remove_excluded(&dest, &dest, &artifact.exclude).map_err(|e| format!("applying `exclude`: {e}"))?;
    }
    Ok(())
}

/// Removes what under `dir` matches a pattern, by its path relative to `root` or its name.
fn remove_excluded(root: &Path, dir: &Path, patterns: &[String]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if patterns.iter().any(|p| glob_match(p, &relative) || glob_match(p, &name)) {
            if path.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
        } else if path.is_dir() {
            remove_excluded(root, &path, patterns)?;
        }
    }
    Ok(())
}

/// `*` (any run of characters) and `?` (one character), as tar's `--exclude` reads them.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn matches(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => matches(&p[1..], t) || (!t.is_empty() && matches(p, &t[1..])),
            (Some('?'), Some(_)) => matches(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    matches(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_tar_excludes_do() {
        assert!(glob_match("*.tmp", "a.tmp"));
        assert!(glob_match("cache/*", "cache/x/y"));
        assert!(glob_match("?.log", "a.log"));
        assert!(!glob_match("*.tmp", "a.tmpx"));
        assert!(!glob_match("?.log", "ab.log"));
    }

    #[test]
    fn excluded_paths_are_removed_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["keep.txt", "drop.tmp", "sub/keep.txt", "sub/drop.tmp", "cache/x"] {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        remove_excluded(dir.path(), dir.path(), &["*.tmp".into(), "cache".into()]).unwrap();
        let mut left: Vec<String> = walk(dir.path(), dir.path());
        left.sort();
        assert_eq!(left, ["keep.txt", "sub", "sub/keep.txt"]);
    }

    fn walk(root: &Path, dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .flat_map(|e| {
                let path = e.path();
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let mut found = vec![rel];
                if path.is_dir() {
                    found.extend(walk(root, &path));
                }
                found
            })
            .collect()
    }
}
