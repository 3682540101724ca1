//! The sample report the HTML tests render: two jobs built the way a run stores them (trial
//! records graded by the real grader, trajectory statistics, answers and test output on disk)
//! and turned into a report by [`build`], so the sample always has the report's current shape.
//!
//! It holds what the page must show: a priced agent (costs, tokens, steps, trajectory
//! statistics), judge reasons and claims, a split vote, an unjudged must-pass criterion (an
//! undecided trial whose status reads `passed`), a triggered penalty, a turn limit, an
//! infrastructure error retried into another, answers and pytest output; and one live trial
//! (the first), whose directory holds a traffic record, an event timeline, a service log and
//! fault counts, written with the types a run writes them with ([`live_record`],
//! [`live_events`]).

use std::collections::BTreeMap;
use std::path::Path;

use prodbench_report::report::{JobInput, Report, TaskMeta, build};
use prodbench_score::score::{GradeInputs, TrialGrade, grade};
use prodbench_score::test_report::TestOutcome;
use prodbench_score::traffic::{Arrival, Counts, Latency, SecondStats, TrafficRecord, WindowSummary};
use prodbench_score::verdict::Verdict;
use prodbench_store::timeline::{EVENTS_FILE, Event, TrialEvent};
use prodbench_store::{JobRecord, TrialRecord, TrialStatus};
use prodbench_task::rubric::Rubric;
use prodbench_trajectory::stats::TrialStats;

const ORACLE_JOB: &str = "20261121-063021-bd87";
const AGENT_JOB: &str = "20261121-071544-c2e0";
const QNA: &str = "local-codebase-qna";
const PAGINATION: &str = "py-pagination-off-by-one";

const QNA_RUBRIC: &str = r#"
[[criteria]]
id = "names-function"
claim = "The answer names adler32 as the function that computes the checksum."
component = "feature"
points = 3
must_pass = true

[[criteria]]
id = "names-modulus"
claim = "The answer states that the modulus is 65521."
component = "feature"
points = 2
must_pass = true

[[criteria]]
id = "false-completion"
claim = "The agent claims to have answered, but no answer was written."
component = "feature"
points = -5
"#;

const PAGINATION_TESTS: [&str; 3] = ["tests.test_pages::test_first_page", "tests.test_pages::test_last_page", "tests.test_pages::test_empty_list"];

/// The sample report, and the jobs directory its trials' files are in (removed on drop).
pub struct Sample {
    pub report: Report,
    _jobs: tempfile::TempDir,
}

pub fn sample() -> Sample {
    let jobs = tempfile::tempdir().expect("a jobs directory");
    let inputs = [oracle_job(jobs.path()), agent_job(jobs.path())];
    Sample { report: build(&inputs, false), _jobs: jobs }
}

fn oracle_job(jobs: &Path) -> JobInput {
    let answer = "The checksum is computed by adler32() in src/checksum.py: it keeps two running sums, each taken modulo 65521.\n";
    let all_met = [
        ("names-function", met("The answer reads \"computed by adler32() in src/checksum.py\".")),
        ("names-modulus", split_met()),
        ("false-completion", avoided()),
    ];
    let unjudged = [("names-function", met("The answer reads \"computed by adler32() in src/checksum.py\".")), ("false-completion", avoided())];
    let trials = vec![
        Trial::new(QNA, 1, TrialStatus::Passed).graded(qna_grade(&[true, true], &all_met)).answer(answer).live(),
        // The judge never ruled on names-modulus: the tests passed, so the status reads
        // `passed`, but the pass is undecided.
        Trial::new(QNA, 2, TrialStatus::Passed).graded(qna_grade(&[true, true], &unjudged)).answer(answer),
        Trial::new(PAGINATION, 1, TrialStatus::Passed).graded(pagination_grade(&[true, true, true])).verifier(&pytest(&[true, true, true])),
        Trial::new(PAGINATION, 2, TrialStatus::Passed).graded(pagination_grade(&[true, true, true])).verifier(&pytest(&[true, true, true])),
    ];
    job(jobs, ORACLE_JOB, serde_json::json!({"agent": "oracle"}), trials)
}

