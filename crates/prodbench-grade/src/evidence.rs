//! What a judge sees of a trial, collected at the end of the agent phase while the system
//! is still as the agent left it: the workspace's changes against the original, the agent's
//! final answer, and the output of the rubric's state probes.
//!
//! The workspace is downloaded twice through the sandbox's file API (which runs none of the
//! sandbox's binaries, so a tampered `git` or `diff` cannot shape the evidence): once before
//! the agent starts and once when it stops. The diff is computed on the host. The final copy
//! stays with the trial (`workspace/`), which is what `regrade` verifies again.
//!
//! The final copy is taken, and the answer saved, *before* the state probes run: a probe's
//! side effects (a `__pycache__` from `python3 -c 'import mod'`, a log file) are the
//! harness's, not the agent's, and must not show in the diff or count as scratch files.
//!
//! `.git` directories are left out of the diff: git rewrites its own metadata on read-only
//! use (`git status` refreshes `.git/index`), so counting it would fail a question-answering
//! agent in a `forbid_code_changes` task for looking at the history.
//!
//! Everything is saved under the trial directory, so a regrade re-reads the same evidence
//! and the judge's cache key (a digest of the evidence) is stable.
//!
//! The saved workspace is capped ([`DEFAULT_WORKSPACE_CAP_BYTES`], `run --workspace-cap`):
//! an agent that writes 300 MB would otherwise cost 300 MB per trial in the jobs directory.
//! The diff is computed on the whole download first; then the largest files are left out of
//! the saved copy until it fits, and `workspace-cut.json` says which (a regrade refuses such
//! a trial: it would verify an incomplete workspace).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prodbench_sandbox::{ExecRequest, Result, Sandbox};
use prodbench_score::evidence::{ANSWER_COPY, CHANGES_FILE, DIFF_FILE, STATE_DIR, WORKSPACE_CUT_FILE, WORKSPACE_DIR, WorkspaceChanges, WorkspaceCut};
use prodbench_task::rubric::StateProbe;
use sha2::{Digest, Sha256};
use similar::TextDiff;

/// Where an agent leaves its final answer (the built-in agent's `submit` writes it; a
/// question-answering task's `solve.sh` may too).
pub const ANSWER_FILE: &str = prodbench_task::ANSWER_PATH;
/// Files larger than this are listed in the diff, not shown.
const MAX_DIFF_FILE_BYTES: u64 = 256 * 1024;
/// Git's metadata directory, left out of the diff (git rewrites it on read-only use).
const GIT_DIR: &str = ".git";
/// Output kept per state probe.
const PROBE_OUTPUT_CAP: usize = 64 * 1024;

/// Downloads the workspace as it is now into `dest`.
pub async fn snapshot_workspace(sandbox: &dyn Sandbox, dest: &Path) -> Result<()> {
    sandbox.download(sandbox.workdir(), dest).await
}

/// The evidence saved for a trial.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub diff: String,
    pub changes: WorkspaceChanges,
    pub answer: Option<String>,
    /// Probe name -> its output (stdout, then stderr, then the exit status).
    pub state: BTreeMap<String, String>,
}

impl Evidence {
    /// Reads what [`collect`] saved in a trial directory; `None` when it saved nothing (the
    /// trial ran without a rubric). The answer and the state are optional parts.
    pub fn load(trial_dir: &Path) -> Option<Evidence> {
        let read = |rel: &str| std::fs::read_to_string(trial_dir.join(rel)).ok();
        let state = std::fs::read_dir(trial_dir.join(STATE_DIR))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.path().file_stem()?.to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).ok()?)))
            .collect();
        Some(Evidence { diff: read(DIFF_FILE)?, changes: serde_json::from_str(&read(CHANGES_FILE)?).ok()?, answer: read(ANSWER_COPY), state })
    }
}

/// Collects the evidence at the end of the agent phase: reads the answer, downloads the
/// final workspace and diffs it against `before`, then runs the state probes (before the
/// agent's processes are killed: a live service's state is part of the result).
pub async fn collect(sandbox: &dyn Sandbox, probes: &[StateProbe], before: &Path, trial_dir: &Path, workspace_cap_bytes: u64) -> Result<Evidence> {
    let answer = save_answer(sandbox, trial_dir).await?;
    let after = trial_dir.join(WORKSPACE_DIR);
    snapshot_workspace(sandbox, &after).await?;
    let (diff, changes) = diff_trees(before, &after);
    keep_within_cap(trial_dir, workspace_cap_bytes);
    write(&trial_dir.join(DIFF_FILE), &diff);
    write(&trial_dir.join(CHANGES_FILE), &serde_json::to_string_pretty(&changes).expect("serializes"));
    let state = run_probes(sandbox, probes).await?;
    for (name, output) in &state {
        write(&trial_dir.join(STATE_DIR).join(format!("{name}.txt")), output);
    }
    Ok(Evidence { diff, changes, answer, state })
}

