//! Landing work, the session's side: `merge` and `sync` requests, and the radar that keeps every
//! agent's diff stats and predicted conflicts current.
//!
//! A child module of `session` (it is session code, kept in its own file): it reads and changes the
//! session's agents directly and runs only on the session task, except for what it hands off.
//!
//! - Merges and syncs of one repository run one at a time, in order of arrival (a queue here, and
//!   a lock file in the repository that `git::land`/`git::sync` take, for anyone else). The git work
//!   runs on a blocking thread; the agent is `Busy` meanwhile, so it cannot be stopped or removed
//!   under the merge. Once the base contains the work, the agent is stopped and removed through
//!   the same path as `corral rm` (which refuses when the worktree has changed again since).
//! - Each repository with agents has one radar thread. It owns a file-system watcher per agent
//!   worktree (recursive, `.git` and ignored paths filtered out) and one on the repository's branch
//!   refs, waits for ~300 ms of quiet (at most 2 s) after a change, recomputes what changed (see
//!   `git::Radar`), and sends the results back as a closure. Changes arriving while it computes are
//!   picked up by the next run, so the latest state always wins and nothing runs on a timer.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{Job, Key, Outcome, Phase, Session, SessionMsg, err, off_session, wait_exit};
use crate::config::{self, SyncMode};
use crate::git::{self, AgentReport, Conflict, LandError, RadarAgent};
use crate::paths;
use crate::proto::{AgentInfo, ConflictInfo, DiffStat, MergeMode, Reply, Target};

/// Quiet time after a file change before the radar runs.
const QUIET: Duration = Duration::from_millis(300);
/// Longest a radar run waits while changes keep coming.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// How long a merged agent's process gets to end before its worktree is removed anyway.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A merge as the client asked for it.
pub(super) struct MergeAsk {
    pub mode: MergeMode,
    /// Keep the agent, its worktree and branch afterwards.
    pub keep: bool,
    pub message: Option<String>,
    /// The client's git identity variables: commits made for the merge are by that user.
    pub git_env: Vec<(String, String)>,
}

#[derive(Default)]
pub(super) struct Land {
    repos: HashMap<PathBuf, RepoLand>,
}

impl Land {
    /// A repository where a merge or sync is running now.
    pub(super) fn busy_repo(&self) -> Option<&Path> {
        self.repos.iter().find(|(_, r)| r.busy).map(|(p, _)| p.as_path())
    }
}

#[derive(Default)]
struct RepoLand {
    radar: Option<RadarHandle>,
    /// The agents the radar was last told about.
    sent: Vec<RadarAgent>,
    reports: BTreeMap<String, AgentReport>,
    /// A merge or sync of this repository is running; the others wait in `queue`.
    busy: bool,
    queue: VecDeque<Job>,
}

enum RadarMsg {
    Agents(Vec<RadarAgent>),
    /// Paths changed in an agent's worktree (none: the watcher lost track; read it all).
    Changed(String, Vec<PathBuf>),
    /// A branch moved (a commit, a merge, a sync).
    Refs,
    Stop,
}

/// The radar thread's address; dropping it stops the thread.
struct RadarHandle {
    tx: std_mpsc::Sender<RadarMsg>,
}

impl Drop for RadarHandle {
    fn drop(&mut self) {
        // The thread's watchers hold senders too, so closing ours alone would not end it.
        let _ = self.tx.send(RadarMsg::Stop);
    }
}

/// Why a merge or sync did not happen.
enum Failed {
    Conflict(Vec<String>),
    Error(String),
}

