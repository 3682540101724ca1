//! The single-file HTML report: [`render`] turns a [`Report`] into one page.
//!
//! Why it is built this way:
//! - **The typed report, nothing else.** The page is rendered from the same [`Report`] the
//!   terminal table and `--json` print, field by field, so a renamed or retyped field is a
//!   compile error here rather than a silently empty column.
//! - **One self-contained file.** A report is kept as a CI artifact, mailed, and opened from
//!   disk long after the run, so everything (CSS, charts, the small trial filter) is inline:
//!   no external CSS, scripts, fonts or images, and nothing is fetched.
//! - **A strict Content-Security-Policy** (`default-src 'none'`; inline style and script only;
//!   `data:` images): should an escaping bug ever let markup through, the page still cannot
//!   load or send anything.
//! - **Every string from the report is escaped.** Agent labels, task names, check names, the
//!   judges' reasons, answers and test output are untrusted; they reach the page only through
//!   [`format::escape`], or, in ids and links, through [`format::anchor_id`] and
//!   [`format::percent_encode`], which keep a safe alphabet. The only links out of the page
//!   are relative ones to trial directories.
//! - **Charts are inline SVG whose data marks carry `class="mark"`, `data-value` and
//!   `data-label`** (the heat map is a table whose cells do), and each chart has
//!   `class="chart"` and a stable id (`chart-leaderboard`, `chart-breakdown`, `chart-heatmap`,
//!   `chart-failures`, `chart-cost`), so tests, here and in headless Chromium, can check that a
//!   chart shows data and not merely that it exists.
//! - **Any report renders.** Zero rows, zero trials, rows without a score or cost, trials
//!   without a grade or trajectory: a missing (or non-finite) number shows as "-", and an
//!   empty section says so.
//! - **Numbers mean what the report means.** Passes, outcomes and incomplete grades are read
//!   from the report's one definition of each ([`crate::leaderboard`]), never recomputed here.
//!
//! - **A live trial's time series are lines, not marks**: its throughput, error and latency
//!   charts (`chart-throughput-<trial>`, `chart-errors-<trial>`, `chart-latency-<trial>`) draw
//!   each (series, window) as one `<g class="series">` carrying its per-second values in
//!   `data-values`, and each timeline event as a `<g class="event">` (see [`timeseries`]): a
//!   mark per second would put thousands of elements on the page per trial.
//!
//! Layout: [`sections`] (one function per section of the page), [`trial_page`] (a trial's
//! details), [`live`] (a live trial's traffic and events), [`charts`] and [`timeseries`] (the
//! SVG charts), [`svg`] (SVG primitives), [`format`] (escaping, numbers, anchors, links).

mod charts;
mod format;
mod live;
mod sections;
mod svg;
mod timeseries;
mod trial_page;

use std::collections::BTreeSet;
use std::path::Path;

