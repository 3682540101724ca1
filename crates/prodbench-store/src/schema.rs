//! The database schema, versioned with SQLite's `user_version`: each migration runs once,
//! in order, so an old jobs directory opens with a newer prodbench.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: jobs, trials, phases, rewards.
    "CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        config TEXT NOT NULL
     );
     CREATE TABLE trials (
        trial_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(job_id),
        task_name TEXT NOT NULL,
        task_digest TEXT NOT NULL,
        environment_digest TEXT,
        agent TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        try_number INTEGER NOT NULL,
        status TEXT,
        reward REAL,
        error TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        dir TEXT NOT NULL
     );
     CREATE INDEX trials_by_job ON trials(job_id);
     CREATE TABLE phases (
        trial_id TEXT NOT NULL REFERENCES trials(trial_id),
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        started_at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (trial_id, seq)
     );
     CREATE TABLE rewards (
        trial_id TEXT NOT NULL REFERENCES trials(trial_id),
        key TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (trial_id, key)
     );",
    // 2: grades (the latest on the trial row, every one in `grades`), the judge's cache.
    "ALTER TABLE trials ADD COLUMN grade TEXT;
     CREATE TABLE grades (
        trial_id TEXT NOT NULL REFERENCES trials(trial_id),
        graded_at TEXT NOT NULL,
        source TEXT NOT NULL,
        grade TEXT NOT NULL
     );
     CREATE INDEX grades_by_trial ON grades(trial_id);
     CREATE TABLE judge_cache (
        key TEXT PRIMARY KEY,
        verdict TEXT NOT NULL,
        created_at TEXT NOT NULL
     );",
    // 3: `agent_timeout` became `agent_limit`, with the kind of limit recorded.
    "ALTER TABLE trials ADD COLUMN agent_limit TEXT;
     UPDATE trials SET status = 'agent_limit', agent_limit = 'wall_time' WHERE status = 'agent_timeout';",
    // 4: a job's owner and its heartbeat (one process runs a job at a time), and the tasks
    // found at its path: run, or skipped (broken, or unable to run on its backend).
    "ALTER TABLE jobs ADD COLUMN owner TEXT;
     ALTER TABLE jobs ADD COLUMN heartbeat_at INTEGER;
     CREATE TABLE job_tasks (
        job_id TEXT NOT NULL REFERENCES jobs(job_id),
        dir TEXT NOT NULL,
        name TEXT,
        skipped TEXT,
        diagnostics TEXT NOT NULL,
        PRIMARY KEY (job_id, dir)
     );",
];

/// Brings the database up to the newest schema. The version is read inside a write
/// transaction, so of several processes opening an old database at once, one migrates and
/// the others, waiting on the lock, find it done.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    for sql in MIGRATIONS.iter().skip(version) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()
}
