//! The command line, as clap derive types. Parsing only: commands live in `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::term::Size;

#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about = "Run many coding agents side by side, each in its own terminal and git worktree"
)]
pub struct Cli {
    /// The repository to work on (default: the one containing the current directory).
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// Work on the corral server of this host (`[hosts.NAME]` in your config) instead of this
    /// machine's; `--repo` then names a repository on that host.
    #[arg(long, global = true, value_name = "NAME")]
    pub host: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the dashboard for this repository.
    Ui,
    /// Create worktree and branch, start an agent in it, and attach (unless --detach).
    New {
        /// The agent's first message.
        prompt: Option<String>,
        /// Agent profile (claude, codex, gemini, aider, opencode, shell, or one from your config).
        #[arg(long = "agent", short = 'a', value_name = "PROFILE")]
        profile: Option<String>,
        /// Name of the agent, also its branch suffix: lowercase letters, digits and '-'.
        #[arg(long)]
        name: Option<String>,
        /// Branch, tag or commit to start from (default: the branch checked out in the main worktree).
        #[arg(long)]
        base: Option<String>,
        /// How many agents to start with this prompt.
        #[arg(short = 'n', long = "count", default_value_t = 1)]
        count: u32,
        /// Terminal size of the agent, COLSxROWS (default: this terminal's, else 120x40).
        #[arg(long)]
        size: Option<Size>,
        /// Do not attach; print the name(s) and return.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Start the agent in this existing linked worktree of the repository, on the branch
        /// checked out there, instead of making one (no files copied, no setup run); `rm` and
        /// `merge` leave the worktree and branch.
        #[arg(long, value_name = "PATH", conflicts_with = "count")]
        worktree: Option<PathBuf>,
        /// Arguments appended to the profile's command for this agent (kept for restart), e.g.
        /// `-- --model sonnet`.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// List agents.
    Ls {
        /// One JSON object with the server and every agent.
        #[arg(long)]
        json: bool,
        /// Every repository the server knows, not only this one.
        #[arg(long)]
        all: bool,
    },
    /// Full-screen view of one agent; the detach key (ctrl-] by default) returns.
    Attach { name: String },
    /// Print an agent's screen and scrollback as text.
    Tail {
        name: String,
        /// Keep printing new lines as they appear.
        #[arg(short, long)]
        follow: bool,
        /// How many lines to print (0: all kept).
        #[arg(short = 'n', long = "lines", default_value_t = 0)]
        lines: u32,
        /// No colours.
        #[arg(long)]
        plain: bool,
    },
    /// Type text into an agent, then Enter.
    Send {
        name: String,
        text: String,
        /// Do not press Enter after the text.
        #[arg(long, conflicts_with = "queue")]
        no_enter: bool,
        /// Deliver it the next time the agent is idle, after messages queued before it (see
        /// `corral queue`). Kept across server restarts.
        #[arg(long)]
        queue: bool,
    },
    /// Show or cancel the messages queued for an agent with `send --queue`.
    Queue {
        name: String,
        /// Cancel every queued message.
        #[arg(long, conflicts_with = "remove")]
        clear: bool,
        /// Cancel the Nth queued message (1 is the next to be delivered).
        #[arg(long, value_name = "N")]
        remove: Option<u32>,
    },
    /// An agent's status, since when, and which signal or rule decided it.
    Status {
        name: String,
        /// Every signal and every screen rule, with the screen region each read.
        #[arg(long)]
        explain: bool,
        /// The same as JSON.
        #[arg(long)]
        json: bool,
    },
    /// For agents' hook systems: report a state (JSON on stdin, or as the last argument).
    Hook {
        /// The hook event (Claude Code's event name, `codex` for Codex's notify, or a status).
        event: String,
        /// The event's JSON, when not given on stdin (Codex passes it as an argument).
        payload: Option<String>,
    },
    /// End an agent's process (its worktree stays).
    Stop { name: String },
    /// Start an agent's process again in its worktree, resuming its conversation where it can.
    Restart { name: String },
    /// Show an agent's changes against its base: committed, uncommitted and untracked.
    Diff {
        name: String,
        /// Files changed and lines added/removed, like `git diff --stat`.
        #[arg(long)]
        stat: bool,
    },
    /// Land an agent's work on its base branch, then remove the agent (unless --keep).
    Merge {
        name: String,
        /// One new commit with all of the agent's changes.
        #[arg(long, conflicts_with_all = ["rebase", "ff_only"])]
        squash: bool,
        /// Replay the agent's commits on the base: linear history.
        #[arg(long, conflicts_with = "ff_only")]
        rebase: bool,
        /// Only fast-forward; refuse when the base has moved on.
        #[arg(long)]
        ff_only: bool,
        /// Keep the agent, its worktree and its branch.
        #[arg(long)]
        keep: bool,
        /// Message of the merge or squash commit.
        #[arg(short = 'm', long = "message", value_name = "MSG")]
        message: Option<String>,
        /// Merge even while the agent is working.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Bring the base branch's new commits into an agent's branch and worktree.
    Sync { name: String },
    /// Hand a conflict to the agent: merge the base into its worktree leaving conflict markers,
    /// and tell it which files conflict and what each side meant.
    Resolve {
        name: String,
        /// Start a new agent of this profile in that worktree to resolve it instead.
        #[arg(long, value_name = "PROFILE")]
        agent: Option<String>,
    },
    /// Land agents through the repository's landing queue: each is synced with the base, gated
    /// (`[merge] gate`) and landed in turn; follows them until each is landed or blocked.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["names", "status", "cancel"])))]
    Land {
        names: Vec<String>,
        /// Land each as one new commit on the base.
        #[arg(long, conflicts_with = "rebase")]
        squash: bool,
        /// Replay each agent's commits on the base instead of merging the base in.
        #[arg(long)]
        rebase: bool,
        /// Keep the agents, their worktrees and branches after they landed.
        #[arg(long)]
        keep: bool,
        /// Queue them and return at once.
        #[arg(long)]
        no_wait: bool,
        /// Show the queue: order, state and reason of each entry.
        #[arg(long, conflicts_with_all = ["names", "cancel"])]
        status: bool,
        /// With --status: as JSON.
        #[arg(long, requires = "status")]
        json: bool,
        /// Take an agent out of the queue.
        #[arg(long, value_name = "NAME", conflicts_with = "names")]
        cancel: Option<String>,
    },
    /// Send review comments to an agent as one message, each with its path, line and the lines
    /// there; typed at once when the agent is idle or asks for input, else queued until it is idle.
    Review {
        name: String,
        /// PATH:LINE:TEXT or PATH:FIRST-LAST:TEXT (line numbers of the agent's version).
        #[arg(long = "comment", short = 'c', value_name = "PATH:LINE:TEXT", required = true)]
        comments: Vec<String>,
        /// Deliver it the next time the agent is idle, even when it waits for input now.
        #[arg(long)]
        queue: bool,
    },
    /// The agents one `new -n N` started, side by side: status, diff stat, files touched, and
    /// `[merge] gate` run in each worktree; --pick lands one and removes the others.
    Compare {
        /// The group (the first agent's name, `group` in `ls --json`) or any member's name.
        group: String,
        /// Do not run the gate.
        #[arg(long)]
        no_gate: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Land this agent (as `merge`), then remove the rest of the group; their work is kept
        /// under refs/corral/backup/.
        #[arg(long, value_name = "NAME")]
        pick: Option<String>,
        /// With --pick: through the landing queue (gated) instead of merging now.
        #[arg(long, requires = "pick")]
        queue: bool,
        /// With --pick: one new commit on the base.
        #[arg(long, requires = "pick", conflicts_with = "rebase")]
        squash: bool,
        /// With --pick: replay its commits on the base.
        #[arg(long, requires = "pick")]
        rebase: bool,
    },
    /// A new agent from another's current state: its uncommitted and untracked work (as a
    /// snapshot commit on the new branch; the original is not touched), and its conversation
    /// where the profile can fork it (`fork` arguments), else a fresh one.
    Fork {
        /// The agent to fork.
        name: String,
        /// The new agent's first message.
        prompt: Option<String>,
        /// Name of the new agent (default: NAME-fork).
        #[arg(long = "name", value_name = "N")]
        new_name: Option<String>,
        /// Terminal size of the new agent, COLSxROWS (default: this terminal's, else NAME's).
        #[arg(long)]
        size: Option<Size>,
        /// Do not attach; print the name and return.
        #[arg(long, short = 'd')]
        detach: bool,
    },
    /// Stop an agent and remove its worktree.
    Rm {
        name: String,
        /// Remove even when work is not merged: uncommitted work is committed to the branch, and the branch is kept.
        #[arg(long, short)]
        force: bool,
    },
    /// List what corral left behind: worktrees and branches no agent owns, stale registrations.
    Gc {
        /// Remove what holds no work (no uncommitted changes, no commits the base lacks).
        #[arg(long, short)]
        yes: bool,
        /// With --yes, remove what holds work too: uncommitted changes are committed first, and
        /// every tip the base lacks is kept under refs/corral/backup/.
        #[arg(long, requires = "yes")]
        force: bool,
    },
    /// Run the server (normally started on demand).
    Server {
        /// Run in this process instead of in the background.
        #[arg(long)]
        foreground: bool,
        /// Leave the terminal's session (used when corral starts the server itself).
        #[arg(long, hide = true)]
        detach: bool,
        /// Replace the running server by this corral binary (or the one at PATH); every agent
        /// keeps running, with its screen and scrollback.
        #[arg(long, value_name = "PATH", num_args = 0..=1, conflicts_with_all = ["foreground", "detach"])]
        upgrade: Option<Option<std::path::PathBuf>>,
        /// Print which hand-over state this binary reads (asked by a server about to upgrade).
        #[arg(long, hide = true)]
        handover_version: bool,
        /// Check that this binary can take over the state in this file (asked by a server about to
        /// upgrade).
        #[arg(long, hide = true)]
        handover_check: Option<std::path::PathBuf>,
        /// Go on from a server that handed over (its state file; set by the old server).
        #[arg(long, hide = true, requires_all = ["listen_fd", "lock_fd"])]
        resume: Option<std::path::PathBuf>,
        #[arg(long, hide = true)]
        listen_fd: Option<i32>,
        #[arg(long, hide = true)]
        lock_fd: Option<i32>,
    },
    /// Stop the server and every agent's process (worktrees and branches stay).
    KillServer,
    /// Join standard input and output to this user's corral server (started when needed): what
    /// `ssh HOST corral proxy` runs for a client on another machine.
    Proxy {
        /// Many connections over this one stream, in channels (what the dashboard uses).
        #[arg(long)]
        mux: bool,
    },
    /// The hosts in your config: whether each answers, its corral version and how many agents.
    Hosts {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check git, the socket, the terminal, and which agent CLIs are installed.
    Doctor,
    /// Approve the commands this repository's .corral.toml defines.
    Trust,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}
