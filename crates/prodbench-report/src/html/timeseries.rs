//! Charts over a live trial's time: x is seconds since the trial's timeline began, so every
//! chart of a trial shares one axis with its event timeline. Traffic windows are shaded
//! bands, the timeline's events (agent start and end, faults on and off, service exits and
//! restarts) are vertical markers drawn across the plot, and each series is a line per
//! window: "the fault began here and p99 jumped" is read straight off the picture.
//!
//! A trial can run for many minutes, so a series is not one mark per second (thousands of
//! elements per trial); each (series, window) pair is one `<g class="series">` carrying its
//! values in order (`data-values`, `-` for a second without one) and the offset of its first
//! second (`data-start`), and each marker a `<g class="event">` with its offset and event.
//! Tests read those; the exact figures are also in the window table beside the charts.

use std::fmt::Write;

use super::charts::{legend, nice_step};
use super::format::{escape, fmt_trimmed};
use super::svg;

const LEFT: f64 = 60.0;
const PLOT_WIDTH: f64 = 720.0;
const PLOT_HEIGHT: f64 = 150.0;
const RIGHT: f64 = 16.0;
/// Rows of marker labels above the plot (close markers take the next row; a marker with no
/// room left keeps its line and tooltip, without a label).
const LABEL_ROWS: usize = 4;
const LABEL_ROW: f64 = 13.0;
/// Room under the plot for the x axis's ticks and title.
const BOTTOM: f64 = 34.0;
/// Width of one character of a marker label, to keep labels from overlapping.
const CHAR_WIDTH: f64 = 6.2;

/// A traffic window's stretch of the x axis, in seconds.
pub(super) struct Band {
    pub label: String,
    pub start: f64,
    pub end: f64,
}

/// What a marker marks, which decides its colour.
#[derive(Clone, Copy)]
pub(super) enum MarkerKind {
    Agent,
    Fault,
    Service,
}

/// An event of the timeline, at `at` seconds.
pub(super) struct Marker {
    pub at: f64,
    pub kind: MarkerKind,
    /// The timeline's name for the event (`fault_on`).
    pub event: &'static str,
    /// Short, above the plot: "fault on".
    pub label: String,
    /// In the tooltip: what, exactly.
    pub detail: String,
}

/// One quantity over one window: `values[i]` belongs to the second starting `start + i`
/// (a window stopped early ends at `end`, in its last second).
pub(super) struct Series {
    pub name: &'static str,
    pub colour: &'static str,
    pub window: String,
    pub start: f64,
    pub end: f64,
    pub values: Vec<Option<f64>>,
}

/// A chart over the trial's time.
pub(super) struct TimeChart<'a> {
    pub id: String,
    pub title: String,
    /// The y axis's title ("requests/s").
    pub unit: &'static str,
    /// Seconds the x axis spans.
    pub span: f64,
    pub bands: &'a [Band],
    pub markers: &'a [Marker],
    pub series: Vec<Series>,
}

struct Scale {
    x_max: f64,
    y_max: f64,
    top: f64,
}

impl Scale {
    fn x(&self, seconds: f64) -> f64 {
        LEFT + seconds.clamp(0.0, self.x_max) / self.x_max * PLOT_WIDTH
    }

    fn y(&self, value: f64) -> f64 {
        self.top + PLOT_HEIGHT - value.clamp(0.0, self.y_max) / self.y_max * PLOT_HEIGHT
    }

    fn bottom(&self) -> f64 {
        self.top + PLOT_HEIGHT
    }
}

