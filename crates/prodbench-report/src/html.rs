//! The single-file HTML report: [`render`] turns a report's JSON into one page.
//!
//! Why it is built this way:
//! - **One self-contained file.** A report is kept as a CI artifact, mailed, and opened from
//!   disk long after the run, so everything (CSS, charts, the small trial filter) is inline:
//!   no external CSS, scripts, fonts or images, and nothing is fetched.
//! - **A strict Content-Security-Policy** (`default-src 'none'`; inline style and script only;
//!   `data:` images): should an escaping bug ever let markup through, the page still cannot
//!   load or send anything.
//! - **Every string from the JSON is escaped.** Task names, check names, the judges'
//!   reasons, answers and test output are untrusted; they reach the page only through
//!   [`escape`], or, in ids and links, through [`anchor_id`] and [`percent_encode`], which keep
//!   a safe alphabet. The only links out of the page are relative ones to trial directories.
//! - **Charts are inline SVG whose data marks carry `class="mark"`, `data-value` and
//!   `data-label`** (the heat map is a table whose cells do), and each chart has
//!   `class="chart"` and a stable id (`chart-leaderboard`, `chart-breakdown`, `chart-heatmap`,
//!   `chart-failures`, `chart-cost`), so tests, here and in headless Chromium, can check that a
//!   chart shows data and not merely that it exists.
//! - **Any report renders.** Older or partial reports, zero rows, zero trials: every field is
//!   read as optional, a missing number shows as "-", and an empty section says so.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use serde_json::Value;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
const MISSING: &str = "-";

/// Final statuses that are scored, in display order.
const SCORED_STATUSES: [&str; 5] = ["passed", "failed", "agent_limit", "agent_error", "verifier_error"];
/// Final statuses that are never scored (infrastructure errors, interrupted trials): shown apart.
const UNSCORED_STATUSES: [&str; 2] = ["infra_error", "interrupted"];

/// One colour per agent, in leaderboard order (Tableau 10, distinguishable on white).
const AGENT_PALETTE: [&str; 10] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// Width of the label column on the left of the horizontal bar charts.
const LABEL_WIDTH: f64 = 250.0;
/// Characters of a chart label that fit on one line (a longer "agent (model)" is wrapped).
const LABEL_CHARS: usize = 32;
/// Height of a chart label's second line.
const LABEL_LINE: f64 = 14.0;
/// Width of the 0..100 plot area of the horizontal bar charts.
const PLOT_WIDTH: f64 = 420.0;
const BAR_ROW: f64 = 32.0;
const AXIS_HEIGHT: f64 = 28.0;

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
.claim{color:var(--muted);max-width:360px}
"#;

/// Hides the trials (index rows and detail sections) that do not match the filter form.
const FILTER_SCRIPT: &str = r#"
const filter = document.getElementById("trial-filter");
if (filter) filter.addEventListener("change", () => {
  const agent = filter.elements.agent.value, status = filter.elements.status.value;
  for (const el of document.querySelectorAll("[data-trial]")) {
    el.hidden = (agent !== "" && el.dataset.agent !== agent) || (status !== "" && el.dataset.status !== status);
  }
});
"#;

/// Renders a report's JSON as one self-contained HTML page. With `page`, the file the page is
/// written to, each trial's directory is linked relative to it (the link survives moving the
/// page and the jobs together); without it, or when a path does not resolve, the directory is
/// shown as a path to copy.
pub fn render(report: &Value, page: Option<&Path>) -> String {
    let agents = agent_order(report);
    let body = [
        header(report, &agents),
        leaderboard_section(report, &agents),
        comparisons_section(report),
        breakdown_section(report, &agents),
        heat_map_section(report),
        failure_modes_section(report, &agents),
        cost_section(report, &agents),
        trials_section(report, page.map(|page| page.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new(".")))),
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

// ---------------------------------------------------------------------------------------------
// Sections

fn header(report: &Value, agents: &[String]) -> String {
    let jobs: String = items(report, "/rows")
        .iter()
        .flat_map(|row| {
            let agent = escape(str_at(row, "/agent").unwrap_or(MISSING));
            items(row, "/jobs")
                .iter()
                .filter_map(Value::as_str)
                .map(move |job| format!("<li><code>{}</code> <span class=\"muted\">{agent}</span></li>", escape(job)))
        })
        .collect();
    let jobs = if jobs.is_empty() { "<span class=\"muted\">none recorded</span>".to_string() } else { format!("<ul class=\"jobs\">{jobs}</ul>") };
    let count = |n: usize, noun: &str| format!("{n} {}", plural(n as u64, noun));
    let counts = [count(agents.len(), "agent"), count(task_names(report).len(), "task"), count(items(report, "/trials").len(), "trial")].join(" · ");
    format!(
        "<header>\n<h1>prodbench report</h1>\n<p class=\"muted\">{counts} · format version {}</p>\n\
         <dl class=\"settings\"><dt>Jobs</dt><dd>{jobs}</dd>\
         <dt>Confidence level</dt><dd>{}</dd><dt>Bootstrap resamples</dt><dd>{}</dd><dt>Bootstrap seed</dt><dd>{}</dd></dl>\n\
         <nav class=\"toc\"><a href=\"#leaderboard\">Leaderboard</a><a href=\"#comparisons\">Comparisons</a>\
         <a href=\"#breakdowns\">Categories</a><a href=\"#heatmap\">Tasks</a><a href=\"#failures\">Failure modes</a>\
         <a href=\"#cost\">Cost</a><a href=\"#trials\">Trials</a></nav>\n</header>\n",
        raw_number_at(report, "/format_version"),
        confidence_level(report).unwrap_or_else(|| MISSING.to_string()),
        raw_number_at(report, "/settings/resamples"),
        raw_number_at(report, "/settings/seed"),
    )
}

fn leaderboard_section(report: &Value, agents: &[String]) -> String {
    let rows = items(report, "/rows");
    if rows.is_empty() {
        return section("leaderboard", "Leaderboard", &empty("No agents in this report."));
    }
    let level = confidence_level(report).map_or_else(String::new, |level| format!("{level} "));
    let head = format!(
        "<tr><th>Agent</th><th class=\"num\">Score</th><th class=\"num\">{level}bootstrap</th>\
         <th class=\"num\">{level}t interval</th><th class=\"num\">Pass</th><th class=\"num\">Resolve</th>\
         <th class=\"num\">pass@1</th><th class=\"num\">pass@k (largest k)</th><th class=\"num\">pass^k (same k)</th>\
         <th class=\"num\">Mean points</th>\
         <th class=\"num\">Tasks</th><th class=\"num\">Trials</th><th class=\"num\">Infra errors</th>\
         <th class=\"num\">Ungraded trials</th><th class=\"num\">Cost per trial</th><th class=\"num\">Tokens per trial</th>\
         <th class=\"num\">Steps per trial</th></tr>"
    );
    let agents_with_trials = trial_agents(report);
    let body: String = rows.iter().map(|row| leaderboard_row(row, &agents_with_trials)).collect();
    let intro = "<p class=\"muted\">Score: mean over tasks of each task's mean trial score (0-100), every task weighing the same. \
                 Pass and resolve rates count scored trials; infrastructure errors are not scored. \
                 pass@k: chance that at least one of k attempts passes; pass^k: that all k do; \
                 k goes up to the fewest attempts any task has. \
                 Cost, tokens and steps are means over the trials the agent ran in, from their trajectories; \
                 - when some of those trials did not record them.</p>";
    section("leaderboard", "Leaderboard", &[intro, &table("leaderboard", &head, &body), &leaderboard_chart(rows, agents)].concat())
}

fn leaderboard_row(row: &Value, agents_with_trials: &HashSet<&str>) -> String {
    let agent = str_at(row, "/agent").unwrap_or(MISSING);
    let agent_cell =
        if agents_with_trials.contains(agent) { format!("<a href=\"#{}\">{}</a>", anchor_id("trials", agent), agent_html(agent)) } else { agent_html(agent) };
    let largest_k = items(row, "/pass_at_k").iter().max_by_key(|entry| entry.get("k").and_then(Value::as_u64).unwrap_or(0));
    let at_largest_k = |pointer: &str| {
        largest_k.map_or_else(
            || MISSING.to_string(),
            |entry| format!("{} <span class=\"muted\">k={}</span>", fmt_percent(num_at(entry, pointer)), raw_number_at(entry, "/k")),
        )
    };
    let pass_at_1 = items(row, "/pass_at_k").iter().find(|entry| entry.get("k").and_then(Value::as_u64) == Some(1));
    let infra_errors = row
        .pointer("/statuses")
        .and_then(Value::as_object)
        .map_or_else(|| MISSING.to_string(), |statuses| statuses.get("infra_error").and_then(Value::as_u64).unwrap_or(0).to_string());
    let cells = [
        fmt_number(num_at(row, "/score"), 1),
        fmt_interval(row.get("score_bootstrap")),
        fmt_interval(row.get("score_t")),
        fmt_rate(row.get("pass")),
        fmt_rate(row.get("resolve")),
        fmt_percent(pass_at_1.and_then(|entry| num_at(entry, "/pass_at_k"))),
        at_largest_k("/pass_at_k"),
        at_largest_k("/pass_hat_k"),
        fmt_number(num_at(row, "/mean_points"), 1),
        raw_number_at(row, "/tasks"),
        raw_number_at(row, "/trials"),
        infra_errors,
        raw_number_at(row, "/ungraded_trials"),
        fmt_cost(num_at(row, "/cost_usd")),
        fmt_thousands(num_at(row, "/tokens")),
        fmt_number(num_at(row, "/steps"), 1),
    ];
    let numbers: String = cells.iter().map(|cell| format!("<td class=\"num\">{cell}</td>")).collect();
    format!("<tr><td>{agent_cell}</td>{numbers}</tr>\n")
}

/// An agent label whose "(model)" part stays on one line: a narrow cell wraps before it.
fn agent_html(agent: &str) -> String {
    match agent.find(" (") {
        Some(at) => format!("{} <span class=\"model\">{}</span>", escape(&agent[..at]), escape(&agent[at + 1..])),
        None => escape(agent),
    }
}

fn comparisons_section(report: &Value) -> String {
    let comparisons = items(report, "/comparisons");
    if comparisons.is_empty() {
        return section("comparisons", "Paired comparisons", &empty("No paired comparisons (they need two agents with shared tasks)."));
    }
    let head = "<tr><th>Agent</th><th>vs baseline</th><th class=\"num\">Mean difference</th><th class=\"num\">Bootstrap</th>\
                <th class=\"num\">t interval</th><th class=\"num\">Wins</th><th class=\"num\">Losses</th><th class=\"num\">Ties</th>\
                <th class=\"num\">Shared tasks</th></tr>";
    let body: String = comparisons.iter().map(comparison_row).collect();
    let intro = "<p class=\"muted\">Per shared task, the agent's mean score minus the baseline's; positive means the agent did better.</p>";
    section("comparisons", "Paired comparisons", &[intro, &table("comparisons", head, &body)].concat())
}

fn comparison_row(comparison: &Value) -> String {
    if comparison.pointer("/difference/shared_tasks").and_then(Value::as_u64) == Some(0) {
        return format!(
            "<tr><td>{}</td><td>{}</td><td class=\"muted\" colspan=\"7\">no shared tasks</td></tr>\n",
            text_at(comparison, "/other"),
            text_at(comparison, "/baseline")
        );
    }
    let difference = num_at(comparison, "/difference/mean_difference");
    let direction = match difference {
        Some(d) if d > 0.0 => " better",
        Some(d) if d < 0.0 => " worse",
        _ => "",
    };
    let signed = difference.map_or_else(|| MISSING.to_string(), |d| format!("{d:+.1}"));
    format!(
        "<tr><td>{}</td><td>{}</td><td class=\"num{direction}\">{signed}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
        text_at(comparison, "/other"),
        text_at(comparison, "/baseline"),
        fmt_interval(comparison.pointer("/difference/bootstrap")),
        fmt_interval(comparison.pointer("/difference/t")),
        raw_number_at(comparison, "/difference/wins"),
        raw_number_at(comparison, "/difference/losses"),
        raw_number_at(comparison, "/difference/ties"),
        raw_number_at(comparison, "/difference/shared_tasks"),
    )
}

/// A breakdown group's score for one agent.
struct GroupScore<'a> {
    agent: &'a str,
    score: f64,
}

