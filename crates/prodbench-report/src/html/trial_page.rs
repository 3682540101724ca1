//! One trial's details: its figures, the agent's work and answer, every check with the
//! judge's reason, a live trial's environment (see [`super::live`]), and the end of the
//! verifier's output. Also the small pieces other
//! sections use to point at a trial (its link, badge and filter attributes).

use std::collections::BTreeSet;
use std::path::Path;

use prodbench_score::score::{Check, CheckKind};
use prodbench_store::Outcome;
use prodbench_trajectory::stats::TrialStats;

use super::format::{MISSING, anchor_id, escape, fmt_cost, fmt_number, relative_href};
use super::{empty, table};
use crate::report::ReportTrial;

/// The trial's section; `page_dir`, the directory the page is in, to link its directory from.
pub(super) fn render(trial: &ReportTrial, page_dir: Option<&Path>) -> String {
    let scored = &trial.trial;
    let facts = [
        ("Score", fmt_number(scored.score, 1)),
        ("Pass", verdict(scored.pass, scored.score.is_some())),
        ("Resolve", verdict(scored.resolve, scored.score.is_some())),
        ("Points", fmt_number(scored.points, 1)),
        ("Ungraded checks", scored.ungraded.to_string()),
        ("Components", components_summary(trial)),
        ("Judged by", judges(trial)),
        ("Limit hit", trial.agent_limit.as_deref().map_or_else(|| MISSING.to_string(), escape)),
        ("Agent's work", work_summary(trial.stats.as_ref())),
        ("Job", format!("<code>{}</code>", escape(&scored.job_id))),
        ("Trial", format!("<code>{}</code>", escape(&scored.trial_id))),
        ("Directory", trial_directory(trial, page_dir)),
        ("Service logs", service_logs(trial, page_dir)),
    ];
    let facts: String = facts.iter().map(|(name, value)| format!("<dt>{name}</dt><dd>{value}</dd>")).collect();
    let error = trial.error.as_deref().map_or_else(String::new, |error| format!("<pre class=\"error\">{}</pre>", escape(error)));
    format!(
        "<section class=\"trial\" id=\"{}\" {}>\n<h3>{} <span class=\"muted\">· {} · attempt {}</span> {}</h3>\n\
         <dl class=\"facts\">{facts}</dl>\n{error}{}{}{}{}{}</section>\n",
        anchor_id("trial", &scored.trial_id),
        trial_data_attributes(trial),
        escape(&scored.task),
        escape(&trial.agent),
        scored.attempt,
        outcome_badge(trial),
        forbidden_changes(trial),
        answer(trial),
        checks_table(trial),
        super::live::render(trial, page_dir),
        verifier_output(trial),
    )
}

/// "yes", "no", "undecided" for a scored trial whose grade could not decide, else "-".
fn verdict(value: Option<bool>, scored: bool) -> String {
    match value {
        Some(true) => "yes".to_string(),
        Some(false) => "no".to_string(),
        None if scored => "undecided".to_string(),
        None => MISSING.to_string(),
    }
}

/// A link to a trial's section, with `text_html` (already escaped) as its text.
pub(super) fn trial_link(trial: &ReportTrial, text_html: &str) -> String {
    format!("<a href=\"#{}\">{text_html}</a>", anchor_id("trial", &trial.trial.trial_id))
}

/// The attributes the trial filter matches on.
pub(super) fn trial_data_attributes(trial: &ReportTrial) -> String {
    format!("data-trial data-agent=\"{}\" data-outcome=\"{}\"", escape(&trial.agent), trial.trial.outcome)
}

/// The trial's outcome, and its status when that reads differently (a `passed` status whose
/// pass is undecided).
pub(super) fn outcome_badge(trial: &ReportTrial) -> String {
    let (outcome, status) = (trial.trial.outcome, trial.trial.status);
    let badge = format!("<span class=\"status status-{outcome}\">{outcome}</span>");
    if outcome == Outcome::from(status) { badge } else { format!("{badge} <span class=\"muted\">status {status}</span>") }
}

