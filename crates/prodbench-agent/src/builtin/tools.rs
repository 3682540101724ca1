//! The built-in agent's tools, run in the sandbox.
//!
//! A tool call's outcome is one of three things, kept apart because they count
//! differently: a result (possibly an error the tool reports, like a missing file: the
//! model's ordinary feedback), a *format error* (unknown tool, arguments that are not the
//! declared JSON: counted, and too many in a row end the trial), or an infrastructure
//! failure (the sandbox broke: the trial's, not the agent's).
//!
//! File tools read through `cat` and write by uploading to a scratch path and copying over
//! the target with `cat`, which keeps the target's mode and owner.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prodbench_sandbox::{ExecOutput, ExecRequest, Sandbox, SandboxError};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mcp::McpTools;
use super::shell::ShellSession;
use crate::ANSWER_PATH;

const DEFAULT_COMMAND_TIMEOUT: u64 = 120;
const MAX_COMMAND_TIMEOUT: u64 = 1800;
/// Lines `read_file` returns without a range.
const READ_LINES: usize = 2000;
/// Bytes a file tool reads at most.
const MAX_FILE_BYTES: usize = 8 << 20;
const SEARCH_MATCHES: usize = 200;

/// What running one tool call gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    /// Shown to the model; `is_error` when the tool itself reports a failure.
    Result { content: String, is_error: bool },
    /// The call was malformed: shown to the model and counted.
    FormatError(String),
    /// `submit`: the agent is done.
    Submitted { answer: Option<String> },
}

impl ToolOutcome {
    fn ok(content: impl Into<String>) -> Self {
        ToolOutcome::Result { content: content.into(), is_error: false }
    }

    fn error(content: impl Into<String>) -> Self {
        ToolOutcome::Result { content: content.into(), is_error: true }
    }
}

/// The tools of one trial: the sandbox, its shell session and the task's MCP servers.
pub struct Toolbox<'a> {
    pub sandbox: &'a dyn Sandbox,
    pub shell: ShellSession,
    pub mcp: McpTools,
    pub user: Option<String>,
    uploads: AtomicU64,
}

impl<'a> Toolbox<'a> {
    pub fn new(sandbox: &'a dyn Sandbox, shell: ShellSession, mcp: McpTools, user: Option<String>) -> Self {
        Toolbox { sandbox, shell, mcp, user, uploads: AtomicU64::new(0) }
    }

    /// The built-in tools only (no MCP servers), with the agent's output limits.
    pub fn builtin_only(sandbox: &'a dyn Sandbox, user: Option<String>) -> Self {
        Toolbox::new(sandbox, ShellSession::new(super::OUTPUT_KEEP_BYTES, user.clone()), McpTools::default(), user)
    }

    /// Runs one call. `arguments` is the raw JSON text the model wrote.
    pub async fn call(&self, name: &str, arguments: &str) -> Result<ToolOutcome, SandboxError> {
        let args = match parse_arguments(arguments) {
            Ok(args) => args,
            Err(problem) => return Ok(ToolOutcome::FormatError(format!("the arguments of `{name}` are not a JSON object ({problem})"))),
        };
        match name {
            "bash" => self.with(name, args, |t, a: BashArgs| t.bash(a)).await,
            "read_file" => self.with(name, args, |t, a: ReadArgs| t.read_file(a)).await,
            "write_file" => self.with(name, args, |t, a: WriteArgs| t.write_file(a)).await,
            "edit_file" => self.with(name, args, |t, a: EditArgs| t.edit_file(a)).await,
            "search" => self.with(name, args, |t, a: SearchArgs| t.search(a)).await,
            "submit" => self.with(name, args, |t, a: SubmitArgs| t.submit(a)).await,
            _ if self.mcp.has(name) => Ok(self.mcp.call(name, args).await),
            _ => Ok(ToolOutcome::FormatError(format!("there is no tool named `{name}`; the tools are {}", self.names().join(", ")))),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = ["bash", "read_file", "write_file", "edit_file", "search", "submit"].map(String::from).to_vec();
        names.extend(self.mcp.names());
        names
    }

    /// Deserializes the arguments into the tool's type (a mismatch is a format error) and runs it.
    async fn with<'s, A, F, Fut>(&'s self, name: &str, args: Map<String, Value>, tool: F) -> Result<ToolOutcome, SandboxError>
    where
        A: for<'de> Deserialize<'de>,
        F: FnOnce(&'s Self, A) -> Fut,
        Fut: std::future::Future<Output = Result<ToolOutcome, SandboxError>>,
    {
        match serde_json::from_value::<A>(Value::Object(args)) {
            Ok(parsed) => tool(self, parsed).await,
            Err(e) => Ok(ToolOutcome::FormatError(format!("bad arguments for `{name}`: {e}"))),
        }
    }

    async fn bash(&self, args: BashArgs) -> Result<ToolOutcome, SandboxError> {
        let timeout = Duration::from_secs(args.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT).clamp(1, MAX_COMMAND_TIMEOUT));
        let result = self.shell.run(self.sandbox, &args.command, timeout).await?;
        let is_error = result.exit_code != Some(0);
        Ok(ToolOutcome::Result { content: result.render(timeout), is_error })
    }