/// The chart with a legend of its series above it.
pub(super) fn time_chart(chart: &TimeChart) -> String {
    let largest = chart.series.iter().flat_map(|s| s.values.iter().flatten()).copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let y_step = nice_step(largest * 1.1 / 4.0);
    let x_step = nice_step(chart.span.max(1.0) / 8.0);
    let scale = Scale { x_max: (chart.span.max(1.0) / x_step).ceil() * x_step, y_max: y_step * 4.0, top: LABEL_ROWS as f64 * LABEL_ROW + 6.0 };
    let content =
        [bands(chart.bands, &scale), y_axis(&scale, y_step, chart.unit), x_axis(&scale, x_step), markers(chart.markers, &scale), lines(&chart.series, &scale)];
    let height = scale.bottom() + BOTTOM;
    let mut names: Vec<(&'static str, &str)> = Vec::new();
    for series in &chart.series {
        if !names.iter().any(|(_, name)| *name == series.name) {
            names.push((series.colour, series.name));
        }
    }
    let svg = svg::chart(&chart.id, &chart.title, LEFT + PLOT_WIDTH + RIGHT, height, &content.concat());
    format!("<h5>{}</h5>{}{svg}", escape(&chart.title), legend(names.into_iter()))
}

fn bands(bands: &[Band], scale: &Scale) -> String {
    let mut out = String::new();
    for (index, band) in bands.iter().enumerate() {
        let (x1, x2) = (scale.x(band.start), scale.x(band.end));
        let fill = if index % 2 == 0 { "#eef2f6" } else { "#f6f8fa" };
        let fits = x2 - x1 > band.label.chars().count() as f64 * CHAR_WIDTH + 6.0;
        let label = if fits { svg::text(x1 + 3.0, scale.top + 8.0, "start", "tick", &band.label) } else { String::new() };
        let _ = write!(
            out,
            "<rect class=\"band\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{PLOT_HEIGHT}\" fill=\"{fill}\" stroke=\"#d0d7de\" data-window=\"{}\" \
             data-start=\"{}\" data-end=\"{}\"><title>{} window: {} s to {} s</title></rect>{label}",
            scale.top,
            (x2 - x1).max(1.0),
            escape(&band.label),
            band.start,
            band.end,
            escape(&band.label),
            fmt_trimmed(band.start),
            fmt_trimmed(band.end),
        );
    }
    out
}

fn y_axis(scale: &Scale, step: f64, unit: &str) -> String {
    let mut out = String::new();
    for i in 0..=4 {
        let value = step * f64::from(i);
        let y = scale.y(value);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>{}",
            LEFT + PLOT_WIDTH,
            svg::text(LEFT - 6.0, y, "end", "tick", &fmt_trimmed(value))
        );
    }
    let middle = scale.top + PLOT_HEIGHT / 2.0;
    let _ = write!(out, "<text x=\"12\" y=\"{middle:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {middle:.1})\">{}</text>", escape(unit));
    out
}

fn x_axis(scale: &Scale, step: f64) -> String {
    let bottom = scale.bottom();
    let mut out = format!("<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\"/>", LEFT + PLOT_WIDTH);
    let ticks = (scale.x_max / step).round() as u32;
    for i in 0..=ticks {
        let seconds = step * f64::from(i);
        out.push_str(&svg::text(scale.x(seconds), bottom + 12.0, "middle", "tick", &fmt_trimmed(seconds)));
    }
    out.push_str(&svg::text(LEFT + PLOT_WIDTH / 2.0, bottom + 26.0, "middle", "tick", "seconds since the trial's environment started"));
    out
}

fn markers(markers: &[Marker], scale: &Scale) -> String {
    let mut row_ends = [f64::NEG_INFINITY; LABEL_ROWS];
    let mut out = String::new();
    for marker in markers {
        let x = scale.x(marker.at);
        let colour = match marker.kind {
            MarkerKind::Agent => "#0969da",
            MarkerKind::Fault => "#cf222e",
            MarkerKind::Service => "#8250df",
        };
        let tooltip = format!("+{} s {}: {}", fmt_trimmed(marker.at), marker.event, marker.detail);
        // The first row whose last label ends before this one starts.
        let row = row_ends.iter().position(|end| *end < x - 2.0);
        let (line_top, label) = match row {
            Some(row) => {
                row_ends[row] = x + marker.label.chars().count() as f64 * CHAR_WIDTH;
                let label_y = (row as f64 + 0.5) * LABEL_ROW;
                (label_y + 3.0, format!("<text x=\"{x:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>", label_y + 4.0, escape(&marker.label)))
            }
            None => (scale.top, String::new()),
        };
        let _ = write!(
            out,
            "<g class=\"event\" data-offset=\"{}\" data-event=\"{}\"><title>{}</title>\
             <line x1=\"{x:.1}\" y1=\"{line_top:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>{label}</g>",
            marker.at,
            marker.event,
            escape(&tooltip),
            scale.bottom(),
        );
    }
    out
}

