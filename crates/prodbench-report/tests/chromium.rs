//! The rendered sample report (see `common`), opened offline in headless Chromium.
//!
//! How it works: [`render_in_chromium`] runs Debian's `chromium --headless --dump-dom` on the
//! page's `file://` URL with a throwaway profile and reads three things back:
//! - **the DOM after the page ran** (`--dump-dom`, once `--virtual-time-budget` has let it
//!   settle), so the charts' marks are checked as the browser parsed them, not as the string
//!   was written;
//! - **every request from the net log** (`--log-net-log`, `--net-log-capture-mode=Everything`).
//!   The net log is the network stack's own record of every request it starts, whatever asked
//!   for it (markup, CSS, script, iframe, WebSocket) and whether it then succeeds, fails or is
//!   cancelled, so "the page fetched nothing" is read from what the browser did, not guessed
//!   from the HTML. Chromium's own background traffic (component updates, the sign-in check,
//!   network time) is in it too; Chromium marks those requests as its own (initiator "not an
//!   origin" and an isolation key not of the page), and they are set apart. A request with any
//!   other mark, or none, counts as the page's;
//! - **Content-Security-Policy violations and script errors** that Chromium logs from the
//!   page's console (`--enable-logging=stderr`). A load the CSP refuses is stopped in the
//!   renderer before the network stack, so it is not in the net log; the test therefore
//!   asserts the page with its CSP had nothing refused, and also loads a copy without the CSP,
//!   where every load the page attempts reaches the net log. `file://` and `data:` loads never
//!   reach the net log; with the CSP in place they would be refused and logged.
//!
//! `--proxy-server` points at a closed local port, so no request, the page's or the browser's,
//! leaves the machine. A run takes about a second.
//!
//! Without `chromium` on the PATH (Debian: `apt-get install chromium`) the tests print a note
//! and pass, unless `PRODBENCH_REQUIRE_CHROMIUM=1` (as CI sets), when they fail.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prodbench_report::html::render;
use serde_json::Value;

const CHART_IDS: [&str; 5] = ["chart-leaderboard", "chart-breakdown", "chart-heatmap", "chart-failures", "chart-cost"];
const CSP_META_START: &str = "<meta http-equiv=\"Content-Security-Policy\"";
const TIMEOUT: Duration = Duration::from_secs(60);

/// What headless Chromium made of a page.
pub struct ChromiumRun {
    /// The serialized DOM after the page's scripts ran.
    pub dom: String,
    /// URLs of the requests the page made through the network stack.
    pub page_requests: Vec<String>,
    /// URLs Chromium requested for itself (updates, sign-in, clock), not the page's.
    pub browser_requests: Vec<String>,
    /// Console lines about CSP violations or uncaught script errors.
    pub console_problems: Vec<String>,
}

