//! The dashboard's state, the messages that change it and the effects it asks for. `AppState` is
//! owned by the UI loop alone; background tasks only ever send a [`Msg`]. Nothing here does I/O.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::layout::Rect;

use super::keymap::Keymap;
use crate::proto::{AgentInfo, Reply, Request, Target};
use crate::term::screen::ScreenUpdate;
use crate::term::{Line, Screen, Size};

/// An agent: its repository's root and its name.
pub type AgentKey = (PathBuf, String);

pub fn target(key: &AgentKey) -> Target {
    Target { repo: key.0.clone(), name: key.1.clone() }
}

/// What happened, from the terminal, the server or the clock.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent, Instant),
    Mouse(MouseEvent),
    Paste(String),
    /// The user's terminal gained (true) or lost focus.
    Focus(bool),
    /// The user's terminal is now cols x rows.
    Resize(u16, u16, Instant),
    /// A deadline from [`AppState::next_deadline`] passed.
    Tick(Instant),
    /// The server's agents (every repository), or why they could not be listed.
    Agents(Result<Vec<AgentInfo>, String>),
    /// Whether a newer corral binary than the server's is on disk (checked now and then).
    Upgradable(Option<PathBuf>),
    /// How the upgrade asked for with [`Effect::Upgrade`] went: None, the server took it.
    Upgraded(Option<String>),
    /// From the attachment with this id.
    Screen(u64, ScreenUpdate),
    Exited(u64, Option<i32>),
    /// The agent behind this attachment rang the bell.
    Bell(u64),
    AttachFailed(u64, String),
    /// The answer to the request with this id (a server-side refusal is `Err`).
    Reply(u64, Result<Reply, String>),
    /// The patch asked for by [`Effect::Diff`] with this id, or why it could not be made.
    Diff(u64, Result<String, String>),
    /// The gate log asked for by [`Effect::ReadGate`] with this id, or why it could not be read.
    Gate(u64, Result<String, String>),
    /// A host's agents (as that host names its repositories), or why it did not answer; `at` is
    /// when.
    Host {
        name: String,
        result: Result<Vec<AgentInfo>, String>,
        at: std::time::SystemTime,
    },
    /// The config files changed: what the dashboard takes from them, or why they are broken
    /// (then the dashboard goes on with what it has).
    Config(Result<Settings, String>),
}

/// What the dashboard takes from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub keymap: Keymap,
    /// Profile names, and the one `new` uses by default.
    pub profiles: Vec<String>,
    pub default_profile: String,
}

/// What the loop must do for `update`; tests assert on these.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// One request on its own connection; its reply comes back as `Msg::Reply(id, …)`.
    Request(u64, Request),
    /// Stream an agent's screen (no resize: a pane is not resized just because it is shown).
    Attach {
        id: u64,
        target: Target,
    },
    Detach {
        id: u64,
    },
    /// Bytes for the agent behind attachment `id`.
    Input {
        id: u64,
        bytes: Vec<u8>,
    },
    Resize {
        id: u64,
        size: Size,
    },
    /// Compute an agent's patch against its base, off the UI loop (it reads the repository); the
    /// text comes back as `Msg::Diff(id, …)`.
    Diff {
        id: u64,
        worktree: PathBuf,
        base: String,
    },
    /// Read the end of a gate log, off the UI loop; it comes back as `Msg::Gate(id, …)`.
    ReadGate {
        id: u64,
        path: PathBuf,
    },
    /// Ask the server for the agent list now instead of at the next poll.
    RefreshList,
    /// Hand the server's agents to the binary at this path (`server --upgrade`).
    Upgrade(PathBuf),
    /// Ring the user's terminal bell (an agent on screen rang its own, often to say it needs you).
    Bell,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The agent list and the selected agent's screen.
    List,
    /// Several agents' screens at once.
    Grid,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Keys go to the selected agent.
    Focus,
    Dialog(Dialog),
    Help,
    /// An agent's changes, full screen.
    Diff(DiffView),
    /// A group's agents side by side (best-of-N).
    Compare(Box<super::compare::CompareView>),
    /// The output of an agent's landing gate, full screen, followed while the gate runs.
    Gate(GateView),
}

