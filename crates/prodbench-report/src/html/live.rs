//! A live trial's environment on its section of the page, as an SRE reads an incident:
//! throughput, errors by class and latency per second over the trial's time, with the traffic
//! windows shaded and the timeline's events (agent, faults, service exits and restarts)
//! marked across them; each window's summary; the event timeline; and links to the service
//! logs and the traffic files.

use std::path::Path;

use prodbench_score::traffic::{SecondStats, WindowSummary};
use prodbench_store::timeline::{Event, TrialEvent};

use super::format::{anchor_id, escape, fmt_number, fmt_percent, fmt_trimmed, percent_encode, relative_href};
use super::table;
use super::timeseries::{Band, Marker, MarkerKind, Series, TimeChart, time_chart};
use crate::live::LiveTrial;
use crate::report::ReportTrial;

/// The live environment's part of a trial's section; empty for a trial without one.
pub(super) fn render(trial: &ReportTrial, page_dir: Option<&Path>) -> String {
    let Some(live) = &trial.live else { return String::new() };
    let error =
        live.traffic_error.as_deref().map_or_else(String::new, |e| format!("<p class=\"note\">The traffic record could not be read: {}</p>\n", escape(e)));
    format!(
        "<div class=\"live\">\n<h4>Live environment</h4>\n{error}{}{}{}{}</div>\n",
        charts(trial, live),
        windows_table(live),
        events_table(live),
        files(trial, live, page_dir)
    )
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A series to draw: its name, colour, and its value in a second's row.
type SeriesSpec = (&'static str, &'static str, fn(&SecondStats) -> Option<f64>);

/// The three charts over the trial's time, sharing its windows and markers.
fn charts(trial: &ReportTrial, live: &LiveTrial) -> String {
    if live.windows.is_empty() {
        return String::new();
    }
    let bands: Vec<Band> =
        live.windows.iter().map(|w| Band { label: w.window.clone(), start: seconds(live.window_start_ms(w)), end: seconds(live.window_end_ms(w)) }).collect();
    let markers: Vec<Marker> = live.events.iter().filter_map(marker).collect();
    let span = bands.iter().map(|b| b.end).chain(markers.iter().map(|m| m.at)).fold(0.0, f64::max);
    let id = |chart: &str| anchor_id(chart, &trial.trial.trial_id);
    let chart = |chart_id: &str, title: &str, unit: &'static str, series: &[SeriesSpec]| {
        let series =
            live.windows.iter().flat_map(|window| series.iter().map(move |(name, colour, value)| per_second(live, window, name, colour, *value))).collect();
        time_chart(&TimeChart { id: id(chart_id), title: title.to_string(), unit, span, bands: &bands, markers: &markers, series })
    };
    [
        chart(
            "chart-throughput",
            "Throughput per second (by scheduled second)",
            "requests/s",
            &[("sent", "#4e79a7", |r| Some(r.counts.sent as f64)), ("completed", "#59a14f", |r| Some(r.counts.completed as f64))],
        ),
        chart(
            "chart-errors",
            "Errors per second by class",
            "errors/s",
            &[
                ("5xx", "#e15759", |r| Some(r.counts.status_5xx as f64)),
                ("4xx", "#f28e2b", |r| Some(r.counts.status_4xx as f64)),
                ("timeouts", "#b07aa1", |r| Some(r.counts.timeouts as f64)),
                ("connection errors", "#9c755f", |r| Some(r.counts.connection_errors as f64)),
            ],
        ),
        chart(
            "chart-latency",
            "Latency per second, from each request's scheduled send time",
            "ms",
            &[("p50", "#4e79a7", |r| r.latency.p50_ms), ("p99", "#e15759", |r| r.latency.p99_ms)],
        ),
    ]
    .concat()
}

/// One quantity over one window's seconds, placed where the window started.
fn per_second(live: &LiveTrial, window: &WindowSummary, name: &'static str, colour: &'static str, value: fn(&SecondStats) -> Option<f64>) -> Series {
    let mut values = Vec::new();
    for row in live.rows(&window.window) {
        let at = usize::try_from(row.second).unwrap_or(usize::MAX);
        if at >= values.len() {
            values.resize(at + 1, None);
        }
        values[at] = value(row);
    }
    let (start, end) = (seconds(live.window_start_ms(window)), seconds(live.window_end_ms(window)));
    Series { name, colour, window: window.window.clone(), start, end, values }
}

