//! The first step of reading a compose file: YAML text into a tree in which every value and
//! every key keeps the line it starts on.
//!
//! serde's YAML deserializers report a location only for the first error, and a compose
//! key takes several shapes (`command` a string or a list, `environment` a map or a list,
//! `depends_on` a list or a map), which untagged serde enums would turn into messages with
//! no key at all. So the raw mirror of a compose file is this tree of strings with lines,
//! and the resolver (`compose.rs`) reads each key in each of its shapes. Anchors and
//! aliases are expanded and `<<` merge keys applied here, so the resolver sees plain data.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML value and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Yaml {
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// Any other scalar, as written (numbers and booleans too: the resolver knows which
    /// keys take which).
    Scalar(String),
    Sequence(Vec<Yaml>),
    /// Keys in the file's order; each key with its own line.
    Mapping(Vec<(Key, Yaml)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub line: usize,
}

/// A problem that stops the file from being read at all.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl Yaml {
    pub fn as_mapping(&self) -> Option<&[(Key, Yaml)]> {
        match &self.value {
            Value::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(text) => Some(text),
            _ => None,
        }
    }

    /// What the value is, in words, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar(_) => "a single value",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// Parses the first YAML document of `text`. An empty document is [`Value::Null`].
pub(crate) fn parse(text: &str) -> Result<Yaml, SyntaxError> {
    let mut loader = Loader::default();
    Parser::new_from_str(text).load(&mut loader, false).map_err(|e| SyntaxError { line: e.marker().line(), message: e.info().to_string() })?;
    if let Some(error) = loader.error {
        return Err(error);
    }
    Ok(loader.document.unwrap_or(Yaml { line: 1, value: Value::Null }))
}

/// Builds the tree from the parser's events.
#[derive(Default)]
struct Loader {
    /// Open sequences and mappings, innermost last.
    open: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Yaml>,
    document: Option<Yaml>,
    error: Option<SyntaxError>,
}

/// An open sequence or mapping.
struct Frame {
    node: Yaml,
    anchor: usize,
    /// A mapping's key waiting for its value.
    key: Option<Key>,
    /// What `<<` merge keys bring in: added at the end for the keys the mapping does not set
    /// itself, wherever they are written.
    merged: Vec<(Key, Yaml)>,
}

impl MarkedEventReceiver for Loader {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar(text)
                };
                self.complete(Yaml { line, value }, anchor);
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(node) => self.complete(Yaml { line, ..node }, 0),
                None => self.fail(line, "an alias to an anchor that is not defined before it".into()),
            },
            Event::SequenceStart(anchor, _) => self.open.push(Frame::new(Yaml { line, value: Value::Sequence(Vec::new()) }, anchor)),
            Event::MappingStart(anchor, _) => self.open.push(Frame::new(Yaml { line, value: Value::Mapping(Vec::new()) }, anchor)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.open.pop() {
                    let (node, anchor) = frame.finish();
                    self.complete(node, anchor);
                }
            }
            _ => {}
        }
    }
}

impl Frame {
    fn new(node: Yaml, anchor: usize) -> Self {
        Frame { node, anchor, key: None, merged: Vec::new() }
    }

    fn finish(mut self) -> (Yaml, usize) {
        if let Value::Mapping(entries) = &mut self.node.value {
            for (key, value) in self.merged {
                if !entries.iter().any(|(k, _)| k.name == key.name) {
                    entries.push((key, value));
                }
            }
            entries.sort_by_key(|(key, _)| key.line);
        }
        (self.node, self.anchor)
    }
}

impl Loader {
    fn fail(&mut self, line: usize, message: String) {
        self.error.get_or_insert(SyntaxError { line, message });
    }

    /// A finished value: the document, an item of the open sequence, or a key or value of
    /// the open mapping.
    fn complete(&mut self, node: Yaml, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.open.last_mut() else {
            self.document.get_or_insert(node);
            return;
        };
        let result = match &mut frame.node.value {
            Value::Sequence(items) => {
                items.push(node);
                Ok(())
            }
            Value::Mapping(entries) => match frame.key.take() {
                None => match node.value {
                    Value::Scalar(name) => {
                        frame.key = Some(Key { name, line: node.line });
                        Ok(())
                    }
                    Value::Null => {
                        frame.key = Some(Key { name: String::new(), line: node.line });
                        Ok(())
                    }
                    _ => Err(SyntaxError { line: node.line, message: "a mapping key must be a single value".into() }),
                },
                Some(key) if key.name == "<<" => merge(&mut frame.merged, node).map_err(|message| SyntaxError { line: key.line, message }),
                Some(key) => match entries.iter().find(|(k, _)| k.name == key.name) {
                    Some((first, _)) => {
                        Err(SyntaxError { line: key.line, message: format!("the key {:?} is given twice (first at line {})", key.name, first.line) })
                    }
                    None => {
                        entries.push((key, node));
                        Ok(())
                    }
                },
            },
            _ => unreachable!("only sequences and mappings are open"),
        };
        if let Err(error) = result {
            self.error.get_or_insert(error);
        }
    }
}

/// A `<<` merge key: the entries of a mapping, or of each mapping of a list (the first one
/// that sets a key wins, as in YAML's merge key type).
fn merge(merged: &mut Vec<(Key, Yaml)>, source: Yaml) -> Result<(), String> {
    let sources = match source.value {
        Value::Mapping(_) => vec![source],
        Value::Sequence(items) => items,
        _ => return Err("`<<` merges a mapping or a list of mappings".into()),
    };
    for source in sources {
        let Value::Mapping(entries) = source.value else { return Err("`<<` merges a mapping or a list of mappings".into()) };
        for (key, value) in entries {
            if !merged.iter().any(|(k, _)| k.name == key.name) {
                merged.push((key, value));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Yaml, key: &str) -> (String, usize) {
        let (k, v) = node.as_mapping().unwrap().iter().find(|(k, _)| k.name == key).unwrap();
        (v.as_scalar().unwrap_or("<not a scalar>").to_string(), k.line)
    }

    #[test]
    fn keys_and_values_keep_their_lines() {
        let doc = parse("a: 1\nb:\n  c: two\n  d: [x, y]\n").unwrap();
        assert_eq!(scalar(&doc, "a"), ("1".into(), 1));
        let (_, b) = &doc.as_mapping().unwrap()[1];
        assert_eq!(scalar(b, "c"), ("two".into(), 3));
        let (d, list) = &b.as_mapping().unwrap()[1];
        assert_eq!((d.line, list.kind()), (4, "a list"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys_are_expanded() {
        let doc = parse("x-common: &common\n  image: alpine\n  user: app\nsvc:\n  <<: *common\n  user: root\n").unwrap();
        let (_, svc) = &doc.as_mapping().unwrap()[1];
        assert_eq!(scalar(svc, "image").0, "alpine");
        assert_eq!(scalar(svc, "user").0, "root", "a key written beside `<<` wins");
    }

    #[test]
    fn null_forms_and_quoted_strings() {
        let doc = parse("a:\nb: ~\nc: ''\nd: \"null\"\n").unwrap();
        let values: Vec<&Value> = doc.as_mapping().unwrap().iter().map(|(_, v)| &v.value).collect();
        assert_eq!(values, [&Value::Null, &Value::Null, &Value::Scalar(String::new()), &Value::Scalar("null".into())]);
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_name_their_line() {
        assert_eq!(parse("a: [1, 2\nb: 3\n").unwrap_err().line, 2);
        let duplicate = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(duplicate.line, 3);
        assert!(duplicate.message.contains("given twice (first at line 1)"), "{}", duplicate.message);
    }
}
