//! One process runs a job at a time.
//!
//! Two processes resuming one job would run the same attempts twice (with a paid model,
//! twice the spend) and collide on the same trial rows. So a job is *leased*: the store
//! records its owner (`host:pid`) and a heartbeat the owner renews while it runs. Another
//! process may take the job only when the owner is gone: on this host its process no
//! longer exists (a SIGKILL), or, anywhere, its heartbeat is older than [`STALE_AFTER`]
//! (another machine, or a reused pid).

use std::time::Duration;

use prodbench_store::{JobLease, JobRecord, Liveness, Store, StoreError, now_ms};

/// How often the owner renews its lease.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A lease not renewed for this long belongs to a dead owner.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Whether the lease's owner may still be running the job.
pub fn holder_is_alive(lease: &JobLease) -> bool {
    let age_ms = now_ms().saturating_sub(lease.heartbeat_at_ms);
    age_ms < STALE_AFTER.as_millis() as i64 && prodbench_sandbox::owner_is_alive(&lease.owner)
}

/// What `job` is doing: [`Liveness`] with this module's rule for a live holder.
pub fn liveness(job: &JobRecord) -> Liveness {
    Liveness::of(job, holder_is_alive)
}

/// Why this process may not run a job.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("job {job_id} is being run by process {owner} (heartbeat {age_sec} s ago)")]
    Held { job_id: String, owner: String, age_sec: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This process's identity as a job owner.
pub fn this_owner() -> String {
    prodbench_sandbox::owner_label()
}

/// Takes `job_id` for this process, or says who holds it.
pub fn acquire(store: &Store, job_id: &str) -> Result<(), LeaseError> {
    store.acquire_job(job_id, &this_owner(), holder_is_alive)?.map_err(|held| LeaseError::Held {
        job_id: job_id.to_string(),
        age_sec: now_ms().saturating_sub(held.lease.heartbeat_at_ms) / 1000,
        owner: held.lease.owner,
    })
}

/// Renews this process's lease every [`HEARTBEAT_EVERY`]; never returns (drop it to stop).
pub async fn keep_alive(store: &Store, job_id: &str) -> std::convert::Infallible {
    let owner = this_owner();
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        // A failed renewal is retried at the next beat; the lease stays valid for
        // STALE_AFTER, several beats.
        let _ = store.heartbeat_job(job_id, &owner);
    }
}

/// Gives the job up.
pub fn release(store: &Store, job_id: &str) -> Result<(), StoreError> {
    store.release_job(job_id, &this_owner())
}

#[cfg(test)]
mod tests {
    use prodbench_store::JobState;

    use super::*;

    fn lease(owner: String, age: Duration) -> JobLease {
        JobLease { owner, heartbeat_at_ms: now_ms() - age.as_millis() as i64 }
    }

    #[test]
    fn a_holder_is_alive_while_its_process_runs_and_its_heartbeat_is_fresh() {
        assert!(holder_is_alive(&lease(this_owner(), Duration::ZERO)));
        assert!(!holder_is_alive(&lease(this_owner(), STALE_AFTER + Duration::from_secs(1))), "stale heartbeat");
        let gone = this_owner().replace(&std::process::id().to_string(), &(u32::MAX - 1).to_string());
        assert!(!holder_is_alive(&lease(gone, Duration::ZERO)), "no such process on this host");
    }

    #[test]
    fn liveness_tells_a_dead_job_from_a_live_one() {
        let job = |state, lease| JobRecord { state, lease, ..JobRecord::new("j", serde_json::Value::Null) };
        assert_eq!(liveness(&job(JobState::Running, Some(lease(this_owner(), Duration::ZERO)))), Liveness::Running);
        assert_eq!(liveness(&job(JobState::Running, None)), Liveness::Dead);
        assert_eq!(liveness(&job(JobState::Running, Some(lease(this_owner(), STALE_AFTER * 2)))), Liveness::Dead);
        assert_eq!(liveness(&job(JobState::Finished, None)), Liveness::Finished);
    }
}
