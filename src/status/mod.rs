//! Status detection: which of `starting`, `working`, `needs-input`, `idle`, `stuck`, `exited` an
//! agent is in, decided from signals in order of trust — the agent's own hooks, screen rules per
//! profile, then activity (output and file changes) — and why, so a wrong badge can be explained.
//!
//! Everything here is pure: [`engine::Engine`] takes signals with the time they happened and
//! answers with transitions; [`rules::RuleSet`] reads screen rows; [`hooks`] turns an agent's hook
//! event into a signal. The server feeds them from panes and sockets (`server::badge`); nothing here
//! owns a thread, a PTY or a socket.

pub mod engine;
pub mod hooks;
pub mod keys;
pub mod rules;

use serde::{Deserialize, Serialize};

pub use engine::{Engine, Timing, Transition};
pub use keys::{KeyMatch, KeyRuleSpec, KeyRules};
pub use rules::{RuleReport, RuleSet, RuleSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Starting,
    Working,
    NeedsInput,
    Idle,
    Stuck,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Working => "working",
            Status::NeedsInput => "needs-input",
            Status::Idle => "idle",
            Status::Stuck => "stuck",
            Status::Exited => "exited",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `corral status NAME [--explain]`: the status, since when, why, and with `--explain` every signal
/// and every rule with the screen region it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub name: String,
    pub status: String,
    /// Unix seconds.
    pub status_since: u64,
    pub status_reason: String,
    /// Present when asked for: one line per signal (hook, screen, activity, process, timing).
    pub signals: Vec<String>,
    pub rules: Vec<RuleReport>,
    pub queued: Vec<String>,
}

/// What attached clients are told when an agent needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub agent: String,
    pub repo: std::path::PathBuf,
    pub status: Status,
    pub reason: String,
}

impl Notice {
    /// What an attached terminal gets: a bell, and a desktop notification for terminals that
    /// show OSC 9. The text is ours, but control characters are stripped so it cannot end the
    /// sequence early.
    pub fn terminal_bytes(&self) -> Vec<u8> {
        let text: String = self.message().chars().filter(|c| !c.is_control()).collect();
        format!("\x07\x1b]9;{text}\x07").into_bytes()
    }

    /// One line for a desktop notification.
    pub fn message(&self) -> String {
        let what = match self.status {
            Status::NeedsInput => "needs input",
            Status::Idle => "finished its turn",
            Status::Stuck => "looks stuck",
            Status::Exited => "exited",
            Status::Working => "is working",
            Status::Starting => "is starting",
        };
        format!("corral: {} {what}", self.agent)
    }
}
