//! Pages of small reports built the way `prodbench report` builds them (`report::build` over
//! trial records), for what each section shows and what it must never do. The sample report,
//! with everything at once, is rendered in `tests/html.rs` and in Chromium.

use std::path::PathBuf;

use prodbench_score::score::{Check, CheckKind, TrialGrade};
use prodbench_store::{JobRecord, TrialRecord, TrialStatus};
use prodbench_task::rubric::Component;

use super::format::escape;
use super::*;
use crate::report::{JobInput, VerifierOutput, build};

/// A finished first try of `task`'s `attempt`, rewarded 1 when it passed.
fn trial(task: &str, attempt: u32, status: TrialStatus) -> TrialRecord {
    let dir = format!("{task}__a{attempt}__t1");
    let mut record = TrialRecord::starting("", task, attempt, 1).with_ids(dir.clone(), &dir).task_digest("digest").agent("agent");
    record.status = Some(status);
    record.reward = status.is_scored().then_some(if status == TrialStatus::Passed { 1.0 } else { 0.0 });
    record
}

/// A job `id` of `agent`'s trials.
fn job(id: &str, agent: &str, trials: Vec<TrialRecord>) -> JobInput {
    let trials = trials.into_iter().map(|t| TrialRecord { job_id: id.into(), trial_id: format!("{id}.{}", t.trial_id), ..t }).collect();
    let job = JobRecord { state: prodbench_store::JobState::Finished, ..JobRecord::new(id, serde_json::json!({ "agent": agent })) };
    JobInput::new(job, trials, PathBuf::from("jobs").join(id))
}

fn report_of(jobs: Vec<JobInput>) -> Report {
    build(&jobs, false)
}

fn page(report: &Report) -> String {
    render(report, 1, None)
}

/// A test check, or with `claim` a criterion; `passed: None` is ungraded.
fn check(name: &str, passed: Option<bool>) -> Check {
    Check::scored(CheckKind::Test, name, Component::Feature, passed.map(|p| if p { 1.0 } else { 0.0 }))
}

/// A criterion decided by a judge (`None`: never judged).
fn criterion(name: &str, points: f64, passed: Option<bool>) -> Check {
    Check { kind: CheckKind::Criterion, claim: Some(format!("claims {name}")), points: Some(points), must_pass: points > 0.0, ..check(name, passed) }
}

/// A grade of `checks` with `composite`, whose pass and resolve are `pass`.
fn grade(checks: Vec<Check>, composite: f64, pass: Option<bool>) -> TrialGrade {
    TrialGrade {
        complete: checks.iter().all(|c| c.score.is_some()),
        checks,
        components: Vec::new(),
        composite: Some(composite),
        pass,
        resolve: pass,
        points: None,
        forbidden_changes: Vec::new(),
        scratch_files: Vec::new(),
    }
}

/// The `<tr>` whose first cell is `first_cell` in `html`.
fn table_row<'a>(html: &'a str, first_cell: &str) -> &'a str {
    let row = html.split("<tr>").find(|row| row.starts_with(&format!("<td>{first_cell}</td>"))).unwrap_or_else(|| panic!("a row for {first_cell}"));
    row.split("</tr>").next().unwrap()
}

#[test]
fn escapes_hostile_strings() {
    let hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&";
    let mut failed = trial(hostile, 1, TrialStatus::Failed);
    failed.error = Some(hostile.into());
    failed.agent_limit = Some(hostile.into());
    let mut judged = criterion(hostile, -1.0, Some(false));
    (judged.reason, judged.judge, judged.claim) = (Some(hostile.into()), Some(hostile.into()), Some(hostile.into()));
    let mut hostile_grade = grade(vec![judged, check(hostile, Some(false))], 0.0, Some(false));
    hostile_grade.forbidden_changes = vec![hostile.into()];
    failed.grade = Some(hostile_grade);
    let mut infra = trial("t", 2, TrialStatus::InfraError);
    infra.error = Some(hostile.into());
    let mut input = job(hostile, hostile, vec![failed, infra]);
    input.tasks.insert(hostile.into(), crate::report::TaskMeta { category: Some(hostile.into()), difficulty: None, tags: vec![hostile.into()] });
    let mut report = report_of(vec![input, job("other", "other", vec![trial("t", 1, TrialStatus::Passed)])]);
    let first = &mut report.trials[0];
    (first.path, first.answer) = (hostile.into(), Some(hostile.into()));
    first.verifier_output = Some(VerifierOutput { stdout: hostile.into(), stderr: hostile.into() });
    report.failure_modes.entry(hostile.into()).or_default().insert(prodbench_store::Outcome::Failed, 1);

    let html = page(&report);
    assert_eq!(html.matches("<script").count(), 1, "only the page's own filter script");
    assert!(!html.contains("<img"), "no element from the report");
    assert_eq!(html.matches("onerror=").count(), html.matches("&lt;img src=x onerror=").count(), "no attribute from the report");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;img src=x"));
    assert!(html.contains("id=\"trial-~3cscript~3ealert~281~29"), "ids keep a safe alphabet");
}