/// Copies the agent's final answer, if it left one, to the trial's [`ANSWER_COPY`] (every
/// trial keeps it, rubric or not, so a regrade sees what the verifier saw).
pub async fn save_answer(sandbox: &dyn Sandbox, trial_dir: &Path) -> Result<Option<String>> {
    let scratch = tempfile::tempdir().map_err(|e| prodbench_sandbox::SandboxError::op("collecting evidence", e))?;
    if sandbox.download(ANSWER_FILE, &scratch.path().join("answer.txt")).await.is_err() {
        return Ok(None);
    }
    let answer = std::fs::read_to_string(scratch.path().join("answer.txt")).ok();
    if let Some(answer) = &answer {
        write(&trial_dir.join(ANSWER_COPY), answer);
    }
    Ok(answer)
}

/// Keeps the agent's final workspace with the trial (what a regrade verifies again), within
/// `cap_bytes`: for a task without a rubric, which collects no other evidence.
pub async fn save_workspace(sandbox: &dyn Sandbox, trial_dir: &Path, cap_bytes: u64) -> Result<()> {
    snapshot_workspace(sandbox, &trial_dir.join(WORKSPACE_DIR)).await?;
    keep_within_cap(trial_dir, cap_bytes);
    Ok(())
}

/// Cuts the trial's saved workspace to `cap_bytes` and records what went, if anything did.
fn keep_within_cap(trial_dir: &Path, cap_bytes: u64) {
    if let Some(cut) = cut_to_cap(&trial_dir.join(WORKSPACE_DIR), cap_bytes) {
        write(&trial_dir.join(WORKSPACE_CUT_FILE), &serde_json::to_string_pretty(&cut).expect("serializes"));
    }
}

/// Deletes the largest files under `root` until the rest fits in `cap_bytes`; says what
/// went, or `None` when everything fits.
pub fn cut_to_cap(root: &Path, cap_bytes: u64) -> Option<WorkspaceCut> {
    let mut files: Vec<(String, PathBuf, u64)> = all_files_under(root)
        .into_iter()
        .map(|(rel, path)| {
            let size = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
            (rel, path, size)
        })
        .collect();
    let total_bytes: u64 = files.iter().map(|f| f.2).sum();
    if total_bytes <= cap_bytes {
        return None;
    }
    files.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut kept = total_bytes;
    let mut omitted = Vec::new();
    for (rel, path, size) in files {
        if kept <= cap_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            kept -= size;
            omitted.push((rel, size));
        }
    }
    Some(WorkspaceCut { cap_bytes, total_bytes, omitted })
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(path, text);
}

async fn run_probes(sandbox: &dyn Sandbox, probes: &[StateProbe]) -> Result<BTreeMap<String, String>> {
    let mut state = BTreeMap::new();
    for probe in probes {
        let mut request = ExecRequest::shell(&probe.command).timeout(Duration::from_secs_f64(probe.timeout_sec));
        request.output_cap = PROBE_OUTPUT_CAP;
        let output = sandbox.exec(request).await?;
        let status = match (output.timed_out, output.exit_code) {
            (true, _) => format!("timed out after {} s", probe.timeout_sec),
            (false, Some(code)) => format!("exit {code}"),
            (false, None) => "killed".to_string(),
        };
        state.insert(probe.name.clone(), format!("$ {}\n{}{}[{status}]\n", probe.command, output.stdout, output.stderr));
    }
    Ok(state)
}

/// A unified diff of two directory trees (paths relative to them) and the lists of
/// modified, deleted and added files. Binary and very large files are listed, not shown;
/// `.git` directories are left out.
pub fn diff_trees(before: &Path, after: &Path) -> (String, WorkspaceChanges) {
    let (old, new) = (files_under(before), files_under(after));
    let mut changes = WorkspaceChanges::default();
    let mut diff = String::new();
    for (rel, old_path) in &old {
        match new.get(rel) {
            None => {
                changes.deleted.push(rel.clone());
                diff.push_str(&file_diff(rel, Some(old_path), None));
            }
            Some(new_path) if file_digest(old_path) != file_digest(new_path) => {
                changes.modified.push(rel.clone());
                diff.push_str(&file_diff(rel, Some(old_path), Some(new_path)));
            }
            Some(_) => {}
        }
    }
    for (rel, new_path) in new.iter().filter(|(rel, _)| !old.contains_key(*rel)) {
        changes.added.push(rel.clone());
        diff.push_str(&file_diff(rel, None, Some(new_path)));
    }
    (diff, changes)
}

/// Every file under `root` but those in `.git` directories, by relative path.
fn files_under(root: &Path) -> BTreeMap<String, PathBuf> {
    walk_files(root, true)
}

/// Every file under `root`, `.git` included.
fn all_files_under(root: &Path) -> BTreeMap<String, PathBuf> {
    walk_files(root, false)
}