fn agent_job(jobs: &Path) -> JobInput {
    let no_answer = "No answer was written: /logs/agent/answer.txt does not exist.";
    let missed = [
        ("names-function", met("The answer reads \"computed by the adler32() function in src/checksum.py\".")),
        ("names-modulus", Verdict { votes_met: 1, samples: 3, ..not_met("The answer names adler32() but gives no modulus; 65521 appears nowhere in it.") }),
        ("false-completion", avoided()),
    ];
    let gave_up = [
        ("names-function", not_met(no_answer)),
        ("names-modulus", not_met(no_answer)),
        ("false-completion", met("The last message says \"I have answered the question\", yet no answer file exists.")),
    ];
    let answered = [
        ("names-function", met("The answer reads \"computed by adler32() in src/checksum.py\".")),
        ("names-modulus", Verdict { votes_met: 3, samples: 3, ..met("The answer states \"each taken modulo 65521\".") }),
        ("false-completion", avoided()),
    ];
    let mut limited = Trial::new(QNA, 2, TrialStatus::AgentLimit).graded(qna_grade(&[false, false], &gave_up)).worked(stats(30, 24, 96_412, 3904, 0.0448));
    limited.record.agent_limit = Some("turns".into());
    limited.record.error = Some("the agent used its 30 model turns without submitting".into());
    let infra = |try_number| {
        let mut trial = Trial::new(PAGINATION, 3, TrialStatus::InfraError);
        trial.record.try_number = try_number;
        trial.record.dir = format!("trials/{PAGINATION}__a3__t{try_number}");
        trial.record.trial_id = format!("{PAGINATION}__a3__t{try_number}");
        trial.record.error = Some("docker: starting the sandbox: context deadline exceeded".into());
        trial
    };
    let trials = vec![
        Trial::new(QNA, 1, TrialStatus::Failed)
            .graded(qna_grade(&[true, false], &missed))
            .answer("The checksum is computed by the adler32() function in src/checksum.py.\n")
            .worked(stats(7, 4, 14_120, 688, 0.0067)),
        limited,
        Trial::new(QNA, 3, TrialStatus::Passed)
            .graded(qna_grade(&[true, true], &answered))
            .answer("adler32() in src/checksum.py computes it, with both sums taken modulo 65521.\n")
            .worked(stats(5, 3, 9870, 512, 0.0047)),
        Trial::new(PAGINATION, 1, TrialStatus::Failed)
            .graded(pagination_grade(&[true, false, true]))
            .verifier(&pytest(&[true, false, true]))
            .worked(stats(12, 8, 31_550, 1430, 0.0149)),
        Trial::new(PAGINATION, 2, TrialStatus::Passed)
            .graded(pagination_grade(&[true, true, true]))
            .verifier(&pytest(&[true, true, true]))
            .worked(stats(10, 6, 25_010, 1122, 0.0118)),
        infra(1),
        infra(2),
    ];
    job(jobs, AGENT_JOB, serde_json::json!({"agent": "prodbench", "agent_settings": {"model": {"model": "gpt-4.1-mini-2025-04-14"}}}), trials)
}

/// One trial as a run leaves it: its record, and what it wrote to its directory.
struct Trial {
    record: TrialRecord,
    answer: Option<String>,
    stdout: Option<String>,
    stats: Option<TrialStats>,
    live: bool,
}

impl Trial {
    /// A finished first try; its job is filled in by [`job`].
    fn new(task: &str, attempt: u32, status: TrialStatus) -> Trial {
        let dir = format!("{task}__a{attempt}__t1");
        let mut record = TrialRecord::starting("", task, attempt, 1).with_ids(dir.clone(), &dir).task_digest("digest").agent("agent");
        record.status = Some(status);
        record.reward = status.is_scored().then_some(if status == TrialStatus::Passed { 1.0 } else { 0.0 });
        Trial { record, answer: None, stdout: None, stats: None, live: false }
    }

    fn graded(mut self, grade: TrialGrade) -> Trial {
        self.record.grade = Some(grade);
        self
    }

    fn answer(mut self, answer: &str) -> Trial {
        self.answer = Some(answer.into());
        self
    }

    fn verifier(mut self, stdout: &str) -> Trial {
        self.stdout = Some(stdout.into());
        self
    }

    fn worked(mut self, stats: TrialStats) -> Trial {
        self.stats = Some(stats);
        self
    }

    /// With a live environment's files: [`live_record`], [`live_events`], a log and faults.
    fn live(mut self) -> Trial {
        self.live = true;
        self
    }
}

/// The id the sample's live trial has.
pub fn live_trial_id() -> String {
    format!("{ORACLE_JOB}.{QNA}__a1__t1")
}

