//! The open-loop runner: each scheduled request is handed to its own task at its scheduled
//! time, and the sender never waits for a response.
//!
//! A closed-loop generator (send, wait, send) slows down with the server it measures: when
//! the server stalls, it stops sending, and the requests it never sent are never measured,
//! so the stall vanishes from the percentiles (coordinated omission). Here the send times are
//! fixed in advance (the `schedule` module) and latency runs from each request's scheduled time,
//! so a stall shows as what users would see: every request due during it, late.
//!
//! tokio's timer has millisecond resolution, so a request leaves up to about a millisecond
//! after its scheduled time, and that delay is part of its latency (on loopback the median
//! is about 1.5 ms): budgets well above a millisecond are what this measures well.
//!
//! Every run is bounded: at most `max_requests` per window, each request ends at its
//! scheduled time plus its timeout, and the window ends by its deadline (its duration plus
//! its longest timeout, plus a short grace) however the server behaves. A [`StopHandle`]
//! ends it early; requests still in flight are then abandoned and counted as unfinished.
//!
//! While a window runs, the loop also publishes it to the generator's [`Progress`] once a
//! second, in a branch of its own that never delays a send (see the `progress` module).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at, sleep_until, timeout_at};

use crate::client::{Connector, Pool};
use crate::measure::{Done, Outcome, WindowTally};
use crate::plan::{CheckedPlan, CheckedWindow, Plan, PlanError, Request, check};
use crate::progress::{PUBLISH_EVERY, Progress};
use crate::schedule::{Scheduled, schedule};
use prodbench_score::traffic::TrafficRecord;

/// After a window's deadline, how long its last requests (all past their timeouts) get to be
/// counted before they are abandoned.
const GRACE: Duration = Duration::from_millis(250);

/// Ends a run early: every clone stops the same runs.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl Default for StopHandle {
    fn default() -> StopHandle {
        StopHandle(Arc::new(watch::Sender::new(false)))
    }
}

impl StopHandle {
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    async fn stopped(&self) {
        // The sender lives in `self`, so this ends only when stopped.
        self.0.subscribe().wait_for(|stopped| *stopped).await.ok();
    }
}

/// A checked plan, ready to run its windows against its target.
pub struct Generator {
    plan: CheckedPlan,
    pool: Arc<Pool>,
    progress: Progress,
}

impl Generator {
    /// A generator that connects with `TcpStream::connect`.
    pub fn new(plan: &Plan) -> Result<Generator, PlanError> {
        Generator::with_connector(plan, TcpStream::connect::<std::net::SocketAddr>)
    }

    /// A generator that opens its connections through `connector`.
    pub fn with_connector(plan: &Plan, connector: impl Connector) -> Result<Generator, PlanError> {
        let plan = check(plan)?;
        let pool = Pool::new(plan.target.addr, plan.host.clone(), Box::new(connector), plan.max_connections);
        Ok(Generator { plan, pool: Arc::new(pool), progress: Progress::default() })
    }

    /// What the generator's windows have measured so far, updated as they run.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Every window, in the plan's order; a stop ends the current one and skips the rest.
    pub async fn run(&self, stop: &StopHandle) -> TrafficRecord {
        let mut record = TrafficRecord::default();
        for window in &self.plan.windows {
            if stop.is_stopped() {
                break;
            }
            record.append(self.drive(window, stop).await);
        }
        record
    }

    /// One window by name: the trial runs `warmup` before the agent, `agent` (stopped when the
    /// agent ends) and `grading` after it, each when its time comes.
    pub async fn run_window(&self, name: &str, stop: &StopHandle) -> Result<TrafficRecord, PlanError> {
        let window = self.plan.windows.iter().find(|window| window.name == name).ok_or_else(|| PlanError::UnknownWindow(name.to_string()))?;
        Ok(self.drive(window, stop).await)
    }

