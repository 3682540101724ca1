//! The LLM judge against a scripted model server: structured output on both protocols,
//! malformed replies answered and retried, 429/500/slow replies retried by the client, a
//! majority vote, and the verdict cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prodbench_grade::judge::{Judge, JudgeEvidence};
use prodbench_grade::llm_judge::LlmJudge;
use prodbench_llm::scripted::{Reply, ScriptedServer};
use prodbench_llm::{Client, ModelConfig, Protocol};
use prodbench_score::verdict::{Verdict, VerdictCache};
use prodbench_task::rubric::{Component, Criterion, EvidenceKind};

fn criterion() -> Criterion {
    Criterion {
        id: "names-function".into(),
        claim: "The answer names adler32 as the checksum function.".into(),
        component: Component::Feature,
        weight: 1.0,
        points: None,
        evidence: vec![EvidenceKind::Answer],
        must_pass: true,
    }
}

fn evidence(answer: &str) -> JudgeEvidence {
    JudgeEvidence { instruction: "Which function computes the checksum?".into(), answer: Some(answer.into()), ..Default::default() }
}

fn judge(server: &ScriptedServer, protocol: Protocol, samples: u32, cache: Option<Arc<dyn VerdictCache>>) -> LlmJudge {
    let mut config = ModelConfig::new(protocol, "judge-model", server.url());
    config.retry_base = Duration::from_millis(5);
    config.request_timeout = Duration::from_millis(500);
    LlmJudge::new(Client::new(config), samples, cache)
}

fn verdict_json(met: bool) -> String {
    format!(r#"{{"reason": "the answer says \"adler32\"", "met": {met}}}"#)
}

#[tokio::test]
async fn openai_structured_reply_is_a_verdict() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText(verdict_json(true))]).await;
    let verdict = judge(&server, Protocol::OpenAi, 1, None).judge(&criterion(), &evidence("adler32")).await.unwrap();
    assert_eq!((verdict.met, verdict.votes_met, verdict.samples, verdict.judge.as_str()), (true, 1, 1, "judge-model"));
    assert!(verdict.reason.contains("adler32"));
    let request = &server.requests()[0];
    assert_eq!(request.body["response_format"]["type"], "json_schema");
    let prompt = request.body["messages"].to_string();
    assert!(prompt.contains("names adler32") && prompt.contains("The agent's final answer"), "{prompt}");
}

#[tokio::test]
async fn anthropic_forced_tool_reply_is_a_verdict() {
    let reply = Reply::AnthropicToolUse(vec![("respond".into(), serde_json::json!({"reason": "no answer", "met": false}))]);
    let server = ScriptedServer::start(vec![reply]).await;
    let verdict = judge(&server, Protocol::Anthropic, 1, None).judge(&criterion(), &evidence("")).await.unwrap();
    assert!(!verdict.met);
    assert_eq!(server.requests()[0].body["tool_choice"]["name"], "respond");
}

#[tokio::test]
async fn a_malformed_reply_is_answered_and_retried() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText("I think it is fine.".into()), Reply::OpenAiText(verdict_json(true))]).await;
    let verdict = judge(&server, Protocol::OpenAi, 1, None).judge(&criterion(), &evidence("adler32")).await.unwrap();
    assert!(verdict.met);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].body["messages"].to_string().contains("could not be read"), "the parse error goes back to the model");
}

