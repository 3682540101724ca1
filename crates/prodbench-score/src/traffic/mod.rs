//! What a live trial's traffic left: a per-second timeline and a per-window summary, saved
//! with the trial and handed to the tests.
//!
//! The load generator (`prodbench-traffic`) produces it and re-exports these types; they live
//! here, with the other things tests read and a grade is made of, so that the report and the
//! store read a trial's traffic without an HTTP stack.
//!
//! The files ([`TrafficRecord::write_to`], read back by [`TrafficRecord::read_from`]) are the
//! contract with a task's tests, which find them under `/logs/traffic/`:
//!
//! - `summary.json`: an object keyed by window name, in run order, so that a test reads
//!   `summary["grading"]["p99_ms"]` and `summary["grading"]["error_rate"]`;
//! - `timeline.json`: one object per second of each window;
//! - `metrics.prom`: the summary in Prometheus text exposition format ([`prometheus()`]).
//!
//! Every count belongs to the second a request was *scheduled* in, not the second it
//! finished: a second's row is the fate of the requests due in it. So in every row and every
//! window `sent = completed + timeouts + connection_errors + unfinished`, and a stall shows
//! as high latency in the seconds it hit rather than as a gap in the timeline.
//!
//! Latency is from each request's scheduled send time to the end of its response, over the
//! requests that got a response or timed out (a timed-out request counts at the time it was
//! given up: a lower bound on what it would have taken). Connection errors are counted, not
//! timed: they fail fast and would flatter the percentiles.

mod prometheus;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use prometheus::prometheus;

/// `summary.json`: per-window summaries keyed by window name.
pub const SUMMARY_FILE: &str = "summary.json";
/// `timeline.json`: per-second rows of every window.
pub const TIMELINE_FILE: &str = "timeline.json";
/// `metrics.prom`: the summary in Prometheus text exposition format.
pub const METRICS_FILE: &str = "metrics.prom";

/// When requests go out. Open loop: the times depend on the seed and the rate only, never on
/// how fast the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "process", rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced, `1 / rate` apart, the first at the window's start.
    Constant { rate_per_sec: f64 },
    /// Exponential gaps with mean `1 / rate`: independent users.
    Poisson { rate_per_sec: f64 },
}

impl Arrival {
    pub fn rate_per_sec(&self) -> f64 {
        match *self {
            Arrival::Constant { rate_per_sec } | Arrival::Poisson { rate_per_sec } => rate_per_sec,
        }
    }
}

/// The record of one or more windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficRecord {
    #[serde(with = "by_window")]
    pub summary: Vec<WindowSummary>,
    pub timeline: Vec<SecondStats>,
}

/// Requests by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Handed to the client at (or, on a starved host, after) their scheduled time.
    pub sent: u64,
    /// Got a whole response, of any status.
    pub completed: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Any other status (1xx as final, or above 599).
    pub status_other: u64,
    /// No response within the request's timeout (from its scheduled time).
    pub timeouts: u64,
    /// Refused, reset or closed before a whole response.
    pub connection_errors: u64,
    /// Still in flight when the run was stopped.
    pub unfinished: u64,
}

impl Counts {
    /// Requests with a fate: a response, a timeout or a connection error.
    pub fn finished(&self) -> u64 {
        self.completed + self.timeouts + self.connection_errors
    }

    /// Failed requests: status 400 and above (and other non-2xx/3xx statuses), timeouts and
    /// connection errors.
    pub fn errors(&self) -> u64 {
        self.status_4xx + self.status_5xx + self.status_other + self.timeouts + self.connection_errors
    }

    /// `errors / finished`; `None` when nothing finished.
    pub fn error_rate(&self) -> Option<f64> {
        (self.finished() > 0).then(|| self.errors() as f64 / self.finished() as f64)
    }
}

/// Latency percentiles in milliseconds; `None` when no request was timed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

/// One second of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    pub window: String,
    /// From the window's start.
    pub second: u64,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(flatten)]
    pub latency: Latency,
}

/// One window, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    pub window: String,
    pub started_at_unix_ms: u64,
    /// As planned; a stopped window ran for less.
    pub duration_ms: u64,
    pub arrival: Arrival,
    /// Ended by a stop before its schedule did.
    pub stopped: bool,
    #[serde(flatten)]
    pub counts: Counts,
    pub error_rate: Option<f64>,
    #[serde(flatten)]
    pub latency: Latency,
    /// The first connection error's message, for the trial's reader.
    pub first_error: Option<String>,
}

impl TrafficRecord {
    /// Adds another run's windows after this one's.
    pub fn append(&mut self, other: TrafficRecord) {
        self.summary.extend(other.summary);
        self.timeline.extend(other.timeline);
    }

    pub fn window(&self, name: &str) -> Option<&WindowSummary> {
        self.summary.iter().find(|summary| summary.window == name)
    }

