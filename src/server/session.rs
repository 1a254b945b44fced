//! The session: the one owner of every agent the server runs, addressed by [`SessionMsg`].
//!
//! Requests arrive from connections; work that blocks (git, file copies, config files, waiting for a
//! process to end) runs elsewhere and comes back as a [`SessionMsg::Run`] closure, so the session
//! never waits on the disk or a child and a slow `new` never delays `ls`. Connections get back either
//! a reply or a pane handle to stream from (attach, follow), and do that streaming themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

// Landing work (merge, sync, the radar) is session code kept in its own file; as a child module it
// uses the session's state without widening its visibility.
mod compare;
mod fork;
mod gc;
#[path = "land.rs"]
mod land;
mod queue;
mod review;
mod status;
mod upgrade;

use super::names;
use super::pane::{PaneHandle, spawn_pane};
use super::persist::{self, AgentRecord};
use super::pty::{PtyHost, SpawnSpec};
use crate::config::{self, Config, Profile, PromptMode};
use crate::git;
use crate::paths;
use crate::proto::{AgentInfo, NewAgent, Reply, Request, Target};
use crate::term::{self, Size, TermColors};

/// Quiet time after output before an agent without a badge counts as idle.
const IDLE_AFTER: Duration = Duration::from_millis(1500);

type Key = (PathBuf, String);
/// Agents created by one `new` (with the id of its intent record, cleared once they are saved), or
/// the records to forget and the error.
type Creation = Result<(Vec<(AgentRecord, PaneHandle)>, String), (Vec<AgentRecord>, String)>;
type Job = Box<dyn FnOnce(&mut Session) + Send>;

pub enum SessionMsg {
    Request(Box<Request>, oneshot::Sender<Outcome>),
    /// Finish work that ran off the session.
    Run(Job),
}

/// What a connection does with a request's answer.
pub enum Outcome {
    Reply(Reply),
    /// Stream the pane, and notices of agents that need attention.
    Attach(PaneHandle, tokio::sync::broadcast::Receiver<crate::status::Notice>),
    /// Follow the pane's lines: how many to start with, in colour, or from which line number.
    Follow(PaneHandle, u32, bool, Option<u64>),
    /// Type `text` (then Enter, as its own write, when `enter`).
    Send(PaneHandle, String, bool),
    /// Reply Ok, then stop the server.
    Shutdown,
}

fn err(msg: impl Into<String>) -> Outcome {
    Outcome::Reply(Reply::Error(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Worktree and process being created.
    Starting,
    Ready,
    /// Being stopped, restarted or removed: refuse other changes meanwhile.
    Busy,
}

struct Agent {
    rec: AgentRecord,
    common_dir: PathBuf,
    phase: Phase,
    pane: Option<PaneHandle>,
    /// Bumped for each new process, so a late exit of an old one is ignored.
    run: u64,
    recovered_at: Option<u64>,
}

pub struct Session {
    agents: BTreeMap<Key, Agent>,
    repos: BTreeSet<PathBuf>,
    host: Arc<dyn PtyHost>,
    tx: mpsc::UnboundedSender<SessionMsg>,
    runs: u64,
    land: land::Land,
    queues: queue::Queues,
    status: status::StatusBook,
    /// The default colours of the terminal of the last client that said (at attach or new);
    /// agents' colour queries are answered with them. None: no client has said yet.
    colors: Option<TermColors>,
    /// Repositories where `gc` is running, with the `new`s waiting for it to finish.
    gc_running: BTreeMap<PathBuf, Vec<Job>>,
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn unix_at(at: Instant) -> u64 {
    unix_now().saturating_sub(at.elapsed().as_secs())
}

/// Start the session actor; returns its address.
pub fn start(
    host: Arc<dyn PtyHost>,
    handed: Option<crate::server::handover::State>,
) -> mpsc::UnboundedSender<SessionMsg> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut session = Session {
        agents: BTreeMap::new(),
        repos: BTreeSet::new(),
        host,
        tx: tx.clone(),
        runs: 0,
        land: land::Land::default(),
        queues: Default::default(),
        status: Default::default(),
        colors: None,
        gc_running: BTreeMap::new(),
    };
    session.recover();
    if let Some(state) = handed {
        session.adopt(state);
    }
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                SessionMsg::Request(req, reply) => session.request(*req, reply),
                SessionMsg::Run(job) => job(&mut session),
            }
            session.land_track_agents();
            session.queue_track();
        }
    });
    tx
}

/// Run `work` on a blocking thread, then `then` on the session with its result.
fn off_session<T: Send + 'static>(
    tx: &mpsc::UnboundedSender<SessionMsg>,
    work: impl FnOnce() -> T + Send + 'static,
    then: impl FnOnce(&mut Session, T) + Send + 'static,
) {
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let result = work();
        let _ = tx.send(SessionMsg::Run(Box::new(move |s| then(s, result))));
    });
}

/// Everything `new` needs that comes from files and git, computed off the session.
struct Prepared {
    info: git::RepoInfo,
    config: Config,
    profile_name: String,
    profile: Profile,
    base: String,
    base_commit: String,
    branches: BTreeSet<String>,
    worktree_dir: PathBuf,
    /// `new --worktree`: the existing worktree the agent starts in.
    adopt: Option<git::Adoptable>,
    /// The agent whose worktree `adopt` may be (`resolve --agent`).
    sharing: Option<String>,
    /// `fork`: the commit the branch starts at (else `base_commit`), where the untracked files
    /// to copy are (else the main worktree), the name to start from when none is given, and
    /// the profile already set to continue the forked agent's conversation.
    fork: Option<fork::ForkPlan>,
}

fn env_lookup<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Where corral makes worktrees for `root`'s agents.
fn worktree_dir(config: &Config, root: &Path) -> PathBuf {
    if config.worktree.dir.is_empty() {
        let repo_name = root.file_name().and_then(|n| n.to_str()).unwrap_or("repo");
        paths::data_dir()
            .join("worktrees")
            .join(format!("{repo_name}-{}", paths::short_hash(&root.to_string_lossy())))
    } else {
        let d = PathBuf::from(&config.worktree.dir);
        if d.is_absolute() { d } else { root.join(d) }
    }
}

