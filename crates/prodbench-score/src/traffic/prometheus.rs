//! The record in Prometheus text exposition format (version 0.0.4), so that a metrics store
//! (or a task's own Prometheus) can scrape the load it was under, labelled by window.
//!
//! Counters by outcome and status class, the error ratio, and latency as a summary
//! (p50/p90/p99 quantiles, sum, count) plus its maximum, in seconds as Prometheus prefers.

use std::fmt::Write;

use super::{TrafficRecord, WindowSummary};

/// `record`'s window summaries as Prometheus text exposition.
pub fn prometheus(record: &TrafficRecord) -> String {
    let windows = &record.summary;
    let mut out = String::new();
    family(
        &mut out,
        "prodbench_traffic_requests_total",
        "counter",
        "Requests by outcome (sent = completed + timeout + connection_error + unfinished).",
        windows,
        |w| {
            let c = &w.counts;
            let outcomes = [
                ("sent", c.sent),
                ("completed", c.completed),
                ("timeout", c.timeouts),
                ("connection_error", c.connection_errors),
                ("unfinished", c.unfinished),
            ];
            outcomes.iter().map(|(outcome, n)| Sample::labelled(format!("outcome=\"{outcome}\""), *n as f64)).collect()
        },
    );
    family(&mut out, "prodbench_traffic_responses_total", "counter", "Responses by status class.", windows, |w| {
        let c = &w.counts;
        let classes = [("2xx", c.status_2xx), ("3xx", c.status_3xx), ("4xx", c.status_4xx), ("5xx", c.status_5xx), ("other", c.status_other)];
        classes.iter().map(|(class, n)| Sample::labelled(format!("class=\"{class}\""), *n as f64)).collect()
    });
    family(&mut out, "prodbench_traffic_error_ratio", "gauge", "Errors (status >= 400, timeouts, connection errors) over finished requests.", windows, |w| {
        w.error_rate.map(Sample::plain).into_iter().collect()
    });
    family(
        &mut out,
        "prodbench_traffic_latency_seconds",
        "summary",
        "Latency from each request's scheduled send time (coordinated-omission correct).",
        windows,
        latency,
    );
    family(&mut out, "prodbench_traffic_latency_max_seconds", "gauge", "The largest latency from a scheduled send time.", windows, |w| {
        w.latency.max_ms.map(|max| Sample::plain(max / 1000.0)).into_iter().collect()
    });
    out
}

/// One sample of a family for one window: a suffix to the family's name (`_sum`), labels
/// beyond the window's, and the value.
struct Sample {
    suffix: &'static str,
    labels: Option<String>,
    value: f64,
}

impl Sample {
    fn plain(value: f64) -> Sample {
        Sample { suffix: "", labels: None, value }
    }

    fn labelled(labels: String, value: f64) -> Sample {
        Sample { suffix: "", labels: Some(labels), value }
    }
}

/// A summary's samples: p50, p90 and p99, then `_sum` and `_count`.
fn latency(window: &WindowSummary) -> Vec<Sample> {
    let l = &window.latency;
    let quantiles = [("0.5", l.p50_ms), ("0.9", l.p90_ms), ("0.99", l.p99_ms)];
    let mut samples: Vec<Sample> = quantiles.iter().filter_map(|(q, ms)| Some(Sample::labelled(format!("quantile=\"{q}\""), (*ms)? / 1000.0))).collect();
    let timed = (window.counts.completed + window.counts.timeouts) as f64;
    samples.push(Sample { suffix: "_sum", labels: None, value: l.mean_ms.unwrap_or(0.0) * timed / 1000.0 });
    samples.push(Sample { suffix: "_count", labels: None, value: timed });
    samples
}

