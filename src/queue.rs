//! The landing queue of one repository as a pure state machine (SPEC §5b): entries in the order
//! they were queued, each `waiting`, `syncing`, `gating`, `landing`, `landed` or `blocked`; events
//! in (the agent's status, what a step did), actions out (run this step, tell the agent that, save
//! the queue). No I/O, no clock, no git: the server's queue owner runs the actions and feeds back
//! what they did, and tests drive it with made-up events.
//!
//! One entry runs at a time. The next to run is the first `waiting` entry whose agent is not
//! `working`: an agent busy on a turn keeps its place but does not hold up the ones behind it.
//! A step's result for an entry that is not in that step (it was cancelled, or a crash restarted
//! it) is ignored, so a late result never moves the queue twice.

use serde::{Deserialize, Serialize};

/// How an entry's work reaches the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The base fast-forwards to exactly the gated commit (the sync merged the base in).
    Merge,
    /// One new commit on the base with the gated commit's tree.
    Squash,
    /// The sync rebases the agent's commits on the base; the base then fast-forwards to them.
    Rebase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Waiting,
    Syncing,
    Gating,
    Landing,
    Landed,
    Blocked,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Syncing => "syncing",
            State::Gating => "gating",
            State::Landing => "landing",
            State::Landed => "landed",
            State::Blocked => "blocked",
        }
    }

    /// A step runs for the entry.
    pub fn running(self) -> bool {
        matches!(self, State::Syncing | State::Gating | State::Landing)
    }

    /// Landed or blocked: the queue is done with it.
    pub fn settled(self) -> bool {
        matches!(self, State::Landed | State::Blocked)
    }
}

/// Why an entry is blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// The sync conflicts: each path, with the subjects of the base's commits that touched it.
    Conflict { paths: Vec<(String, Vec<String>)> },
    /// The gate failed: its command, its exit code (None: killed at the timeout), its last lines.
    Gate { command: Vec<String>, code: Option<i32>, timed_out: bool, tail: Vec<String> },
    /// Anything else (a refusal, a git error); the agent is not told.
    Error(String),
}

impl Reason {
    /// One line, for `land --status` and `ls`.
    pub fn summary(&self) -> String {
        match self {
            Reason::Conflict { paths } => {
                let p: Vec<&str> = paths.iter().map(|(p, _)| p.as_str()).collect();
                format!("conflict in {}", p.join(", "))
            }
            Reason::Gate { command, timed_out: true, .. } => {
                format!("gate `{}` timed out", command.join(" "))
            }
            Reason::Gate { command, code, .. } => match code {
                Some(c) => format!("gate `{}` failed with exit code {c}", command.join(" ")),
                None => format!("gate `{}` was killed", command.join(" ")),
            },
            Reason::Error(e) => e.clone(),
        }
    }

    /// What the agent is told (`on_failure = "tell"`).
    /// `again`: the agent will be queued again once it worked on it.
    pub fn message(&self, base: &str, again: bool) -> Option<String> {
        let next = if again {
            "When you are done, corral will try to land your work again."
        } else {
            "corral will not retry on its own: run `corral land` again when it is fixed."
        };
        match self {
            Reason::Conflict { paths } => {
                let mut m = format!(
                    "corral could not land your work: bringing the new commits of {base} into your branch conflicts in these files:\n"
                );
                for (p, subjects) in paths {
                    m.push_str(&format!("- {p}"));
                    if !subjects.is_empty() {
                        m.push_str(&format!(" (changed on {base} by: {})", subjects.join("; ")));
                    }
                    m.push('\n');
                }
                m.push_str(&format!(
                    "Merge {base} into your branch and resolve them, then commit. {next}"
                ));
                Some(m)
            }
            Reason::Gate { command, code, timed_out, tail } => {
                let how = match (timed_out, code) {
                    (true, _) => "timed out".to_string(),
                    (false, Some(c)) => format!("failed with exit code {c}"),
                    (false, None) => "was killed".to_string(),
                };
                let mut m = format!(
                    "corral could not land your work: the gate `{}` {how} on your branch (with {base} merged in).",
                    command.join(" ")
                );
                if !tail.is_empty() {
                    m.push_str(&format!(" Its last {} lines:\n", tail.len()));
                    for l in tail {
                        m.push_str(l);
                        m.push('\n');
                    }
                } else {
                    m.push('\n');
                }
                m.push_str(&format!("Fix it and commit. {next}"));
                Some(m)
            }
            Reason::Error(_) => None,
        }
    }
}

