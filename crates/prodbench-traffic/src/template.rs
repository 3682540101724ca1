//! Path templates: a request path with seeded random values, so that load spreads over keys
//! the way real traffic does (a cache that only ever sees `/item/1` measures nothing).
//!
//! Placeholders: `{int:LO-HI}` (an integer in the inclusive range), `{choice:a|b|c}` (one of
//! the options), `{hex:N}` (N lowercase hex digits, 1 to 64). Everything else is literal and
//! must be characters a URI path or query may hold. A template is checked once, when the plan
//! is, so a bad one is an error naming it rather than a failed request at run time.

use crate::rng::Rng;

/// A template that did not parse: the template itself and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path template `{template}`: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Int { low: u64, high: u64 },
    Choice(Vec<String>),
    Hex(usize),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathTemplate {
    parts: Vec<Part>,
}

impl PathTemplate {
    pub(crate) fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let error = |reason: String| TemplateError { template: template.to_string(), reason };
        if !template.starts_with('/') {
            return Err(error("must start with `/`".into()));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let literal_end = rest.find(['{', '}']).unwrap_or(rest.len());
            if literal_end > 0 {
                parts.push(Part::Literal(path_text(&rest[..literal_end]).map_err(error)?.to_string()));
            }
            rest = &rest[literal_end..];
            if rest.starts_with('}') {
                return Err(error("`}` without a `{`".into()));
            }
            if let Some(open) = rest.strip_prefix('{') {
                let close = open.find('}').ok_or_else(|| error("`{` without a `}`".into()))?;
                parts.push(placeholder(&open[..close]).map_err(error)?);
                rest = &open[close + 1..];
            }
        }
        Ok(PathTemplate { parts })
    }

    pub(crate) fn render(&self, rng: &mut Rng) -> String {
        let mut path = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => path.push_str(text),
                Part::Int { low, high } => path.push_str(&uniform_between(rng, *low, *high).to_string()),
                Part::Choice(options) => path.push_str(&options[rng.below(options.len() as u64) as usize]),
                Part::Hex(digits) => push_hex(&mut path, rng, *digits),
            }
        }
        path
    }
}

/// One `{kind:argument}` placeholder (the text between the braces).
fn placeholder(inside: &str) -> Result<Part, String> {
    let (kind, argument) = inside.split_once(':').ok_or_else(|| format!("`{{{inside}}}` is not `{{kind:argument}}`"))?;
    match kind {
        "int" => {
            let bounds = argument.split_once('-').and_then(|(low, high)| Some((low.parse::<u64>().ok()?, high.parse::<u64>().ok()?)));
            match bounds {
                Some((low, high)) if low <= high => Ok(Part::Int { low, high }),
                _ => Err(format!("`{{int:{argument}}}` needs `LOW-HIGH`, two integers with LOW <= HIGH")),
            }
        }
        "choice" => {
            let options: Vec<String> = argument.split('|').map(|option| path_text(option).map(str::to_string)).collect::<Result<_, _>>()?;
            if options.iter().any(String::is_empty) {
                return Err(format!("`{{choice:{argument}}}` has an empty option"));
            }
            Ok(Part::Choice(options))
        }
        "hex" => match argument.parse::<usize>() {
            Ok(digits @ 1..=64) => Ok(Part::Hex(digits)),
            _ => Err(format!("`{{hex:{argument}}}` needs a digit count from 1 to 64")),
        },
        _ => Err(format!("unknown placeholder `{kind}` (known: int, choice, hex)")),
    }
}

/// `text` if every character may stand in a URI path or query as it is.
fn path_text(text: &str) -> Result<&str, String> {
    match text.chars().find(|&c| !c.is_ascii_graphic() || "#\"<>\\^`{|}".contains(c)) {
        Some(c) => Err(format!("{c:?} may not stand in a URI path (percent-encode it)")),
        None => Ok(text),
    }
}

