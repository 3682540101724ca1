//! The [`Judge`] over a real model API (OpenAI-compatible chat completions or Anthropic
//! Messages, through `prodbench-llm`).
//!
//! - Structured output: the reply's JSON schema is sent with the request, and the reply is
//!   still parsed leniently ([`parse_reply`]), since not every server enforces schemas. A
//!   reply that cannot be read is answered once or twice with the parse error, then the
//!   criterion is left ungraded.
//! - Majority vote: with `samples > 1` the criterion is judged that many times; ties count
//!   as not met (the claim was not shown). The vote, and a reason from the losing side, are
//!   recorded in the verdict. A sample that fails (no readable reply, a model error) does
//!   not sink the vote: the others decide, and the failures are recorded with the verdict.
//!   The criterion is ungraded only when every sample failed.
//! - Cache: verdicts are kept by a digest of (prompt version, model, samples, the full
//!   prompt). The prompt holds the criterion and all the evidence it is judged on, so the
//!   same criterion on the same evidence by the same judge is never paid for twice. A vote
//!   that lost samples is not cached: the next run or regrade takes the full vote.
//! - Transport retries (429, 5xx, timeouts) are the client's, with backoff.

use std::sync::Arc;

use async_trait::async_trait;
use prodbench_llm::{ChatRequest, Client, JsonSchema, Message};
use prodbench_task::rubric::Criterion;
use sha2::{Digest, Sha256};

use prodbench_score::verdict::{Verdict, VerdictCache};

use crate::judge::{DEFAULT_EVIDENCE_BUDGET, Judge, JudgeEvidence, PROMPT_VERSION, SYSTEM_PROMPT, parse_reply, prompt, reply_schema};

/// Times an unreadable reply is answered with its parse error before giving up.
const FORMAT_RETRIES: u32 = 2;

pub struct LlmJudge {
    client: Client,
    samples: u32,
    cache: Option<Arc<dyn VerdictCache>>,
    /// Characters of evidence per prompt (the model's context window decides).
    evidence_budget: usize,
}

impl LlmJudge {
    pub fn new(client: Client, samples: u32, cache: Option<Arc<dyn VerdictCache>>) -> Self {
        LlmJudge { client, samples: samples.max(1), cache, evidence_budget: DEFAULT_EVIDENCE_BUDGET }
    }

    /// Prompts hold at most `chars` characters of evidence (default [`DEFAULT_EVIDENCE_BUDGET`]).
    pub fn with_evidence_budget(mut self, chars: usize) -> Self {
        self.evidence_budget = chars;
        self
    }

    fn cache_key(&self, user_prompt: &str) -> String {
        let mut hasher = Sha256::new();
        for part in [PROMPT_VERSION, &self.client.config().model, &self.samples.to_string(), SYSTEM_PROMPT, user_prompt] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        format!("{:x}", hasher.finalize())
    }

    /// One judgement: the reply's (met, reason).
    async fn sample(&self, user_prompt: &str) -> Result<(bool, String), String> {
        let mut messages = vec![Message::User(user_prompt.to_string())];
        let mut last_error = String::new();
        for _ in 0..=FORMAT_RETRIES {
            let request = ChatRequest {
                system: Some(SYSTEM_PROMPT.to_string()),
                messages: messages.clone(),
                tools: Vec::new(),
                json_schema: Some(JsonSchema { name: "verdict".into(), schema: reply_schema() }),
            };
            let response = self.client.chat(&request).await.map_err(|e| format!("judge model: {e}"))?;
            let text = response.text.unwrap_or_default();
            match parse_reply(&text) {
                Ok(reply) => return Ok(reply),
                Err(error) => {
                    messages.push(Message::Assistant { text: Some(text), tool_calls: Vec::new() });
                    messages.push(Message::User(format!(
                        "That reply could not be read ({error}). Reply with only the JSON object {{\"reason\": \"...\", \"met\": true or false}}."
                    )));
                    last_error = error;
                }
            }
        }
        Err(format!("no readable reply after {} tries: {last_error}", FORMAT_RETRIES + 1))
    }
}

#[async_trait]
impl Judge for LlmJudge {
    fn model(&self) -> &str {
        &self.client.config().model
    }

    async fn judge(&self, criterion: &Criterion, evidence: &JudgeEvidence) -> Result<Verdict, String> {
        let user_prompt = prompt(criterion, evidence, self.evidence_budget);
        let key = self.cache_key(&user_prompt);
        if let Some(verdict) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(verdict);
        }
        let (mut votes, mut errors) = (Vec::new(), Vec::new());
        for _ in 0..self.samples {
            match self.sample(&user_prompt).await {
                Ok(vote) => votes.push(vote),
                Err(error) => errors.push(error),
            }
        }
        if votes.is_empty() {
            return Err(every_sample_failed(errors));
        }
        let verdict = tally(&votes, errors, self.model());
        if let Some(cache) = self.cache.as_ref().filter(|_| verdict.sample_errors.is_empty()) {
            cache.put(&key, &verdict);
        }
        Ok(verdict)
    }
}

/// The majority of `votes` (a tie is not met), with a reason from each side and the
/// errors of the samples that did not vote.
fn tally(votes: &[(bool, String)], sample_errors: Vec<String>, judge: &str) -> Verdict {
    let votes_met = votes.iter().filter(|(met, _)| *met).count() as u32;
    let samples = votes.len() as u32;
    let met = votes_met * 2 > samples;
    let reason_for = |side: bool| votes.iter().find(|(m, _)| *m == side).map(|(_, r)| r.clone());
    Verdict { met, reason: reason_for(met).unwrap_or_default(), votes_met, samples, judge: judge.to_string(), minority_reason: reason_for(!met), sample_errors }
}

fn every_sample_failed(mut errors: Vec<String>) -> String {
    match errors.len() {
        1 => errors.remove(0),
        n => format!("all {n} samples failed; the first: {}", errors[0]),
    }
}