fn lines(series: &[Series], scale: &Scale) -> String {
    let mut out = String::new();
    for s in series {
        let values: Vec<String> = s.values.iter().map(|v| v.filter(|v| v.is_finite()).map_or_else(|| "-".to_string(), |v| v.to_string())).collect();
        let _ = write!(
            out,
            "<g class=\"series\" data-series=\"{}\" data-window=\"{}\" data-start=\"{}\" data-values=\"{}\"><title>{}, {} window</title>",
            s.name,
            escape(&s.window),
            s.start,
            values.join(" "),
            s.name,
            escape(&s.window)
        );
        for run in runs(s) {
            let points: Vec<(f64, f64)> = run.iter().map(|(second, value)| (scale.x(*second), scale.y(*value))).collect();
            match points.as_slice() {
                [(x, y)] => {
                    let _ = write!(out, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"{}\"/>", s.colour);
                }
                _ => {
                    let coordinates: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                    let _ = write!(out, "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>", s.colour, coordinates.join(" "));
                }
            }
        }
        out.push_str("</g>");
    }
    out
}

/// The series' stretches of consecutive seconds with a value, as (x in seconds at the middle
/// of each second, or of the part of it the window ran, value).
fn runs(series: &Series) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for (index, value) in series.values.iter().enumerate() {
        let from = series.start + index as f64;
        let middle = from + (series.end - from).clamp(0.0, 1.0) / 2.0;
        match value.filter(|v| v.is_finite()) {
            Some(value) => runs.last_mut().expect("never empty").push((middle, value)),
            None if runs.last().is_some_and(|run| !run.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    runs.retain(|run| !run.is_empty());
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_splits_a_line_and_a_lone_second_is_a_dot() {
        let values = vec![Some(1.0), Some(2.0), None, Some(3.0), None, Some(4.0)];
        let series = Series { name: "p99", colour: "#000", window: "grading".into(), start: 10.0, end: 15.5, values };
        // The last second ran for half a second: its point is in the middle of that half.
        assert_eq!(runs(&series), vec![vec![(10.5, 1.0), (11.5, 2.0)], vec![(13.5, 3.0)], vec![(15.25, 4.0)]]);
        let scale = Scale { x_max: 20.0, y_max: 4.0, top: 0.0 };
        let drawn = lines(&[series], &scale);
        assert!(drawn.starts_with("<g class=\"series\" data-series=\"p99\" data-window=\"grading\" data-start=\"10\" data-values=\"1 2 - 3 - 4\">"), "{drawn}");
        assert_eq!((drawn.matches("<polyline").count(), drawn.matches("<circle").count()), (1, 2), "{drawn}");
    }

    #[test]
    fn close_markers_take_separate_label_rows_until_none_is_left() {
        let marker = |at: f64| Marker { at, kind: MarkerKind::Fault, event: "fault_on", label: "fault on".into(), detail: "latency".into() };
        let scale = Scale { x_max: 100.0, y_max: 1.0, top: 58.0 };
        let drawn = markers(&[10.0, 10.5, 11.0, 11.5, 12.0, 60.0].map(marker), &scale);
        let label_ys: Vec<&str> = drawn.split("<text x=").skip(1).map(|text| text.split("y=\"").nth(1).and_then(|y| y.split('"').next()).unwrap()).collect();
        assert_eq!(label_ys, ["10.5", "23.5", "36.5", "49.5", "10.5"], "{drawn}");
        assert_eq!(drawn.matches("<g class=\"event\"").count(), 6, "every marker keeps its line");
    }
}
