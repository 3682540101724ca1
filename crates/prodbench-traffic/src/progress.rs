//! The traffic measured so far, readable while windows run: what a metrics endpoint
//! ([`crate::MetricsEndpoint`]) serves.
//!
//! The runner publishes the running window about once a second (and at its start and end)
//! from its own loop, off the path that sends requests: a publication is one lock and a copy
//! of the window's summary and its settled seconds. Readers take a copy under the same lock
//! and never touch the runner's tallies, so scraping cannot delay a send, and an open-loop
//! schedule stays open-loop however often it is scraped.

use std::sync::{Arc, Mutex, PoisonError};

use prodbench_score::traffic::TrafficRecord;

/// How often a running window is published.
pub(crate) const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A generator's record so far; every clone is the same record.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Published>>);

#[derive(Debug, Default)]
struct Published {
    finished: TrafficRecord,
    running: Option<TrafficRecord>,
}

impl Progress {
    /// Every finished window, then the running one as of its last publication: its summary
    /// so far (requests in flight are in `sent` only, so every count only grows) and its
    /// seconds whose requests all have a fate.
    pub fn snapshot(&self) -> TrafficRecord {
        let published = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut record = published.finished.clone();
        if let Some(running) = &published.running {
            record.append(running.clone());
        }
        record
    }

    pub(crate) fn running(&self, window: TrafficRecord) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).running = Some(window);
    }

    pub(crate) fn finished(&self, window: TrafficRecord) {
        let mut published = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        published.running = None;
        published.finished.append(window);
    }
}