#[tokio::test]
async fn always_malformed_leaves_the_criterion_ungraded() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText("yes".into())]).await;
    let error = judge(&server, Protocol::OpenAi, 1, None).judge(&criterion(), &evidence("adler32")).await.unwrap_err();
    assert!(error.contains("no readable reply after 3 tries"), "{error}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn rate_limits_server_errors_and_slow_replies_are_retried() {
    let script = vec![
        Reply::Status { status: 429, body: r#"{"error": "slow down"}"#.into(), retry_after: None },
        Reply::Status { status: 500, body: r#"{"error": "boom"}"#.into(), retry_after: None },
        Reply::Delay(Duration::from_secs(2), Box::new(Reply::OpenAiText(verdict_json(false)))),
        Reply::OpenAiText(verdict_json(true)),
    ];
    let server = ScriptedServer::start(script).await;
    let verdict = judge(&server, Protocol::OpenAi, 1, None).judge(&criterion(), &evidence("adler32")).await.unwrap();
    assert!(verdict.met, "the slow reply timed out and the next one decided");
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_majority_vote_records_the_split() {
    let script = vec![Reply::OpenAiText(verdict_json(true)), Reply::OpenAiText(verdict_json(false)), Reply::OpenAiText(verdict_json(true))];
    let server = ScriptedServer::start(script).await;
    let verdict = judge(&server, Protocol::OpenAi, 3, None).judge(&criterion(), &evidence("adler32")).await.unwrap();
    assert_eq!((verdict.met, verdict.votes_met, verdict.samples), (true, 2, 3));
    assert_eq!(verdict.minority_reason.as_deref(), Some("the answer says \"adler32\""), "the losing side's reason is kept");
}

#[tokio::test]
async fn a_failed_sample_leaves_the_vote_to_the_others() {
    let rejected = Reply::Status { status: 400, body: r#"{"error": "bad request"}"#.into(), retry_after: None };
    let dissent = Reply::OpenAiText(r#"{"reason": "no modulus is named", "met": false}"#.into());
    let script = vec![Reply::OpenAiText(verdict_json(true)), rejected, dissent, Reply::OpenAiText(verdict_json(true))];
    let server = ScriptedServer::start(script).await;
    let cache = Arc::new(MemoryCache::default());
    let judge = judge(&server, Protocol::OpenAi, 4, Some(cache.clone()));
    let verdict = judge.judge(&criterion(), &evidence("adler32")).await.unwrap();
    assert_eq!((verdict.met, verdict.votes_met, verdict.samples), (true, 2, 3), "{verdict:?}");
    assert_eq!(verdict.minority_reason.as_deref(), Some("no modulus is named"));
    assert_eq!(verdict.sample_errors.len(), 1);
    assert!(verdict.sample_errors[0].contains("400"), "{:?}", verdict.sample_errors);
    assert!(cache.0.lock().unwrap().is_empty(), "a vote that lost samples is not cached");

    let all_failing = ScriptedServer::start(vec![Reply::OpenAiText("no json".into())]).await;
    let error = self::judge(&all_failing, Protocol::OpenAi, 2, None).judge(&criterion(), &evidence("adler32")).await.unwrap_err();
    assert!(error.starts_with("all 2 samples failed; the first: no readable reply"), "{error}");
}

#[tokio::test]
async fn the_evidence_budget_bounds_the_prompt() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText(verdict_json(true))]).await;
    let long_answer = "adler32 ".repeat(10_000);
    judge(&server, Protocol::OpenAi, 1, None).with_evidence_budget(2_000).judge(&criterion(), &evidence(&long_answer)).await.unwrap();
    judge(&server, Protocol::OpenAi, 1, None).judge(&criterion(), &evidence(&long_answer)).await.unwrap();
    let sizes: Vec<usize> = server.requests().iter().map(|r| r.body["messages"].to_string().len()).collect();
    assert!(sizes[0] < 4_000, "2,000 characters of evidence, the system prompt and the framing: {sizes:?}");
    assert!(sizes[1] > 24_000, "the default budget: {sizes:?}");
}

#[derive(Default)]
struct MemoryCache(Mutex<HashMap<String, Verdict>>);

impl VerdictCache for MemoryCache {
    fn get(&self, key: &str) -> Option<Verdict> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn put(&self, key: &str, verdict: &Verdict) {
        self.0.lock().unwrap().insert(key.into(), verdict.clone());
    }
}

#[tokio::test]
async fn unchanged_evidence_is_never_judged_twice() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText(verdict_json(true))]).await;
    let cache: Arc<dyn VerdictCache> = Arc::new(MemoryCache::default());
    let judge = judge(&server, Protocol::OpenAi, 1, Some(cache));
    judge.judge(&criterion(), &evidence("adler32")).await.unwrap();
    judge.judge(&criterion(), &evidence("adler32")).await.unwrap();
    assert_eq!(server.requests().len(), 1, "the second judgement came from the cache");
    judge.judge(&criterion(), &evidence("crc32")).await.unwrap();
    assert_eq!(server.requests().len(), 2, "changed evidence is judged again");
}
