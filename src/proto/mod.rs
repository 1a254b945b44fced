//! The wire between corral's clients and its server: message types and the frame codec.
//!
//! Frames are a 4-byte big-endian length followed by a postcard-encoded message. The first frame in
//! each direction is `Hello` carrying `PROTOCOL_VERSION`; `Hello` is variant 0 with the version first
//! so any version of corral can read it and refuse cleanly. A frame longer than [`MAX_FRAME`] or one
//! that does not decode closes that connection only. No I/O here beyond reading and writing frames.

mod codec;

pub use codec::{FrameError, MAX_FRAME, decode, encode, read_frame, write_frame};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::term::screen::ScreenUpdate;
use crate::term::{Line, Size, TermColors};

/// How the server reading an attached terminal's keys knows the detach key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReading {
    /// The detach key as its control byte.
    pub detach: u8,
    /// The same key as a terminal in the kitty keyboard mode sends it.
    pub kitty: Vec<u8>,
}

impl KeyReading {
    /// Where the detach key starts in `bytes` read from the terminal, if it is there.
    pub fn detach_at(&self, bytes: &[u8]) -> Option<usize> {
        let byte = bytes.iter().position(|b| *b == self.detach);
        let kitty = if self.kitty.is_empty() {
            None
        } else {
            bytes.windows(self.kitty.len()).position(|w| w == self.kitty.as_slice())
        };
        [byte, kitty].into_iter().flatten().min()
    }
}

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Must be first. A `client` of [`UPGRADE_HELLO`] followed by a path asks the server to hand
    /// over to the binary there (`server --upgrade`), whatever protocol either side speaks: a new
    /// binary whose protocol changed can still replace the server.
    Hello {
        version: u32,
        client: String,
    },
    Request(Request),
    /// Attached: bytes the user typed, already encoded by their terminal for the pane's modes.
    Input(Vec<u8>),
    /// Attached: the client's terminal size changed.
    Resize(Size),
    /// Attached or following: stop streaming; the connection may then send more requests.
    Detach,
}

/// See [`ClientMsg::Hello`]. Keep as it is in every version.
pub const UPGRADE_HELLO: &str = "corral-upgrade-to:";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Must be first.
    Hello { version: u32, server: String, pid: u32 },
    /// The answer to a request.
    Reply(Reply),
    /// Attached: what changed on the pane's screen.
    Screen(ScreenUpdate),
    /// Following: settled lines rendered as text (plain or ANSI, as asked), in order, each once.
    Text(String),
    /// Attached: the program rang the bell.
    Bell,
    /// Attached or following: the agent's process ended (exit code when known).
    Exited(Option<i32>),
    /// Attached: an agent (any of the server's) needs attention; the client rings its terminal.
    Notice(crate::status::Notice),
    /// Attached: the answer to Detach. Nothing more is drawn on the client's terminal after it.
    Detached,
    /// Following: settled lines as text, and the number of the line after them (to go on from,
    /// after a reconnect, with neither a line twice nor one left out).
    Lines(String, u64),
}