/// `owned`: every agent's name and worktree, so an adopted worktree is never shared.
fn prepare(req: &NewAgent, owned: &[(String, PathBuf)]) -> Result<Prepared, String> {
    let info = git::discover(&req.repo).map_err(|e| e.to_string())?;
    let loaded =
        config::load(&paths::user_config_file(), Some(&info.root)).map_err(|e| e.to_string())?;
    if let Some(rf) = &loaded.repo_file
        && !rf.command_keys.is_empty()
        && !crate::trust::is_trusted(&rf.path, &rf.content)
    {
        return Err(format!(
            "{} defines commands ({}) that you have not approved; review the file, then run `corral trust`",
            rf.path.display(),
            rf.command_keys.join(", ")
        ));
    }
    let config = loaded.config;
    let path_var = env_lookup(&req.env, "PATH");
    let (profile_name, profile) = config.profile(req.profile.as_deref(), path_var)?;
    let program = expand_one(&profile.command[0], &Placeholders::shell_only(&req.env));
    if config::find_in_path(&program, path_var).is_none() {
        return Err(format!(
            "agent profile '{profile_name}': command '{program}' not found on PATH; install it or choose another with --agent"
        ));
    }
    let (base, base_commit) =
        git::resolve_base(&info.root, req.base.as_deref()).map_err(|e| e.to_string())?;
    let branches = git::local_branches(&info.root).map_err(|e| e.to_string())?;
    let worktree_dir = worktree_dir(&config, &info.root);
    let adopt = match &req.worktree {
        None => None,
        Some(path) => {
            let a = git::adoptable_worktree(&info.root, path).map_err(|e| e.to_string())?;
            if let Some((name, _)) = owned.iter().find(|(_, w)| {
                w == &a.path || std::fs::canonicalize(w).ok() == Some(a.path.clone())
            }) {
                return Err(format!(
                    "cannot adopt {}: it is the worktree of agent '{name}'",
                    a.path.display()
                ));
            }
            if a.branch == base {
                return Err(format!(
                    "cannot adopt {}: it is on {base}, the base its work would be merged into; put it on a branch of its own (`git switch -c NAME`)",
                    a.path.display()
                ));
            }
            Some(a)
        }
    };
    Ok(Prepared {
        info,
        config,
        profile_name,
        profile,
        base,
        base_commit,
        branches,
        worktree_dir,
        adopt,
        sharing: None,
        fork: None,
    })
}

struct Placeholders<'a> {
    pairs: Vec<(&'static str, String)>,
    _env: &'a [(String, String)],
}

impl<'a> Placeholders<'a> {
    fn shell_only(env: &'a [(String, String)]) -> Placeholders<'a> {
        let shell = env_lookup(env, "SHELL").filter(|s| !s.is_empty()).unwrap_or("/bin/sh");
        Placeholders { pairs: vec![("{shell}", shell.to_string())], _env: env }
    }

    fn for_agent(env: &'a [(String, String)], rec: &AgentRecord) -> Placeholders<'a> {
        let mut p = Placeholders::shell_only(env);
        p.pairs.push(("{session}", rec.session.clone()));
        p.pairs.push(("{name}", rec.name.clone()));
        p.pairs.push(("{branch}", rec.branch.clone()));
        p.pairs.push(("{worktree}", rec.worktree.to_string_lossy().into_owned()));
        p.pairs.push(("{port}", rec.port.map(|p| p.to_string()).unwrap_or_default()));
        p
    }
}

fn expand_one(s: &str, p: &Placeholders) -> String {
    let mut out = s.to_string();
    for (k, v) in &p.pairs {
        if out.contains(k) {
            out = out.replace(k, v);
        }
    }
    out
}

/// The argv to start (or resume) an agent, with setup commands wrapped in front when given.
fn build_argv(
    profile: &Profile,
    rec: &AgentRecord,
    env: &[(String, String)],
    resume: bool,
    setup: &[String],
) -> Vec<String> {
    let p = Placeholders::for_agent(env, rec);
    let template =
        if resume && !profile.resume.is_empty() { &profile.resume } else { &profile.command };
    let mut argv: Vec<String> = template.iter().map(|a| expand_one(a, &p)).collect();
    // The user's own arguments are theirs verbatim: no placeholders expanded in them.
    argv.extend(rec.args.iter().cloned());
    if profile.hooks
        && let Some(flavor) = argv.first().and_then(|p| crate::status::hooks::flavor_of(p))
        && let Ok(exe) = std::env::current_exe()
    {
        // Right after the program, so a prompt or subcommand at the end stays last.
        let extra = crate::status::hooks::install_args(flavor, &exe.to_string_lossy());
        argv.splice(1..1, extra);
    }
    if !resume
        && profile.prompt == PromptMode::Arg
        && let Some(prompt) = rec.prompt.as_ref().filter(|p| !p.is_empty())
    {
        if !profile.prompt_flag.is_empty() {
            argv.push(profile.prompt_flag.clone());
        }
        argv.push(prompt.clone());
    }
    if setup.is_empty() {
        return argv;
    }
    // `set -e` stops at the first failing command; its output stays in the pane and the exit code
    // becomes the agent's. `exec` makes the agent the process we track.
    let mut script = String::from("set -ex\n");
    for cmd in setup {
        script.push_str(cmd);
        script.push('\n');
    }
    script.push_str("set +x\nexec \"$@\"\n");
    let mut wrapped = vec!["/bin/sh".to_string(), "-c".to_string(), script, "corral-setup".into()];
    wrapped.extend(argv);
    wrapped
}

/// `env` with the variables that install corral's hooks into agents that take them through their
/// environment (OpenCode), when the profile wants hooks. Without them the agent still runs (its
/// screen rules still read it): the reason is logged.
fn with_hook_env(
    mut env: Vec<(String, String)>,
    profile: &Profile,
    resume: bool,
) -> Vec<(String, String)> {
    let template =
        if resume && !profile.resume.is_empty() { &profile.resume } else { &profile.command };
    let Some(flavor) = template.first().and_then(|p| crate::status::hooks::flavor_of(p)) else {
        return env;
    };
    if !profile.hooks {
        return env;
    }
    let Ok(exe) = std::env::current_exe() else { return env };
    let dir = paths::data_dir().join("hooks");
    match crate::status::hooks::install_env(flavor, &exe.to_string_lossy(), &dir, &env) {
        Ok(extra) => {
            for (k, v) in extra {
                env.retain(|(key, _)| *key != k);
                env.push((k, v));
            }
        }
        Err(e) => warn!("hooks not installed for {}: {e:#}", template.join(" ")),
    }
    env
}

fn server_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        // The server's own settings are not the agents' business.
        .filter(|(k, _)| k != "MALLOC_ARENA_MAX" && k != "RUST_LOG")
        .collect()
}

fn agent_env(
    client_env: &[(String, String)],
    profile: &Profile,
    rec: &AgentRecord,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = client_env
        .iter()
        .filter(|(k, _)| !(k.starts_with("TMUX") || k.starts_with("ZELLIJ") || k == "STY"))
        .cloned()
        .collect();
    env.insert("TERM".into(), "xterm-256color".into());
    env.insert("COLORTERM".into(), "truecolor".into());
    env.insert("CORRAL_AGENT".into(), rec.name.clone());
    env.insert("CORRAL_REPO".into(), rec.repo.to_string_lossy().into_owned());
    env.insert("CORRAL_WORKTREE".into(), rec.worktree.to_string_lossy().into_owned());
    env.insert("CORRAL_BRANCH".into(), rec.branch.clone());
    env.insert("CORRAL_BASE".into(), rec.base.clone());
    if let Some(port) = rec.port {
        env.insert("PORT".into(), port.to_string());
    }
    env.insert("PWD".into(), rec.worktree.to_string_lossy().into_owned());
    // Hooks (`corral hook`) and corral commands run by the agent reach this server.
    env.insert("CORRAL_RUNTIME_DIR".into(), paths::runtime_dir().to_string_lossy().into_owned());
    let p = Placeholders::for_agent(client_env, rec);
    for (k, v) in &profile.env {
        env.insert(k.clone(), expand_one(v, &p));
    }
    env.into_iter().collect()
}

impl Session {
    fn recover(&mut self) {
        for repo in persist::load_repos() {
            self.load_repo(&repo);
        }
    }

