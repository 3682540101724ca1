//! Aligned plain-text tables and the cells they hold.

use prodbench_run::JobSummary;
use prodbench_store::Outcome;

/// Renders rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// A score (0-100) with one decimal, `-` when there is none.
pub fn format_score(score: Option<f64>) -> String {
    score.map_or_else(|| "-".into(), |s| format!("{s:.1}"))
}

pub fn format_reward(reward: Option<f64>) -> String {
    reward.map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into())
}

/// The end-of-job table: per task, trials, score, passes, errors; then the job's totals and
/// what it did not run. Every number is defined as in the report (`prodbench_run::summarize`).
pub fn summary_table(summary: &JobSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .tasks
        .iter()
        .map(|t| {
            let mut statuses = status_counts(&t.statuses);
            if t.not_started > 0 {
                statuses.push_str(&format!("{}not_started={}", if statuses.is_empty() { "" } else { " " }, t.not_started));
            }
            vec![t.task.clone(), t.trials.to_string(), format_score(t.score), t.passed.to_string(), t.errors.to_string(), statuses]
        })
        .collect();
    let mut out = table(&["TASK", "TRIALS", "SCORE", "PASSED", "ERRORS", "OUTCOMES"], &rows);
    out.push_str(&format!("\n{}\n", totals_line(summary)));
    for task in &summary.skipped {
        let reason = task.skipped.map_or("", |r| r.as_str());
        let name = task.name.as_deref().unwrap_or(&task.dir);
        out.push_str(&format!("skipped ({reason}): {name}: {}\n", task.diagnostics.first().map_or("", String::as_str)));
    }
    out
}

/// `4 trials, 3 scored, 2 passed, score 66.7, 1 infra errors (not scored), ...`.
fn totals_line(summary: &JobSummary) -> String {
    let mut line = format!("{} trials, {} scored, {} passed, score {}", summary.trials, summary.scored, summary.passed, format_score(summary.score));
    let count = |outcome: Outcome| summary.statuses.get(&outcome).copied().unwrap_or(0);
    let mut add = |n: usize, what: &str| {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    };
    add(count(Outcome::InfraError), "infra errors (not scored)");
    add(count(Outcome::VerifierError), "verifier errors (scored as 0)");
    add(summary.undecided, "undecided (a check they depend on was not judged)");
    add(summary.judge_failures, "criteria ungraded because the judge failed (see judge/errors.txt in the trials)");
    add(summary.unfinished - summary.not_started, "unfinished");
    add(summary.not_started, "not started");
    add(summary.skipped.len(), "tasks skipped");
    line
}

fn status_counts(statuses: &std::collections::BTreeMap<Outcome, usize>) -> String {
    statuses.iter().map(|(s, n)| format!("{s}={n}")).collect::<Vec<_>>().join(" ")
}

pub fn first_line(text: Option<&str>) -> String {
    text.and_then(|t| t.lines().next()).unwrap_or_default().chars().take(160).collect()
}
