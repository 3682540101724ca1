//! The schedule: every request a window will send, when, and with which path, derived from
//! the seed alone.
//!
//! Nothing here looks at a response, so the sequence is fixed before the first request goes
//! out: the same seed gives the same sends whatever the server does, and two runs of a task
//! load their services identically. It is an iterator rather than a list so that a long
//! window costs no memory up front; that changes when it is computed, not what it is.
//!
//! Each window draws from two streams of its own (named by the window): one for send times,
//! one for request choice and path values. So a window's rate can change without changing
//! which requests it sends, and adding a window changes no other window's traffic.

use std::time::Duration;

use crate::plan::{Arrival, CheckedWindow, Request};
use crate::rng::Rng;

const ARRIVALS: u8 = 0;
const CONTENT: u8 = 1;

/// One request of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scheduled {
    /// From the window's start.
    pub(crate) at: Duration,
    /// Index into the window's mix.
    pub(crate) request: usize,
    pub(crate) path: String,
}

pub(crate) fn schedule(seed: u64, window: &CheckedWindow) -> impl Iterator<Item = Scheduled> + '_ {
    let mut content = Rng::stream(seed, &window.name, CONTENT);
    let total_weight: u64 = window.mix.iter().map(|request| u64::from(request.weight)).sum();
    arrivals(window.arrival, window.duration, Rng::stream(seed, &window.name, ARRIVALS)).map(move |at| {
        let request = pick(&window.mix, content.below(total_weight));
        let path = window.mix[request].path.render(&mut content);
        Scheduled { at, request, path }
    })
}

/// Send times from the window's start, all before `duration`.
fn arrivals(arrival: Arrival, duration: Duration, mut rng: Rng) -> impl Iterator<Item = Duration> {
    let end = duration.as_secs_f64();
    let (mut count, mut time) = (0u64, 0.0);
    std::iter::from_fn(move || {
        time = match arrival {
            Arrival::Constant { rate_per_sec } => count as f64 / rate_per_sec,
            // Inverse transform: -ln(U) is exponential with mean 1 (1 - unit() is in (0, 1]).
            Arrival::Poisson { rate_per_sec } => time - (1.0 - rng.unit()).ln() / rate_per_sec,
        };
        count += 1;
        (time < end).then(|| Duration::from_secs_f64(time))
    })
    .fuse()
}

/// The request whose cumulative weight range holds `ticket` (in `0..total weight`).
fn pick(mix: &[Request], mut ticket: u64) -> usize {
    for (index, request) in mix.iter().enumerate() {
        match ticket.checked_sub(u64::from(request.weight)) {
            Some(rest) => ticket = rest,
            None => return index,
        }
    }
    mix.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{plan, window};
    use crate::plan::{CheckedPlan, check};

    fn checked(arrival: Arrival, secs: u64, seed: u64) -> CheckedPlan {
        let mut plan = plan(arrival, vec![window("agent", secs)]);
        plan.seed = seed;
        check(&plan).unwrap()
    }

    fn sends(plan: &CheckedPlan) -> Vec<Scheduled> {
        schedule(plan.seed, &plan.windows[0]).collect()
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced_from_the_start() {
        let sends = sends(&checked(Arrival::Constant { rate_per_sec: 10.0 }, 2, 1));
        assert_eq!(sends.len(), 20);
        for (i, send) in sends.iter().enumerate() {
            assert!((send.at.as_secs_f64() - i as f64 / 10.0).abs() < 1e-9, "{i}: {:?}", send.at);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let poisson = Arrival::Poisson { rate_per_sec: 40.0 };
        assert_eq!(sends(&checked(poisson, 2, 5)), sends(&checked(poisson, 2, 5)));
        assert_ne!(sends(&checked(poisson, 2, 5)), sends(&checked(poisson, 2, 6)));
    }

    #[test]
    fn the_rate_changes_the_times_not_the_requests() {
        let paths = |rate_per_sec| sends(&checked(Arrival::Constant { rate_per_sec }, 2, 3)).into_iter().map(|s| s.path).collect::<Vec<_>>();
        let (slow, fast) = (paths(10.0), paths(20.0));
        assert_eq!(fast.len(), 2 * slow.len());
        assert_eq!(slow[..], fast[..slow.len()]);
    }

    #[test]
    fn poisson_counts_have_the_poisson_mean_and_variance() {
        // λ = rate · duration = 25/s · 2 s = 50 per seed; over n = 400 seeds:
        // - the sample mean has sd sqrt(λ / n) = 0.354;
        // - the sample variance has sd ≈ sqrt((μ4 - σ⁴) / n), with μ4 = λ(1 + 3λ) and σ⁴ = λ²
        //   for a Poisson count, so sqrt((λ + 2λ²) / n) = sqrt(5050 / 400) = 3.55.
        // Both are asserted within 5 sd. A constant process (variance 0) fails the second.
        let (lambda, n) = (50.0, 400.0);
        let counts: Vec<f64> = (0..400).map(|seed| sends(&checked(Arrival::Poisson { rate_per_sec: 25.0 }, 2, seed)).len() as f64).collect();
        let mean = counts.iter().sum::<f64>() / n;
        let variance = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!((mean - lambda).abs() < 5.0 * (lambda / n).sqrt(), "mean {mean}");
        assert!((variance - lambda).abs() < 5.0 * ((lambda + 2.0 * lambda * lambda) / n).sqrt(), "variance {variance}");
    }

    #[test]
    fn the_mix_is_drawn_by_weight() {
        // The test plan's mix weighs 1 and 3: request 1 has p = 0.75; over n = 4000 draws the
        // share has sd sqrt(p(1-p)/n) = 0.0068, asserted within 5 sd.
        let sends = sends(&checked(Arrival::Constant { rate_per_sec: 400.0 }, 10, 2));
        let share = sends.iter().filter(|s| s.request == 1).count() as f64 / sends.len() as f64;
        assert!((share - 0.75).abs() < 5.0 * (0.75f64 * 0.25 / 4000.0).sqrt(), "{share}");
        assert!(sends.iter().all(|s| if s.request == 1 { s.path == "/b" } else { s.path.starts_with("/a/") }));
    }
}