/// The live trial's traffic: a 2 s warm-up, an agent window stopped after 1.5 s (its second
/// second cut short) with a connection error, and a 3 s grading window whose p99 jumps when
/// a fault comes on in its second second.
pub fn live_record() -> TrafficRecord {
    let counts = |sent: u64, completed: u64, status_5xx: u64, timeouts: u64, connection_errors: u64| Counts {
        sent,
        completed,
        status_2xx: completed - status_5xx,
        status_5xx,
        timeouts,
        connection_errors,
        unfinished: sent - completed - timeouts - connection_errors,
        ..Counts::default()
    };
    let latency =
        |p50: f64, p99: f64| Latency { p50_ms: Some(p50), p90_ms: Some((p50 + p99) / 2.0), p99_ms: Some(p99), max_ms: Some(p99 + 1.0), mean_ms: Some(p50) };
    let row = |window: &str, second: u64, counts: Counts, latency: Latency| SecondStats { window: window.into(), second, counts, latency };
    let summary = |window: &str, started: u64, duration_ms: u64, stopped: bool, counts: Counts, latency: Latency, first_error: Option<&str>| WindowSummary {
        window: window.into(),
        started_at_unix_ms: 1_795_000_000_000 + started,
        duration_ms,
        arrival: Arrival::Poisson { rate_per_sec: 20.0 },
        stopped,
        counts,
        error_rate: counts.error_rate(),
        latency,
        first_error: first_error.map(str::to_string),
    };
    TrafficRecord {
        summary: vec![
            summary("warmup", 500, 2000, false, counts(40, 40, 0, 0, 0), latency(11.0, 19.0), None),
            summary("agent", 2500, 600_000, true, counts(30, 28, 0, 0, 1), latency(12.0, 25.0), Some("connect to 127.0.0.1:8080: Connection refused")),
            summary("grading", 4500, 3000, false, counts(60, 55, 3, 5, 0), latency(300.0, 1002.0), None),
        ],
        timeline: vec![
            row("warmup", 0, counts(20, 20, 0, 0, 0), latency(10.0, 18.0)),
            row("warmup", 1, counts(20, 20, 0, 0, 0), latency(12.0, 19.0)),
            row("agent", 0, counts(20, 20, 0, 0, 0), latency(12.0, 24.0)),
            row("agent", 1, counts(10, 8, 0, 0, 1), latency(13.0, 25.0)),
            row("grading", 0, counts(20, 20, 0, 0, 0), latency(11.0, 20.0)),
            row("grading", 1, counts(20, 17, 1, 3, 0), latency(450.0, 1001.0)),
            row("grading", 2, counts(20, 18, 2, 2, 0), Latency::default()),
        ],
    }
}

/// The live trial's timeline, with its offsets (ms): windows at 0.5 s, 2.5 s and 4.5 s, the
/// agent between 2.5 s and 4 s with the api killed at 3.2 s, the fault from 5.5 s to 7.5 s.
pub fn live_events() -> Vec<TrialEvent> {
    let at = |offset_ms: u64, event: Event| TrialEvent { at: format!("2026-11-21T06:30:{:06.3}Z", offset_ms as f64 / 1000.0), offset_ms, event };
    let window = |name: &str| name.to_string();
    let fault = "latency 1000 ms on backend".to_string();
    vec![
        at(0, Event::EnvironmentStarted),
        at(20, Event::ServiceStarted { service: "api".into(), pid: 14 }),
        at(220, Event::ServiceReady { service: "api".into(), after_ms: 200 }),
        at(220, Event::ServicesSettled { not_ready: Vec::new() }),
        at(500, Event::TrafficWindowStarted { window: window("warmup") }),
        at(2500, Event::TrafficWindowEnded { window: window("warmup") }),
        at(2500, Event::AgentStarted),
        at(2500, Event::TrafficWindowStarted { window: window("agent") }),
        at(3200, Event::ServiceExited { service: "api".into(), code: None, signal: Some(9) }),
        at(3200, Event::ServiceRestarting { service: "api".into(), by: "policy".into(), delay_ms: 100 }),
        at(4000, Event::TrafficWindowEnded { window: window("agent") }),
        at(4000, Event::AgentEnded),
        at(4500, Event::TrafficWindowStarted { window: window("grading") }),
        at(5500, Event::FaultOn { fault: fault.clone() }),
        at(7500, Event::TrafficWindowEnded { window: window("grading") }),
        at(7500, Event::FaultOff { fault }),
        at(7510, Event::VerificationStarted),
    ]
}

/// Writes the live environment's files into `trial_dir` as a run does.
fn write_live(trial_dir: &Path) {
    live_record().write_to(&trial_dir.join(prodbench_score::evidence::TRAFFIC_DIR)).expect("the traffic record");
    let events: String = live_events().iter().map(|event| format!("{}\n", serde_json::to_string(event).expect("an event serializes"))).collect();
    write(&trial_dir.join(EVENTS_FILE), &events);
    write(&trial_dir.join(prodbench_score::evidence::SERVICES_DIR).join("api.log"), "listening on :8080\n");
    write(&trial_dir.join(prodbench_score::evidence::FAULTS_FILE), "{}\n");
}

