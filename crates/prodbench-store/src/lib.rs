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
pub mod timeline;

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

    /// Whose outcome this is: the one grouping every count and table uses.
    pub fn category(self) -> StatusCategory {
        match self {
            TrialStatus::Passed | TrialStatus::Failed => StatusCategory::Graded,
            TrialStatus::AgentLimit | TrialStatus::AgentError => StatusCategory::Agent,
            TrialStatus::VerifierError => StatusCategory::Verifier,
            TrialStatus::InfraError => StatusCategory::Infrastructure,
            TrialStatus::Interrupted => StatusCategory::Unfinished,
        }
    }

    /// Whether the trial counts as an *error*: the harness or the task's verifier failed, so
    /// someone must look (the agent's own failures and limits are failures, not errors).
    /// The one definition behind every "errors" count and the exit code 1.
    pub fn is_error(self) -> bool {
        matches!(self.category(), StatusCategory::Verifier | StatusCategory::Infrastructure)
    }
}

impl std::fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a trial's status says about whose outcome it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCategory {
    /// The tests decided: passed or failed. Scored.
    Graded,
    /// The agent failed or hit a limit (and the tests did not pass). Scored.
    Agent,
    /// The tests gave no usable reward. Scored as 0, counted as an error.
    Verifier,
    /// The harness failed. Retried, never scored, counted as an error.
    Infrastructure,
    /// The job stopped while the trial ran. Resume reruns it; never scored.
    Unfinished,
}

/// One phase of a trial and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub name: Phase,
    pub started_at: String,
    pub duration_ms: u64,
    pub outcome: PhaseOutcome,
}

/// The phases of a trial, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    EnvironmentBuild,
    EnvironmentStart,
    /// The task's `[environment.healthcheck]`, until it passes (the agent starts after it).
    Healthcheck,
    /// A live task's `[[services]]` started and ready (or given up on): time-to-ready.
    ServicesStart,
    /// A live task's warm-up traffic, before the agent.
    Warmup,
    /// The workspace as the agent found it (tasks with a rubric diff against it).
    Snapshot,
    AgentSetup,
    AgentRun,
    /// The judge's evidence, collected while the system is as the agent left it.
    Evidence,
    /// A live task's grading window: traffic (and faults) on the system the agent left.
    GradingWindow,
    Verification,
    /// `[[verifier.collect]]` commands, then `artifacts` copied into the trial.
    Artifacts,
    Teardown,
}

