//! Labels on everything a backend creates, so a job (or `gc`) can find and remove its own.
//!
//! Label values must be valid for every backend, Kubernetes being the strictest: at most 63
//! characters of `[A-Za-z0-9._-]`, starting and ending with a letter or digit. Job and trial
//! ids and host names are not always that, so every value goes through [`label_value`],
//! which keeps a valid value as it is and turns any other into a valid one that stays
//! distinct (a readable prefix plus a short hash of the original).

use std::path::Path;

use sha2::{Digest, Sha256};

pub const LABEL_MANAGED: &str = "dev.prodbench.managed";
pub const LABEL_JOB: &str = "dev.prodbench.job";
pub const LABEL_TRIAL: &str = "dev.prodbench.trial";
/// `host.pid` of the process that created the object: `gc` spares objects of live owners.
pub const LABEL_OWNER: &str = "dev.prodbench.owner";

/// The longest label value Kubernetes accepts.
pub const LABEL_VALUE_MAX: usize = 63;
/// Hex digits of the hash that keeps a rewritten value distinct.
const HASH_DIGITS: usize = 10;

/// `value` as a label value every backend accepts; equal only for equal inputs.
pub fn label_value(value: &str) -> String {
    label_value_within(value, LABEL_VALUE_MAX)
}

/// [`label_value`] with at most `max` characters (more than [`HASH_DIGITS`]).
fn label_value_within(value: &str, max: usize) -> String {
    if is_label_value(value, max) {
        return value.to_string();
    }
    let cleaned: String = value.chars().map(|c| if allowed(c) { c } else { '-' }).collect();
    let start = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    // Only ASCII is left, so any byte index is a character boundary.
    let prefix = start[..start.len().min(max - HASH_DIGITS - 1)].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = short_hash(value);
    if prefix.is_empty() { hash } else { format!("{prefix}-{hash}") }
}

fn is_label_value(value: &str, max: usize) -> bool {
    let ends_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    value.len() <= max && value.chars().all(allowed) && ends_ok(value.chars().next()) && ends_ok(value.chars().last())
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..HASH_DIGITS].to_string()
}

/// `host.pid` of this process, a valid label value.
pub fn owner_label() -> String {
    owner_label_of(&hostname(), std::process::id())
}

/// The owner label process `pid` of `host` writes: the pid is always kept whole.
fn owner_label_of(host: &str, pid: u32) -> String {
    let pid = pid.to_string();
    format!("{}.{pid}", label_value_within(host, LABEL_VALUE_MAX - 1 - pid.len()))
}

fn hostname() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() { "localhost".to_string() } else { host.to_string() }
}

/// True when `owner` (a [`LABEL_OWNER`] value, `host.pid` or the older `host:pid`) names a
/// process of this host that still runs, or a process of another host (not ours to judge).
pub fn owner_is_alive(owner: &str) -> bool {
    let Some(pid) = owner.rsplit_once(['.', ':']).and_then(|(_, pid)| pid.parse::<u32>().ok()) else { return false };
    let host = hostname();
    let ours = owner == owner_label_of(&host, pid) || owner == format!("{host}:{pid}");
    !ours || Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_valid(value: &str) {
        assert!(is_label_value(value, LABEL_VALUE_MAX), "{value:?} is not a valid label value");
    }

    #[test]
    fn valid_values_are_kept() {
        for value in ["", "a", "20250101-120000-abcd", "job.task__a1__t1", "A_b-9"] {
            assert_eq!(label_value(value), value);
        }
    }

    #[test]
    fn invalid_values_become_valid_and_stay_distinct() {
        let long = "x".repeat(200);
        let cases = ["-leading", "trailing-", "host:1234", "a/b", "a:b", "日本語", "-", "über-task", long.as_str(), &format!("{long}y"), "ends.", ".starts"];
        let labels: Vec<String> = cases.iter().map(|v| label_value(v)).collect();
        for label in &labels {
            assert_valid(label);
        }
        let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
        assert_eq!(distinct.len(), cases.len(), "{labels:?}");
    }

    #[test]
    fn a_rewritten_value_keeps_a_readable_prefix() {
        assert!(label_value("-leading").starts_with("leading-"), "{}", label_value("-leading"));
        assert!(label_value("host:1234").starts_with("host-1234-"));
        let long = label_value(&"x".repeat(200));
        assert_eq!(long.len(), LABEL_VALUE_MAX);
        assert!(long.starts_with(&"x".repeat(52)));
        assert_eq!(label_value("日本語").len(), HASH_DIGITS, "nothing readable is left: the hash alone");
    }

    #[test]
    fn label_values_are_stable_across_calls() {
        assert_eq!(label_value("a/b"), label_value("a/b"));
        assert_eq!(label_value("a/b"), format!("a-b-{}", &short_hash("a/b")));
    }

    #[test]
    fn owner_is_a_valid_label_that_keeps_the_pid() {
        let owner = owner_label();
        assert_valid(&owner);
        assert!(owner.ends_with(&format!(".{}", std::process::id())), "{owner}");
        assert!(owner_is_alive(&owner));
    }

    #[test]
    fn owner_of_a_long_host_name_keeps_the_pid() {
        let owner = owner_label_of(&"h".repeat(100), 4_194_304);
        assert_valid(&owner);
        assert!(owner.ends_with(".4194304"));
    }

    #[test]
    fn dead_and_foreign_owners() {
        let dead = u32::MAX - 1; // above any pid_max
        assert!(!owner_is_alive(&owner_label_of(&hostname(), dead)));
        assert!(!owner_is_alive(&format!("{}:{dead}", hostname())), "the older host:pid format is still read");
        assert!(owner_is_alive(&format!("{}:{}", hostname(), std::process::id())));
        assert!(owner_is_alive(&format!("another-host.{dead}")), "another host's objects are spared");
        assert!(!owner_is_alive("garbage"), "an unreadable owner is reaped");
        assert!(!owner_is_alive(""));
    }
}
