//! Bounded retry: exponential backoff with full jitter, `Retry-After`, and two caps.
//!
//! Full jitter (a uniform wait in `[0, ceiling]`) spreads out the many judge
//! calls a benchmark fires at once, so they do not hit a recovering endpoint
//! in lockstep. A server's `Retry-After` wins over the computed backoff since
//! it knows when capacity returns. Attempts and total wall time are both
//! capped so a dead endpoint fails the call instead of stalling the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::ModelConfig;

/// Largest computed backoff.
const CAP: Duration = Duration::from_secs(20);

/// When to try again, derived from a [`ModelConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    max_attempts: u32,
    budget: Duration,
    base: Duration,
}

impl RetryPolicy {
    pub(crate) fn new(config: &ModelConfig) -> Self {
        Self { max_attempts: config.max_attempts.max(1), budget: config.retry_budget, base: config.retry_base }
    }

    /// The wait before the next attempt after `attempts` retryable failures
    /// spanning `elapsed`, or `None` to give up: attempts are used up, or the
    /// wait would end past the budget. `retry_after` is the server's hint.
    pub(crate) fn next_delay(&self, attempts: u32, elapsed: Duration, retry_after: Option<Duration>) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = retry_after.unwrap_or_else(|| full_jitter(self.ceiling(attempts)));
        (elapsed.saturating_add(delay) <= self.budget).then_some(delay)
    }

    /// Upper bound of the backoff after `attempts` failures: `base * 2^(attempts-1)`, capped.
    fn ceiling(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.base.saturating_mul(factor).min(CAP)
    }
}

/// The `Retry-After` header as a delay, when it is a number of seconds
/// (the HTTP-date form is not supported and yields `None`).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// A uniformly random duration in `[0, max]`.
fn full_jitter(max: Duration) -> Duration {
    max.mul_f64(unit_random())
}

/// A float in `[0, 1)` from the clock and a counter, mixed by splitmix64.
/// Plenty for jitter; not for anything needing real randomness.
fn unit_random() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let seed = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::Protocol;

    fn policy(max_attempts: u32, budget_ms: u64, base_ms: u64) -> RetryPolicy {
        let mut config = ModelConfig::new(Protocol::OpenAi, "m", "http://x");
        config.max_attempts = max_attempts;
        config.retry_budget = Duration::from_millis(budget_ms);
        config.retry_base = Duration::from_millis(base_ms);
        RetryPolicy::new(&config)
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = policy(10, 1_000_000, 500);
        let ceilings: Vec<u64> = (1..=8).map(|n| p.ceiling(n).as_millis() as u64).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000]);
        assert_eq!(p.ceiling(u32::MAX), CAP);
    }

    #[test]
    fn jittered_delays_stay_within_the_ceiling_and_vary() {
        let p = policy(10, 1_000_000, 1000);
        let delays: Vec<Duration> = (0..50).map(|_| p.next_delay(3, Duration::ZERO, None).unwrap()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(4)));
        assert!(delays.iter().any(|d| *d != delays[0]), "jitter should vary");
    }

    #[test]
    fn attempts_are_bounded() {
        let p = policy(3, 1_000_000, 1);
        assert!(p.next_delay(2, Duration::ZERO, None).is_some());
        assert!(p.next_delay(3, Duration::ZERO, None).is_none());
        assert!(policy(0, 1_000_000, 1).next_delay(1, Duration::ZERO, None).is_none());
    }

    #[test]
    fn budget_is_bounded_and_retry_after_wins() {
        let p = policy(10, 1000, 1);
        let hint = Some(Duration::from_millis(300));
        assert_eq!(p.next_delay(1, Duration::from_millis(600), hint), hint);
        assert_eq!(p.next_delay(1, Duration::from_millis(800), hint), None);
        assert_eq!(p.next_delay(1, Duration::from_millis(1001), None), None);
    }

    #[test]
    fn retry_after_header_parses_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        for (value, expected) in [
            ("3", Some(Duration::from_secs(3))),
            (" 1.5 ", Some(Duration::from_millis(1500))),
            ("-1", None),
            ("1e400", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ] {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
            assert_eq!(retry_after(&headers), expected, "{value}");
        }
    }
}