    /// Writes [`SUMMARY_FILE`], [`TIMELINE_FILE`] and [`METRICS_FILE`] into `dir` (created if
    /// missing).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut summary = Vec::new();
        by_window::serialize(&self.summary, &mut serde_json::Serializer::pretty(&mut summary))?;
        std::fs::write(dir.join(SUMMARY_FILE), summary)?;
        std::fs::write(dir.join(TIMELINE_FILE), serde_json::to_vec_pretty(&self.timeline)?)?;
        std::fs::write(dir.join(METRICS_FILE), prometheus(self))
    }

    /// Reads back what [`Self::write_to`] wrote into `dir`; `None` when `dir` has no
    /// [`SUMMARY_FILE`] (a trial without traffic). A file that does not parse is an error
    /// naming it.
    pub fn read_from(dir: &Path) -> std::io::Result<Option<TrafficRecord>> {
        let read = |name: &str| -> std::io::Result<Option<Vec<u8>>> {
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(std::io::Error::new(error.kind(), format!("{}: {error}", dir.join(name).display()))),
            }
        };
        let invalid =
            |name: &str, error: serde_json::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {error}", dir.join(name).display()));
        let Some(summary) = read(SUMMARY_FILE)? else { return Ok(None) };
        let summary = by_window::deserialize(&mut serde_json::Deserializer::from_slice(&summary)).map_err(|e| invalid(SUMMARY_FILE, e))?;
        let timeline = match read(TIMELINE_FILE)? {
            Some(timeline) => serde_json::from_slice(&timeline).map_err(|e| invalid(TIMELINE_FILE, e))?,
            None => Vec::new(),
        };
        Ok(Some(TrafficRecord { summary, timeline }))
    }
}

/// Window summaries as a JSON object keyed by window name, in run order.
mod by_window {
    use std::fmt;

    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::WindowSummary;

    pub(super) fn serialize<S: Serializer>(windows: &[WindowSummary], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(windows.iter().map(|window| (&window.window, window)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<WindowSummary>, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Vec<WindowSummary>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("window summaries keyed by window name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut windows = Vec::new();
                while let Some((_, window)) = map.next_entry::<String, WindowSummary>()? {
                    windows.push(window);
                }
                Ok(windows)
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> TrafficRecord {
        let counts = Counts { sent: 10, completed: 8, status_2xx: 6, status_5xx: 2, timeouts: 1, connection_errors: 1, ..Counts::default() };
        let latency = Latency { p50_ms: Some(1.5), p90_ms: Some(4.0), p99_ms: Some(301.0), max_ms: Some(302.0), mean_ms: Some(20.0) };
        let summary = |window: &str| WindowSummary {
            window: window.into(),
            started_at_unix_ms: 1_700_000_000_000,
            duration_ms: 1000,
            arrival: Arrival::Poisson { rate_per_sec: 10.0 },
            stopped: false,
            counts,
            error_rate: counts.error_rate(),
            latency,
            first_error: Some("connect to 127.0.0.1:9: refused".into()),
        };
        TrafficRecord {
            summary: vec![summary("warmup"), summary("grading \"b\"")],
            timeline: vec![SecondStats { window: "warmup".into(), second: 0, counts, latency }],
        }
    }

    #[test]
    fn counts_add_up_to_an_error_rate() {
        let counts = sample().summary[0].counts;
        assert_eq!((counts.finished(), counts.errors()), (10, 4));
        assert_eq!(counts.error_rate(), Some(0.4));
        assert_eq!(Counts::default().error_rate(), None);
    }

    #[test]
    fn the_summary_is_keyed_by_window_in_run_order_and_reads_back() {
        let record = sample();
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["summary"]["warmup"]["p99_ms"], 301.0);
        assert_eq!(json["summary"]["warmup"]["error_rate"], 0.4);
        assert_eq!(json["summary"]["warmup"]["arrival"]["process"], "poisson");
        assert_eq!(json["timeline"][0]["status_5xx"], 2);
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.find("\"warmup\":").unwrap() < text.find("\"grading \\\"b\\\"\":").unwrap());
        assert_eq!(serde_json::from_str::<TrafficRecord>(&text).unwrap(), record);
    }

    #[test]
    fn the_files_are_where_the_tests_look() {
        let dir = tempfile::tempdir().unwrap();
        sample().write_to(&dir.path().join("traffic")).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join("traffic").join(name)).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&read(SUMMARY_FILE)).unwrap();
        assert_eq!(summary["warmup"]["sent"], 10);
        let timeline: serde_json::Value = serde_json::from_str(&read(TIMELINE_FILE)).unwrap();
        assert_eq!(timeline[0]["second"], 0);
        assert!(read(METRICS_FILE).contains("prodbench_traffic_requests_total{window=\"warmup\",outcome=\"sent\"} 10\n"));
    }

    #[test]
    fn the_files_read_back_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TrafficRecord::read_from(dir.path()).unwrap(), None, "no traffic");
        sample().write_to(dir.path()).unwrap();
        assert_eq!(TrafficRecord::read_from(dir.path()).unwrap(), Some(sample()));
        std::fs::write(dir.path().join(TIMELINE_FILE), "[{").unwrap();
        let error = TrafficRecord::read_from(dir.path()).unwrap_err().to_string();
        assert!(error.contains(TIMELINE_FILE), "{error}");
    }
}
