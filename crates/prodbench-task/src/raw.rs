//! The first step of parsing a TOML file: text into a *raw mirror* (every field optional),
//! with every problem collected. The resolvers (`config`, `rubric`) then check ranges and
//! apply defaults.
//!
//! serde stops at the first type error, which would make a user fix a file one error per
//! run, and its messages name Rust types without the key (`invalid type: string "sixty",
//! expected f64`). So on a type error the file's span-preserving parse finds the key whose
//! value the error points at, records the error with that key and its line in words
//! (`agent.timeout_sec: expected a number, found string "sixty"`), drops the key, and
//! deserializes again, until the rest is clean. One round reports every type error and
//! every unknown key.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::TASK_FORMAT_DOC;
use crate::diagnostic::{Diagnostic, line_of};

/// More type errors than this in one file and the rest are not looked for.
const MAX_TYPE_ERRORS: usize = 64;

/// Deserializes a raw mirror of a TOML file. A syntax error is one diagnostic; type errors
/// are one each, naming key and line, and make the result `None`; unknown keys are
/// warnings naming line and key. `doc` is the page the hints point to.
pub(crate) fn deserialize_raw<T: serde::de::DeserializeOwned>(file: &Path, text: &str, out: &mut Vec<Diagnostic>, doc: &str) -> Option<T> {
    let mut document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(err) => {
            out.push(toml_error(file, text, &err, doc));
            return None;
        }
    };
    let mut type_errors = Vec::new();
    loop {
        let mut unknown = Vec::new();
        // serde_ignored writes `?` for each `Option` it passes through: drop those segments.
        let result = serde_ignored::deserialize(toml::de::Deserializer::from(document.clone()), |path| {
            let dotted: Vec<String> = path.to_string().split('.').filter(|s| *s != "?").map(String::from).collect();
            unknown.push(dotted.join("."));
        });
        let err = match result {
            Ok(raw) => {
                let clean = type_errors.is_empty();
                out.append(&mut type_errors);
                out.extend(unknown.iter().map(|key| unknown_key(file, text, key, doc)));
                return clean.then_some(raw);
            }
            Err(err) => err,
        };
        let key = err.span().and_then(|span| remove_entry_at(document.get_mut(), span.start, ""));
        match key {
            Some(key) if type_errors.len() < MAX_TYPE_ERRORS => type_errors.push(type_error(file, text, &key, &err, doc)),
            _ => {
                out.append(&mut type_errors);
                out.push(toml_error(file, text, &err, doc));
                return None;
            }
        }
    }
}

/// Removes the innermost key whose value holds `offset`; returns its path (`a.b[0].c`).
/// A table's own span covers only its header, so every table is searched, not only those
/// whose span holds the offset.
fn remove_entry_at(table: &mut DeTable, offset: usize, prefix: &str) -> Option<String> {
    let keys: Vec<String> = table.keys().map(|key| key.get_ref().to_string()).collect();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let value = table.get_mut(key.as_str())?;
        if let Some(inner) = remove_inside(value, offset, &path) {
            return Some(inner);
        }
        if value.span().contains(&offset) {
            table.remove(key.as_str());
            return Some(path);
        }
    }
    None
}

/// Within a table, or the tables of an array, the innermost key holding `offset`.
fn remove_inside(value: &mut Spanned<DeValue>, offset: usize, path: &str) -> Option<String> {
    match value.get_mut() {
        DeValue::Table(table) => remove_entry_at(table, offset, path),
        DeValue::Array(items) => items.iter_mut().enumerate().find_map(|(index, item)| match item.get_mut() {
            DeValue::Table(table) => remove_entry_at(table, offset, &format!("{path}[{index}]")),
            _ => None,
        }),
        _ => None,
    }
}

/// `key: expected a number, found string "sixty"` at the key's line.
fn type_error(file: &Path, text: &str, key: &str, err: &toml::de::Error, doc: &str) -> Diagnostic {
    let line = err.span().map(|span| line_of(text, span.start));
    Diagnostic::error(file, in_words(err.message())).at_line(line).key(key).hint(format!("see {doc} for every field and its type"))
}

