//! The judge's `tests` evidence, made stable across re-runs of the same tests.
//!
//! A regrade runs the tests again, and the judge's verdict cache is keyed by the prompt. Raw
//! test output is rarely byte-identical twice (`3 passed in 0.42s`, `--- PASS: TestX
//! (0.01s)`, log timestamps), so pasting it verbatim would make every regrade pay the judge
//! again although nothing changed. The evidence is therefore the rewards, each test's
//! result with the first line of its message, and the output with every timing (a number
//! with a time unit, a clock time, a date) replaced by `#`. The same results with other
//! timings give the same text; different results give a different text and are judged again.

use prodbench_score::test_report::TestOutcome;

use crate::Verification;

/// Units after which a number is a duration (followed by no letter or digit).
const TIME_UNITS: [&str; 15] = ["ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute", "minutes", "h"];

/// The `tests` evidence: the rewards, each test's result, and the test output, timings
/// normalised.
pub fn render(verification: &Verification, tests: Option<&[TestOutcome]>) -> String {
    let rewards = &verification.rewards;
    let mut text = format!("reward: {} (from {})\n", rewards.reward, rewards.source);
    for (key, value) in rewards.values.iter().filter(|(key, _)| *key != "reward") {
        text.push_str(&format!("reward {key}: {value}\n"));
    }
    for test in tests.into_iter().flatten() {
        let status = if test.passed { "PASS" } else { "FAIL" };
        let message = test.message.as_deref().map(|m| format!(": {}", normalise_timings(m))).unwrap_or_default();
        text.push_str(&format!("{status} {}{message}\n", test.name));
    }
    let output = &verification.test_output;
    text.push_str(&format!("test output:\n{}", normalise_timings(&format!("{}{}", output.stdout, output.stderr))));
    text
}

/// `text` with every timing replaced by `#` (a duration keeps its unit: `in #s`).
pub fn normalise_timings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let starts_a_number = c.is_ascii_digit() && !prev.is_some_and(|p| p.is_alphanumeric() || "_.:-".contains(p));
        let timing = if starts_a_number { timing_len(rest) } else { None };
        if let Some(len) = timing {
            out.push('#');
            rest = &rest[len..];
            prev = Some('#');
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        prev = Some(c);
    }
    out
}

/// Bytes of the timing `text` starts with: a date (with its time of day, if any), a clock
/// time, or a number followed by a time unit (the unit not counted).
fn timing_len(text: &str) -> Option<usize> {
    if let Some(date) = date_len(text) {
        let time = text[date..].strip_prefix(['T', ' ']).and_then(clock_len).map_or(0, |len| len + 1);
        return Some(date + time);
    }
    clock_len(text).or_else(|| duration_len(text))
}

fn digits(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

/// `YYYY-MM-DD`.
fn date_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let shape = digits(text) == 4 && b.get(4) == Some(&b'-') && digits(&text[5..]) == 2 && b.get(7) == Some(&b'-') && digits(&text[8..]) == 2;
    shape.then_some(10)
}

/// `H:MM:SS` or `HH:MM:SS`, with an optional fraction of a second (`.123` or `,123`).
fn clock_len(text: &str) -> Option<usize> {
    let hours = digits(text);
    if !(1..=2).contains(&hours) {
        return None;
    }
    let mut len = hours;
    for _ in 0..2 {
        if !text[len..].starts_with(':') || digits(&text[len + 1..]) != 2 {
            return None;
        }
        len += 3;
    }
    Some(len + fraction_len(&text[len..], b".,"))
}

/// A number (`12`, `0.42`) followed, after at most one space, by a time unit.
fn duration_len(text: &str) -> Option<usize> {
    let number = digits(text);
    let len = number + fraction_len(&text[number..], b".");
    let after = &text[len..];
    let after = after.strip_prefix(' ').unwrap_or(after);
    let is_unit = |unit: &&str| after.starts_with(unit) && !after[unit.len()..].starts_with(|c: char| c.is_alphanumeric());
    TIME_UNITS.iter().any(is_unit).then_some(len)
}

/// `.123` (one of `separators`, then digits) at the start of `text`, or 0.
fn fraction_len(text: &str, separators: &[u8]) -> usize {
    match text.as_bytes().first() {
        Some(c) if separators.contains(c) && digits(&text[1..]) > 0 => 1 + digits(&text[1..]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use prodbench_sandbox::ExecOutput;
    use prodbench_score::reward::Rewards;

    use super::*;

    fn verification(stdout: &str) -> Verification {
        Verification {
            rewards: Rewards { reward: 0.5, values: BTreeMap::from([("reward".into(), 0.5), ("latency_ok".into(), 1.0)]), source: "reward.json".into() },
            test_output: ExecOutput {
                stdout: stdout.into(),
                stderr: String::new(),
                exit_code: Some(1),
                timed_out: false,
                truncated_bytes: 0,
                duration: Duration::from_secs(3),
            },
        }
    }

    #[test]
    fn verifications_differing_only_in_timings_give_the_same_evidence() {
        let tests = [
            TestOutcome { name: "test_add".into(), passed: true, message: None },
            TestOutcome { name: "test_slow".into(), passed: false, message: Some("timed out after 5.02s".into()) },
        ];
        let first = "2024-05-01 12:00:01,123 INFO start\ntests/test_api.py:12: AssertionError\n=== 1 failed, 1 passed in 0.42s ===\n--- PASS: TestX (0.01s)\nTime: 1.234 s\nDuration 00:00:07.31\n";
        let again = "2024-06-30T09:15:59.9 INFO start\ntests/test_api.py:12: AssertionError\n=== 1 failed, 1 passed in 12.07s ===\n--- PASS: TestX (0.31s)\nTime: 9.8 s\nDuration 00:01:02.00\n";
        let slower = [tests[0].clone(), TestOutcome { message: Some("timed out after 6.9s".into()), ..tests[1].clone() }];
        let a = render(&verification(first), Some(&tests));
        assert_eq!(a, render(&verification(again), Some(&slower)));
        assert!(a.contains("reward: 0.5 (from reward.json)\nreward latency_ok: 1\nPASS test_add\nFAIL test_slow: timed out after #s\n"), "{a}");
        assert!(a.contains("test_api.py:12: AssertionError\n=== 1 failed, 1 passed in #s ===\n--- PASS: TestX (#s)\n"), "{a}");
        let other_results = render(&verification(&first.replace("1 failed, 1 passed", "2 passed")), Some(&tests));
        assert_ne!(a, other_results, "changed results are new evidence");
    }

    #[test]
    fn only_timings_are_normalised() {
        assert_eq!(normalise_timings("3 passed, 2 skipped in 1m"), "3 passed, 2 skipped in #m");
        assert_eq!(normalise_timings("took 250ms; 250 items; test_5s ok; v1.2s; line 10:12:13"), "took #ms; 250 items; test_5s ok; v1.2s; line #");
        assert_eq!(normalise_timings("file.py:10:12:13 x"), "file.py:10:12:13 x");
        assert_eq!(normalise_timings("µ 7 seconds, 7 sectors"), "µ # seconds, 7 sectors");
    }
}
