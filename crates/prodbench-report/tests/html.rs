//! The sample report (see `common`) rendered as a page: what the page shows, its charts'
//! marks, and that every count on it agrees with the report.

mod common;

use prodbench_report::html::render;
use prodbench_report::report::Report;
use prodbench_store::Outcome;

const CHART_IDS: [&str; 5] = ["chart-leaderboard", "chart-breakdown", "chart-heatmap", "chart-failures", "chart-cost"];

fn page(report: &Report) -> String {
    render(report, 1, None)
}

/// The `data-value`s of the marks inside the element with this id (an `<svg>` or `<table>`).
fn chart_marks(html: &str, id: &str) -> Vec<f64> {
    let Some(at) = html.find(&format!("id=\"{id}\"")) else { return Vec::new() };
    let open = html[..at].rfind('<').expect("the id is inside a tag");
    let tag: String = html[open + 1..].chars().take_while(char::is_ascii_alphanumeric).collect();
    let end = html[at..].find(&format!("</{tag}>")).map_or(html.len(), |end| at + end);
    html[at..end]
        .split("class=\"mark\"")
        .skip(1)
        .map(|mark| {
            let value = mark.split("data-value=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a mark has a data-value");
            value.parse().unwrap_or_else(|_| panic!("data-value {value:?} of {id} is a number"))
        })
        .collect()
}

/// The HTML between `start` and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("{start} in the page"));
    let to = html[from..].find(end).map_or(html.len(), |to| from + to);
    &html[from..to]
}

#[test]
fn renders_the_sample() {
    let sample = common::sample();
    let html = page(&sample.report);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"));
    assert!(html.contains("<h1>prodbench report</h1>"));
    let expected =
        ["20261121-063021-bd87", "format version 1", "95%", "10000", "407704157892", "oracle", "prodbench (gpt-4.1-mini-2025-04-14)", "[100.0, 100.0]"];
    for text in expected {
        assert!(html.contains(text), "the page shows {text:?}");
    }
    for trial in &sample.report.trials {
        // The sample's trial ids use only the anchor-safe alphabet, so the anchor is the id itself.
        let id = format!("trial-{}", trial.trial.trial_id);
        assert!(html.contains(&format!("<section class=\"trial\" id=\"{id}\"")), "a section for {id}");
        assert!(html.contains(&format!("href=\"#{id}\"")), "a link to {id}");
    }
    assert!(html.contains("href=\"#trials-oracle\""), "the leaderboard links to the agent's trials");
    for outcome in ["outcome-good", "outcome-bad", "outcome-ungraded"] {
        assert!(html.contains(outcome), "checks show {outcome}");
    }
}

#[test]
fn every_chart_has_marks_for_the_sample() {
    let report = common::sample().report;
    let html = page(&report);
    for id in CHART_IDS {
        let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{id} is present"));
        let tag = &html[html[..at].rfind('<').unwrap()..at];
        assert!(tag.contains("class=\"chart"), "{id} has class chart: {tag}");
        assert!(!chart_marks(&html, id).is_empty(), "{id} has data marks");
    }
    let scores: Vec<f64> = report.rows.iter().map(|row| row.score.unwrap()).collect();
    assert_eq!(scores[0], 100.0);
    assert_eq!(chart_marks(&html, "chart-leaderboard"), scores);
    assert_eq!(
        chart_marks(&html, "chart-failures"),
        [3.0, 1.0, 2.0, 2.0, 1.0],
        "oracle passed 3 and 1 is undecided; the other passed 2, failed 2, hit a limit once"
    );
    let by_task: Vec<f64> =
        ["local-codebase-qna", "py-pagination-off-by-one"].iter().flat_map(|task| report.rows.iter().map(|row| row.task_scores[*task])).collect();
    assert_eq!(chart_marks(&html, "chart-heatmap"), by_task, "a row per task, agent columns in leaderboard order");
    assert_eq!(chart_marks(&html, "chart-cost"), [scores[1]], "only the agent with a cost is plotted");
}