/// `# HELP`, `# TYPE`, then each window's samples, labelled by window.
fn family(out: &mut String, name: &str, kind: &str, help: &str, windows: &[WindowSummary], samples: impl Fn(&WindowSummary) -> Vec<Sample>) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for window in windows {
        for Sample { suffix, labels, value } in samples(window) {
            let window_label = format!("window=\"{}\"", escape(&window.window));
            let labels = match labels {
                Some(labels) => format!("{window_label},{labels}"),
                None => window_label,
            };
            let _ = writeln!(out, "{name}{suffix}{{{labels}}} {value}");
        }
    }
}

/// A label value escaped as the format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::tests::sample;

    type Labels = Vec<(String, String)>;

    /// One sample line: `name{label="value",...} value`, or `None` if it is not one.
    fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
        let (head, value) = line.rsplit_once(' ')?;
        let value: f64 = value.parse().ok()?;
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
            None => (head, Vec::new()),
        };
        let valid_name = name.chars().enumerate().all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
        (valid_name && !name.is_empty()).then(|| (name.to_string(), labels, value))
    }

    fn parse_labels(mut text: &str) -> Option<Labels> {
        let mut labels = Vec::new();
        while !text.is_empty() {
            let (key, rest) = text.split_once("=\"")?;
            let (mut value, mut chars) = (String::new(), rest.char_indices());
            let end = loop {
                match chars.next()? {
                    (_, '\\') => value.push(match chars.next()?.1 {
                        'n' => '\n',
                        c => c,
                    }),
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_string(), value));
            text = rest[end + 1..].strip_prefix(',').unwrap_or(&rest[end + 1..]);
        }
        Some(labels)
    }

    #[test]
    fn every_line_parses_and_every_sample_has_a_declared_family() {
        let text = prometheus(&sample());
        let mut declared = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "summary"].contains(&kind), "{line}");
                declared.push(name.to_string());
            } else if !line.starts_with("# HELP ") {
                samples.push(parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")));
            }
        }
        for (name, _, _) in &samples {
            let family = name.strip_suffix("_sum").or_else(|| name.strip_suffix("_count")).filter(|f| declared.iter().any(|d| d == f)).unwrap_or(name);
            assert!(declared.iter().any(|d| d == family), "{name} has no # TYPE");
        }
        let value = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|(n, l, _)| n == name && l.len() == labels.len() && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
                .map(|(_, _, value)| *value)
        };
        assert_eq!(value("prodbench_traffic_requests_total", &[("window", "warmup"), ("outcome", "sent")]), Some(10.0));
        assert_eq!(value("prodbench_traffic_requests_total", &[("window", "warmup"), ("outcome", "timeout")]), Some(1.0));
        assert_eq!(value("prodbench_traffic_responses_total", &[("window", "warmup"), ("class", "5xx")]), Some(2.0));
        assert_eq!(value("prodbench_traffic_error_ratio", &[("window", "warmup")]), Some(0.4));
        assert_eq!(value("prodbench_traffic_latency_seconds", &[("window", "warmup"), ("quantile", "0.99")]), Some(0.301));
        assert_eq!(value("prodbench_traffic_latency_seconds_count", &[("window", "warmup")]), Some(9.0));
        assert_eq!(value("prodbench_traffic_latency_seconds_sum", &[("window", "warmup")]), Some(0.18));
        assert_eq!(value("prodbench_traffic_latency_max_seconds", &[("window", "warmup")]), Some(0.302));
        // A window name with a quote round-trips through the escaping.
        assert_eq!(value("prodbench_traffic_requests_total", &[("window", "grading \"b\""), ("outcome", "sent")]), Some(10.0));
    }

    #[test]
    fn a_window_with_no_timed_request_has_no_quantiles() {
        let mut record = sample();
        record.summary.truncate(1);
        record.summary[0].latency = Default::default();
        record.summary[0].error_rate = None;
        let text = prometheus(&record);
        assert!(!text.contains("quantile=") && !text.contains("prodbench_traffic_error_ratio{"), "{text}");
        assert!(text.contains("prodbench_traffic_latency_seconds_count{window=\"warmup\"} 9\n"), "{text}");
    }
}
