//! Results that survive anything: one SQLite database for every job under a jobs directory,
//! and a directory per job with each trial's evidence.
//!
//! ```text
//! jobs/
//!   prodbench.sqlite            jobs, trials, phases, rewards, grades, judge cache (WAL mode)
//!   <job-id>/config.json        the job's settings, enough to resume it
//!   <job-id>/trials/<trial-id>/ result.json, grade.json, agent/, verifier/, error.txt,
//!                               and for tasks with a rubric: workspace/, diff.patch,
//!                               changes.json, state/
//! ```
//!
//! A trial row is inserted when the trial starts (status NULL) and updated once when it
//! ends, so a crash leaves evidence of what was running. Rows are never deleted: a retried
//! infrastructure failure or an interrupted trial keeps its row and directory, and the retry
//! gets a new row (`try_number` + 1). Only this crate speaks SQL.

mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prodbench_score::score::TrialGrade;
use prodbench_score::verdict::{Verdict, VerdictCache};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub const DATABASE_FILE: &str = "prodbench.sqlite";
pub const CONFIG_FILE: &str = "config.json";
pub const RESULT_FILE: &str = "result.json";
pub const GRADE_FILE: &str = "grade.json";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("database {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How a trial ended. Exactly one per finished trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// Verified with reward 1.
    Passed,
    /// Verified with reward below 1.
    Failed,
    /// A limit stopped the agent (turns, tokens, cost, wall time, context window; see
    /// [`TrialRecord::agent_limit`]) and the tests did not pass. Read from old records as
    /// `agent_timeout`, which it replaces.
    #[serde(alias = "agent_timeout")]
    AgentLimit,
    /// The agent crashed or could not run (and the tests did not pass).
    AgentError,
    /// The tests ran against the agent's final state but gave no usable reward: none
    /// written, malformed, tests timed out, or the reward directory tampered with. Scored
    /// as a failure (reward 0), never retried: the agent controls the state the tests
    /// see, so an unscored verifier error would let it escape a failure by breaking the
    /// tests. When the verification machinery itself fails (the sandbox, the daemon), the
    /// trial is an [`TrialStatus::InfraError`] instead.
    VerifierError,
    /// The harness, sandbox, daemon or model API failed (including a verifier sandbox that
    /// could not run): not the agent's fault, retried, never scored.
    InfraError,
    /// The job was stopped (Ctrl-C, SIGTERM, SIGKILL) while the trial ran; resume reruns it.
    Interrupted,
}

impl TrialStatus {
    pub const ALL: [TrialStatus; 7] = [
        TrialStatus::Passed,
        TrialStatus::Failed,
        TrialStatus::AgentLimit,
        TrialStatus::AgentError,
        TrialStatus::VerifierError,
        TrialStatus::InfraError,
        TrialStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Passed => "passed",
            TrialStatus::Failed => "failed",
            TrialStatus::AgentLimit => "agent_limit",
            TrialStatus::AgentError => "agent_error",
            TrialStatus::VerifierError => "verifier_error",
            TrialStatus::InfraError => "infra_error",
            TrialStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        if text == "agent_timeout" {
            return Some(TrialStatus::AgentLimit);
        }
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a trial with this status may be run again (a new try of the same slot).
    pub fn is_retryable(self) -> bool {
        matches!(self, TrialStatus::InfraError | TrialStatus::Interrupted)
    }

    /// Whether the trial counts toward scores (infrastructure never does).
    pub fn is_scored(self) -> bool {
        !self.is_retryable()
    }
}

/// One phase of a trial and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub name: String,
    pub started_at: String,
    pub duration_ms: u64,
    /// `ok`, `timeout`, or `error: ...`.
    pub outcome: String,
}

/// One try of one attempt of one agent at one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub trial_id: String,
    pub job_id: String,
    pub task_name: String,
    pub task_digest: String,
    pub environment_digest: Option<String>,
    pub agent: String,
    /// 1-based attempt (of `-k`).
    pub attempt: u32,
    /// 1-based try of this attempt: retries after infrastructure errors add tries.
    pub try_number: u32,
    /// `None` while running.
    pub status: Option<TrialStatus>,
    pub reward: Option<f64>,
    pub rewards: BTreeMap<String, f64>,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub phases: Vec<PhaseTiming>,
    /// The trial's directory, relative to the job directory.
    pub dir: String,
    /// The latest grade (from the run, or from a regrade).
    pub grade: Option<TrialGrade>,
    /// For `agent_limit`: which limit (`turns`, `tokens`, `cost`, `wall_time`, `context_window`).
    #[serde(default)]
    pub agent_limit: Option<String>,
}