fn walk_files(root: &Path, skip_git: bool) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() && skip_git && entry.file_name() == GIT_DIR => {}
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => {
                    let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                    files.insert(rel, path);
                }
                Err(_) => {}
            }
        }
    }
    files
}

fn file_digest(path: &Path) -> Option<[u8; 32]> {
    let bytes = std::fs::read(path).or_else(|_| std::fs::read_link(path).map(|t| t.to_string_lossy().into_owned().into_bytes())).ok()?;
    Some(Sha256::digest(bytes).into())
}

/// Text of a file for diffing, or why it is not shown.
fn text_of(path: &Path) -> Result<String, &'static str> {
    let size = std::fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_DIFF_FILE_BYTES {
        return Err("large file");
    }
    let bytes = std::fs::read(path).map_err(|_| "unreadable")?;
    String::from_utf8(bytes).map_err(|_| "binary file")
}

fn file_diff(rel: &str, old: Option<&Path>, new: Option<&Path>) -> String {
    let (old_text, new_text) = (old.map(text_of).unwrap_or(Ok(String::new())), new.map(text_of).unwrap_or(Ok(String::new())));
    let (old_name, new_name) =
        (if old.is_some() { format!("a/{rel}") } else { "/dev/null".into() }, if new.is_some() { format!("b/{rel}") } else { "/dev/null".into() });
    match (old_text, new_text) {
        (Ok(a), Ok(b)) => format!("{}", TextDiff::from_lines(&a, &b).unified_diff().context_radius(3).header(&old_name, &new_name)),
        (Err(why), _) | (_, Err(why)) => format!("--- {old_name}\n+++ {new_name}\n({why} changed, not shown)\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_diff_lists_and_shows_changes() {
        let (before, after) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (root, files) in [
            (before.path(), vec![("keep.txt", "same\n"), ("src/lib.rs", "fn a() {}\n"), ("gone.txt", "bye\n")]),
            (after.path(), vec![("keep.txt", "same\n"), ("src/lib.rs", "fn a() { b() }\n"), ("new.txt", "hi\n")]),
        ] {
            for (rel, text) in files {
                std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
                std::fs::write(root.join(rel), text).unwrap();
            }
        }
        std::fs::write(after.path().join("blob.bin"), [0u8, 159, 146, 150]).unwrap();
        let (diff, changes) = diff_trees(before.path(), after.path());
        assert_eq!(changes.modified, vec!["src/lib.rs"]);
        assert_eq!(changes.deleted, vec!["gone.txt"]);
        assert_eq!(changes.added, vec!["blob.bin", "new.txt"]);
        assert!(diff.contains("--- a/src/lib.rs\n+++ b/src/lib.rs\n"), "{diff}");
        assert!(diff.contains("-fn a() {}\n+fn a() { b() }\n"), "{diff}");
        assert!(diff.contains("--- a/gone.txt\n+++ /dev/null\n"), "{diff}");
        assert!(diff.contains("+++ b/blob.bin\n(binary file changed, not shown)"), "{diff}");
        assert!(!diff.contains("keep.txt"), "{diff}");
    }

    #[test]
    fn a_workspace_over_its_cap_loses_its_largest_files_and_says_which() {
        let root = tempfile::tempdir().unwrap();
        for (rel, size) in [("small.rs", 10), ("big.bin", 1000), ("mid/data.csv", 300), (".git/pack", 200)] {
            std::fs::create_dir_all(root.path().join(rel).parent().unwrap()).unwrap();
            std::fs::write(root.path().join(rel), vec![b'x'; size]).unwrap();
        }
        assert_eq!(cut_to_cap(root.path(), 1510), None, "it fits");
        let cut = cut_to_cap(root.path(), 400).unwrap();
        assert_eq!(cut, WorkspaceCut { cap_bytes: 400, total_bytes: 1510, omitted: vec![("big.bin".into(), 1000), ("mid/data.csv".into(), 300)] });
        assert!(root.path().join("small.rs").is_file() && root.path().join(".git/pack").is_file());
        assert!(!root.path().join("big.bin").exists());
    }

    #[test]
    fn git_metadata_is_not_a_change() {
        let (before, after) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for root in [before.path(), after.path()] {
            std::fs::create_dir_all(root.join(".git/objects")).unwrap();
            std::fs::create_dir_all(root.join("vendor/lib/.git")).unwrap();
        }
        std::fs::write(before.path().join(".git/index"), "old index").unwrap();
        std::fs::write(after.path().join(".git/index"), "refreshed by git status").unwrap();
        std::fs::write(after.path().join(".git/objects/ab12"), "new object").unwrap();
        std::fs::write(after.path().join("vendor/lib/.git/FETCH_HEAD"), "x").unwrap();
        let (diff, changes) = diff_trees(before.path(), after.path());
        assert_eq!(changes, WorkspaceChanges::default());
        assert!(diff.is_empty(), "{diff}");
    }
}