impl From<LandError> for Failed {
    fn from(e: LandError) -> Failed {
        match e {
            LandError::Conflict { paths, .. } => Failed::Conflict(paths),
            e => Failed::Error(e.to_string()),
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn conflict_info(c: &Conflict) -> ConflictInfo {
    ConflictInfo { with: c.with.clone(), base: c.base, paths: c.paths.clone() }
}

impl Land {
    /// Add what the radar knows about the agent to its `ls` entry.
    pub(super) fn decorate(&self, repo: &Path, info: &mut AgentInfo) {
        let Some(rep) = self.repos.get(repo).and_then(|r| r.reports.get(&info.name)) else {
            return;
        };
        info.diff = rep.diff.map(|d| DiffStat {
            files: count(d.files),
            insertions: count(d.insertions),
            deletions: count(d.deletions),
            ahead: count(d.ahead),
            behind: count(d.behind),
        });
        info.conflicts = rep.conflicts.iter().map(conflict_info).collect();
    }
}

impl Session {
    /// Tell each repository's radar which agents it has, starting or stopping radars as
    /// repositories gain or lose agents. Called after every session message; cheap when nothing
    /// changed.
    pub(super) fn land_track_agents(&mut self) {
        let mut now: BTreeMap<&PathBuf, (&Path, Vec<RadarAgent>)> = BTreeMap::new();
        for ((repo, _), a) in &self.agents {
            if a.phase == Phase::Starting {
                continue;
            }
            now.entry(repo).or_insert_with(|| (&a.common_dir, Vec::new())).1.push(RadarAgent {
                name: a.rec.name.clone(),
                worktree: a.rec.worktree.clone(),
                base: a.rec.base.clone(),
            });
        }
        let repos: BTreeSet<PathBuf> =
            self.land.repos.keys().cloned().chain(now.keys().map(|r| (*r).clone())).collect();
        for repo in repos {
            let (common, agents) = match now.get(&repo) {
                Some((c, list)) => (Some(c.to_path_buf()), list.clone()),
                None => (None, Vec::new()),
            };
            let r = self.land.repos.entry(repo.clone()).or_default();
            if r.sent == agents {
                continue;
            }
            r.sent = agents.clone();
            let Some(common) = common else {
                r.radar = None;
                r.reports.clear();
                continue;
            };
            // Until the radar runs again, forget what it said about agents that are gone.
            let known = |name: &str| agents.iter().any(|a| a.name == name);
            r.reports.retain(|name, _| known(name));
            for rep in r.reports.values_mut() {
                rep.conflicts.retain(|c| c.base || known(&c.with));
            }
            if r.radar.is_none() {
                r.radar = spawn_radar(repo.clone(), common, self.tx.clone());
            }
            if let Some(h) = &r.radar {
                let _ = h.tx.send(RadarMsg::Agents(agents));
            }
        }
    }

    fn land_reports(&mut self, repo: &Path, reports: BTreeMap<String, AgentReport>) {
        let Some(r) = self.land.repos.get_mut(repo) else { return };
        if r.radar.is_none() {
            return;
        }
        for (name, rep) in &reports {
            if let Some(e) = &rep.error {
                debug!("radar: agent {name} of {}: {e}", repo.display());
            }
        }
        r.reports = reports;
    }

    /// Run `job` now if no merge or sync of `repo` is running, else after those queued before it.
    fn land_enqueue(&mut self, repo: &Path, job: Job) {
        let r = self.land.repos.entry(repo.to_path_buf()).or_default();
        if r.busy {
            r.queue.push_back(job);
            return;
        }
        r.busy = true;
        job(self);
    }

    /// The running merge or sync of `repo` finished: start the next one.
    fn land_done(&mut self, repo: &Path) {
        let next = self.land.repos.get_mut(repo).and_then(|r| r.queue.pop_front());
        match next {
            Some(job) => job(self),
            None => {
                if let Some(r) = self.land.repos.get_mut(repo) {
                    r.busy = false;
                }
            }
        }
    }

    /// Refs moved: the repository's radar recomputes soon.
    pub(super) fn land_refresh(&self, repo: &Path) {
        if let Some(h) = self.land.repos.get(repo).and_then(|r| r.radar.as_ref()) {
            let _ = h.tx.send(RadarMsg::Refs);
        }
    }

    /// The agent, if it exists and is not starting, stopping or being merged.
    /// Take a ready agent for a merge or sync (marking it busy), or answer why not and free the
    /// repository's landing queue.
    fn claim(
        &mut self,
        target: &Target,
        reply: oneshot::Sender<Outcome>,
    ) -> Option<(Key, super::AgentRecord, oneshot::Sender<Outcome>)> {
        let key: Key = (target.repo.clone(), target.name.clone());
        let rec = match self.ready(target) {
            Ok(a) => a.rec.clone(),
            Err(e) => {
                let _ = reply.send(err(e));
                self.land_done(&key.0);
                return None;
            }
        };
        if let Some(a) = self.agents.get_mut(&key) {
            a.phase = Phase::Busy;
        }
        Some((key, rec, reply))
    }

    pub(super) fn merge(
        &mut self,
        target: Target,
        ask: MergeAsk,
        yes: bool,
        reply: oneshot::Sender<Outcome>,
    ) {
        let key = (target.repo.clone(), target.name.clone());
        let working = match self.agent(&target) {
            // The badge's status (hooks, screen rules, activity), as `ls` shows it.
            Ok(a) => self.agent_info(&key, a).status == "working",
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        if working && !yes {
            let _ = reply.send(err(format!(
                "agent '{}' is working (its screen is still changing); pass --yes to merge anyway",
                target.name
            )));
            return;
        }
        let repo = target.repo.clone();
        self.land_enqueue(&repo, Box::new(move |s: &mut Session| s.merge_now(target, ask, reply)));
    }

    fn merge_now(&mut self, target: Target, ask: MergeAsk, reply: oneshot::Sender<Outcome>) {
        let Some((key, rec, reply)) = self.claim(&target, reply) else { return };
        let work_rec = rec.clone();
        let MergeAsk { mode, keep, message, git_env } = ask;
        let work_env = git_env.clone();
        off_session(
            &self.tx,
            move || {
                let rec = work_rec;
                git::land(&git::LandSpec {
                    root: &rec.repo,
                    agent: &rec.name,
                    branch: &rec.branch,
                    worktree: &rec.worktree,
                    base: &rec.base,
                    prompt: rec.prompt.as_deref(),
                    mode: match mode {
                        MergeMode::Merge => git::MergeMode::Merge,
                        MergeMode::Squash => git::MergeMode::Squash,
                        MergeMode::Rebase => git::MergeMode::Rebase,
                        MergeMode::FfOnly => git::MergeMode::FfOnly,
                    },
                    message: message.as_deref(),
                    git_env: &work_env,
                })
                .map_err(Failed::from)
            },
            move |s, result| s.merged(key, rec, keep, git_env, result, reply),
        );
    }

    fn merged(
        &mut self,
        key: Key,
        rec: super::AgentRecord,
        keep: bool,
        git_env: Vec<(String, String)>,
        result: Result<git::Landed, Failed>,
        reply: oneshot::Sender<Outcome>,
    ) {
        if let Some(a) = self.agents.get_mut(&key) {
            a.phase = Phase::Ready;
        }
        self.land_done(&key.0);
        self.land_refresh(&key.0);
        let landed = match result {
            Ok(l) => l,
            Err(Failed::Conflict(paths)) => {
                // Shown on the agent until the radar next runs.
                if let Some(r) = self.land.repos.get_mut(&key.0) {
                    let rep = r.reports.entry(key.1.clone()).or_default();
                    rep.conflicts.retain(|c| !c.base);
                    rep.conflicts.push(Conflict {
                        with: rec.base.clone(),
                        base: true,
                        paths: paths.clone(),
                    });
                }
                let _ = reply.send(Outcome::Reply(Reply::Conflict(paths)));
                return;
            }
            Err(Failed::Error(e)) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        let mut lines = vec![match landed.how {
            Some(how) => format!(
                "merged {} into {} ({}): {}",
                rec.branch,
                rec.base,
                how.describe(),
                landed.base_after.get(..12).unwrap_or(&landed.base_after)
            ),
            None => format!("{} already has all of {}", rec.base, rec.branch),
        }];
        if landed.snapshot.is_some() {
            lines.push(format!("committed the agent's uncommitted work on {} first", rec.branch));
        }
        if let Some(b) = &landed.backup {
            lines.push(format!("old tips kept under {b}/{{agent,base}}"));
        }
        lines.extend(landed.notes);
        info!("agent {}: {}", rec.name, lines.join("; "));
        if keep {
            let _ = reply.send(Outcome::Reply(Reply::Note(lines.join("\n"))));
            return;
        }
        // The base contains the work: stop the agent, then remove it the way `rm` does.
        let pane = self.agents.get(&key).and_then(|a| a.pane.clone());
        let tx = self.tx.clone();
        let target = Target { repo: key.0.clone(), name: key.1.clone() };
        tokio::spawn(async move {
            if let Some(p) = pane.filter(|p| !p.state().exited) {
                p.kill();
                wait_exit(&p, STOP_WAIT).await;
            }
            let (done_tx, done_rx) = oneshot::channel();
            let name = target.name.clone();
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                s.remove(target, false, git_env, done_tx);
            })));
            lines.push(match done_rx.await {
                Ok(Outcome::Reply(Reply::Ok)) => {
                    format!("removed agent '{name}', its worktree and its branch")
                }
                Ok(Outcome::Reply(Reply::Note(n))) => n,
                Ok(Outcome::Reply(Reply::Error(e))) => format!("kept agent '{name}': {e}"),
                _ => format!("kept agent '{name}': its removal did not finish"),
            });
            let _ = reply.send(Outcome::Reply(Reply::Note(lines.join("\n"))));
        });
    }

    pub(super) fn sync_agent(
        &mut self,
        target: Target,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        if let Err(e) = self.agent(&target) {
            let _ = reply.send(err(e));
            return;
        }
        let repo = target.repo.clone();
        self.land_enqueue(
            &repo,
            Box::new(move |s: &mut Session| s.sync_now(target, git_env, reply)),
        );
    }

    fn sync_now(
        &mut self,
        target: Target,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let Some((key, rec, reply)) = self.claim(&target, reply) else { return };
        off_session(
            &self.tx,
            move || {
                let loaded = config::load(&paths::user_config_file(), Some(&rec.repo))
                    .map_err(|e| Failed::Error(e.to_string()))?;
                let synced = git::sync(&git::SyncSpec {
                    root: &rec.repo,
                    agent: &rec.name,
                    branch: &rec.branch,
                    worktree: &rec.worktree,
                    base: &rec.base,
                    rebase: loaded.config.merge.sync == SyncMode::Rebase,
                    git_env: &git_env,
                })?;
                Ok((rec, synced))
            },
            move |s: &mut Session, result: Result<(super::AgentRecord, git::Synced), Failed>| {
                if let Some(a) = s.agents.get_mut(&key) {
                    a.phase = Phase::Ready;
                }
                s.land_done(&key.0);
                s.land_refresh(&key.0);
                let outcome = match result {
                    Ok((rec, synced)) => {
                        let mut lines = vec![match synced.how {
                            Some(how) => format!(
                                "brought {} into {} ({}): {}",
                                rec.base,
                                rec.branch,
                                how.describe(),
                                synced.after.get(..12).unwrap_or(&synced.after)
                            ),
                            None => {
                                format!("{} already has everything on {}", rec.branch, rec.base)
                            }
                        }];
                        if let Some(b) = &synced.backup {
                            lines.push(format!("old tips kept under {b}/{{agent,base}}"));
                        }
                        lines.extend(synced.notes);
                        Outcome::Reply(Reply::Note(lines.join("\n")))
                    }
                    Err(Failed::Conflict(paths)) => Outcome::Reply(Reply::Conflict(paths)),
                    Err(Failed::Error(e)) => err(e),
                };
                let _ = reply.send(outcome);
            },
        );
    }
}

fn spawn_radar(
    root: PathBuf,
    common: PathBuf,
    session: mpsc::UnboundedSender<SessionMsg>,
) -> Option<RadarHandle> {
    let (tx, rx) = std_mpsc::channel();
    let me = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("corral-radar".into())
        .spawn(move || radar_thread(root, common, rx, me, session));
    match spawned {
        Ok(_) => Some(RadarHandle { tx }),
        Err(e) => {
            warn!("cannot start the radar thread: {e}");
            None
        }
    }
}

/// Watch an agent's worktree; events inside `.git` (a nested repository's) and reads are dropped.
fn watch_worktree(
    name: String,
    dir: &Path,
    tx: std_mpsc::Sender<RadarMsg>,
) -> notify::Result<RecommendedWatcher> {
    let root = dir.to_path_buf();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let ev = match res {
            Ok(ev) => ev,
            // Lost events (a queue overflow): read the worktree again.
            Err(_) => notify::Event::new(EventKind::Any),
        };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        let lost = ev.paths.is_empty();
        let paths: Vec<PathBuf> = ev
            .paths
            .into_iter()
            .filter(|p| {
                let rel = p.strip_prefix(&root).unwrap_or(p);
                !rel.components().any(|c| c.as_os_str() == ".git")
            })
            .collect();
        if paths.is_empty() && !lost {
            return;
        }
        let _ = tx.send(RadarMsg::Changed(name.clone(), paths));
    })?;
    w.watch(dir, RecursiveMode::Recursive)?;
    Ok(w)
}

