//! The page's sections, top to bottom: header, leaderboard, comparisons, breakdowns, heat
//! map, failure modes, cost, trials. Each takes the typed report and returns its HTML; an
//! empty section says why it is empty.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use prodbench_store::{Outcome, TrialStatus};

use super::charts::{self, Group, OutcomeCounts, ScatterPoint};
use super::format::{MISSING, anchor_id, count_of, escape, fmt_cost, fmt_interval, fmt_level, fmt_number, fmt_percent, fmt_rate, fmt_thousands};
use super::trial_page::{self, checks_passed, outcome_badge, trial_data_attributes, trial_link};
use super::{empty, section, table};
use crate::leaderboard::Row;
use crate::report::{Comparison, Report, ReportJob, ReportTrial};

/// Outcomes of scored trials, in display order: passed and undecided first (the pass rate is
/// `passed` of all but `undecided`), then the ways a trial fails.
const SCORED_OUTCOMES: [Outcome; 6] = [Outcome::Passed, Outcome::Undecided, Outcome::Failed, Outcome::AgentLimit, Outcome::AgentError, Outcome::VerifierError];
/// Outcomes that are never scored (infrastructure errors, interrupted trials): shown apart.
const UNSCORED_OUTCOMES: [Outcome; 2] = [Outcome::InfraError, Outcome::Interrupted];
/// Checks most often failed per agent, shown in the failure modes.
pub(super) const TOP_FAILED_CHECKS: usize = 5;

pub(super) fn header(report: &Report, agents: &[&str], format_version: u32) -> String {
    let jobs: String = report.jobs.iter().map(job_item).collect();
    let jobs = if jobs.is_empty() { "<span class=\"muted\">none recorded</span>".to_string() } else { format!("<ul class=\"jobs\">{jobs}</ul>") };
    let counts = [count_of(agents.len(), "agent"), count_of(task_names(report).len(), "task"), count_of(report.trials.len(), "trial")].join(" · ");
    let settings = &report.settings;
    format!(
        "<header>\n<h1>prodbench report</h1>\n<p class=\"muted\">{counts} · format version {format_version}</p>\n\
         <dl class=\"settings\"><dt>Jobs</dt><dd>{jobs}</dd>\
         <dt>Confidence level</dt><dd>{}</dd><dt>Bootstrap resamples</dt><dd>{}</dd><dt>Bootstrap seed</dt><dd>{}</dd></dl>\n\
         <nav class=\"toc\"><a href=\"#leaderboard\">Leaderboard</a><a href=\"#comparisons\">Comparisons</a>\
         <a href=\"#breakdowns\">Categories</a><a href=\"#heatmap\">Tasks</a><a href=\"#failures\">Failure modes</a>\
         <a href=\"#cost\">Cost</a><a href=\"#trials\">Trials</a></nav>\n</header>\n",
        fmt_level(settings.level),
        settings.resamples,
        settings.seed,
    )
}

/// A job in the header: its id and row, and, when it is not finished or skipped tasks, a
/// note saying its results are partial.
fn job_item(job: &ReportJob) -> String {
    let state = if job.is_complete() { String::new() } else { format!(" <span class=\"note\">{}: only the trials that ran are covered</span>", job.liveness) };
    let skipped: Vec<String> =
        job.skipped.iter().map(|t| format!("{} ({})", escape(t.name.as_deref().unwrap_or(&t.dir)), t.skipped.map_or("", |r| r.as_str()))).collect();
    let skipped = if skipped.is_empty() { String::new() } else { format!(" <span class=\"note\">skipped {}</span>", skipped.join(", ")) };
    format!("<li><code>{}</code> <span class=\"muted\">{}</span>{state}{skipped}</li>", escape(&job.job_id), escape(&job.agent))
}