impl TrialRecord {
    /// A trial that starts now: no status, reward or phases yet. `trial_id` must be unique
    /// across the store; the trial's directory is `trials/<dir_name>` in the job directory.
    #[allow(clippy::too_many_arguments)] // each is a column the row starts with; a struct would only rename them
    pub fn starting(job_id: &str, trial_id: String, dir_name: &str, task_name: &str, task_digest: &str, agent: &str, attempt: u32, try_number: u32) -> Self {
        TrialRecord {
            trial_id,
            job_id: job_id.to_string(),
            task_name: task_name.to_string(),
            task_digest: task_digest.to_string(),
            environment_digest: None,
            agent: agent.to_string(),
            attempt,
            try_number,
            status: None,
            reward: None,
            rewards: BTreeMap::new(),
            error: None,
            started_at: now(),
            finished_at: None,
            phases: Vec::new(),
            dir: format!("trials/{dir_name}"),
            grade: None,
            agent_limit: None,
        }
    }

    /// The reward this trial contributes to scores: `None` when it is not scored (see
    /// [`TrialStatus::is_scored`]), 0 for a verifier error (whatever reward it kept: when
    /// grading fails, the tests' reward is still recorded) and for a scored trial without
    /// a reward.
    pub fn scored_reward(&self) -> Option<f64> {
        match self.status? {
            TrialStatus::VerifierError => Some(0.0),
            status => status.is_scored().then(|| self.reward.unwrap_or(0.0)),
        }
    }
}

/// Keeps each (job, task, attempt)'s final try.
pub fn final_tries(trials: &[TrialRecord]) -> Vec<&TrialRecord> {
    let mut finals: BTreeMap<(&str, &str, u32), &TrialRecord> = BTreeMap::new();
    for t in trials {
        let entry = finals.entry((&t.job_id, &t.task_name, t.attempt)).or_insert(t);
        if t.try_number > entry.try_number {
            *entry = t;
        }
    }
    finals.into_values().collect()
}

/// A job's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub created_at: String,
    /// `running`, `finished` or `interrupted`.
    pub state: String,
    pub config: serde_json::Value,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The jobs directory and its database.
