//! The landing queue's owner (SPEC §5b): one `crate::queue::Queue` per repository, driven from
//! the session. It feeds the machine the agents' statuses (after every session message) and the
//! results of its steps, and carries out the actions: the git steps (`git::prepare`,
//! `git::land_gated`) on blocking threads, the gate as a child process (its own process group,
//! output in the state dir, killed at the timeout or on cancel), messages to agents through the
//! prompt queue, removal through `rm`'s path, and the queue saved in the common git dir after
//! every change. A repository's saved queue is loaded, and restarted at the sync step, when the
//! session loads the repository (after its intent records are resolved).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{Key, Outcome, Phase, Session, SessionMsg, err, off_session, wait_exit};
use crate::config::{self, AutoSync, SyncMode};
use crate::git::{self, GatedLanding, LandError};
use crate::paths;
use crate::proto::{Landing, LandingEntry, MergeMode, Reply, Target};
use crate::queue::{Action, Event, Mode, OnFailure, Policy, Queue, Reason, Told};

/// How long a landed agent's process gets to end before its worktree is removed anyway.
const STOP_WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Queues {
    repos: BTreeMap<PathBuf, RepoQueue>,
}

struct RepoQueue {
    queue: Queue,
    common: PathBuf,
    /// Who the queue's commits are by (the last `land` request's user; the repository's identity
    /// after a restart).
    git_env: Vec<(String, String)>,
    /// The running gate's kill switch.
    gate: Option<oneshot::Sender<()>>,
    /// Agents to sync (`auto_sync`) once they are idle.
    to_sync: BTreeSet<String>,
    /// This server runs the repository's queue.
    _lock: git::QueueLock,
}

pub(super) fn gate_log(repo: &Path, name: &str) -> PathBuf {
    let repo_name = repo.file_name().and_then(|n| n.to_str()).unwrap_or("repo");
    paths::state_dir()
        .join("gates")
        .join(format!("{repo_name}-{}", paths::short_hash(&repo.to_string_lossy())))
        .join(format!("{name}.log"))
}

fn policy(loaded: &config::Config) -> Policy {
    Policy {
        on_failure: match loaded.merge.on_failure {
            config::OnFailure::Tell => OnFailure::Tell,
            config::OnFailure::Stop => OnFailure::Stop,
        },
        retries: loaded.merge.retries,
    }
}

fn load_config(repo: &Path) -> Result<config::Loaded, String> {
    config::load(&paths::user_config_file(), Some(repo)).map_err(|e| e.to_string())
}

/// The last `n` lines of a file.
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned());
    let text = text.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

fn failure_kind(r: &Reason) -> &'static str {
    match r {
        Reason::Conflict { .. } => "conflict",
        Reason::Gate { .. } => "gate",
        Reason::Error(_) => "error",
    }
}

impl Session {
    /// The repository's saved queue, if any, restarted at the sync step. Called once per
    /// repository, when it is loaded.
    pub(super) fn queue_load(&mut self, root: &Path, common: &Path) {
        let mut queue = match git::load_queue(common) {
            Ok(Some(q)) => q,
            Ok(None) => return,
            Err(e) => {
                warn!("cannot read the landing queue of {}: {e}", root.display());
                return;
            }
        };
        let lock = match git::lock_queue(common) {
            Ok(l) => l,
            Err(e) => {
                warn!("not resuming the landing queue of {}: {e}", root.display());
                return;
            }
        };
        let loaded = load_config(root).map(|l| l.config).unwrap_or_default();
        queue.set_policy(policy(&loaded));
        info!("resuming the landing queue of {} ({} entries)", root.display(), queue.entries.len());
        let actions = queue.restart();
        self.queues.repos.insert(
            root.to_path_buf(),
            RepoQueue {
                queue,
                common: common.to_path_buf(),
                git_env: Vec::new(),
                gate: None,
                to_sync: BTreeSet::new(),
                _lock: lock,
            },
        );
        self.queue_track();
        self.queue_run(root, actions);
    }

