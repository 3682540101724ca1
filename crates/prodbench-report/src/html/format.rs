//! Text for the page: escaping, ids and links from untrusted names, and number formatting.
//! Every string from the report passes through [`escape`], or [`anchor_id`] and
//! [`percent_encode`] where it becomes an id or a link, before it reaches the page.

use std::path::Path;

use crate::leaderboard::Rate;
use crate::stats::Interval;

/// What a missing or non-finite number shows as.
pub(super) const MISSING: &str = "-";

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// An element id (and `#` link target) from untrusted text: ASCII letters, digits, `-`, `_`
/// and `.` are kept, every other byte becomes `~xx`, so distinct names give distinct ids and
/// nothing needs escaping.
pub(super) fn anchor_id(prefix: &str, raw: &str) -> String {
    let mut id = format!("{prefix}-");
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            id.push(char::from(byte));
        } else {
            id.push_str(&format!("~{byte:02x}"));
        }
    }
    id
}

/// A relative URL from the directory `from` to the directory `to` (`../jobs/j/trials/t/`),
/// percent-encoded, when both exist and share a root.
pub(super) fn relative_href(from: &Path, to: &Path) -> Option<String> {
    let (from, to) = (from.canonicalize().ok()?, to.canonicalize().ok()?);
    let shared = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    if shared == 0 {
        return None;
    }
    let up = std::iter::repeat_n("..".to_string(), from.components().count() - shared);
    let down = to.components().skip(shared).map(|part| part.as_os_str().to_str().map(percent_encode));
    let parts: Vec<String> = up.map(Some).chain(down).collect::<Option<_>>()?;
    Some(if parts.is_empty() { "./".to_string() } else { format!("{}/", parts.join("/")) })
}

/// Every byte but ASCII letters, digits and `-._~` as `%XX`.
pub(super) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(
            |byte| {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') { char::from(byte).to_string() } else { format!("%{byte:02X}") }
            },
        )
        .collect()
}

pub(super) fn fmt_number(value: Option<f64>, decimals: usize) -> String {
    value.filter(|v| v.is_finite()).map_or_else(|| MISSING.to_string(), |v| format!("{v:.decimals$}"))
}

/// "$0.0123" from a cost in USD.
pub(super) fn fmt_cost(usd: Option<f64>) -> String {
    usd.filter(|c| c.is_finite()).map_or_else(|| MISSING.to_string(), |c| format!("${c:.4}"))
}

/// "12,346" from a count (rounded; not negative), in groups of three digits.
pub(super) fn fmt_thousands(count: Option<f64>) -> String {
    let Some(count) = count.filter(|c| c.is_finite() && *c >= 0.0) else { return MISSING.to_string() };
    let digits = format!("{count:.0}");
    let groups: Vec<&str> = digits.as_bytes().rchunks(3).rev().map(|group| std::str::from_utf8(group).expect("ASCII digits")).collect();
    groups.join(",")
}

/// "66.7%" from a rate in [0, 1].
pub(super) fn fmt_percent(rate: Option<f64>) -> String {
    rate.filter(|r| r.is_finite()).map_or_else(|| MISSING.to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// "100.0% (3/3)" from a rate.
pub(super) fn fmt_rate(rate: &Rate) -> String {
    format!("{} <span class=\"muted\">({}/{})</span>", fmt_percent(rate.rate), rate.count, rate.of)
}

/// "[low, high]" from an interval, or "-".
pub(super) fn fmt_interval(interval: Option<Interval>) -> String {
    match interval.filter(|i| i.low.is_finite() && i.high.is_finite()) {
        Some(i) => format!("[{:.1}, {:.1}]", i.low, i.high),
        None => MISSING.to_string(),
    }
}

/// At most four decimals, without trailing zeros: 95, 97.5, 0.025.
pub(super) fn fmt_trimmed(value: f64) -> String {
    let formatted = format!("{value:.4}");
    formatted.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// "95%" from a confidence level in [0, 1].
pub(super) fn fmt_level(level: f64) -> String {
    if level.is_finite() { format!("{}%", fmt_trimmed(level * 100.0)) } else { MISSING.to_string() }
}

/// "3 tasks", "1 task".
pub(super) fn count_of(count: usize, noun: &str) -> String {
    if count == 1 { format!("{count} {noun}") } else { format!("{count} {noun}s") }
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_keeps_ids_and_links_in_a_safe_alphabet() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(anchor_id("trial", "j.t__a1 é"), "trial-j.t__a1~20~c3~a9");
        assert_eq!(percent_encode("t a1/é"), "t%20a1%2F%C3%A9");
    }

    #[test]
    fn formats_numbers_or_a_dash() {
        assert_eq!(fmt_number(None, 1), "-");
        assert_eq!(fmt_number(Some(f64::NAN), 1), "-");
        assert_eq!(fmt_percent(Some(2.0 / 3.0)), "66.7%");
        assert_eq!(fmt_cost(Some(0.01234)), "$0.0123");
        assert_eq!(fmt_thousands(Some(1_234_567.6)), "1,234,568");
        assert_eq!(fmt_thousands(Some(999.0)), "999");
        assert_eq!(fmt_thousands(None), "-");
        assert_eq!(fmt_trimmed(95.000_000_000_01), "95");
        assert_eq!(fmt_trimmed(97.5), "97.5");
        assert_eq!(fmt_trimmed(0.025), "0.025");
        assert_eq!(fmt_level(0.95), "95%");
        assert_eq!(fmt_interval(Some(Interval { estimate: 1.0, low: f64::NEG_INFINITY, high: 2.0 })), "-");
        assert_eq!(fmt_rate(&Rate { count: 2, of: 3, rate: Some(2.0 / 3.0) }), "66.7% <span class=\"muted\">(2/3)</span>");
        assert_eq!(count_of(1, "task"), "1 task");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