impl Phase {
    pub const ALL: [Phase; 13] = [
        Phase::EnvironmentBuild,
        Phase::EnvironmentStart,
        Phase::Healthcheck,
        Phase::ServicesStart,
        Phase::Warmup,
        Phase::Snapshot,
        Phase::AgentSetup,
        Phase::AgentRun,
        Phase::Evidence,
        Phase::GradingWindow,
        Phase::Verification,
        Phase::Artifacts,
        Phase::Teardown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::EnvironmentBuild => "environment_build",
            Phase::EnvironmentStart => "environment_start",
            Phase::Healthcheck => "healthcheck",
            Phase::ServicesStart => "services_start",
            Phase::Warmup => "warmup",
            Phase::Snapshot => "snapshot",
            Phase::AgentSetup => "agent_setup",
            Phase::AgentRun => "agent_run",
            Phase::Evidence => "evidence",
            Phase::GradingWindow => "grading_window",
            Phase::Verification => "verification",
            Phase::Artifacts => "artifacts",
            Phase::Teardown => "teardown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a phase ended; stored and serialized as text: `ok`, `limit: <kind>`, `error: <first
/// line>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum PhaseOutcome {
    Ok,
    /// A limit stopped the agent (its kind: `wall_time`, `turns`, ...).
    Limit(String),
    Error(String),
}

impl From<PhaseOutcome> for String {
    fn from(outcome: PhaseOutcome) -> String {
        match outcome {
            PhaseOutcome::Ok => "ok".into(),
            PhaseOutcome::Limit(kind) => format!("limit: {kind}"),
            PhaseOutcome::Error(message) => format!("error: {message}"),
        }
    }
}

impl From<String> for PhaseOutcome {
    fn from(text: String) -> Self {
        match (text.strip_prefix("limit: "), text.strip_prefix("error: ")) {
            _ if text == "ok" => PhaseOutcome::Ok,
            (Some(kind), _) => PhaseOutcome::Limit(kind.to_string()),
            (_, Some(message)) => PhaseOutcome::Error(message.to_string()),
            // Written by another version: keep what it says.
            _ => PhaseOutcome::Error(text),
        }
    }
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
    /// Try `try_number` of attempt `attempt` of `task_name` in `job_id`, starting now: no
    /// status, reward or phases yet. Its directory is `trials/<task>__a<attempt>__t<try>`
    /// (the task's name with anything but letters, digits, `-` and `_` made `-`) and its id
    /// `<job>.<directory name>`, unique across the store; the agent and the task's digest
    /// are set with [`TrialRecord::agent`] and [`TrialRecord::task_digest`].
    pub fn starting(job_id: &str, task_name: &str, attempt: u32, try_number: u32) -> Self {
        let safe_name: String = task_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
        let dir_name = format!("{safe_name}__a{attempt}__t{try_number}");
        TrialRecord {
            trial_id: format!("{job_id}.{dir_name}"),
            job_id: job_id.to_string(),
            task_name: task_name.to_string(),
            task_digest: String::new(),
            environment_digest: None,
            agent: String::new(),
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

    /// The agent that runs the trial.
    pub fn agent(mut self, agent: &str) -> Self {
        self.agent = agent.to_string();
        self
    }

    /// The digest of the task the trial runs (recorded with its result).
    pub fn task_digest(mut self, digest: &str) -> Self {
        self.task_digest = digest.to_string();
        self
    }

    /// Another id and directory (`trials/<dir_name>`) than [`TrialRecord::starting`] makes.
    pub fn with_ids(mut self, trial_id: String, dir_name: &str) -> Self {
        self.trial_id = trial_id;
        self.dir = format!("trials/{dir_name}");
        self
    }

    // What a trial counts as. Every count and mean over trials (the run summary, the report's
    // leaderboard, failure modes, heat map and trials) uses these, over final tries only.

    /// The trial's score in [0, 1]: `None` when it is not scored (see
    /// [`TrialStatus::is_scored`]), 0 for a verifier error, else its grade's composite, else
    /// its reward (clamped), else 0. The composite, not the reward, when both exist: a
    /// `test.sh` that writes reward 1 whatever its per-test report says has its failed tests
    /// counted.
    pub fn score(&self) -> Option<f64> {
        match self.status? {
            TrialStatus::VerifierError => Some(0.0),
            status => status.is_scored().then(|| self.grade.as_ref().and_then(|g| g.composite).or(self.reward).map_or(0.0, |s| s.clamp(0.0, 1.0))),
        }
    }

    /// Whether the trial passed: `None` when it is not scored, or when its grade could not
    /// decide (an ungraded check it depends on; its status may still read `passed` from the
    /// reward); `false` for a verifier error; else its grade's pass; without a grade, whether
    /// its status is `passed`.
    pub fn passed(&self) -> Option<bool> {
        self.verdict(|grade| grade.pass)
    }

    /// Whether the trial resolved the task, decided as [`TrialRecord::passed`] is, from the
    /// grade's resolve.
    pub fn resolved(&self) -> Option<bool> {
        self.verdict(|grade| grade.resolve)
    }

    fn verdict(&self, of_grade: fn(&TrialGrade) -> Option<bool>) -> Option<bool> {
        match self.status? {
            TrialStatus::VerifierError => Some(false),
            status if !status.is_scored() => None,
            status => self.grade.as_ref().map_or(Some(status == TrialStatus::Passed), of_grade),
        }
    }

    /// What a finished trial counts as wherever trials are counted by kind: `passed` only when
    /// [`TrialRecord::passed`] says so, `undecided` for a scored trial whose pass is unknown,
    /// else its status (`failed` for a `passed` status its grade overrules). `None` while running.
    pub fn outcome(&self) -> Option<Outcome> {
        let status = self.status?;
        Some(match self.passed() {
            Some(true) => Outcome::Passed,
            None if status.is_scored() => Outcome::Undecided,
            _ if status == TrialStatus::Passed => Outcome::Failed,
            _ => Outcome::from(status),
        })
    }
}

/// What a finished trial counts as (see [`TrialRecord::outcome`]): its status, but `passed`
/// only for a decided pass, and `undecided` for a scored trial whose pass is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Undecided,
    Failed,
    AgentLimit,
    AgentError,
    VerifierError,
    InfraError,
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Undecided => "undecided",
            Outcome::Passed => TrialStatus::Passed.as_str(),
            Outcome::Failed => TrialStatus::Failed.as_str(),
            Outcome::AgentLimit => TrialStatus::AgentLimit.as_str(),
            Outcome::AgentError => TrialStatus::AgentError.as_str(),
            Outcome::VerifierError => TrialStatus::VerifierError.as_str(),
            Outcome::InfraError => TrialStatus::InfraError.as_str(),
            Outcome::Interrupted => TrialStatus::Interrupted.as_str(),
        }
    }