/// Where an entry is in being told about its failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Told {
    #[default]
    No,
    /// The message is queued for the agent; it has not started on it yet.
    Sent,
    /// The agent worked on the message; once it is idle again the entry is queued again.
    Working,
    /// `corral resolve` left a merge in its worktree; once the agent concluded it, the entry is
    /// queued again.
    Resolving,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// The branch it lands on.
    pub base: String,
    pub mode: Mode,
    /// Keep the agent after it landed.
    pub keep: bool,
    pub state: State,
    pub reason: Option<Reason>,
    /// Times it was queued again after being told.
    pub retries: u32,
    pub told: Told,
    /// The last message the agent was told.
    #[serde(default)]
    pub message: Option<String>,
    /// The running gate's process (and process group) id, so that a gate a killed server left
    /// behind is ended by the next one.
    #[serde(default)]
    pub gate_pid: Option<u32>,
    /// The commit the gate runs (or ran) on.
    pub tip: Option<String>,
    /// What the base became when it landed.
    pub landed_at: Option<String>,
    /// The agent is on a turn (not saved: the server tells again after a restart).
    #[serde(skip)]
    pub working: bool,
}

/// What to do when an entry is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnFailure {
    Tell,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub on_failure: OnFailure,
    /// How many times an entry is queued again after being told.
    pub retries: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { on_failure: OnFailure::Tell, retries: 2 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The agent's status changed (`working`, or anything else).
    Working { name: String, working: bool },
    /// The sync step finished: the agent's branch now holds its work and the base; `tip` is what
    /// the gate must run on.
    Synced { name: String, tip: String },
    /// The gate passed on `tip` (or there is no gate).
    Gated { name: String, tip: String },
    /// The base was moved to the gated commit; it is now `base`.
    Landed { name: String, base: String },
    /// The base moved after the sync: sync again.
    BaseMoved { name: String },
    /// A step failed.
    Failed { name: String, reason: Reason },
    /// The agent is gone (removed by hand, or the removal after landing).
    Gone { name: String },
    /// The merge `corral resolve` left in the agent's worktree is concluded (or abandoned).
    Resolved { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Commit the agent's uncommitted work and bring the base's new commits into its branch.
    Sync { name: String, mode: Mode },
    /// Run the gate in the agent's worktree on `tip`.
    Gate { name: String, tip: String },
    /// Move the base to exactly `tip` (or its squash), if the base is still an ancestor of it.
    Land { name: String, tip: String, mode: Mode },
    /// Stop the step running for a cancelled entry (a gate is killed; git steps finish).
    Abort { name: String },
    /// A gate started by a server that was killed may still run: end it if it is still that.
    KillOrphan { name: String, pid: u32 },
    /// Remove the landed agent as `merge` does.
    Remove { name: String },
    /// Queue this message for the agent (delivered when it is idle).
    Tell { name: String, text: String },
    /// Sync the other idle agents whose changes the radar predicts do not conflict.
    AutoSync { landed: String },
    /// The queue changed: save it.
    Save,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub entries: Vec<Entry>,
    #[serde(skip)]
    policy: Option<Policy>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("agent '{0}' is already in the landing queue ({1})")]
    Queued(String, &'static str),
    #[error("agent '{0}' is not in the landing queue")]
    NotQueued(String),
}

impl Queue {
    pub fn new(policy: Policy) -> Queue {
        Queue { entries: Vec::new(), policy: Some(policy) }
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = Some(policy);
    }

    fn policy(&self) -> Policy {
        self.policy.unwrap_or_default()
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    fn entry_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.name == name)
    }

    /// 1-based place among the entries not yet landed or blocked.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .filter(|e| !e.state.settled())
            .position(|e| e.name == name)
            .map(|i| i + 1)
    }

    /// Nothing waits or runs.
    pub fn idle(&self) -> bool {
        self.entries.iter().all(|e| e.state.settled())
    }

    /// Queue an agent at the end. A blocked or landed (kept) agent is queued again afresh.
    pub fn add(
        &mut self,
        name: &str,
        base: &str,
        mode: Mode,
        keep: bool,
        working: bool,
    ) -> Result<Vec<Action>, QueueError> {
        if let Some(e) = self.entry(name)
            && !e.state.settled()
        {
            return Err(QueueError::Queued(name.to_string(), e.state.name()));
        }
        // Landed entries of an earlier batch are only kept to be shown while the queue runs.
        if self.idle() {
            self.entries.retain(|e| e.state != State::Landed);
        }
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry {
            name: name.to_string(),
            base: base.to_string(),
            mode,
            keep,
            state: State::Waiting,
            reason: None,
            retries: 0,
            told: Told::No,
            message: None,
            gate_pid: None,
            tip: None,
            landed_at: None,
            working,
        });
        let mut out = vec![Action::Save];
        self.advance(&mut out);
        Ok(out)
    }

    /// Take an agent out of the queue.
    pub fn cancel(&mut self, name: &str) -> Result<Vec<Action>, QueueError> {
        let Some(i) = self.entries.iter().position(|e| e.name == name) else {
            return Err(QueueError::NotQueued(name.to_string()));
        };
        let e = self.entries.remove(i);
        let mut out = Vec::new();
        if e.state.running() {
            out.push(Action::Abort { name: e.name });
        }
        out.push(Action::Save);
        self.advance(&mut out);
        Ok(out)
    }

    /// The agent was handed its conflict (`corral resolve`): once it concluded the merge, it is
    /// queued again.
    pub fn resolving(&mut self, name: &str) {
        if let Some(e) = self.entry_mut(name)
            && e.state == State::Blocked
        {
            e.told = Told::Resolving;
        }
    }

    fn requeue(&mut self, name: &str, out: &mut Vec<Action>) {
        let Some(i) = self.entries.iter().position(|x| x.name == name) else { return };
        let mut e = self.entries.remove(i);
        e.told = Told::No;
        e.retries += 1;
        e.state = State::Waiting;
        e.reason = None;
        // Queued again: at the end, behind everyone queued meanwhile.
        self.entries.push(e);
        out.push(Action::Save);
    }

    /// After a restart: whatever step each entry was in starts again at the sync (its steps are
    /// recoverable, and the sync of an already-synced branch changes nothing).
    pub fn restart(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            if let Some(pid) = e.gate_pid.take() {
                out.push(Action::KillOrphan { name: e.name.clone(), pid });
            }
            if e.state.running() {
                e.state = State::Waiting;
                e.tip = None;
            }
        }
        out.push(Action::Save);
        self.advance(&mut out);
        out
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Working { name, working } => {
                let Some(e) = self.entry_mut(&name) else { return out };
                e.working = working;
                if e.state == State::Blocked {
                    match (e.told, working) {
                        (Told::Sent, true) => e.told = Told::Working,
                        (Told::Working, false) => self.requeue(&name, &mut out),
                        _ => {}
                    }
                }
            }
            Event::Synced { name, tip } => {
                if let Some(e) = self.in_state(&name, State::Syncing) {
                    e.state = State::Gating;
                    e.tip = Some(tip.clone());
                    out.push(Action::Gate { name, tip });
                    out.push(Action::Save);
                }
            }
            Event::Gated { name, tip } => {
                if let Some(e) = self.in_state(&name, State::Gating)
                    && e.tip.as_deref() == Some(tip.as_str())
                {
                    e.state = State::Landing;
                    out.push(Action::Land { name, tip, mode: e.mode });
                    out.push(Action::Save);
                }
            }
            Event::Landed { name, base } => {
                if let Some(e) = self.in_state(&name, State::Landing) {
                    e.state = State::Landed;
                    e.landed_at = Some(base);
                    let keep = e.keep;
                    if !keep {
                        out.push(Action::Remove { name: name.clone() });
                    }
                    out.push(Action::AutoSync { landed: name });
                    out.push(Action::Save);
                }
            }
            Event::BaseMoved { name } => {
                if let Some(e) = self.in_state(&name, State::Landing) {
                    e.state = State::Syncing;
                    e.tip = None;
                    let mode = e.mode;
                    out.push(Action::Sync { name, mode });
                    out.push(Action::Save);
                }
            }
            Event::Failed { name, reason } => {
                let policy = self.policy();
                if let Some(e) = self.entry_mut(&name)
                    && e.state.running()
                {
                    e.state = State::Blocked;
                    let again = e.retries < policy.retries;
                    let text = match policy.on_failure {
                        OnFailure::Tell => reason.message(&e.base, again),
                        OnFailure::Stop => None,
                    };
                    e.reason = Some(reason);
                    if let Some(text) = text {
                        // Queued again once it worked on the message, while retries remain.
                        e.told = if again { Told::Sent } else { Told::No };
                        e.message = Some(text.clone());
                        out.push(Action::Tell { name, text });
                    }
                    out.push(Action::Save);
                }
            }
            Event::Resolved { name } => {
                if self.entry(&name).is_some_and(|e| {
                    e.state == State::Blocked && e.told == Told::Resolving && !e.working
                }) {
                    self.requeue(&name, &mut out);
                }
            }
            Event::Gone { name } => {
                let before = self.entries.len();
                // A landed entry stays to be shown; anything else cannot go on without its agent.
                self.entries.retain(|e| e.name != name || e.state == State::Landed);
                if self.entries.len() != before {
                    out.push(Action::Save);
                }
            }
        }
        self.advance(&mut out);
        out
    }

    /// The gate of `name` runs as process (group) `pid`, or ended (`None`).
    pub fn gate_running(&mut self, name: &str, pid: Option<u32>) {
        if let Some(e) = self.entry_mut(name) {
            e.gate_pid = pid;
        }
    }

    fn in_state(&mut self, name: &str, state: State) -> Option<&mut Entry> {
        self.entry_mut(name).filter(|e| e.state == state)
    }

    /// Start the next entry when none runs.
    fn advance(&mut self, out: &mut Vec<Action>) {
        if self.entries.iter().any(|e| e.state.running()) {
            return;
        }
        let Some(e) = self.entries.iter_mut().find(|e| e.state == State::Waiting && !e.working)
        else {
            return;
        };
        e.state = State::Syncing;
        out.push(Action::Sync { name: e.name.clone(), mode: e.mode });
        if !out.contains(&Action::Save) {
            out.push(Action::Save);
        }
    }
}

