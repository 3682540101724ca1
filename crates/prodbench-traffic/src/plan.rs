//! What to send: the plan a task's `[traffic]` table maps onto, and its validation.
//!
//! A plan is checked whole before anything is sent ([`crate::Generator::new`]), so a typo in
//! a method, a header or a path template is one error naming it, not a run of failed
//! requests; and so that every run is bounded before it starts (a window's expected count
//! may not exceed `max_requests`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
pub use prodbench_score::traffic::Arrival;

use crate::template::PathTemplate;

/// The complete description of a trial's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target: Target,
    /// Decides every send time and every request; the same seed, the same sequence.
    pub seed: u64,
    /// The arrival process of every window that does not set its own.
    pub arrival: Arrival,
    /// The request mix of every window that does not set its own.
    pub mix: Vec<RequestSpec>,
    /// Run in this order by [`crate::Generator::run`]; names are unique.
    pub windows: Vec<Window>,
    /// Connections open at once, at most. A request that finds them all busy waits for one,
    /// and the wait counts in its latency.
    pub max_connections: usize,
    /// Requests one window may send, at most: the hard bound on a run's count.
    pub max_requests: u64,
}

/// Where requests go: an address (loopback, a container's, or one reached through a
/// [`crate::Connector`]) and the `Host` header they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

/// One kind of request in a mix, drawn with probability `weight / total weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub weight: u32,
    pub method: String,
    /// A path template (see the `template` module): `/items/{int:1-1000}`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// From the request's scheduled send time: waiting for a connection counts.
    pub timeout: Duration,
}

/// A named stretch of traffic: `warmup` before the agent, `agent` during its work,
/// `grading` after it. A window may change the rate (arrival) and the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub duration: Duration,
    pub arrival: Option<Arrival>,
    pub mix: Option<Vec<RequestSpec>>,
}

/// A plan that cannot run, naming the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("traffic: {0}")]
    Plan(String),
    #[error("traffic window `{window}`: {reason}")]
    Window { window: String, reason: String },
    /// `window` is `None` for the plan's own mix.
    #[error("traffic {} request {index}: {reason}", mix_name(.window))]
    Request { window: Option<String>, index: usize, reason: String },
    #[error("traffic: no window named `{0}`")]
    UnknownWindow(String),
}

fn mix_name(window: &Option<String>) -> String {
    window.as_ref().map_or_else(|| "mix".to_string(), |name| format!("window `{name}` mix"))
}

/// A request ready to send but for its path.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) weight: u32,
    pub(crate) method: Method,
    pub(crate) path: PathTemplate,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) timeout: Duration,
}

/// A validated window.
#[derive(Debug)]
pub(crate) struct CheckedWindow {
    pub(crate) name: String,
    pub(crate) duration: Duration,
    pub(crate) arrival: Arrival,
    pub(crate) mix: Arc<[Request]>,
    /// The largest timeout in the mix: the window's requests all end by `duration` plus this.
    pub(crate) max_timeout: Duration,
}

/// A validated plan.
#[derive(Debug)]
pub(crate) struct CheckedPlan {
    pub(crate) target: Target,
    pub(crate) host: HeaderValue,
    pub(crate) seed: u64,
    pub(crate) windows: Vec<CheckedWindow>,
    pub(crate) max_connections: usize,
    pub(crate) max_requests: u64,
}

pub(crate) fn check(plan: &Plan) -> Result<CheckedPlan, PlanError> {
    let fail = |reason: &str| Err(PlanError::Plan(reason.to_string()));
    if plan.max_connections == 0 {
        return fail("max_connections must be at least 1");
    }
    if plan.max_requests == 0 {
        return fail("max_requests must be at least 1");
    }
    if plan.windows.is_empty() {
        return fail("no windows");
    }
    let host = HeaderValue::from_str(&plan.target.host).map_err(|_| PlanError::Plan(format!("target host {:?} is not a header value", plan.target.host)))?;
    let shared: Arc<[Request]> = check_mix(&plan.mix, None)?.into();
    let mut windows: Vec<CheckedWindow> = Vec::new();
    for window in &plan.windows {
        if windows.iter().any(|w| w.name == window.name) {
            return Err(PlanError::Window { window: window.name.clone(), reason: "appears twice".into() });
        }
        windows.push(check_window(window, plan, &shared)?);
    }
    Ok(CheckedPlan { target: plan.target.clone(), host, seed: plan.seed, windows, max_connections: plan.max_connections, max_requests: plan.max_requests })
}

fn check_window(window: &Window, plan: &Plan, shared: &Arc<[Request]>) -> Result<CheckedWindow, PlanError> {
    let fail = |reason: String| Err(PlanError::Window { window: window.name.clone(), reason });
    if window.name.is_empty() {
        return fail("a window needs a name".into());
    }
    if window.duration.is_zero() {
        return fail("duration must be positive".into());
    }
    let arrival = window.arrival.unwrap_or(plan.arrival);
    let rate = arrival.rate_per_sec();
    if !(rate.is_finite() && rate > 0.0) {
        return fail(format!("rate {rate} must be a positive number of requests per second"));
    }
    let expected = rate * window.duration.as_secs_f64();
    if expected > plan.max_requests as f64 {
        return fail(format!("{rate}/s for {:?} is {expected:.0} requests, over max_requests ({})", window.duration, plan.max_requests));
    }
    let mix: Arc<[Request]> = match &window.mix {
        Some(mix) => check_mix(mix, Some(&window.name))?.into(),
        None => shared.clone(),
    };
    let max_timeout = mix.iter().map(|request| request.timeout).max().unwrap_or_default();
    Ok(CheckedWindow { name: window.name.clone(), duration: window.duration, arrival, mix, max_timeout })
}

