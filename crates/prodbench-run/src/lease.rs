//! One process runs a job at a time.
//!
//! Two processes resuming one job would run the same attempts twice (with a paid model,
//! twice the spend), and the second would remove the first's sandboxes and mark its running
//! trials interrupted. So a job is *leased*: the store records its owner and a heartbeat the
//! owner renews while it holds the job. The owner is `<host>.<pid>@<process start time>`:
//! on this host an owner is alive exactly while that process (that pid, started then, so
//! a reused pid does not count) exists, whatever its heartbeat; an owner on another host is
//! alive while its heartbeat is younger than [`STALE_AFTER`].
//!
//! The heartbeat is its own task with its own database connection, so a trial that blocks
//! its thread cannot stall it; should it ever find the job held by someone else, it says
//! so ([`Lease::lost`]) and the job stops. Dropping the [`Lease`] stops the heartbeat and
//! releases the job, whatever path the run took.

use std::path::PathBuf;
use std::time::Duration;

use prodbench_store::{JobLease, JobRecord, Liveness, Store, StoreError, now_ms};
use tokio::sync::watch;

/// How often the owner renews its lease.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A lease of another host not renewed for this long belongs to a dead owner.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Whether the lease's owner may still be running the job.
pub fn holder_is_alive(lease: &JobLease) -> bool {
    match Owner::parse(&lease.owner) {
        Some(owner) if owner.host == this_host() => process_start(owner.pid) == Some(owner.started),
        _ => now_ms().saturating_sub(lease.heartbeat_at_ms) < STALE_AFTER.as_millis() as i64,
    }
}

/// What `job` is doing: [`Liveness`] with this module's rule for a live holder.
pub fn liveness(job: &JobRecord) -> Liveness {
    Liveness::of(job, holder_is_alive)
}

/// This process's identity as a job owner.
pub fn this_owner() -> String {
    let pid = std::process::id();
    format!("{}@{}", prodbench_sandbox::owner_label(), process_start(pid).unwrap_or(0))
}

/// A parsed owner: `<host>.<pid>@<started>`.
struct Owner<'a> {
    host: &'a str,
    pid: u32,
    started: u64,
}

impl<'a> Owner<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let (label, started) = text.rsplit_once('@')?;
        let (host, pid) = label.rsplit_once('.')?;
        Some(Owner { host, pid: pid.parse().ok()?, started: started.parse().ok()? })
    }
}

/// The host part of this process's owner label.
fn this_host() -> String {
    let label = prodbench_sandbox::owner_label();
    label.rsplit_once('.').map_or(label.clone(), |(host, _)| host.to_string())
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Why this process may not run a job.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("job {job_id} is being run by process {owner} (heartbeat {age_sec} s ago)")]
    Held { job_id: String, owner: String, age_sec: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This process's hold on a job: renewed while it lives, released when dropped.
pub struct Lease {
    job_id: String,
    root: PathBuf,
    heartbeat: tokio::task::JoinHandle<()>,
    held: watch::Receiver<bool>,
}

impl Lease {
    /// Takes `job_id` for this process, or says who holds it. Needs a tokio runtime (the
    /// heartbeat is a task of its own).
    pub fn acquire(store: &Store, job_id: &str) -> Result<Lease, LeaseError> {
        let owner = this_owner();
        store.acquire_job(job_id, &owner, holder_is_alive)?.map_err(|held| LeaseError::Held {
            job_id: job_id.to_string(),
            age_sec: now_ms().saturating_sub(held.lease.heartbeat_at_ms) / 1000,
            owner: held.lease.owner,
        })?;
        let (tell, held) = watch::channel(true);
        let heartbeat = tokio::spawn(beat(Store::open(store.root())?, job_id.to_string(), owner, tell));
        Ok(Lease { job_id: job_id.to_string(), root: store.root().to_path_buf(), heartbeat, held })
    }

    /// Resolves if another process takes the job (this one must stop); never otherwise.
    pub async fn lost(&mut self) {
        // An error means the heartbeat ended without losing the job: wait forever.
        if self.held.wait_for(|held| !held).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // A job that cannot be released now is taken over later: its owner will be gone.
        if let Ok(store) = Store::open(&self.root) {
            let _ = store.release_job(&self.job_id, &this_owner());
        }
    }
}

/// Renews the lease every [`HEARTBEAT_EVERY`] until it finds the job held by another.
async fn beat(store: Store, job_id: String, owner: String, held: watch::Sender<bool>) {
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        // A failed write is retried at the next beat; on this host the lease holds while the
        // process lives, elsewhere for STALE_AFTER, several beats.
        if let Ok(false) = store.heartbeat_job(&job_id, &owner) {
            let _ = held.send(false);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use prodbench_store::JobState;

    use super::*;

    fn lease(owner: String, age: Duration) -> JobLease {
        JobLease { owner, heartbeat_at_ms: now_ms() - age.as_millis() as i64 }
    }

    #[test]
    fn on_this_host_an_owner_lives_as_long_as_its_process_whatever_its_heartbeat() {
        assert!(holder_is_alive(&lease(this_owner(), Duration::ZERO)));
        assert!(holder_is_alive(&lease(this_owner(), STALE_AFTER * 10)), "a live process with a late heartbeat (a blocked thread)");
        let pid = std::process::id();
        let label = prodbench_sandbox::owner_label();
        let started = process_start(pid).unwrap();
        assert!(!holder_is_alive(&lease(format!("{label}@{}", started + 1), Duration::ZERO)), "the same pid, another process (reused)");
        let (host, _) = label.rsplit_once('.').unwrap();
        assert!(!holder_is_alive(&lease(format!("{host}.{}@{started}", u32::MAX - 1), Duration::ZERO)), "no such process");
    }

    #[test]
    fn on_another_host_an_owner_lives_while_its_heartbeat_is_fresh() {
        let elsewhere = "other-machine.42@1234".to_string();
        assert!(holder_is_alive(&lease(elsewhere.clone(), Duration::ZERO)));
        assert!(!holder_is_alive(&lease(elsewhere, STALE_AFTER + Duration::from_secs(1))));
    }

    #[test]
    fn liveness_tells_a_dead_job_from_a_live_one() {
        let job = |state, lease| JobRecord { state, lease, ..JobRecord::new("j", serde_json::Value::Null) };
        assert_eq!(liveness(&job(JobState::Running, Some(lease(this_owner(), Duration::ZERO)))), Liveness::Running);
        assert_eq!(liveness(&job(JobState::Running, None)), Liveness::Dead);
        assert_eq!(liveness(&job(JobState::Running, Some(lease("gone.1@1".into(), STALE_AFTER * 2)))), Liveness::Dead);
        assert_eq!(liveness(&job(JobState::Finished, None)), Liveness::Finished);
    }

    #[tokio::test]
    async fn a_lease_is_released_when_dropped_and_says_when_another_took_the_job() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store.create_job(&JobRecord::new("j", serde_json::Value::Null)).unwrap();
        let lease = Lease::acquire(&store, "j").unwrap();
        assert!(Lease::acquire(&store, "j").is_ok(), "this process may take its own job again");
        drop(lease);
        assert_eq!(store.job("j").unwrap().unwrap().lease, None, "released on drop");

        let mut lease = Lease::acquire(&store, "j").unwrap();
        store.acquire_job("j", "other-machine.42@1234", |_| false).unwrap().unwrap();
        tokio::time::timeout(HEARTBEAT_EVERY * 3, lease.lost()).await.expect("the heartbeat notices the job was taken");
    }
}