/// What the gate view shows of a log: its last 256 KiB (a gate such as `cargo test` can print
/// megabytes; the end is what says why it failed), from a line's start.
pub fn read_log_tail(path: &std::path::Path) -> Result<String, String> {
    use std::io::{Read, Seek, SeekFrom};
    const KEEP: u64 = 256 * 1024;
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let len = f.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    let from = len.saturating_sub(KEEP);
    f.seek(SeekFrom::Start(from)).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(if from > 0 {
        text.split_once('\n').map_or(String::new(), |(_, rest)| rest.to_string())
    } else {
        text.into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syncs(out: &[Action]) -> Vec<&str> {
        out.iter()
            .filter_map(|a| match a {
                Action::Sync { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    fn state(q: &Queue, name: &str) -> State {
        q.entry(name).map(|e| e.state).unwrap_or_else(|| panic!("{name} is not queued"))
    }

    /// Drive `name` from syncing to landed.
    fn land_one(q: &mut Queue, name: &str) -> Vec<Action> {
        let out = q.handle(Event::Synced { name: name.into(), tip: format!("{name}-tip") });
        assert!(out.contains(&Action::Gate { name: name.into(), tip: format!("{name}-tip") }));
        let out = q.handle(Event::Gated { name: name.into(), tip: format!("{name}-tip") });
        assert!(out.iter().any(|a| matches!(a, Action::Land { name: n, .. } if n == name)));
        q.handle(Event::Landed { name: name.into(), base: format!("{name}-tip") })
    }

    #[test]
    fn entries_land_one_at_a_time_in_the_order_queued() {
        let mut q = Queue::new(Policy::default());
        let out = q.add("a", "main", Mode::Merge, false, false).unwrap();
        assert_eq!(syncs(&out), ["a"]);
        let out = q.add("b", "main", Mode::Merge, false, false).unwrap();
        assert!(syncs(&out).is_empty(), "b waits while a runs");
        assert_eq!(state(&q, "b"), State::Waiting);
        assert_eq!(q.position("b"), Some(2));
        let out = land_one(&mut q, "a");
        assert!(out.contains(&Action::Remove { name: "a".into() }));
        assert!(out.contains(&Action::AutoSync { landed: "a".into() }));
        assert_eq!(syncs(&out), ["b"], "b starts once a landed");
        assert_eq!(state(&q, "a"), State::Landed);
        assert_eq!(q.position("b"), Some(1));
        land_one(&mut q, "b");
        assert!(q.idle());
    }

    #[test]
    fn a_working_agent_waits_without_holding_up_the_others() {
        let mut q = Queue::new(Policy::default());
        let out = q.add("busy", "main", Mode::Merge, false, true).unwrap();
        assert!(syncs(&out).is_empty());
        let out = q.add("free", "main", Mode::Merge, false, false).unwrap();
        assert_eq!(syncs(&out), ["free"]);
        let out = q.handle(Event::Working { name: "busy".into(), working: false });
        assert!(syncs(&out).is_empty(), "one entry runs at a time");
        let out = land_one(&mut q, "free");
        assert_eq!(syncs(&out), ["busy"]);
    }

    #[test]
    fn a_base_that_moved_after_the_sync_means_sync_and_gate_again() {
        let mut q = Queue::new(Policy::default());
        q.add("a", "main", Mode::Squash, true, false).unwrap();
        q.handle(Event::Synced { name: "a".into(), tip: "t1".into() });
        q.handle(Event::Gated { name: "a".into(), tip: "t1".into() });
        let out = q.handle(Event::BaseMoved { name: "a".into() });
        assert_eq!(syncs(&out), ["a"]);
        let out = q.handle(Event::Synced { name: "a".into(), tip: "t2".into() });
        assert!(out.contains(&Action::Gate { name: "a".into(), tip: "t2".into() }));
        // A gate result for the old commit lands nothing.
        let out = q.handle(Event::Gated { name: "a".into(), tip: "t1".into() });
        assert!(out.is_empty());
        let out = q.handle(Event::Gated { name: "a".into(), tip: "t2".into() });
        assert_eq!(out[0], Action::Land { name: "a".into(), tip: "t2".into(), mode: Mode::Squash });
        let out = q.handle(Event::Landed { name: "a".into(), base: "s".into() });
        assert!(!out.iter().any(|a| matches!(a, Action::Remove { .. })), "--keep keeps it");
    }

    #[test]
    fn a_failure_blocks_tells_and_queues_again_once_the_agent_worked_on_it() {
        let mut q = Queue::new(Policy::default());
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        q.add("b", "main", Mode::Merge, false, false).unwrap();
        q.handle(Event::Synced { name: "a".into(), tip: "t".into() });
        let reason = Reason::Gate {
            command: vec!["make".into(), "test".into()],
            code: Some(2),
            timed_out: false,
            tail: vec!["FAIL: adds".into()],
        };
        let out = q.handle(Event::Failed { name: "a".into(), reason: reason.clone() });
        let text = out
            .iter()
            .find_map(|a| match a {
                Action::Tell { name, text } if name == "a" => Some(text.clone()),
                _ => None,
            })
            .expect("a is told");
        assert!(text.contains("`make test` failed with exit code 2"), "{text}");
        assert!(text.contains("FAIL: adds"), "{text}");
        assert_eq!(syncs(&out), ["b"], "the queue goes on without a");
        assert_eq!(state(&q, "a"), State::Blocked);
        assert_eq!(q.entry("a").unwrap().reason.as_ref().unwrap().summary(), reason.summary());

        // Idle before it even got the message: nothing yet.
        q.handle(Event::Working { name: "a".into(), working: false });
        assert_eq!(state(&q, "a"), State::Blocked);
        q.handle(Event::Working { name: "a".into(), working: true });
        assert_eq!(state(&q, "a"), State::Blocked);
        q.handle(Event::Working { name: "a".into(), working: false });
        assert_eq!(state(&q, "a"), State::Waiting);
        assert_eq!(q.entries.last().unwrap().name, "a", "queued again at the end");
        let out = land_one(&mut q, "b");
        assert_eq!(syncs(&out), ["a"]);
        assert_eq!(q.entry("a").unwrap().retries, 1);
    }

    #[test]
    fn retries_run_out_and_stop_only_marks() {
        let mut q = Queue::new(Policy { on_failure: OnFailure::Tell, retries: 1 });
        let fail = |q: &mut Queue| {
            q.handle(Event::Failed {
                name: "a".into(),
                reason: Reason::Conflict { paths: vec![("f".into(), vec!["base change".into()])] },
            })
        };
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        let out = fail(&mut q);
        let told = out.iter().find_map(|a| match a {
            Action::Tell { text, .. } => Some(text.clone()),
            _ => None,
        });
        let told = told.expect("told the first time");
        assert!(told.contains("- f (changed on main by: base change)"), "{told}");
        q.handle(Event::Working { name: "a".into(), working: true });
        let out = q.handle(Event::Working { name: "a".into(), working: false });
        assert_eq!(syncs(&out), ["a"]);
        let out = fail(&mut q);
        let told = out.iter().find_map(|a| match a {
            Action::Tell { text, .. } => Some(text.clone()),
            _ => None,
        });
        assert!(told.unwrap().contains("will not retry"), "told, but not queued again");
        q.handle(Event::Working { name: "a".into(), working: true });
        q.handle(Event::Working { name: "a".into(), working: false });
        assert_eq!(state(&q, "a"), State::Blocked, "stays blocked");

        let mut q = Queue::new(Policy { on_failure: OnFailure::Stop, retries: 2 });
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        let out = fail(&mut q);
        assert_eq!(out, [Action::Save]);
        assert_eq!(state(&q, "a"), State::Blocked);
    }

    #[test]
    fn a_resolving_agent_is_queued_again_once_its_merge_is_concluded_not_before() {
        let mut q = Queue::new(Policy { on_failure: OnFailure::Tell, retries: 0 });
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        q.handle(Event::Failed {
            name: "a".into(),
            reason: Reason::Conflict { paths: vec![("f".into(), vec![])] },
        });
        q.resolving("a");
        // Working and idle again while the merge is still open: nothing.
        q.handle(Event::Working { name: "a".into(), working: true });
        q.handle(Event::Working { name: "a".into(), working: false });
        assert_eq!(state(&q, "a"), State::Blocked);
        q.handle(Event::Working { name: "a".into(), working: true });
        assert!(q.handle(Event::Resolved { name: "a".into() }).is_empty(), "not while working");
        q.handle(Event::Working { name: "a".into(), working: false });
        let out = q.handle(Event::Resolved { name: "a".into() });
        assert_eq!(syncs(&out), ["a"]);
    }

    #[test]
    fn errors_block_without_telling() {
        let mut q = Queue::new(Policy::default());
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        let out =
            q.handle(Event::Failed { name: "a".into(), reason: Reason::Error("gone".into()) });
        assert_eq!(out, [Action::Save]);
    }

    #[test]
    fn cancel_aborts_a_running_step_and_starts_the_next() {
        let mut q = Queue::new(Policy::default());
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        q.add("b", "main", Mode::Merge, false, false).unwrap();
        q.handle(Event::Synced { name: "a".into(), tip: "t".into() });
        let out = q.cancel("a").unwrap();
        assert_eq!(out[0], Action::Abort { name: "a".into() });
        assert_eq!(syncs(&out), ["b"]);
        assert!(q.entry("a").is_none());
        // The killed gate's result comes later: ignored.
        assert!(q.handle(Event::Gated { name: "a".into(), tip: "t".into() }).is_empty());
        assert_eq!(q.cancel("zz"), Err(QueueError::NotQueued("zz".into())));
        assert!(matches!(
            q.add("b", "main", Mode::Merge, false, false),
            Err(QueueError::Queued(_, "syncing"))
        ));
    }

    #[test]
    fn a_restart_sends_every_running_entry_back_to_the_sync() {
        let mut q = Queue::new(Policy::default());
        q.add("a", "main", Mode::Merge, false, false).unwrap();
        q.add("b", "main", Mode::Merge, false, false).unwrap();
        q.handle(Event::Synced { name: "a".into(), tip: "t".into() });
        q.gate_running("a", Some(42));
        let saved = serde_json::to_string(&q).unwrap();
        let mut q: Queue = serde_json::from_str(&saved).unwrap();
        assert_eq!(state(&q, "a"), State::Gating);
        let out = q.restart();
        assert_eq!(out[0], Action::KillOrphan { name: "a".into(), pid: 42 });
        assert_eq!(syncs(&out), ["a"], "a again first, from the sync");
        assert_eq!(q.entry("a").unwrap().gate_pid, None);
        assert_eq!(state(&q, "b"), State::Waiting);
    }

    #[test]
    fn a_new_batch_forgets_the_landed_entries_of_the_last_one() {
        let mut q = Queue::new(Policy::default());
        q.add("a", "main", Mode::Merge, true, false).unwrap();
        land_one(&mut q, "a");
        q.handle(Event::Gone { name: "a".into() });
        assert_eq!(state(&q, "a"), State::Landed, "still shown");
        q.add("b", "main", Mode::Merge, false, false).unwrap();
        assert!(q.entry("a").is_none());
        // A blocked agent that is removed leaves the queue.
        q.handle(Event::Failed { name: "b".into(), reason: Reason::Error("x".into()) });
        q.handle(Event::Gone { name: "b".into() });
        assert!(q.entries.is_empty());
    }
}
