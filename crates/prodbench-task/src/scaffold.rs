//! Writing a task directory from parts: the one place that knows the layout, used by the
//! benchmark's trivial task and by every test that needs a task of its own (so a change
//! to the layout is one change, not seven hand-copied fixtures).

use std::path::Path;

use crate::{DOCKERFILE, Diagnostic, ENVIRONMENT_DIR, INSTRUCTION_MD, SOLUTION_DIR, SOLVE_SCRIPT, TASK_TOML, TEST_SCRIPT, TESTS_DIR, Task, load_task};

/// The files of one task, with defaults for every part: a Dockerfile of
/// `debian:bookworm-slim` working in `/app`, tests that write reward 1, no solution.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    name: String,
    toml: String,
    instruction: String,
    files: Vec<(String, String)>,
}

impl TaskFiles {
    pub fn new(name: &str) -> Self {
        TaskFiles {
            name: name.to_string(),
            toml: String::new(),
            instruction: "Do the task.\n".into(),
            files: vec![
                (format!("{ENVIRONMENT_DIR}/{DOCKERFILE}"), "FROM debian:bookworm-slim\nWORKDIR /app\n".into()),
                (format!("{TESTS_DIR}/{TEST_SCRIPT}"), "echo 1 > /logs/verifier/reward.txt\n".into()),
            ],
        }
    }

    /// TOML appended to `task.toml` after `[task] name`, e.g. `"[agent]\ntimeout_sec = 60\n"`.
    pub fn toml(mut self, toml: &str) -> Self {
        self.toml.push_str(toml);
        self
    }

    pub fn instruction(mut self, text: &str) -> Self {
        self.instruction = text.to_string();
        self
    }

    /// `tests/test.sh`.
    pub fn tests(self, script: &str) -> Self {
        self.file(&format!("{TESTS_DIR}/{TEST_SCRIPT}"), script)
    }

    /// `solution/solve.sh`, what the oracle agent runs.
    pub fn solution(self, script: &str) -> Self {
        self.file(&format!("{SOLUTION_DIR}/{SOLVE_SCRIPT}"), script)
    }

    /// `environment/Dockerfile`.
    pub fn dockerfile(self, text: &str) -> Self {
        self.file(&format!("{ENVIRONMENT_DIR}/{DOCKERFILE}"), text)
    }

    /// No `environment/Dockerfile`: a task for the local sandbox only.
    pub fn without_dockerfile(mut self) -> Self {
        let dockerfile = format!("{ENVIRONMENT_DIR}/{DOCKERFILE}");
        self.files.retain(|(rel, _)| *rel != dockerfile);
        self
    }

    /// Any other file, by its path in the task directory (a later one replaces an earlier).
    pub fn file(mut self, rel: &str, text: &str) -> Self {
        self.files.retain(|(existing, _)| existing != rel);
        self.files.push((rel.to_string(), text.to_string()));
        self
    }

    /// Writes the task into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let toml = format!("[task]\nname = {:?}\n{}", self.name, self.toml);
        let parts = [(TASK_TOML.to_string(), toml), (INSTRUCTION_MD.to_string(), self.instruction.clone())];
        for (rel, text) in parts.iter().chain(&self.files) {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("a file in the task directory"))?;
            std::fs::write(path, text)?;
        }
        Ok(())
    }

    /// Writes the task into `dir` and loads it; the diagnostics when it does not load.
    pub fn create(&self, dir: &Path) -> Result<Task, Vec<Diagnostic>> {
        self.write(dir).map_err(|e| vec![Diagnostic::error(dir, format!("cannot write the task: {e}"))])?;
        let check = load_task(dir);
        check.task.ok_or(check.diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_from_parts_loads_with_every_part_where_it_belongs() {
        let dir = tempfile::tempdir().unwrap();
        let task =
            TaskFiles::new("made").toml("[agent]\ntimeout_sec = 30\n").solution("true\n").file("environment/seed.txt", "s\n").create(dir.path()).unwrap();
        assert_eq!((task.name.as_str(), task.config.agent.timeout_sec), ("made", 30.0));
        assert!(task.has_solution() && task.has_docker_environment());
        assert!(dir.path().join("environment/seed.txt").is_file());
        let local = TaskFiles::new("local").without_dockerfile().file("environment/setup.sh", "true\n").create(dir.path().join("l").as_path()).unwrap();
        assert!(!local.has_docker_environment());
    }
}