    async fn drive(&self, window: &CheckedWindow, stop: &StopHandle) -> TrafficRecord {
        let (started_at, start) = (SystemTime::now(), Instant::now());
        let mut tally = WindowTally::new(window.max_timeout + GRACE);
        let mut tasks = JoinSet::new();
        let stopped = stop.stopped();
        tokio::pin!(stopped);
        let mut was_stopped = false;
        let mut publisher = Publisher::new(&self.progress, window, started_at, start);
        publisher.publish(&tally);
        let max_requests = usize::try_from(self.plan.max_requests).unwrap_or(usize::MAX);
        'send: for scheduled in schedule(self.plan.seed, window).take(max_requests) {
            loop {
                tokio::select! {
                    biased;
                    () = &mut stopped => {
                        was_stopped = true;
                        break 'send;
                    }
                    () = sleep_until(start + scheduled.at) => break,
                    _ = publisher.every.tick() => publisher.publish(&tally),
                }
            }
            tally.sent(scheduled.at.as_secs());
            tasks.spawn(send(self.pool.clone(), window.mix.clone(), scheduled, start));
            while let Some(done) = tasks.try_join_next() {
                if let Ok(done) = done {
                    tally.finish(done);
                }
            }
        }
        tally.all_sent();
        if !was_stopped {
            was_stopped = drain(&mut tasks, &mut tally, start + window.duration + window.max_timeout + GRACE, stopped, &mut publisher).await;
        }
        // What is left is abandoned: unfinished.
        tasks.abort_all();
        let seconds = if was_stopped { whole_seconds(start.elapsed()).min(whole_seconds(window.duration)) } else { whole_seconds(window.duration) };
        let record = tally.into_record(window, started_at, seconds, was_stopped);
        self.progress.finished(record.clone());
        record
    }
}

/// Publishes a running window to its generator's [`Progress`] every [`PUBLISH_EVERY`].
struct Publisher<'a> {
    progress: &'a Progress,
    window: &'a CheckedWindow,
    started_at: SystemTime,
    every: Interval,
}

impl<'a> Publisher<'a> {
    fn new(progress: &'a Progress, window: &'a CheckedWindow, started_at: SystemTime, start: Instant) -> Self {
        let mut every = interval_at(start + PUBLISH_EVERY, PUBLISH_EVERY);
        // A late tick is not made up for: the next publication has it all.
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Publisher { progress, window, started_at, every }
    }

    fn publish(&self, tally: &WindowTally) {
        self.progress.running(tally.snapshot(self.window, self.started_at));
    }
}

/// Counts the outcomes of the requests in flight until there are none, the deadline passes,
/// or the run is stopped (then `true`).
async fn drain(
    tasks: &mut JoinSet<Done>,
    tally: &mut WindowTally,
    deadline: Instant,
    stopped: impl Future<Output = ()>,
    publisher: &mut Publisher<'_>,
) -> bool {
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => return true,
            done = tasks.join_next() => match done {
                Some(Ok(done)) => tally.finish(done),
                // A task that panicked has no fate: it counts as unfinished.
                Some(Err(_)) => {}
                None => return false,
            },
            () = sleep_until(deadline) => return false,
            _ = publisher.every.tick() => publisher.publish(tally),
        }
    }
}

/// Seconds a duration touches: 1.2 s is two rows of the timeline.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// One request, from its scheduled time: its fate and its latency from then.
async fn send(pool: Arc<Pool>, mix: Arc<[Request]>, scheduled: Scheduled, start: Instant) -> Done {
    let due = start + scheduled.at;
    let request = &mix[scheduled.request];
    let outcome = match timeout_at(due + request.timeout, pool.exchange(request, scheduled.path)).await {
        Ok(Ok(status)) => Outcome::Status(status.as_u16()),
        Ok(Err(error)) => Outcome::ConnectionError(error),
        Err(_) => Outcome::Timeout,
    };
    Done { second: scheduled.at.as_secs(), latency: due.elapsed(), outcome }
}
