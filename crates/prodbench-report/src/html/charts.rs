//! The charts: inline SVG built from [`svg`] primitives, each with its stable id, every
//! data point a mark carrying its value (see the module docs of [`super`]).

use std::collections::{BTreeMap, HashSet};

use prodbench_store::Outcome;

use super::empty;
use super::format::{MISSING, escape, fmt_cost, fmt_number, fmt_trimmed};
use super::svg;
use crate::leaderboard::Row;
use crate::stats::Interval;

/// One colour per agent, in leaderboard order (Tableau 10, distinguishable on white).
const AGENT_PALETTE: [&str; 10] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// Width of the label column on the left of the horizontal bar charts.
const LABEL_WIDTH: f64 = 250.0;
/// Width of the 0..100 plot area of the horizontal bar charts.
const PLOT_WIDTH: f64 = 420.0;
const BAR_ROW: f64 = 32.0;
const AXIS_HEIGHT: f64 = 28.0;

/// The score of each row, with its bootstrap interval as a whisker.
pub(super) fn leaderboard(rows: &[Row], agents: &[&str]) -> String {
    let height = rows.len() as f64 * BAR_ROW + AXIS_HEIGHT;
    let bars: String = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let y = index as f64 * BAR_ROW;
            let label = svg::label(LABEL_WIDTH - 8.0, y + BAR_ROW / 2.0, "end", &row.agent);
            let Some(score) = row.score.filter(|s| s.is_finite()) else {
                return format!("{label}{}", svg::text(LABEL_WIDTH + 4.0, y + BAR_ROW / 2.0, "start", "tick", MISSING));
            };
            let bar = svg::bar(LABEL_WIDTH, y + 4.0, scale_score(score), BAR_ROW - 8.0, agent_colour(agents, &row.agent), score, &row.agent);
            let whisker = interval_whisker(row.score_bootstrap, y + BAR_ROW / 2.0);
            let value = svg::text(LABEL_WIDTH + scale_score(score) + 6.0, y + BAR_ROW / 2.0 - 6.0, "start", "", &fmt_number(Some(score), 1));
            format!("{label}{bar}{whisker}{value}")
        })
        .collect();
    let axis = score_axis(0.0, height - AXIS_HEIGHT);
    svg::chart("chart-leaderboard", "Score per agent, with bootstrap interval", LABEL_WIDTH + PLOT_WIDTH + 50.0, height, &[axis, bars].concat())
}

/// A horizontal whisker over an interval, centred on `y`.
fn interval_whisker(interval: Option<Interval>, y: f64) -> String {
    let Some(interval) = interval.filter(|i| i.low.is_finite() && i.high.is_finite()) else { return String::new() };
    let (x1, x2) = (LABEL_WIDTH + scale_score(interval.low), LABEL_WIDTH + scale_score(interval.high));
    let (top, bottom) = (y - 5.0, y + 5.0);
    format!(
        "<line class=\"whisker\" x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\"/>\
         <line class=\"whisker\" x1=\"{x1:.1}\" y1=\"{top:.1}\" x2=\"{x1:.1}\" y2=\"{bottom:.1}\"/>\
         <line class=\"whisker\" x1=\"{x2:.1}\" y1=\"{top:.1}\" x2=\"{x2:.1}\" y2=\"{bottom:.1}\"/>"
    )
}

/// One breakdown group ("category: codebase-qna") with its agents' scores, in agent order.
pub(super) struct Group<'a> {
    pub label: String,
    pub scores: Vec<(&'a str, f64)>,
}