    fn working(&self, key: &Key) -> Option<bool> {
        let a = self.agents.get(key)?;
        if a.phase == Phase::Starting {
            return Some(true);
        }
        Some(self.agent_info(key, a).status == "working")
    }

    /// `corral land NAME...`.
    pub(super) fn queue_land(
        &mut self,
        repo: PathBuf,
        names: Vec<String>,
        mode: MergeMode,
        keep: bool,
        git_env: Vec<(String, String)>,
    ) -> Outcome {
        let mode = match mode {
            MergeMode::Squash => Mode::Squash,
            MergeMode::Rebase => Mode::Rebase,
            MergeMode::Merge | MergeMode::FfOnly => Mode::Merge,
        };
        if names.is_empty() {
            return err("name at least one agent to land");
        }
        let mut seen = BTreeSet::new();
        if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return err(format!("agent '{twice}' is named twice"));
        }
        let mut common = None;
        for name in &names {
            let target = Target { repo: repo.clone(), name: name.clone() };
            match self.agent(&target) {
                Ok(a) => common = Some(a.common_dir.clone()),
                Err(e) => return err(e),
            }
        }
        let Some(common) = common else { return err("no agents named") };
        let loaded = match load_config(&repo) {
            Ok(l) => l.config,
            Err(e) => return err(e),
        };
        if !self.queues.repos.contains_key(&repo) {
            let lock = match git::lock_queue(&common) {
                Ok(l) => l,
                Err(e) => return err(e.to_string()),
            };
            self.queues.repos.insert(
                repo.clone(),
                RepoQueue {
                    queue: Queue::new(policy(&loaded)),
                    common,
                    git_env: Vec::new(),
                    gate: None,
                    to_sync: BTreeSet::new(),
                    _lock: lock,
                },
            );
        }
        let Some(rq) = self.queues.repos.get_mut(&repo) else { return err("no queue") };
        rq.queue.set_policy(policy(&loaded));
        rq.git_env = git_env;
        // All or none: check every name first.
        for name in &names {
            if let Some(e) = rq.queue.entry(name)
                && !e.state.settled()
            {
                return err(format!(
                    "agent '{name}' is already in the landing queue ({})",
                    e.state.name()
                ));
            }
        }
        let mut actions = Vec::new();
        for name in &names {
            let key = (repo.clone(), name.clone());
            let working = self.working(&key).unwrap_or(false);
            let base = self.agents.get(&key).map(|a| a.rec.base.clone()).unwrap_or_default();
            let Some(rq) = self.queues.repos.get_mut(&repo) else { break };
            match rq.queue.add(name, &base, mode, keep, working) {
                Ok(a) => actions.extend(a),
                Err(e) => return err(e.to_string()),
            }
        }
        self.queue_run(&repo, actions);
        Outcome::Reply(Reply::Ok)
    }

    /// `corral land --status`.
    pub(super) fn queue_status(&self, repo: &Path) -> Reply {
        let Some(rq) = self.queues.repos.get(repo) else { return Reply::Landing(Vec::new()) };
        let q = &rq.queue;
        Reply::Landing(
            q.entries
                .iter()
                .map(|e| LandingEntry {
                    name: e.name.clone(),
                    position: q.position(&e.name).and_then(|p| u32::try_from(p).ok()),
                    state: e.state.name().into(),
                    reason: e.reason.as_ref().map(|r| r.summary()),
                    failure: e.reason.as_ref().map(|r| failure_kind(r).into()),
                    told: e.message.clone(),
                    gate_log: Some(gate_log(repo, &e.name)).filter(|p| p.exists()),
                    landed_at: e.landed_at.clone(),
                    retries: e.retries,
                })
                .collect(),
        )
    }

    /// The agent's place in the queue, for `ls`.
    pub(super) fn queue_landing(&self, repo: &Path, name: &str) -> Option<Landing> {
        let q = &self.queues.repos.get(repo)?.queue;
        let e = q.entry(name)?;
        Some(Landing {
            position: q.position(name).and_then(|p| u32::try_from(p).ok()),
            state: e.state.name().into(),
            reason: e.reason.as_ref().map(|r| r.summary()),
            gate_log: Some(gate_log(repo, name)).filter(|p| p.exists()),
        })
    }

    /// `corral land --cancel NAME`.
    pub(super) fn queue_cancel(&mut self, target: &Target) -> Outcome {
        let Some(rq) = self.queues.repos.get_mut(&target.repo) else {
            return err(format!("agent '{}' is not in the landing queue", target.name));
        };
        match rq.queue.cancel(&target.name) {
            Ok(actions) => {
                self.queue_run(&target.repo.clone(), actions);
                Outcome::Reply(Reply::Ok)
            }
            Err(e) => err(e.to_string()),
        }
    }

    /// After every session message: tell each queue which of its agents are working and which
    /// are gone, and sync the idle agents waiting for it.
    pub(super) fn queue_track(&mut self) {
        let repos: Vec<PathBuf> = self.queues.repos.keys().cloned().collect();
        for repo in repos {
            let mut events = Vec::new();
            let mut syncs = Vec::new();
            if let Some(rq) = self.queues.repos.get(&repo) {
                for e in &rq.queue.entries {
                    let key = (repo.clone(), e.name.clone());
                    match self.working(&key) {
                        None => events.push(Event::Gone { name: e.name.clone() }),
                        Some(w) if w != e.working => {
                            events.push(Event::Working { name: e.name.clone(), working: w })
                        }
                        Some(_) => {}
                    }
                    if e.told == Told::Resolving
                        && !e.working
                        && let Some(a) = self.agents.get(&key)
                        && !merge_in_progress(&a.rec.worktree)
                    {
                        events.push(Event::Resolved { name: e.name.clone() });
                    }
                }
                for name in &rq.to_sync {
                    let key = (repo.clone(), name.clone());
                    match self.agents.get(&key) {
                        None => syncs.push((name.clone(), false)),
                        Some(a) => {
                            let info = self.agent_info(&key, a);
                            if info.status == "idle" && a.phase == Phase::Ready {
                                syncs.push((name.clone(), true));
                            }
                        }
                    }
                }
            }
            for (name, now) in syncs {
                if let Some(rq) = self.queues.repos.get_mut(&repo) {
                    rq.to_sync.remove(&name);
                }
                if now {
                    self.auto_sync_one(&repo, &name);
                }
            }
            for ev in events {
                let Some(rq) = self.queues.repos.get_mut(&repo) else { break };
                let actions = rq.queue.handle(ev);
                self.queue_run(&repo, actions);
            }
        }
    }

    fn queue_event(&mut self, repo: &Path, event: Event) {
        let Some(rq) = self.queues.repos.get_mut(repo) else { return };
        let actions = rq.queue.handle(event);
        self.queue_run(repo, actions);
    }

    fn queue_run(&mut self, repo: &Path, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Save => self.queue_save(repo),
                Action::Sync { name, mode } => self.queue_sync(repo, name, mode),
                Action::Gate { name, tip } => self.queue_gate(repo, name, tip),
                Action::Land { name, tip, mode } => self.queue_land_step(repo, name, tip, mode),
                Action::Abort { name } => {
                    if let Some(kill) = self.queues.repos.get_mut(repo).and_then(|r| r.gate.take())
                    {
                        info!("cancelled agent {name}: stopping its gate");
                        let _ = kill.send(());
                    }
                }
                Action::Remove { name } => self.queue_remove(repo, name),
                Action::KillOrphan { name, pid } => {
                    let worktree = self.agents.get(&(repo.to_path_buf(), name.clone()));
                    if let Some(a) = worktree {
                        kill_orphan_gate(pid, &a.rec.worktree, &name);
                    }
                }
                Action::Tell { name, text } => {
                    let target = Target { repo: repo.to_path_buf(), name: name.clone() };
                    if let Outcome::Reply(Reply::Error(e)) = self.enqueue(&target, text) {
                        warn!("cannot tell agent {name} why it was blocked: {e}");
                    }
                }
                Action::AutoSync { landed } => self.queue_auto_sync(repo, &landed),
            }
        }
    }

    fn queue_save(&self, repo: &Path) {
        let Some(rq) = self.queues.repos.get(repo) else { return };
        if let Err(e) = git::save_queue(&rq.common, &rq.queue) {
            warn!("cannot save the landing queue of {}: {e}", repo.display());
        }
    }

    fn queue_failed(&mut self, repo: &Path, name: String, reason: Reason) {
        info!("landing queue: agent {name} is blocked: {}", reason.summary());
        self.queue_event(repo, Event::Failed { name, reason });
    }

    /// Take the agent for a queue step (it is busy until the step reports), with the identity of
    /// whoever queued it; `None` when it is gone or busy with something else (the queue is told).
    fn queue_claim(
        &mut self,
        repo: &Path,
        name: &str,
        busy: &str,
    ) -> Option<(super::AgentRecord, Vec<(String, String)>)> {
        let key = (repo.to_path_buf(), name.to_string());
        let Some(a) = self.agents.get_mut(&key) else {
            self.queue_event(repo, Event::Gone { name: name.to_string() });
            return None;
        };
        if a.phase != Phase::Ready {
            let why = format!("agent '{name}' is being {busy}");
            self.queue_failed(repo, name.to_string(), Reason::Error(why));
            return None;
        }
        a.phase = Phase::Busy;
        let rec = a.rec.clone();
        let git_env = self.queues.repos.get(repo).map(|r| r.git_env.clone()).unwrap_or_default();
        Some((rec, git_env))
    }

    fn queue_sync(&mut self, repo: &Path, name: String, mode: Mode) {
        let Some((rec, git_env)) = self.queue_claim(repo, &name, "stopped, removed or merged")
        else {
            return;
        };
        let key = (repo.to_path_buf(), name.clone());
        let root = repo.to_path_buf();
        off_session(
            &self.tx,
            move || {
                let loaded = load_config(&rec.repo).map_err(Reason::Error)?;
                let rebase = mode == Mode::Rebase
                    || (mode == Mode::Merge && loaded.config.merge.sync == SyncMode::Rebase);
                let spec = git::SyncSpec {
                    root: &rec.repo,
                    agent: &rec.name,
                    branch: &rec.branch,
                    worktree: &rec.worktree,
                    base: &rec.base,
                    rebase,
                    git_env: &git_env,
                };
                match git::prepare(&spec, rec.prompt.as_deref()) {
                    Err(LandError::Conflict { paths, .. }) => Err(Reason::Conflict {
                        paths: git::conflict_subjects(&rec.repo, &rec.branch, &rec.base, &paths),
                    }),
                    Err(e) => Err(Reason::Error(e.to_string())),
                    Ok(tip) => Ok(tip),
                }
            },
            move |s, result| {
                if let Some(a) = s.agents.get_mut(&key) {
                    a.phase = Phase::Ready;
                }
                s.land_refresh(&root);
                match result {
                    Ok(tip) => s.queue_event(&root, Event::Synced { name, tip }),
                    Err(reason) => s.queue_failed(&root, name, reason),
                }
            },
        );
    }

    fn queue_gate(&mut self, repo: &Path, name: String, tip: String) {
        let key = (repo.to_path_buf(), name.clone());
        let Some(a) = self.agents.get(&key) else {
            self.queue_event(repo, Event::Gone { name });
            return;
        };
        let rec = a.rec.clone();
        let loaded = match load_config(repo) {
            Ok(l) => l,
            Err(e) => return self.queue_failed(repo, name, Reason::Error(e)),
        };
        let gate = loaded.config.merge.gate.clone();
        if gate.is_empty() {
            self.queue_event(repo, Event::Gated { name, tip });
            return;
        }
        if let Some(rf) = &loaded.repo_file
            && rf.command_keys.iter().any(|k| k == "merge.gate")
            && !crate::trust::is_trusted(&rf.path, &rf.content)
        {
            let why = format!(
                "{} defines the gate `{}`, which you have not approved; review the file, then run `corral trust`",
                rf.path.display(),
                gate.join(" ")
            );
            return self.queue_failed(repo, name, Reason::Error(why));
        }
        let profile = loaded.config.agents.get(&rec.profile).cloned().unwrap_or_default();
        let server_env: Vec<(String, String)> = std::env::vars().collect();
        let env = super::agent_env(&server_env, &profile, &rec);
        let log = gate_log(repo, &name);
        let timeout = Duration::from_secs(loaded.config.merge.gate_timeout_secs.max(1));
        let tell_lines = loaded.config.merge.tell_lines;
        let (kill_tx, kill_rx) = oneshot::channel();
        if let Some(rq) = self.queues.repos.get_mut(repo) {
            rq.gate = Some(kill_tx);
        }
        let tx = self.tx.clone();
        let root = repo.to_path_buf();
        info!("landing queue: gating agent {name} at {tip}: {}", gate.join(" "));
        let started_tx = self.tx.clone();
        let (started_root, started_name) = (root.clone(), name.clone());
        let started = move |pid: Option<u32>| {
            let (started_root, started_name) = (started_root.clone(), started_name.clone());
            let _ = started_tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                if let Some(rq) = s.queues.repos.get_mut(&started_root) {
                    rq.queue.gate_running(&started_name, pid);
                }
                s.queue_save(&started_root);
            })));
        };
        tokio::spawn(async move {
            let result =
                run_gate(&gate, &rec.worktree, &env, &log, timeout, kill_rx, started).await;
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                if let Some(rq) = s.queues.repos.get_mut(&root) {
                    rq.gate = None;
                }
                match result {
                    Ok(GateEnd::Passed) => s.queue_event(&root, Event::Gated { name, tip }),
                    Ok(GateEnd::Failed { code, timed_out }) => {
                        let tail = tail_lines(&log, tell_lines);
                        let reason = Reason::Gate { command: gate, code, timed_out, tail };
                        s.queue_failed(&root, name, reason);
                    }
                    // Cancelled: the entry is gone; the machine ignores a late result anyway.
                    Ok(GateEnd::Killed) => {}
                    Err(e) => s.queue_failed(&root, name, Reason::Error(e)),
                }
            })));
        });
    }

    fn queue_land_step(&mut self, repo: &Path, name: String, tip: String, mode: Mode) {
        let Some((rec, git_env)) = self.queue_claim(repo, &name, "stopped or removed") else {
            return;
        };
        let key = (repo.to_path_buf(), name.clone());
        let root = repo.to_path_buf();
        off_session(
            &self.tx,
            move || {
                git::land_gated(&git::GatedSpec {
                    root: &rec.repo,
                    agent: &rec.name,
                    branch: &rec.branch,
                    base: &rec.base,
                    tip: &tip,
                    squash: mode == Mode::Squash,
                    prompt: rec.prompt.as_deref(),
                    git_env: &git_env,
                })
            },
            move |s, result| {
                if let Some(a) = s.agents.get_mut(&key) {
                    a.phase = Phase::Ready;
                }
                s.land_refresh(&root);
                match result {
                    Ok(GatedLanding::Landed(base)) => {
                        info!("landing queue: agent {name} landed; the base is {base}");
                        s.queue_event(&root, Event::Landed { name, base });
                    }
                    Ok(GatedLanding::BaseMoved) => s.queue_event(&root, Event::BaseMoved { name }),
                    Err(e) => s.queue_failed(&root, name, Reason::Error(e.to_string())),
                }
            },
        );
    }

    /// `corral resolve NAME`.
    pub(super) fn queue_resolve(
        &mut self,
        target: Target,
        git_env: Vec<(String, String)>,
        resolver: Option<(String, Vec<(String, String)>)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let key = (target.repo.clone(), target.name.clone());
        let running = self
            .queues
            .repos
            .get(&target.repo)
            .and_then(|r| r.queue.entry(&target.name))
            .is_some_and(|e| e.state.running());
        if running {
            let _ = reply.send(err(format!(
                "agent '{}' is being landed by the queue; `corral land --cancel {}` first",
                target.name, target.name
            )));
            return;
        }
        let rec = match self.ready(&target) {
            Ok(a) => a.rec.clone(),
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        if let Some(a) = self.agents.get_mut(&key) {
            a.phase = Phase::Busy;
        }
        off_session(
            &self.tx,
            move || {
                let spec = git::SyncSpec {
                    root: &rec.repo,
                    agent: &rec.name,
                    branch: &rec.branch,
                    worktree: &rec.worktree,
                    base: &rec.base,
                    rebase: false,
                    git_env: &git_env,
                };
                git::resolve_into_worktree(&spec, rec.prompt.as_deref())
                    .map(|r| (r, rec.base.clone()))
            },
            move |s, result| {
                if let Some(a) = s.agents.get_mut(&key) {
                    a.phase = Phase::Ready;
                }
                s.land_refresh(&key.0);
                let (resolving, base) = match result {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = reply.send(err(e.to_string()));
                        return;
                    }
                };
                let mut text = format!(
                    "corral merged {base} into your branch and these files now have conflict markers:\n"
                );
                for p in &resolving.paths {
                    text.push_str(&format!("- {}", p.path));
                    if !p.base.is_empty() {
                        text.push_str(&format!("; {base} changed it for: {}", p.base.join("; ")));
                    }
                    if !p.agent.is_empty() {
                        text.push_str(&format!("; you changed it for: {}", p.agent.join("; ")));
                    }
                    text.push('\n');
                }
                text.push_str("Resolve the markers keeping both intentions, then `git add` the files and `git commit` to conclude the merge. corral will then land your work again.");
                if let Some(rq) = s.queues.repos.get_mut(&key.0) {
                    rq.queue.resolving(&key.1);
                }
                s.queue_save(&key.0);
                let paths: Vec<&str> = resolving.paths.iter().map(|p| p.path.as_str()).collect();
                if let Some((profile, env)) = resolver {
                    // A new agent in the same worktree gets the conflict as its prompt; the
                    // queue takes the original agent again once the merge is concluded.
                    let worktree = s.agents.get(&key).map(|a| a.rec.worktree.clone());
                    let req = crate::proto::NewAgent {
                        repo: key.0.clone(),
                        prompt: Some(text),
                        profile: Some(profile),
                        name: Some(format!("{}-resolve", key.1)),
                        base: None,
                        count: 1,
                        size: None,
                        env,
                        worktree,
                        colors: None,
                        args: Vec::new(),
                    };
                    let (done_tx, done_rx) = oneshot::channel();
                    s.new_agents_sharing(req, Some(&key.1), done_tx);
                    let note = format!(
                        "conflict markers in {} of agent '{}' (old tips under {})",
                        paths.join(", "),
                        key.1,
                        resolving.backup
                    );
                    tokio::spawn(async move {
                        let out = match done_rx.await {
                            Ok(Outcome::Reply(Reply::Created(names))) => Outcome::Reply(
                                Reply::Note(format!("{note}; {} resolves them", names.join(", "))),
                            ),
                            Ok(Outcome::Reply(Reply::Error(e))) => {
                                err(format!("{note}, but the resolver agent did not start: {e}"))
                            }
                            _ => err(format!("{note}, but the resolver agent did not start")),
                        };
                        let _ = reply.send(out);
                    });
                    return;
                }
                let target = Target { repo: key.0.clone(), name: key.1.clone() };
                if let Outcome::Reply(Reply::Error(e)) = s.enqueue(&target, text) {
                    warn!("cannot tell agent {} what to resolve: {e}", key.1);
                }
                let _ = reply.send(Outcome::Reply(Reply::Note(format!(
                    "conflict markers in {} of agent '{}'; it was told what to resolve (old tips under {})",
                    paths.join(", "),
                    key.1,
                    resolving.backup
                ))));
            },
        );
    }

    /// The landed agent goes as after `merge`: stopped, then removed through `rm`'s path.
    fn queue_remove(&mut self, repo: &Path, name: String) {
        let key = (repo.to_path_buf(), name.clone());
        let Some(a) = self.agents.get(&key) else { return };
        let pane = a.pane.clone();
        // A resolver (`resolve --agent`) started in this worktree is forgotten first: the
        // worktree it works in is about to go.
        let resolvers: Vec<Target> = self
            .agents
            .iter()
            .filter(|((r, n), o)| {
                r == repo && *n != name && o.rec.adopted && o.rec.worktree == a.rec.worktree
            })
            .map(|((r, n), _)| Target { repo: r.clone(), name: n.clone() })
            .collect();
        let git_env = self.queues.repos.get(repo).map(|r| r.git_env.clone()).unwrap_or_default();
        let tx = self.tx.clone();
        let target = Target { repo: repo.to_path_buf(), name };
        tokio::spawn(async move {
            for r in resolvers {
                let (done_tx, done_rx) = oneshot::channel();
                let env = git_env.clone();
                let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                    s.remove(r, false, env, done_tx);
                })));
                let _ = done_rx.await;
            }
            if let Some(p) = pane.filter(|p| !p.state().exited) {
                p.kill();
                wait_exit(&p, STOP_WAIT).await;
            }
            let (done_tx, done_rx) = oneshot::channel();
            let name = target.name.clone();
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                s.remove(target, false, git_env, done_tx);
            })));
            match done_rx.await {
                Ok(Outcome::Reply(Reply::Error(e))) => {
                    warn!("landing queue: kept landed agent {name}: {e}")
                }
                Ok(_) => info!("landing queue: removed landed agent {name}"),
                Err(_) => warn!("landing queue: the removal of agent {name} did not finish"),
            }
        });
    }

    /// After a landing: the other agents on that base whose changes are predicted not to conflict
    /// are synced once they are idle (never while working).
    fn queue_auto_sync(&mut self, repo: &Path, landed: &str) {
        let loaded = load_config(repo).map(|l| l.config).unwrap_or_default();
        if loaded.merge.auto_sync == AutoSync::Off {
            return;
        }
        let Some(base) =
            self.queues.repos.get(repo).and_then(|r| r.queue.entry(landed)).map(|e| e.base.clone())
        else {
            return;
        };
        let landed_wt = self.agents.get(&(repo.to_path_buf(), landed.to_string()));
        let landed_wt = landed_wt.map(|a| a.rec.worktree.clone());
        let mut picked = Vec::new();
        for ((r, name), a) in &self.agents {
            // A resolver in the landed agent's worktree goes with it; it is not synced.
            if r != repo
                || name == landed
                || a.rec.base != base
                || Some(&a.rec.worktree) == landed_wt.as_ref()
            {
                continue;
            }
            let queued = self
                .queues
                .repos
                .get(repo)
                .and_then(|q| q.queue.entry(name))
                .is_some_and(|e| !e.state.settled());
            if queued {
                continue;
            }
            let mut info = self.agent_info(&(r.clone(), name.clone()), a);
            self.land.decorate(repo, &mut info);
            if info.conflicts.iter().any(|c| c.base || c.with == landed) {
                info!("not syncing agent {name}: the radar predicts a conflict");
                continue;
            }
            picked.push(name.clone());
        }
        if let Some(rq) = self.queues.repos.get_mut(repo) {
            rq.to_sync.extend(picked);
        }
        self.queue_track();
    }

    fn auto_sync_one(&mut self, repo: &Path, name: &str) {
        let git_env = self.queues.repos.get(repo).map(|r| r.git_env.clone()).unwrap_or_default();
        let (reply, answer) = oneshot::channel();
        let target = Target { repo: repo.to_path_buf(), name: name.to_string() };
        info!("landing queue: syncing idle agent {name} with what landed");
        self.sync_agent(target, git_env, reply);
        let name = name.to_string();
        tokio::spawn(async move {
            match answer.await {
                Ok(Outcome::Reply(Reply::Error(e))) => warn!("auto-sync of agent {name}: {e}"),
                Ok(Outcome::Reply(Reply::Conflict(p))) => {
                    warn!("auto-sync of agent {name} would conflict in {}", p.join(", "))
                }
                _ => {}
            }
        });
    }
}

