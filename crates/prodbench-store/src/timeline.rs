//! A trial's event timeline: one file, `events.jsonl` in the trial directory, one JSON
//! object a line, in the order things happened.
//!
//! Everything that changes a live environment lands here with the host's clock: the
//! environment and its services coming up, the agent's start and end, every service start,
//! exit, crash and restart, traffic windows, faults switching on and off. The report draws
//! it; later metrics, alerts and deployments read it. It is written by the harness on the
//! host only, never from a file inside a sandbox, so nothing the agent runs can edit it.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The timeline's file in a trial directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialEvent {
    /// RFC 3339, UTC.
    pub at: String,
    /// Milliseconds since the timeline began (the trial's environment start).
    pub offset_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    EnvironmentStarted,
    /// Every service became ready or was given up on; `not_ready` names the latter.
    ServicesSettled {
        not_ready: Vec<String>,
    },
    AgentStarted,
    AgentEnded,
    VerificationStarted,
    ServiceStarted {
        service: String,
        pid: u32,
    },
    ServiceReady {
        service: String,
        after_ms: u64,
    },
    ServiceNotReady {
        service: String,
        after_ms: u64,
    },
    ServiceStartFailed {
        service: String,
        message: String,
    },
    ServiceExited {
        service: String,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// `by` is `policy` (its restart policy) or `operator` (`svc`, the agent).
    ServiceRestarting {
        service: String,
        by: String,
        delay_ms: u64,
    },
    ServiceStopped {
        service: String,
    },
    ServicePaused {
        service: String,
    },
    ServiceResumed {
        service: String,
    },
    /// The agent's processes could not be told from the services when verification came
    /// (the agent killed the supervisor, or its processes outlived the reaper): everything
    /// in the sandbox was killed.
    SupervisorGone {
        reason: String,
    },
    TrafficWindowStarted {
        window: String,
    },
    TrafficWindowEnded {
        window: String,
    },
    FaultOn {
        fault: String,
    },
    FaultOff {
        fault: String,
    },
}

/// The timeline being written; shared by the tasks of one trial.
pub struct Timeline {
    start: Instant,
    file: Mutex<Option<std::fs::File>>,
}

impl Timeline {
    /// Starts the timeline of the trial in `dir` (the file is created on the first event).
    pub fn create(dir: &Path) -> std::io::Result<Timeline> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(EVENTS_FILE))?;
        Ok(Timeline { start: Instant::now(), file: Mutex::new(Some(file)) })
    }

    /// Appends `event`, stamped now. A failed write loses the event, never the trial.
    pub fn record(&self, event: Event) {
        let line = TrialEvent { at: crate::now(), offset_ms: self.start.elapsed().as_millis() as u64, event };
        let json = serde_json::to_string(&line).expect("event serializes");
        if let Some(file) = self.file.lock().expect("timeline lock").as_mut() {
            let _ = writeln!(file, "{json}");
        }
    }
}

/// Reads a trial's timeline; empty when it has none. Lines that do not parse are skipped.
pub fn read_events(trial_dir: &Path) -> Vec<TrialEvent> {
    let Ok(text) = std::fs::read_to_string(trial_dir.join(EVENTS_FILE)) else { return Vec::new() };
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_order_with_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let timeline = Timeline::create(dir.path()).unwrap();
        timeline.record(Event::EnvironmentStarted);
        timeline.record(Event::ServiceExited { service: "api".into(), code: None, signal: Some(9) });
        let events = read_events(dir.path());
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].event, Event::ServiceExited { service: "api".into(), code: None, signal: Some(9) });
        assert!(events[0].offset_ms <= events[1].offset_ms);
        let line = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert!(line.contains(r#""event":"service_exited""#), "{line}");
    }
}
