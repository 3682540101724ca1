//! Every example gets reward 1 with `oracle` and 0 with `nop`; every adversarial agent gets
//! 0. End to end through the real binary and the real sandboxes.

mod common;

use common::*;

fn assert_rewards(jobs: &std::path::Path, path: &str, env: &str, agent: &str, expected: f64) {
    let full = repo_root().join(path);
    let (doc, code) = prodbench_json(jobs, &["run", full.to_str().unwrap(), "--env", env, "--agent", agent, "-n", "3", "--json"]);
    assert_eq!(code, 0, "{path} {env} {agent}: {doc:#}");
    let rewards = mean_rewards(&doc);
    assert!(!rewards.is_empty());
    for (task, reward) in rewards {
        assert_eq!(reward, Some(expected), "{task} on {env} with {agent}: {doc:#}");
    }
}

#[test]
fn local_examples_pass_with_oracle_and_fail_with_nop() {
    let jobs = tempfile::tempdir().unwrap();
    for example in
        ["examples/local-word-count", "examples/local-fix-script", "examples/local-codebase-qna", "examples/local-mcp-inventory", "examples/write-file"]
    {
        assert_rewards(jobs.path(), example, "local", "oracle", 1.0);
        assert_rewards(jobs.path(), example, "local", "nop", 0.0);
    }
}

#[test]
fn docker_examples_pass_with_oracle_and_fail_with_nop() {
    if !docker_available() {
        return;
    }
    let jobs = tempfile::tempdir().unwrap();
    for example in ["examples/docker-hello-file", "examples/docker-http-service", "examples/docker-separate-verifier", "examples/write-file"] {
        assert_rewards(jobs.path(), example, "docker", "oracle", 1.0);
        assert_rewards(jobs.path(), example, "docker", "nop", 0.0);
    }
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
        assert_eq!((task["scored"].as_u64(), task["mean_reward"].as_f64()), (Some(1), Some(0.0)), "{name} on {env}: {doc:#}");
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