#[test]
fn handles_empty_and_sparse_reports() {
    let html = page(&report_of(Vec::new()));
    assert!(html.contains("<h1>prodbench report</h1>") && html.ends_with("</html>\n"));
    assert!(html.contains("No agents in this report.") && html.contains("No trials in this report."));
    assert!(html.contains("0 agents · 0 tasks · 0 trials · format version 1"));

    // Nothing scored: only infrastructure errors and an interrupted trial, no grade, no trajectory.
    let unscored = job("j", "a", vec![trial("t", 1, TrialStatus::InfraError), trial("u", 1, TrialStatus::Interrupted)]);
    let mut report = report_of(vec![unscored]);
    report.rows[0].usage.steps = Some(f64::NAN);
    let html = page(&report);
    assert!(html.ends_with("</html>\n"));
    let row = table_row(&html, "<a href=\"#trials-a\">a</a>");
    assert!(row.starts_with("<td><a href=\"#trials-a\">a</a></td><td class=\"num\">-</td>"), "no score: {row}");
    assert!(row.ends_with("<td class=\"num\">-</td>"), "a non-finite number shows as -: {row}");
    assert!(html.contains("No scored trials to chart."));
    assert!(html.contains("no trajectory") && html.contains("No checks graded."));
}

/// pass@k was shown at each row's own largest k, so rows were compared at different k.
#[test]
fn every_row_shows_pass_at_k_at_the_same_k() {
    let attempts = |passes: &[bool]| -> Vec<TrialRecord> {
        passes.iter().zip(1..).map(|(p, attempt)| trial("t", attempt, if *p { TrialStatus::Passed } else { TrialStatus::Failed })).collect()
    };
    let report = report_of(vec![job("j1", "three", attempts(&[true, false, false])), job("j2", "two", attempts(&[true, false]))]);
    assert_eq!(report.common_k, Some(2));
    let html = page(&report);
    assert!(html.contains("<th class=\"num\">pass@2</th><th class=\"num\">pass^2</th>"), "the column names its k");
    // three: n=3, c=1: pass@2 = 1 - C(2,2)/C(3,2) = 2/3, pass^2 = 0; two: n=2, c=1: pass@2 = 1, pass^2 = 0.
    let at_k = |agent: &str| table_row(&html, &format!("<a href=\"#trials-{agent}\">{agent}</a>")).to_string();
    assert!(at_k("three").contains("<td class=\"num\">33.3%</td><td class=\"num\">66.7%</td><td class=\"num\">0.0%</td>"), "{}", at_k("three"));
    assert!(at_k("two").contains("<td class=\"num\">50.0%</td><td class=\"num\">100.0%</td><td class=\"num\">0.0%</td>"), "{}", at_k("two"));
    let single = page(&report_of(vec![job("j3", "one", attempts(&[true]))]));
    assert!(!single.contains("<th class=\"num\">pass^"), "at k = 1 pass^1 is pass@1: no column, as in the terminal");
}

/// A task whose criteria were never judged showed "passed" and 100 in the heat map, unmarked.
#[test]
fn an_incomplete_grade_is_marked_in_the_heat_map_and_its_trial_is_undecided() {
    let mut unjudged = trial("qna", 1, TrialStatus::Passed);
    unjudged.grade = Some(grade(vec![check("test_answer", Some(true)), criterion("names-modulus", 2.0, None)], 1.0, None));
    let mut judged = trial("fix", 1, TrialStatus::Passed);
    judged.grade = Some(grade(vec![check("test_fix", Some(true))], 1.0, Some(true)));
    let html = page(&report_of(vec![job("j", "a", vec![unjudged, judged])]));
    let heat_map = &html[html.find("id=\"chart-heatmap\"").unwrap()..html.find("id=\"failures\"").unwrap()];
    assert!(heat_map.contains(">100*</a></td>"), "the incomplete cell is marked: {heat_map}");
    assert!(heat_map.contains("title=\"qna / a: 100.0 (incomplete: 1 of 1 trials have ungraded checks)\""), "{heat_map}");
    assert!(heat_map.contains(">100</a></td>"), "a complete cell is not");
    assert!(heat_map.contains("<p class=\"muted\">* incomplete: "), "a legend says what * means");
    let index = &html[html.find("<table class=\"trial-index\">").unwrap()..];
    let qna = index.split("<tr ").find(|row| row.contains(">qna</a>")).unwrap();
    assert!(qna.contains("<span class=\"status status-undecided\">undecided</span> <span class=\"muted\">status passed</span>"), "{qna}");
    assert!(html.contains("<dt>Pass</dt><dd>undecided</dd>"));
}

