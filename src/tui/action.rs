//! Everything a key can ask the dashboard to do. Keys map to these through the keymap (data, from
//! `[keys]` in the config); `update` interprets them. The names are the config's vocabulary, so
//! they are part of the config file format: add, never rename.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub enum Action {
    /// Select the previous agent.
    Up,
    /// Select the next agent.
    Down,
    /// Select the agent shown with this number (1–9).
    Jump(u8),
    /// Send keys to the selected agent until the prefix key.
    Focus,
    /// Switch between the list with one screen and the grid of screens.
    Grid,
    New,
    Send,
    Stop,
    Restart,
    Remove,
    /// Land the selected agent's work on its base branch (after a confirmation).
    Merge,
    /// Show the selected agent's changes (a scrollable patch with its file list).
    Diff,
    /// Bring the base branch's new commits into the selected agent's branch.
    Sync,
    /// Put the selected agent in the repository's landing queue (synced, gated, landed in turn).
    Land,
    /// The output of the selected agent's landing gate, followed while it runs.
    GateOutput,
    /// Compare the selected agent's group (the agents one `new -n` started) and pick one.
    Compare,
    /// The send dialog, set to queue the message until the agent is idle.
    Queue,
    /// Move the server to the newer corral binary on disk; every agent keeps running.
    Upgrade,
    Help,
    Quit,
    /// Scroll the viewed agent's history back / forward by half a screen.
    ScrollUp,
    ScrollDown,
    /// Back to the live screen.
    ScrollBottom,
    /// Dialogs.
    Submit,
    Cancel,
    NextField,
    PrevField,
    /// In the remove dialog after a refusal: remove anyway.
    Force,
    /// Bound to nothing: lets a config file take a default binding away.
    None,
}

impl Action {
    /// Every action with its config name, in the order the help overlay lists them.
    pub const ALL: [Action; 37] = [
        Action::Up,
        Action::Down,
        Action::Jump(1),
        Action::Jump(2),
        Action::Jump(3),
        Action::Jump(4),
        Action::Jump(5),
        Action::Jump(6),
        Action::Jump(7),
        Action::Jump(8),
        Action::Jump(9),
        Action::Focus,
        Action::Grid,
        Action::New,
        Action::Send,
        Action::Stop,
        Action::Restart,
        Action::Remove,
        Action::Merge,
        Action::Diff,
        Action::Sync,
        Action::Land,
        Action::GateOutput,
        Action::Compare,
        Action::Queue,
        Action::Upgrade,
        Action::ScrollUp,
        Action::ScrollDown,
        Action::ScrollBottom,
        Action::Help,
        Action::Quit,
        Action::Submit,
        Action::Cancel,
        Action::NextField,
        Action::PrevField,
        Action::Force,
        Action::None,
    ];

    /// The name used in the config file.
    pub fn name(self) -> String {
        match self {
            Action::Up => "up".into(),
            Action::Down => "down".into(),
            Action::Jump(n) => format!("jump-{n}"),
            Action::Focus => "focus".into(),
            Action::Grid => "grid".into(),
            Action::New => "new".into(),
            Action::Send => "send".into(),
            Action::Stop => "stop".into(),
            Action::Restart => "restart".into(),
            Action::Remove => "remove".into(),
            Action::Merge => "merge".into(),
            Action::Diff => "diff".into(),
            Action::Sync => "sync".into(),
            Action::Land => "land".into(),
            Action::GateOutput => "gate-output".into(),
            Action::Compare => "compare".into(),
            Action::Queue => "queue".into(),
            Action::Upgrade => "upgrade-server".into(),
            Action::Help => "help".into(),
            Action::Quit => "quit".into(),
            Action::ScrollUp => "scroll-up".into(),
            Action::ScrollDown => "scroll-down".into(),
            Action::ScrollBottom => "scroll-bottom".into(),
            Action::Submit => "submit".into(),
            Action::Cancel => "cancel".into(),
            Action::NextField => "next-field".into(),
            Action::PrevField => "prev-field".into(),
            Action::Force => "force".into(),
            Action::None => "none".into(),
        }
    }