    /// Read a repository's agent records once; agents whose process is gone come back `exited`.
    fn load_repo(&mut self, repo: &Path) {
        if self.repos.contains(repo) {
            return;
        }
        let info = match git::discover(repo) {
            Ok(i) => i,
            Err(e) => {
                warn!("not recovering agents of {}: {e}", repo.display());
                return;
            }
        };
        if !self.repos.insert(info.root.clone()) {
            return;
        }
        match persist::load_agents(&info.common_dir).map(|r| recover_repo(&info, r)) {
            Ok(records) => {
                for rec in records {
                    info!("recovered agent {} of {}", rec.name, info.root.display());
                    let key = (info.root.clone(), rec.name.clone());
                    self.agents.insert(
                        key,
                        Agent {
                            rec,
                            common_dir: info.common_dir.clone(),
                            phase: Phase::Ready,
                            pane: None,
                            run: 0,
                            recovered_at: Some(unix_now()),
                        },
                    );
                }
            }
            Err(e) => warn!("cannot recover agents of {}: {e:#}", info.root.display()),
        }
        self.queue_load(&info.root, &info.common_dir);
    }

    /// Write the repository's agent records; false when they could not be written (logged).
    fn save(&self, repo: &Path) -> bool {
        let mut common = None;
        let records: Vec<AgentRecord> = self
            .agents
            .iter()
            .filter(|((r, _), a)| r == repo && a.phase != Phase::Starting)
            .map(|(_, a)| {
                common = Some(a.common_dir.clone());
                a.rec.clone()
            })
            .collect();
        let common = match common {
            Some(c) => c,
            None => match git::discover(repo) {
                Ok(i) => i.common_dir,
                Err(e) => {
                    warn!("cannot save agents of {}: {e}", repo.display());
                    return false;
                }
            },
        };
        let saved = match persist::save_agents(&common, &records) {
            Ok(()) => true,
            Err(e) => {
                warn!("cannot save agents of {}: {e:#}", repo.display());
                false
            }
        };
        self.save_repos();
        saved
    }

    fn save_repos(&self) {
        let repos: Vec<PathBuf> = self.repos.iter().cloned().collect();
        if let Err(e) = persist::save_repos(&repos) {
            warn!("cannot save the repository list: {e:#}");
        }
    }

    /// Handle a request; replies through `reply` now or later.
    fn request(&mut self, req: Request, reply: oneshot::Sender<Outcome>) {
        if let Some(repo) = request_repo(&req) {
            self.load_repo(&repo);
        }
        if let Request::Attach { colors: Some(colors), .. }
        | Request::New(NewAgent { colors: Some(colors), .. }) = &req
        {
            self.tell_colors(*colors);
        }
        // A client on another host sends no environment: its agents get this server's, the one
        // the user's login on this host gave it.
        let req = match req {
            Request::New(mut n) if n.env.is_empty() => {
                n.env = server_env();
                Request::New(n)
            }
            Request::Restart { target, env } if env.is_empty() => {
                Request::Restart { target, env: server_env() }
            }
            Request::Fork { target, name, prompt, size, env, git_env } if env.is_empty() => {
                Request::Fork { target, name, prompt, size, env: server_env(), git_env }
            }
            r => r,
        };
        let outcome = match req {
            Request::Ping => Outcome::Reply(Reply::Pong {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").into(),
            }),
            Request::List { repo } => Outcome::Reply(Reply::Agents(self.list(repo.as_deref()))),
            Request::New(new) => {
                self.new_agents(new, reply);
                return;
            }
            Request::Tail { target, lines } => match self.live_pane(&target, false) {
                Ok(pane) => {
                    tokio::spawn(async move {
                        // `-n N` counts lines of scrollback and screen together; 0 means all.
                        let want = if lines == 0 { usize::MAX } else { lines as usize };
                        let mut all = pane.lines(want).await.unwrap_or_default();
                        let cut = all.len().saturating_sub(want);
                        all.drain(..cut);
                        let _ = reply.send(Outcome::Reply(Reply::Lines(all)));
                    });
                    return;
                }
                Err(e) => err(e),
            },
            Request::Diff { target, stat, colour, width } => {
                let key = (target.repo.clone(), target.name.clone());
                let Some(rec) = self.agents.get(&key).map(|a| a.rec.clone()) else {
                    let _ = reply.send(err(format!(
                        "no agent '{}' in {}",
                        target.name,
                        target.repo.display()
                    )));
                    return;
                };
                tokio::spawn(async move {
                    let made = tokio::task::spawn_blocking(move || {
                        crate::git::agent_patch(
                            &rec.worktree,
                            &rec.base,
                            stat,
                            colour,
                            usize::from(width),
                        )
                    })
                    .await;
                    let outcome = match made {
                        Ok(Ok(bytes)) => Outcome::Reply(Reply::Text(
                            String::from_utf8_lossy(&bytes).into_owned(),
                        )),
                        Ok(Err(e)) => err(e.to_string()),
                        Err(e) => err(format!("the diff was interrupted: {e}")),
                    };
                    let _ = reply.send(outcome);
                });
                return;
            }
            Request::GateLog { target } => {
                let path = queue::gate_log(&target.repo, &target.name);
                tokio::spawn(async move {
                    let read =
                        tokio::task::spawn_blocking(move || crate::queue::read_log_tail(&path))
                            .await;
                    let outcome = match read {
                        Ok(Ok(text)) => Outcome::Reply(Reply::Text(text)),
                        Ok(Err(e)) => err(e),
                        Err(e) => err(format!("reading the gate's output was interrupted: {e}")),
                    };
                    let _ = reply.send(outcome);
                });
                return;
            }
            Request::Follow { target, lines, ansi, from } => match self.live_pane(&target, false) {
                Ok(pane) => Outcome::Follow(pane, lines, ansi, from),
                Err(e) => err(e),
            },
            Request::Attach { target, size, .. } => match self.live_pane(&target, true) {
                Ok(pane) => {
                    if let Some(size) = size {
                        pane.resize(size);
                        if let Some(a) =
                            self.agents.get_mut(&(target.repo.clone(), target.name.clone()))
                        {
                            a.rec.size = size;
                        }
                    }
                    Outcome::Attach(pane, self.status.subscribe())
                }
                Err(e) => err(e),
            },
            Request::Send { target, text, enter } => match self.live_pane(&target, true) {
                Ok(pane) => Outcome::Send(pane, text, enter),
                Err(e) => err(e),
            },
            Request::Stop { target } => {
                self.stop(target, reply);
                return;
            }
            Request::Restart { target, env } => {
                self.restart(target, env, reply);
                return;
            }
            Request::Remove { target, force, git_env } => {
                self.remove(target, force, git_env, reply);
                return;
            }
            Request::Merge { target, mode, keep, message, yes, git_env } => {
                self.merge(target, land::MergeAsk { mode, keep, message, git_env }, yes, reply);
                return;
            }
            Request::Sync { target, git_env } => {
                self.sync_agent(target, git_env, reply);
                return;
            }
            Request::Hook { target, event, payload } => self.hook(&target, &event, &payload),
            Request::Status { target, explain } => {
                self.status_report(&target, explain, reply);
                return;
            }
            Request::Enqueue { target, text } => self.enqueue(&target, text),
            Request::Queue { target, clear, remove } => self.queue(&target, clear, remove),
            Request::Land { repo, names, mode, keep, git_env } => {
                self.queue_land(repo, names, mode, keep, git_env)
            }
            Request::LandStatus { repo } => Outcome::Reply(self.queue_status(&repo)),
            Request::LandCancel { target } => self.queue_cancel(&target),
            Request::Resolve { target, git_env, profile, env } => {
                self.queue_resolve(target, git_env, profile.map(|p| (p, env)), reply);
                return;
            }
            Request::Compare { repo, group, gate } => {
                self.compare(repo, group, gate, reply);
                return;
            }
            Request::Pick { target, mode, queue, git_env } => {
                self.pick(target, mode, queue, git_env, reply);
                return;
            }
            Request::Review { target, comments, queue } => {
                self.review(target, comments, queue, reply);
                return;
            }
            Request::Fork { target, name, prompt, size, env, git_env } => {
                self.fork(target, fork::ForkAsk { name, prompt, size, env, git_env }, reply);
                return;
            }
            Request::Gc { repo, remove, force, git_env } => {
                self.gc(repo, remove, force, git_env, reply);
                return;
            }
            Request::Upgrade { exe } => {
                self.upgrade(exe, reply);
                return;
            }
            Request::KillServer => {
                for a in self.agents.values() {
                    if let Some(p) = &a.pane {
                        p.kill();
                    }
                }
                let repos: Vec<PathBuf> = self.repos.iter().cloned().collect();
                for r in repos {
                    self.save(&r);
                }
                Outcome::Shutdown
            }
        };
        let _ = reply.send(outcome);
    }