/// Which agent a request is about: its repository's main worktree root and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub repo: PathBuf,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Ping,
    New(NewAgent),
    /// `repo: None` lists every repository the server knows.
    List {
        repo: Option<PathBuf>,
    },
    /// The last `lines` lines of scrollback and screen.
    Tail {
        target: Target,
        lines: u32,
    },
    /// Like Tail, then stream settled lines as they appear until Detach or the agent exits.
    Follow {
        target: Target,
        lines: u32,
        /// Render with SGR colours (else plain text).
        ansi: bool,
        /// Start at this line number instead of the last `lines` lines (a client going on after
        /// its connection closed, e.g. across `server --upgrade`).
        from: Option<u64>,
    },
    Send {
        target: Target,
        text: String,
        enter: bool,
    },
    /// Stream the screen; `size` resizes the pane to the client's terminal. With `tty` (the
    /// client's terminal device), the server draws on that terminal itself, as tmux does, and
    /// sends no Screen frames; it falls back to frames when it cannot open it. `colors`: what
    /// the client's terminal answered when asked for its default colours (None: it did not);
    /// from then on every agent's colour queries are answered with them. With `keys` as well,
    /// the server also reads the keys from that terminal (answering `AttachedReadingKeys`), so a
    /// keystroke reaches the agent without crossing the client; the client then reads nothing.
    Attach {
        target: Target,
        size: Option<Size>,
        tty: Option<PathBuf>,
        colors: Option<TermColors>,
        keys: Option<KeyReading>,
    },
    Stop {
        target: Target,
    },
    Restart {
        target: Target,
        env: Vec<(String, String)>,
    },
    Remove {
        target: Target,
        force: bool,
        /// The client's git identity variables (`git::identity_env`): commits corral makes for
        /// this request are by the user who asked, as the git CLI would make them.
        git_env: Vec<(String, String)>,
    },
    KillServer,
    /// Hand every agent to the corral binary at `exe` and become it (`server --upgrade`).
    Upgrade {
        exe: PathBuf,
    },
    /// Land the agent's work on its base branch (SPEC §5).
    Merge {
        target: Target,
        mode: MergeMode,
        /// Keep the agent, its worktree and branch afterwards.
        keep: bool,
        message: Option<String>,
        /// Merge even while the agent is working.
        yes: bool,
        /// As for `Remove`.
        git_env: Vec<(String, String)>,
    },
    /// Bring the base's new commits into the agent's branch and worktree.
    Sync {
        target: Target,
        /// As for `Remove`.
        git_env: Vec<(String, String)>,
    },
    /// `corral hook EVENT`: an agent's own hook fired (payload: the JSON it passed).
    Hook {
        target: Target,
        event: String,
        payload: String,
    },
    /// `corral status NAME [--explain]`.
    Status {
        target: Target,
        explain: bool,
    },
    /// `corral send --queue`: deliver `text` (then Enter) the next time the agent is idle.
    Enqueue {
        target: Target,
        text: String,
    },
    /// `corral queue NAME`: the queued messages; `clear` drops them all, `remove` the Nth (1-based).
    Queue {
        target: Target,
        clear: bool,
        remove: Option<u32>,
    },
    /// `corral land NAME...`: put agents in the repository's landing queue, in this order.
    Land {
        repo: PathBuf,
        names: Vec<String>,
        /// `Merge` (fast-forward to the gated commit), `Squash` or `Rebase`.
        mode: MergeMode,
        keep: bool,
        /// As for `Remove`: the queue's commits for these agents are by this user.
        git_env: Vec<(String, String)>,
    },
    /// `corral land --status`: the repository's queue (answered with Landing).
    LandStatus {
        repo: PathBuf,
    },
    /// `corral land --cancel NAME`: take the agent out of the queue.
    LandCancel {
        target: Target,
    },
    /// `corral resolve NAME`: merge the base into the agent's worktree leaving conflict markers,
    /// and tell the agent what to resolve.
    Resolve {
        target: Target,
        git_env: Vec<(String, String)>,
        /// `--agent PROFILE`: start a new agent of this profile in the agent's worktree and hand
        /// it the conflict instead.
        profile: Option<String>,
        /// The client's environment, for that new agent.
        env: Vec<(String, String)>,
    },
    /// `corral gc`: list what corral left behind in `repo` (answered with Text); `remove` what
    /// holds no work, and with `force` the rest too (its work kept under refs/corral/backup/).
    Gc {
        repo: PathBuf,
        remove: bool,
        force: bool,
        /// Who the snapshot commit of forced removals is by (as for `Remove`).
        git_env: Vec<(String, String)>,
    },
    /// The end of the output of the agent's last landing gate (answered with Text), for a client
    /// on another host, which cannot read the server's state dir.
    GateLog {
        target: Target,
    },
    /// `corral diff NAME` made by the server (for a client on another host, which cannot read
    /// the worktree): answered with Text.
    Diff {
        target: Target,
        stat: bool,
        colour: bool,
        width: u16,
    },
    /// `corral review NAME --comment ...` and the diff view's comments: one message to the agent
    /// naming each place and the lines there; typed at once when the agent is idle or asks for
    /// input, else (or with `queue`) delivered through its queue the next time it is idle.
    Review {
        target: Target,
        comments: Vec<ReviewComment>,
        queue: bool,
    },
    /// `corral compare GROUP`: the agents one `new -n` made, side by side (answered with
    /// Compare); `group` is the group's name or any member's. With `gate`, `[merge] gate` runs
    /// in each one's worktree (a few at a time).
    Compare {
        repo: PathBuf,
        group: String,
        gate: bool,
    },
    /// Pick `name` from its group: land it (`merge`, or through the landing queue with `queue`),
    /// then remove the others, their work kept under refs/corral/backup/.
    Pick {
        target: Target,
        mode: MergeMode,
        queue: bool,
        git_env: Vec<(String, String)>,
    },
    /// `corral fork NAME`: a new agent from the agent's current state, uncommitted work
    /// included, continuing its conversation where the profile can (answered with Forked).
    Fork {
        target: Target,
        name: Option<String>,
        prompt: Option<String>,
        size: Option<Size>,
        /// The client's environment, for the new agent.
        env: Vec<(String, String)>,
        /// Who the snapshot commit of the uncommitted work is by.
        git_env: Vec<(String, String)>,
    },
}