/// One breakdown group ("category: codebase-qna") with its agents' scores, in agent order.
struct Group<'a> {
    label: String,
    scores: Vec<GroupScore<'a>>,
}

fn breakdown_groups<'a>(report: &'a Value, agents: &'a [String]) -> Vec<Group<'a>> {
    items(report, "/breakdowns")
        .iter()
        .map(|breakdown| Group {
            label: format!("{}: {}", str_at(breakdown, "/by").unwrap_or(MISSING), str_at(breakdown, "/group").unwrap_or(MISSING)),
            scores: agents
                .iter()
                .filter_map(|agent| {
                    let score = breakdown.pointer("/scores").and_then(|scores| scores.get(agent.as_str())).and_then(|s| num_at(s, "/score"))?;
                    Some(GroupScore { agent, score })
                })
                .collect(),
        })
        .collect()
}

fn breakdown_section<'a>(report: &'a Value, agents: &[String]) -> String {
    let breakdowns = items(report, "/breakdowns");
    if breakdowns.is_empty() {
        return section("breakdowns", "Score by category, difficulty and tag", &empty("No categories, difficulties or tags recorded."));
    }
    let score_of = |breakdown: &'a Value, agent: &str| breakdown.pointer("/scores").and_then(|scores| scores.get(agent));
    let columns: Vec<&String> = agents.iter().filter(|agent| breakdowns.iter().any(|b| score_of(b, agent).is_some())).collect();
    let agent_headers: String = columns.iter().map(|agent| format!("<th class=\"num\">{}</th>", escape(agent))).collect();
    let head = format!("<tr><th>By</th><th>Group</th>{agent_headers}</tr>");
    let body: String = breakdowns
        .iter()
        .map(|breakdown| {
            let cells: String = columns
                .iter()
                .map(|agent| {
                    let entry = score_of(breakdown, agent);
                    let tasks = entry.and_then(|e| e.get("tasks")).and_then(Value::as_u64);
                    let tasks = tasks.map_or_else(String::new, |n| format!(" <span class=\"muted\">({n} {})</span>", plural(n, "task")));
                    format!("<td class=\"num\">{}{tasks}</td>", fmt_number(entry.and_then(|e| num_at(e, "/score")), 1))
                })
                .collect();
            format!("<tr><td>{}</td><td>{}</td>{cells}</tr>\n", text_at(breakdown, "/by"), text_at(breakdown, "/group"))
        })
        .collect();
    let groups = breakdown_groups(report, agents);
    section("breakdowns", "Score by category, difficulty and tag", &[table("breakdowns", &head, &body), breakdown_chart(&groups, agents)].concat())
}

fn heat_map_section(report: &Value) -> String {
    let rows = items(report, "/rows");
    let tasks = task_names(report);
    if rows.is_empty() || tasks.is_empty() {
        return section("heatmap", "Tasks by agent", &empty("No task scores in this report."));
    }
    let agent_headers: String = rows.iter().map(|row| format!("<th class=\"num\">{}</th>", text_at(row, "/agent"))).collect();
    let body: String = tasks
        .iter()
        .map(|task| {
            let cells: String = rows.iter().map(|row| heat_map_cell(report, row, task)).collect();
            format!("<tr><th>{}</th>{cells}</tr>\n", escape(task))
        })
        .collect();
    let intro = "<p class=\"muted\">Each task's mean score per agent, from 0 (red) to 100 (green); a cell links to the task's first trial.</p>";
    let heat_map = format!(
        "<div class=\"table-wrap\"><table class=\"chart heatmap\" id=\"chart-heatmap\"><thead><tr><th>Task</th>{agent_headers}</tr></thead>\
         <tbody>\n{body}</tbody></table></div>\n"
    );
    section("heatmap", "Tasks by agent", &[intro, &heat_map].concat())
}

fn heat_map_cell(report: &Value, row: &Value, task: &str) -> String {
    let agent = str_at(row, "/agent").unwrap_or(MISSING);
    let Some(score) = row.pointer("/task_scores").and_then(|scores| scores.get(task)).and_then(Value::as_f64).filter(|s| s.is_finite()) else {
        return "<td class=\"absent\">-</td>".to_string();
    };
    let number = fmt_number(Some(score), 0);
    let content = match first_trial_id(report, agent, task) {
        Some(trial_id) => format!("<a href=\"#{}\">{number}</a>", anchor_id("trial", trial_id)),
        None => number,
    };
    format!(
        "<td class=\"mark\" data-value=\"{score}\" data-label=\"{}\" style=\"background:{}\" title=\"{}\">{content}</td>",
        escape(&format!("{task} / {agent}")),
        score_colour(score),
        escape(&format!("{task} / {agent}: {}", fmt_number(Some(score), 1))),
    )
}

/// An agent's final-status counts, from `failure_modes`.
struct StatusCounts<'a> {
    agent: &'a str,
    counts: Vec<(&'a str, u64)>,
}

impl StatusCounts<'_> {
    fn count(&self, status: &str) -> u64 {
        self.counts.iter().filter(|(s, _)| *s == status).map(|(_, n)| n).sum()
    }
}

/// Each agent's counts, in agent order.
fn status_counts<'a>(report: &'a Value, agents: &[String]) -> Vec<StatusCounts<'a>> {
    let mut modes: Vec<StatusCounts> = entries(report, "/failure_modes")
        .map(|(agent, counts)| StatusCounts { agent, counts: entries(counts, "").filter_map(|(status, n)| Some((status.as_str(), n.as_u64()?))).collect() })
        .collect();
    modes.sort_by_key(|mode| agents.iter().position(|agent| agent == mode.agent));
    modes
}

