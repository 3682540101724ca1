//! The command line end to end: bad input, task checks, infrastructure retries, and the
//! crash-safety promise (SIGKILL mid-job, then `gc` and `--resume`: every trial ends exactly
//! once, nothing leaks; a resume first removes what the killed run left).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn slow_task(dataset: &Path, name: &str) {
    let dir = dataset.join(name);
    write(&dir, "task.toml", &format!("[task]\nname = \"{name}\"\n[agent]\ntimeout_sec = 60\n"));
    write(&dir, "instruction.md", "Write done.\n");
    write(&dir, "environment/Dockerfile", "FROM debian:bookworm-slim\nWORKDIR /app\n");
    write(&dir, "solution/solve.sh", "sleep 3\necho done > /app/out.txt\n");
    write(&dir, "tests/test.sh", "if [ \"$(cat /app/out.txt)\" = done ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n");
}

#[test]
fn a_missing_path_is_one_clear_error_with_a_hint() {
    let jobs = tempfile::tempdir().unwrap();
    let out = prodbench(jobs.path(), &["run", "/no/such/dataset", "--env", "local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: /no/such/dataset"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_grading_flags_are_one_clear_error() {
    let jobs = tempfile::tempdir().unwrap();
    let task = repo_root().join("examples/local-word-count");
    let out = prodbench(jobs.path(), &["run", task.to_str().unwrap(), "--env", "local", "--weights", "speed=1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--weights: unknown component \"speed\"") && stderr.contains("hint:"), "{stderr}");
    let out = prodbench(jobs.path(), &["run", task.to_str().unwrap(), "--env", "local", "--judge-model", "gpt-4o-mini"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs an API key") && stderr.contains("PRODBENCH_JUDGE_API_KEY"), "{stderr}");
    let out = prodbench(jobs.path(), &["run", task.to_str().unwrap(), "--env", "local", "--judge-model", "q", "--judge-base-url", "localhost:8099"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--judge-base-url: expected an http:// or https:// URL"), "{stderr}");
    let shown = prodbench(jobs.path(), &["show", "latest"]);
    assert_eq!(shown.status.code(), Some(2), "a refused run must not leave a job behind");
}

#[test]
fn an_unknown_job_names_recent_ones() {
    let jobs = tempfile::tempdir().unwrap();
    let out = prodbench(jobs.path(), &["show", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job \"nope\""));
}

#[test]
fn a_broken_task_is_reported_and_the_rest_run_unless_strict() {
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    let good = repo_root().join("examples/local-word-count");
    prodbench_sandbox::copy_tree(&good, &dataset.path().join("good")).unwrap();
    write(dataset.path(), "broken/task.toml", "[environment]\ncpus = \"many\"\n");
    write(dataset.path(), "broken/instruction.md", "x\n");
    let ds = dataset.path().to_str().unwrap();

    let check = prodbench(jobs.path(), &["tasks", "check", ds]);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1));
    assert!(stderr.contains("broken/task.toml:2: error:"), "{stderr}");
    assert!(stderr.contains("broken/tests/test.sh: error: missing"), "{stderr}");

    let strict = prodbench(jobs.path(), &["run", ds, "--env", "local", "--strict"]);
    assert_eq!(strict.status.code(), Some(2));

    let (doc, code) = prodbench_json(jobs.path(), &["run", ds, "--env", "local", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(mean_rewards(&doc), vec![("local-word-count".to_string(), Some(1.0))]);
}

#[test]
fn an_infrastructure_failure_is_retried_kept_and_never_scored() {
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    prodbench_sandbox::copy_tree(&repo_root().join("examples/local-word-count"), &dataset.path().join("good")).unwrap();
    let bad = dataset.path().join("bad-environment");
    write(&bad, "task.toml", "[task]\nname = \"bad-environment\"\n");
    write(&bad, "instruction.md", "x\n");
    write(&bad, "environment/setup.sh", "echo 'cannot reach the package mirror' >&2\nexit 1\n");
    write(&bad, "tests/test.sh", "echo 1 > /logs/verifier/reward.txt\n");
    write(&bad, "solution/solve.sh", "true\n");
    let ds = dataset.path().to_str().unwrap();

    let (doc, code) = prodbench_json(jobs.path(), &["run", ds, "--env", "local", "--agent", "oracle", "--max-retries", "2", "--json"]);
    assert_eq!(code, 1, "a job with infrastructure errors exits 1: {doc:#}");
    let summary = &doc["summary"];
    assert_eq!(summary["statuses"]["infra_error"], 1, "{summary:#}");
    assert_eq!(summary["passed"], 1, "the healthy task still ran: {summary:#}");
    assert_eq!(summary["scored"], 1, "the infrastructure error is not scored: {summary:#}");
    assert_eq!(summary["mean_reward"], 1.0);
    let bad_summary = summary["tasks"].as_array().unwrap().iter().find(|t| t["task"] == "bad-environment").unwrap();
    assert_eq!(bad_summary["retried"], 2, "{bad_summary:#}");
    assert!(bad_summary["mean_reward"].is_null());

    // Every try is kept with its own evidence.
    let job_id = doc["job_id"].as_str().unwrap();
    let (shown, _) = prodbench_json(jobs.path(), &["show", job_id, "--json"]);
    let tries: Vec<&serde_json::Value> = shown["trials"].as_array().unwrap().iter().filter(|t| t["task_name"] == "bad-environment").collect();
    let numbers: Vec<u64> = tries.iter().map(|t| t["try_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers.len(), 3, "1 try + 2 retries: {tries:#?}");
    assert!(numbers.contains(&1) && numbers.contains(&2) && numbers.contains(&3), "{numbers:?}");
    for t in tries {
        assert_eq!(t["status"], "infra_error");
        let error = std::fs::read_to_string(jobs.path().join(job_id).join(t["dir"].as_str().unwrap()).join("error.txt")).unwrap();
        assert!(error.contains("setup.sh failed") && error.contains("cannot reach the package mirror"), "{error}");
    }
}

/// Held by the tests that SIGKILL a job: a `gc` in one would reap the other's leftovers.
static KILLED_JOBS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn sigkill_mid_job_then_gc_and_resume_finishes_every_trial_once() {
    if !docker_available() {
        return;
    }
    let _serial = KILLED_JOBS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    for name in ["slow-a", "slow-b", "slow-c"] {
        slow_task(dataset.path(), name);
    }
    let ds = dataset.path().to_str().unwrap();
    let mut child = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "run", ds, "--env", "docker", "-k", "2", "-n", "2", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some trial is running in a container.
    let job_id = wait_for_running_container(jobs.path());
    child.kill().unwrap(); // SIGKILL: no cleanup can run
    child.wait().unwrap();
    let label = format!("dev.prodbench.job={job_id}");
    assert!(!containers_with_label(&label).is_empty(), "the killed job should have left containers");

    let (gc, code) = prodbench_json(jobs.path(), &["gc", "--json"]);
    assert_eq!(code, 0);
    assert!(!gc["containers"].as_array().unwrap().is_empty(), "{gc:#}");
    let removed = gc["removed"].as_array().unwrap();
    assert!(removed.iter().any(|r| r["backend"] == "docker" && r["kind"] == "container"), "{gc:#}");
    assert!(containers_with_label(&label).is_empty(), "gc left containers");

    let (resumed, code) = prodbench_json(jobs.path(), &["run", "--resume", &job_id, "--json"]);
    assert_eq!(code, 0, "{resumed:#}");
    assert_eq!(resumed["summary"]["trials"], 6);
    assert_eq!(resumed["summary"]["passed"], 6);
    assert_eq!(resumed["summary"]["unfinished"], 0);
    assert!(containers_with_label(&label).is_empty(), "resume left containers");

    // Exactly one final status per (task, attempt); the interrupted tries are kept.
    let (shown, _) = prodbench_json(jobs.path(), &["show", &job_id, "--json"]);
    let mut finals: HashMap<(String, u64), usize> = HashMap::new();
    let mut interrupted = 0;
    for t in shown["trials"].as_array().unwrap() {
        let key = (t["task_name"].as_str().unwrap().to_string(), t["attempt"].as_u64().unwrap());
        match t["status"].as_str().unwrap() {
            "interrupted" => interrupted += 1,
            _ => *finals.entry(key).or_default() += 1,
        }
    }
    assert_eq!(finals.len(), 6);
    assert!(finals.values().all(|&n| n == 1), "{finals:?}");
    assert!(interrupted >= 1, "the interrupted tries must be kept as evidence");

    // Resuming a finished job runs nothing.
    let (again, _) = prodbench_json(jobs.path(), &["run", "--resume", &job_id, "--json"]);
    assert_eq!(again["summary"]["trials"], 6);
}

#[test]
fn resume_after_sigkill_first_removes_what_the_killed_run_left() {
    if !docker_available() {
        return;
    }
    let _serial = KILLED_JOBS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    slow_task(dataset.path(), "sleepy");
    write(&dataset.path().join("sleepy"), "solution/solve.sh", "sleep 30\necho done > /app/out.txt\n");
    let mut child = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "run", dataset.path().to_str().unwrap(), "--env", "docker", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let job_id = wait_for_running_container(jobs.path());
    child.kill().unwrap(); // SIGKILL: the container keeps running
    child.wait().unwrap();
    let label = format!("dev.prodbench.job={job_id}");
    let orphans = containers_with_label(&label);
    assert!(!orphans.is_empty(), "the killed job should have left its container");

    let resumed = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "run", "--resume", &job_id, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the resumed run has a container of its own, the orphans must already be gone.
    let deadline = Instant::now() + Duration::from_secs(300);
    let running = loop {
        assert!(Instant::now() < deadline, "the resumed run started no container in time");
        let running = containers_with_label(&label);
        if running.iter().any(|c| !orphans.contains(c)) {
            break running;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(orphans.iter().all(|c| !running.contains(c)), "the killed run's containers outlived the resume's start: {orphans:?} in {running:?}");
    let out = resumed.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("removed {} sandboxes left by the job's earlier run", orphans.len())), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&doc["summary"]["passed"], &doc["summary"]["unfinished"]), (&1.into(), &0.into()), "{doc:#}");
    assert!(containers_with_label(&label).is_empty(), "the resumed run left containers");
}

#[test]
fn a_finished_local_job_leaves_no_sandbox_directory() {
    let jobs = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let task = repo_root().join("examples/local-word-count");
    let out = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "run", task.to_str().unwrap(), "--env", "local", "--agent", "nop", "--json"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let job_dir = tmp.path().join("prodbench-sandboxes").join(doc["job_id"].as_str().unwrap());
    assert!(!job_dir.exists(), "the job left {}", job_dir.display());
}

#[test]
fn gc_removes_the_local_sandboxes_of_dead_owners_only_and_notes_a_missing_daemon() {
    let jobs = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("prodbench-sandboxes");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // An owner of the older `host:pid` format that is gone, and one that runs (this test).
    write(&root, "dead-job/owner", &format!("{}:{}", host.trim(), u32::MAX - 1));
    write(&root, "dead-job/t1-agent/workspace/f", "x");
    write(&root, "live-job/owner", &format!("{}.{}", host.trim(), std::process::id()));
    write(&root, "live-job/t2-agent/workspace/f", "x");
    // No Docker daemon here (nor any reaping of other tests' containers): only a note.
    let out = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "gc", "--json"])
        .env("TMPDIR", tmp.path())
        .env("DOCKER_HOST", format!("unix://{}", tmp.path().join("no-docker.sock").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let gc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(gc["notes"][0].as_str().unwrap().starts_with("docker skipped: "), "{gc:#}");
    assert_eq!(gc["docker_note"], gc["notes"][0]);
    let local: Vec<&serde_json::Value> = gc["removed"].as_array().unwrap().iter().filter(|r| r["backend"] == "local").collect();
    assert_eq!(local.len(), 1, "{gc:#}");
    assert_eq!(local[0]["kind"], "sandbox_directory");
    assert!(local[0]["name"].as_str().unwrap().ends_with("dead-job/t1-agent"), "{gc:#}");
    assert_eq!(gc["local_sandbox_dirs"], 1);
    assert!(!root.join("dead-job").exists() && root.join("live-job/t2-agent").exists());
}

#[test]
fn a_stored_job_with_an_unknown_backend_is_refused_not_run_on_docker() {
    let jobs = tempfile::tempdir().unwrap();
    let store = prodbench_store::Store::open(jobs.path()).unwrap();
    let config = serde_json::json!({
        "path": repo_root().join("examples/local-word-count"), "agent": "nop", "attempts": 1, "concurrency": 1,
        "env": "kubernetes", "timeout_multiplier": 1.0, "max_retries": 0,
    });
    let record = prodbench_store::JobRecord { job_id: "future-job".into(), created_at: prodbench_store::now(), state: "interrupted".into(), config };
    store.create_job(&record).unwrap();
    let out = prodbench(jobs.path(), &["run", "--resume", "future-job"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown sandbox backend \"kubernetes\" (known: docker, local)"), "{stderr}");
}

fn wait_for_running_container(jobs: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "no trial started in time");
        if let Some(job) = std::fs::read_dir(jobs).ok().and_then(|d| d.flatten().find(|e| e.path().is_dir())) {
            let id = job.file_name().to_string_lossy().into_owned();
            if !containers_with_label(&format!("dev.prodbench.job={id}")).is_empty() {
                std::thread::sleep(Duration::from_millis(500));
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_stops_the_job_removes_its_containers_and_resume_finishes_it() {
    if !docker_available() {
        return;
    }
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    for name in ["term-a", "term-b"] {
        slow_task(dataset.path(), name);
    }
    let ds = dataset.path().to_str().unwrap();
    let child = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "run", ds, "--env", "docker", "-n", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let job_id = wait_for_running_container(jobs.path());
    // SAFETY: kill(2) on our own child process.
    unsafe { libc_kill(child.id() as i32, 15) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("prodbench run --resume {job_id}")));
    assert!(containers_with_label(&format!("dev.prodbench.job={job_id}")).is_empty(), "SIGTERM left containers");
    let (resumed, code) = prodbench_json(jobs.path(), &["run", "--resume", &job_id, "--json"]);
    assert_eq!(code, 0, "{resumed:#}");
    assert_eq!(resumed["summary"]["passed"], 2);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn host_secrets_never_reach_the_local_sandbox() {
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    let dir = dataset.path().join("snoop");
    write(&dir, "task.toml", "[task]\nname = \"snoop\"\n");
    write(&dir, "instruction.md", "Nothing.\n");
    write(&dir, "environment/README", "an empty workspace\n");
    // Every process the agent can see, PID 1 (bwrap) included, and its own environment.
    write(&dir, "solution/solve.sh", "for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < \"$f\"; done; env\n");
    write(&dir, "tests/test.sh", "echo 0 > /logs/verifier/reward.txt\n");
    let secret = "sk-host-secret-4c1d";
    let out = Command::new(bin())
        .args(["--jobs-dir", jobs.path().to_str().unwrap(), "run", dir.to_str().unwrap(), "--env", "local", "--agent", "oracle"])
        .env("PRODBENCH_JUDGE_API_KEY", secret)
        .env("OPENAI_API_KEY", secret)
        .env("ANTHROPIC_API_KEY", secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(files_containing(jobs.path(), secret), Vec::<std::path::PathBuf>::new(), "a host secret reached the results");
    let dumped = files_containing(jobs.path(), "== /proc/1/environ");
    assert!(dumped.iter().any(|f| f.ends_with("agent/oracle.txt")), "the probe must have read PID 1's environment: {dumped:?}");
}