/// One row of bars per group, one bar per agent in the group, coloured by agent.
pub(super) fn breakdown(groups: &[Group], agents: &[&str]) -> String {
    const BAR: f64 = 16.0;
    const GROUP_GAP: f64 = 10.0;
    let mut y = 0.0;
    let mut marks = String::new();
    for group in groups.iter().filter(|group| !group.scores.is_empty()) {
        marks.push_str(&svg::label(LABEL_WIDTH - 8.0, y + BAR / 2.0 + 2.0, "end", &group.label));
        for (agent, score) in &group.scores {
            let (length, colour) = (scale_score(*score), agent_colour(agents, agent));
            marks.push_str(&svg::bar(LABEL_WIDTH, y + 2.0, length, BAR - 2.0, colour, *score, &format!("{} / {agent}", group.label)));
            marks.push_str(&svg::text(LABEL_WIDTH + length + 4.0, y + BAR / 2.0 + 1.0, "start", "tick", &fmt_number(Some(*score), 0)));
            y += BAR;
        }
        y += GROUP_GAP;
    }
    if marks.is_empty() {
        return empty("No group has a score to chart.");
    }
    let content = [score_axis(0.0, y), marks].concat();
    let chart = svg::chart("chart-breakdown", "Score per group and agent", LABEL_WIDTH + PLOT_WIDTH + 50.0, y + AXIS_HEIGHT, &content);
    let charted: HashSet<&str> = groups.iter().flat_map(|group| group.scores.iter().map(|(agent, _)| *agent)).collect();
    let shown = agents.iter().filter(|agent| charted.contains(*agent));
    [legend(shown.map(|agent| (agent_colour(agents, agent), *agent))), chart].concat()
}

/// An agent's trials per outcome, from the report's failure modes.
pub(super) struct OutcomeCounts<'a> {
    pub agent: &'a str,
    pub counts: &'a BTreeMap<Outcome, usize>,
}

impl OutcomeCounts<'_> {
    pub(super) fn count(&self, outcome: Outcome) -> usize {
        self.counts.get(&outcome).copied().unwrap_or(0)
    }
}

/// One stacked bar per agent: its scored trials by outcome (`columns`, in order).
pub(super) fn failures(modes: &[OutcomeCounts], columns: &[Outcome]) -> String {
    let scored_total = |mode: &OutcomeCounts| columns.iter().map(|outcome| mode.count(*outcome)).sum::<usize>();
    let largest = modes.iter().map(scored_total).max().unwrap_or(0);
    if largest == 0 {
        return empty("No scored trials to chart.");
    }
    let unit = PLOT_WIDTH / largest as f64;
    let bars: String = modes.iter().enumerate().map(|(index, mode)| outcome_bar(mode, columns, index as f64 * BAR_ROW, unit)).collect();
    let height = modes.len() as f64 * BAR_ROW + 8.0;
    let chart = svg::chart("chart-failures", "Scored trials per agent by outcome", LABEL_WIDTH + PLOT_WIDTH + 90.0, height, &bars);
    [legend(columns.iter().map(|outcome| (outcome_colour(*outcome), outcome.as_str()))), chart].concat()
}

/// One agent's stacked bar at `y`, `unit` wide per trial.
fn outcome_bar(mode: &OutcomeCounts, columns: &[Outcome], y: f64, unit: f64) -> String {
    let mut x = LABEL_WIDTH;
    let mut segments = svg::label(LABEL_WIDTH - 8.0, y + BAR_ROW / 2.0, "end", mode.agent);
    let mut total = 0;
    for &outcome in columns {
        let count = mode.count(outcome);
        if count == 0 {
            continue;
        }
        let (label, width) = (format!("{}: {outcome}", mode.agent), count as f64 * unit);
        segments.push_str(&svg::bar(x, y + 4.0, width, BAR_ROW - 8.0, outcome_colour(outcome), count as f64, &label));
        if width >= 18.0 {
            segments.push_str(&svg::text(x + width / 2.0, y + BAR_ROW / 2.0, "middle", "count", &count.to_string()));
        }
        x += width;
        total += count;
    }
    segments.push_str(&svg::text(x + 6.0, y + BAR_ROW / 2.0, "start", "tick", &format!("{total} scored")));
    segments
}

/// One agent in the cost-vs-score scatter.
pub(super) struct ScatterPoint<'a> {
    pub agent: &'a str,
    /// Mean cost per trial, in USD.
    pub cost: f64,
    pub score: f64,
    pub colour: &'static str,
}