    /// What the help overlay says it does.
    pub fn describe(self) -> String {
        match self {
            Action::Up => "previous agent".into(),
            Action::Down => "next agent".into(),
            Action::Jump(n) => format!("select agent {n}"),
            Action::Focus => "focus (keys to the agent)".into(),
            Action::Grid => "grid of agents / list".into(),
            Action::New => "new agent".into(),
            Action::Send => "send a message".into(),
            Action::Stop => "stop the agent".into(),
            Action::Restart => "restart the agent".into(),
            Action::Remove => "remove agent + worktree".into(),
            Action::Merge => "merge into its base".into(),
            Action::Diff => "show its changes".into(),
            Action::Sync => "sync with its base".into(),
            Action::Land => "land via the queue".into(),
            Action::GateOutput => "its gate's output".into(),
            Action::Compare => "compare its group, pick one".into(),
            Action::Queue => "queue a message".into(),
            Action::Upgrade => "upgrade the server, agents keep running".into(),
            Action::Help => "this help".into(),
            Action::Quit => "quit; agents keep going".into(),
            Action::ScrollUp => "scroll back".into(),
            Action::ScrollDown => "scroll forward".into(),
            Action::ScrollBottom => "back to the live screen".into(),
            Action::Submit => "confirm".into(),
            Action::Cancel => "close the dialog".into(),
            Action::NextField => "next field".into(),
            Action::PrevField => "previous field".into(),
            Action::Force => "remove anyway".into(),
            Action::None => "nothing".into(),
        }
    }

    /// A short word for the footer.
    pub fn short(self) -> String {
        match self {
            Action::Up | Action::Down => "select".into(),
            Action::Jump(_) => "jump".into(),
            Action::Focus => "focus".into(),
            Action::Grid => "grid".into(),
            Action::New => "new".into(),
            Action::Send => "send".into(),
            Action::Stop => "stop".into(),
            Action::Restart => "restart".into(),
            Action::Remove => "remove".into(),
            Action::Merge => "merge".into(),
            Action::Diff => "diff".into(),
            Action::Sync => "sync".into(),
            Action::Land => "land".into(),
            Action::GateOutput => "gate".into(),
            Action::Compare => "compare".into(),
            Action::Queue => "queue".into(),
            Action::Upgrade => "upgrade".into(),
            Action::Help => "help".into(),
            Action::Quit => "quit".into(),
            Action::ScrollUp => "back".into(),
            Action::ScrollDown => "forward".into(),
            Action::ScrollBottom => "live".into(),
            Action::Submit => "ok".into(),
            Action::Cancel => "cancel".into(),
            Action::NextField => "next".into(),
            Action::PrevField => "prev".into(),
            Action::Force => "force".into(),
            Action::None => String::new(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Action, String> {
        if let Some(n) = s.strip_prefix("jump-") {
            return match n.parse::<u8>() {
                Ok(n @ 1..=9) => Ok(Action::Jump(n)),
                _ => Err(format!("unknown action '{s}': jump takes 1 to 9, e.g. jump-3")),
            };
        }
        Action::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let mut names: Vec<String> = Action::ALL
                .into_iter()
                .filter(|a| !matches!(a, Action::Jump(2..)))
                .map(|a| a.name().replace("jump-1", "jump-N"))
                .collect();
            names.dedup();
            format!("unknown action '{s}' (actions: {})", names.join(", "))
        })
    }
}

impl TryFrom<String> for Action {
    type Error = String;

    fn try_from(s: String) -> Result<Action, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>().unwrap(), a);
        }
        let err = "frobnicate".parse::<Action>().unwrap_err();
        assert!(err.contains("unknown action 'frobnicate'") && err.contains("jump-N"), "{err}");
        assert!("jump-0".parse::<Action>().is_err());
    }
}