/// Opens `page` in headless Chromium, offline, and returns its DOM, requests and console problems.
///
/// Panics (failing the test) if Chromium cannot start, fails, or outlives [`TIMEOUT`].
pub fn render_in_chromium(page: &Path) -> ChromiumRun {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let net_log = scratch.path().join("net.json");
    let dom_file = scratch.path().join("dom.html");
    let log_file = scratch.path().join("stderr.log");
    let url = format!("file://{}", page.canonicalize().expect("the page exists").display());
    let mut child = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-spell-checking"])
        .arg("--proxy-server=http://127.0.0.1:9")
        .arg(format!("--user-data-dir={}", scratch.path().join("profile").display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(["--net-log-capture-mode=Everything", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000"])
        .args(["--dump-dom", &url])
        .stdin(Stdio::null())
        .stdout(File::create(&dom_file).expect("a DOM file"))
        .stderr(File::create(&log_file).expect("a log file"))
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            child.kill().ok();
            panic!("chromium did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    let net_log: Value = serde_json::from_str(&std::fs::read_to_string(&net_log).expect("chromium wrote its net log")).expect("the net log is complete JSON");
    let (page_requests, browser_requests) = requests(&net_log);
    ChromiumRun {
        dom: std::fs::read_to_string(&dom_file).expect("the dumped DOM"),
        page_requests,
        browser_requests,
        console_problems: log
            .lines()
            .filter(|line| line.contains("CONSOLE") && (line.contains("Content Security Policy") || line.contains("Uncaught")))
            .map(str::to_string)
            .collect(),
    }
}

/// The URLs of every URL request in a net log, split into the page's and Chromium's own.
fn requests(net_log: &Value) -> (Vec<String>, Vec<String>) {
    let type_id = |name: &str| net_log.pointer(&format!("/constants/logEventTypes/{name}")).and_then(Value::as_u64);
    let url_request = net_log.pointer("/constants/logSourceType/URL_REQUEST").and_then(Value::as_u64);
    let start_job = type_id("URL_REQUEST_START_JOB");
    let events = net_log.get("events").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    // Per request (net log source): its URL, and whether Chromium marked it as its own.
    let mut by_source: std::collections::BTreeMap<u64, (String, bool)> = Default::default();
    for event in events {
        let (Some(source), Some(url)) = (event.pointer("/source/id").and_then(Value::as_u64), event.pointer("/params/url").and_then(Value::as_str)) else {
            continue;
        };
        if event.pointer("/source/type").and_then(Value::as_u64) != url_request {
            continue;
        }
        let entry = by_source.entry(source).or_insert_with(|| (url.to_string(), false));
        if event.get("type").and_then(Value::as_u64) == start_job {
            entry.1 = is_browser_initiated(event.get("params").unwrap_or(&Value::Null));
        }
    }
    let (browser, page): (Vec<_>, Vec<_>) = by_source.into_values().partition(|(_, browser)| *browser);
    (page.into_iter().map(|(url, _)| url).collect(), browser.into_iter().map(|(url, _)| url).collect())
}

/// Chromium's own requests have no initiating origin and are not isolated under the page.
fn is_browser_initiated(start_job: &Value) -> bool {
    let initiator = start_job.get("initiator").and_then(Value::as_str);
    let isolation_key = start_job.get("network_isolation_key").and_then(Value::as_str).unwrap_or("");
    initiator == Some("not an origin") && !isolation_key.starts_with("file://")
}

/// Whether the tests can run: `chromium` is installed, or they must fail because CI requires it.
fn chromium_available() -> bool {
    if Command::new("chromium").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return true;
    }
    assert!(
        std::env::var("PRODBENCH_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
        "PRODBENCH_REQUIRE_CHROMIUM=1 but `chromium` is not on the PATH: install it (Debian: apt-get install chromium)"
    );
    eprintln!("note: `chromium` is not installed; skipping the headless-browser test (set PRODBENCH_REQUIRE_CHROMIUM=1 to fail instead)");
    false
}

/// The `data-value`s of the marks inside the element with this id (an `<svg>` or `<table>`).
fn chart_marks(dom: &str, id: &str) -> Vec<String> {
    let Some(at) = dom.find(&format!("id=\"{id}\"")) else { return Vec::new() };
    let open = dom[..at].rfind('<').expect("the id is inside a tag");
    let tag: String = dom[open + 1..].chars().take_while(char::is_ascii_alphanumeric).collect();
    let end = dom[at..].find(&format!("</{tag}>")).map_or(dom.len(), |end| at + end);
    dom[at..end]
        .split("class=\"mark\"")
        .skip(1)
        .map(|mark| mark.split("data-value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_string())
        .collect()
}

/// `text` as a DOM serializes it in an element's content.
fn text_node(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\u{a0}', "&nbsp;")
}

#[test]
fn sample_report_renders_in_chromium_with_charts_and_fetches_nothing() {
    if !chromium_available() {
        return;
    }
    let report = common::sample().report;
    let html = render(&report, 1, None);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("page written");

    let run = render_in_chromium(&page);
    for id in CHART_IDS {
        let marks = chart_marks(&run.dom, id);
        assert!(!marks.is_empty(), "chart {id} has no class=\"mark\" elements in the browser's DOM");
        for value in marks {
            assert!(value.parse::<f64>().is_ok(), "chart {id} has a mark whose data-value {value:?} is not a number");
        }
    }
    // The live trial's charts over time reached the browser with their lines and markers.
    for chart in ["chart-throughput", "chart-errors", "chart-latency"] {
        let id = format!("id=\"{chart}-{}\"", common::live_trial_id());
        let at = run.dom.find(&id).unwrap_or_else(|| panic!("no {id} in the browser's DOM"));
        let svg = &run.dom[at..at + run.dom[at..].find("</svg>").expect("the chart ends")];
        assert!(svg.contains("<g class=\"series\"") && svg.contains("<polyline"), "{chart} has no lines in the browser's DOM");
        assert_eq!(svg.matches("<g class=\"event\"").count(), 6, "{chart} lacks its event markers");
    }
    // The cost chart plots exactly the rows with a cost, at their scores.
    let costed: Vec<String> =
        report.rows.iter().filter(|row| row.usage.cost_usd.is_some()).filter_map(|row| row.score).map(|score| score.to_string()).collect();
    assert!(!costed.is_empty(), "the sample has a row with a cost");
    assert_eq!(chart_marks(&run.dom, "chart-cost"), costed);

    for trial in &report.trials {
        // The sample's trial ids use only the anchor-safe alphabet, so the anchor is the id itself.
        let id = format!("trial-{}", trial.trial.trial_id);
        assert!(run.dom.contains(&format!("<section class=\"trial\" id=\"{id}\"")), "no section for trial {id}");
    }
    // What the trials record beyond their scores reaches the page: every judge's reason and
    // claim, and the agent's work (steps, commands, cost) from its trajectory.
    let checks = report.trials.iter().flat_map(|trial| trial.grade.iter().flat_map(|grade| &grade.checks));
    let texts: Vec<&str> = checks.flat_map(|check| [&check.reason, &check.claim]).filter_map(Option::as_deref).collect();
    assert!(!texts.is_empty(), "the sample has judged criteria");
    for text in texts {
        assert!(run.dom.contains(&text_node(text)), "the page lacks {text:?}");
    }
    let worked: Vec<_> = report.trials.iter().filter_map(|trial| trial.stats.as_ref()).collect();
    assert!(!worked.is_empty(), "the sample has trials with a trajectory");
    for stats in worked {
        let summary = format!("{} steps, {} commands", stats.steps, stats.commands);
        let cost = format!("${:.4}", stats.cost_usd.expect("a priced trial"));
        assert!(run.dom.contains(&summary) && run.dom.contains(&cost), "the page lacks the work summary {summary:?} / {cost}");
    }
    assert!(run.console_problems.is_empty(), "the page hit its CSP or a script error:\n{}", run.console_problems.join("\n"));
    assert!(run.page_requests.is_empty(), "the page made network requests:\n{}", run.page_requests.join("\n"));

    // Without its CSP, anything the page tried to load would reach the net log.
    let csp_end = html.find(CSP_META_START).and_then(|start| html[start..].find('>').map(|end| (start, start + end + 1)));
    let (start, end) = csp_end.expect("the page has a CSP meta tag");
    let unprotected = dir.path().join("report-without-csp.html");
    std::fs::write(&unprotected, [&html[..start], &html[end..]].concat()).expect("page written");
    let run = render_in_chromium(&unprotected);
    assert!(run.page_requests.is_empty(), "without its CSP the page made network requests:\n{}", run.page_requests.join("\n"));
}

/// The net log and console checks above are only worth something if they see a page that does fetch.
#[test]
fn the_checks_catch_a_page_that_fetches() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a scratch directory");
    let fetching = "<img src=\"http://image.invalid/a.png\"><script>fetch(\"https://fetch.invalid/x\").catch(() => {});</script>";
    let page = dir.path().join("fetching.html");
    std::fs::write(&page, format!("<!DOCTYPE html><html><body>{fetching}</body></html>")).expect("page written");
    let run = render_in_chromium(&page);
    for url in ["http://image.invalid/a.png", "https://fetch.invalid/x"] {
        assert!(run.page_requests.iter().any(|u| u == url), "the net log missed {url}: {:?}", run.page_requests);
    }
    assert!(run.browser_requests.iter().all(|u| !u.contains(".invalid")), "a page request was taken for Chromium's own: {:?}", run.browser_requests);

    let csp = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'\">";
    std::fs::write(&page, format!("<!DOCTYPE html><html><head>{csp}</head><body>{fetching}</body></html>")).expect("page written");
    let run = render_in_chromium(&page);
    for url in ["http://image.invalid/a.png", "https://fetch.invalid/x"] {
        assert!(run.console_problems.iter().any(|line| line.contains(url)), "the console missed the refused {url}: {:?}", run.console_problems);
    }
    assert!(run.page_requests.is_empty(), "refused loads are not requests: {:?}", run.page_requests);
}