impl Request {
    /// Asking twice changes nothing: a client whose server died before answering may ask the
    /// next server again. Anything else may have been done and must not be repeated blindly.
    pub fn is_read_only(&self) -> bool {
        match self {
            Request::Ping
            | Request::List { .. }
            | Request::Tail { .. }
            | Request::Follow { .. }
            | Request::Attach { .. }
            | Request::Status { .. }
            | Request::LandStatus { .. }
            | Request::Diff { .. }
            | Request::GateLog { .. }
            | Request::Compare { .. } => true,
            Request::Queue { clear, remove, .. } => !clear && remove.is_none(),
            Request::Gc { remove, .. } => !remove,
            Request::New(_)
            | Request::Send { .. }
            | Request::Stop { .. }
            | Request::Restart { .. }
            | Request::Remove { .. }
            | Request::KillServer
            | Request::Upgrade { .. }
            | Request::Merge { .. }
            | Request::Sync { .. }
            | Request::Hook { .. }
            | Request::Enqueue { .. }
            | Request::Land { .. }
            | Request::LandCancel { .. }
            | Request::Resolve { .. }
            | Request::Fork { .. }
            | Request::Review { .. }
            | Request::Pick { .. } => false,
        }
    }

    /// The repository the request is about, to change where it points (a client routing it to
    /// another host rewrites the path as that host sees it).
    pub fn repo_mut(&mut self) -> Option<&mut PathBuf> {
        match self {
            Request::List { repo } => repo.as_mut(),
            Request::Gc { repo, .. }
            | Request::Land { repo, .. }
            | Request::LandStatus { repo }
            | Request::Compare { repo, .. } => Some(repo),
            Request::New(n) => Some(&mut n.repo),
            Request::Tail { target, .. }
            | Request::Follow { target, .. }
            | Request::Send { target, .. }
            | Request::Attach { target, .. }
            | Request::Stop { target }
            | Request::Restart { target, .. }
            | Request::Remove { target, .. }
            | Request::Merge { target, .. }
            | Request::Sync { target, .. }
            | Request::Hook { target, .. }
            | Request::Status { target, .. }
            | Request::Enqueue { target, .. }
            | Request::Queue { target, .. }
            | Request::LandCancel { target }
            | Request::Resolve { target, .. }
            | Request::Diff { target, .. }
            | Request::GateLog { target }
            | Request::Fork { target, .. }
            | Request::Review { target, .. }
            | Request::Pick { target, .. } => Some(&mut target.repo),
            Request::Ping | Request::KillServer | Request::Upgrade { .. } => None,
        }
    }

    /// The command a user typed for it, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::New(_) => "new",
            Request::List { .. } => "ls",
            Request::Tail { .. } | Request::Follow { .. } => "tail",
            Request::Send { .. } | Request::Enqueue { .. } => "send",
            Request::Attach { .. } => "attach",
            Request::Stop { .. } => "stop",
            Request::Restart { .. } => "restart",
            Request::Remove { .. } => "rm",
            Request::KillServer => "kill-server",
            Request::Upgrade { .. } => "server --upgrade",
            Request::Merge { .. } => "merge",
            Request::Sync { .. } => "sync",
            Request::Hook { .. } => "hook",
            Request::Status { .. } => "status",
            Request::Queue { .. } => "queue",
            Request::Gc { .. } => "gc",
            Request::Land { .. } | Request::LandStatus { .. } | Request::LandCancel { .. } => {
                "land"
            }
            Request::Resolve { .. } => "resolve",
            Request::Diff { .. } => "diff",
            Request::GateLog { .. } => "land",
            Request::Fork { .. } => "fork",
            Request::Review { .. } => "review",
            Request::Compare { .. } | Request::Pick { .. } => "compare",
        }
    }
}

