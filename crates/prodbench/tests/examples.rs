//! Every example gets reward 1 with `oracle` and 0 with `nop`; every adversarial agent gets
//! 0. End to end through the real binary and the real sandboxes.

mod common;

use common::*;

/// The examples only the docker backend runs, and what the local backend's reason names:
/// sidecar containers, and what only an image has (`[environment] backends = ["docker"]`).
const DOCKER_ONLY: [(&str, &str); 2] = [("docker-compose-sidecar", "docker-compose.yaml"), ("live-schema-migration", "backends = [\"docker\"]")];

/// Runs every example (the README's quick start, `prodbench run examples`) on `env`: each
/// task scores `expected` (0-100) and none errs; none is skipped, but for the docker-only
/// ones on local, each with its reason.
fn assert_every_example_scores(jobs: &std::path::Path, env: &str, agent: &str, expected: f64) {
    let examples = repo_root().join("examples");
    let (doc, code) = prodbench_json(jobs, &["run", examples.to_str().unwrap(), "--env", env, "--agent", agent, "-n", "3", "--json"]);
    assert_eq!(code, 0, "{env} {agent}: {doc:#}");
    let skipped = doc["summary"]["skipped"].as_array().expect("summary.skipped");
    let expected_skipped: &[(&str, &str)] = if env == "local" { &DOCKER_ONLY } else { &[] };
    let mut skipped_names: Vec<&str> = skipped.iter().map(|t| t["name"].as_str().unwrap()).collect();
    skipped_names.sort_unstable();
    assert_eq!(skipped_names, expected_skipped.iter().map(|(name, _)| *name).collect::<Vec<_>>(), "every other example runs on {env}: {doc:#}");
    for task in skipped {
        let because = expected_skipped.iter().find(|(name, _)| task["name"] == *name).map(|(_, because)| *because).unwrap();
        let reason = task["diagnostics"][0].as_str().unwrap();
        assert_eq!(task["skipped"], "unsupported", "{doc:#}");
        assert!(reason.contains("cannot run on the local backend") && reason.contains(because), "{reason}");
    }
    let scores = task_scores(&doc);
    assert_eq!(scores.len(), example_count(&examples) - expected_skipped.len(), "{doc:#}");
    for (task, score) in scores {
        let job_dir = std::path::Path::new(doc["job_dir"].as_str().unwrap());
        assert_eq!(score, Some(expected), "{task} on {env} with {agent}; its tests said:\n{}\n{doc:#}", test_stdout(job_dir, &task));
    }
}