    /// A client's terminal has these default colours: every agent answers with them from now on,
    /// and those that asked to hear of changes are told.
    fn tell_colors(&mut self, colors: TermColors) {
        if self.colors == Some(colors) {
            return;
        }
        self.colors = Some(colors);
        for pane in self.agents.values().filter_map(|a| a.pane.as_ref()) {
            pane.set_colors(colors);
        }
    }

    fn agent(&self, t: &Target) -> Result<&Agent, String> {
        self.agents.get(&(t.repo.clone(), t.name.clone())).ok_or_else(|| {
            let names: Vec<&str> =
                self.agents.keys().filter(|(r, _)| *r == t.repo).map(|(_, n)| n.as_str()).collect();
            if names.is_empty() {
                format!("no agent '{}' in {} (it has no agents)", t.name, t.repo.display())
            } else {
                format!(
                    "no agent '{}' in {} (agents: {})",
                    t.name,
                    t.repo.display(),
                    names.join(", ")
                )
            }
        })
    }

    /// The agent, if it is not in the middle of starting, stopping or being removed.
    fn ready(&self, t: &Target) -> Result<&Agent, String> {
        let a = self.agent(t)?;
        if a.phase != Phase::Ready {
            return Err(format!("agent '{}' is busy (starting, stopping or merging)", t.name));
        }
        Ok(a)
    }

    fn live_pane(&self, t: &Target, running: bool) -> Result<PaneHandle, String> {
        let a = self.agent(t)?;
        if a.phase == Phase::Starting {
            return Err(format!("agent '{}' is still starting", t.name));
        }
        let Some(pane) = &a.pane else {
            return Err(format!(
                "agent '{}' is not running (its process ended when the server stopped); `corral restart {}` starts it again",
                t.name, t.name
            ));
        };
        if running && pane.state().exited {
            return Err(format!(
                "agent '{}' has exited (code {}); `corral tail {}` shows its last screen, `corral restart {}` starts it again",
                t.name,
                pane.state().exit_code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into()),
                t.name,
                t.name
            ));
        }
        Ok(pane.clone())
    }

    fn list(&self, repo: Option<&Path>) -> Vec<AgentInfo> {
        self.agents
            .iter()
            .filter(|((r, _), _)| repo.is_none_or(|want| r == want))
            .map(|(k, a)| {
                let mut info = self.agent_info(k, a);
                self.land.decorate(&k.0, &mut info);
                info.landing = self.queue_landing(&k.0, &k.1);
                info
            })
            .collect()
    }

    fn new_agents(&mut self, req: NewAgent, reply: oneshot::Sender<Outcome>) {
        self.new_agents_sharing(req, None, reply);
    }

    /// `new`; with `sharing`, the adopted worktree may be that agent's (a resolver started by
    /// `corral resolve --agent` works beside the agent whose conflict it resolves).
    fn new_agents_sharing(
        &mut self,
        req: NewAgent,
        sharing: Option<&str>,
        reply: oneshot::Sender<Outcome>,
    ) {
        if let Some(name) = &req.name
            && let Err(e) = names::validate(name)
        {
            let _ = reply.send(err(e));
            return;
        }
        if req.count == 0 || req.count > 50 {
            let _ = reply.send(err(format!("-n {} is out of range (1 to 50)", req.count)));
            return;
        }
        if req.worktree.is_some() && req.count != 1 {
            let _ = reply.send(err("--worktree starts one agent; leave out -n"));
            return;
        }
        let owned: Vec<(String, PathBuf)> = match req.worktree {
            Some(_) => self
                .agents
                .values()
                .filter(|a| Some(a.rec.name.as_str()) != sharing)
                .map(|a| (a.rec.name.clone(), a.rec.worktree.clone()))
                .collect(),
            None => Vec::new(),
        };
        let sharing = sharing.map(str::to_string);
        off_session(
            &self.tx,
            move || {
                let prep = prepare(&req, &owned).map(|p| Prepared { sharing, ..p });
                (req, prep)
            },
            move |s, (req, prep)| match prep {
                Ok(prep) => s.new_prepared(req, prep, reply),
                Err(e) => {
                    let _ = reply.send(err(e));
                }
            },
        );
    }

    fn new_prepared(&mut self, req: NewAgent, prep: Prepared, reply: oneshot::Sender<Outcome>) {
        let root = prep.info.root.clone();
        // gc must not find a worktree half made: while it runs, the agent waits.
        if let Some(waiting) = self.gc_running.get_mut(&root) {
            waiting.push(Box::new(move |s: &mut Session| s.new_prepared(req, prep, reply)));
            return;
        }
        self.new_prepared_now(req, prep, reply);
    }