/// "passed/graded" over the trial's checks, e.g. "2/2 (3 ungraded)".
pub(super) fn checks_passed(trial: &ReportTrial) -> String {
    let checks = trial.grade.as_ref().map_or(&[][..], |grade| &grade.checks);
    if checks.is_empty() {
        return MISSING.to_string();
    }
    let passed = checks.iter().filter(|check| check.passed == Some(true)).count();
    let graded = checks.iter().filter(|check| check.passed.is_some()).count();
    let ungraded = checks.len() - graded;
    let ungraded = if ungraded > 0 { format!(" <span class=\"muted\">({ungraded} ungraded)</span>") } else { String::new() };
    format!("{passed}/{graded}{ungraded}")
}

fn forbidden_changes(trial: &ReportTrial) -> String {
    let forbidden: Vec<String> = trial.grade.iter().flat_map(|grade| &grade.forbidden_changes).map(|path| escape(path)).collect();
    if forbidden.is_empty() {
        return String::new();
    }
    format!("<p class=\"note\">Changed files the task forbade changing: <code>{}</code></p>", forbidden.join("</code>, <code>"))
}

fn answer(trial: &ReportTrial) -> String {
    trial.answer.as_deref().map_or_else(String::new, |answer| {
        format!("<details class=\"output\" open><summary>Agent's answer</summary><pre class=\"output\">{}</pre></details>\n", escape(answer))
    })
}

/// The trial's directory: a relative link from the page when both resolve, else its path.
fn trial_directory(trial: &ReportTrial, page_dir: Option<&Path>) -> String {
    match page_dir.and_then(|from| relative_href(from, Path::new(&trial.path))) {
        Some(href) => format!("<a href=\"{href}\"><code>{}</code></a>", escape(&trial.path)),
        None => format!("<code class=\"path\">{}</code>", escape(&trial.path)),
    }
}

/// A link to each compose service's log the trial kept (its path when no link resolves).
fn service_logs(trial: &ReportTrial, page_dir: Option<&Path>) -> String {
    if trial.service_logs.is_empty() {
        return MISSING.to_string();
    }
    let link = |name: &String| {
        let file = Path::new(&trial.path).join(crate::report::SERVICES_DIR).join(format!("{name}.log"));
        match page_dir.and_then(|from| relative_href(from, &file)) {
            // The href of a file, not of a directory: no trailing slash.
            Some(href) => format!("<a href=\"{}\">{}</a>", href.trim_end_matches('/'), escape(name)),
            None => format!("<code class=\"path\">{}</code>", escape(&file.to_string_lossy())),
        }
    };
    trial.service_logs.iter().map(link).collect::<Vec<_>>().join(", ")
}

/// The end of what the run's tests printed, folded away.
fn verifier_output(trial: &ReportTrial) -> String {
    let Some(output) = &trial.verifier_output else { return String::new() };
    let streams: String = [("stdout", &output.stdout), ("stderr", &output.stderr)]
        .iter()
        .filter(|(_, text)| !text.is_empty())
        .map(|(stream, text)| format!("<h4>{stream}</h4><pre class=\"output\">{}</pre>", escape(text)))
        .collect();
    if streams.is_empty() {
        return String::new();
    }
    format!("<details class=\"output\"><summary>Verifier output of the run (its end)</summary>{streams}</details>\n")
}

/// What the trajectory says the agent did: steps, commands, files, searches, tokens, cost.
fn work_summary(stats: Option<&TrialStats>) -> String {
    let Some(s) = stats else { return "no trajectory".to_string() };
    let tokens = |count: Option<u64>| count.map_or_else(|| MISSING.to_string(), |n| n.to_string());
    let cost = s.cost_usd.map_or_else(|| "cost unknown".to_string(), |c| fmt_cost(Some(c)));
    format!(
        "{} steps, {} commands, {} files read, {} edited, {} searches, {} format errors; {} + {} tokens, {cost}",
        s.steps,
        s.commands,
        s.files_read,
        s.files_edited,
        s.searches,
        s.format_errors,
        tokens(s.prompt_tokens),
        tokens(s.completion_tokens)
    )
}