fn uniform_between(rng: &mut Rng, low: u64, high: u64) -> u64 {
    match (high - low).checked_add(1) {
        Some(span) => low + rng.below(span),
        None => rng.next_u64(),
    }
}

fn push_hex(path: &mut String, rng: &mut Rng, digits: usize) {
    let mut bits = 0;
    for i in 0..digits {
        if i % 16 == 0 {
            bits = rng.next_u64();
        }
        path.push(char::from(b"0123456789abcdef"[(bits & 0xf) as usize]));
        bits >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, seed: u64) -> String {
        PathTemplate::parse(template).unwrap().render(&mut Rng::new(seed))
    }

    #[test]
    fn literal_paths_render_as_they_are() {
        assert_eq!(render("/health?verbose=1&x=%20", 1), "/health?verbose=1&x=%20");
    }

    #[test]
    fn placeholders_render_within_their_ranges() {
        for seed in 0..200 {
            let path = render("/items/{int:5-7}/{choice:red|green}?key={hex:20}", seed);
            let rest = path.strip_prefix("/items/").unwrap();
            let (number, rest) = rest.split_once('/').unwrap();
            assert!((5..=7).contains(&number.parse::<u64>().unwrap()), "{path}");
            let (colour, key) = rest.split_once("?key=").unwrap();
            assert!(["red", "green"].contains(&colour), "{path}");
            assert_eq!(key.len(), 20, "{path}");
            assert!(key.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{path}");
        }
    }

    #[test]
    fn every_value_of_a_range_and_every_choice_comes_up() {
        let mut rng = Rng::new(9);
        let template = PathTemplate::parse("/{int:0-3}{choice:a|b}").unwrap();
        let seen: std::collections::BTreeSet<String> = (0..400).map(|_| template.render(&mut rng)).collect();
        assert_eq!(seen.len(), 8, "{seen:?}");
    }

    #[test]
    fn the_full_u64_range_does_not_overflow() {
        let path = render(&format!("/{{int:0-{}}}", u64::MAX), 5);
        assert!(path[1..].parse::<u64>().is_ok(), "{path}");
    }

    #[test]
    fn the_same_seed_renders_the_same_path() {
        let template = "/u/{hex:8}/{int:1-1000000}";
        assert_eq!(render(template, 11), render(template, 11));
        assert_ne!(render(template, 11), render(template, 12));
    }

    #[test]
    fn a_bad_template_is_an_error_naming_it() {
        let cases = [
            ("items/1", "must start with `/`"),
            ("/a/{int:1-1000", "`{` without a `}`"),
            ("/a}", "`}` without a `{`"),
            ("/a/{int:9-1}", "LOW <= HIGH"),
            ("/a/{int:x-1}", "two integers"),
            ("/a/{hex:0}", "from 1 to 64"),
            ("/a/{hex:65}", "from 1 to 64"),
            ("/a/{choice:a||b}", "empty option"),
            ("/a/{uuid:4}", "unknown placeholder `uuid`"),
            ("/a/{int}", "is not `{kind:argument}`"),
            ("/a b", "' ' may not stand"),
            ("/a#frag", "'#' may not stand"),
            ("/{choice:a|b c}", "' ' may not stand"),
        ];
        for (template, reason) in cases {
            let error = PathTemplate::parse(template).unwrap_err();
            assert_eq!(error.template, template);
            assert!(error.to_string().contains(template) && error.reason.contains(reason), "{template}: {error}");
        }
    }

    #[test]
    fn every_rendering_is_a_valid_request_target() {
        let template = PathTemplate::parse("/a/{choice:x|y-z|~_.!$&'()*+,;=:@%41}/{int:0-9}?q={hex:3}").unwrap();
        let mut rng = Rng::new(0);
        for _ in 0..50 {
            let path = template.render(&mut rng);
            assert!(path.parse::<hyper::http::uri::PathAndQuery>().is_ok(), "{path}");
        }
    }
}