/// The gate-output view: the log's last lines, where it is scrolled to, and whether it follows new
/// output (as `tail -f` does) until the user scrolls back.
#[derive(Debug, Clone, PartialEq)]
pub struct GateView {
    pub agent: AgentKey,
    pub path: PathBuf,
    pub lines: Vec<String>,
    /// The first line shown.
    pub offset: usize,
    /// Stay at the end as output arrives.
    pub follow: bool,
    /// The agent's landing state when last listed (`gating`, `blocked`, …; `landed` once it has
    /// left the list).
    pub state: String,
    /// A read of the log in flight.
    pub pending: Option<u64>,
    pub error: Option<String>,
}

impl GateView {
    /// Take in the log's text: control sequences dropped, tabs expanded; a view that follows
    /// stays at the end.
    pub fn set_text(&mut self, text: &str, rows: usize) {
        self.lines = text.lines().map(plain_line).collect();
        self.error = None;
        let max = self.lines.len().saturating_sub(rows.max(1));
        if self.follow {
            self.offset = max;
        } else {
            self.offset = self.offset.min(max);
        }
    }
}

/// A line of program output as it would read on a terminal: escape sequences (colours), carriage
/// returns' overwritten text and other control characters dropped, tabs expanded.
fn plain_line(l: &str) -> String {
    // What follows the last carriage return is what a terminal shows (progress bars).
    let l = l.trim_end_matches('\r');
    let l = l.rsplit('\r').next().unwrap_or(l);
    let mut out = String::with_capacity(l.len());
    let mut chars = l.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: parameters up to a final byte in @..~; other escapes: one more character.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for f in chars.by_ref() {
                        if ('@'..='~').contains(&f) {
                            break;
                        }
                    }
                } else if chars.peek() == Some(&']') {
                    // OSC (a title, a link): up to BEL or ESC \.
                    while let Some(f) = chars.next() {
                        if f == '\x07' || (f == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => {
                let n = 8 - out.chars().count() % 8;
                out.extend(std::iter::repeat_n(' ', n));
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One file in a diff: its path and lines added and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffFile {
    pub path: String,
    pub insertions: u32,
    pub deletions: u32,
}

/// The diff view: a patch as lines, its files, and how far down it is scrolled.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffView {
    pub agent: AgentKey,
    pub lines: Vec<String>,
    pub files: Vec<DiffFile>,
    /// The first patch line shown.
    pub offset: usize,
    /// The patch being computed.
    pub pending: Option<u64>,
    pub error: Option<String>,
    /// The cursor and the review comments made on the patch.
    pub review: Box<super::review::Review>,
}

impl DiffView {
    /// Take in a patch (`git diff` text): split it into lines, tabs expanded, and list its files.
    pub fn set_patch(&mut self, text: &str) {
        self.lines = text.lines().map(|l| l.replace('\t', "    ")).collect();
        self.files.clear();
        for l in &self.lines {
            if let Some(rest) = l.strip_prefix("diff --git ") {
                let path = rest.split_once(" b/").map_or(rest, |(_, b)| b);
                self.files.push(DiffFile { path: path.to_string(), insertions: 0, deletions: 0 });
            } else if let Some(f) = self.files.last_mut() {
                if l.starts_with('+') && !l.starts_with("+++") {
                    f.insertions += 1;
                } else if l.starts_with('-') && !l.starts_with("---") {
                    f.deletions += 1;
                }
            }
        }
        self.offset = 0;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    /// Boxed: five text fields would make every `Mode` as large.
    New(Box<NewDialog>),
    Send(SendDialog),
    Remove(RemoveDialog),
    Merge(MergeDialog),
}

/// A one-line text input; `cursor` counts characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextField {
    pub text: String,
    pub cursor: usize,
    /// The whole text was put there for the user (a choice from a list), not typed: like selected
    /// text in any input box, the first key that types replaces it and the first that deletes
    /// clears it; moving the cursor keeps it for editing.
    pub selected: bool,
}

impl TextField {
    pub fn new(text: &str) -> TextField {
        TextField { text: text.into(), cursor: text.chars().count(), selected: false }
    }

    /// A value offered to the user, replaced by what they type.
    pub fn offered(text: &str) -> TextField {
        TextField { selected: true, ..TextField::new(text) }
    }

    fn byte_at(&self, char_idx: usize) -> usize {
        self.text.char_indices().nth(char_idx).map_or(self.text.len(), |(i, _)| i)
    }

    /// Typing or deleting over a selection removes it first; true when there was one.
    fn take_selection(&mut self) -> bool {
        if !std::mem::take(&mut self.selected) {
            return false;
        }
        self.text.clear();
        self.cursor = 0;
        true
    }

    pub fn insert(&mut self, s: &str) {
        self.take_selection();
        let at = self.byte_at(self.cursor);
        self.text.insert_str(at, s);
        self.cursor += s.chars().count();
    }

    pub fn backspace(&mut self) {
        if self.take_selection() {
            return;
        }
        if self.cursor > 0 {
            let (a, b) = (self.byte_at(self.cursor - 1), self.byte_at(self.cursor));
            self.text.replace_range(a..b, "");
            self.cursor -= 1;
        }
    }

    pub fn delete(&mut self) {
        if self.take_selection() {
            return;
        }
        if self.cursor < self.text.chars().count() {
            let (a, b) = (self.byte_at(self.cursor), self.byte_at(self.cursor + 1));
            self.text.replace_range(a..b, "");
        }
    }

    pub fn left(&mut self) {
        self.selected = false;
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.selected = false;
        self.cursor = (self.cursor + 1).min(self.text.chars().count());
    }

    pub fn home(&mut self) {
        self.selected = false;
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.selected = false;
        self.cursor = self.text.chars().count();
    }

    /// ctrl-u: everything before the cursor.
    pub fn kill_start(&mut self) {
        if self.take_selection() {
            return;
        }
        let at = self.byte_at(self.cursor);
        self.text.replace_range(..at, "");
        self.cursor = 0;
    }

    /// ctrl-w: the word before the cursor.
    pub fn kill_word(&mut self) {
        if self.take_selection() {
            return;
        }
        let chars: Vec<char> = self.text.chars().collect();
        let mut i = self.cursor;
        while i > 0 && chars[i - 1] == ' ' {
            i -= 1;
        }
        while i > 0 && chars[i - 1] != ' ' {
            i -= 1;
        }
        let (a, b) = (self.byte_at(i), self.byte_at(self.cursor));
        self.text.replace_range(a..b, "");
        self.cursor = i;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewField {
    Prompt,
    Profile,
    Args,
    Name,
    Base,
    Count,
    /// This repository, or `HOST:/path` for one on another host.
    Where,
}

impl NewField {
    pub const ALL: [NewField; 7] = [
        NewField::Prompt,
        NewField::Profile,
        NewField::Name,
        NewField::Base,
        NewField::Count,
        NewField::Args,
        NewField::Where,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NewField::Prompt => "Prompt",
            NewField::Profile => "Profile",
            NewField::Args => "Args",
            NewField::Name => "Name",
            NewField::Base => "Base",
            NewField::Count => "Count",
            NewField::Where => "Where",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDialog {
    pub prompt: TextField,
    pub profile: TextField,
    /// Arguments for the profile's command, split as a shell would.
    pub args: TextField,
    pub name: TextField,
    pub base: TextField,
    pub count: TextField,
    /// Empty: the dashboard's repository.
    pub place: TextField,
    pub focus: NewField,
    /// Why the last submission was refused (here, or by the server).
    pub error: Option<String>,
    /// The request in flight.
    pub pending: Option<u64>,
}

impl Default for NewDialog {
    fn default() -> NewDialog {
        NewDialog::new()
    }
}

impl NewDialog {
    /// Every field starts empty: the defaults (the default profile, one agent) are placeholders,
    /// so that what the user types is the value, not something added to a prefilled one.
    pub fn new() -> NewDialog {
        NewDialog {
            prompt: TextField::default(),
            profile: TextField::default(),
            args: TextField::default(),
            name: TextField::default(),
            base: TextField::default(),
            count: TextField::default(),
            place: TextField::default(),
            focus: NewField::Prompt,
            error: None,
            pending: None,
        }
    }

    pub fn field(&self, f: NewField) -> &TextField {
        match f {
            NewField::Prompt => &self.prompt,
            NewField::Profile => &self.profile,
            NewField::Args => &self.args,
            NewField::Name => &self.name,
            NewField::Base => &self.base,
            NewField::Count => &self.count,
            NewField::Where => &self.place,
        }
    }

    pub fn field_mut(&mut self, f: NewField) -> &mut TextField {
        match f {
            NewField::Prompt => &mut self.prompt,
            NewField::Profile => &mut self.profile,
            NewField::Args => &mut self.args,
            NewField::Name => &mut self.name,
            NewField::Base => &mut self.base,
            NewField::Count => &mut self.count,
            NewField::Where => &mut self.place,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendDialog {
    pub agent: AgentKey,
    pub text: TextField,
    /// Queue the message until the agent is next idle instead of typing it now (toggled with the
    /// next-field key).
    pub queue: bool,
    pub error: Option<String>,
    pub pending: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoveDialog {
    pub agent: AgentKey,
    /// The server's refusal; while shown, the force key is offered.
    pub refusal: Option<String>,
    pub pending: Option<u64>,
}

/// Confirming a merge: shows what lands (from the agent's `AgentInfo`) and, after a refusal, why.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeDialog {
    pub agent: AgentKey,
    /// The server's answer that the merge would conflict in these paths (nothing was changed).
    pub conflict: Option<Vec<String>>,
    pub error: Option<String>,
    pub pending: Option<u64>,
}

/// A line of news for the user, shown until the next key or click (like vim's message line), so
/// nothing is missed by looking away and no timer is needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// An agent's history as fetched for scrolling back, and how far back the view is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scroll {
    /// Lines between the bottom of the view and the newest line.
    pub offset: usize,
    /// Scrollback and screen, oldest first, as of the last fetch.
    pub lines: Vec<Line>,
    /// Every line the server keeps is in `lines`.
    pub complete: bool,
    pub fetching: Option<u64>,
}

/// What the dashboard holds of one agent's terminal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pane {
    /// The live screen, kept up to date by the server's diffs; `None` until the first one.
    pub screen: Option<Screen>,
    /// Why there is no live screen (the agent exited, or attaching was refused).
    pub note: Option<String>,
    pub scroll: Option<Scroll>,
}

/// One stream of an agent's screen from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: u64,
    /// The process it shows; a restarted agent gets a new one and a new attachment.
    pub pid: Option<u32>,
    /// Still streaming (false after the agent exited or attaching failed).
    pub live: bool,
}

/// Requests in flight, by id, and what their replies are for.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    /// Creating agents in this repository (selected once listed).
    New(PathBuf),
    Send(AgentKey),
    Enqueue(AgentKey),
    Sync(AgentKey),
    Stop(AgentKey),
    Restart(AgentKey),
    Remove(AgentKey, bool),
    Merge(AgentKey),
    Land(AgentKey),
    /// History for scrolling back; `asked` lines were requested.
    Scroll(AgentKey, u32),
    /// Review comments sent from the diff view.
    Review(AgentKey),
    /// The compare view's comparison, and its pick.
    Compare,
    Pick(AgentKey),
}

/// What the dashboard knows of another host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostView {
    /// Its agents when it last answered (repositories qualified with the host's name).
    pub agents: Vec<AgentInfo>,
    pub connected: bool,
    /// When it last answered.
    pub last_seen: Option<std::time::SystemTime>,
    /// Why it does not answer now.
    pub error: Option<String>,
}

pub struct AppState {
    pub keymap: Keymap,
    /// The repository the dashboard was opened in (new agents go there); `None` outside one.
    pub repo: Option<PathBuf>,
    /// The user's environment, given to agents created or restarted from here.
    pub env: Vec<(String, String)>,
    /// Profile names from the config, and the one `new` uses by default.
    pub profiles: Vec<String>,
    pub default_profile: String,
    /// Every agent the server has, in display order (this repository's first), then every
    /// host's (their repositories named `HOST:/path`, see [`crate::hosts::qualify`]).
    pub agents: Vec<AgentInfo>,
    /// This machine's agents, as last listed.
    pub local_agents: Vec<AgentInfo>,
    /// Each configured host's agents as last listed, and whether it answers now.
    pub hosts: std::collections::BTreeMap<String, HostView>,
    /// The first list arrived.
    pub loaded: bool,
    /// Why the server could not be asked for the list.
    pub server_error: Option<String>,
    /// Why the config files are broken (file, line, key); the dashboard goes on with the last
    /// good config and says so in the footer.
    pub config_error: Option<String>,
    /// A newer corral binary than the server runs (`server --upgrade` would move it there).
    pub upgradable: Option<PathBuf>,
    pub selected: Option<AgentKey>,
    /// An agent just created: selected as soon as the list has it.
    pub select_when_listed: Option<AgentKey>,
    pub view: View,
    pub mode: Mode,
    pub panes: HashMap<AgentKey, Pane>,
    pub attachments: HashMap<AgentKey, Attachment>,
    /// The whole terminal.
    pub area: Rect,
    pub notice: Option<Notice>,
    pub pending: HashMap<u64, Pending>,
    pub next_id: u64,
    /// When the viewed agent should follow a terminal resize (debounced).
    pub resize_due: Option<Instant>,
    /// When focus mode was left with the prefix key: a second press soon after sends the key.
    pub left_focus_at: Option<Instant>,
    /// Something visible changed since the last frame.
    pub dirty: bool,
    pub quit: bool,
}

impl AppState {
    pub fn new(keymap: Keymap, repo: Option<PathBuf>, area: Rect) -> AppState {
        AppState {
            keymap,
            repo,
            env: Vec::new(),
            profiles: Vec::new(),
            default_profile: "shell".into(),
            agents: Vec::new(),
            local_agents: Vec::new(),
            hosts: std::collections::BTreeMap::new(),
            loaded: false,
            server_error: None,
            config_error: None,
            upgradable: None,
            selected: None,
            select_when_listed: None,
            view: View::List,
            mode: Mode::Normal,
            panes: HashMap::new(),
            attachments: HashMap::new(),
            area,
            notice: None,
            pending: HashMap::new(),
            next_id: 1,
            resize_due: None,
            left_focus_at: None,
            dirty: true,
            quit: false,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn key_of(a: &AgentInfo) -> AgentKey {
        (a.repo.clone(), a.name.clone())
    }

    pub fn index_of(&self, key: &AgentKey) -> Option<usize> {
        self.agents.iter().position(|a| a.repo == key.0 && a.name == key.1)
    }

    pub fn agent(&self, key: &AgentKey) -> Option<&AgentInfo> {
        self.index_of(key).map(|i| &self.agents[i])
    }

    pub fn selected_agent(&self) -> Option<&AgentInfo> {
        self.selected.as_ref().and_then(|k| self.agent(k))
    }

    /// More than one repository: the list shows a heading per repository.
    pub fn grouped(&self) -> bool {
        self.agents.first().is_some_and(|first| self.agents.iter().any(|a| a.repo != first.repo))
            || self.agents.iter().any(|a| crate::hosts::split(&a.repo).is_some())
    }

    /// The layout in force: focus always shows one agent beside the list.
    pub fn effective_view(&self) -> View {
        if self.mode == Mode::Focus { View::List } else { self.view }
    }

    /// The agents on the grid page that holds the selection (at most nine).
    pub fn grid_page(&self) -> Vec<AgentKey> {
        let sel = self.selected.as_ref().and_then(|k| self.index_of(k)).unwrap_or(0);
        let start = sel / super::GRID_MAX * super::GRID_MAX;
        self.agents.iter().skip(start).take(super::GRID_MAX).map(AppState::key_of).collect()
    }

    /// The live attachment of an agent, if it has one.
    pub fn live(&self, key: &AgentKey) -> Option<u64> {
        self.attachments.get(key).filter(|a| a.live).map(|a| a.id)
    }

    /// The agent whose size follows the terminal: the one shown beside the list.
    pub fn viewed(&self) -> Option<&AgentKey> {
        (self.effective_view() == View::List).then_some(self.selected.as_ref()).flatten()
    }

    /// The earliest instant at which `update` wants a `Msg::Tick`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.resize_due
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice { text: text.into(), error: true });
        self.dirty = true;
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice { text: text.into(), error: false });
        self.dirty = true;
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("agents", &self.agents.len())
            .field("selected", &self.selected)
            .field("view", &self.view)
            .field("mode", &self.mode)
            .field("notice", &self.notice)
            .finish_non_exhaustive()
    }
}
