//! The built-in agent with a real model: the local Qwen2.5-Coder-1.5B served by llama-server
//! (`scripts/setup-local-llm.sh --serve`), through `prodbench run`, on two small tasks:
//! write a file with given content, and fix a one-line bug so the tests pass.
//!
//! Runs when `PRODBENCH_LOCAL_LLM_URL` names the server; `PRODBENCH_REQUIRE_LOCAL_LLM=1`
//! (set by `.ci/run`) makes its absence a failure. A 1.5B model's success varies, so the test
//! prints each task's pass rate (also to `target/tmp/real-agent.txt`, which `.ci/run`
//! shows) and asserts what must hold whatever the model does: every
//! trial is scored (never an infrastructure error), leaves a valid ATIF trajectory whose
//! tool calls went through the real protocol, and records its reward. The one floor: the
//! write-a-file task passes at least once (it passed 3 of 3 when measured).

mod common;

use common::*;
use serde_json::Value;

const ATTEMPTS: &str = "2";

fn model_url() -> Option<String> {
    let url = std::env::var("PRODBENCH_LOCAL_LLM_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() && std::env::var("PRODBENCH_REQUIRE_LOCAL_LLM").as_deref() == Ok("1") {
        panic!("PRODBENCH_REQUIRE_LOCAL_LLM=1 but PRODBENCH_LOCAL_LLM_URL is not set: run scripts/setup-local-llm.sh --serve");
    }
    if url.is_none() {
        eprintln!("note: PRODBENCH_LOCAL_LLM_URL not set; skipping the real-model agent test");
    }
    url
}

/// Runs the built-in agent on `task`; returns (passed, trials) after checking every trial.
fn run_task(jobs: &std::path::Path, url: &str, task: &str) -> (usize, usize) {
    let task_dir = repo_root().join(task);
    let (doc, _) = prodbench_json(
        jobs,
        &[
            "run",
            task_dir.to_str().unwrap(),
            "--env",
            "local",
            "--agent",
            "prodbench",
            "--model",
            "qwen2.5-coder-1.5b",
            "--model-base-url",
            url,
            "-k",
            ATTEMPTS,
            "-n",
            "1",
            "--max-turns",
            "10",
            "--json",
        ],
    );
    let job = doc["job_id"].as_str().unwrap_or_else(|| panic!("{doc:#}"));
    let (shown, _) = prodbench_json(jobs, &["show", job, "--json"]);
    let trials = shown["trials"].as_array().unwrap();
    for trial in trials {
        let status = trial["status"].as_str().unwrap();
        assert!(["passed", "failed", "agent_limit", "agent_error"].contains(&status), "{task}: a real-model trial must be scored: {trial:#}");
        assert!(trial["reward"].is_number() || status == "agent_error", "{task}: no reward recorded: {trial:#}");
        let dir = jobs.join(job).join(trial["dir"].as_str().unwrap());
        let text = std::fs::read_to_string(dir.join("agent/trajectory.json")).expect("every trial leaves a trajectory");
        let trajectory: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(prodbench_trajectory::validate(&trajectory), Vec::<String>::new(), "{task}: invalid trajectory");
        let calls = trajectory["steps"].as_array().unwrap().iter().filter_map(|s| s["tool_calls"].as_array()).map(Vec::len).sum::<usize>();
        assert!(calls > 0, "{task}: the model made no tool call through the protocol:\n{text}");
        assert!(trajectory["final_metrics"]["total_completion_tokens"].as_u64().unwrap_or(0) > 0, "{task}: token usage was not recorded");
    }
    let passed = trials.iter().filter(|t| t["status"] == "passed").count();
    (passed, trials.len())
}

#[test]
fn the_local_model_drives_the_builtin_agent_on_two_tasks() {
    let Some(url) = model_url() else { return };
    let jobs = tempfile::tempdir().unwrap();
    let mut rates = Vec::new();
    for task in ["examples/write-file", "examples/local-fix-script"] {
        let (passed, trials) = run_task(jobs.path(), &url, task);
        eprintln!("real model pass rate on {task}: {passed}/{trials}");
        rates.push((task, passed, trials));
    }
    let line = format!("qwen2.5-coder-1.5b, built-in agent: {}\n", rates.iter().map(|(t, p, n)| format!("{t} {p}/{n}")).collect::<Vec<_>>().join(", "));
    print!("{line}");
    std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-agent.txt"), &line).expect("writing the pass rates");
    assert!(rates[0].1 >= 1, "the write-a-file task never passed: {rates:?}");
}