use crate::report::Report;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#656d76;--border:#d0d7de;--subtle:#f6f8fa;--link:#0969da}
body{margin:0;color:var(--fg);background:#fff;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1440px;margin:0 auto;padding:24px 28px 64px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--border)}
h3{font-size:15px;margin:0 0 8px}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted,.empty,.note{color:var(--muted)}
.note{border-left:3px solid #d4a72c;padding:2px 10px;background:#fff8c5;color:var(--fg)}
nav.toc{margin:12px 0 0}nav.toc a{margin-right:14px}
dl.settings,dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.facts{grid-template-columns:repeat(3,max-content minmax(0,1fr))}dl.facts dd{overflow-wrap:anywhere}
dt{color:var(--muted)}dd{margin:0}
ul.jobs{margin:4px 0;padding-left:20px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;margin:8px 0 16px;font-variant-numeric:tabular-nums}
table{font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid var(--border);text-align:left;vertical-align:top}
th{background:var(--subtle);font-weight:600;vertical-align:bottom}
.num{text-align:right}td.num{white-space:nowrap}
table.leaderboard th,table.leaderboard td{padding:4px 6px}table.leaderboard .model{white-space:nowrap}
td.better{color:#116329}td.worse{color:#a40e26}
th.unscored,td.unscored{background:#f6f8fa;color:var(--muted)}
table.heatmap td.mark{text-align:center;min-width:56px;font-weight:600}
table.heatmap td.mark a{color:#1f2328}
table.heatmap td.absent{text-align:center;color:var(--muted)}
svg.chart{display:block;max-width:100%;height:auto;margin:8px 0 18px;font-size:12px}
svg.chart text{fill:#1f2328}svg.chart .tick{fill:var(--muted)}svg.chart text.count{fill:#fff;font-weight:600}
svg.chart line.grid{stroke:#eaeef2}svg.chart line.axis{stroke:#8c959f}
svg.chart line.whisker{stroke:#1f2328;stroke-width:1.5}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:4px 0}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.status,.outcome,.flag{display:inline-block;padding:0 7px;border-radius:10px;font-size:12px;white-space:nowrap}
.status{background:#eaeef2}
.status-passed{background:#dafbe1;color:#116329}.status-failed{background:#ffebe9;color:#a40e26}
.status-agent_limit,.status-agent_error{background:#fff1e5;color:#953800}
.status-verifier_error{background:#fbefff;color:#6e40c9}
.status-undecided{background:#fff;color:var(--muted);border:1px dashed #8c959f;font-style:italic}
.status-infra_error,.status-interrupted{background:#eaeef2;color:#424a53}
.outcome-good{background:#dafbe1;color:#116329}
.outcome-bad{background:#ffebe9;color:#a40e26;font-weight:600}
.outcome-ungraded{background:#fff;color:var(--muted);border:1px dashed #8c959f;font-style:italic}
.flag{background:#ddf4ff;color:#0550ae}
form.filter{display:flex;gap:16px;margin:8px 0}
section.trial{border:1px solid var(--border);border-radius:6px;padding:12px 16px;margin:14px 0}
section.trial:target{border-color:var(--link);box-shadow:0 0 0 2px #ddf4ff}
pre.error{background:#fff5f5;border:1px solid #ffcecb;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere;margin:8px 0}
details.output{margin:8px 0}details.output summary{cursor:pointer;font-weight:600}details.output h4{font-size:12px;margin:6px 0 2px;color:var(--muted)}
pre.output{background:var(--subtle);border:1px solid var(--border);padding:8px;margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere;max-height:360px;overflow-y:auto}
code.path{user-select:all}
td.reason{max-width:420px;overflow-wrap:anywhere}
div.live h4{font-size:14px;margin:14px 0 4px}div.live h5{font-size:13px;margin:10px 0 0}
svg.chart g.event text{font-size:11px}
.claim{color:var(--muted);max-width:360px}
"#;

/// Hides the trials (index rows and detail sections) that do not match the filter form.
const FILTER_SCRIPT: &str = r#"
const filter = document.getElementById("trial-filter");
if (filter) filter.addEventListener("change", () => {
  const agent = filter.elements.agent.value, outcome = filter.elements.outcome.value;
  for (const el of document.querySelectorAll("[data-trial]")) {
    el.hidden = (agent !== "" && el.dataset.agent !== agent) || (outcome !== "" && el.dataset.outcome !== outcome);
  }
});
"#;

/// Renders a report as one self-contained HTML page; `format_version` is that of the `--json`
/// document the report is also printed as. With `page`, the file the page is written to, each
/// trial's directory is linked relative to it (the link survives moving the page and the jobs
/// together); without it, or when a path does not resolve, the directory is shown as a path
/// to copy.
pub fn render(report: &Report, format_version: u32, page: Option<&Path>) -> String {
    let agents = agent_order(report);
    let page_dir = page.map(|page| page.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new(".")));
    let body = [
        sections::header(report, &agents, format_version),
        sections::leaderboard(report, &agents),
        sections::comparisons(report),
        sections::breakdowns(report, &agents),
        sections::heat_map(report),
        sections::failure_modes(report, &agents),
        sections::cost(report, &agents),
        sections::trials(report, page_dir),
    ]
    .concat();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>prodbench report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n\
         <script>{FILTER_SCRIPT}</script>\n</body>\n</html>\n"
    )
}

/// Agents in leaderboard order, then any that only appear elsewhere, by name.
fn agent_order(report: &Report) -> Vec<&str> {
    let in_rows = report.rows.iter().map(|row| row.agent.as_str());
    let elsewhere: BTreeSet<&str> = report
        .breakdowns
        .iter()
        .flat_map(|breakdown| breakdown.scores.keys())
        .chain(report.failure_modes.keys())
        .chain(report.trials.iter().map(|trial| &trial.agent))
        .map(String::as_str)
        .collect();
    let mut agents: Vec<&str> = Vec::new();
    for agent in in_rows.chain(elsewhere) {
        if !agents.contains(&agent) {
            agents.push(agent);
        }
    }
    agents
}

fn section(id: &str, title: &str, content: &str) -> String {
    format!("<section id=\"{id}\">\n<h2>{title}</h2>\n{content}</section>\n")
}

fn table(class: &str, head: &str, body: &str) -> String {
    format!("<div class=\"table-wrap\"><table class=\"{class}\"><thead>{head}</thead><tbody>\n{body}</tbody></table></div>\n")
}

fn empty(message: &str) -> String {
    format!("<p class=\"empty\">{message}</p>\n")
}

#[cfg(test)]
mod tests;