pub(super) fn leaderboard(report: &Report, agents: &[&str]) -> String {
    if report.rows.is_empty() {
        return section("leaderboard", "Leaderboard", &empty("No agents in this report."));
    }
    let level = fmt_level(report.settings.level);
    // pass@k and pass^k at the report's common k, as the terminal shows them; none when it is 1
    // (pass^1 is pass@1).
    let k = report.common_k.filter(|k| *k > 1);
    let at_k = k.map_or_else(String::new, |k| format!("<th class=\"num\">pass@{k}</th><th class=\"num\">pass^{k}</th>"));
    let head = format!(
        "<tr><th>Agent</th><th class=\"num\">Score</th><th class=\"num\">{level} bootstrap</th>\
         <th class=\"num\">{level} t interval</th><th class=\"num\">Pass</th><th class=\"num\">Resolve</th>\
         <th class=\"num\">pass@1</th>{at_k}<th class=\"num\">Mean points</th>\
         <th class=\"num\">Tasks</th><th class=\"num\">Trials</th><th class=\"num\">Infra errors</th>\
         <th class=\"num\">Ungraded trials</th><th class=\"num\">Cost per trial</th><th class=\"num\">Tokens per trial</th>\
         <th class=\"num\">Steps per trial</th></tr>"
    );
    let with_trials: HashSet<&str> = report.trials.iter().map(|trial| trial.agent.as_str()).collect();
    let body: String = report.rows.iter().map(|row| leaderboard_row(row, k, with_trials.contains(row.agent.as_str()))).collect();
    let intro = "<p class=\"muted\">Score: mean over tasks of each task's mean trial score (0-100, the grade's composite), every task \
                 weighing the same. Every figure counts each attempt's final try; infrastructure errors and interrupted trials are \
                 never scored. Pass and resolve: scored trials that passed (resolved), of those whose outcome is known; an undecided \
                 trial (a check it depends on was never judged) is left out and counted apart. \
                 pass@k: chance that at least one of k attempts passes; pass^k: that all k do; every row at the same k, the largest \
                 all rows have (shown when it is above 1). Cost, tokens and steps are means over the trials the agent ran in, from their trajectories; \
                 - when some of those trials did not record them.</p>";
    section("leaderboard", "Leaderboard", &[intro, &table("leaderboard", &head, &body), &charts::leaderboard(&report.rows, agents)].concat())
}

