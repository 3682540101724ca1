//! Writing a trajectory as the agent runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::types::{AgentInfo, FinalMetrics, SCHEMA_VERSION, Step, Trajectory};

/// Keeps a trajectory on disk valid after every step.
///
/// Each [`Recorder::push`] rewrites the file through a temporary sibling and a rename: a
/// reader (or a crash) only ever sees a complete trajectory. Rewriting costs O(steps) per
/// step, which at the hundreds of steps an agent takes is far below one model call.
pub struct Recorder {
    path: PathBuf,
    trajectory: Trajectory,
}

impl Recorder {
    /// Starts a trajectory with no steps and writes it.
    pub fn create(path: &Path, session_id: impl Into<String>, agent: AgentInfo) -> std::io::Result<Recorder> {
        let trajectory = Trajectory {
            schema_version: SCHEMA_VERSION.into(),
            session_id: session_id.into(),
            agent,
            steps: Vec::new(),
            notes: None,
            final_metrics: None,
            extra: Default::default(),
        };
        let mut recorder = Recorder { path: path.to_path_buf(), trajectory };
        recorder.write()?;
        Ok(recorder)
    }

    /// Appends `step` (numbering it), updates the totals and writes. Returns its step id.
    pub fn push(&mut self, mut step: Step) -> std::io::Result<u64> {
        step.step_id = self.trajectory.steps.len() as u64 + 1;
        self.trajectory.steps.push(step);
        self.write()?;
        Ok(self.trajectory.steps.len() as u64)
    }

    /// Sets one root-level `extra` entry (e.g. why the agent stopped) and writes.
    pub fn set_extra(&mut self, key: &str, value: Value) -> std::io::Result<()> {
        self.trajectory.extra.insert(key.into(), value);
        self.write()
    }

    fn write(&mut self) -> std::io::Result<()> {
        self.trajectory.final_metrics = Some(FinalMetrics::sum(&self.trajectory.steps));
        let json = serde_json::to_vec_pretty(&self.trajectory).map_err(std::io::Error::other)?;
        let temporary = self.path.with_extension("json.partial");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&json)?;
        file.write_all(b"\n")?;
        drop(file);
        std::fs::rename(&temporary, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Metrics, StepSource};

    #[test]
    fn every_push_leaves_a_valid_file_with_current_totals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trajectory.json");
        let agent = AgentInfo { name: "test".into(), version: "1".into(), model_name: None, extra: Default::default() };
        let mut recorder = Recorder::create(&path, "s1", agent).unwrap();
        let on_disk = || serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk()["steps"].as_array().unwrap().len(), 0);
        assert!(crate::validate(&on_disk()).is_empty());

        recorder.push(Step::new(StepSource::User, "do it")).unwrap();
        let mut step = Step::new(StepSource::Agent, "done");
        step.metrics = Some(Metrics { prompt_tokens: Some(10), completion_tokens: Some(3), cost_usd: Some(0.5), ..Default::default() });
        assert_eq!(recorder.push(step).unwrap(), 2);

        let json = on_disk();
        assert!(crate::validate(&json).is_empty(), "{:?}", crate::validate(&json));
        assert_eq!(json["steps"][1]["step_id"], 2);
        assert_eq!(json["final_metrics"]["total_prompt_tokens"], 10);
        assert_eq!(json["final_metrics"]["total_cost_usd"], 0.5);
        assert_eq!(json["final_metrics"]["total_steps"], 2);
        assert!(!dir.path().join("trajectory.json.partial").exists());
    }
}