/// Scored statuses that occur, known ones first in their order, then unknown ones by name.
fn scored_status_columns<'a>(modes: &[StatusCounts<'a>]) -> Vec<&'a str> {
    let present: BTreeSet<&str> = modes.iter().flat_map(|m| m.counts.iter().map(|(status, _)| *status)).collect();
    let known = SCORED_STATUSES.iter().copied().filter(|status| present.contains(status));
    let unknown = present.iter().copied().filter(|status| !SCORED_STATUSES.contains(status) && !UNSCORED_STATUSES.contains(status));
    known.chain(unknown).collect()
}

fn failure_modes_section(report: &Value, agents: &[String]) -> String {
    let modes = status_counts(report, agents);
    if modes.is_empty() {
        return section("failures", "Failure modes", &empty("No final statuses recorded."));
    }
    let columns = scored_status_columns(&modes);
    let scored_headers: String = columns.iter().map(|status| format!("<th class=\"num\">{}</th>", escape(status))).collect();
    let unscored_headers: String = UNSCORED_STATUSES.iter().map(|status| format!("<th class=\"num unscored\">{status}</th>")).collect();
    let head = format!("<tr><th>Agent</th>{scored_headers}{unscored_headers}</tr>");
    let body: String = modes
        .iter()
        .map(|mode| {
            let scored: String = columns.iter().map(|status| format!("<td class=\"num\">{}</td>", mode.count(status))).collect();
            let unscored: String = UNSCORED_STATUSES.iter().map(|status| format!("<td class=\"num unscored\">{}</td>", mode.count(status))).collect();
            format!("<tr><td>{}</td>{scored}{unscored}</tr>\n", escape(mode.agent))
        })
        .collect();
    let intro = "<p class=\"muted\">Final status of each trial. Infrastructure errors and interrupted trials are not the agent's doing \
                 and are never scored: they are counted apart and left out of the chart.</p>";
    section(
        "failures",
        "Failure modes",
        &[
            intro,
            &table("failure-modes", &head, &body),
            &failure_chart(&modes, &columns),
            &limits_and_failed_checks(report, agents),
            &infra_errors_list(report),
        ]
        .concat(),
    )
}

/// How often one check of one task failed for an agent.
#[derive(Default)]
struct FailedCheck<'a> {
    task: &'a str,
    name: &'a str,
    penalty: bool,
    failed: usize,
    graded: usize,
}

/// Checks most often failed per agent, shown in the failure modes.
const TOP_FAILED_CHECKS: usize = 5;

/// Per agent: the limits its trials hit, and the checks (tests, criteria, penalties) that
/// failed most often.
fn limits_and_failed_checks(report: &Value, agents: &[String]) -> String {
    let trials = items(report, "/trials");
    if trials.is_empty() {
        return String::new();
    }
    let body: String = agents
        .iter()
        .map(|agent| {
            let mine: Vec<&Value> = trials.iter().filter(|trial| str_at(trial, "/agent") == Some(agent.as_str())).collect();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for limit in mine.iter().filter_map(|trial| str_at(trial, "/agent_limit")) {
                *counts.entry(limit).or_default() += 1;
            }
            let mut limits: Vec<(&str, usize)> = counts.into_iter().collect();
            limits.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
            let limits: Vec<String> = limits.iter().map(|(limit, count)| format!("{} <span class=\"muted\">×{count}</span>", escape(limit))).collect();
            let limits = if limits.is_empty() { "none".to_string() } else { limits.join(", ") };
            let checks: Vec<String> = failed_checks(&mine)
                .iter()
                .map(|check| {
                    let verb = if check.penalty { "triggered" } else { "failed" };
                    format!(
                        "<div>{} <code>{}</code> <span class=\"muted\">{verb} in {} of {}</span></div>",
                        escape(check.task),
                        escape(check.name),
                        check.failed,
                        check.graded
                    )
                })
                .collect();
            let checks = if checks.is_empty() { "none".to_string() } else { checks.concat() };
            format!("<tr><td>{}</td><td>{limits}</td><td>{checks}</td></tr>\n", escape(agent))
        })
        .collect();
    let head = format!("<tr><th>Agent</th><th>Limits hit</th><th>Most often failed checks (top {TOP_FAILED_CHECKS})</th></tr>");
    let intro = "<p class=\"muted\">A check failed when a test failed, a criterion was not met or a penalty was triggered; \
                 counted over the trials in which it was graded.</p>";
    ["<h3>Limits hit and failed checks</h3>", intro, &table("failed-checks", &head, &body)].concat()
}

/// The checks that failed most often in `trials`, at most [`TOP_FAILED_CHECKS`].
fn failed_checks<'a>(trials: &[&'a Value]) -> Vec<FailedCheck<'a>> {
    let mut by_check: BTreeMap<(&str, &str), FailedCheck> = BTreeMap::new();
    for trial in trials {
        let task = str_at(trial, "/task").unwrap_or(MISSING);
        for check in items(trial, "/grade/checks") {
            let Some(passed) = check.get("passed").and_then(Value::as_bool) else { continue };
            let name = str_at(check, "/name").unwrap_or(MISSING);
            let entry = by_check.entry((task, name)).or_insert_with(|| FailedCheck { task, name, ..FailedCheck::default() });
            entry.penalty |= num_at(check, "/points").is_some_and(|points| points < 0.0);
            entry.graded += 1;
            entry.failed += usize::from(!passed);
        }
    }
    let mut checks: Vec<FailedCheck> = by_check.into_values().filter(|check| check.failed > 0).collect();
    // Stable: equally frequent checks stay in task and name order.
    checks.sort_by_key(|check| std::cmp::Reverse(check.failed));
    checks.truncate(TOP_FAILED_CHECKS);
    checks
}

fn infra_errors_list(report: &Value) -> String {
    let listed: String = items(report, "/trials")
        .iter()
        .filter(|trial| str_at(trial, "/status") == Some("infra_error"))
        .map(|trial| {
            let error = str_at(trial, "/error").and_then(|e| e.lines().next()).unwrap_or("no message recorded");
            format!(
                "<li>{} · {} · attempt {}: <code>{}</code></li>",
                trial_link(trial, &text_at(trial, "/task")),
                text_at(trial, "/agent"),
                raw_number_at(trial, "/attempt"),
                escape(error)
            )
        })
        .collect();
    if listed.is_empty() {
        "<h3>Infrastructure errors</h3><p class=\"empty\">None.</p>\n".to_string()
    } else {
        format!("<h3>Infrastructure errors (not scored)</h3><ul>{listed}</ul>\n")
    }
}

fn cost_section(report: &Value, agents: &[String]) -> String {
    let rows = items(report, "/rows");
    if rows.is_empty() {
        return section("cost", "Cost vs score", &empty("No agents in this report."));
    }
    let (costed, uncosted): (Vec<&Value>, Vec<&Value>) = rows.iter().partition(|row| num_at(row, "/cost_usd").is_some());
    if costed.is_empty() {
        return section(
            "cost",
            "Cost vs score",
            &empty("No cost recorded: agents without a priced model (or whose trials left no trajectory) record none, so there is nothing to plot."),
        );
    }
    let points: Vec<ScatterPoint> = costed
        .iter()
        .filter_map(|row| {
            let agent = str_at(row, "/agent").unwrap_or(MISSING);
            Some(ScatterPoint { agent, cost: num_at(row, "/cost_usd")?, score: num_at(row, "/score")?, colour: agent_colour(agents, agent) })
        })
        .collect();
    let note = if uncosted.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = uncosted.iter().map(|row| text_at(row, "/agent")).collect();
        format!("<p class=\"note\">Cost not recorded for {}: not plotted.</p>", names.join(", "))
    };
    let chart = if points.is_empty() { empty("No agent with a cost has a score to plot.") } else { cost_chart(&points) };
    section("cost", "Cost vs score", &[note, chart].concat())
}

/// `page_dir`: the directory the page is in, to link trial directories from.
fn trials_section(report: &Value, page_dir: Option<&Path>) -> String {
    let trials = items(report, "/trials");
    if trials.is_empty() {
        return section("trials", "Trials", &empty("No trials in this report."));
    }
    let head = "<tr><th>Task</th><th>Agent</th><th class=\"num\">Attempt</th><th>Status</th><th class=\"num\">Score</th>\
                <th class=\"num\">Checks passed</th></tr>";
    let mut seen_agents = HashSet::new();
    let index: String = trials
        .iter()
        .map(|trial| {
            let agent = str_at(trial, "/agent").unwrap_or(MISSING);
            // The first row of each agent is the target of the leaderboard's link.
            let id = if seen_agents.insert(agent) { format!(" id=\"{}\"", anchor_id("trials", agent)) } else { String::new() };
            format!(
                "<tr{id} {}><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                trial_data_attributes(trial),
                trial_link(trial, &text_at(trial, "/task")),
                escape(agent),
                raw_number_at(trial, "/attempt"),
                status_badge(str_at(trial, "/status")),
                fmt_number(num_at(trial, "/score"), 1),
                checks_passed(trial),
            )
        })
        .collect();
    let details: String = trials.iter().map(|trial| trial_page(trial, page_dir)).collect();
    section("trials", "Trials", &[trial_filter(trials), table("trial-index", head, &index), details].concat())
}