    /// Whether trials with this outcome are scored (infrastructure and interruptions are not).
    pub fn is_scored(self) -> bool {
        !matches!(self, Outcome::InfraError | Outcome::Interrupted)
    }
}

/// A status as an outcome, before any grade overrules it.
impl From<TrialStatus> for Outcome {
    fn from(status: TrialStatus) -> Self {
        match status {
            TrialStatus::Passed => Outcome::Passed,
            TrialStatus::Failed => Outcome::Failed,
            TrialStatus::AgentLimit => Outcome::AgentLimit,
            TrialStatus::AgentError => Outcome::AgentError,
            TrialStatus::VerifierError => Outcome::VerifierError,
            TrialStatus::InfraError => Outcome::InfraError,
            TrialStatus::Interrupted => Outcome::Interrupted,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// As last recorded: a `running` job whose owner died stays `running` here (see
    /// [`JobRecord::lease`]).
    pub state: JobState,
    pub config: serde_json::Value,
    /// Who runs the job now, if anyone holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<JobLease>,
}

impl JobRecord {
    /// A job created now, running, held by no one.
    pub fn new(job_id: &str, config: serde_json::Value) -> Self {
        JobRecord { job_id: job_id.to_string(), created_at: now(), state: JobState::Running, config, lease: None }
    }
}

/// A job's state as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
    /// Stopped by a signal; `--resume` finishes it.
    Interrupted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [JobState::Running, JobState::Finished, JobState::Interrupted].into_iter().find(|s| s.as_str() == text)
    }
}

/// The process that holds a job: one at a time, renewed by heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLease {
    /// The holder's identity (`prodbench_sandbox::owner_label`).
    pub owner: String,
    /// Unix milliseconds of its last heartbeat.
    pub heartbeat_at_ms: i64,
}

/// What a job is doing, as far as anyone can tell from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Its owner is alive and running it.
    Running,
    /// Recorded as running, but its owner is gone (killed): `--resume` finishes it.
    Dead,
    Finished,
    /// Stopped by a signal: `--resume` finishes it.
    Interrupted,
}

impl Liveness {
    /// `holder_is_alive` says whether a lease's owner may still run the job (the run crate
    /// knows processes and heartbeats; the store only records them).
    pub fn of(job: &JobRecord, holder_is_alive: impl Fn(&JobLease) -> bool) -> Self {
        match job.state {
            JobState::Finished => Liveness::Finished,
            JobState::Interrupted => Liveness::Interrupted,
            JobState::Running if job.lease.as_ref().is_some_and(holder_is_alive) => Liveness::Running,
            JobState::Running => Liveness::Dead,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Running => "running",
            Liveness::Dead => "dead",
            Liveness::Finished => "finished",
            Liveness::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job could not be taken: another process holds it and is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHeld {
    pub lease: JobLease,
}

/// A task found at a job's path: planned to run, or skipped with the reason. Recorded with
/// the job, so every summary can count what was planned and what was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTask {
    /// The task directory.
    pub dir: String,
    /// The task's name, when its `task.toml` could be read.
    pub name: Option<String>,
    /// Why the job does not run it; `None` for a task it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipReason>,
    /// Problems found in it, one line each (file, line, key, hint); warnings too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The task has errors (`prodbench tasks check` lists them).
    Broken,
    /// The task cannot run on the job's backend (no Dockerfile for docker, say).
    Unsupported,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Broken => "broken",
            SkipReason::Unsupported => "unsupported",
        }
    }
}