/// Watch the repository's branches: commits, merges and syncs move them.
fn watch_refs(common: &Path, tx: std_mpsc::Sender<RadarMsg>) -> notify::Result<RecommendedWatcher> {
    let heads = common.join("refs").join("heads");
    let packed = common.join("packed-refs");
    let heads_in = heads.clone();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        if ev.paths.iter().any(|p| p.starts_with(&heads_in) || *p == packed) {
            let _ = tx.send(RadarMsg::Refs);
        }
    })?;
    w.watch(&heads, RecursiveMode::Recursive)?;
    w.watch(common, RecursiveMode::NonRecursive)?;
    Ok(w)
}

fn radar_thread(
    root: PathBuf,
    common: PathBuf,
    rx: std_mpsc::Receiver<RadarMsg>,
    me: std_mpsc::Sender<RadarMsg>,
    session: mpsc::UnboundedSender<SessionMsg>,
) {
    let mut radar = match git::Radar::open(&root) {
        Ok(r) => r,
        Err(e) => {
            warn!("radar for {}: {e}", root.display());
            return;
        }
    };
    let _refs = watch_refs(&common, me.clone())
        .map_err(|e| warn!("radar: cannot watch the branches of {}: {e}", root.display()))
        .ok();
    let mut agents: Vec<RadarAgent> = Vec::new();
    let mut watchers: HashMap<String, (PathBuf, Option<RecommendedWatcher>)> = HashMap::new();
    // Returns whether anything that matters changed; `None` to stop.
    let mut apply =
        |msg: RadarMsg, radar: &mut git::Radar, agents: &mut Vec<RadarAgent>| -> Option<bool> {
            match msg {
                RadarMsg::Stop => None,
                RadarMsg::Refs => Some(true),
                RadarMsg::Agents(list) => {
                    watchers.retain(|name, (dir, _)| {
                        list.iter().any(|a| &a.name == name && &a.worktree == dir)
                    });
                    for a in &list {
                        if watchers.contains_key(&a.name) {
                            continue;
                        }
                        let w = watch_worktree(a.name.clone(), &a.worktree, me.clone())
                            .map_err(|e| {
                                warn!("radar: cannot watch {}: {e}", a.worktree.display());
                            })
                            .ok();
                        watchers.insert(a.name.clone(), (a.worktree.clone(), w));
                    }
                    *agents = list;
                    Some(true)
                }
                RadarMsg::Changed(name, paths) => {
                    let matters = paths.is_empty() || paths.iter().any(|p| radar.matters(&name, p));
                    if matters {
                        radar.touch(&name);
                    }
                    Some(matters)
                }
            }
        };
    loop {
        let Ok(first) = rx.recv() else { return };
        let Some(mut dirty) = apply(first, &mut radar, &mut agents) else { return };
        let start = Instant::now();
        loop {
            let wait = QUIET.min(MAX_DELAY.saturating_sub(start.elapsed()));
            if wait.is_zero() {
                break;
            }
            match rx.recv_timeout(wait) {
                Ok(msg) => match apply(msg, &mut radar, &mut agents) {
                    Some(d) => dirty |= d,
                    None => return,
                },
                Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        if !dirty || agents.is_empty() {
            continue;
        }
        let reports = radar.run(&agents);
        let repo = root.clone();
        let sent = session.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
            s.land_reports(&repo, reports);
        })));
        if sent.is_err() {
            return;
        }
    }
}
