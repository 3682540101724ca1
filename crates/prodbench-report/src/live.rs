//! A live trial's environment as the report shows it: what its traffic measured, its event
//! timeline, and which of its files there are to link (service logs, the traffic record, the
//! fault proxies' counts).
//!
//! Everything is read typed, with the types the run wrote it with
//! ([`prodbench_score::traffic::TrafficRecord`], [`prodbench_store::timeline::TrialEvent`]),
//! so a changed record is a compile error here, not an empty chart.

use std::path::Path;

use prodbench_score::evidence::{FAULTS_FILE, TRAFFIC_DIR};
use prodbench_score::traffic::{METRICS_FILE, SUMMARY_FILE, SecondStats, TIMELINE_FILE, TrafficRecord, WindowSummary};
use prodbench_store::timeline::{EVENTS_FILE, Event, TrialEvent, read_events};
use serde::Serialize;

/// A trial's live environment, as far as its directory records it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveTrial {
    /// Each traffic window's summary, in run order (empty without traffic).
    pub windows: Vec<WindowSummary>,
    /// Each window's per-second rows: drawn on the page, left out of `--json` (the trial's
    /// `traffic/timeline.json` has them).
    #[serde(skip)]
    pub seconds: Vec<SecondStats>,
    /// Why the traffic record could not be read, when it could not.
    pub traffic_error: Option<String>,
    /// The event timeline (`events.jsonl`), in order.
    pub events: Vec<TrialEvent>,
    /// The files of the live environment present in the trial directory, relative to it:
    /// the traffic record's, the fault proxies' counts, the event timeline.
    pub files: Vec<String>,
}

impl LiveTrial {
    /// The live environment of the trial in `trial_dir`; `None` for a trial that had none
    /// (no event timeline, no traffic).
    pub fn read(trial_dir: &Path) -> Option<LiveTrial> {
        let events = read_events(trial_dir);
        let (record, traffic_error) = match TrafficRecord::read_from(&trial_dir.join(TRAFFIC_DIR)) {
            Ok(record) => (record.unwrap_or_default(), None),
            Err(error) => (TrafficRecord::default(), Some(error.to_string())),
        };
        if events.is_empty() && record.summary.is_empty() && traffic_error.is_none() {
            return None;
        }
        let traffic_files = [SUMMARY_FILE, TIMELINE_FILE, METRICS_FILE].map(|name| format!("{TRAFFIC_DIR}/{name}"));
        let candidates = traffic_files.into_iter().chain([FAULTS_FILE.to_string(), EVENTS_FILE.to_string()]);
        let files = candidates.filter(|file| trial_dir.join(file).is_file()).collect();
        Some(LiveTrial { windows: record.summary, seconds: record.timeline, traffic_error, events, files })
    }

    /// When `window` started, in milliseconds since the timeline's start: its
    /// `traffic_window_started` event, else its start time against the first window's.
    pub fn window_start_ms(&self, window: &WindowSummary) -> u64 {
        let started = |name: &str| {
            self.events.iter().find_map(|e| match &e.event {
                Event::TrafficWindowStarted { window } if window == name => Some(e.offset_ms),
                _ => None,
            })
        };
        if let Some(offset) = started(&window.window) {
            return offset;
        }
        let Some(first) = self.windows.first() else { return 0 };
        let first_offset = started(&first.window).unwrap_or(0);
        first_offset + window.started_at_unix_ms.saturating_sub(first.started_at_unix_ms)
    }

    /// When `window` ended, in milliseconds since the timeline's start: its
    /// `traffic_window_ended` event, else after its rows (or, when it ran its course, its
    /// planned duration).
    pub fn window_end_ms(&self, window: &WindowSummary) -> u64 {
        let ended = self.events.iter().find_map(|e| match &e.event {
            Event::TrafficWindowEnded { window: name } if *name == window.window => Some(e.offset_ms),
            _ => None,
        });
        let start = self.window_start_ms(window);
        let rows = self.rows(&window.window).count() as u64 * 1000;
        ended.unwrap_or(start + if window.stopped { rows } else { window.duration_ms.max(rows) })
    }

    /// `window`'s per-second rows, in order.
    pub fn rows<'a>(&'a self, window: &'a str) -> impl Iterator<Item = &'a SecondStats> + 'a {
        self.seconds.iter().filter(move |row| row.window == window)
    }
}
