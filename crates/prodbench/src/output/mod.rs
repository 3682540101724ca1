//! All terminal output goes through one [`Printer`], like cargo's `Shell` or uv's `Printer`.
//!
//! Why one place: the output mode (human, `--json`, quiet), colour and terminal detection
//! are decided once, from the global flags and the environment, instead of in every
//! command. Data goes to stdout (tables, JSON documents); progress, notes, warnings and
//! errors go to stderr, so `prodbench run ... --json | jq` sees only JSON. Nothing else in
//! the workspace prints (the tidy test checks it).

mod progress;
mod table;

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

pub use progress::Progress;
pub use table::{first_line, format_reward, summary_table, table};

/// Version of every `--json` document; fields are only ever added.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// What the user asked to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Tables and messages for people.
    Human,
    /// One JSON document on stdout; warnings and errors still on stderr.
    Json,
    /// Errors and warnings only (the exit code tells the rest).
    Quiet,
}

/// The one writer of terminal output.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    mode: OutputMode,
    /// Whether stderr gets colour: a terminal, and `NO_COLOR` unset.
    color: bool,
    /// Whether stderr is a terminal (progress bars draw only there).
    stderr_is_terminal: bool,
}

const ERROR: Style = Style::new().bold().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const WARNING: Style = Style::new().bold().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const HINT: Style = Style::new().bold().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
const NOTE: Style = Style::new().bold();

impl Printer {
    /// A printer for `mode`, detecting the terminal and honouring `NO_COLOR`.
    pub fn new(mode: OutputMode) -> Self {
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer { mode, color: stderr_is_terminal && !no_color, stderr_is_terminal }
    }

    pub fn is_json(&self) -> bool {
        self.mode == OutputMode::Json
    }

    /// Data for people on stdout (a table, a summary); nothing with `--json` or `--quiet`.
    pub fn data(&self, text: impl Display) {
        if self.mode == OutputMode::Human {
            write_out(format_args!("{text}"));
        }
    }

    /// Like [`Printer::data`], one line.
    pub fn line(&self, text: impl Display) {
        self.data(format_args!("{text}\n"));
    }

    /// A JSON document with its format version and kind on stdout, with `--json` only.
    pub fn json(&self, kind: &str, value: &impl Serialize) {
        if self.is_json() {
            let text = serde_json::to_string_pretty(&json_document(kind, value)).expect("serializable");
            write_out(format_args!("{text}\n"));
        }
    }

    /// Progress and status for people on stderr ("wrote report.html"); not with `--json`
    /// or `--quiet`.
    pub fn status(&self, text: impl Display) {
        if self.mode == OutputMode::Human {
            write_err(format_args!("{text}\n"));
        }
    }

    /// `note: ...` on stderr; not with `--quiet`.
    pub fn note(&self, text: impl Display) {
        if self.mode != OutputMode::Quiet {
            self.labelled(NOTE, "note", text);
        }
    }

    /// `warning: ...` on stderr, in every mode.
    pub fn warning(&self, text: impl Display) {
        self.labelled(WARNING, "warning", text);
    }

    /// `error: ...` on stderr, in every mode.
    pub fn error(&self, text: impl Display) {
        self.labelled(ERROR, "error", text);
    }

    /// `  hint: ...` under an error or warning.
    pub fn hint(&self, text: impl Display) {
        let style = self.style(HINT);
        write_err(format_args!("  {style}hint{style:#}: {text}\n"));
    }

    /// A line on stderr exactly as given (diagnostics that format themselves, a trajectory's
    /// violations); not with `--quiet`.
    pub fn diagnostic(&self, text: impl Display) {
        if self.mode != OutputMode::Quiet {
            write_err(format_args!("{text}\n"));
        }
    }

    /// The live display for a job: a bar on a terminal, a line per event elsewhere (CI logs),
    /// nothing with `--json` or `--quiet`.
    pub fn progress(&self) -> Progress {
        let style = match self.mode {
            OutputMode::Human if self.stderr_is_terminal => progress::Style::Bar,
            OutputMode::Human => progress::Style::Lines,
            OutputMode::Json | OutputMode::Quiet => progress::Style::Hidden,
        };
        Progress::new(style)
    }

    /// A spinner on stderr for one long step, drawn only on a terminal in human mode.
    pub fn spinner(&self, message: String) -> indicatif::ProgressBar {
        if self.mode != OutputMode::Human || !self.stderr_is_terminal {
            self.status(&message);
            return indicatif::ProgressBar::hidden();
        }
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_message(message);
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        spinner
    }

    fn labelled(&self, style: Style, label: &str, text: impl Display) {
        let style = self.style(style);
        write_err(format_args!("{style}{label}{style:#}: {text}\n"));
    }

    fn style(&self, style: Style) -> Style {
        if self.color { style } else { Style::new() }
    }
}

/// A `--json` document: the value with its format version and kind.
pub fn json_document(kind: &str, value: &impl Serialize) -> serde_json::Value {
    let mut doc = serde_json::to_value(value).expect("serializable");
    if let Some(object) = doc.as_object_mut() {
        object.insert("format_version".into(), JSON_FORMAT_VERSION.into());
        object.insert("kind".into(), kind.into());
    }
    doc
}

// A closed stdout (`prodbench show latest | head`) ends the process by SIGPIPE, or for
// `run` only stops the printing (see main): a failed write has nowhere to be reported.
fn write_out(args: std::fmt::Arguments) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

pub(super) fn write_err(args: std::fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
