//! The sandbox backends prodbench knows, by the names the command line, stored job configs
//! and task.toml's `[environment] backends` use.
//!
//! One list, so that a name nobody knows (a typo, a config written by a newer prodbench) is
//! an error naming the known ones and never silently becomes some default backend. It lives
//! here, upstream of the sandboxes, because a task names the backends it runs on; the
//! binary builds each backend's `Provider` (`prodbench-sandbox`, `prodbench-docker`).

use std::fmt;
use std::str::FromStr;

/// A sandbox backend. Serialized as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Backend {
    Docker,
    Local,
}

impl Backend {
    /// Every backend, the default first.
    pub const ALL: [Backend; 2] = [Backend::Docker, Backend::Local];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Docker => "docker",
            Backend::Local => "local",
        }
    }

    /// One line for `--help`.
    pub fn description(self) -> &'static str {
        match self {
            Backend::Docker => "Docker Engine API (needs a running dockerd)",
            Backend::Local => "bubblewrap: no daemon, host system directories read-only",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not in [`Backend::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sandbox backend {name:?} (known: {})", Backend::ALL.map(Backend::name).join(", "))]
pub struct UnknownBackend {
    pub name: String,
}

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(name: &str) -> Result<Self, UnknownBackend> {
        Backend::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| UnknownBackend { name: name.to_string() })
    }
}

impl TryFrom<String> for Backend {
    type Error = UnknownBackend;

    fn try_from(name: String) -> Result<Self, UnknownBackend> {
        name.parse()
    }
}

impl From<Backend> for &'static str {
    fn from(backend: Backend) -> Self {
        backend.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>(), Ok(backend));
            assert_eq!(serde_json::to_string(&backend).unwrap(), format!("\"{}\"", backend.name()));
            assert_eq!(serde_json::from_str::<Backend>(&format!("\"{}\"", backend.name())).unwrap(), backend);
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_it_and_the_known_ones() {
        let err = "kubernetes".parse::<Backend>().unwrap_err();
        assert_eq!(err.to_string(), "unknown sandbox backend \"kubernetes\" (known: docker, local)");
        let err = serde_json::from_str::<Backend>("\"Docker\"").unwrap_err().to_string();
        assert!(err.contains("\"Docker\"") && err.contains("known: docker, local"), "{err}");
    }
}
