//! A task's `[traffic]` table as a [`Plan`]: the three windows of a trial (`warmup` before
//! the agent, `agent` through its work, `grading` after it) with the table's rate and mix
//! wherever a window does not set its own.
//!
//! The task crate checks the table's shape when the task loads; what only the generator can
//! judge (methods, headers, path templates, a window's count against the bound) is checked
//! here, by [`check_task_traffic`], when a job starts: a bad task is then reported before any
//! trial runs, never discovered as failed requests.

use std::time::Duration;

use prodbench_task::live::{ArrivalProcess, TrafficConfig, TrafficRequest, TrafficWindow};

use crate::{Arrival, Plan, PlanError, RequestSpec, Target, Window};

/// The window before the agent starts.
pub const WARMUP: &str = "warmup";
/// The window through the agent's work; the trial stops it when the agent ends.
pub const AGENT: &str = "agent";
/// The window after the agent, before the tests.
pub const GRADING: &str = "grading";

/// The most requests one window may send: a runaway rate is an error, not a flood.
pub const MAX_REQUESTS_PER_WINDOW: u64 = 10_000_000;

/// The plan of a task's traffic against `target`; the agent window lasts at most
/// `agent_time` (the agent's timeout: the trial stops it earlier when the agent ends).
pub fn plan_for_task(config: &TrafficConfig, target: Target, agent_time: Duration) -> Plan {
    let mut windows = Vec::new();
    if let Some(warmup) = &config.warmup {
        windows.push(window(WARMUP, warmup, config, None));
    }
    windows.push(window(AGENT, &config.agent, config, Some(agent_time)));
    if let Some(grading) = &config.grading {
        windows.push(window(GRADING, grading, config, None));
    }
    Plan {
        target,
        seed: config.seed,
        arrival: arrival(config.arrival, config.rate_per_sec),
        mix: mix(&config.requests),
        windows,
        max_connections: config.max_connections,
        max_requests: MAX_REQUESTS_PER_WINDOW,
    }
}

/// Checks a task's traffic as the generator would run it, before any trial.
pub fn check_task_traffic(config: &TrafficConfig, agent_time: Duration) -> Result<(), PlanError> {
    let placeholder = Target { addr: ([127, 0, 0, 1], 9).into(), host: "localhost".into() };
    crate::plan::check(&plan_for_task(config, placeholder, agent_time)).map(|_| ())
}

fn window(name: &str, window: &TrafficWindow, config: &TrafficConfig, length: Option<Duration>) -> Window {
    let seconds = window.duration_sec.map(Duration::from_secs_f64);
    let overrides_arrival = window.arrival.is_some() || window.rate_per_sec.is_some();
    Window {
        name: name.to_string(),
        duration: length.or(seconds).unwrap_or(Duration::from_secs(1)),
        arrival: overrides_arrival.then(|| arrival(window.arrival.unwrap_or(config.arrival), window.rate_per_sec.unwrap_or(config.rate_per_sec))),
        mix: (!window.requests.is_empty()).then(|| mix(&window.requests)),
    }
}

fn arrival(process: ArrivalProcess, rate_per_sec: f64) -> Arrival {
    match process {
        ArrivalProcess::Constant => Arrival::Constant { rate_per_sec },
        ArrivalProcess::Poisson => Arrival::Poisson { rate_per_sec },
    }
}

fn mix(requests: &[TrafficRequest]) -> Vec<RequestSpec> {
    requests
        .iter()
        .map(|r| RequestSpec {
            weight: r.weight,
            method: r.method.clone(),
            path: r.path.clone(),
            headers: r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            body: r.body.clone(),
            timeout: Duration::from_secs_f64(r.timeout_sec),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use prodbench_task::scaffold::TaskFiles;

    use super::*;

    fn traffic(table: &str) -> TrafficConfig {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!("[[services]]\nname = \"api\"\ncommand = \"true\"\nport = 8080\n{table}");
        let task = TaskFiles::new("t").toml(&toml).create(dir.path()).unwrap_or_else(|d| panic!("{d:#?}"));
        task.config.live.traffic.expect("traffic")
    }

    const TABLE: &str = "[traffic]\ntarget = \"api\"\nrate = 10\narrival = \"poisson\"\n[[traffic.requests]]\npath = \"/a/{int:1-9}\"\n\
                         [traffic.warmup]\nduration_sec = 2\n[traffic.grading]\nduration_sec = 5\nrate = 40\n[[traffic.grading.requests]]\npath = \"/b\"\n";

    #[test]
    fn the_three_windows_in_order_with_the_table_filling_what_a_window_leaves_out() {
        let target = Target { addr: ([127, 0, 0, 1], 8080).into(), host: "api".into() };
        let plan = plan_for_task(&traffic(TABLE), target, Duration::from_secs(600));
        let names: Vec<&str> = plan.windows.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, [WARMUP, AGENT, GRADING]);
        assert_eq!(plan.arrival, Arrival::Poisson { rate_per_sec: 10.0 });
        assert_eq!((plan.windows[0].duration, plan.windows[0].arrival), (Duration::from_secs(2), None));
        assert_eq!(plan.windows[1].duration, Duration::from_secs(600), "the agent window is bounded by the agent's time");
        assert_eq!(plan.windows[2].arrival, Some(Arrival::Poisson { rate_per_sec: 40.0 }), "a window's rate keeps the table's process");
        assert_eq!(plan.windows[2].mix.as_ref().unwrap()[0].path, "/b");
        assert!(check_task_traffic(&traffic(TABLE), Duration::from_secs(600)).is_ok());
    }

    #[test]
    fn what_only_the_generator_can_judge_is_an_error_before_any_trial() {
        let bad_template = TABLE.replace("/a/{int:1-9}", "/a/{int:9-1}");
        let err = check_task_traffic(&traffic(&bad_template), Duration::from_secs(60)).unwrap_err();
        assert!(err.to_string().contains("{int:9-1}"), "{err}");
        let bad_method = format!("{TABLE}[[traffic.requests]]\npath = \"/\"\nmethod = \"GE T\"\n");
        assert!(check_task_traffic(&traffic(&bad_method), Duration::from_secs(60)).is_err());
        let flood = TABLE.replace("rate = 10\n", "rate = 1e9\n");
        let err = check_task_traffic(&traffic(&flood), Duration::from_secs(600)).unwrap_err();
        assert!(err.to_string().contains("max_requests"), "{err}");
    }
}