/// Milliseconds since the Unix epoch, the clock of job heartbeats.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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

/// Switches the database to WAL. Several processes opening a new jobs directory at once
/// race for it, and SQLite answers a switch it cannot take the lock for with `SQLITE_BUSY`
/// at once, without its busy handler: so it is retried, for as long as the busy timeout.
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::Io { path: root.to_path_buf(), source })?;
        let db_path = root.join(DATABASE_FILE);
        let sql = |source| StoreError::Sql { path: db_path.clone(), source };
        let conn = Connection::open(&db_path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql)?;
        use_wal(&conn).map_err(sql)?;
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

    /// Records a new job, held by its lease's owner, and writes its `config.json`.
    pub fn create_job(&self, job: &JobRecord) -> Result<()> {
        let dir = self.job_dir(&job.job_id);
        std::fs::create_dir_all(dir.join("trials")).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        write_json_atomic(&dir.join(CONFIG_FILE), &job.config)?;
        let (owner, heartbeat) = job.lease.as_ref().map(|l| (l.owner.as_str(), l.heartbeat_at_ms)).unzip();
        self.sql(|c| {
            c.execute(
                "INSERT INTO jobs (job_id, created_at, state, config, owner, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![job.job_id, job.created_at, job.state.as_str(), job.config.to_string(), owner, heartbeat],
            )
            .map(|_| ())
        })
    }

    pub fn job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.sql(|c| {
            c.query_row("SELECT job_id, created_at, state, config, owner, heartbeat_at FROM jobs WHERE job_id = ?1", [job_id], |row| {
                let config: String = row.get(3)?;
                let state: String = row.get(2)?;
                let owner: Option<String> = row.get(4)?;
                let heartbeat: Option<i64> = row.get(5)?;
                Ok(JobRecord {
                    job_id: row.get(0)?,
                    created_at: row.get(1)?,
                    // A state this version does not know was written by a newer one, for a
                    // job that had started: read it as running.
                    state: JobState::parse(&state).unwrap_or(JobState::Running),
                    config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
                    lease: owner.map(|owner| JobLease { owner, heartbeat_at_ms: heartbeat.unwrap_or(0) }),
                })
            })
            .optional()
        })
    }

    /// Takes the job for `owner` unless another owner holds it and `is_alive` says that
    /// owner still runs. Atomic across processes (an immediate transaction), so of two
    /// processes resuming one job exactly one gets it.
    pub fn acquire_job(&self, job_id: &str, owner: &str, is_alive: impl Fn(&JobLease) -> bool) -> Result<Result<(), JobHeld>> {
        let mut conn = self.conn.lock().expect("store lock");
        let sql = |source| StoreError::Sql { path: self.db_path.clone(), source };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        let current: Option<(Option<String>, Option<i64>)> =
            tx.query_row("SELECT owner, heartbeat_at FROM jobs WHERE job_id = ?1", [job_id], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(sql)?;
        if let Some((Some(holder), heartbeat)) = current {
            let lease = JobLease { owner: holder, heartbeat_at_ms: heartbeat.unwrap_or(0) };
            if lease.owner != owner && is_alive(&lease) {
                return Ok(Err(JobHeld { lease }));
            }
        }
        tx.execute("UPDATE jobs SET owner = ?2, heartbeat_at = ?3 WHERE job_id = ?1", params![job_id, owner, now_ms()]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Ok(()))
    }

    /// Renews `owner`'s lease on the job; `false` when it no longer holds it.
    pub fn heartbeat_job(&self, job_id: &str, owner: &str) -> Result<bool> {
        self.sql(|c| c.execute("UPDATE jobs SET heartbeat_at = ?3 WHERE job_id = ?1 AND owner = ?2", params![job_id, owner, now_ms()]).map(|n| n == 1))
    }

    /// Rewrites the job's recorded config (a resume changed what it may: `-n`, retries).
    pub fn update_job_config(&self, job_id: &str, config: &serde_json::Value) -> Result<()> {
        write_json_atomic(&self.job_dir(job_id).join(CONFIG_FILE), config)?;
        self.sql(|c| c.execute("UPDATE jobs SET config = ?2 WHERE job_id = ?1", params![job_id, config.to_string()]).map(|_| ()))
    }

    /// Gives the job up, if `owner` holds it.
    pub fn release_job(&self, job_id: &str, owner: &str) -> Result<()> {
        self.sql(|c| c.execute("UPDATE jobs SET owner = NULL, heartbeat_at = NULL WHERE job_id = ?1 AND owner = ?2", params![job_id, owner]).map(|_| ()))
    }

    /// Replaces the job's tasks (a resume decides again, from the tasks as they are now).
    pub fn record_job_tasks(&self, job_id: &str, tasks: &[JobTask]) -> Result<()> {
        self.sql(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute("DELETE FROM job_tasks WHERE job_id = ?1", [job_id])?;
            for task in tasks {
                let diagnostics = serde_json::to_string(&task.diagnostics).expect("strings serialize");
                tx.execute(
                    "INSERT OR REPLACE INTO job_tasks (job_id, dir, name, skipped, diagnostics) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![job_id, task.dir, task.name, task.skipped.map(SkipReason::as_str), diagnostics],
                )?;
            }
            tx.commit()
        })
    }

    /// The job's tasks, by directory; empty for jobs recorded before tasks were.
    pub fn job_tasks(&self, job_id: &str) -> Result<Vec<JobTask>> {
        self.sql(|c| {
            let mut stmt = c.prepare("SELECT dir, name, skipped, diagnostics FROM job_tasks WHERE job_id = ?1 ORDER BY dir")?;
            let rows = stmt.query_map([job_id], |r| {
                let skipped: Option<String> = r.get(2)?;
                let diagnostics: String = r.get(3)?;
                Ok(JobTask {
                    dir: r.get(0)?,
                    name: r.get(1)?,
                    skipped: skipped.map(|s| if s == SkipReason::Unsupported.as_str() { SkipReason::Unsupported } else { SkipReason::Broken }),
                    diagnostics: serde_json::from_str(&diagnostics).unwrap_or_default(),
                })
            })?;
            rows.collect()
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

    pub fn set_job_state(&self, job_id: &str, state: JobState) -> Result<()> {
        self.sql(|c| c.execute("UPDATE jobs SET state = ?2 WHERE job_id = ?1", params![job_id, state.as_str()]).map(|_| ()))
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
                    params![trial.trial_id, i as i64, phase.name.as_str(), phase.started_at, phase.duration_ms as i64, String::from(phase.outcome.clone())],
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
        let rows: Vec<(String, String, i64, String)> = self.sql(|c| {
            let mut stmt = c.prepare("SELECT name, started_at, duration_ms, outcome FROM phases WHERE trial_id = ?1 ORDER BY seq")?;
            let rows = stmt.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect()
        })?;
        // A phase this version does not know (written by a newer one) is left out.
        trial.phases = rows
            .into_iter()
            .filter_map(|(name, started_at, duration_ms, outcome)| {
                Some(PhaseTiming { name: Phase::parse(&name)?, started_at, duration_ms: duration_ms as u64, outcome: PhaseOutcome::from(outcome) })
            })
            .collect();
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
        TrialRecord::starting(job, "t", 1, 1).with_ids(id.into(), id).task_digest("d").agent("nop")
    }

    #[test]
    fn a_verifier_error_scores_zero_whatever_reward_it_kept() {
        let scored = |status, reward| TrialRecord { status: Some(status), reward, ..trial("j", "t") }.score();
        assert_eq!(scored(TrialStatus::VerifierError, Some(1.0)), Some(0.0), "grading failed after the tests wrote 1");
        assert_eq!(scored(TrialStatus::VerifierError, None), Some(0.0));
        assert_eq!(scored(TrialStatus::Passed, Some(1.0)), Some(1.0));
        assert_eq!(scored(TrialStatus::AgentError, None), Some(0.0));
        assert_eq!(scored(TrialStatus::InfraError, Some(1.0)), None);
        assert_eq!(trial("j", "t").score(), None, "unfinished");
    }

    /// A finished trial with `reward` whose grade has one test check per entry of `tests`.
    fn graded(status: TrialStatus, reward: f64, tests: &[bool], pass: Option<bool>) -> TrialRecord {
        let check = |passed: &bool| {
            let score = if *passed { 1.0 } else { 0.0 };
            serde_json::json!({"kind": "test", "name": "test", "component": "feature", "weight": 1.0, "score": score, "passed": passed,
                               "must_pass": false, "points": null, "reason": null})
        };
        let composite = tests.iter().filter(|p| **p).count() as f64 / tests.len() as f64;
        let grade = serde_json::json!({
            "checks": tests.iter().map(check).collect::<Vec<_>>(), "components": [], "composite": composite, "complete": pass.is_some(),
            "pass": pass, "resolve": pass, "points": null, "forbidden_changes": [], "scratch_files": []
        });
        TrialRecord { status: Some(status), reward: Some(reward), grade: Some(serde_json::from_value(grade).expect("a grade")), ..trial("j", "t") }
    }

    #[test]
    fn a_reward_of_1_beside_failed_tests_scores_the_tests_and_fails() {
        // A CTRF report with 4 of 5 tests failed, and a test.sh that wrote reward 1 anyway.
        let ctrf = graded(TrialStatus::Failed, 1.0, &[true, false, false, false, false], Some(false));
        assert_eq!(ctrf.reward, Some(1.0), "the reward as written");
        assert_eq!((ctrf.score(), ctrf.passed(), ctrf.outcome()), (Some(0.2), Some(false), Some(Outcome::Failed)), "the grade decides");
    }

    #[test]
    fn an_unknown_pass_is_undecided_whatever_the_status_says() {
        // The tests passed, so the status read `passed` from the reward; a must-pass criterion went unjudged.
        let unjudged = graded(TrialStatus::Passed, 1.0, &[true], None);
        assert_eq!((unjudged.score(), unjudged.passed(), unjudged.resolved(), unjudged.outcome()), (Some(1.0), None, None, Some(Outcome::Undecided)));
        let overruled = graded(TrialStatus::Passed, 1.0, &[false], Some(false));
        assert_eq!(overruled.outcome(), Some(Outcome::Failed), "a passed status the grade overrules");
        let at = |status, reward| TrialRecord { status: Some(status), reward, ..trial("j", "t") };
        let verdicts = |t: TrialRecord| (t.score(), t.passed(), t.outcome());
        assert_eq!(verdicts(at(TrialStatus::Passed, Some(1.0))), (Some(1.0), Some(true), Some(Outcome::Passed)), "without a grade the status decides");
        assert_eq!(verdicts(at(TrialStatus::AgentLimit, Some(0.5))), (Some(0.5), Some(false), Some(Outcome::AgentLimit)));
        assert_eq!(verdicts(at(TrialStatus::VerifierError, Some(1.0))), (Some(0.0), Some(false), Some(Outcome::VerifierError)));
        assert_eq!(verdicts(at(TrialStatus::InfraError, Some(1.0))), (None, None, Some(Outcome::InfraError)), "never scored");
        assert_eq!(verdicts(trial("j", "t")), (None, None, None), "unfinished");
    }

    #[test]
    fn a_trial_round_trips_and_survives_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let job = JobRecord::new("j1", serde_json::json!({"k": 1}));
        store.create_job(&job).unwrap();
        let mut t = trial("j1", "t1");
        store.start_trial(&t).unwrap();
        t.status = Some(TrialStatus::Passed);
        t.reward = Some(1.0);
        t.rewards = BTreeMap::from([("reward".into(), 1.0)]);
        t.finished_at = Some(now());
        t.phases = vec![
            PhaseTiming { name: Phase::AgentRun, started_at: now(), duration_ms: 5, outcome: PhaseOutcome::Ok },
            PhaseTiming { name: Phase::Verification, started_at: now(), duration_ms: 7, outcome: PhaseOutcome::Error("tests timed out".into()) },
        ];
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
        let job = JobRecord::new("j", serde_json::json!({}));
        store.create_job(&job).unwrap();
        store.start_trial(&trial("j", "a")).unwrap();
        assert_eq!(store.mark_unfinished_interrupted("j").unwrap(), 1);
        let trials = store.trials("j").unwrap();
        assert_eq!(trials[0].status, Some(TrialStatus::Interrupted));
        assert_eq!(store.mark_unfinished_interrupted("j").unwrap(), 0);
    }

    fn job(store: &Store, id: &str, lease: Option<JobLease>) {
        store.create_job(&JobRecord { lease, ..JobRecord::new(id, serde_json::json!({})) }).unwrap();
    }

    #[test]
    fn a_job_has_one_owner_and_a_dead_owners_lease_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        job(&store, "j", Some(JobLease { owner: "a".into(), heartbeat_at_ms: now_ms() }));
        let alive = |_: &JobLease| true;
        let dead = |_: &JobLease| false;
        let held = store.acquire_job("j", "b", alive).unwrap().unwrap_err();
        assert_eq!(held.lease.owner, "a");
        assert_eq!(store.acquire_job("j", "a", alive).unwrap(), Ok(()), "the owner may take its own job again");
        assert_eq!(store.acquire_job("j", "b", dead).unwrap(), Ok(()), "a dead owner's lease is taken over");
        assert_eq!(store.job("j").unwrap().unwrap().lease.unwrap().owner, "b");
        store.release_job("j", "a").unwrap();
        assert!(store.job("j").unwrap().unwrap().lease.is_some(), "only the holder releases");
        store.release_job("j", "b").unwrap();
        assert_eq!(store.job("j").unwrap().unwrap().lease, None);
        assert_eq!(store.acquire_job("j", "c", alive).unwrap(), Ok(()), "a released job is free");
    }

    #[test]
    fn processes_opening_a_new_jobs_directory_at_once_all_get_it_migrated() {
        let tmp = tempfile::tempdir().unwrap();
        let opened: Vec<bool> = std::thread::scope(|scope| {
            let openers: Vec<_> = (0..4).map(|_| scope.spawn(|| Store::open(tmp.path()).is_ok())).collect();
            openers.into_iter().map(|o| o.join().unwrap()).collect()
        });
        assert_eq!(opened, [true; 4]);
    }

    #[test]
    fn two_stores_racing_for_one_job_give_it_to_exactly_one() {
        let tmp = tempfile::tempdir().unwrap();
        job(&Store::open(tmp.path()).unwrap(), "j", None);
        let winners: usize = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|i| {
                    let root = tmp.path().to_path_buf();
                    scope.spawn(move || Store::open(&root).unwrap().acquire_job("j", &format!("owner{i}"), |_| true).unwrap().is_ok() as usize)
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn a_jobs_tasks_are_recorded_and_replaced_by_a_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        job(&store, "j", None);
        let broken = JobTask { dir: "/d/a".into(), name: None, skipped: Some(SkipReason::Broken), diagnostics: vec!["task.toml: bad".into()] };
        let unsupported = JobTask { dir: "/d/b".into(), name: Some("b".into()), skipped: Some(SkipReason::Unsupported), diagnostics: vec![] };
        let runs = JobTask { dir: "/d/c".into(), name: Some("c".into()), skipped: None, diagnostics: vec![] };
        store.record_job_tasks("j", &[runs.clone(), unsupported.clone(), broken.clone()]).unwrap();
        assert_eq!(store.job_tasks("j").unwrap(), vec![broken.clone(), unsupported, runs.clone()]);
        store.record_job_tasks("j", &[broken.clone(), runs.clone()]).unwrap();
        assert_eq!(store.job_tasks("j").unwrap(), vec![broken, runs]);
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in TrialStatus::ALL {
            assert_eq!(TrialStatus::parse(s.as_str()), Some(s));
        }
    }
}