fn trial_filter(trials: &[Value]) -> String {
    let options = |pointer: &str| -> String {
        let values: BTreeSet<&str> = trials.iter().filter_map(|trial| str_at(trial, pointer)).collect();
        values.iter().map(|value| format!("<option value=\"{0}\">{0}</option>", escape(value))).collect()
    };
    format!(
        "<form class=\"filter\" id=\"trial-filter\"><label>Agent <select name=\"agent\"><option value=\"\">all</option>{}</select></label>\
         <label>Status <select name=\"status\"><option value=\"\">all</option>{}</select></label></form>\n",
        options("/agent"),
        options("/status")
    )
}

/// What the trajectory says the agent did: steps, commands, files, searches, tokens, cost.
fn work_summary(trial: &Value) -> String {
    if trial.pointer("/stats").is_none_or(Value::is_null) {
        return "no trajectory".to_string();
    }
    let count = |field: &str| raw_number_at(trial, &format!("/stats/{field}"));
    let cost = num_at(trial, "/stats/cost_usd").map_or_else(|| "cost unknown".to_string(), |c| fmt_cost(Some(c)));
    format!(
        "{} steps, {} commands, {} files read, {} edited, {} searches, {} format errors; {} + {} tokens, {cost}",
        count("steps"),
        count("commands"),
        count("files_read"),
        count("files_edited"),
        count("searches"),
        count("format_errors"),
        count("prompt_tokens"),
        count("completion_tokens")
    )
}

fn trial_page(trial: &Value, page_dir: Option<&Path>) -> String {
    let facts = [
        ("Score", fmt_number(num_at(trial, "/score"), 1)),
        ("Pass", fmt_bool(trial.get("pass"))),
        ("Resolve", fmt_bool(trial.get("resolve"))),
        ("Points", fmt_number(num_at(trial, "/points"), 1)),
        ("Ungraded checks", raw_number_at(trial, "/ungraded")),
        ("Components", components_summary(trial)),
        ("Judged by", judges(trial)),
        ("Limit hit", str_at(trial, "/agent_limit").map_or_else(|| MISSING.to_string(), escape)),
        ("Agent's work", work_summary(trial)),
        ("Job", format!("<code>{}</code>", text_at(trial, "/job_id"))),
        ("Trial", format!("<code>{}</code>", text_at(trial, "/trial_id"))),
        ("Directory", trial_directory(trial, page_dir)),
    ];
    let facts: String = facts.iter().map(|(name, value)| format!("<dt>{name}</dt><dd>{value}</dd>")).collect();
    let error = str_at(trial, "/error").map_or_else(String::new, |error| format!("<pre class=\"error\">{}</pre>", escape(error)));
    let forbidden: Vec<String> = items(trial, "/grade/forbidden_changes").iter().filter_map(Value::as_str).map(escape).collect();
    let forbidden = if forbidden.is_empty() {
        String::new()
    } else {
        format!("<p class=\"note\">Changed files the task forbade changing: <code>{}</code></p>", forbidden.join("</code>, <code>"))
    };
    let answer = str_at(trial, "/answer").map_or_else(String::new, |answer| {
        format!("<details class=\"output\" open><summary>Agent's answer</summary><pre class=\"output\">{}</pre></details>\n", escape(answer))
    });
    format!(
        "<section class=\"trial\" id=\"{}\" {}>\n<h3>{} <span class=\"muted\">· {} · attempt {}</span> {}</h3>\n\
         <dl class=\"facts\">{facts}</dl>\n{error}{forbidden}{answer}{}{}</section>\n",
        anchor_id("trial", str_at(trial, "/trial_id").unwrap_or(MISSING)),
        trial_data_attributes(trial),
        text_at(trial, "/task"),
        text_at(trial, "/agent"),
        raw_number_at(trial, "/attempt"),
        status_badge(str_at(trial, "/status")),
        checks_table(trial),
        verifier_output(trial),
    )
}

/// The trial's directory: a relative link from the page when both resolve, else its path.
fn trial_directory(trial: &Value, page_dir: Option<&Path>) -> String {
    let Some(path) = str_at(trial, "/path") else { return format!("<code>{}</code>", text_at(trial, "/dir")) };
    match page_dir.and_then(|from| relative_href(from, Path::new(path))) {
        Some(href) => format!("<a href=\"{href}\"><code>{}</code></a>", escape(path)),
        None => format!("<code class=\"path\">{}</code>", escape(path)),
    }
}

/// The end of what the run's tests printed, folded away.
fn verifier_output(trial: &Value) -> String {
    let streams: String = ["stdout", "stderr"]
        .iter()
        .filter_map(|stream| {
            let text = str_at(trial, &format!("/verifier_output/{stream}")).filter(|text| !text.is_empty())?;
            Some(format!("<h4>{stream}</h4><pre class=\"output\">{}</pre>", escape(text)))
        })
        .collect();
    if streams.is_empty() {
        return String::new();
    }
    format!("<details class=\"output\"><summary>Verifier output of the run (its end)</summary>{streams}</details>\n")
}

/// The judge models that decided the trial's criteria.
fn judges(trial: &Value) -> String {
    let judges: BTreeSet<&str> = items(trial, "/grade/checks").iter().filter_map(|check| str_at(check, "/judge")).collect();
    if judges.is_empty() { MISSING.to_string() } else { judges.into_iter().map(escape).collect::<Vec<_>>().join(", ") }
}

/// The judge's reason, with the vote when several samples disagreed.
fn judge_reason(check: &Value) -> String {
    let reason = str_at(check, "/reason").map_or_else(String::new, escape);
    match (num_at(check, "/votes_met"), num_at(check, "/samples")) {
        (Some(met), Some(samples)) if met > 0.0 && met < samples => format!("{reason} <span class=\"flag\">vote {met}/{samples} met</span>"),
        _ => reason,
    }
}

fn checks_table(trial: &Value) -> String {
    let checks = items(trial, "/grade/checks");
    if checks.is_empty() {
        return empty("No checks graded.");
    }
    let head = "<tr><th>Kind</th><th>Name and claim</th><th>Component</th><th class=\"num\">Weight</th><th class=\"num\">Points</th>\
                <th class=\"num\">Score</th><th>Outcome</th><th>Judge's reason</th></tr>";
    let body: String = checks
        .iter()
        .map(|check| {
            let must_pass = if check.get("must_pass").and_then(Value::as_bool) == Some(true) { " <span class=\"flag\">must pass</span>" } else { "" };
            let claim = str_at(check, "/claim").map_or_else(String::new, |claim| format!("<div class=\"claim\">{}</div>", escape(claim)));
            format!(
                "<tr><td>{}</td><td>{}{must_pass}{claim}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td>{}</td><td class=\"reason\">{}</td></tr>\n",
                text_at(check, "/kind"),
                text_at(check, "/name"),
                text_at(check, "/component"),
                fmt_number(num_at(check, "/weight"), 2),
                fmt_number(num_at(check, "/points"), 1),
                fmt_number(num_at(check, "/score"), 2),
                outcome_badge(check),
                judge_reason(check),
            )
        })
        .collect();
    table("checks", head, &body)
}

// ---------------------------------------------------------------------------------------------
// Charts

fn leaderboard_chart(rows: &[Value], agents: &[String]) -> String {
    let height = rows.len() as f64 * BAR_ROW + AXIS_HEIGHT;
    let bars: String = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let agent = str_at(row, "/agent").unwrap_or(MISSING);
            let y = index as f64 * BAR_ROW;
            let label = svg_label(LABEL_WIDTH - 8.0, y + BAR_ROW / 2.0, "end", agent);
            let Some(score) = num_at(row, "/score") else {
                return format!("{label}{}", svg_text(LABEL_WIDTH + 4.0, y + BAR_ROW / 2.0, "start", "tick", MISSING));
            };
            let bar = svg_bar(LABEL_WIDTH, y + 4.0, scale_score(score), BAR_ROW - 8.0, agent_colour(agents, agent), score, agent);
            let whisker = interval_whisker(row.get("score_bootstrap"), y + BAR_ROW / 2.0);
            let value = svg_text(LABEL_WIDTH + scale_score(score) + 6.0, y + BAR_ROW / 2.0 - 6.0, "start", "", &fmt_number(Some(score), 1));
            format!("{label}{bar}{whisker}{value}")
        })
        .collect();
    let axis = score_axis(0.0, height - AXIS_HEIGHT);
    svg_chart("chart-leaderboard", "Score per agent, with bootstrap interval", LABEL_WIDTH + PLOT_WIDTH + 50.0, height, &[axis, bars].concat())
}

