//! Grading end to end through the binary: a task with a rubric, judged by a scripted
//! OpenAI-compatible server; the leaderboard, its HTML file, and a regrade that reuses every
//! cached verdict.

mod common;

use common::*;
use prodbench_llm::scripted::{Reply, ScriptedServer};
use prodbench_task::scaffold::TaskFiles;

fn met(met: bool) -> Reply {
    Reply::OpenAiText(format!(r#"{{"reason": "the answer reads \"adler32() ... 65521\"", "met": {met}}}"#))
}

fn run_args<'a>(server_url: &'a str, agent: &'a str, task: &'a str, attempts: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        task,
        "--env",
        "local",
        "--agent",
        agent,
        "-k",
        attempts,
        "-n",
        "1",
        "--json",
        "--judge-model",
        "scripted-judge",
        "--judge-base-url",
        server_url,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_judged_job_is_graded_reported_and_regraded_from_cache() {
    // Per trial, three criteria in rubric order: names-function, names-modulus, false-completion.
    let server = ScriptedServer::start(vec![met(true), met(true), met(false)]).await;
    let url = server.url();
    let jobs = tempfile::tempdir().unwrap();
    let task = repo_root().join("examples/local-codebase-qna");
    let task = task.to_str().unwrap();

    let (run, code) = prodbench_json(jobs.path(), &run_args(&url, "oracle", task, "2"));
    assert_eq!(code, 0, "{run:#}");
    let job = run["job_id"].as_str().unwrap().to_string();
    assert_eq!(server.requests().len(), 3, "attempt 2 has the same evidence: its verdicts come from the cache");

    let (shown, _) = prodbench_json(jobs.path(), &["show", &job, "--json"]);
    for trial in shown["trials"].as_array().unwrap() {
        let grade = &trial["grade"];
        assert_eq!(grade["complete"], true, "{grade:#}");
        assert_eq!((grade["pass"].as_bool(), grade["resolve"].as_bool()), (Some(true), Some(true)));
        // names-function 3 + names-modulus 2, penalty not triggered: 5 / 5.
        assert_eq!(grade["points"], 1.0);
        let reason = grade["checks"].as_array().unwrap().iter().find(|c| c["name"] == "names-function").unwrap()["reason"].as_str().unwrap();
        assert!(reason.contains("adler32"), "{reason}");
    }

    // Without a judge the same task's criteria are ungraded, never silently met or unmet.
    let (nop, _) = prodbench_json(jobs.path(), &["run", task, "--env", "local", "--agent", "nop", "--json"]);
    let nop_job = nop["job_id"].as_str().unwrap().to_string();
    let (nop_shown, _) = prodbench_json(jobs.path(), &["show", &nop_job, "--json"]);
    let nop_grade = &nop_shown["trials"][0]["grade"];
    assert_eq!((nop_grade["complete"].as_bool(), nop_grade["resolve"].as_bool()), (Some(false), None), "{nop_grade:#}");
    assert_eq!(nop_grade["pass"], false, "the failing tests decide the pass even with ungraded criteria");

    let html = jobs.path().join("report.html");
    let (report, code) = prodbench_json(jobs.path(), &["report", &job, &nop_job, "--json", "--html", html.to_str().unwrap()]);
    assert_eq!(code, 0);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!((rows[0]["agent"].as_str(), rows[0]["score"].as_f64(), rows[0]["resolve"]["rate"].as_f64()), (Some("oracle"), Some(100.0), Some(1.0)));
    assert_eq!((rows[1]["agent"].as_str(), rows[1]["score"].as_f64(), rows[1]["ungraded_trials"].as_u64()), (Some("nop"), Some(0.0), Some(1)));
    assert_eq!(report["comparisons"][0]["difference"]["mean_difference"], -100.0);
    let page = std::fs::read_to_string(&html).unwrap();
    for id in ["chart-leaderboard", "chart-heatmap", "chart-failures", "names-function"] {
        assert!(page.contains(id), "the HTML report lacks {id}");
    }
    assert!(page.contains("format version 1"), "the HTML report renders the --json document");
    // A trial page shows what the judge said and about which claim, and who judged.
    let shown_in_html = [
        "the answer reads &quot;adler32() ... 65521&quot;",
        "The answer names adler32 as the function that computes the checksum.",
        "<dt>Judged by</dt><dd>scripted-judge</dd>",
        "penalty avoided",
        "<summary>Agent's answer</summary>",
    ];
    for text in shown_in_html {
        assert!(page.contains(text), "the HTML report lacks {text:?}");
    }
    let first_dir = shown["trials"][0]["dir"].as_str().unwrap();
    assert!(page.contains(&format!("<a href=\"{job}/{first_dir}/\">")), "trial directories are linked relative to the page");

    // A regrade verifies the saved workspaces again; nothing changed, so no model call.
    let before = server.requests().len();
    let (regraded, code) = prodbench_json(jobs.path(), &["regrade", &job, "--json"]);
    assert_eq!(code, 0, "{regraded:#}");
    let trials = regraded["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    assert!(trials.iter().all(|t| t["after"] == 1.0 && t["pass"] == true), "{regraded:#}");
    assert_eq!(server.requests().len(), before, "unchanged evidence is never judged twice");
    let trial_dir = jobs.path().join(&job).join(shown["trials"][0]["dir"].as_str().unwrap());
    assert!(trial_dir.join("regrade/1/logs/reward.txt").is_file(), "the regrade's verifier output is kept apart");

    // A regrade whose judge fails (here: refuses the key) would throw verdicts away:
    // refused, the grades stand.
    let unauthorized = Reply::Status { status: 401, body: r#"{"error": {"message": "bad key"}}"#.into(), retry_after: None };
    let failing = ScriptedServer::start(vec![unauthorized; 6]).await;
    let failing_url = failing.url();
    let (refused, code) = prodbench_json(jobs.path(), &["regrade", &job, "--json", "--judge-model", "other-judge", "--judge-base-url", &failing_url]);
    assert_eq!(code, 1, "{refused:#}");
    for trial in refused["trials"].as_array().unwrap() {
        assert!(trial["error"].as_str().unwrap().contains("no verdict on names-function"), "{refused:#}");
    }
    let (report, _) = prodbench_json(jobs.path(), &["report", &job, "--json"]);
    assert_eq!((report["rows"][0]["resolve"]["rate"].as_f64(), report["rows"][0]["ungraded_trials"].as_u64()), (Some(1.0), Some(0)), "{report:#}");
}

#[test]
fn a_verifier_error_scores_zero_until_a_regrade_with_fixed_tests_scores_it() {
    let jobs = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    let task = dataset.path().join("buggy-tests");
    TaskFiles::new("buggy-tests")
        .without_dockerfile()
        .instruction("Write done to /app/out.txt.\n")
        .file("environment/README", "workspace\n")
        .solution("echo done > /app/out.txt\n")
        // The task's bug: the reward goes to the wrong file, so the verifier finds none.
        .tests("grep -q done /app/out.txt && echo 1 > /logs/verifier/reward.text\n")
        .write(&task)
        .unwrap();
    let task = task.to_str().unwrap();

    let (run, code) = prodbench_json(jobs.path(), &["run", task, "--env", "local", "--agent", "oracle", "--json"]);
    assert_eq!(code, 1, "a verifier error asks for a look: {run:#}");
    assert_eq!(run["summary"]["statuses"], serde_json::json!({ "verifier_error": 1 }), "{run:#}");
    assert_eq!((run["summary"]["scored"].as_u64(), run["summary"]["score"].as_f64()), (Some(1), Some(0.0)), "scored as 0: {run:#}");
    let job = run["job_id"].as_str().unwrap().to_string();
    let (report, _) = prodbench_json(jobs.path(), &["report", &job, "--json"]);
    assert_eq!(report["rows"][0]["score"], 0.0, "{report:#}");

    write(std::path::Path::new(task), "tests/test.sh", "grep -q done /app/out.txt && echo 1 > /logs/verifier/reward.txt\n");
    let (regraded, code) = prodbench_json(jobs.path(), &["regrade", &job, "--json"]);
    assert_eq!(code, 0, "{regraded:#}");
    let trial = &regraded["trials"][0];
    assert_eq!(
        (trial["status_before"].as_str(), trial["status_after"].as_str(), trial["after"].as_f64()),
        (Some("verifier_error"), Some("passed"), Some(1.0)),
        "{regraded:#}"
    );
    assert!(trial["note"].as_str().unwrap().contains("the task changed since the run"), "{regraded:#}");
    let (shown, _) = prodbench_json(jobs.path(), &["show", &job, "--json"]);
    assert_eq!(shown["summary"]["statuses"], serde_json::json!({ "passed": 1 }), "the store follows the regrade: {shown:#}");
    let (report, _) = prodbench_json(jobs.path(), &["report", &job, "--json"]);
    assert_eq!(report["rows"][0]["score"], 100.0, "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_judge_is_reported_not_hidden() {
    let unauthorized = Reply::Status { status: 401, body: r#"{"error": {"message": "bad key"}}"#.into(), retry_after: None };
    let server = ScriptedServer::start(vec![unauthorized; 3]).await;
    let url = server.url();
    let jobs = tempfile::tempdir().unwrap();
    let task = repo_root().join("examples/local-codebase-qna");
    let (run, code) = prodbench_json(
        jobs.path(),
        &["run", task.to_str().unwrap(), "--env", "local", "--agent", "oracle", "--json", "--judge-model", "j", "--judge-base-url", &url],
    );
    assert_eq!(code, 1, "ungraded criteria from a failing judge ask for a look: {run:#}");
    assert_eq!(run["summary"]["judge_failures"], 3, "{run:#}");
    let job = run["job_id"].as_str().unwrap();
    let (shown, _) = prodbench_json(jobs.path(), &["show", job, "--json"]);
    let checks = shown["trials"][0]["grade"]["checks"].as_array().unwrap();
    let criteria: Vec<_> = checks.iter().filter(|c| c["kind"] == "criterion").collect();
    assert_eq!(criteria.len(), 3, "{checks:#?}");
    for check in criteria {
        assert_eq!(check["score"], serde_json::Value::Null, "{check:#}");
        assert_eq!(check["reason"], serde_json::Value::Null, "the error is not the judge's reason: {check:#}");
        assert!(check["judge_error"].as_str().unwrap().contains("401"), "{check:#}");
    }
}

/// The question-answering example, copied so a test can change it.
fn qna_copy(root: &std::path::Path) -> std::path::PathBuf {
    let task = root.join("qna");
    copy_tree(&repo_root().join("examples/local-codebase-qna"), &task);
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn git_metadata_and_probe_leftovers_are_not_charged_to_a_read_only_agent() {
    let server = ScriptedServer::start(vec![met(true), met(true), met(false)]).await;
    let url = server.url();
    let jobs = tempfile::tempdir().unwrap();
    let task = qna_copy(jobs.path());
    write(&task, "environment/setup.sh", "mkdir -p .git && echo 'index before' > .git/index\n");
    // What `git status` does to a repository it only reads.
    let solve = std::fs::read_to_string(task.join("solution/solve.sh")).unwrap();
    write(&task, "solution/solve.sh", &format!("{solve}echo 'index refreshed' > /app/.git/index\n"));
    let rubric = std::fs::read_to_string(task.join("rubric.toml")).unwrap();
    write(&task, "rubric.toml", &format!("{rubric}\n[[state]]\nname = \"leaves-a-cache\"\ncommand = \"touch /app/src/probe.pyc && echo probed\"\n"));

    let mut args = run_args(&url, "oracle", task.to_str().unwrap(), "1");
    args.extend(["--judge-context-chars", "2000"]);
    let (run, code) = prodbench_json(jobs.path(), &args);
    assert_eq!(code, 0, "{run:#}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(jobs.path().join(run["job_id"].as_str().unwrap()).join("config.json")).unwrap()).unwrap();
    assert_eq!(config["judge"]["context_chars"], 2000, "recorded with the job, so a resume or regrade judges with the same budget");
    let (shown, _) = prodbench_json(jobs.path(), &["show", run["job_id"].as_str().unwrap(), "--json"]);
    let trial = &shown["trials"][0];
    let grade = &trial["grade"];
    assert_eq!(grade["forbidden_changes"], serde_json::json!([]), "{grade:#}");
    assert_eq!(grade["scratch_files"], serde_json::json!([]), "{grade:#}");
    assert_eq!((grade["pass"].as_bool(), grade["points"].as_f64()), (Some(true), Some(1.0)), "{grade:#}");
    let trial_dir = jobs.path().join(run["job_id"].as_str().unwrap()).join(trial["dir"].as_str().unwrap());
    let diff = std::fs::read_to_string(trial_dir.join("diff.patch")).unwrap();
    assert!(diff.is_empty(), "{diff}");
    let probe = std::fs::read_to_string(trial_dir.join("state/leaves-a-cache.txt")).unwrap();
    assert!(probe.contains("probed"), "the probe still ran: {probe}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rubric_added_after_the_run_cannot_be_judged_on_missing_evidence() {
    let server = ScriptedServer::start(vec![met(true)]).await;
    let jobs = tempfile::tempdir().unwrap();
    let task = qna_copy(jobs.path());
    let rubric = std::fs::read_to_string(task.join("rubric.toml")).unwrap();
    std::fs::remove_file(task.join("rubric.toml")).unwrap();
    let (run, code) = prodbench_json(jobs.path(), &["run", task.to_str().unwrap(), "--env", "local", "--agent", "oracle", "--json"]);
    assert_eq!(code, 0, "{run:#}");

    write(&task, "rubric.toml", &rubric);
    let job = run["job_id"].as_str().unwrap();
    let (regraded, code) = prodbench_json(jobs.path(), &["regrade", job, "--json", "--judge-model", "scripted-judge", "--judge-base-url", &server.url()]);
    assert_eq!(code, 1, "{regraded:#}");
    let trial = &regraded["trials"][0];
    let expected = format!("trial {} has no saved judge evidence (it ran without a rubric); run it again", trial["trial_id"].as_str().unwrap());
    assert_eq!(trial["error"].as_str(), Some(expected.as_str()), "{regraded:#}");
    assert!(server.requests().is_empty(), "nothing was judged on empty evidence");
}