/// What the tests of `task`'s trials printed: the first thing to read when one scores wrong.
fn test_stdout(job_dir: &std::path::Path, task: &str) -> String {
    let trials = std::fs::read_dir(job_dir.join("trials")).into_iter().flatten().flatten();
    let of_task = trials.filter(|t| t.file_name().to_string_lossy().starts_with(&format!("{task}__")));
    of_task.map(|t| std::fs::read_to_string(t.path().join("verifier/test-stdout.txt")).unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The examples on disk: every directory with a task.toml.
fn example_count(examples: &std::path::Path) -> usize {
    std::fs::read_dir(examples).unwrap().flatten().filter(|e| e.path().join("task.toml").is_file()).count()
}

#[test]
fn every_example_passes_with_oracle_and_fails_with_nop_on_local() {
    let jobs = tempfile::tempdir().unwrap();
    assert_every_example_scores(jobs.path(), "local", "oracle", 100.0);
    assert_every_example_scores(jobs.path(), "local", "nop", 0.0);
}

#[test]
fn every_example_passes_with_oracle_and_fails_with_nop_on_docker() {
    if !docker_available() {
        return;
    }
    let jobs = tempfile::tempdir().unwrap();
    assert_every_example_scores(jobs.path(), "docker", "oracle", 100.0);
    assert_every_example_scores(jobs.path(), "docker", "nop", 0.0);
}

/// The schema-migration example grades the migration's traffic, not only its result: the
/// one-statement migration (`ALTER ... TYPE bigint`, a table rewrite under an exclusive lock)
/// leaves the right schema and every write stored, and scores 0 for the writes that failed
/// while it ran.
#[test]
fn the_schema_migrations_naive_alter_fails_on_its_failed_writes_on_docker() {
    if !docker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("live-schema-migration");
    copy_tree(&repo_root().join("examples/live-schema-migration"), &task);
    let naive =
        "#!/bin/bash\nset -euo pipefail\npsql -h 127.0.0.1 -U postgres shop -v ON_ERROR_STOP=1 -c 'ALTER TABLE orders ALTER COLUMN amount_cents TYPE bigint'\n";
    write(&task, "solution/solve.sh", naive);
    let jobs = tempfile::tempdir().unwrap();
    let (doc, code) = prodbench_json(jobs.path(), &["run", task.to_str().unwrap(), "--env", "docker", "--agent", "oracle", "--json"]);
    assert_eq!((code, task_scores(&doc)), (0, vec![("live-schema-migration".to_string(), Some(0.0))]), "{doc:#}");
    // The tests check the schema and the rows first: this line means both passed.
    let stdout = files_containing(jobs.path(), "writes failed in the agent window (budget 10)").into_iter().find(|p| p.ends_with("verifier/test-stdout.txt"));
    let verdict = std::fs::read_to_string(stdout.expect("the failure is the agent window's failed writes")).unwrap();
    let failed: u32 = verdict.lines().find_map(|l| l.split(" writes failed in the agent window").next()?.parse().ok()).expect("a count");
    assert!(failed >= 30, "a rewrite under lock fails seconds of writes, not {failed}: {verdict}");
}

/// Every adversary scores 0. Most end `failed`; the one that makes the tests hang ends
/// `verifier_error`, scored as 0 (so the job exits 1: it needs a look) and never retried.
fn assert_adversaries_score_zero(env: &str) {
    let jobs = tempfile::tempdir().unwrap();
    let dataset = repo_root().join("tests/fixtures/adversarial");
    let (doc, code) = prodbench_json(jobs.path(), &["run", dataset.to_str().unwrap(), "--env", env, "--agent", "oracle", "-n", "4", "--json"]);
    assert_eq!(code, 1, "a verifier error makes the exit code 1: {doc:#}");
    let tasks = doc["summary"]["tasks"].as_array().expect("summary.tasks");
    assert_eq!(tasks.len(), 4, "{doc:#}");
    for task in tasks {
        let name = task["task"].as_str().unwrap();
        let expected = if name == "adversarial-hang-tests" { "verifier_error" } else { "failed" };
        assert_eq!(task["statuses"], serde_json::json!({ expected: 1 }), "{name} on {env}: {doc:#}");
        assert_eq!((task["scored"].as_u64(), task["score"].as_f64()), (Some(1), Some(0.0)), "{name} on {env}: {doc:#}");
    }
}

#[test]
fn adversarial_agents_get_zero_on_local() {
    assert_adversaries_score_zero("local");
}

#[test]
fn adversarial_agents_get_zero_on_docker() {
    if docker_available() {
        assert_adversaries_score_zero("docker");
    }
}

/// Every live adversary (issue 11, point 3) scores 0: a restarted service that writes the
/// reward and the tests, an agent that kills everything it sees and floods the service, one
/// that forges the traffic record. The one that kills the sandbox's exec server with its own
/// command ends `agent_error` (scored 0); the others `failed`.
fn assert_live_adversaries_score_zero(env: &str) {
    let jobs = tempfile::tempdir().unwrap();
    let dataset = repo_root().join("tests/fixtures/adversarial-live");
    let (doc, code) = prodbench_json(jobs.path(), &["run", dataset.to_str().unwrap(), "--env", env, "--agent", "oracle", "-n", "3", "--json"]);
    assert_eq!(code, 0, "{doc:#}");
    let tasks = doc["summary"]["tasks"].as_array().expect("summary.tasks");
    assert_eq!(tasks.len(), 3, "{doc:#}");
    for task in tasks {
        let name = task["task"].as_str().unwrap();
        let expected = if name == "adversarial-live-kills-everything" { "agent_error" } else { "failed" };
        assert_eq!(task["statuses"], serde_json::json!({ expected: 1 }), "{name} on {env}: {doc:#}");
        assert_eq!((task["scored"].as_u64(), task["score"].as_f64()), (Some(1), Some(0.0)), "{name} on {env}: {doc:#}");
    }
}

#[test]
fn live_adversaries_get_zero_on_local() {
    assert_live_adversaries_score_zero("local");
}

#[test]
fn live_adversaries_get_zero_on_docker() {
    if docker_available() {
        assert_live_adversaries_score_zero("docker");
    }
}
