//! Claude Code (`@anthropic-ai/claude-code` on npm), in print mode with stream-json output.
//!
//! Checked against the 2.1 CLI: `--print --output-format stream-json` needs `--verbose`;
//! `--dangerously-skip-permissions` refuses to run as root unless `IS_SANDBOX=1`;
//! `ANTHROPIC_BASE_URL` is the server's root (the CLI appends `/v1/messages`);
//! `CLAUDE_CONFIG_DIR` moves its session files (kept as `agent/claude-code-sessions`).
//! The stream on stdout is the log converted to ATIF.

use std::collections::BTreeMap;

use prodbench_llm::Protocol;

use super::atif::LogFormat;
use super::{Adapter, Arg, LogSource, Plan, Settings, install, lit};

pub(super) const ADAPTER: Adapter = Adapter { name: "claude-code", args: &["version", "install"], plan };

const PACKAGE: &str = "@anthropic-ai/claude-code";
const CONFIG_DIR: &str = "/logs/agent/claude-code";

fn plan(settings: &Settings) -> Result<Plan, String> {
    let model = settings.model()?;
    if model.protocol != Protocol::Anthropic {
        return Err(
            "claude-code speaks the Anthropic Messages API: pass --model-protocol anthropic (and --model-base-url for a server other than api.anthropic.com)"
                .into(),
        );
    }
    let env = BTreeMap::from([
        ("ANTHROPIC_API_KEY".to_string(), model.key_or_placeholder()),
        ("ANTHROPIC_BASE_URL".to_string(), model.root_url().to_string()),
        ("CLAUDE_CONFIG_DIR".to_string(), CONFIG_DIR.to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_string(), "1".to_string()),
        ("IS_SANDBOX".to_string(), "1".to_string()),
    ]);
    let mut command: Vec<Arg> =
        ["claude", "--print", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "--model"].map(lit).to_vec();
    command.extend([lit(&model.name), Arg::Instruction]);
    Ok(Plan {
        install: Some(install::npm(PACKAGE, "claude", settings.version()?)),
        command,
        env,
        instruction_var: None,
        dirs: Vec::new(),
        logs: vec![(format!("{CONFIG_DIR}/projects"), "claude-code-sessions".into())],
        trajectory: Some((LogFormat::ClaudeCode, LogSource::Stdout)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{argv, settings};
    use super::*;

    #[test]
    fn runs_print_mode_with_the_model_and_the_key_only_in_the_environment() {
        let plan = plan(&settings("claude-code", Protocol::Anthropic, "https://api.anthropic.com/v1", &[])).unwrap();
        assert_eq!(
            argv(&plan),
            ["claude", "--print", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "--model", "test-model", "<instruction>"]
        );
        let env: Vec<(&str, &str)> = plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            env,
            [
                ("ANTHROPIC_API_KEY", "sk-secret"),
                ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                ("CLAUDE_CONFIG_DIR", "/logs/agent/claude-code"),
                ("IS_SANDBOX", "1"),
            ]
        );
        assert!(!plan.command_line().contains("sk-secret"));
        assert_eq!(plan.logs, [("/logs/agent/claude-code/projects".to_string(), "claude-code-sessions".to_string())]);
    }

    #[test]
    fn installs_with_npm_and_pins_the_version() {
        let latest = plan(&settings("claude-code", Protocol::Anthropic, "http://127.0.0.1:8080", &[])).unwrap().install.unwrap();
        assert!(
            latest.contains("npm install --global --prefix /tmp/prodbench-agent/npm --allow-scripts=@anthropic-ai/claude-code @anthropic-ai/claude-code\n"),
            "{latest}"
        );
        assert!(latest.contains("command -v npm >/dev/null 2>&1 || apt_install nodejs npm"), "{latest}");
        assert!(latest.contains("ln -sf /tmp/prodbench-agent/npm/bin/claude /tmp/prodbench-agent/bin/claude\nclaude --version"), "{latest}");
        let pinned = plan(&settings("claude-code", Protocol::Anthropic, "http://127.0.0.1:8080", &[("version", "2.0.14")])).unwrap().install.unwrap();
        assert!(pinned.contains(" @anthropic-ai/claude-code@2.0.14\n"), "{pinned}");
    }

    #[test]
    fn refuses_an_openai_endpoint() {
        let error = plan(&settings("claude-code", Protocol::OpenAi, "https://api.openai.com/v1", &[])).unwrap_err();
        assert!(error.contains("--model-protocol anthropic"), "{error}");
    }
}