pub struct Store {
    root: PathBuf,
    db_path: PathBuf,
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::Io { path: root.to_path_buf(), source })?;
        let db_path = root.join(DATABASE_FILE);
        let sql = |source| StoreError::Sql { path: db_path.clone(), source };
        let conn = Connection::open(&db_path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        schema::migrate(&conn).map_err(sql)?;
        Ok(Store { root: root.to_path_buf(), db_path, conn: Mutex::new(conn) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        self.root.join(job_id)
    }

    fn sql<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().expect("store lock");
        f(&conn).map_err(|source| StoreError::Sql { path: self.db_path.clone(), source })
    }

    /// Records a new job and writes its `config.json`.
    pub fn create_job(&self, job: &JobRecord) -> Result<()> {
        let dir = self.job_dir(&job.job_id);
        std::fs::create_dir_all(dir.join("trials")).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        write_json_atomic(&dir.join(CONFIG_FILE), &job.config)?;
        self.sql(|c| {
            c.execute(
                "INSERT INTO jobs (job_id, created_at, state, config) VALUES (?1, ?2, ?3, ?4)",
                params![job.job_id, job.created_at, job.state, job.config.to_string()],
            )
            .map(|_| ())
        })
    }

    pub fn job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.sql(|c| {
            c.query_row("SELECT job_id, created_at, state, config FROM jobs WHERE job_id = ?1", [job_id], |row| {
                let config: String = row.get(3)?;
                Ok(JobRecord {
                    job_id: row.get(0)?,
                    created_at: row.get(1)?,
                    state: row.get(2)?,
                    config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
                })
            })
            .optional()
        })
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let ids: Vec<String> = self.sql(|c| {
            let mut stmt = c.prepare("SELECT job_id FROM jobs ORDER BY created_at DESC")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        ids.iter().filter_map(|id| self.job(id).transpose()).collect()
    }

    pub fn set_job_state(&self, job_id: &str, state: &str) -> Result<()> {
        self.sql(|c| c.execute("UPDATE jobs SET state = ?2 WHERE job_id = ?1", params![job_id, state]).map(|_| ()))
    }

    /// Records that a trial started (status NULL until [`Store::finish_trial`]).
    pub fn start_trial(&self, trial: &TrialRecord) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "INSERT INTO trials (trial_id, job_id, task_name, task_digest, agent, attempt, try_number, started_at, dir)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    trial.trial_id,
                    trial.job_id,
                    trial.task_name,
                    trial.task_digest,
                    trial.agent,
                    trial.attempt,
                    trial.try_number,
                    trial.started_at,
                    trial.dir
                ],
            )
            .map(|_| ())
        })
    }

    /// Records a trial's end: its row, phases and rewards in one transaction, then
    /// `result.json` in its directory.
    pub fn finish_trial(&self, trial: &TrialRecord) -> Result<()> {
        let status = trial.status.map(TrialStatus::as_str);
        self.sql(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "UPDATE trials SET status = ?2, reward = ?3, error = ?4, finished_at = ?5, environment_digest = ?6, agent_limit = ?7
                 WHERE trial_id = ?1",
                params![trial.trial_id, status, trial.reward, trial.error, trial.finished_at, trial.environment_digest, trial.agent_limit],
            )?;
            for (i, phase) in trial.phases.iter().enumerate() {
                tx.execute(
                    "INSERT OR REPLACE INTO phases (trial_id, seq, name, started_at, duration_ms, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![trial.trial_id, i as i64, phase.name, phase.started_at, phase.duration_ms as i64, phase.outcome],
                )?;
            }
            for (key, value) in &trial.rewards {
                tx.execute("INSERT OR REPLACE INTO rewards (trial_id, key, value) VALUES (?1, ?2, ?3)", params![trial.trial_id, key, value])?;
            }
            tx.commit()
        })?;
        if let Some(grade) = &trial.grade {
            self.record_grade(trial, grade, "run")?;
        }
        let dir = self.job_dir(&trial.job_id).join(&trial.dir);
        write_json_atomic(&dir.join(RESULT_FILE), trial)
    }

    /// Records a grade for a finished trial: it becomes the trial's current grade, every
    /// earlier one is kept in `grades`. `source` is `run` or `regrade`.
    pub fn record_grade(&self, trial: &TrialRecord, grade: &TrialGrade, source: &str) -> Result<()> {
        self.record_regrade(trial, grade, trial.reward, trial.status, source)
    }

    /// Records a new grade (see [`Store::record_grade`]) with the reward and status it
    /// implies: a regrade can turn a `verifier_error` into `passed`, or a pass into a fail.
    pub fn record_regrade(&self, trial: &TrialRecord, grade: &TrialGrade, reward: Option<f64>, status: Option<TrialStatus>, source: &str) -> Result<()> {
        let json = serde_json::to_string(grade).expect("grades serialize");
        let when = now();
        let status = status.map(TrialStatus::as_str);
        self.sql(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute("UPDATE trials SET grade = ?2, reward = ?3, status = ?4 WHERE trial_id = ?1", params![trial.trial_id, json, reward, status])?;
            tx.execute("INSERT INTO grades (trial_id, graded_at, source, grade) VALUES (?1, ?2, ?3, ?4)", params![trial.trial_id, when, source, json])?;
            tx.commit()
        })?;
        let dir = self.job_dir(&trial.job_id).join(&trial.dir);
        write_json_atomic(&dir.join(GRADE_FILE), grade)
    }

    /// A cached judge verdict (JSON) by its key.
    pub fn cached_verdict(&self, key: &str) -> Result<Option<String>> {
        self.sql(|c| c.query_row("SELECT verdict FROM judge_cache WHERE key = ?1", [key], |r| r.get(0)).optional())
    }

    pub fn cache_verdict(&self, key: &str, verdict_json: &str) -> Result<()> {
        let when = now();
        self.sql(|c| c.execute("INSERT OR REPLACE INTO judge_cache (key, verdict, created_at) VALUES (?1, ?2, ?3)", params![key, verdict_json, when]))?;
        Ok(())
    }

    /// Marks the job's trials that never finished (the process died) as interrupted.
    /// Returns how many.
    pub fn mark_unfinished_interrupted(&self, job_id: &str) -> Result<usize> {
        let when = now();
        self.sql(|c| {
            c.execute(
                "UPDATE trials SET status = 'interrupted', finished_at = ?2, error = 'the job stopped while this trial ran'
                 WHERE job_id = ?1 AND status IS NULL",
                params![job_id, when],
            )
        })
    }

    /// Every trial of a job, in the order they started.
    pub fn trials(&self, job_id: &str) -> Result<Vec<TrialRecord>> {
        let mut trials: Vec<TrialRecord> = self.sql(|c| {
            let mut stmt = c.prepare(
                "SELECT trial_id, job_id, task_name, task_digest, environment_digest, agent, attempt, try_number,
                        status, reward, error, started_at, finished_at, dir, grade, agent_limit
                 FROM trials WHERE job_id = ?1 ORDER BY started_at, trial_id",
            )?;
            let rows = stmt.query_map([job_id], |r| {
                let status: Option<String> = r.get(8)?;
                Ok(TrialRecord {
                    trial_id: r.get(0)?,
                    job_id: r.get(1)?,
                    task_name: r.get(2)?,
                    task_digest: r.get(3)?,
                    environment_digest: r.get(4)?,
                    agent: r.get(5)?,
                    attempt: r.get(6)?,
                    try_number: r.get(7)?,
                    status: status.as_deref().and_then(TrialStatus::parse),
                    reward: r.get(9)?,
                    rewards: BTreeMap::new(),
                    error: r.get(10)?,
                    started_at: r.get(11)?,
                    finished_at: r.get(12)?,
                    phases: Vec::new(),
                    dir: r.get(13)?,
                    // A grade this version cannot read (written by another) is left out.
                    grade: r.get::<_, Option<String>>(14)?.and_then(|g| serde_json::from_str(&g).ok()),
                    agent_limit: r.get(15)?,
                })
            })?;
            rows.collect()
        })?;
        for trial in &mut trials {
            self.load_details(trial)?;
        }
        Ok(trials)
    }

    fn load_details(&self, trial: &mut TrialRecord) -> Result<()> {
        let id = trial.trial_id.clone();
        trial.phases = self.sql(|c| {
            let mut stmt = c.prepare("SELECT name, started_at, duration_ms, outcome FROM phases WHERE trial_id = ?1 ORDER BY seq")?;
            let rows = stmt.query_map([&id], |r| {
                Ok(PhaseTiming { name: r.get(0)?, started_at: r.get(1)?, duration_ms: r.get::<_, i64>(2)? as u64, outcome: r.get(3)? })
            })?;
            rows.collect()
        })?;
        trial.rewards = self.sql(|c| {
            let mut stmt = c.prepare("SELECT key, value FROM rewards WHERE trial_id = ?1")?;
            let rows = stmt.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        Ok(())
    }
}

/// The judge's verdicts are cached in the database, shared by every job of the directory.
impl VerdictCache for Store {
    fn get(&self, key: &str) -> Option<Verdict> {
        self.cached_verdict(key).ok().flatten().and_then(|json| serde_json::from_str(&json).ok())
    }

    fn put(&self, key: &str, verdict: &Verdict) {
        // A cache that cannot be written costs a model call next time, nothing more.
        let _ = self.cache_verdict(key, &serde_json::to_string(verdict).expect("verdicts serialize"));
    }
}

/// Writes JSON to a temporary file and renames it into place, so a reader never sees half.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).expect("serializable");
    std::fs::write(&tmp, text + "\n").map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(job: &str, id: &str) -> TrialRecord {
        TrialRecord::starting(job, id.into(), id, "t", "d", "nop", 1, 1)
    }

    #[test]
    fn a_verifier_error_scores_zero_whatever_reward_it_kept() {
        let scored = |status, reward| TrialRecord { status: Some(status), reward, ..trial("j", "t") }.scored_reward();
        assert_eq!(scored(TrialStatus::VerifierError, Some(1.0)), Some(0.0), "grading failed after the tests wrote 1");
        assert_eq!(scored(TrialStatus::VerifierError, None), Some(0.0));
        assert_eq!(scored(TrialStatus::Passed, Some(1.0)), Some(1.0));
        assert_eq!(scored(TrialStatus::AgentError, None), Some(0.0));
        assert_eq!(scored(TrialStatus::InfraError, Some(1.0)), None);
        assert_eq!(trial("j", "t").scored_reward(), None, "unfinished");
    }

    #[test]
    fn a_trial_round_trips_and_survives_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let job = JobRecord { job_id: "j1".into(), created_at: now(), state: "running".into(), config: serde_json::json!({"k": 1}) };
        store.create_job(&job).unwrap();
        let mut t = trial("j1", "t1");
        store.start_trial(&t).unwrap();
        t.status = Some(TrialStatus::Passed);
        t.reward = Some(1.0);
        t.rewards = BTreeMap::from([("reward".into(), 1.0)]);
        t.finished_at = Some(now());
        t.phases = vec![PhaseTiming { name: "agent".into(), started_at: now(), duration_ms: 5, outcome: "ok".into() }];
        store.finish_trial(&t).unwrap();
        drop(store);
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.trials("j1").unwrap(), vec![t]);
        assert_eq!(store.job("j1").unwrap().unwrap().config["k"], 1);
        assert!(tmp.path().join("j1/trials/t1/result.json").is_file());
    }

    #[test]
    fn unfinished_trials_become_interrupted_and_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let job = JobRecord { job_id: "j".into(), created_at: now(), state: "running".into(), config: serde_json::json!({}) };
        store.create_job(&job).unwrap();
        store.start_trial(&trial("j", "a")).unwrap();
        assert_eq!(store.mark_unfinished_interrupted("j").unwrap(), 1);
        let trials = store.trials("j").unwrap();
        assert_eq!(trials[0].status, Some(TrialStatus::Interrupted));
        assert_eq!(store.mark_unfinished_interrupted("j").unwrap(), 0);
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in TrialStatus::ALL {
            assert_eq!(TrialStatus::parse(s.as_str()), Some(s));
        }
    }
}