/// The events worth a line across the charts (windows are the bands; services coming up
/// are in the table).
fn marker(event: &TrialEvent) -> Option<Marker> {
    let (kind, label) = match &event.event {
        Event::AgentStarted => (MarkerKind::Agent, "agent start".to_string()),
        Event::AgentEnded => (MarkerKind::Agent, "agent end".to_string()),
        Event::FaultOn { .. } => (MarkerKind::Fault, "fault on".to_string()),
        Event::FaultOff { .. } => (MarkerKind::Fault, "fault off".to_string()),
        Event::ServiceExited { service, .. } => (MarkerKind::Service, format!("{service} exited")),
        Event::ServiceRestarting { service, .. } => (MarkerKind::Service, format!("{service} restart")),
        Event::ServiceStartFailed { service, .. } => (MarkerKind::Service, format!("{service} failed")),
        Event::ServiceNotReady { service, .. } => (MarkerKind::Service, format!("{service} not ready")),
        Event::ServiceStopped { service } => (MarkerKind::Service, format!("{service} stopped")),
        Event::ServicePaused { service } => (MarkerKind::Service, format!("{service} paused")),
        Event::ServiceResumed { service } => (MarkerKind::Service, format!("{service} resumed")),
        Event::SupervisorGone { .. } => (MarkerKind::Service, "supervisor gone".to_string()),
        Event::EnvironmentStarted
        | Event::ServicesSettled { .. }
        | Event::VerificationStarted
        | Event::ServiceStarted { .. }
        | Event::ServiceReady { .. }
        | Event::TrafficWindowStarted { .. }
        | Event::TrafficWindowEnded { .. } => return None,
    };
    let (name, detail) = describe(&event.event);
    Some(Marker { at: seconds(event.offset_ms), kind, event: name, label, detail })
}

/// An event's name in the timeline file and what it says.
fn describe(event: &Event) -> (&'static str, String) {
    let service_after = |service: &str, after_ms: u64| format!("{service} after {after_ms} ms");
    match event {
        Event::EnvironmentStarted => ("environment_started", String::new()),
        Event::ServicesSettled { not_ready } if not_ready.is_empty() => ("services_settled", "all ready".to_string()),
        Event::ServicesSettled { not_ready } => ("services_settled", format!("not ready: {}", not_ready.join(", "))),
        Event::AgentStarted => ("agent_started", String::new()),
        Event::AgentEnded => ("agent_ended", String::new()),
        Event::VerificationStarted => ("verification_started", String::new()),
        Event::ServiceStarted { service, pid } => ("service_started", format!("{service} (pid {pid})")),
        Event::ServiceReady { service, after_ms } => ("service_ready", service_after(service, *after_ms)),
        Event::ServiceNotReady { service, after_ms } => ("service_not_ready", service_after(service, *after_ms)),
        Event::ServiceStartFailed { service, message } => ("service_start_failed", format!("{service}: {message}")),
        Event::ServiceExited { service, code, signal } => {
            let how = match (code, signal) {
                (_, Some(signal)) => format!("signal {signal}"),
                (Some(code), None) => format!("code {code}"),
                (None, None) => "unknown status".to_string(),
            };
            ("service_exited", format!("{service}: {how}"))
        }
        Event::ServiceRestarting { service, by, delay_ms } => ("service_restarting", format!("{service} by {by}, in {delay_ms} ms")),
        Event::ServiceStopped { service } => ("service_stopped", service.clone()),
        Event::ServicePaused { service } => ("service_paused", service.clone()),
        Event::ServiceResumed { service } => ("service_resumed", service.clone()),
        Event::SupervisorGone { reason } => ("supervisor_gone", reason.clone()),
        Event::TrafficWindowStarted { window } => ("traffic_window_started", window.clone()),
        Event::TrafficWindowEnded { window } => ("traffic_window_ended", window.clone()),
        Event::FaultOn { fault } => ("fault_on", fault.clone()),
        Event::FaultOff { fault } => ("fault_off", fault.clone()),
    }
}

