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

/// The sample's live trial's section of `html`.
fn live_section(html: &str) -> &str {
    between(html, &format!("<section class=\"trial\" id=\"trial-{}\"", common::live_trial_id()), "</section>")
}

/// The chart `chart` of the live trial: its `<svg>`.
fn live_chart<'a>(html: &'a str, chart: &str) -> &'a str {
    between(live_section(html), &format!("id=\"{chart}-{}\"", common::live_trial_id()), "</svg>")
}

/// A time series of a chart: (`data-start`, `data-values`) of its `<g class="series">`.
fn series(chart: &str, name: &str, window: &str) -> (String, String) {
    let g = between(chart, &format!("<g class=\"series\" data-series=\"{name}\" data-window=\"{window}\""), ">");
    let attribute = |key: &str| g.split(&format!("{key}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_string();
    (attribute("data-start"), attribute("data-values"))
}

/// The (`data-offset`, `data-event`) of every event marker of a chart.
fn markers(chart: &str) -> Vec<(f64, String)> {
    chart
        .split("<g class=\"event\" data-offset=\"")
        .skip(1)
        .map(|marker| {
            let (offset, rest) = marker.split_once('"').expect("an offset");
            let event = rest.split("data-event=\"").nth(1).and_then(|e| e.split('"').next()).expect("an event");
            (offset.parse().expect("a number"), event.to_string())
        })
        .collect()
}

/// The texts of the cells of the table row that starts with `start`.
fn row_cells(html: &str, start: &str) -> Vec<String> {
    let row = between(html, start, "</tr>");
    row.split("<td").skip(1).map(|cell| cell.split_once('>').map_or("", |(_, text)| text).split("</td>").next().unwrap_or("").to_string()).collect()
}

#[test]
fn a_live_trial_shows_its_traffic_on_the_trials_time_with_its_events_marked() {
    let report = common::sample().report;
    let html = page(&report);
    let record = common::live_record();

    // One line per window and series, where the window's start event put it.
    let throughput = live_chart(&html, "chart-throughput");
    assert_eq!(series(throughput, "sent", "warmup"), ("0.5".into(), "20 20".into()));
    assert_eq!(series(throughput, "completed", "agent"), ("2.5".into(), "20 8".into()));
    let errors = live_chart(&html, "chart-errors");
    assert_eq!(series(errors, "timeouts", "grading"), ("4.5".into(), "0 3 2".into()));
    assert_eq!(series(errors, "5xx", "grading"), ("4.5".into(), "0 1 2".into()));
    assert_eq!(series(errors, "connection errors", "agent"), ("2.5".into(), "0 1".into()));
    let latency = live_chart(&html, "chart-latency");
    // The fault's second shows the jump; a second with no timed request has no point.
    assert_eq!(series(latency, "p99", "grading"), ("4.5".into(), "20 1001 -".into()));
    assert_eq!(series(latency, "p50", "warmup"), ("0.5".into(), "10 12".into()));
    // Each window is a band from its start event to its end event (the agent's was stopped).
    assert!(latency.contains("data-window=\"agent\" data-start=\"2.5\" data-end=\"4\""), "{latency}");
    assert!(latency.contains("data-window=\"grading\" data-start=\"4.5\" data-end=\"7.5\""), "{latency}");
    // The agent, the service's exit and restart and the fault are marked, on every chart.
    let expected: Vec<(f64, String)> =
        [(2.5, "agent_started"), (3.2, "service_exited"), (3.2, "service_restarting"), (4.0, "agent_ended"), (5.5, "fault_on"), (7.5, "fault_off")]
            .iter()
            .map(|(at, event)| (*at, event.to_string()))
            .collect();
    for chart in [throughput, errors, latency] {
        assert_eq!(markers(chart), expected);
    }

    // The window table: the summary's figures, the time each window really ran.
    let section = live_section(&html);
    let grading = row_cells(section, "<tr data-window=\"grading\">");
    assert_eq!(grading, ["grading", "4.5", "3.0", "60", "55", "3", "0", "5", "0", "0", "13.3%", "300.0", "651.0", "1002.0", "1003.0"]);
    let agent = row_cells(section, "<tr data-window=\"agent\">");
    assert_eq!(agent[..4], ["agent <span class=\"flag\">stopped</span>", "2.5", "1.5", "30"]);
    assert_eq!(agent[9..11], ["1", "3.4%"], "one unfinished; one error in 29 finished");
    assert_eq!(record.window("agent").and_then(|w| w.first_error.as_deref()), Some("connect to 127.0.0.1:8080: Connection refused"));
    assert!(section.contains("agent: <code>connect to 127.0.0.1:8080: Connection refused</code>"), "the first connection error is shown");

    // Every event, in order, in the timeline table.
    let events = between(section, "<table class=\"events\">", "</table>");
    assert_eq!(events.matches("<tr><td class=\"num\">").count(), common::live_events().len());
    assert!(events.contains("<td class=\"num\">+3.2</td><td><code>service_exited</code></td><td>api: signal 9</td>"), "{events}");
    assert!(events.contains("<td class=\"num\">+5.5</td><td><code>fault_on</code></td><td>latency 1000 ms on backend</td>"), "{events}");
}

#[test]
fn a_live_trial_links_its_service_logs_and_traffic_files() {
    let sample = common::sample();
    let pages = tempfile::tempdir().unwrap();
    let page_path = pages.path().join("report.html");
    let html = render(&sample.report, 1, Some(&page_path));
    let files = between(live_section(&html), "<p class=\"files\">", "</p>");
    let hrefs: Vec<&str> = files.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    let linked: Vec<&str> = hrefs.iter().map(|href| href.rsplit_once("__t1/").map_or(*href, |(_, file)| file)).collect();
    assert_eq!(linked, ["services/api.log", "traffic/summary.json", "traffic/timeline.json", "traffic/metrics.prom", "faults.json", "events.jsonl"]);
    for href in hrefs {
        assert!(pages.path().join(href).is_file(), "{href} leads to the file from the page");
    }
}

#[test]
fn a_trial_without_a_live_environment_has_no_live_section() {
    let report = common::sample().report;
    let html = page(&report);
    let (live, others): (Vec<_>, Vec<_>) = report.trials.iter().partition(|trial| trial.trial.trial_id == common::live_trial_id());
    assert_eq!(live.len(), 1);
    assert!(!others.is_empty() && others.iter().all(|trial| trial.live.is_none()));
    assert_eq!(html.matches("<div class=\"live\">").count(), 1, "only the live trial has a live section");
    for trial in &others {
        let section = between(&html, &format!("<section class=\"trial\" id=\"trial-{}\"", trial.trial.trial_id), "</section>");
        assert!(!section.contains("class=\"live\"") && !section.contains("chart-throughput"), "{section}");
    }
    // `--json` keeps the summaries and the events, and leaves the per-second rows to the
    // trial's own timeline.json.
    let json = serde_json::to_value(live[0]).unwrap();
    assert_eq!(json["live"]["windows"][2]["p99_ms"], 1002.0);
    assert_eq!(json["live"]["events"][8]["event"], "service_exited");
    assert!(json["live"].get("seconds").is_none(), "{}", json["live"]);
    assert!(serde_json::to_value(others[0]).unwrap()["live"].is_null());
}
