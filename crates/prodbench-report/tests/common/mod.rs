//! The sample report the HTML tests render: two jobs built the way a run stores them (trial
//! records graded by the real grader, trajectory statistics, answers and test output on disk)
//! and turned into a report by [`build`], so the sample always has the report's current shape.
//!
//! It holds what the page must show: a priced agent (costs, tokens, steps, trajectory
//! statistics), judge reasons and claims, a split vote, an unjudged must-pass criterion (an
//! undecided trial whose status reads `passed`), a triggered penalty, a turn limit, an
//! infrastructure error retried into another, answers and pytest output.

use std::collections::BTreeMap;
use std::path::Path;

use prodbench_report::report::{JobInput, Report, TaskMeta, build};
use prodbench_score::score::{GradeInputs, TrialGrade, grade};
use prodbench_score::test_report::TestOutcome;
use prodbench_score::verdict::Verdict;
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
        Trial::new(QNA, 1, TrialStatus::Passed).graded(qna_grade(&[true, true], &all_met)).answer(answer),
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
}

impl Trial {
    /// A finished first try; its job is filled in by [`job`].
    fn new(task: &str, attempt: u32, status: TrialStatus) -> Trial {
        let dir = format!("{task}__a{attempt}__t1");
        let mut record = TrialRecord::starting("", task, attempt, 1).with_ids(dir.clone(), &dir).task_digest("digest").agent("agent");
        record.status = Some(status);
        record.reward = status.is_scored().then_some(if status == TrialStatus::Passed { 1.0 } else { 0.0 });
        Trial { record, answer: None, stdout: None, stats: None }
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