/// Whether the worktree has a merge in progress (its admin dir holds MERGE_HEAD): what `corral
/// resolve` leaves until the agent commits. Read with two small file reads, as it is asked after
/// every session message for each resolving agent.
fn merge_in_progress(worktree: &Path) -> bool {
    let dot_git = worktree.join(".git");
    let admin = match std::fs::read_to_string(&dot_git) {
        Ok(text) => match text.trim().strip_prefix("gitdir: ") {
            Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
            Some(p) => worktree.join(p),
            None => return false,
        },
        Err(_) => dot_git,
    };
    admin.join("MERGE_HEAD").exists()
}

/// How a gate ended.
pub(super) enum GateEnd {
    Passed,
    Failed {
        code: Option<i32>,
        timed_out: bool,
    },
    /// Cancelled.
    Killed,
}

/// Run the gate in `dir` with `env`, its output (stdout and stderr together) in `log`.
pub(super) async fn run_gate(
    gate: &[String],
    dir: &Path,
    env: &[(String, String)],
    log: &Path,
    timeout: Duration,
    kill: oneshot::Receiver<()>,
    started: impl Fn(Option<u32>),
) -> Result<GateEnd, String> {
    let Some((program, args)) = gate.split_first() else { return Ok(GateEnd::Passed) };
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    // A fresh file: a gate orphaned by a killed server may still write to the old one.
    let _ = std::fs::remove_file(log);
    let out = std::fs::File::create(log)
        .map_err(|e| format!("cannot write the gate's output to {}: {e}", log.display()))?;
    let err_out = out.try_clone().map_err(|e| format!("cannot write the gate's output: {e}"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err_out)
        // Its own process group, so a timeout or a cancel ends everything it started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child =
        cmd.spawn().map_err(|e| format!("cannot run the gate `{}`: {e}", gate.join(" ")))?;
    started(child.id());
    crate::failpoint::hit("queue:gate");
    let pgid = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let kill_group = || {
        if let Some(p) = pgid {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
    };
    let end = tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|e| format!("waiting for the gate: {e}"))?;
            if status.success() {
                Ok(GateEnd::Passed)
            } else {
                Ok(GateEnd::Failed { code: status.code(), timed_out: false })
            }
        }
        _ = tokio::time::sleep(timeout) => {
            kill_group();
            let _ = child.wait().await;
            Ok(GateEnd::Failed { code: None, timed_out: true })
        }
        Ok(()) = kill => {
            kill_group();
            let _ = child.wait().await;
            Ok(GateEnd::Killed)
        }
    };
    started(None);
    end
}

/// End the process group `pid` that a killed server's gate left running, but only if `pid` is
/// still a group leader working in the agent's worktree (the id may have been reused since).
fn kill_orphan_gate(pid: u32, worktree: &Path, name: &str) {
    let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else { return };
    let same = std::fs::canonicalize(worktree).is_ok_and(|w| cwd.starts_with(&w));
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else { return };
    let leader = rustix::process::getpgid(Some(p)).is_ok_and(|g| g == p);
    if same && leader {
        info!("ending the gate of agent {name} (process group {pid}) a killed server left running");
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
}
