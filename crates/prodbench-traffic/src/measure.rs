//! Measurement: each request's fate into counts and an HdrHistogram, for its window and for
//! the second it was scheduled in.
//!
//! HdrHistogram keeps percentiles to three significant digits in fixed memory whatever the
//! count, so a p99 is a p99 and not an average of averages. A second's histogram lives only
//! until every request due in it has a fate (at most the longest timeout after the second
//! ends); then it becomes a row and is dropped, so memory follows the timeouts, not the
//! window's length.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::plan::CheckedWindow;
use prodbench_score::traffic::{Counts, Latency, SecondStats, TrafficRecord, WindowSummary};

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Status(u16),
    Timeout,
    ConnectionError(String),
}

/// One request's fate, with the second it was scheduled in and its latency from then.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Done {
    pub(crate) second: u64,
    pub(crate) latency: Duration,
    pub(crate) outcome: Outcome,
}

struct Tally {
    counts: Counts,
    histogram: Histogram<u64>,
}

impl Tally {
    fn new(highest_micros: u64) -> Tally {
        let histogram = Histogram::new_with_bounds(1, highest_micros.max(2), 3).expect("bounds 1..=highest (>= 2) at 3 significant digits are valid");
        Tally { counts: Counts::default(), histogram }
    }

    fn finish(&mut self, done: &Done) {
        let counts = &mut self.counts;
        match done.outcome {
            Outcome::Status(code) => {
                counts.completed += 1;
                *match code / 100 {
                    2 => &mut counts.status_2xx,
                    3 => &mut counts.status_3xx,
                    4 => &mut counts.status_4xx,
                    5 => &mut counts.status_5xx,
                    _ => &mut counts.status_other,
                } += 1;
            }
            Outcome::Timeout => counts.timeouts += 1,
            Outcome::ConnectionError(_) => {
                counts.connection_errors += 1;
                return;
            }
        }
        self.histogram.saturating_record(micros(done.latency));
    }

    fn is_settled(&self) -> bool {
        self.counts.finished() == self.counts.sent
    }

    fn close(mut self) -> (Counts, Latency) {
        self.counts.unfinished = self.counts.sent - self.counts.finished();
        (self.counts, latency(&self.histogram))
    }

    /// The figures so far, while requests may still be in flight (they are in `sent` only,
    /// never `unfinished`, so that every count only grows).
    fn so_far(&self) -> (Counts, Latency) {
        (self.counts, latency(&self.histogram))
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn latency(histogram: &Histogram<u64>) -> Latency {
    if histogram.is_empty() {
        return Latency::default();
    }
    let at = |quantile: f64| Some(histogram.value_at_quantile(quantile) as f64 / 1000.0);
    Latency { p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), max_ms: at(1.0), mean_ms: Some(histogram.mean().round() / 1000.0) }
}

/// The measurements of one window while it runs.
pub(crate) struct WindowTally {
    highest_micros: u64,
    window: Tally,
    open: BTreeMap<u64, Tally>,
    closed: BTreeMap<u64, (Counts, Latency)>,
    /// Seconds before this one will be sent nothing more.
    sending_second: u64,
    first_error: Option<String>,
}

impl WindowTally {
    /// `longest` bounds the latencies to expect (larger ones are recorded as this).
    pub(crate) fn new(longest: Duration) -> WindowTally {
        let highest_micros = micros(longest);
        WindowTally { highest_micros, window: Tally::new(highest_micros), open: BTreeMap::new(), closed: BTreeMap::new(), sending_second: 0, first_error: None }
    }

    pub(crate) fn sent(&mut self, second: u64) {
        if second > self.sending_second {
            self.sending_second = second;
            self.close_settled();
        }
        self.window.counts.sent += 1;
        let highest = self.highest_micros;
        self.open.entry(second).or_insert_with(|| Tally::new(highest)).counts.sent += 1;
    }

    /// The schedule is done (or stopped): every second may close once settled.
    pub(crate) fn all_sent(&mut self) {
        self.sending_second = u64::MAX;
        self.close_settled();
    }

    pub(crate) fn finish(&mut self, done: Done) {
        self.window.finish(&done);
        if let Some(second) = self.open.get_mut(&done.second) {
            second.finish(&done);
        }
        if let Outcome::ConnectionError(error) = done.outcome {
            self.first_error.get_or_insert(error);
        }
        self.close_settled();
    }

    fn close_settled(&mut self) {
        let settled: Vec<u64> =
            self.open.iter().filter(|(second, tally)| **second < self.sending_second && tally.is_settled()).map(|(second, _)| *second).collect();
        for second in settled {
            if let Some(tally) = self.open.remove(&second) {
                self.closed.insert(second, tally.close());
            }
        }
    }

    /// The window so far, while it runs: its summary up to now and a row for each second
    /// whose requests all have a fate.
    pub(crate) fn snapshot(&self, window: &CheckedWindow, started_at: SystemTime) -> TrafficRecord {
        let timeline = self
            .closed
            .iter()
            .map(|(second, (counts, latency))| SecondStats { window: window.name.clone(), second: *second, counts: *counts, latency: *latency })
            .collect();
        TrafficRecord { summary: vec![summary(window, started_at, self.window.so_far(), false, self.first_error.clone())], timeline }
    }