    async fn read_file(&self, args: ReadArgs) -> Result<ToolOutcome, SandboxError> {
        let path = self.resolve(&args.path).await?;
        let text = match self.read(&path).await? {
            Ok(text) => text,
            Err(problem) => return Ok(ToolOutcome::error(problem)),
        };
        Ok(number_lines(&path, &text, args.start_line, args.end_line))
    }

    async fn write_file(&self, args: WriteArgs) -> Result<ToolOutcome, SandboxError> {
        let path = self.resolve(&args.path).await?;
        Ok(match self.write(&path, &args.content).await? {
            Ok(()) => ToolOutcome::ok(format!("wrote {} bytes to {path}", args.content.len())),
            Err(problem) => ToolOutcome::error(problem),
        })
    }

    async fn edit_file(&self, args: EditArgs) -> Result<ToolOutcome, SandboxError> {
        let path = self.resolve(&args.path).await?;
        let text = match self.read(&path).await? {
            Ok(text) => text,
            Err(problem) => return Ok(ToolOutcome::error(problem)),
        };
        let edited = match replace(&text, &args.old_string, &args.new_string, args.replace_all.unwrap_or(false)) {
            Ok(edited) => edited,
            Err(problem) => return Ok(ToolOutcome::error(format!("{path}: {problem}"))),
        };
        Ok(match self.write(&path, &edited.text).await? {
            Ok(()) => ToolOutcome::ok(format!("replaced {} occurrence(s) in {path} (at line {})", edited.count, edited.first_line)),
            Err(problem) => ToolOutcome::error(problem),
        })
    }

    async fn search(&self, args: SearchArgs) -> Result<ToolOutcome, SandboxError> {
        let include = args.glob.map(|g| format!(" --include={}", quote(&g))).unwrap_or_default();
        let path = quote(args.path.as_deref().unwrap_or("."));
        let script = format!(
            "grep -rnIE --exclude-dir=.git{include} -e {} -- {path} > /tmp/.prodbench-search 2>&1; s=$?; n=$(wc -l < /tmp/.prodbench-search); head -n {SEARCH_MATCHES} /tmp/.prodbench-search; [ $n -gt {SEARCH_MATCHES} ] && echo \"[... $((n - {SEARCH_MATCHES})) more matching lines not shown; narrow the pattern or path]\"; exit $s",
            quote(&args.pattern)
        );
        let output = self.exec_in_cwd(&script).await?;
        Ok(match output.exit_code {
            Some(0) => ToolOutcome::ok(output.stdout),
            Some(1) => ToolOutcome::ok("no matches"),
            _ => ToolOutcome::error(format!("search failed: {}", output.stdout.trim())),
        })
    }

    async fn submit(&self, args: SubmitArgs) -> Result<ToolOutcome, SandboxError> {
        if let Some(answer) = &args.answer {
            let written = self.write(ANSWER_PATH, answer).await?;
            if let Err(problem) = written {
                return Ok(ToolOutcome::error(format!("could not save the answer: {problem}")));
            }
        }
        Ok(ToolOutcome::Submitted { answer: args.answer })
    }

    /// `path`, made absolute against the shell's current directory.
    async fn resolve(&self, path: &str) -> Result<String, SandboxError> {
        if path.starts_with('/') {
            return Ok(path.to_string());
        }
        let cwd = self.shell.cwd(self.sandbox).await?;
        Ok(format!("{}/{}", cwd.trim_end_matches('/'), path.trim_start_matches("./")))
    }

    /// A text file's content, or why it cannot be read (for the model).
    async fn read(&self, path: &str) -> Result<Result<String, String>, SandboxError> {
        let script = format!("if [ -d {p} ]; then echo 'is a directory' >&2; exit 3; fi; cat -- {p}", p = quote(path));
        let mut request = ExecRequest::shell(script).user(self.user.clone()).timeout(Duration::from_secs(60));
        request.output_cap = MAX_FILE_BYTES;
        let output = self.sandbox.exec(request).await?;
        if !output.success() {
            return Ok(Err(format!("cannot read {path}: {}", output.stderr.trim().trim_start_matches("cat: "))));
        }
        if output.truncated_bytes > 0 {
            return Ok(Err(format!("{path} is larger than {} MiB; look at it with bash (head, sed -n, grep)", MAX_FILE_BYTES >> 20)));
        }
        if output.stdout.contains('\0') {
            return Ok(Err(format!("{path} is a binary file")));
        }
        Ok(Ok(output.stdout))
    }

    /// Writes `content` to `path` (creating parents), keeping an existing file's mode.
    async fn write(&self, path: &str, content: &str) -> Result<Result<(), String>, SandboxError> {
        let scratch = tempfile::NamedTempFile::new().map_err(|e| SandboxError::op("writing a file", e))?;
        std::fs::write(scratch.path(), content).map_err(|e| SandboxError::op("writing a file", e))?;
        let staged = format!("/tmp/.prodbench-upload-{}", self.uploads.fetch_add(1, Ordering::Relaxed));
        self.sandbox.upload(scratch.path(), &staged).await?;
        let p = quote(path);
        let script = format!("mkdir -p -- \"$(dirname -- {p})\" && cat {staged} > {p}; s=$?; rm -f {staged}; exit $s");
        let output = self.sandbox.exec(ExecRequest::shell(script).user(self.user.clone()).timeout(Duration::from_secs(60))).await?;
        Ok(if output.success() { Ok(()) } else { Err(format!("cannot write {path}: {}", output.stderr.trim())) })
    }