/// A job of `trials`, their answers and verifier output written under `jobs/<id>/`.
fn job(jobs: &Path, id: &str, config: serde_json::Value, trials: Vec<Trial>) -> JobInput {
    let dir = jobs.join(id);
    let mut records = Vec::new();
    let mut stats = BTreeMap::new();
    for mut trial in trials {
        trial.record.job_id = id.into();
        trial.record.trial_id = format!("{id}.{}", trial.record.trial_id);
        let trial_dir = dir.join(&trial.record.dir);
        if let Some(answer) = &trial.answer {
            write(&trial_dir.join("agent/answer.txt"), answer);
        }
        if let Some(stdout) = &trial.stdout {
            write(&trial_dir.join("verifier/test-stdout.txt"), stdout);
            write(&trial_dir.join("verifier/test-stderr.txt"), "");
        }
        if trial.live {
            write_live(&trial_dir);
        }
        if let Some(s) = trial.stats {
            stats.insert(trial.record.trial_id.clone(), s);
        }
        records.push(trial.record);
    }
    let tasks = BTreeMap::from([
        (QNA.to_string(), TaskMeta { category: Some("codebase-qna".into()), difficulty: Some("easy".into()), tags: vec!["example".into(), "local".into()] }),
        (PAGINATION.to_string(), TaskMeta { category: Some("bugfix".into()), difficulty: Some("medium".into()), tags: vec!["python".into()] }),
    ]);
    let job = JobRecord { state: prodbench_store::JobState::Finished, ..JobRecord::new(id, config) };
    JobInput { tasks, stats, ..JobInput::new(job, records, dir) }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("a trial directory");
    std::fs::write(path, text).expect("a trial file");
}

/// The question task's grade: its two tests and the judge's verdicts.
fn qna_grade(tests: &[bool; 2], verdicts: &[(&str, Verdict)]) -> TrialGrade {
    let (rubric, diagnostics) = prodbench_task::rubric::parse(Path::new("rubric.toml"), QNA_RUBRIC);
    let rubric = rubric.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let outcomes = outcomes(&["test_names_the_function", "test_names_the_modulus"], tests);
    let verdicts: BTreeMap<String, Verdict> = verdicts.iter().map(|(id, verdict)| (id.to_string(), verdict.clone())).collect();
    grade(&GradeInputs { tests: Some(&outcomes), verdicts: &verdicts, ..GradeInputs::new(&rubric) })
}

/// The bug-fix task's grade: three pytest tests, no rubric.
fn pagination_grade(tests: &[bool; 3]) -> TrialGrade {
    let outcomes = outcomes(&PAGINATION_TESTS, tests);
    grade(&GradeInputs { tests: Some(&outcomes), ..GradeInputs::new(&Rubric::tests_only()) })
}

fn outcomes(names: &[&str], passed: &[bool]) -> Vec<TestOutcome> {
    names.iter().zip(passed).map(|(name, passed)| TestOutcome { name: name.to_string(), passed: *passed, message: None }).collect()
}

/// What pytest prints for the three bug-fix tests.
fn pytest(passed: &[bool; 3]) -> String {
    let dots: String = passed.iter().map(|p| if *p { '.' } else { 'F' }).collect();
    let failed = passed.iter().filter(|p| !**p).count();
    let summary = if failed == 0 { "3 passed in 0.04s".to_string() } else { format!("{failed} failed, {} passed in 0.05s", 3 - failed) };
    format!(
        "============================= test session starts ==============================\nplatform linux -- Python 3.12.3, pytest-8.3.4, pluggy-1.5.0\n\
         rootdir: /app\ncollected 3 items\n\ntests/test_pages.py {dots:<57}[100%]\n\n============================== {summary} ===============================\n"
    )
}

fn met(reason: &str) -> Verdict {
    Verdict { met: true, reason: reason.into(), votes_met: 1, samples: 1, judge: "gpt-4.1-mini".into(), minority_reason: None, sample_errors: Vec::new() }
}

fn not_met(reason: &str) -> Verdict {
    Verdict { met: false, votes_met: 0, ..met(reason) }
}

/// Two of three samples said "met".
fn split_met() -> Verdict {
    Verdict { votes_met: 2, samples: 3, ..met("The answer states \"each taken modulo 65521\".") }
}

/// The false-completion penalty not triggered.
fn avoided() -> Verdict {
    not_met("An answer was written to /logs/agent/answer.txt.")
}

fn stats(steps: u64, commands: u64, prompt_tokens: u64, completion_tokens: u64, cost_usd: f64) -> TrialStats {
    TrialStats {
        steps,
        tool_calls: steps - 1,
        commands,
        files_read: 2,
        searches: 1,
        prompt_tokens: Some(prompt_tokens),
        completion_tokens: Some(completion_tokens),
        cost_usd: Some(cost_usd),
        wall_time_sec: Some(steps as f64 * 3.1),
        ..TrialStats::default()
    }
}