/// A horizontal whisker over `[low, high]` of an interval object, centred on `y`.
fn interval_whisker(interval: Option<&Value>, y: f64) -> String {
    let (Some(low), Some(high)) = (interval.and_then(|i| num_at(i, "/low")), interval.and_then(|i| num_at(i, "/high"))) else {
        return String::new();
    };
    let (x1, x2) = (LABEL_WIDTH + scale_score(low), LABEL_WIDTH + scale_score(high));
    let (top, bottom) = (y - 5.0, y + 5.0);
    format!(
        "<line class=\"whisker\" x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\"/>\
         <line class=\"whisker\" x1=\"{x1:.1}\" y1=\"{top:.1}\" x2=\"{x1:.1}\" y2=\"{bottom:.1}\"/>\
         <line class=\"whisker\" x1=\"{x2:.1}\" y1=\"{top:.1}\" x2=\"{x2:.1}\" y2=\"{bottom:.1}\"/>"
    )
}

/// One row of bars per group, one bar per agent in the group, coloured by agent.
fn breakdown_chart(groups: &[Group], agents: &[String]) -> String {
    const BAR: f64 = 16.0;
    const GROUP_GAP: f64 = 10.0;
    let mut y = 0.0;
    let mut marks = String::new();
    for group in groups.iter().filter(|group| !group.scores.is_empty()) {
        marks.push_str(&svg_label(LABEL_WIDTH - 8.0, y + BAR / 2.0 + 2.0, "end", &group.label));
        for entry in &group.scores {
            let (length, colour) = (scale_score(entry.score), agent_colour(agents, entry.agent));
            let label = format!("{} / {}", group.label, entry.agent);
            marks.push_str(&svg_bar(LABEL_WIDTH, y + 2.0, length, BAR - 2.0, colour, entry.score, &label));
            marks.push_str(&svg_text(LABEL_WIDTH + length + 4.0, y + BAR / 2.0 + 1.0, "start", "tick", &fmt_number(Some(entry.score), 0)));
            y += BAR;
        }
        y += GROUP_GAP;
    }
    if marks.is_empty() {
        return empty("No group has a score to chart.");
    }
    let content = [score_axis(0.0, y), marks].concat();
    let chart = svg_chart("chart-breakdown", "Score per group and agent", LABEL_WIDTH + PLOT_WIDTH + 50.0, y + AXIS_HEIGHT, &content);
    let charted: HashSet<&str> = groups.iter().flat_map(|group| group.scores.iter().map(|entry| entry.agent)).collect();
    let shown = agents.iter().filter(|agent| charted.contains(agent.as_str()));
    [legend(shown.map(|agent| (agent_colour(agents, agent), agent.as_str()))), chart].concat()
}

fn failure_chart(modes: &[StatusCounts], columns: &[&str]) -> String {
    let scored_total = |mode: &StatusCounts| columns.iter().map(|status| mode.count(status)).sum::<u64>();
    let largest = modes.iter().map(scored_total).max().unwrap_or(0);
    if largest == 0 {
        return empty("No scored trials to chart.");
    }
    let unit = PLOT_WIDTH / largest as f64;
    let bars: String = modes
        .iter()
        .enumerate()
        .map(|(index, mode)| {
            let y = index as f64 * BAR_ROW;
            let mut x = LABEL_WIDTH;
            let mut segments = svg_label(LABEL_WIDTH - 8.0, y + BAR_ROW / 2.0, "end", mode.agent);
            for status in columns {
                let count = mode.count(status);
                if count > 0 {
                    let (label, width) = (format!("{}: {status}", mode.agent), count as f64 * unit);
                    segments.push_str(&svg_bar(x, y + 4.0, width, BAR_ROW - 8.0, status_colour(status), count as f64, &label));
                    if width >= 18.0 {
                        segments.push_str(&svg_text(x + width / 2.0, y + BAR_ROW / 2.0, "middle", "count", &count.to_string()));
                    }
                    x += width;
                }
            }
            let total = scored_total(mode);
            segments.push_str(&svg_text(x + 6.0, y + BAR_ROW / 2.0, "start", "tick", &format!("{total} scored")));
            segments
        })
        .collect();
    let height = modes.len() as f64 * BAR_ROW + 8.0;
    let chart = svg_chart("chart-failures", "Scored trials per agent by final status", LABEL_WIDTH + PLOT_WIDTH + 90.0, height, &bars);
    [legend(columns.iter().map(|status| (status_colour(status), *status))), chart].concat()
}

/// One agent in the cost-vs-score scatter.
struct ScatterPoint<'a> {
    agent: &'a str,
    /// Mean cost per trial, in USD.
    cost: f64,
    score: f64,
    colour: &'static str,
}

fn cost_chart(points: &[ScatterPoint]) -> String {
    const LEFT: f64 = 56.0;
    const TOP: f64 = 12.0;
    const WIDTH: f64 = 480.0;
    const HEIGHT: f64 = 260.0;
    const X_LABEL: &str = "cost per trial (USD)";
    let x_step = nice_step(points.iter().map(|p| p.cost).fold(0.0, f64::max) * 1.1 / 4.0);
    let x_max = x_step * 4.0;
    let to_x = |x: f64| LEFT + x.max(0.0) / x_max * WIDTH;
    let to_y = |score: f64| TOP + HEIGHT - score.clamp(0.0, 100.0) / 100.0 * HEIGHT;
    let y_ticks: String = (0..=4)
        .map(|i| {
            let (score, right) = (f64::from(i) * 25.0, LEFT + WIDTH);
            let y = to_y(score);
            format!(
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>{}",
                svg_text(LEFT - 6.0, y, "end", "tick", &fmt_number(Some(score), 0))
            )
        })
        .collect();
    let x_ticks: String = (0..=4)
        .map(|i| {
            let x = x_step * f64::from(i);
            svg_text(to_x(x), TOP + HEIGHT + 16.0, "middle", "tick", &fmt_trimmed(x))
        })
        .collect();
    let marks: String = points
        .iter()
        .map(|p| {
            let (cx, cy) = (to_x(p.cost), to_y(p.score));
            format!(
                "<circle class=\"mark\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"6\" fill=\"{}\" data-value=\"{}\" data-x=\"{}\" data-label=\"{}\">\
                 <title>{}: score {}, {} per trial</title></circle>{}",
                p.colour,
                p.score,
                p.cost,
                escape(p.agent),
                escape(p.agent),
                fmt_number(Some(p.score), 1),
                fmt_cost(Some(p.cost)),
                svg_label(cx + 9.0, cy, "start", p.agent),
            )
        })
        .collect();
    let (bottom, right, middle) = (TOP + HEIGHT, LEFT + WIDTH, TOP + HEIGHT / 2.0);
    let frame = format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>{}\
         <text x=\"14\" y=\"{middle}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {middle})\">score</text>",
        svg_text(LEFT + WIDTH / 2.0, bottom + 36.0, "middle", "", X_LABEL),
    );
    svg_chart("chart-cost", "Score against cost per agent", LEFT + WIDTH + 240.0, TOP + HEIGHT + 48.0, &[y_ticks, x_ticks, frame, marks].concat())
}

/// Vertical grid lines and labels at 0, 25, .. 100 for a horizontal bar chart whose bars end at `bottom`.
fn score_axis(top: f64, bottom: f64) -> String {
    (0..=4)
        .map(|i| {
            let score = f64::from(i) * 25.0;
            let x = LABEL_WIDTH + scale_score(score);
            format!(
                "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>{}",
                svg_text(x, bottom + 16.0, "middle", "tick", &fmt_number(Some(score), 0))
            )
        })
        .collect()
}

/// A colour key: a swatch and a name per entry.
fn legend<'a>(entries: impl Iterator<Item = (&'static str, &'a str)>) -> String {
    let entries: String =
        entries.map(|(colour, name)| format!("<span><span class=\"swatch\" style=\"background:{colour}\"></span>{}</span>", escape(name))).collect();
    format!("<div class=\"legend\">{entries}</div>\n")
}

// ---------------------------------------------------------------------------------------------
// SVG and HTML building blocks

fn svg_chart(id: &str, title: &str, width: f64, height: f64, content: &str) -> String {
    let title = escape(title);
    format!(
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" \
         aria-label=\"{title}\"><title>{title}</title>{content}</svg>\n"
    )
}

/// A data-bearing bar: `class="mark"` with its value and label, and a tooltip.
fn svg_bar(x: f64, y: f64, width: f64, height: f64, fill: &str, value: f64, label: &str) -> String {
    format!(
        "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{height:.1}\" rx=\"2\" fill=\"{fill}\" data-value=\"{value}\" \
         data-label=\"{label}\"><title>{label}: {}</title></rect>",
        width.max(0.0),
        fmt_number(Some(value), 1),
        label = escape(label),
    )
}