    fn new_prepared_now(&mut self, req: NewAgent, prep: Prepared, reply: oneshot::Sender<Outcome>) {
        let root = prep.info.root.clone();
        self.repos.insert(root.clone());
        // Recovery after a crash looks for unfinished changes in the repositories listed here.
        self.save_repos();
        let prefix = prep.config.worktree.branch_prefix.clone();
        let count = req.count as usize;
        let explicit = req.name.is_some();
        if let Some(a) = &prep.adopt
            && let Some(other) = self
                .agents
                .values()
                .find(|o| o.rec.worktree == a.path && Some(&o.rec.name) != prep.sharing.as_ref())
        {
            let _ = reply.send(err(format!(
                "cannot adopt {}: it is the worktree of agent '{}'",
                a.path.display(),
                other.rec.name
            )));
            return;
        }
        let default_name = prep.fork.as_ref().map(|f| f.name.clone());
        let base_name = req.name.clone().or(default_name).unwrap_or_else(|| match &prep.adopt {
            // Named after the worktree's directory, as the user named it.
            Some(a) => {
                let dir = a.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                let words = dir.replace(|c: char| !c.is_ascii_alphanumeric(), " ");
                names::from_prompt(Some(&words), &prep.profile_name)
            }
            None => names::from_prompt(req.prompt.as_deref(), &prep.profile_name),
        });
        let taken = |n: &str| {
            self.agents.contains_key(&(root.clone(), n.to_string()))
                || prep.branches.contains(&format!("{prefix}{n}"))
                || prep.worktree_dir.join(n).exists()
        };
        let chosen = names::allocate(&base_name, count, explicit, taken);
        for n in &chosen {
            if let Err(e) = names::validate(n) {
                let _ = reply.send(err(e));
                return;
            }
            if self.agents.contains_key(&(root.clone(), n.clone())) {
                let _ = reply.send(err(format!(
                    "an agent named '{n}' already exists in {}",
                    root.display()
                )));
                return;
            }
            if prep.adopt.is_none() && prep.branches.contains(&format!("{prefix}{n}")) {
                let _ = reply.send(err(format!(
                    "branch '{prefix}{n}' already exists; choose another name or delete the branch"
                )));
                return;
            }
        }
        let size = req.size.unwrap_or(Size::DEFAULT);
        let mut records: Vec<AgentRecord> = Vec::new();
        for n in &chosen {
            let port = match self.lease_port(&prep.config) {
                Some(p) => p,
                None => {
                    for r in &records {
                        self.agents.remove(&(root.clone(), r.name.clone()));
                    }
                    let _ = reply.send(err(format!(
                        "no free port left in {}-{} (ports.first/ports.last)",
                        prep.config.ports.first, prep.config.ports.last
                    )));
                    return;
                }
            };
            let (branch, worktree) = match &prep.adopt {
                Some(a) => (a.branch.clone(), a.path.clone()),
                None => (format!("{prefix}{n}"), prep.worktree_dir.join(n)),
            };
            let rec = AgentRecord {
                name: n.clone(),
                repo: root.clone(),
                profile: prep.profile_name.clone(),
                branch,
                base: prep.base.clone(),
                base_commit: prep.base_commit.clone(),
                worktree,
                port: Some(port),
                prompt: req.prompt.clone(),
                session: uuid::Uuid::new_v4().to_string(),
                created: unix_now(),
                size,
                argv: Vec::new(),
                exit_code: None,
                queue: Vec::new(),
                adopted: prep.adopt.is_some(),
                args: req.args.clone(),
                group: (count > 1).then(|| chosen[0].clone()),
            };
            // Reserve the name and the port while the worktree is made.
            self.agents.insert(
                (root.clone(), n.clone()),
                Agent {
                    rec: rec.clone(),
                    common_dir: prep.info.common_dir.clone(),
                    phase: Phase::Starting,
                    pane: None,
                    run: 0,
                    recovered_at: None,
                },
            );
            records.push(rec);
        }
        let host = self.host.clone();
        let tx = self.tx.clone();
        let common = prep.info.common_dir.clone();
        self.runs += 1;
        let run = self.runs;
        let colors = self.colors;
        off_session(
            &self.tx,
            move || create_all(&*host, &tx, &prep, &req, records, run, colors),
            move |s, result: Creation| match result {
                Ok((created, intent)) => {
                    let mut names = Vec::new();
                    for (rec, pane) in created {
                        let key = (rec.repo.clone(), rec.name.clone());
                        names.push(rec.name.clone());
                        // Colours a client told while the agent was being created.
                        if let Some(c) = s.colors {
                            pane.set_colors(c);
                        }
                        if let Some(a) = s.agents.get_mut(&key) {
                            a.rec = rec;
                            a.phase = Phase::Ready;
                            a.pane = Some(pane.clone());
                            a.run = run;
                            s.start_badge(&key, &pane, run);
                        }
                    }
                    if s.save(&root) {
                        crate::failpoint::hit("new:saved");
                        // Only now is the agent listed after a crash: the record can go.
                        git::intent::clear(&common, &intent);
                    }
                    let _ = reply.send(Outcome::Reply(Reply::Created(names)));
                }
                Err((records, e)) => {
                    for r in records {
                        s.agents.remove(&(r.repo.clone(), r.name.clone()));
                    }
                    let _ = reply.send(err(e));
                }
            },
        );
    }