/// serde's `invalid type: string "sixty", expected f64` as `expected a number, found string
/// "sixty"`; other messages as they are.
fn in_words(message: &str) -> String {
    let message = message.trim();
    let Some((found, expected)) = message.split_once(", expected ") else { return message.to_string() };
    let found = found.trim_start_matches("invalid type: ").trim_start_matches("invalid value: ").replace(" as i128", "").replace(" as u128", "");
    format!("expected {}, found {found}", expected_in_words(expected.trim()))
}

fn expected_in_words(expected: &str) -> String {
    let whole = |low: &str, high: String| format!("a whole number from {low} to {high}");
    match expected {
        "f32" | "f64" => "a number".into(),
        "u8" => whole("0", u8::MAX.to_string()),
        "u16" => whole("0", u16::MAX.to_string()),
        "u32" => whole("0", u32::MAX.to_string()),
        "u64" | "usize" => whole("0", u64::MAX.to_string()),
        "i32" => whole(&i32::MIN.to_string(), i32::MAX.to_string()),
        "i64" | "isize" => whole(&i64::MIN.to_string(), i64::MAX.to_string()),
        "a boolean" | "bool" => "true or false".into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        other if other.starts_with("struct ") => "a table".into(),
        other => other.to_string(),
    }
}

fn toml_error(file: &Path, text: &str, err: &toml::de::Error, doc: &str) -> Diagnostic {
    let line = err.span().map(|span| line_of(text, span.start));
    Diagnostic::error(file, err.message().trim().to_string()).at_line(line).hint(format!("see {doc} for every field and its type"))
}

fn unknown_key(file: &Path, text: &str, dotted: &str, doc: &str) -> Diagnostic {
    let hint = if doc == TASK_FORMAT_DOC {
        format!("check the spelling against {doc}; free-form data belongs in [metadata]")
    } else {
        format!("check the spelling against {doc}")
    };
    Diagnostic::warning(file, "unknown key, ignored").at_line(key_line(text, dotted)).key(dotted).hint(hint)
}

/// Finds the line of a dotted key by walking the span-preserving parse of the file. Array
/// elements are addressed by index (`criteria.2.claim`).
pub(crate) fn key_line(text: &str, dotted: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let (key, mut value) = table.iter().find(|(k, _)| k.get_ref() == part)?;
        let mut span = key.span();
        while let Some(index) = parts.peek().and_then(|p| p.parse::<usize>().ok()) {
            parts.next();
            value = value.get_ref().as_array()?.get(index)?;
            span = value.span();
        }
        if parts.peek().is_none() {
            return Some(line_of(text, span.start));
        }
        table = value.get_ref().as_table()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by serde only
    struct Raw {
        agent: Option<Agent>,
        criteria: Option<Vec<Criterion>>,
        name: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Agent {
        timeout_sec: Option<f64>,
        retries: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Criterion {
        weight: Option<f64>,
    }

    fn errors(text: &str) -> (bool, Vec<String>) {
        let mut out = Vec::new();
        let raw = deserialize_raw::<Raw>(Path::new("t.toml"), text, &mut out, "docs/X.md");
        (raw.is_some(), out.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_type_error_comes_in_one_round_with_its_key_line_and_type_in_words() {
        let text = "name = 3\n[agent]\ntimeout_sec = \"sixty\"\nretries = 99999999999\ncolour = 1\n[[criteria]]\nweight = 1\n[[criteria]]\nweight = true\n";
        let (parsed, errors) = errors(text);
        assert!(!parsed);
        let expected = [
            "t.toml:1: error: `name`: expected a string, found integer `3`",
            "t.toml:3: error: `agent.timeout_sec`: expected a number, found string \"sixty\"",
            "t.toml:4: error: `agent.retries`: expected a whole number from 0 to 4294967295, found integer `99999999999`",
            "t.toml:9: error: `criteria[1].weight`: expected a number, found boolean `true`",
            "t.toml:5: warning: `agent.colour`: unknown key, ignored",
        ];
        for (line, want) in expected.iter().enumerate() {
            assert!(errors.iter().any(|e| e.starts_with(want)), "line {line}: {want}\nnot in {errors:#?}");
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    #[test]
    fn a_clean_file_parses_and_a_syntax_error_is_one_diagnostic() {
        assert_eq!(errors("[agent]\ntimeout_sec = 60\n"), (true, vec![]));
        let (parsed, errors) = errors("[agent\n");
        assert!(!parsed);
        assert_eq!(errors.len(), 1);
    }
}