#[test]
fn the_trials_table_names_each_trials_job() {
    let report =
        report_of(vec![job("20261121-a", "a", vec![trial("t", 1, TrialStatus::Passed)]), job("20261121-b", "a", vec![trial("t", 1, TrialStatus::Failed)])]);
    let html = page(&report);
    assert!(html.contains("<th>Agent</th><th>Job</th>"));
    for job in ["20261121-a", "20261121-b"] {
        assert!(html.contains(&format!("<td>a</td><td><code>{job}</code></td>")), "the row of {job}'s trial");
    }
}

#[test]
fn the_leaderboard_shows_usage_per_trial_or_a_dash() {
    let mut report = report_of(vec![job("j1", "a", vec![trial("t", 1, TrialStatus::Passed)]), job("j2", "b", vec![trial("t", 1, TrialStatus::Passed)])]);
    report.rows[0].usage = crate::leaderboard::Usage { cost_usd: Some(0.25), tokens: Some(12345.4), steps: Some(7.0) };
    let html = page(&report);
    let row = |agent: &str| table_row(&html, &format!("<a href=\"#trials-{agent}\">{agent}</a>")).to_string();
    assert!(row("a").ends_with("<td class=\"num\">$0.2500</td><td class=\"num\">12,345</td><td class=\"num\">7.0</td>"), "{}", row("a"));
    assert!(row("b").ends_with("<td class=\"num\">-</td><td class=\"num\">-</td><td class=\"num\">-</td>"), "{}", row("b"));
}

#[test]
fn infra_errors_are_listed_apart_and_not_charted() {
    let mut infra = trial("t", 2, TrialStatus::InfraError);
    infra.error = Some("docker died\nmore".into());
    let html = page(&report_of(vec![job("j", "a", vec![trial("t", 1, TrialStatus::Passed), infra, trial("t", 3, TrialStatus::InfraError)])]));
    let chart = &html[html.find("id=\"chart-failures\"").unwrap()..];
    assert_eq!(chart[..chart.find("</svg>").unwrap()].matches("class=\"mark\"").count(), 1, "only the scored trial is charted");
    assert!(html.contains("Infrastructure errors (not scored)") && html.contains("<code>docker died</code>"));
    assert!(html.contains("<td class=\"num unscored\">2</td>"));
}

#[test]
fn a_comparison_without_shared_tasks_says_so() {
    let html = page(&report_of(vec![job("j1", "a", vec![trial("t", 1, TrialStatus::Passed)]), job("j2", "b", vec![trial("u", 1, TrialStatus::Passed)])]));
    assert!(html.contains("<tr><td>b</td><td>a</td><td class=\"muted\" colspan=\"7\">no shared tasks</td></tr>"), "{html}");
    assert!(!html.contains("+0.0"), "no difference is shown for nothing compared");
}

#[test]
fn a_split_vote_is_shown_with_the_reason() {
    let vote = |name: &str, reason: &str, met: u32| Check {
        reason: Some(reason.into()),
        votes_met: Some(met),
        samples: Some(3),
        ..criterion(name, 1.0, Some(met >= 2))
    };
    let mut voted = trial("t", 1, TrialStatus::Passed);
    voted.grade = Some(grade(vec![vote("split", "quoted", 2), vote("unanimous", "all agreed", 3)], 1.0, Some(true)));
    let html = page(&report_of(vec![job("j", "a", vec![voted])]));
    assert!(html.contains("<td class=\"reason\">quoted <span class=\"flag\">vote 2/3 met</span></td>"));
    assert!(html.contains("<td class=\"reason\">all agreed</td>"));
}

