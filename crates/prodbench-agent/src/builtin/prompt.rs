//! The built-in agent's prompt and tool definitions, versioned.
//!
//! Results are only comparable between runs with the same prompt, so the exact system
//! prompt, first message and tool definitions are recorded with every trial (in the
//! trajectory's `agent.extra` and in `agent/prompt.json`) under [`PROMPT_VERSION`]. Change
//! any text here and the version must change with it; a test pins a digest of the text to
//! the version so that cannot be forgotten.

use prodbench_llm::ToolSpec;
use serde_json::json;

pub const PROMPT_VERSION: &str = "prodbench-agent-v1";

pub const SYSTEM_PROMPT: &str = "\
You are an autonomous software engineer working alone in a sandboxed Linux machine. \
Complete the task you are given by calling the tools; nobody will answer questions, so \
decide for yourself and keep going until the task is done.

How to work:
- Look before you change: list and read the relevant files first.
- Make the smallest change that does the job, then check it (run the program or its tests).
- The bash tool keeps its working directory and variables between calls. Commands have a \
time limit: do not start interactive programs, and put servers in the background with `&`.
- Paths in the file tools are relative to the shell's current directory unless absolute.
- When the task is done, call `submit`. If the task asks a question, pass your final answer \
as `answer`. Calling `submit` ends your work; there is no second chance.";

/// The first user message: the task's instruction and where the agent is.
pub fn first_message(instruction: &str, workdir: &str) -> String {
    format!("{}\n\n(Your working directory is {workdir}.)", instruction.trim_end())
}

/// The tools every run of the built-in agent has (MCP tools are added per task).
pub fn builtin_tools() -> Vec<ToolSpec> {
    vec![
        tool(
            "bash",
            "Run a bash command. The working directory, variables, functions and aliases persist between calls. Output (stdout and stderr together) is cut to its head and tail when long.",
            json!({
                "command": {"type": "string", "description": "The command line to run."},
                "timeout": {"type": "integer", "description": "Seconds before the command is killed (default 120, at most 1800)."}
            }),
            &["command"],
        ),
        tool(
            "read_file",
            "Read a text file with line numbers. Give start_line and end_line (1-based, inclusive) to read part of a long file.",
            json!({
                "path": {"type": "string"},
                "start_line": {"type": "integer"},
                "end_line": {"type": "integer"}
            }),
            &["path"],
        ),
        tool(
            "write_file",
            "Create or overwrite a file with the given content. Parent directories are created.",
            json!({"path": {"type": "string"}, "content": {"type": "string"}}),
            &["path", "content"],
        ),
        tool(
            "edit_file",
            "Replace an exact string in a file. old_string must appear exactly once (whitespace included) unless replace_all is true.",
            json!({
                "path": {"type": "string"},
                "old_string": {"type": "string", "description": "Text to replace, copied exactly from the file."},
                "new_string": {"type": "string"},
                "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."}
            }),
            &["path", "old_string", "new_string"],
        ),
        tool(
            "search",
            "Search file contents with a regular expression (grep -E), recursively. Returns matching lines as path:line:text.",
            json!({
                "pattern": {"type": "string"},
                "path": {"type": "string", "description": "File or directory to search (default: current directory)."},
                "glob": {"type": "string", "description": "Only files whose name matches, e.g. *.py."}
            }),
            &["pattern"],
        ),
        tool(
            "submit",
            "Finish the task. Pass answer when the task asks a question.",
            json!({"answer": {"type": "string", "description": "Your final answer, if the task asks for one."}}),
            &[],
        ),
    ]
}

fn tool(name: &str, description: &str, properties: serde_json::Value, required: &[&str]) -> ToolSpec {
    ToolSpec { name: name.into(), description: description.into(), parameters: json!({"type": "object", "properties": properties, "required": required}) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// If this fails, you changed the prompt or the tools: bump PROMPT_VERSION and update
    /// the digest here.
    #[test]
    fn the_prompt_version_changes_with_the_text() {
        let text = format!("{SYSTEM_PROMPT}\n{}\n{}", first_message("X", "/w"), serde_json::to_string(&builtin_tools()).unwrap());
        let digest = text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        assert_eq!((PROMPT_VERSION, format!("{digest:016x}")), ("prodbench-agent-v1", "3cb498a84bb6d91d".to_string()));
    }
}