pub(super) fn cost(points: &[ScatterPoint]) -> String {
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
                svg::text(LEFT - 6.0, y, "end", "tick", &fmt_number(Some(score), 0))
            )
        })
        .collect();
    let x_ticks: String = (0..=4)
        .map(|i| {
            let x = x_step * f64::from(i);
            svg::text(to_x(x), TOP + HEIGHT + 16.0, "middle", "tick", &fmt_trimmed(x))
        })
        .collect();
    let marks: String = points.iter().map(|p| scatter_mark(p, to_x(p.cost), to_y(p.score))).collect();
    let (bottom, right, middle) = (TOP + HEIGHT, LEFT + WIDTH, TOP + HEIGHT / 2.0);
    let frame = format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>{}\
         <text x=\"14\" y=\"{middle}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {middle})\">score</text>",
        svg::text(LEFT + WIDTH / 2.0, bottom + 36.0, "middle", "", X_LABEL),
    );
    svg::chart("chart-cost", "Score against cost per agent", LEFT + WIDTH + 240.0, TOP + HEIGHT + 48.0, &[y_ticks, x_ticks, frame, marks].concat())
}

/// An agent's point at (`cx`, `cy`): a mark with its score as value and its cost as `data-x`.
fn scatter_mark(p: &ScatterPoint, cx: f64, cy: f64) -> String {
    format!(
        "<circle class=\"mark\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"6\" fill=\"{}\" data-value=\"{}\" data-x=\"{}\" data-label=\"{agent}\">\
         <title>{agent}: score {}, {} per trial</title></circle>{}",
        p.colour,
        p.score,
        p.cost,
        fmt_number(Some(p.score), 1),
        fmt_cost(Some(p.cost)),
        svg::label(cx + 9.0, cy, "start", p.agent),
        agent = escape(p.agent),
    )
}

/// Vertical grid lines and labels at 0, 25, .. 100 for a horizontal bar chart whose bars end at `bottom`.
fn score_axis(top: f64, bottom: f64) -> String {
    (0..=4)
        .map(|i| {
            let score = f64::from(i) * 25.0;
            let x = LABEL_WIDTH + scale_score(score);
            format!(
                "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>{}",
                svg::text(x, bottom + 16.0, "middle", "tick", &fmt_number(Some(score), 0))
            )
        })
        .collect()
}

/// A colour key: a swatch and a name per entry.
pub(super) fn legend<'a>(entries: impl Iterator<Item = (&'static str, &'a str)>) -> String {
    let entries: String =
        entries.map(|(colour, name)| format!("<span><span class=\"swatch\" style=\"background:{colour}\"></span>{}</span>", escape(name))).collect();
    format!("<div class=\"legend\">{entries}</div>\n")
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `raw` (1 for nothing).
pub(super) fn nice_step(raw: f64) -> f64 {
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
pub(super) fn score_colour(score: f64) -> String {
    format!("hsl({:.0}, 70%, 78%)", score.clamp(0.0, 100.0) * 1.2)
}

pub(super) fn agent_colour(agents: &[&str], agent: &str) -> &'static str {
    let index = agents.iter().position(|known| *known == agent).unwrap_or(0);
    AGENT_PALETTE[index % AGENT_PALETTE.len()]
}

fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "#2da44e",
        Outcome::Undecided => "#afb8c1",
        Outcome::Failed => "#cf222e",
        Outcome::AgentLimit => "#fb8f44",
        Outcome::AgentError => "#bc4c00",
        Outcome::VerifierError => "#8250df",
        Outcome::InfraError | Outcome::Interrupted => "#6e7781",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_colours() {
        assert_eq!(nice_step(0.825), 1.0);
        assert_eq!(nice_step(1.32), 2.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(score_colour(0.0), "hsl(0, 70%, 78%)");
        assert_eq!(score_colour(100.0), "hsl(120, 70%, 78%)");
    }
}