/// A label at `x` (`anchor`: `start` or `end`), centred on `y`, with the full text as its
/// tooltip. A label longer than [`LABEL_CHARS`] is wrapped before its parenthesised part
/// ("agent" over "(model)"); each line is truncated to fit.
fn svg_label(x: f64, y: f64, anchor: &str, text: &str) -> String {
    let lines = match text.find(" (") {
        Some(at) if text.chars().count() > LABEL_CHARS => vec![&text[..at], &text[at + 1..]],
        _ => vec![text],
    };
    let first_y = y + 4.0 - (lines.len() - 1) as f64 * LABEL_LINE / 2.0;
    let spans: String = lines
        .iter()
        .enumerate()
        .map(|(index, line)| format!("<tspan x=\"{x:.1}\" y=\"{:.1}\">{}</tspan>", first_y + index as f64 * LABEL_LINE, escape(&truncate(line, LABEL_CHARS))))
        .collect();
    format!("<text text-anchor=\"{anchor}\"><title>{}</title>{spans}</text>", escape(text))
}

/// A text element; `text` is escaped here.
fn svg_text(x: f64, y: f64, anchor: &str, class: &str, text: &str) -> String {
    let class = if class.is_empty() { String::new() } else { format!(" class=\"{class}\"") };
    format!("<text{class} x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>", y + 4.0, escape(text))
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

/// A link to a trial's section, with `text_html` (already escaped) as its text.
fn trial_link(trial: &Value, text_html: &str) -> String {
    match str_at(trial, "/trial_id") {
        Some(trial_id) => format!("<a href=\"#{}\">{text_html}</a>", anchor_id("trial", trial_id)),
        None => text_html.to_string(),
    }
}

/// The attributes the trial filter matches on.
fn trial_data_attributes(trial: &Value) -> String {
    let agent = escape(str_at(trial, "/agent").unwrap_or(""));
    let status = escape(str_at(trial, "/status").unwrap_or(""));
    format!("data-trial data-agent=\"{agent}\" data-status=\"{status}\"")
}

fn status_badge(status: Option<&str>) -> String {
    let status = status.unwrap_or(MISSING);
    let class = if SCORED_STATUSES.contains(&status) || UNSCORED_STATUSES.contains(&status) { status } else { "other" };
    format!("<span class=\"status status-{class}\">{}</span>", escape(status))
}

/// A check's outcome: a test passes or fails, a criterion is met or not, and a penalty (a
/// criterion with negative points, whose good outcome is a false claim) is avoided or triggered.
fn outcome_badge(check: &Value) -> String {
    let penalty = num_at(check, "/points").is_some_and(|points| points < 0.0);
    let (good, bad) = match str_at(check, "/kind") {
        Some("criterion") if penalty => ("penalty avoided", "penalty triggered"),
        Some("criterion") => ("met", "not met"),
        _ => ("passed", "failed"),
    };
    match check.get("passed").and_then(Value::as_bool) {
        Some(true) => format!("<span class=\"outcome outcome-good\">{good}</span>"),
        Some(false) => format!("<span class=\"outcome outcome-bad\">{bad}</span>"),
        None => "<span class=\"outcome outcome-ungraded\">ungraded</span>".to_string(),
    }
}

/// "passed/graded" over the trial's checks, e.g. "2/2 (3 ungraded)".
fn checks_passed(trial: &Value) -> String {
    let checks = items(trial, "/grade/checks");
    if checks.is_empty() {
        return MISSING.to_string();
    }
    let outcomes: Vec<Option<bool>> = checks.iter().map(|check| check.get("passed").and_then(Value::as_bool)).collect();
    let passed = outcomes.iter().filter(|o| **o == Some(true)).count();
    let graded = outcomes.iter().filter(|o| o.is_some()).count();
    let ungraded = outcomes.len() - graded;
    let ungraded = if ungraded > 0 { format!(" <span class=\"muted\">({ungraded} ungraded)</span>") } else { String::new() };
    format!("{passed}/{graded}{ungraded}")
}

/// "feature 100 (weight 0.6, 2 ungraded)" for each component of the trial's grade.
fn components_summary(trial: &Value) -> String {
    let parts: Vec<String> = items(trial, "/grade/components")
        .iter()
        .map(|component| {
            let ungraded = component.get("ungraded").and_then(Value::as_u64).unwrap_or(0);
            let ungraded = if ungraded > 0 { format!(", {ungraded} ungraded") } else { String::new() };
            format!(
                "{} {} <span class=\"muted\">(weight {}{ungraded})</span>",
                text_at(component, "/component"),
                fmt_number(num_at(component, "/score").map(|s| s * 100.0), 1),
                fmt_number(num_at(component, "/weight"), 2)
            )
        })
        .collect();
    if parts.is_empty() { MISSING.to_string() } else { parts.join("; ") }
}

// ---------------------------------------------------------------------------------------------
// Reading the report

fn items<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value.pointer(pointer).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn entries<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    value.pointer(pointer).and_then(Value::as_object).into_iter().flatten()
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A finite number, or `None`.
fn num_at(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64).filter(|n| n.is_finite())
}

/// The string at `pointer`, escaped, or "-".
fn text_at(value: &Value, pointer: &str) -> String {
    escape(str_at(value, pointer).unwrap_or(MISSING))
}

/// A number exactly as the JSON has it (counts, seeds), or "-".
fn raw_number_at(value: &Value, pointer: &str) -> String {
    value.pointer(pointer).filter(|v| v.is_number()).map_or_else(|| MISSING.to_string(), Value::to_string)
}

/// Agents in leaderboard order, then any that only appear elsewhere, by name.
fn agent_order(report: &Value) -> Vec<String> {
    let mut agents: Vec<String> = Vec::new();
    let in_rows = items(report, "/rows").iter().filter_map(|row| str_at(row, "/agent"));
    let elsewhere: BTreeSet<&str> = items(report, "/breakdowns")
        .iter()
        .flat_map(|breakdown| entries(breakdown, "/scores").map(|(agent, _)| agent.as_str()))
        .chain(entries(report, "/failure_modes").map(|(agent, _)| agent.as_str()))
        .chain(trial_agents(report))
        .collect();
    for agent in in_rows.chain(elsewhere) {
        if !agents.iter().any(|known| known == agent) {
            agents.push(agent.to_string());
        }
    }
    agents
}

fn trial_agents(report: &Value) -> HashSet<&str> {
    items(report, "/trials").iter().filter_map(|trial| str_at(trial, "/agent")).collect()
}

/// Every task named in the rows' task scores or the trials, by name.
fn task_names(report: &Value) -> BTreeSet<&str> {
    let scored = items(report, "/rows").iter().flat_map(|row| entries(row, "/task_scores").map(|(task, _)| task.as_str()));
    let tried = items(report, "/trials").iter().filter_map(|trial| str_at(trial, "/task"));
    scored.chain(tried).collect()
}

fn first_trial_id<'a>(report: &'a Value, agent: &str, task: &str) -> Option<&'a str> {
    items(report, "/trials")
        .iter()
        .find(|trial| str_at(trial, "/agent") == Some(agent) && str_at(trial, "/task") == Some(task))
        .and_then(|trial| str_at(trial, "/trial_id"))
}

/// "95%" from `settings.level`.
fn confidence_level(report: &Value) -> Option<String> {
    num_at(report, "/settings/level").map(|level| format!("{}%", fmt_trimmed(level * 100.0)))
}

// ---------------------------------------------------------------------------------------------
// Formatting, escaping, colours

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// An element id (and `#` link target) from untrusted text: ASCII letters, digits, `-`, `_`
/// and `.` are kept, every other byte becomes `~xx`, so distinct names give distinct ids and
/// nothing needs escaping.
fn anchor_id(prefix: &str, raw: &str) -> String {
    let mut id = format!("{prefix}-");
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            id.push(char::from(byte));
        } else {
            id.push_str(&format!("~{byte:02x}"));
        }
    }
    id
}

fn fmt_number(value: Option<f64>, decimals: usize) -> String {
    value.filter(|v| v.is_finite()).map_or_else(|| MISSING.to_string(), |v| format!("{v:.decimals$}"))
}

/// A relative URL from the directory `from` to the directory `to` (`../jobs/j/trials/t/`),
/// percent-encoded, when both exist and share a root.
fn relative_href(from: &Path, to: &Path) -> Option<String> {
    let (from, to) = (from.canonicalize().ok()?, to.canonicalize().ok()?);
    let shared = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    if shared == 0 {
        return None;
    }
    let up = std::iter::repeat_n("..".to_string(), from.components().count() - shared);
    let down = to.components().skip(shared).map(|part| part.as_os_str().to_str().map(percent_encode));
    let parts: Vec<String> = up.map(Some).chain(down).collect::<Option<_>>()?;
    Some(if parts.is_empty() { "./".to_string() } else { format!("{}/", parts.join("/")) })
}

/// Every byte but ASCII letters, digits and `-._~` as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(
            |byte| {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') { char::from(byte).to_string() } else { format!("%{byte:02X}") }
            },
        )
        .collect()
}

/// "$0.0123" from a cost in USD.
fn fmt_cost(usd: Option<f64>) -> String {
    usd.filter(|c| c.is_finite()).map_or_else(|| MISSING.to_string(), |c| format!("${c:.4}"))
}