#[test]
fn references_nothing_outside_the_page() {
    let html = page(&common::sample().report);
    let csp = between(&html, "<meta http-equiv=\"Content-Security-Policy\"", ">");
    let html = html.replace(csp, "");
    for reference in ["http:", "https:", "src=", "url(", "@import", "data:", "//"] {
        assert!(!html.contains(reference), "the page must not reference {reference:?}");
    }
}

#[test]
fn cost_is_plotted_when_recorded_and_never_invented() {
    let mut report = common::sample().report;
    let html = page(&report);
    assert!(html.contains("cost per trial (USD)") && html.contains("data-x=\"0.01658\""), "the mean of the five trials the agent ran");
    assert!(html.contains("Cost not recorded for oracle: not plotted."));

    report.rows[1].usage.cost_usd = None;
    let html = page(&report);
    assert!(html.contains("<p class=\"empty\">No cost recorded: agents without a priced model"), "an empty state, not a stand-in axis");
    assert!(!html.contains("id=\"chart-cost\""), "nothing is plotted");
}

#[test]
fn failure_modes_show_limits_and_the_most_often_failed_checks() {
    let html = page(&common::sample().report);
    let failures = between(&html, "<h3>Limits hit and failed checks</h3>", "<h3>Infrastructure errors");
    assert!(failures.contains("<tr><td>oracle</td><td>none</td><td>none</td></tr>"), "{failures}");
    assert!(failures.contains("<td>turns <span class=\"muted\">×1</span></td>"), "{failures}");
    let expected = [
        "local-codebase-qna <code>names-modulus</code> <span class=\"muted\">failed in 2 of 3</span>",
        "local-codebase-qna <code>test_names_the_modulus</code> <span class=\"muted\">failed in 2 of 3</span>",
        "local-codebase-qna <code>false-completion</code> <span class=\"muted\">triggered in 1 of 3</span>",
    ];
    let at: Vec<usize> = expected.iter().map(|check| failures.find(check).unwrap_or_else(|| panic!("{check} in {failures}"))).collect();
    assert!(at.is_sorted(), "most often failed first");
    assert_eq!(failures.matches("<div>").count(), 5, "the top 5 only");
    let infra = between(&html, "<h3>Infrastructure errors (not scored)</h3>", "</ul>");
    assert_eq!(infra.matches("<li>").count(), 1, "the final try only: {infra}");
}

/// The issue: one set of jobs read 19/36 passed on the leaderboard and 25/42 in the failure
/// modes. Every count of passes on the page is the report's one count.
#[test]
fn every_count_of_passes_agrees_with_the_report() {
    let report = common::sample().report;
    let html = page(&report);
    for row in &report.rows {
        let passed = row.statuses.get(&Outcome::Passed).copied().unwrap_or(0);
        assert_eq!(passed, row.pass.count, "{}: the failure modes count the passes the pass rate counts", row.agent);
        let decided: usize = row.statuses.iter().filter(|(outcome, _)| outcome.is_scored() && **outcome != Outcome::Undecided).map(|(_, n)| n).sum();
        assert_eq!(decided, row.pass.of, "{}: and the same denominator", row.agent);
        let shown = report.trials.iter().filter(|t| t.agent == row.agent && t.trial.outcome == Outcome::Passed).count();
        assert_eq!(shown, row.pass.count, "{}: the trials table marks as passed the trials counted", row.agent);
    }
    let oracle = &report.rows[0];
    assert_eq!((oracle.pass.count, oracle.pass.of), (3, 3), "the undecided trial is neither passed nor failed");
    assert!(html.contains("100.0% <span class=\"muted\">(3/3)</span> <span class=\"muted\">1 undecided</span>"), "the leaderboard says so");
    let modes = between(&html, "<table class=\"failure-modes\">", "</table>");
    assert!(modes.contains("<th class=\"num\">passed</th><th class=\"num\">undecided</th>"), "{modes}");
    assert!(modes.contains("<tr><td>oracle</td><td class=\"num\">3</td><td class=\"num\">1</td>"), "{modes}");
}