    /// The lowest port of the range that no agent of any repository holds and that is free now.
    fn lease_port(&self, config: &Config) -> Option<u16> {
        let held: BTreeSet<u16> = self.agents.values().filter_map(|a| a.rec.port).collect();
        (config.ports.first..=config.ports.last)
            .find(|p| !held.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
    }

    fn on_exit(&mut self, key: &Key, run: u64, code: i32) {
        let Some(a) = self.agents.get_mut(key) else { return };
        if a.run != run {
            return;
        }
        info!("agent {} exited with code {code}", key.1);
        a.rec.exit_code = Some(code);
        let repo = key.0.clone();
        self.save(&repo);
    }

    fn stop(&mut self, target: Target, reply: oneshot::Sender<Outcome>) {
        let pane = match self.ready(&target) {
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
            Ok(a) => a.pane.clone(),
        };
        match pane {
            Some(p) if !p.state().exited => {
                p.kill();
                tokio::spawn(async move {
                    let ok = wait_exit(&p, Duration::from_secs(10)).await;
                    let _ = reply.send(if ok {
                        Outcome::Reply(Reply::Ok)
                    } else {
                        err(format!("agent '{}' did not stop within 10 s", target.name))
                    });
                });
            }
            _ => {
                let _ = reply.send(Outcome::Reply(Reply::Ok));
            }
        }
    }

    fn restart(
        &mut self,
        target: Target,
        env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let key = (target.repo.clone(), target.name.clone());
        let pane = match self.ready(&target) {
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
            Ok(a) => a.pane.clone(),
        };
        if let Some(a) = self.agents.get_mut(&key) {
            a.phase = Phase::Busy;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(p) = pane.filter(|p| !p.state().exited) {
                p.kill();
                wait_exit(&p, Duration::from_secs(10)).await;
            }
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                s.respawn(&key, env, reply);
            })));
        });
    }

    /// Start a stopped agent's process again in its worktree, resuming where the profile can.
    fn respawn(&mut self, key: &Key, env: Vec<(String, String)>, reply: oneshot::Sender<Outcome>) {
        let Some(a) = self.agents.get(key) else {
            let _ = reply.send(err(format!("no agent '{}'", key.1)));
            return;
        };
        let mut rec = a.rec.clone();
        // Start again at the size the agent was last seen at.
        if let Some(p) = &a.pane {
            rec.size = p.state().size;
        }
        let result = (|| {
            let loaded = config::load(&paths::user_config_file(), Some(&rec.repo))
                .map_err(|e| e.to_string())?;
            let profile = loaded.config.agents.get(&rec.profile).cloned().ok_or_else(|| {
                format!(
                    "agent '{}' uses profile '{}', which the config no longer has",
                    rec.name, rec.profile
                )
            })?;
            if !rec.worktree.is_dir() {
                return Err(format!(
                    "the worktree of agent '{}' ({}) is gone; `corral rm {}` cleans up",
                    rec.name,
                    rec.worktree.display(),
                    rec.name
                ));
            }
            let argv = build_argv(&profile, &rec, &env, true, &[]);
            let spec = SpawnSpec {
                argv: argv.clone(),
                cwd: rec.worktree.clone(),
                env: with_hook_env(agent_env(&env, &profile, &rec), &profile, true),
                size: rec.size,
            };
            Ok((spec, loaded.config.terminal.scrollback))
        })();
        let (spec, scrollback) = match result {
            Ok(x) => x,
            Err(e) => {
                if let Some(a) = self.agents.get_mut(key) {
                    a.phase = Phase::Ready;
                }
                let _ = reply.send(err(e));
                return;
            }
        };
        self.runs += 1;
        let run = self.runs;
        let pane = self.spawn(key, &spec, scrollback, run);
        let Some(a) = self.agents.get_mut(key) else { return };
        a.phase = Phase::Ready;
        match pane {
            Ok(p) => {
                a.pane = Some(p.clone());
                a.run = run;
                a.recovered_at = None;
                a.rec.argv = spec.argv;
                a.rec.size = spec.size;
                a.rec.exit_code = None;
                let repo = key.0.clone();
                self.start_badge(key, &p, run);
                self.save(&repo);
                let _ = reply.send(Outcome::Reply(Reply::Ok));
            }
            Err(e) => {
                let _ = reply.send(err(format!("cannot start agent '{}': {e}", key.1)));
            }
        }
    }

    fn spawn(
        &self,
        key: &Key,
        spec: &SpawnSpec,
        scrollback: usize,
        run: u64,
    ) -> std::io::Result<PaneHandle> {
        let tx = self.tx.clone();
        let k = key.clone();
        spawn_pane(
            &*self.host,
            spec,
            emulator(spec.size, scrollback, self.colors),
            Box::new(move |code| {
                let _ = tx.send(SessionMsg::Run(Box::new(move |s| s.on_exit(&k, run, code))));
            }),
        )
    }

    fn remove(
        &mut self,
        target: Target,
        force: bool,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        self.remove_with(target, force, false, git_env, reply);
    }

    /// `rm`; with `backup`, forced, and the branch's tip kept under refs/corral/backup/ before
    /// the branch goes too (an agent not picked from its group).
    fn remove_with(
        &mut self,
        target: Target,
        force: bool,
        backup: bool,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let key = (target.repo.clone(), target.name.clone());
        let (rec, pane) = match self.ready(&target) {
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
            Ok(a) => (a.rec.clone(), a.pane.clone()),
        };
        let common = match self.agents.get_mut(&key) {
            Some(a) => {
                a.phase = Phase::Busy;
                a.common_dir.clone()
            }
            None => return,
        };
        if rec.adopted {
            self.forget_adopted(key, rec, pane, reply);
            return;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            // Check first, so a refused `rm` leaves the agent running.
            let check_rec = rec.clone();
            let verdict = tokio::task::spawn_blocking(move || {
                removal_check(&check_rec, force || backup).map(|v| RemovalPlan { backup, ..v })
            })
            .await
            .unwrap_or_else(|e| Err(format!("removal check failed: {e}")));
            let verdict = match verdict {
                Ok(v) => v,
                Err(e) => {
                    let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                        if let Some(a) = s.agents.get_mut(&key) {
                            a.phase = Phase::Ready;
                        }
                        let _ = reply.send(err(e));
                    })));
                    return;
                }
            };
            if let Some(p) = pane.filter(|p| !p.state().exited) {
                p.kill();
                wait_exit(&p, Duration::from_secs(10)).await;
            }
            let done = tokio::task::spawn_blocking(move || {
                remove_worktree_and_branch(&rec, &common, verdict, &git_env)
            })
            .await
            .unwrap_or_else(|e| Err(format!("removal failed: {e}")));
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| match done {
                Ok((note, intent)) => {
                    let common = s.agents.get(&key).map(|a| a.common_dir.clone());
                    s.agents.remove(&key);
                    s.forget_badge(&key);
                    if s.save(&key.0)
                        && let Some(common) = common
                    {
                        crate::failpoint::hit("rm:saved");
                        git::intent::clear(&common, &intent);
                    }
                    let _ = reply.send(Outcome::Reply(match note {
                        Some(n) => Reply::Note(n),
                        None => Reply::Ok,
                    }));
                }
                Err(e) => {
                    if let Some(a) = s.agents.get_mut(&key) {
                        a.phase = Phase::Ready;
                    }
                    let _ = reply.send(err(e));
                }
            })));
        });
    }
}

impl Session {
    /// `rm` of an agent started in a worktree corral did not make: as `git worktree` users
    /// expect of a tool that borrowed their worktree, stop the agent and forget it, and leave
    /// the worktree and its branch exactly as they are (uncommitted work included).
    fn forget_adopted(
        &mut self,
        key: Key,
        rec: AgentRecord,
        pane: Option<PaneHandle>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(p) = pane.filter(|p| !p.state().exited) {
                p.kill();
                wait_exit(&p, Duration::from_secs(10)).await;
            }
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                s.agents.remove(&key);
                s.forget_badge(&key);
                s.save(&key.0);
                let _ = reply.send(Outcome::Reply(Reply::Note(format!(
                    "removed agent '{}'; its worktree {} and branch {} were there before it and stay as they are",
                    rec.name,
                    rec.worktree.display(),
                    rec.branch
                ))));
            })));
        });
    }
}

/// What removing an agent will do with its branch.
#[derive(Debug)]
struct RemovalPlan {
    merged: bool,
    dirty: bool,
    /// Keep the branch's tip under refs/corral/backup/, then delete the branch (an agent not
    /// picked from its group).
    backup: bool,
}