/// "12,346" from a count (rounded; not negative), in groups of three digits.
fn fmt_thousands(count: Option<f64>) -> String {
    let Some(count) = count.filter(|c| c.is_finite() && *c >= 0.0) else { return MISSING.to_string() };
    let digits = format!("{count:.0}");
    let groups: Vec<&str> = digits.as_bytes().rchunks(3).rev().map(|group| std::str::from_utf8(group).expect("ASCII digits")).collect();
    groups.join(",")
}

/// "66.7%" from a rate in [0, 1].
fn fmt_percent(rate: Option<f64>) -> String {
    rate.filter(|r| r.is_finite()).map_or_else(|| MISSING.to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// "100.0% (3/3)" from a `{count, of, rate}` object.
fn fmt_rate(rate: Option<&Value>) -> String {
    let Some(rate) = rate.filter(|r| r.is_object()) else { return MISSING.to_string() };
    format!("{} <span class=\"muted\">({}/{})</span>", fmt_percent(num_at(rate, "/rate")), raw_number_at(rate, "/count"), raw_number_at(rate, "/of"))
}

/// "[low, high]" from an interval object, or "-".
fn fmt_interval(interval: Option<&Value>) -> String {
    match (interval.and_then(|i| num_at(i, "/low")), interval.and_then(|i| num_at(i, "/high"))) {
        (Some(low), Some(high)) => format!("[{low:.1}, {high:.1}]"),
        _ => MISSING.to_string(),
    }
}

fn fmt_bool(value: Option<&Value>) -> String {
    match value.and_then(Value::as_bool) {
        Some(true) => "yes".to_string(),
        Some(false) => "no".to_string(),
        None => MISSING.to_string(),
    }
}

/// At most four decimals, without trailing zeros: 95, 97.5, 0.025.
fn fmt_trimmed(value: f64) -> String {
    let formatted = format!("{value:.4}");
    formatted.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 { noun.to_string() } else { format!("{noun}s") }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `raw` (1 for nothing).
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|step| *step >= raw).unwrap_or(10.0 * magnitude)
}

/// Bar length in the horizontal charts for a 0..100 score.
fn scale_score(score: f64) -> f64 {
    score.clamp(0.0, 100.0) / 100.0 * PLOT_WIDTH
}

/// A light background from red (0) through yellow to green (100), dark text stays readable.
fn score_colour(score: f64) -> String {
    format!("hsl({:.0}, 70%, 78%)", score.clamp(0.0, 100.0) * 1.2)
}

fn agent_colour(agents: &[String], agent: &str) -> &'static str {
    let index = agents.iter().position(|known| known == agent).unwrap_or(0);
    AGENT_PALETTE[index % AGENT_PALETTE.len()]
}