    async fn exec_in_cwd(&self, script: &str) -> Result<ExecOutput, SandboxError> {
        let cwd = self.shell.cwd(self.sandbox).await?;
        self.sandbox.exec(ExecRequest::shell(script).cwd(cwd).user(self.user.clone()).timeout(Duration::from_secs(120))).await
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BashArgs {
    command: String,
    timeout: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
    start_line: Option<usize>,
    end_line: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    path: String,
    old_string: String,
    new_string: String,
    replace_all: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitArgs {
    answer: Option<String>,
}

/// How arguments that were not a JSON object are recorded in a trajectory:
/// `{"_raw": TEXT}` (ATIF requires an object).
pub const RAW_ARGUMENTS: &str = "_raw";

/// The arguments as an object. Models sometimes send `""` for "no arguments".
pub fn parse_arguments(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("got {}", json_kind(&other))),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Lines `start..=end` of `text` with their numbers, or the first [`READ_LINES`].
fn number_lines(path: &str, text: &str, start: Option<usize>, end: Option<usize>) -> ToolOutcome {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return ToolOutcome::ok(format!("{path} is empty"));
    }
    let first = start.unwrap_or(1).max(1);
    if first > lines.len() {
        return ToolOutcome::error(format!("{path} has {} lines; start_line {first} is past the end", lines.len()));
    }
    let last = end.unwrap_or(first + READ_LINES - 1).min(lines.len()).max(first);
    let mut out: String = (first..=last).map(|n| format!("{n:6}\t{}\n", lines[n - 1])).collect();
    if end.is_none() && last < lines.len() {
        out.push_str(&format!("[{path} has {} lines; showing {first}-{last}. Pass start_line/end_line for more.]\n", lines.len()));
    }
    ToolOutcome::ok(out)
}

#[derive(Debug)]
pub struct Edited {
    pub text: String,
    pub count: usize,
    pub first_line: usize,
}

/// `text` with `old` replaced by `new`: exactly once, or everywhere with `all`.
pub fn replace(text: &str, old: &str, new: &str, all: bool) -> Result<Edited, String> {
    if old.is_empty() {
        return Err("old_string is empty; use write_file to create or overwrite a file".into());
    }
    let positions: Vec<usize> = text.match_indices(old).map(|(i, _)| i).collect();
    let line_of = |byte: usize| text[..byte].matches('\n').count() + 1;
    match positions.len() {
        0 => Err("old_string was not found. Read the file again and copy the exact text, whitespace and indentation included".into()),
        n if n > 1 && !all => {
            let lines: Vec<String> = positions.iter().take(10).map(|p| line_of(*p).to_string()).collect();
            Err(format!("old_string occurs {n} times (lines {}); include more surrounding text to make it unique, or set replace_all", lines.join(", ")))
        }
        n => {
            let text = if all { text.replace(old, new) } else { text.replacen(old, new, 1) };
            Ok(Edited { text, count: n, first_line: line_of(positions[0]) })
        }
    }
}

/// `text` as one single-quoted shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_needs_exactly_one_match_unless_all() {
        let text = "a = 1\nb = 2\na = 1\n";
        assert!(replace(text, "zzz", "y", false).unwrap_err().contains("not found"));
        let err = replace(text, "a = 1", "a = 3", false).unwrap_err();
        assert!(err.contains("occurs 2 times (lines 1, 3)"), "{err}");
        let edited = replace(text, "b = 2", "b = 5", false).unwrap();
        assert_eq!((edited.text.as_str(), edited.count, edited.first_line), ("a = 1\nb = 5\na = 1\n", 1, 2));
        assert_eq!(replace(text, "a = 1", "x", true).unwrap().text, "x\nb = 2\nx\n");
        assert!(replace(text, "", "x", false).is_err());
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert!(parse_arguments("").unwrap().is_empty());
        assert_eq!(parse_arguments(r#"{"a": 1}"#).unwrap()["a"], 1);
        assert!(parse_arguments("[1]").unwrap_err().contains("an array"));
        assert!(parse_arguments("{oops").unwrap_err().contains("invalid JSON"));
    }

    #[test]
    fn line_ranges_are_numbered_and_clamped() {
        let text = "one\ntwo\nthree\n";
        let ToolOutcome::Result { content, .. } = number_lines("f", text, Some(2), Some(9)) else { panic!() };
        assert_eq!(content, "     2\ttwo\n     3\tthree\n");
        let ToolOutcome::Result { content, is_error } = number_lines("f", text, Some(7), None) else { panic!() };
        assert!(is_error && content.contains("has 3 lines"), "{content}");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
