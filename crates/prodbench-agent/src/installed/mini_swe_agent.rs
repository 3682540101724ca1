//! mini-swe-agent (`mini-swe-agent` on PyPI), through `mini` in yolo mode.
//!
//! Checked against 2.4: `--yolo --exit-immediately` runs without asking anything and exits
//! when the model submits; `--output` writes its trajectory (`agent/mini-swe-agent.traj.json`,
//! the log converted to ATIF). The model goes through litellm, so its name takes the
//! protocol as a prefix (`openai/NAME`, `anthropic/NAME`) and the key and base URL go in
//! litellm's variables for that provider (`OPENAI_API_BASE` with `/v1`, `ANTHROPIC_API_BASE`
//! without). `MSWEA_CONFIGURED` skips its first-run questions, `MSWEA_COST_TRACKING`
//! keeps a model litellm has no price for from stopping the run, and
//! `LITELLM_LOCAL_MODEL_COST_MAP` keeps litellm from fetching its price list at start.

use std::collections::BTreeMap;

use prodbench_llm::Protocol;

use super::atif::LogFormat;
use super::{Adapter, Arg, LogSource, Plan, Settings, install, lit};

pub(super) const ADAPTER: Adapter = Adapter { name: "mini-swe-agent", args: &["version", "install"], plan };

const TRAJECTORY: &str = "/logs/agent/mini-swe-agent.traj.json";
const TRAJECTORY_NAME: &str = "mini-swe-agent.traj.json";

fn plan(settings: &Settings) -> Result<Plan, String> {
    let model = settings.model()?;
    let (provider, key_var, base_var, base_url) = match model.protocol {
        Protocol::OpenAi => ("openai", "OPENAI_API_KEY", "OPENAI_API_BASE", model.base_url.as_str()),
        Protocol::Anthropic => ("anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_API_BASE", model.root_url()),
    };
    let env = BTreeMap::from([
        (key_var.to_string(), model.key_or_placeholder()),
        (base_var.to_string(), base_url.to_string()),
        ("LITELLM_LOCAL_MODEL_COST_MAP".to_string(), "True".to_string()),
        ("MSWEA_CONFIGURED".to_string(), "true".to_string()),
        ("MSWEA_COST_TRACKING".to_string(), "ignore_errors".to_string()),
        ("MSWEA_GLOBAL_CONFIG_DIR".to_string(), "/logs/agent/mini-swe-agent".to_string()),
    ]);
    let command = vec![
        lit("mini"),
        lit("--yolo"),
        lit("--exit-immediately"),
        lit("--model"),
        lit(format!("{provider}/{}", model.name)),
        lit("--task"),
        Arg::Instruction,
        lit("--output"),
        lit(TRAJECTORY),
    ];
    Ok(Plan {
        install: Some(install::pip("mini-swe-agent", "mini", settings.version()?)),
        command,
        env,
        instruction_var: None,
        dirs: Vec::new(),
        logs: vec![(TRAJECTORY.into(), TRAJECTORY_NAME.into())],
        trajectory: Some((LogFormat::MiniSweAgent, LogSource::Downloaded(TRAJECTORY_NAME.into()))),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{argv, settings};
    use super::*;

    #[test]
    fn runs_yolo_mode_with_a_litellm_model_name() {
        let plan = plan(&settings("mini-swe-agent", Protocol::OpenAi, "http://127.0.0.1:8080/v1", &[])).unwrap();
        assert_eq!(
            argv(&plan),
            [
                "mini",
                "--yolo",
                "--exit-immediately",
                "--model",
                "openai/test-model",
                "--task",
                "<instruction>",
                "--output",
                "/logs/agent/mini-swe-agent.traj.json"
            ]
        );
        let env: Vec<(&str, &str)> = plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            env,
            [
                ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
                ("MSWEA_CONFIGURED", "true"),
                ("MSWEA_COST_TRACKING", "ignore_errors"),
                ("MSWEA_GLOBAL_CONFIG_DIR", "/logs/agent/mini-swe-agent"),
                ("OPENAI_API_BASE", "http://127.0.0.1:8080/v1"),
                ("OPENAI_API_KEY", "sk-secret"),
            ]
        );
        assert!(!plan.command_line().contains("sk-secret"));
    }

    #[test]
    fn an_anthropic_model_uses_litellm_anthropic_variables() {
        let plan = plan(&settings("mini-swe-agent", Protocol::Anthropic, "https://api.anthropic.com/v1", &[])).unwrap();
        assert_eq!(argv(&plan)[4], "anthropic/test-model");
        assert_eq!(plan.env.get("ANTHROPIC_API_BASE").map(String::as_str), Some("https://api.anthropic.com"));
        assert_eq!(plan.env.get("ANTHROPIC_API_KEY").map(String::as_str), Some("sk-secret"));
        assert!(!plan.env.contains_key("OPENAI_API_KEY"));
    }

    #[test]
    fn installs_in_a_venv_and_pins_the_version() {
        let pinned = plan(&settings("mini-swe-agent", Protocol::OpenAi, "http://127.0.0.1:8080/v1", &[("version", "2.4.6")])).unwrap().install.unwrap();
        assert!(pinned.contains("python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3 python3-venv\n"), "{pinned}");
        assert!(pinned.contains("python3 -m venv /tmp/prodbench-agent/venv\n"), "{pinned}");
        assert!(pinned.contains("/tmp/prodbench-agent/venv/bin/pip install --quiet --disable-pip-version-check mini-swe-agent==2.4.6\n"), "{pinned}");
        assert!(pinned.contains("ln -sf /tmp/prodbench-agent/venv/bin/mini /tmp/prodbench-agent/bin/mini\n"), "{pinned}");
    }
}