fn status_colour(status: &str) -> &'static str {
    match status {
        "passed" => "#2da44e",
        "failed" => "#cf222e",
        "agent_limit" => "#fb8f44",
        "agent_error" => "#bc4c00",
        "verifier_error" => "#8250df",
        _ => "#6e7781",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CHART_IDS: [&str; 5] = ["chart-leaderboard", "chart-breakdown", "chart-heatmap", "chart-failures", "chart-cost"];

    fn sample() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/sample-report.json")).expect("the sample report is JSON")
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

    #[test]
    fn renders_the_sample() {
        let html = render(&sample(), None);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(&format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">")));
        assert!(html.contains("<h1>prodbench report</h1>"));
        let expected = ["20261121-063021-bd87", "95%", "10000", "407704157892", "oracle", "prodbench (gpt-4.1-mini-2025-04-14)", "[100.0, 100.0]"];
        for text in expected {
            assert!(html.contains(text), "the page shows {text:?}");
        }
        for trial in items(&sample(), "/trials") {
            let id = anchor_id("trial", str_at(trial, "/trial_id").unwrap());
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
        let html = render(&sample(), None);
        for id in CHART_IDS {
            let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{id} is present"));
            let tag = &html[html[..at].rfind('<').unwrap()..at];
            assert!(tag.contains("class=\"chart"), "{id} has class chart: {tag}");
            assert!(!chart_marks(&html, id).is_empty(), "{id} has data marks");
        }
        let second_score = sample()["rows"][1]["score"].as_f64().unwrap();
        let score = |row: usize, task: &str| sample()["rows"][row]["task_scores"][task].as_f64().unwrap();
        assert_eq!(chart_marks(&html, "chart-leaderboard"), [100.0, second_score]);
        assert_eq!(chart_marks(&html, "chart-failures"), [4.0, 2.0, 2.0, 1.0], "oracle passed 4; the other passed 2, failed 2, hit a limit once");
        let tasks = ["local-codebase-qna", "py-pagination-off-by-one"];
        let by_task: Vec<f64> = tasks.iter().flat_map(|task| [score(0, task), score(1, task)]).collect();
        assert_eq!(chart_marks(&html, "chart-heatmap"), by_task, "a row per task, agent columns in leaderboard order");
        assert_eq!(chart_marks(&html, "chart-cost"), [second_score], "only the agent with a cost is plotted");
    }

    #[test]
    fn references_nothing_outside_the_page() {
        let html = render(&sample(), None).replace(CSP, "");
        for reference in ["http:", "https:", "src=", "url(", "@import", "data:", "//"] {
            assert!(!html.contains(reference), "the page must not reference {reference:?}");
        }
    }

    #[test]
    fn a_split_vote_is_shown_with_the_reason() {
        let check = json!({"reason": "quoted", "votes_met": 2, "samples": 3});
        assert_eq!(judge_reason(&check), "quoted <span class=\"flag\">vote 2/3 met</span>");
        assert_eq!(judge_reason(&json!({"reason": "unanimous", "votes_met": 3, "samples": 3})), "unanimous");
    }

    #[test]
    fn a_penalty_reads_avoided_or_triggered_with_its_claim() {
        let check = |passed: bool, points: f64| json!({"kind": "criterion", "name": "c", "claim": "claims <done>", "points": points, "passed": passed});
        assert_eq!(outcome_badge(&check(true, -5.0)), "<span class=\"outcome outcome-good\">penalty avoided</span>");
        assert_eq!(outcome_badge(&check(false, -5.0)), "<span class=\"outcome outcome-bad\">penalty triggered</span>");
        assert_eq!(outcome_badge(&check(true, 3.0)), "<span class=\"outcome outcome-good\">met</span>");
        assert_eq!(outcome_badge(&json!({"kind": "test", "passed": false})), "<span class=\"outcome outcome-bad\">failed</span>");
        let trial = json!({"trial_id": "t", "grade": {"checks": [check(false, -5.0)]}});
        assert!(trial_page(&trial, None).contains("<div class=\"claim\">claims &lt;done&gt;</div>"));
    }

    #[test]
    fn a_trial_page_shows_the_answer_the_verifier_output_and_links_the_directory() {
        let jobs = tempfile::tempdir().unwrap();
        let trial_dir = jobs.path().join("j/trials/t a1");
        std::fs::create_dir_all(&trial_dir).unwrap();
        let trial = json!({
            "trial_id": "j.t", "dir": "trials/t a1", "path": trial_dir, "answer": "adler32 <65521>",
            "verifier_output": {"stdout": "[3 earlier lines]\nFAILED test_modulus", "stderr": ""}
        });
        let page = trial_page(&trial, Some(jobs.path()));
        assert!(page.contains("<pre class=\"output\">adler32 &lt;65521&gt;</pre>"), "{page}");
        assert!(page.contains("<h4>stdout</h4><pre class=\"output\">[3 earlier lines]\nFAILED test_modulus</pre>") && !page.contains("<h4>stderr</h4>"));
        let path = escape(trial_dir.to_str().unwrap());
        assert!(page.contains(&format!("<a href=\"j/trials/t%20a1/\"><code>{path}</code></a>")), "{page}");
        let elsewhere = jobs.path().join("reports/today");
        std::fs::create_dir_all(&elsewhere).unwrap();
        assert!(trial_page(&trial, Some(&elsewhere)).contains("href=\"../../j/trials/t%20a1/\""));
        assert!(trial_page(&trial, None).contains(&format!("<code class=\"path\">{path}</code>")), "without the page's location, a path to copy");
        let gone = json!({"dir": "trials/t", "path": jobs.path().join("gone")});
        assert!(trial_page(&gone, Some(jobs.path())).contains("<code class=\"path\">"), "a directory that does not resolve is not linked");
    }

    #[test]
    fn escapes_hostile_strings() {
        let hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&";
        let report = json!({
            "rows": [{"agent": hostile, "jobs": [hostile], "score": 50.0, "task_scores": {hostile: 50.0}, "statuses": {"infra_error": 1}}],
            "comparisons": [{"baseline": hostile, "other": hostile, "difference": {"mean_difference": 1.0}}],
            "breakdowns": [{"by": hostile, "group": hostile, "scores": {hostile: {"score": 50.0, "tasks": 1}}}],
            "failure_modes": {hostile: {hostile: 1, "infra_error": 1}},
            "trials": [{
                "agent": hostile, "task": hostile, "trial_id": hostile, "status": hostile, "error": hostile, "dir": hostile, "job_id": hostile,
                "path": hostile, "answer": hostile, "verifier_output": {"stdout": hostile, "stderr": hostile},
                "grade": {"checks": [{"kind": hostile, "name": hostile, "claim": hostile, "component": hostile, "passed": false, "reason": hostile, "judge": hostile}],
                          "components": [{"component": hostile}], "forbidden_changes": [hostile]}
            }, {"agent": "a", "task": "t", "trial_id": "i", "status": "infra_error", "error": hostile}],
            "settings": {"level": 0.95}
        });
        let html = render(&report, None);
        assert_eq!(html.matches("<script").count(), 1, "only the page's own filter script");
        assert!(!html.contains("<img"), "no element from the JSON");
        assert_eq!(html.matches("onerror=").count(), html.matches("&lt;img src=x onerror=").count(), "no attribute from the JSON");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;img src=x"));
        assert!(html.contains("id=\"trial-~3cscript~3ealert~281~29"), "ids keep a safe alphabet");
    }

    #[test]
    fn handles_empty_and_partial_reports() {
        let empty_arrays = json!({"rows": [], "comparisons": [], "breakdowns": [], "failure_modes": {}, "trials": [], "settings": {}});
        let nulls = json!({"rows": null, "comparisons": null, "breakdowns": null, "failure_modes": null, "trials": null, "settings": null});
        let wrong_types = json!({"rows": "x", "comparisons": 1, "breakdowns": {}, "failure_modes": [], "trials": [1, "x", null], "settings": []});
        let sparse = json!({
            "rows": [{"agent": "a"}, {}, {"agent": "b", "score": null, "pass": {}, "pass_at_k": [{}], "task_scores": {"t": null}}],
            "comparisons": [{}], "breakdowns": [{}], "failure_modes": {"a": {"failed": "x"}},
            "trials": [{}, {"grade": {"checks": [{}]}}]
        });
        for report in [json!({}), json!(null), json!([]), empty_arrays, nulls, wrong_types, sparse] {
            let html = render(&report, None);
            assert!(html.contains("<h1>prodbench report</h1>") && html.ends_with("</html>\n"), "renders {report}");
            assert!(html.contains(">-<"), "missing numbers show as -: {report}");
        }
        let html = render(&json!({}), None);
        assert!(html.contains("No agents in this report.") && html.contains("No trials in this report."));
    }

    #[test]
    fn pass_at_k_and_pass_hat_k_share_the_largest_k() {
        let report = json!({"rows": [{"agent": "a", "pass_at_k": [
            {"k": 1, "pass_at_k": 0.5, "pass_hat_k": 0.5, "tasks": 2},
            {"k": 2, "pass_at_k": 0.75, "pass_hat_k": 0.25, "tasks": 2}
        ]}]});
        let html = render(&report, None);
        let cells = "<td class=\"num\">50.0%</td><td class=\"num\">75.0% <span class=\"muted\">k=2</span></td>\
                     <td class=\"num\">25.0% <span class=\"muted\">k=2</span></td>";
        assert!(html.contains(cells), "pass@1, pass@2 and pass^2 side by side");
    }

    #[test]
    fn cost_is_plotted_when_recorded_and_never_invented() {
        let html = render(&sample(), None);
        assert!(html.contains("cost per trial (USD)") && html.contains("data-x=\"0.01658\""));
        assert!(html.contains("Cost not recorded for oracle: not plotted."));

        let mut report = sample();
        report["rows"][1]["cost_usd"] = Value::Null;
        let html = render(&report, None);
        assert!(html.contains("<p class=\"empty\">No cost recorded: agents without a priced model"), "an empty state, not a stand-in axis");
        assert!(!html.contains("id=\"chart-cost\""), "nothing is plotted");
    }

    #[test]
    fn the_leaderboard_shows_usage_per_trial_or_a_dash() {
        let report = json!({"rows": [{"agent": "a", "cost_usd": 0.25, "tokens": 12345.4, "steps": 7.0}, {"agent": "b"}]});
        let html = render(&report, None);
        let row = |agent: &str| {
            let row = html.split("<tr>").find(|row| row.starts_with(&format!("<td>{agent}</td>"))).unwrap_or_else(|| panic!("a row for {agent}"));
            row.split("</tr>").next().unwrap()
        };
        assert!(row("a").ends_with("<td class=\"num\">$0.2500</td><td class=\"num\">12,345</td><td class=\"num\">7.0</td>"), "{}", row("a"));
        assert!(row("b").ends_with("<td class=\"num\">-</td><td class=\"num\">-</td><td class=\"num\">-</td>"), "{}", row("b"));
    }

    #[test]
    fn infra_errors_are_listed_apart_and_not_charted() {
        let report = json!({
            "failure_modes": {"a": {"passed": 1, "infra_error": 2}},
            "trials": [{"agent": "a", "task": "t", "attempt": 1, "trial_id": "j.t__a1", "status": "infra_error", "error": "docker died\nmore"}]
        });
        let html = render(&report, None);
        assert_eq!(chart_marks(&html, "chart-failures"), [1.0], "only the scored trial is charted");
        assert!(html.contains("Infrastructure errors (not scored)") && html.contains("<code>docker died</code>"));
        assert!(html.contains("<td class=\"num unscored\">2</td>"));
    }

    #[test]
    fn failure_modes_show_limits_and_the_most_often_failed_checks() {
        let html = render(&sample(), None);
        let failures = &html[html.find("<h3>Limits hit and failed checks</h3>").expect("the table")..html.find("<h3>Infrastructure errors").unwrap()];
        assert!(failures.contains("<tr><td>oracle</td><td>none</td><td>none</td></tr>"), "{failures}");
        assert!(failures.contains("<td>turns <span class=\"muted\">×1</span></td>"), "{failures}");
        let expected = [
            "local-codebase-qna <code>names-modulus</code> <span class=\"muted\">failed in 2 of 3</span>",
            "local-codebase-qna <code>test_names_the_modulus</code> <span class=\"muted\">failed in 2 of 3</span>",
            "local-codebase-qna <code>false-completion</code> <span class=\"muted\">triggered in 1 of 3</span>",
        ];
        let at: Vec<usize> = expected.iter().map(|check| failures.find(check).unwrap_or_else(|| panic!("{check} in {failures}"))).collect();
        assert!(at.is_sorted(), "most often failed first");
        assert_eq!(failures.matches("<div>").count(), TOP_FAILED_CHECKS, "the top {TOP_FAILED_CHECKS} only");
    }

    #[test]
    fn a_comparison_without_shared_tasks_says_so() {
        let report = json!({"comparisons": [{"baseline": "a", "other": "b", "difference": {"shared_tasks": 0, "mean_difference": 0.0, "wins": 0}}]});
        let html = render(&report, None);
        assert!(html.contains("<tr><td>b</td><td>a</td><td class=\"muted\" colspan=\"7\">no shared tasks</td></tr>"), "{html}");
        assert!(!html.contains("+0.0"), "no difference is shown for nothing compared");
    }

    #[test]
    fn helpers_format_and_escape() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(anchor_id("trial", "j.t__a1 é"), "trial-j.t__a1~20~c3~a9");
        assert_eq!(fmt_number(None, 1), "-");
        assert_eq!(fmt_number(Some(f64::NAN), 1), "-");
        assert_eq!(fmt_percent(Some(2.0 / 3.0)), "66.7%");
        assert_eq!(fmt_cost(Some(0.01234)), "$0.0123");
        assert_eq!(fmt_thousands(Some(1_234_567.6)), "1,234,568");
        assert_eq!(fmt_thousands(Some(999.0)), "999");
        assert_eq!(fmt_thousands(None), "-");
        assert_eq!(fmt_trimmed(95.000_000_000_01), "95");
        assert_eq!(fmt_trimmed(97.5), "97.5");
        assert_eq!(fmt_trimmed(0.025), "0.025");
        assert_eq!(score_colour(0.0), "hsl(0, 70%, 78%)");
        assert_eq!(score_colour(100.0), "hsl(120, 70%, 78%)");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(
            svg_label(10.0, 20.0, "end", "prodbench (qwen2.5-coder-1.5b-instruct)"),
            "<text text-anchor=\"end\"><title>prodbench (qwen2.5-coder-1.5b-instruct)</title>\
             <tspan x=\"10.0\" y=\"17.0\">prodbench</tspan><tspan x=\"10.0\" y=\"31.0\">(qwen2.5-coder-1.5b-instruct)</tspan></text>",
            "a long agent (model) label is wrapped before the model"
        );
        assert_eq!(
            svg_label(10.0, 20.0, "start", "oracle"),
            "<text text-anchor=\"start\"><title>oracle</title><tspan x=\"10.0\" y=\"24.0\">oracle</tspan></text>"
        );
        assert_eq!(nice_step(0.825), 1.0);
        assert_eq!(nice_step(1.32), 2.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
