//! The judge with a real model: Qwen2.5-Coder-1.5B served offline by llama-server
//! (`scripts/setup-local-llm.sh --serve`), judging a labelled set of criterion/evidence
//! pairs (`fixtures/judge-labelled.json`). Prints the agreement rate with the labels and
//! writes it, item by item, to `target/tmp/judge-agreement.txt` (`.ci/run` shows that file);
//! docs/JUDGE-AGREEMENT.md records the measurements.
//!
//! Runs when `PRODBENCH_LOCAL_LLM_URL` names the server (e.g. `http://127.0.0.1:8099/v1`);
//! `PRODBENCH_REQUIRE_LOCAL_LLM=1` (set by `.ci/run`) makes its absence a failure. The model
//! is small and its replies vary between runs even at temperature 0, so the test asserts a
//! floor well above chance (every reply must also parse), not an exact score.

use std::time::Duration;

use prodbench_grade::judge::{Judge, JudgeEvidence};
use prodbench_grade::llm_judge::LlmJudge;
use prodbench_llm::{Client, ModelConfig, Protocol};
use prodbench_task::rubric::{Component, Criterion, EvidenceKind};

/// Agreement below this fails: chance is 0.5 on this balanced set, and the 1.5B model measured
/// 11/16 (docs/JUDGE-AGREEMENT.md); the margin absorbs its run-to-run variation.
const AGREEMENT_FLOOR: f64 = 0.6;

/// The alias `scripts/setup-local-llm.sh` serves the model under.
const JUDGE_MODEL: &str = "qwen2.5-coder-1.5b";

#[derive(serde::Deserialize)]
struct Labelled {
    claim: String,
    evidence: String,
    text: String,
    met: bool,
}

fn server_url() -> Option<String> {
    let url = std::env::var("PRODBENCH_LOCAL_LLM_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() && std::env::var("PRODBENCH_REQUIRE_LOCAL_LLM").as_deref() == Ok("1") {
        panic!("PRODBENCH_REQUIRE_LOCAL_LLM=1 but PRODBENCH_LOCAL_LLM_URL is not set: run scripts/setup-local-llm.sh --serve");
    }
    if url.is_none() {
        eprintln!("note: PRODBENCH_LOCAL_LLM_URL not set; skipping the real-model judge test");
    }
    url
}

fn case(item: &Labelled) -> (Criterion, JudgeEvidence) {
    let kind = match item.evidence.as_str() {
        "answer" => EvidenceKind::Answer,
        "diff" => EvidenceKind::Diff,
        "state" => EvidenceKind::State,
        "trajectory" => EvidenceKind::Trajectory,
        _ => EvidenceKind::Tests,
    };
    let criterion = Criterion {
        id: "c".into(),
        claim: item.claim.clone(),
        component: Component::Feature,
        weight: 1.0,
        points: None,
        evidence: vec![kind],
        must_pass: false,
    };
    let mut evidence = JudgeEvidence { instruction: "Complete the software engineering task.".into(), ..Default::default() };
    match kind {
        EvidenceKind::Answer => evidence.answer = Some(item.text.clone()),
        EvidenceKind::Diff => evidence.diff = item.text.clone(),
        EvidenceKind::State => evidence.state = [("probe".to_string(), item.text.clone())].into(),
        EvidenceKind::Trajectory => evidence.trajectory = item.text.clone(),
        EvidenceKind::Tests => evidence.tests = item.text.clone(),
    }
    (criterion, evidence)
}

#[tokio::test]
async fn a_real_local_model_agrees_with_the_labels() {
    let Some(url) = server_url() else { return };
    let items: Vec<Labelled> = serde_json::from_str(include_str!("fixtures/judge-labelled.json")).expect("labelled set");
    assert!(items.len() >= 12);
    let mut config = ModelConfig::new(Protocol::OpenAi, JUDGE_MODEL, url);
    config.temperature = Some(0.0);
    config.max_tokens = 256;
    config.request_timeout = Duration::from_secs(300);
    let judge = LlmJudge::new(Client::new(config), 1, None).with_evidence_budget(6000);
    let mut lines = Vec::new();
    // Agreements among the items labelled true, and among those labelled false.
    let mut agreed = [(0, 0), (0, 0)];
    for (i, item) in items.iter().enumerate() {
        let (criterion, evidence) = case(item);
        let verdict = judge.judge(&criterion, &evidence).await.unwrap_or_else(|e| panic!("item {i}: no verdict: {e}"));
        let ok = verdict.met == item.met;
        let class = &mut agreed[usize::from(!item.met)];
        *class = (class.0 + usize::from(ok), class.1 + 1);
        lines.push(format!("{} item {i:2} label {:5} judged {:5}: {}", if ok { "agree   " } else { "DISAGREE" }, item.met, verdict.met, verdict.reason));
    }
    let total = agreed[0].0 + agreed[1].0;
    let rate = total as f64 / items.len() as f64;
    lines.push(format!(
        "judge agreement with labels ({} {}): {total}/{} = {:.0}%; true labels judged true {}/{}, false labels judged false {}/{}",
        JUDGE_MODEL,
        prodbench_grade::judge::PROMPT_VERSION,
        items.len(),
        rate * 100.0,
        agreed[0].0,
        agreed[0].1,
        agreed[1].0,
        agreed[1].1
    ));
    let report = lines.join("\n") + "\n";
    print!("{report}");
    std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("judge-agreement.txt"), &report).expect("writing the agreement report");
    assert!(rate >= AGREEMENT_FLOOR, "agreement {rate:.2} is below {AGREEMENT_FLOOR}");
}