    /// The window's record: a row for each of its first `seconds` seconds (and any later one
    /// that saw a send), and its summary.
    pub(crate) fn into_record(mut self, window: &CheckedWindow, started_at: SystemTime, seconds: u64, stopped: bool) -> TrafficRecord {
        let last = self.open.keys().chain(self.closed.keys()).max().map_or(0, |second| second + 1);
        let timeline = (0..seconds.max(last))
            .map(|second| {
                let (counts, latency) = self.closed.remove(&second).or_else(|| self.open.remove(&second).map(Tally::close)).unwrap_or_default();
                SecondStats { window: window.name.clone(), second, counts, latency }
            })
            .collect();
        let summary = summary(window, started_at, self.window.close(), stopped, self.first_error);
        TrafficRecord { summary: vec![summary], timeline }
    }
}

fn summary(window: &CheckedWindow, started_at: SystemTime, (counts, latency): (Counts, Latency), stopped: bool, first_error: Option<String>) -> WindowSummary {
    WindowSummary {
        window: window.name.clone(),
        started_at_unix_ms: started_at.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64),
        duration_ms: window.duration.as_millis() as u64,
        arrival: window.arrival,
        stopped,
        counts,
        error_rate: counts.error_rate(),
        latency,
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{plan, window};
    use crate::plan::{Arrival, check};

    fn done(second: u64, millis: u64, outcome: Outcome) -> Done {
        Done { second, latency: Duration::from_millis(millis), outcome }
    }

    /// Within HdrHistogram's precision at 3 significant digits (it reports the top of a value's
    /// bucket).
    fn close(value: Option<f64>, expected: f64) -> bool {
        value.is_some_and(|value| (value - expected).abs() <= expected * 0.001)
    }

    #[test]
    fn outcomes_land_in_their_scheduled_second_and_the_window() {
        let mut tally = WindowTally::new(Duration::from_secs(2));
        for second in [0, 0, 0, 2, 2] {
            tally.sent(second);
        }
        tally.finish(done(0, 10, Outcome::Status(200)));
        tally.finish(done(0, 20, Outcome::Status(503)));
        tally.finish(done(2, 1000, Outcome::Timeout));
        tally.finish(done(0, 1, Outcome::ConnectionError("refused".into())));
        tally.finish(done(2, 3, Outcome::ConnectionError("reset".into())));
        tally.all_sent();
        let plan = check(&plan(Arrival::Constant { rate_per_sec: 1.0 }, vec![window("agent", 3)])).unwrap();
        let record = tally.into_record(&plan.windows[0], SystemTime::now(), 3, false);

        let rows: Vec<(u64, u64, u64, u64)> =
            record.timeline.iter().map(|row| (row.second, row.counts.sent, row.counts.finished(), row.counts.connection_errors)).collect();
        assert_eq!(rows, [(0, 3, 3, 1), (1, 0, 0, 0), (2, 2, 2, 1)]);
        assert!(close(record.timeline[0].latency.max_ms, 20.0), "{:?}", record.timeline[0].latency);
        assert_eq!(record.timeline[1].latency, Latency::default());
        // The timeout is timed (at 1 s); the connection errors are not.
        assert!(close(record.timeline[2].latency.p50_ms, 1000.0), "{:?}", record.timeline[2].latency);

        let summary = &record.summary[0];
        assert_eq!((summary.counts.sent, summary.counts.status_2xx, summary.counts.status_5xx, summary.counts.timeouts), (5, 1, 1, 1));
        assert_eq!(summary.error_rate, Some(0.8));
        assert_eq!(summary.first_error.as_deref(), Some("refused"));
        assert!(close(summary.latency.max_ms, 1000.0), "{:?}", summary.latency);
    }

    #[test]
    fn requests_without_a_fate_are_unfinished() {
        let mut tally = WindowTally::new(Duration::from_secs(1));
        tally.sent(0);
        tally.sent(0);
        tally.finish(done(0, 5, Outcome::Status(200)));
        tally.all_sent();
        let plan = check(&plan(Arrival::Constant { rate_per_sec: 1.0 }, vec![window("agent", 60)])).unwrap();
        let record = tally.into_record(&plan.windows[0], SystemTime::now(), 1, true);
        assert_eq!(record.timeline.len(), 1);
        assert_eq!(record.timeline[0].counts.unfinished, 1);
        assert_eq!(record.summary[0].counts.unfinished, 1);
        assert!(record.summary[0].stopped);
    }

    #[test]
    fn percentiles_keep_three_significant_digits() {
        let mut tally = WindowTally::new(Duration::from_secs(10));
        for millis in 1..=1000 {
            tally.sent(0);
            tally.finish(done(0, millis, Outcome::Status(200)));
        }
        tally.all_sent();
        let plan = check(&plan(Arrival::Constant { rate_per_sec: 1.0 }, vec![window("agent", 1)])).unwrap();
        let latency = tally.into_record(&plan.windows[0], SystemTime::now(), 1, false).summary[0].latency;
        assert!(close(latency.p50_ms, 500.0) && close(latency.p90_ms, 900.0) && close(latency.p99_ms, 990.0), "{latency:?}");
        assert!(close(latency.max_ms, 1000.0) && close(latency.mean_ms, 500.5), "{latency:?}");
    }
}