#[test]
fn a_penalty_reads_avoided_or_triggered_with_its_claim() {
    let mut penalized = trial("t", 1, TrialStatus::Failed);
    let claimed = Check { claim: Some("claims <done>".into()), ..criterion("false-claim", -5.0, Some(false)) };
    let checks = vec![claimed, criterion("avoided", -5.0, Some(true)), criterion("answered", 3.0, Some(true)), check("test_a", Some(false))];
    penalized.grade = Some(grade(checks, 0.5, Some(false)));
    let html = page(&report_of(vec![job("j", "a", vec![penalized])]));
    let outcomes: Vec<&str> = html.split("<span class=\"outcome ").skip(1).map(|badge| badge.split("</span>").next().unwrap()).collect();
    assert_eq!(outcomes, ["outcome-bad\">penalty triggered", "outcome-good\">penalty avoided", "outcome-good\">met", "outcome-bad\">failed"]);
    assert!(html.contains("<div class=\"claim\">claims &lt;done&gt;</div>"));
}

#[test]
fn a_trial_page_shows_the_answer_the_verifier_output_and_links_the_directory() {
    let jobs = tempfile::tempdir().unwrap();
    let trial_dir = jobs.path().join("j/trials/t a1");
    std::fs::create_dir_all(trial_dir.join("agent")).unwrap();
    std::fs::create_dir_all(trial_dir.join("verifier")).unwrap();
    std::fs::write(trial_dir.join("agent/answer.txt"), "adler32 <65521>").unwrap();
    std::fs::write(trial_dir.join("verifier/test-stdout.txt"), "FAILED test_modulus\n").unwrap();
    std::fs::create_dir_all(trial_dir.join("services")).unwrap();
    std::fs::write(trial_dir.join("services/web.log"), "serving\n").unwrap();
    let mut answered = TrialRecord::starting("", "t", 1, 1).with_ids("t".into(), "t a1").task_digest("digest").agent("agent");
    answered.status = Some(TrialStatus::Failed);
    let gone = trial("u", 1, TrialStatus::Failed);
    let report = report_of(vec![JobInput { dir: jobs.path().join("j"), ..job("j", "a", vec![answered, gone]) }]);

    let html = render(&report, 1, Some(&jobs.path().join("report.html")));
    assert!(html.contains("<pre class=\"output\">adler32 &lt;65521&gt;</pre>"), "{html}");
    assert!(html.contains("<h4>stdout</h4><pre class=\"output\">FAILED test_modulus</pre>") && !html.contains("<h4>stderr</h4>"));
    let path = escape(trial_dir.to_str().unwrap());
    assert!(html.contains(&format!("<a href=\"j/trials/t%20a1/\"><code>{path}</code></a>")), "{html}");
    assert!(html.contains("<dt>Service logs</dt><dd><a href=\"j/trials/t%20a1/services/web.log\">web</a></dd>"), "{html}");
    assert!(html.contains("<dt>Directory</dt><dd><code class=\"path\">"), "a directory that does not resolve is not linked");
    let elsewhere = jobs.path().join("reports/today");
    std::fs::create_dir_all(&elsewhere).unwrap();
    assert!(render(&report, 1, Some(&elsewhere.join("report.html"))).contains("href=\"../../j/trials/t%20a1/\""));
    assert!(page(&report).contains(&format!("<code class=\"path\">{path}</code>")), "without the page's location, a path to copy");
}

#[test]
fn an_unfinished_job_and_the_tasks_a_job_skipped_are_marked_in_the_header() {
    let skipped = prodbench_store::JobTask {
        dir: "/tasks/<b>".into(),
        name: None,
        skipped: Some(prodbench_store::SkipReason::Broken),
        diagnostics: vec!["task.toml: error".into()],
    };
    let dead = JobInput { liveness: prodbench_store::Liveness::Dead, skipped: vec![skipped], ..job("j1", "a", vec![trial("t", 1, TrialStatus::Passed)]) };
    let report = report_of(vec![dead, job("j2", "b", vec![trial("t", 1, TrialStatus::Passed)])]);
    assert_eq!(report.jobs.iter().map(|j| j.is_complete()).collect::<Vec<_>>(), [false, true]);
    let html = page(&report);
    let header = &html[html.find("<header>").unwrap()..html.find("</header>").unwrap()];
    assert!(header.contains("dead: only the trials that ran are covered"), "{header}");
    assert!(header.contains("skipped /tasks/&lt;b&gt; (broken)"), "{header}");
    assert_eq!(header.matches("only the trials that ran").count(), 1, "the finished job is not marked");
}