/// One review comment: where in the agent's work, the lines there, and what the reviewer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewComment {
    /// Relative to the worktree's root.
    pub path: String,
    /// 1-based, in the agent's version of the file (in the base's, when `old`).
    pub line: u32,
    /// The last line, when the comment is on several (a hunk).
    pub end: Option<u32>,
    /// The lines are ones the agent removed: numbered as in the base.
    pub old: bool,
    /// The lines it refers to as the diff shows them (first character `+`, `-` or a space);
    /// empty: the server reads them from the worktree.
    pub excerpt: Vec<String>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeMode {
    /// Fast-forward when possible, else a merge commit.
    Merge,
    Squash,
    Rebase,
    FfOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAgent {
    pub repo: PathBuf,
    pub prompt: Option<String>,
    pub profile: Option<String>,
    pub name: Option<String>,
    pub base: Option<String>,
    pub count: u32,
    pub size: Option<Size>,
    /// The client's environment: agents inherit the user's environment of the terminal that asked.
    pub env: Vec<(String, String)>,
    /// Start the agent in this existing linked worktree (absolute), on the branch checked out
    /// there, instead of making a worktree; corral never removes it.
    pub worktree: Option<PathBuf>,
    /// The default colours of the asking client's terminal, as at attach (so the agent's first
    /// colour query is already answered with them).
    pub colors: Option<TermColors>,
    /// Arguments appended to the profile's command for these agents (`new ... -- ARGS`), kept
    /// for `restart`.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    /// Success, with something the user should know (e.g. which branch was kept).
    Note(String),
    Error(String),
    Created(Vec<String>),
    Agents(Vec<AgentInfo>),
    Lines(Vec<Line>),
    /// Text to print as it is (the start of `tail -f`).
    Text(String),
    /// Attach accepted: the pane's size and the detach key will follow as Screen frames.
    Attached,
    /// Attach accepted, and the server reads the keys from the client's terminal itself: the
    /// client must not read its terminal until the server says `Detached` (or goes away).
    AttachedReadingKeys,
    Pong {
        pid: u32,
        version: String,
    },
    /// A merge or sync would conflict in these paths; nothing was changed (exit 3).
    Conflict(Vec<String>),
    Status(Box<crate::status::Report>),
    /// The messages still queued for an agent, in delivery order.
    Queue(Vec<String>),
    /// The landing queue, in order.
    Landing(Vec<LandingEntry>),
    /// The agent `fork` made; `note`: what the user should know (its conversation starts
    /// fresh because the profile cannot fork one).
    Forked {
        name: String,
        note: Option<String>,
    },
    /// A group's agents side by side (`compare`).
    Compare(Vec<CompareEntry>),
}

/// One agent of a group, as `compare` shows it. Fields may be added, never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareEntry {
    pub name: String,
    pub status: String,
    pub diff: Option<DiffStat>,
    /// The paths it changed (committed, uncommitted and untracked).
    pub files: Vec<String>,
    /// `[merge] gate` run in its worktree: None when no gate is configured or it was not asked.
    pub gate: Option<GateRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRun {
    pub passed: bool,
    /// `passed`, `failed (exit 1)`, `timed out`, or why it could not run.
    pub summary: String,
    /// Its output.
    pub log: Option<PathBuf>,
}

/// One entry of a landing queue (`land --status`). Fields may be added, never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandingEntry {
    pub name: String,
    /// 1-based, among the entries not yet landed or blocked.
    pub position: Option<u32>,
    /// `waiting`, `syncing`, `gating`, `landing`, `landed` or `blocked`.
    pub state: String,
    /// Why it is blocked, in one line.
    pub reason: Option<String>,
    /// `conflict`, `gate` or `error`, when blocked.
    pub failure: Option<String>,
    /// What the agent was told, when it was.
    pub told: Option<String>,
    /// Where the gate's output of its last run is kept.
    pub gate_log: Option<PathBuf>,
    /// The commit the base became, once landed.
    pub landed_at: Option<String>,
    /// Times it was queued again after being told.
    pub retries: u32,
}

/// An agent's place in its repository's landing queue, in `ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landing {
    pub position: Option<u32>,
    pub state: String,
    pub reason: Option<String>,
    /// Where the output of its gate's last run is kept, once the gate has run.
    pub gate_log: Option<PathBuf>,
}

/// An agent as `ls` shows it. Fields may be added, never renamed (`ls --json` is an interface).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub repo: PathBuf,
    pub profile: String,
    pub status: String,
    /// Unix seconds.
    pub status_since: u64,
    /// Which signal or rule decided the status.
    pub status_reason: String,
    pub branch: String,
    pub base: String,
    pub base_commit: String,
    pub worktree: PathBuf,
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub port: Option<u16>,
    pub size: Size,
    pub created: u64,
    pub prompt: Option<String>,
    pub queued: u32,
    /// The agent's changes against its base (`None` until first computed).
    pub diff: Option<DiffStat>,
    /// Predicted conflicts with other agents and with the base's current tip.
    pub conflicts: Vec<ConflictInfo>,
    /// Its place in the landing queue; None when it is not queued.
    pub landing: Option<Landing>,
    /// Arguments appended to the profile's command for this agent (`new ... -- ARGS`).
    pub args: Vec<String>,
    /// The agents made by one `new -n N` share a group (the name of the first of them).
    pub group: Option<String>,
}

/// Files changed and lines added/removed (committed, uncommitted and untracked work against the
/// merge base), commits ahead of and behind the base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStat {
    pub files: u32,
    pub insertions: u32,
    pub deletions: u32,
    pub ahead: u32,
    pub behind: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictInfo {
    /// The other agent's name, or the base branch's when `base`.
    pub with: String,
    pub base: bool,
    pub paths: Vec<String>,
}
