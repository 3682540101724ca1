//! The reward contract: `reward.txt` holds one number; `reward.json` a flat object of
//! numbers; every number is in [0, 1] (a fraction of success: 1 passes, 0 fails). Anything
//! else is an error naming the value, never a silent 0 and never a reward of 7 that
//! "passes" and drags a mean above 1. A task scored on another scale normalises in its
//! `test.sh`.

use std::collections::BTreeMap;
use std::path::Path;

/// The rewards one verification produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rewards {
    /// The trial's reward: `reward.txt`'s number, or `reward.json`'s `reward` key, or the
    /// mean of `reward.json`'s values when it has no `reward` key.
    pub reward: f64,
    /// Every named value (`reward` alone for `reward.txt`).
    pub values: BTreeMap<String, f64>,
    /// Which file the rewards came from.
    pub source: String,
}

/// Reads rewards from a downloaded `/logs/verifier`. `reward.txt` wins when both exist, as
/// in Harbor.
pub fn parse_rewards(dir: &Path) -> Result<Rewards, String> {
    let txt = dir.join("reward.txt");
    let json = dir.join("reward.json");
    if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|e| format!("reward.txt: {e}"))?;
        let reward = parse_number(text.trim()).ok_or_else(|| format!("reward.txt must hold one number, found {:?}", preview(&text)))?;
        check_range("reward.txt", reward)?;
        return Ok(Rewards { reward, values: BTreeMap::from([("reward".into(), reward)]), source: "reward.txt".into() });
    }
    if json.is_file() {
        let text = std::fs::read_to_string(&json).map_err(|e| format!("reward.json: {e}"))?;
        return parse_json(&text);
    }
    Err("the tests wrote neither /logs/verifier/reward.txt nor /logs/verifier/reward.json".into())
}

fn parse_json(text: &str) -> Result<Rewards, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("reward.json is not JSON: {e}"))?;
    let object = value.as_object().ok_or("reward.json must be a flat object of numbers")?;
    let mut values = BTreeMap::new();
    for (key, v) in object {
        let number = v.as_f64().filter(|n| n.is_finite()).ok_or_else(|| format!("reward.json: `{key}` must be a number, found {v}"))?;
        check_range(&format!("reward.json: `{key}`"), number)?;
        values.insert(key.clone(), number);
    }
    if values.is_empty() {
        return Err("reward.json is an empty object".into());
    }
    let reward = values.get("reward").copied().unwrap_or_else(|| values.values().sum::<f64>() / values.len() as f64);
    Ok(Rewards { reward, values, source: "reward.json".into() })
}

/// The range every reward must be in.
pub const REWARD_RANGE: std::ops::RangeInclusive<f64> = 0.0..=1.0;

fn check_range(what: &str, value: f64) -> Result<(), String> {
    if REWARD_RANGE.contains(&value) {
        return Ok(());
    }
    Err(format!("{what} is {value}, outside the reward range [0, 1]: write 1 for a pass, 0 for a fail, or the fraction of success"))
}

fn parse_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn preview(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn reward_txt_is_one_number() {
        let d = dir_with(&[("reward.txt", " 0.5\n")]);
        assert_eq!(parse_rewards(d.path()).unwrap().reward, 0.5);
    }

    #[test]
    fn malformed_reward_txt_is_an_error() {
        for bad in ["", "yes", "1 2", "NaN", "inf"] {
            let d = dir_with(&[("reward.txt", bad)]);
            assert!(parse_rewards(d.path()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reward_json_uses_reward_key_or_mean() {
        let d = dir_with(&[("reward.json", r#"{"a": 1, "b": 0}"#)]);
        let r = parse_rewards(d.path()).unwrap();
        assert_eq!(r.reward, 0.5);
        assert_eq!(r.values.len(), 2);
        let d = dir_with(&[("reward.json", r#"{"reward": 1, "partial": 0.25}"#)]);
        assert_eq!(parse_rewards(d.path()).unwrap().reward, 1.0);
    }

    #[test]
    fn malformed_reward_json_is_an_error() {
        for bad in ["[1]", "{}", r#"{"a": "1"}"#, r#"{"a": {"b": 1}}"#, "{"] {
            let d = dir_with(&[("reward.json", bad)]);
            assert!(parse_rewards(d.path()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rewards_outside_zero_to_one_are_errors_naming_the_value() {
        for (file, text, named) in [
            ("reward.txt", "7", "reward.txt is 7"),
            ("reward.txt", "-1", "reward.txt is -1"),
            ("reward.txt", "1.0000001", "reward.txt is 1.0000001"),
            ("reward.json", r#"{"a": 1, "b": 3}"#, "`b` is 3"),
        ] {
            let d = dir_with(&[(file, text)]);
            let error = parse_rewards(d.path()).unwrap_err();
            assert!(error.contains(named) && error.contains("[0, 1]"), "{text}: {error}");
        }
        let d = dir_with(&[("reward.txt", "1")]);
        assert_eq!(parse_rewards(d.path()).unwrap().reward, 1.0, "the bounds are inside");
    }

    #[test]
    fn missing_reward_is_an_error() {
        let d = dir_with(&[]);
        assert!(parse_rewards(d.path()).unwrap_err().contains("neither"));
    }

    #[test]
    fn reward_txt_wins_over_json() {
        let d = dir_with(&[("reward.txt", "0"), ("reward.json", r#"{"reward": 1}"#)]);
        assert_eq!(parse_rewards(d.path()).unwrap().reward, 0.0);
    }
}