/// Each window's figures, as the tests read them from `summary.json`.
fn windows_table(live: &LiveTrial) -> String {
    if live.windows.is_empty() {
        return String::new();
    }
    let head = "<tr><th>Window</th><th class=\"num\">Start (s)</th><th class=\"num\">Ran (s)</th><th class=\"num\">Sent</th><th class=\"num\">Completed</th>\
                <th class=\"num\">5xx</th><th class=\"num\">4xx</th><th class=\"num\">Timeouts</th><th class=\"num\">Conn. errors</th>\
                <th class=\"num\">Unfinished</th><th class=\"num\">Error rate</th><th class=\"num\">p50 ms</th><th class=\"num\">p90 ms</th>\
                <th class=\"num\">p99 ms</th><th class=\"num\">max ms</th></tr>";
    let body: String = live.windows.iter().map(|window| window_row(live, window)).collect();
    let first_errors: String =
        live.windows.iter().filter_map(|w| Some(format!("<li>{}: <code>{}</code></li>", escape(&w.window), escape(w.first_error.as_deref()?)))).collect();
    let first_errors =
        if first_errors.is_empty() { String::new() } else { format!("<p class=\"muted\">First connection error per window:</p><ul>{first_errors}</ul>\n") };
    ["<h5>Traffic windows</h5>\n", &table("traffic-windows", head, &body), &first_errors].concat()
}

fn window_row(live: &LiveTrial, window: &WindowSummary) -> String {
    let (start, end) = (live.window_start_ms(window), live.window_end_ms(window));
    let stopped = if window.stopped { " <span class=\"flag\">stopped</span>" } else { "" };
    let c = &window.counts;
    let counts: String = [c.sent, c.completed, c.status_5xx, c.status_4xx, c.timeouts, c.connection_errors, c.unfinished]
        .iter()
        .map(|n| format!("<td class=\"num\">{n}</td>"))
        .collect();
    let l = &window.latency;
    let latency: String = [l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms].iter().map(|ms| format!("<td class=\"num\">{}</td>", fmt_number(*ms, 1))).collect();
    format!(
        "<tr data-window=\"{name}\"><td>{name}{stopped}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{counts}<td class=\"num\">{}</td>{latency}</tr>\n",
        fmt_number(Some(seconds(start)), 1),
        fmt_number(Some(seconds(end.saturating_sub(start))), 1),
        fmt_percent(window.error_rate),
        name = escape(&window.window),
    )
}

fn events_table(live: &LiveTrial) -> String {
    if live.events.is_empty() {
        return String::new();
    }
    let body: String = live
        .events
        .iter()
        .map(|event| {
            let (name, detail) = describe(&event.event);
            format!("<tr><td class=\"num\">+{}</td><td><code>{name}</code></td><td>{}</td></tr>\n", fmt_trimmed(seconds(event.offset_ms)), escape(&detail))
        })
        .collect();
    let table = table("events", "<tr><th class=\"num\">Offset (s)</th><th>Event</th><th>Detail</th></tr>", &body);
    format!("<details class=\"output\" open><summary>Event timeline ({} events)</summary>{table}</details>\n", live.events.len())
}

/// Links to the service logs and the environment's files, relative to the page; their paths
/// when the page's place is unknown.
fn files(trial: &ReportTrial, live: &LiveTrial, page_dir: Option<&Path>) -> String {
    let logs = trial.service_logs.iter().map(|service| (format!("{service} log"), format!("{}/{service}.log", prodbench_score::evidence::SERVICES_DIR)));
    let others = live.files.iter().map(|file| (file.clone(), file.clone()));
    let base = page_dir.and_then(|from| relative_href(from, Path::new(&trial.path)));
    let links: Vec<String> = logs
        .chain(others)
        .map(|(text, file)| match &base {
            Some(base) => {
                let href: Vec<String> = file.split('/').map(percent_encode).collect();
                format!("<a href=\"{base}{}\">{}</a>", href.join("/"), escape(&text))
            }
            None => format!("{} <code class=\"path\">{}</code>", escape(&text), escape(&Path::new(&trial.path).join(&file).to_string_lossy())),
        })
        .collect();
    if links.is_empty() {
        return String::new();
    }
    format!("<p class=\"files\">Files: {}</p>\n", links.join(" · "))
}