/// One row of the leaderboard; pass@k and pass^k at `k`, when there is one.
fn leaderboard_row(row: &Row, k: Option<u32>, has_trials: bool) -> String {
    let agent_cell =
        if has_trials { format!("<a href=\"#{}\">{}</a>", anchor_id("trials", &row.agent), agent_html(&row.agent)) } else { agent_html(&row.agent) };
    let at_k = |k: u32| row.pass_at_k.iter().find(|entry| entry.k == k);
    let outcome = |outcome: Outcome| row.statuses.get(&outcome).copied().unwrap_or(0);
    let undecided = match outcome(Outcome::Undecided) {
        0 => String::new(),
        n => format!(" <span class=\"muted\">{n} undecided</span>"),
    };
    let mut cells = vec![
        fmt_number(row.score, 1),
        fmt_interval(row.score_bootstrap),
        fmt_interval(row.score_t),
        format!("{}{undecided}", fmt_rate(&row.pass)),
        fmt_rate(&row.resolve),
        fmt_percent(at_k(1).map(|entry| entry.pass_at_k)),
    ];
    cells.extend(k.into_iter().flat_map(|k| [fmt_percent(at_k(k).map(|entry| entry.pass_at_k)), fmt_percent(at_k(k).map(|entry| entry.pass_hat_k))]));
    cells.extend([
        fmt_number(row.mean_points, 1),
        row.tasks.to_string(),
        row.trials.to_string(),
        outcome(Outcome::InfraError).to_string(),
        row.ungraded_trials.to_string(),
        fmt_cost(row.usage.cost_usd),
        fmt_thousands(row.usage.tokens),
        fmt_number(row.usage.steps, 1),
    ]);
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

pub(super) fn comparisons(report: &Report) -> String {
    if report.comparisons.is_empty() {
        return section("comparisons", "Paired comparisons", &empty("No paired comparisons (they need two agents with shared tasks)."));
    }
    let head = "<tr><th>Agent</th><th>vs baseline</th><th class=\"num\">Mean difference</th><th class=\"num\">Bootstrap</th>\
                <th class=\"num\">t interval</th><th class=\"num\">Wins</th><th class=\"num\">Losses</th><th class=\"num\">Ties</th>\
                <th class=\"num\">Shared tasks</th></tr>";
    let body: String = report.comparisons.iter().map(comparison_row).collect();
    let intro = "<p class=\"muted\">Per shared task, the agent's mean score minus the baseline's; positive means the agent did better.</p>";
    section("comparisons", "Paired comparisons", &[intro, &table("comparisons", head, &body)].concat())
}

fn comparison_row(comparison: &Comparison) -> String {
    let (other, baseline) = (escape(&comparison.other), escape(&comparison.baseline));
    let d = &comparison.difference;
    if d.shared_tasks == 0 {
        return format!("<tr><td>{other}</td><td>{baseline}</td><td class=\"muted\" colspan=\"7\">no shared tasks</td></tr>\n");
    }
    let difference = Some(d.mean_difference).filter(|d| d.is_finite());
    let direction = match difference {
        Some(d) if d > 0.0 => " better",
        Some(d) if d < 0.0 => " worse",
        _ => "",
    };
    let signed = difference.map_or_else(|| MISSING.to_string(), |d| format!("{d:+.1}"));
    format!(
        "<tr><td>{other}</td><td>{baseline}</td><td class=\"num{direction}\">{signed}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
        fmt_interval(d.bootstrap),
        fmt_interval(d.t),
        d.wins,
        d.losses,
        d.ties,
        d.shared_tasks,
    )
}

pub(super) fn breakdowns(report: &Report, agents: &[&str]) -> String {
    let title = "Score by category, difficulty and tag";
    if report.breakdowns.is_empty() {
        return section("breakdowns", title, &empty("No categories, difficulties or tags recorded."));
    }
    let columns: Vec<&str> = agents.iter().copied().filter(|agent| report.breakdowns.iter().any(|b| b.scores.contains_key(*agent))).collect();
    let agent_headers: String = columns.iter().map(|agent| format!("<th class=\"num\">{}</th>", escape(agent))).collect();
    let head = format!("<tr><th>By</th><th>Group</th>{agent_headers}</tr>");
    let body: String = report
        .breakdowns
        .iter()
        .map(|breakdown| {
            let cells: String = columns
                .iter()
                .map(|agent| match breakdown.scores.get(*agent) {
                    Some(s) => format!("<td class=\"num\">{} <span class=\"muted\">({})</span></td>", fmt_number(Some(s.score), 1), count_of(s.tasks, "task")),
                    None => format!("<td class=\"num\">{MISSING}</td>"),
                })
                .collect();
            format!("<tr><td>{}</td><td>{}</td>{cells}</tr>\n", escape(&breakdown.by), escape(&breakdown.group))
        })
        .collect();
    let groups: Vec<Group> = report
        .breakdowns
        .iter()
        .map(|breakdown| Group {
            label: format!("{}: {}", breakdown.by, breakdown.group),
            scores: agents.iter().filter_map(|agent| Some((*agent, breakdown.scores.get(*agent)?.score)).filter(|(_, s)| s.is_finite())).collect(),
        })
        .collect();
    section("breakdowns", title, &[table("breakdowns", &head, &body), charts::breakdown(&groups, agents)].concat())
}

pub(super) fn heat_map(report: &Report) -> String {
    let tasks = task_names(report);
    if report.rows.is_empty() || tasks.is_empty() {
        return section("heatmap", "Tasks by agent", &empty("No task scores in this report."));
    }
    let agent_headers: String = report.rows.iter().map(|row| format!("<th class=\"num\">{}</th>", escape(&row.agent))).collect();
    let body: String = tasks
        .iter()
        .map(|task| {
            let cells: String = report.rows.iter().map(|row| heat_map_cell(report, row, task)).collect();
            format!("<tr><th>{}</th>{cells}</tr>\n", escape(task))
        })
        .collect();
    let intro = "<p class=\"muted\">Each task's mean score per agent, from 0 (red) to 100 (green); a cell links to the task's first trial.</p>";
    let heat_map = format!(
        "<div class=\"table-wrap\"><table class=\"chart heatmap\" id=\"chart-heatmap\"><thead><tr><th>Task</th>{agent_headers}</tr></thead>\
         <tbody>\n{body}</tbody></table></div>\n"
    );
    let incomplete = report.trials.iter().any(|trial| trial.trial.is_incomplete());
    let legend = if incomplete { format!("<p class=\"muted\">{INCOMPLETE_LEGEND}</p>\n") } else { String::new() };
    section("heatmap", "Tasks by agent", &[intro, &heat_map, &legend].concat())
}

/// The heat map's note on a score marked `*`.
const INCOMPLETE_LEGEND: &str = "* incomplete: some of the cell's trials have checks that were never judged (no judge configured, or it \
                                 failed); their scores cover the graded checks only, and a pass that depends on them is undecided.";

fn heat_map_cell(report: &Report, row: &Row, task: &str) -> String {
    let Some(score) = row.task_scores.get(task).copied().filter(|s| s.is_finite()) else {
        return format!("<td class=\"absent\">{MISSING}</td>");
    };
    let trials: Vec<&ReportTrial> = report.trials.iter().filter(|t| t.agent == row.agent && t.trial.task == task).collect();
    let scored = trials.iter().filter(|t| t.trial.score.is_some()).count();
    let incomplete = trials.iter().filter(|t| t.trial.is_incomplete()).count();
    let (mark, note) = match incomplete {
        0 => ("", String::new()),
        n => ("*", format!(" (incomplete: {n} of {scored} trials have ungraded checks)")),
    };
    let number = format!("{}{mark}", fmt_number(Some(score), 0));
    let content = match trials.first() {
        Some(trial) => trial_link(trial, &number),
        None => number,
    };
    format!(
        "<td class=\"mark\" data-value=\"{score}\" data-label=\"{}\" style=\"background:{}\" title=\"{}\">{content}</td>",
        escape(&format!("{task} / {}", row.agent)),
        charts::score_colour(score),
        escape(&format!("{task} / {}: {}{note}", row.agent, fmt_number(Some(score), 1))),
    )
}

/// Every task named in the rows' task scores or the trials, by name.
fn task_names(report: &Report) -> BTreeSet<&str> {
    let scored = report.rows.iter().flat_map(|row| row.task_scores.keys());
    let tried = report.trials.iter().map(|trial| &trial.trial.task);
    scored.chain(tried).map(String::as_str).collect()
}

pub(super) fn failure_modes(report: &Report, agents: &[&str]) -> String {
    let mut modes: Vec<OutcomeCounts> = report.failure_modes.iter().map(|(agent, counts)| OutcomeCounts { agent, counts }).collect();
    if modes.is_empty() {
        return section("failures", "Failure modes", &empty("No final outcomes recorded."));
    }
    modes.sort_by_key(|mode| agents.iter().position(|agent| *agent == mode.agent));
    let columns = scored_outcome_columns(&modes);
    let scored_headers: String = columns.iter().map(|outcome| format!("<th class=\"num\">{outcome}</th>")).collect();
    let unscored_headers: String = UNSCORED_OUTCOMES.iter().map(|outcome| format!("<th class=\"num unscored\">{outcome}</th>")).collect();
    let head = format!("<tr><th>Agent</th>{scored_headers}{unscored_headers}</tr>");
    let body: String = modes
        .iter()
        .map(|mode| {
            let scored: String = columns.iter().map(|outcome| format!("<td class=\"num\">{}</td>", mode.count(*outcome))).collect();
            let unscored: String = UNSCORED_OUTCOMES.iter().map(|outcome| format!("<td class=\"num unscored\">{}</td>", mode.count(*outcome))).collect();
            format!("<tr><td>{}</td>{scored}{unscored}</tr>\n", escape(mode.agent))
        })
        .collect();
    let intro = "<p class=\"muted\">Final outcome of each trial: its status, except that <code>passed</code> counts the trials the \
                 pass rate counts and <code>undecided</code> those whose pass is unknown (a check it depends on was never judged), \
                 whatever their status. Infrastructure errors and interrupted trials are not the agent's doing and are never scored: \
                 they are counted apart and left out of the chart.</p>";
    section(
        "failures",
        "Failure modes",
        &[
            intro,
            &table("failure-modes", &head, &body),
            &charts::failures(&modes, &columns),
            &limits_and_failed_checks(report, agents),
            &infra_errors_list(report),
        ]
        .concat(),
    )
}

/// The scored outcomes that occur, in display order.
fn scored_outcome_columns(modes: &[OutcomeCounts]) -> Vec<Outcome> {
    let present: BTreeSet<Outcome> = modes.iter().flat_map(|m| m.counts.keys().copied()).collect();
    SCORED_OUTCOMES.into_iter().filter(|outcome| present.contains(outcome)).collect()
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

/// Per agent: the limits its trials hit, and the checks (tests, criteria, penalties) that
/// failed most often.
fn limits_and_failed_checks(report: &Report, agents: &[&str]) -> String {
    if report.trials.is_empty() {
        return String::new();
    }
    let body: String = agents
        .iter()
        .map(|agent| {
            let mine: Vec<&ReportTrial> = report.trials.iter().filter(|trial| trial.agent == *agent).collect();
            format!("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", escape(agent), limits_hit(&mine), failed_checks_html(&mine))
        })
        .collect();
    let head = format!("<tr><th>Agent</th><th>Limits hit</th><th>Most often failed checks (top {TOP_FAILED_CHECKS})</th></tr>");
    let intro = "<p class=\"muted\">A check failed when a test failed, a criterion was not met or a penalty was triggered; \
                 counted over the scored trials in which it was graded.</p>";
    ["<h3>Limits hit and failed checks</h3>", intro, &table("failed-checks", &head, &body)].concat()
}

/// "turns ×2, cost ×1", most often hit first, or "none".
fn limits_hit(trials: &[&ReportTrial]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for limit in trials.iter().filter_map(|trial| trial.agent_limit.as_deref()) {
        *counts.entry(limit).or_default() += 1;
    }
    let mut limits: Vec<(&str, usize)> = counts.into_iter().collect();
    limits.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let limits: Vec<String> = limits.iter().map(|(limit, count)| format!("{} <span class=\"muted\">×{count}</span>", escape(limit))).collect();
    if limits.is_empty() { "none".to_string() } else { limits.join(", ") }
}

fn failed_checks_html(trials: &[&ReportTrial]) -> String {
    let checks: Vec<String> = failed_checks(trials)
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
    if checks.is_empty() { "none".to_string() } else { checks.concat() }
}

/// The checks that failed most often in the scored `trials`, at most [`TOP_FAILED_CHECKS`].
fn failed_checks<'a>(trials: &[&'a ReportTrial]) -> Vec<FailedCheck<'a>> {
    let mut by_check: BTreeMap<(&str, &str), FailedCheck> = BTreeMap::new();
    for trial in trials.iter().copied().filter(|trial| trial.trial.score.is_some()) {
        let task = trial.trial.task.as_str();
        for check in trial.grade.iter().flat_map(|grade| &grade.checks) {
            let Some(passed) = check.passed else { continue };
            let name = check.name.as_str();
            let entry = by_check.entry((task, name)).or_insert_with(|| FailedCheck { task, name, ..FailedCheck::default() });
            entry.penalty |= check.points.is_some_and(|points| points < 0.0);
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

fn infra_errors_list(report: &Report) -> String {
    let listed: String = report
        .trials
        .iter()
        .filter(|trial| trial.trial.status == TrialStatus::InfraError)
        .map(|trial| {
            let error = trial.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("no message recorded");
            format!(
                "<li>{} · {} · attempt {}: <code>{}</code></li>",
                trial_link(trial, &escape(&trial.trial.task)),
                escape(&trial.agent),
                trial.trial.attempt,
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

pub(super) fn cost(report: &Report, agents: &[&str]) -> String {
    if report.rows.is_empty() {
        return section("cost", "Cost vs score", &empty("No agents in this report."));
    }
    let (costed, uncosted): (Vec<&Row>, Vec<&Row>) = report.rows.iter().partition(|row| row.usage.cost_usd.is_some_and(f64::is_finite));
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
            let (cost, score) = (row.usage.cost_usd?, row.score.filter(|s| s.is_finite())?);
            Some(ScatterPoint { agent: &row.agent, cost, score, colour: charts::agent_colour(agents, &row.agent) })
        })
        .collect();
    let note = if uncosted.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = uncosted.iter().map(|row| escape(&row.agent)).collect();
        format!("<p class=\"note\">Cost not recorded for {}: not plotted.</p>", names.join(", "))
    };
    let chart = if points.is_empty() { empty("No agent with a cost has a score to plot.") } else { charts::cost(&points) };
    section("cost", "Cost vs score", &[note, chart].concat())
}

/// `page_dir`: the directory the page is in, to link trial directories from.
pub(super) fn trials(report: &Report, page_dir: Option<&Path>) -> String {
    if report.trials.is_empty() {
        return section("trials", "Trials", &empty("No trials in this report."));
    }
    let head = "<tr><th>Task</th><th>Agent</th><th>Job</th><th class=\"num\">Attempt</th><th>Outcome</th><th class=\"num\">Score</th>\
                <th class=\"num\">Checks passed</th></tr>";
    let mut seen_agents = HashSet::new();
    let index: String = report
        .trials
        .iter()
        .map(|trial| {
            // The first row of each agent is the target of the leaderboard's link.
            let id = if seen_agents.insert(&trial.agent) { format!(" id=\"{}\"", anchor_id("trials", &trial.agent)) } else { String::new() };
            format!(
                "<tr{id} {}><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td></tr>\n",
                trial_data_attributes(trial),
                trial_link(trial, &escape(&trial.trial.task)),
                escape(&trial.agent),
                escape(&trial.trial.job_id),
                trial.trial.attempt,
                outcome_badge(trial),
                fmt_number(trial.trial.score, 1),
                checks_passed(trial),
            )
        })
        .collect();
    let details: String = report.trials.iter().map(|trial| trial_page::render(trial, page_dir)).collect();
    section("trials", "Trials", &[trial_filter(&report.trials), table("trial-index", head, &index), details].concat())
}

fn trial_filter(trials: &[ReportTrial]) -> String {
    let options = |values: BTreeSet<&str>| -> String { values.iter().map(|value| format!("<option value=\"{0}\">{0}</option>", escape(value))).collect() };
    format!(
        "<form class=\"filter\" id=\"trial-filter\"><label>Agent <select name=\"agent\"><option value=\"\">all</option>{}</select></label>\
         <label>Outcome <select name=\"outcome\"><option value=\"\">all</option>{}</select></label></form>\n",
        options(trials.iter().map(|trial| trial.agent.as_str()).collect()),
        options(trials.iter().map(|trial| trial.trial.outcome.as_str()).collect())
    )
}