fn check_mix(mix: &[RequestSpec], window: Option<&str>) -> Result<Vec<Request>, PlanError> {
    if mix.is_empty() {
        let reason = "the request mix is empty".to_string();
        return Err(match window {
            Some(window) => PlanError::Window { window: window.to_string(), reason },
            None => PlanError::Plan(reason),
        });
    }
    let fail = |index: usize| move |reason: String| PlanError::Request { window: window.map(str::to_string), index, reason };
    mix.iter().enumerate().map(|(index, spec)| check_request(spec).map_err(fail(index))).collect()
}

fn check_request(spec: &RequestSpec) -> Result<Request, String> {
    if spec.weight == 0 {
        return Err("weight must be at least 1".into());
    }
    if spec.timeout.is_zero() {
        return Err("timeout must be positive".into());
    }
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| format!("method {:?} is not an HTTP method", spec.method))?;
    let path = PathTemplate::parse(&spec.path).map_err(|error| error.to_string())?;
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name {name:?} is not valid"))?;
        let header_value = HeaderValue::from_str(value).map_err(|_| format!("header {name}: value {value:?} is not valid"))?;
        headers.append(header_name, header_value);
    }
    let body = Bytes::from(spec.body.clone().unwrap_or_default());
    Ok(Request { weight: spec.weight, method, path, headers, body, timeout: spec.timeout })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn get(path: &str) -> RequestSpec {
        RequestSpec { weight: 1, method: "GET".into(), path: path.into(), headers: Vec::new(), body: None, timeout: Duration::from_secs(1) }
    }

    pub(crate) fn window(name: &str, secs: u64) -> Window {
        Window { name: name.into(), duration: Duration::from_secs(secs), arrival: None, mix: None }
    }

    pub(crate) fn plan(arrival: Arrival, windows: Vec<Window>) -> Plan {
        Plan {
            target: Target { addr: "127.0.0.1:9".parse().unwrap(), host: "svc".into() },
            seed: 1,
            arrival,
            mix: vec![get("/a/{int:1-9}"), RequestSpec { weight: 3, ..get("/b") }],
            windows,
            max_connections: 4,
            max_requests: 10_000,
        }
    }

    type Change = Box<dyn FnOnce(&mut Plan)>;

    fn error(change: impl FnOnce(&mut Plan)) -> String {
        let mut plan = plan(Arrival::Constant { rate_per_sec: 10.0 }, vec![window("agent", 5)]);
        change(&mut plan);
        check(&plan).unwrap_err().to_string()
    }

    #[test]
    fn a_good_plan_checks_and_windows_inherit_the_plan_defaults() {
        let mut grading = window("grading", 2);
        grading.arrival = Some(Arrival::Poisson { rate_per_sec: 50.0 });
        grading.mix = Some(vec![RequestSpec { timeout: Duration::from_millis(300), ..get("/c") }]);
        let checked = check(&plan(Arrival::Constant { rate_per_sec: 10.0 }, vec![window("agent", 5), grading])).unwrap();
        assert_eq!(checked.windows[0].arrival, Arrival::Constant { rate_per_sec: 10.0 });
        assert_eq!(checked.windows[0].mix.len(), 2);
        assert_eq!(checked.windows[0].max_timeout, Duration::from_secs(1));
        assert_eq!(checked.windows[1].arrival, Arrival::Poisson { rate_per_sec: 50.0 });
        assert_eq!(checked.windows[1].max_timeout, Duration::from_millis(300));
    }

    #[test]
    fn every_mistake_is_an_error_naming_its_place() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|p| p.windows.clear()), "traffic: no windows"),
            (Box::new(|p| p.max_connections = 0), "max_connections must be at least 1"),
            (Box::new(|p| p.max_requests = 0), "max_requests must be at least 1"),
            (Box::new(|p| p.mix.clear()), "the request mix is empty"),
            (Box::new(|p| p.target.host = "a\nb".into()), "target host"),
            (Box::new(|p| p.windows.push(window("agent", 1))), "window `agent`: appears twice"),
            (Box::new(|p| p.windows[0].duration = Duration::ZERO), "window `agent`: duration must be positive"),
            (Box::new(|p| p.arrival = Arrival::Poisson { rate_per_sec: 0.0 }), "window `agent`: rate 0 must be a positive number"),
            (Box::new(|p| p.arrival = Arrival::Constant { rate_per_sec: f64::NAN }), "rate NaN"),
            (Box::new(|p| p.max_requests = 49), "10/s for 5s is 50 requests, over max_requests (49)"),
            (Box::new(|p| p.windows[0].mix = Some(Vec::new())), "window `agent`: the request mix is empty"),
            (Box::new(|p| p.mix[1].weight = 0), "traffic mix request 1: weight must be at least 1"),
            (Box::new(|p| p.mix[0].timeout = Duration::ZERO), "request 0: timeout must be positive"),
            (Box::new(|p| p.mix[0].method = "GE T".into()), "request 0: method \"GE T\" is not an HTTP method"),
            (Box::new(|p| p.mix[0].headers.push(("bad name".into(), "x".into()))), "header name \"bad name\""),
            (Box::new(|p| p.mix[0].headers.push(("x-a".into(), "\n".into()))), "header x-a: value"),
            (Box::new(|p| p.windows[0].mix = Some(vec![get("/{int:3-1}")])), "traffic window `agent` mix request 0: path template `/{int:3-1}`"),
        ];
        for (change, expected) in cases {
            let message = error(change);
            assert!(message.contains(expected), "{message:?} does not contain {expected:?}");
        }
    }
}