fn removal_check(rec: &AgentRecord, force: bool) -> Result<RemovalPlan, String> {
    let dirty = if rec.worktree.is_dir() {
        git::dirty_paths(&rec.worktree).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let branch_exists = git::branch_exists(&rec.repo, &rec.branch).map_err(|e| e.to_string())?;
    let merged = !branch_exists
        || git::branch_merged(&rec.repo, &rec.branch, &rec.base).map_err(|e| e.to_string())?;
    if !force {
        if !dirty.is_empty() {
            let mut shown: Vec<&str> = dirty.iter().map(String::as_str).take(5).collect();
            if dirty.len() > 5 {
                shown.push("…");
            }
            return Err(format!(
                "agent '{}' has uncommitted work in {} ({}); merge it, or `corral rm --force {}` commits it to branch {} and keeps the branch",
                rec.name,
                rec.worktree.display(),
                shown.join(", "),
                rec.name,
                rec.branch
            ));
        }
        if !merged {
            return Err(format!(
                "branch {} of agent '{}' has commits that are not on {}; merge it, or `corral rm --force {}` removes the worktree and keeps the branch",
                rec.branch, rec.name, rec.base, rec.name
            ));
        }
    }
    Ok(RemovalPlan { merged, dirty: !dirty.is_empty(), backup: false })
}

/// Remove the worktree; delete the branch only when everything on it is already on the base.
/// Uncommitted work is first committed to the branch, so `--force` never loses it. From then on
/// an intent record makes the removal one step: a crash is finished by the next server. Returns
/// the note for the user and the record's id, which the caller clears once the agent's record is
/// gone from agents.json.
fn remove_worktree_and_branch(
    rec: &AgentRecord,
    common: &Path,
    plan: RemovalPlan,
    git_env: &[(String, String)],
) -> Result<(Option<String>, String), String> {
    let mut keep_branch = !plan.merged;
    if plan.dirty && rec.worktree.is_dir() {
        let msg = format!("corral: uncommitted work of agent {} saved before removal", rec.name);
        if git::snapshot_commit(&rec.worktree, &msg, git_env).map_err(|e| e.to_string())?.is_some()
        {
            keep_branch = true;
        }
    }
    crate::failpoint::hit("rm:snapshot");
    let mut backed_up = None;
    if plan.backup && git::branch_exists(&rec.repo, &rec.branch).map_err(|e| e.to_string())? {
        let prefix = git::backup_branch(&rec.repo, &rec.name, &rec.branch, &rec.base)
            .map_err(|e| e.to_string())?;
        crate::failpoint::hit("rm:backup");
        keep_branch = false;
        backed_up = Some(prefix);
    }
    let intent = git::intent::record(
        common,
        git::Step::Remove {
            name: rec.name.clone(),
            branch: rec.branch.clone(),
            worktree: rec.worktree.clone(),
            base: rec.base.clone(),
            keep_branch,
            backed_up: backed_up.is_some(),
        },
    )
    .map_err(|e| e.to_string())?;
    crate::failpoint::hit("rm:intent");
    git::finish_remove(&rec.repo, &rec.name, &rec.branch, &rec.worktree, &rec.base, keep_branch)
        .map_err(|e| e.to_string())?;
    if backed_up.is_some()
        && git::branch_exists(&rec.repo, &rec.branch).map_err(|e| e.to_string())?
    {
        git::delete_branch(&rec.repo, &rec.branch).map_err(|e| e.to_string())?;
    }
    let note = match backed_up {
        Some(prefix) => {
            Some(format!("removed agent '{}'; its work is kept under {prefix}/agent", rec.name))
        }
        None => {
            keep_branch.then(|| format!("removed agent '{}'; kept branch {}", rec.name, rec.branch))
        }
    };
    Ok((note, intent.id))
}

async fn wait_exit(pane: &PaneHandle, limit: Duration) -> bool {
    let mut rx = pane.subscribe();
    let wait = async {
        loop {
            if rx.borrow_and_update().exited {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}

/// A pane's emulator, answering colour queries with a client's colours once one has told them.
fn emulator(size: Size, scrollback: usize, colors: Option<TermColors>) -> Box<dyn term::Emulator> {
    let mut emulator = term::new_emulator(size, scrollback);
    if let Some(c) = colors {
        // Nothing has run in it yet, so nobody is subscribed to hear of the change.
        emulator.set_colors(c);
    }
    emulator
}

/// Create each agent's worktree, copy files, and start its process. All or nothing: an intent
/// record names every worktree and branch corral makes first, and on failure (or, after a crash,
/// at the next start) what was created for agents without a saved record is removed again. An
/// adopted worktree is the user's: it is in no record and never undone.
fn create_all(
    host: &dyn PtyHost,
    tx: &mpsc::UnboundedSender<SessionMsg>,
    prep: &Prepared,
    req: &NewAgent,
    records: Vec<AgentRecord>,
    run: u64,
    colors: Option<TermColors>,
) -> Creation {
    let steps: Vec<git::NewAgentStep> = records
        .iter()
        .filter(|r| !r.adopted)
        .map(|r| git::NewAgentStep {
            name: r.name.clone(),
            branch: r.branch.clone(),
            worktree: r.worktree.clone(),
            base_commit: prep.start_commit().to_string(),
        })
        .collect();
    let common = &prep.info.common_dir;
    let intent = match git::intent::record(common, git::Step::New { agents: steps.clone() }) {
        Ok(i) => i,
        Err(e) => return Err((records, e.to_string())),
    };
    crate::failpoint::hit("new:intent");
    let mut done: Vec<(AgentRecord, PaneHandle)> = Vec::new();
    // Worktrees made so far (the first `made` steps).
    let mut made = 0usize;
    // Undo the first `made` agents: a failed create_worktree has rolled back its own steps, and
    // what is at the paths of later agents is not ours (a branch someone made meanwhile).
    let undo = |done: &[(AgentRecord, PaneHandle)], made: usize| {
        for (_, p) in done {
            p.kill();
        }
        let mut clean = true;
        for step in &steps[..made] {
            match git::undo_new_agent(&prep.info.root, step) {
                Ok(notes) => {
                    for n in notes {
                        warn!("{n}");
                    }
                }
                Err(e) => {
                    warn!("cannot undo the creation of agent {}: {e}", step.name);
                    clean = false;
                }
            }
        }
        if clean {
            git::intent::clear(common, &intent.id);
        }
    };
    for mut rec in records.clone() {
        // An adopted worktree is the user's, set up as they keep it: nothing to make or copy.
        let setup: &[String] = if rec.adopted { &[] } else { &prep.config.worktree.setup };
        if !rec.adopted {
            let spec = git::NewWorktree {
                root: &prep.info.root,
                name: &rec.name,
                branch: &rec.branch,
                path: &rec.worktree,
                base_commit: prep.start_commit(),
            };
            if let Err(e) = git::create_worktree(&spec) {
                undo(&done, made);
                return Err((records, e.to_string()));
            }
            made += 1;
            crate::failpoint::hit("new:worktree");
            let copy_from = prep.fork.as_ref().map_or(&prep.info.root, |f| &f.parent_worktree);
            if let Err(e) =
                git::copy_untracked(copy_from, &rec.worktree, &prep.config.worktree.copy)
            {
                undo(&done, made);
                return Err((records, e.to_string()));
            }
        }
        let profile = prep.fork.as_ref().map_or(&prep.profile, |f| &f.profile);
        let argv = build_argv(profile, &rec, &req.env, false, setup);
        rec.argv = argv.clone();
        let spawn = SpawnSpec {
            argv,
            cwd: rec.worktree.clone(),
            env: with_hook_env(agent_env(&req.env, &prep.profile, &rec), profile, false),
            size: rec.size,
        };
        let key = (rec.repo.clone(), rec.name.clone());
        let exit_tx = tx.clone();
        let pane = spawn_pane(
            host,
            &spawn,
            emulator(rec.size, prep.config.terminal.scrollback, colors),
            Box::new(move |code| {
                let _ =
                    exit_tx.send(SessionMsg::Run(Box::new(move |s| s.on_exit(&key, run, code))));
            }),
        );
        let pane = match pane {
            Ok(p) => p,
            Err(e) => {
                undo(&done, made);
                return Err((records, format!("cannot start agent '{}': {e}", rec.name)));
            }
        };
        crate::failpoint::hit("new:spawned");
        deliver_prompt(&pane, prep.profile.prompt, rec.prompt.as_deref());
        done.push((rec, pane));
    }
    Ok((done, intent.id))
}

/// Finish or undo, before anything else happens in the repository, every change a killed server
/// left half done there (git::intent), and drop the records of agents whose removal it finished.
fn recover_repo(info: &git::RepoInfo, mut records: Vec<AgentRecord>) -> Vec<AgentRecord> {
    let listed = |name: &str, worktree: &Path| {
        records.iter().any(|r| r.name == name && r.worktree == worktree)
    };
    let recovered = match git::intent::recover(&info.root, &listed) {
        Ok(r) => r,
        Err(e) => {
            warn!("cannot finish the interrupted changes in {}: {e}", info.root.display());
            return records;
        }
    };
    for n in &recovered.notes {
        warn!("{}: {n}", info.root.display());
    }
    if !recovered.forget.is_empty() {
        records.retain(|r| !recovered.forget.contains(&r.name));
        if let Err(e) = persist::save_agents(&info.common_dir, &records) {
            // The removals' records stay, so the next start drops these agents again.
            warn!("cannot save agents of {}: {e:#}", info.root.display());
            return records;
        }
        crate::failpoint::hit("recover:saved");
    }
    for id in &recovered.resolved {
        git::intent::clear(&info.common_dir, id);
    }
    if !recovered.resolved.is_empty() {
        info!(
            "finished or undid {} interrupted change(s) in {}",
            recovered.resolved.len(),
            info.root.display()
        );
    }
    records
}

/// Prompts that are not command-line arguments are written to the agent: at once (`stdin`), or
/// once its screen has settled (`type`), like a user typing at its prompt.
fn deliver_prompt(pane: &PaneHandle, mode: PromptMode, prompt: Option<&str>) {
    let Some(prompt) = prompt.filter(|p| !p.is_empty()).map(str::to_string) else { return };
    match mode {
        PromptMode::Stdin => {
            let mut b = prompt.into_bytes();
            b.push(b'\r');
            pane.write(b);
        }
        PromptMode::Type => {
            let pane = pane.clone();
            let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
            // Taken now, before `new` answers, so a message sent right after waits for the prompt.
            let Ok(guard) = pane.typing.clone().try_lock_owned() else { return };
            rt.spawn(async move {
                if wait_settled(&pane, Duration::from_millis(500), Duration::from_secs(30)).await {
                    super::listener::type_locked(&pane, &prompt, true).await;
                }
                drop(guard);
            });
        }
        PromptMode::Arg | PromptMode::None => {}
    }
}

/// Wait until the pane has printed something and then stayed quiet for `quiet`.
async fn wait_settled(pane: &PaneHandle, quiet: Duration, limit: Duration) -> bool {
    let mut rx = pane.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let st = rx.borrow_and_update().clone();
        if st.exited {
            return false;
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
        match st.last_output {
            Some(t) if t.elapsed() >= quiet => return true,
            Some(t) => {
                let wake = tokio::time::Instant::from_std(t + quiet).min(deadline);
                let _ = tokio::time::timeout_at(wake, rx.changed()).await;
            }
            None => {
                if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                    return true;
                }
            }
        }
    }
}

fn request_repo(req: &Request) -> Option<PathBuf> {
    // A request is a few hundred bytes; one match over every variant lives in `repo_mut`.
    req.clone().repo_mut().map(|p| p.clone())
}

fn info_of(a: &Agent) -> AgentInfo {
    let (status, since, reason) = status_of(a);
    let st = a.pane.as_ref().map(|p| p.state());
    AgentInfo {
        name: a.rec.name.clone(),
        repo: a.rec.repo.clone(),
        profile: a.rec.profile.clone(),
        status: status.into(),
        status_since: since,
        status_reason: reason,
        branch: a.rec.branch.clone(),
        base: a.rec.base.clone(),
        base_commit: a.rec.base_commit.clone(),
        worktree: a.rec.worktree.clone(),
        pid: a.pane.as_ref().filter(|_| st.as_ref().is_some_and(|s| !s.exited)).and_then(|p| p.pid),
        exit_code: st.as_ref().and_then(|s| s.exit_code).or(a.rec.exit_code),
        port: a.rec.port,
        // The live size: any client's resize (attach, dashboard) changes it.
        size: st.as_ref().map(|s| s.size).unwrap_or(a.rec.size),
        created: a.rec.created,
        prompt: a.rec.prompt.clone(),
        queued: 0,
        diff: None,
        conflicts: Vec::new(),
        landing: None,
        args: a.rec.args.clone(),
        group: a.rec.group.clone(),
    }
}

/// The status from activity alone, for agents without a badge (starting, or not running); a
/// running agent's badge (`session/status`) overrides it.
fn status_of(a: &Agent) -> (&'static str, u64, String) {
    if a.phase == Phase::Starting {
        return ("starting", a.rec.created, "creating worktree and process".into());
    }
    let Some(pane) = &a.pane else {
        return (
            "exited",
            a.recovered_at.unwrap_or(a.rec.created),
            "process: gone (the server restarted)".into(),
        );
    };
    let st = pane.state();
    if st.exited {
        let code = st.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into());
        return (
            "exited",
            st.exited_at.map(unix_at).unwrap_or(0),
            format!("process: exited with code {code}"),
        );
    }
    match st.last_output {
        None => ("starting", unix_at(st.started), "activity: no output yet".into()),
        Some(t) if t.elapsed() < IDLE_AFTER => (
            "working",
            st.burst_start.map(unix_at).unwrap_or_else(|| unix_at(t)),
            format!("activity: output {:.1}s ago", t.elapsed().as_secs_f32()),
        ),
        Some(t) => (
            "idle",
            unix_at(t).saturating_add(IDLE_AFTER.as_secs()),
            format!("activity: quiet for {:.1}s", t.elapsed().as_secs_f32()),
        ),
    }
}
