//! Per-test results the tests may write next to the reward, so that each test can count
//! toward its own component: CTRF (`/logs/verifier/ctrf.json`, the Common Test Report
//! Format that pytest-json-ctrf, jest-ctrf and others write) or JUnit XML
//! (`/logs/verifier/junit.xml`, what nearly every runner can write).
//!
//! A report is optional. One that exists but cannot be read is an error, never silently
//! ignored: the grade would otherwise fall back to the single reward without anyone knowing.

use std::path::Path;

pub const CTRF_FILE: &str = "ctrf.json";
pub const JUNIT_FILE: &str = "junit.xml";

/// Characters kept of a test's message (its first line).
const MESSAGE_CHARS: usize = 200;

/// One test's outcome. Skipped tests are left out: they neither pass nor fail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestOutcome {
    pub name: String,
    pub passed: bool,
    /// The first line of the report's message for the test (why it failed, usually).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The first non-empty line of a report's message, cut to [`MESSAGE_CHARS`].
fn short_message(text: Option<&str>) -> Option<String> {
    let line = text?.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(MESSAGE_CHARS).collect())
}

/// Reads the per-test report from a downloaded `/logs/verifier`, CTRF first. `Ok(None)` when
/// the tests wrote none.
pub fn read_test_report(dir: &Path) -> Result<Option<Vec<TestOutcome>>, String> {
    let ctrf = dir.join(CTRF_FILE);
    if ctrf.is_file() {
        let text = std::fs::read_to_string(&ctrf).map_err(|e| format!("{CTRF_FILE}: {e}"))?;
        return parse_ctrf(&text).map(Some).map_err(|e| format!("{CTRF_FILE}: {e}"));
    }
    let junit = dir.join(JUNIT_FILE);
    if junit.is_file() {
        let text = std::fs::read_to_string(&junit).map_err(|e| format!("{JUNIT_FILE}: {e}"))?;
        return parse_junit(&text).map(Some).map_err(|e| format!("{JUNIT_FILE}: {e}"));
    }
    Ok(None)
}

/// `{"results": {"tests": [{"name": ..., "status": "passed" | "failed" | "skipped" | "pending" | "other", "message": ...}]}}`.
pub fn parse_ctrf(text: &str) -> Result<Vec<TestOutcome>, String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let tests = doc.pointer("/results/tests").and_then(|t| t.as_array()).ok_or("expected results.tests, an array")?;
    let mut outcomes = Vec::new();
    for (i, test) in tests.iter().enumerate() {
        let name = test.get("name").and_then(|n| n.as_str()).ok_or_else(|| format!("results.tests[{i}] has no name"))?;
        let status = test.get("status").and_then(|s| s.as_str()).ok_or_else(|| format!("results.tests[{i}] ({name}) has no status"))?;
        let message = short_message(test.get("message").and_then(|m| m.as_str()));
        match status {
            "passed" => outcomes.push(TestOutcome { name: name.into(), passed: true, message }),
            "failed" | "other" => outcomes.push(TestOutcome { name: name.into(), passed: false, message }),
            "skipped" | "pending" => {}
            other => return Err(format!("results.tests[{i}] ({name}): unknown status {other:?}")),
        }
    }
    Ok(outcomes)
}

/// `<testsuite(s)>` with `<testcase name=".." classname="..">`; a `<failure>` or `<error>`
/// child fails it (its `message`, else its text, is the test's message), `<skipped>` leaves
/// it out. Names are `classname::name` when a classname is given, as pytest reports them.
pub fn parse_junit(text: &str) -> Result<Vec<TestOutcome>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))?;
    let mut outcomes = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let name = case.attribute("name").ok_or("a <testcase> has no name attribute")?;
        let full = match case.attribute("classname").filter(|c| !c.is_empty()) {
            Some(class) => format!("{class}::{name}"),
            None => name.to_string(),
        };
        if case.children().any(|c| c.has_tag_name("skipped")) {
            continue;
        }
        let failure = case.children().find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let message = failure.and_then(|f| short_message(f.attribute("message").or(f.text())));
        outcomes.push(TestOutcome { name: full, passed: failure.is_none(), message });
    }
    if outcomes.is_empty() && !doc.descendants().any(|n| n.has_tag_name("testsuite") || n.has_tag_name("testsuites")) {
        return Err("no <testsuite> element".into());
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrf_statuses_map_to_outcomes() {
        let text = r#"{"results": {"tool": {"name": "pytest"}, "tests": [
            {"name": "test_a", "status": "passed", "duration": 1},
            {"name": "test_b", "status": "failed", "message": "\nAssertionError: 1 != 2\n  at line 3"},
            {"name": "test_c", "status": "skipped"},
            {"name": "test_d", "status": "other"}]}}"#;
        let outcomes = parse_ctrf(text).unwrap();
        let summary: Vec<(&str, bool)> = outcomes.iter().map(|o| (o.name.as_str(), o.passed)).collect();
        assert_eq!(summary, vec![("test_a", true), ("test_b", false), ("test_d", false)]);
        assert_eq!(outcomes[1].message.as_deref(), Some("AssertionError: 1 != 2"), "the first line of the message");
    }

    #[test]
    fn ctrf_errors_say_what_is_wrong() {
        assert!(parse_ctrf("{}").unwrap_err().contains("results.tests"));
        assert!(parse_ctrf(r#"{"results": {"tests": [{"name": "x", "status": "great"}]}}"#).unwrap_err().contains("unknown status \"great\""));
    }

    #[test]
    fn junit_failures_errors_and_skips() {
        let text = r#"<?xml version="1.0"?>
<testsuites><testsuite name="s">
  <testcase classname="tests.test_api" name="test_ok" time="0.1"/>
  <testcase classname="tests.test_api" name="test_bad"><failure message="boom">trace</failure></testcase>
  <testcase name="test_crash"><error/></testcase>
  <testcase name="test_later"><skipped/></testcase>
</testsuite></testsuites>"#;
        let outcomes = parse_junit(text).unwrap();
        let summary: Vec<(&str, bool)> = outcomes.iter().map(|o| (o.name.as_str(), o.passed)).collect();
        assert_eq!(summary, vec![("tests.test_api::test_ok", true), ("tests.test_api::test_bad", false), ("test_crash", false)]);
        let messages: Vec<Option<&str>> = outcomes.iter().map(|o| o.message.as_deref()).collect();
        assert_eq!(messages, vec![None, Some("boom"), None]);
        assert!(parse_junit("<html/>").is_err());
        assert!(parse_junit("not xml").unwrap_err().starts_with("not XML"));
    }
}