/// "feature 100 (weight 0.6, 2 ungraded)" for each component of the trial's grade.
fn components_summary(trial: &ReportTrial) -> String {
    let parts: Vec<String> = trial
        .grade
        .iter()
        .flat_map(|grade| &grade.components)
        .map(|component| {
            let ungraded = if component.ungraded > 0 { format!(", {} ungraded", component.ungraded) } else { String::new() };
            format!(
                "{} {} <span class=\"muted\">(weight {}{ungraded})</span>",
                component.component.as_str(),
                fmt_number(component.score.map(|s| s * 100.0), 1),
                fmt_number(Some(component.weight), 2)
            )
        })
        .collect();
    if parts.is_empty() { MISSING.to_string() } else { parts.join("; ") }
}

/// The judge models that decided the trial's criteria.
fn judges(trial: &ReportTrial) -> String {
    let judges: BTreeSet<&str> = trial.grade.iter().flat_map(|grade| &grade.checks).filter_map(|check| check.judge.as_deref()).collect();
    if judges.is_empty() { MISSING.to_string() } else { judges.into_iter().map(escape).collect::<Vec<_>>().join(", ") }
}

fn checks_table(trial: &ReportTrial) -> String {
    let checks = trial.grade.as_ref().map_or(&[][..], |grade| &grade.checks);
    if checks.is_empty() {
        return empty("No checks graded.");
    }
    let head = "<tr><th>Kind</th><th>Name and claim</th><th>Component</th><th class=\"num\">Weight</th><th class=\"num\">Points</th>\
                <th class=\"num\">Score</th><th>Outcome</th><th>Judge's reason</th></tr>";
    let body: String = checks.iter().map(check_row).collect();
    table("checks", head, &body)
}

fn check_row(check: &Check) -> String {
    let must_pass = if check.must_pass { " <span class=\"flag\">must pass</span>" } else { "" };
    let claim = check.claim.as_deref().map_or_else(String::new, |claim| format!("<div class=\"claim\">{}</div>", escape(claim)));
    let kind = match check.kind {
        CheckKind::Test => "test",
        CheckKind::Reward => "reward",
        CheckKind::Criterion => "criterion",
    };
    format!(
        "<tr><td>{kind}</td><td>{}{must_pass}{claim}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td>{}</td><td class=\"reason\">{}</td></tr>\n",
        escape(&check.name),
        check.component.as_str(),
        fmt_number(Some(check.weight), 2),
        fmt_number(check.points, 1),
        fmt_number(check.score, 2),
        check_outcome(check),
        judge_reason(check),
    )
}

/// The judge's reason, with the vote when several samples disagreed.
fn judge_reason(check: &Check) -> String {
    if let Some(error) = &check.judge_error {
        return format!("<span class=\"note\">judge failed: {}</span>", escape(error));
    }
    let reason = check.reason.as_deref().map_or_else(String::new, escape);
    match (check.votes_met, check.samples) {
        (Some(met), Some(samples)) if met > 0 && met < samples => format!("{reason} <span class=\"flag\">vote {met}/{samples} met</span>"),
        _ => reason,
    }
}

/// A check's outcome: a test passes or fails, a criterion is met or not, and a penalty (a
/// criterion with negative points, whose good outcome is a false claim) is avoided or triggered.
fn check_outcome(check: &Check) -> String {
    let penalty = check.points.is_some_and(|points| points < 0.0);
    let (good, bad) = match check.kind {
        CheckKind::Criterion if penalty => ("penalty avoided", "penalty triggered"),
        CheckKind::Criterion => ("met", "not met"),
        CheckKind::Test | CheckKind::Reward => ("passed", "failed"),
    };
    match check.passed {
        Some(true) => format!("<span class=\"outcome outcome-good\">{good}</span>"),
        Some(false) => format!("<span class=\"outcome outcome-bad\">{bad}</span>"),
        None => "<span class=\"outcome outcome-ungraded\">ungraded</span>".to_string(),
    }
}
