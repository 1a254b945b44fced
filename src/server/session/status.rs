//! The session's side of status detection: one badge per running agent, hook reports, `status
//! --explain`, notifications when an agent needs attention, and the prompt queue (messages
//! delivered one per turn, each the next time the agent is idle, kept with the agent's record).
//!
//! Rules and timings come from the config and are reloaded when the user's config file or the
//! repository's `.corral.toml` changes (checked every few seconds, and on `ls` and `status`), so
//! editing a rule needs no server restart. File reads happen off the session.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, oneshot};
use tracing::{debug, info, warn};

use super::{Agent, Key, Outcome, Phase, Session, SessionMsg, err, info_of, off_session};
use crate::config::{self, StatusConfig};
use crate::paths;
use crate::proto::{AgentInfo, Reply, Target};
use crate::server::badge::{self, BadgeHandle, Settings, View};
use crate::server::pane::PaneHandle;
use crate::status::{self, KeyRules, Notice, RuleSet, Status, Transition};

/// How long the config files must go unwritten after a change before they are read.
const CONFIG_SETTLE: Duration = Duration::from_millis(50);
/// How often config files are checked for changes while agents run.
const CONFIG_CHECK: Duration = Duration::from_secs(2);
/// How long a `notify_command` may run before it is killed.
const NOTIFY_LIMIT: Duration = Duration::from_secs(60);

/// Modification time and length of a file, or None when it does not exist.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// What the config of one repository says about status.
struct RepoStatus {
    stamps: (Stamp, Stamp),
    config: StatusConfig,
    profiles: BTreeMap<String, Arc<Settings>>,
}

#[derive(Default)]
pub(super) struct StatusBook {
    badges: BTreeMap<Key, BadgeHandle>,
    notices: Option<broadcast::Sender<Notice>>,
    last_notice: BTreeMap<(Key, Status), Instant>,
    delivering: BTreeSet<Key>,
    /// The badge's transition count when the last queued message was delivered: the next one
    /// waits for a later `idle`.
    delivered_at_seq: BTreeMap<Key, u64>,
    repos: BTreeMap<PathBuf, RepoStatus>,
    checking: BTreeSet<PathBuf>,
    /// Repositories whose files changed again while they were being read: read once more after.
    again: BTreeSet<PathBuf>,
    /// Started watching the config files.
    ticker: bool,
    /// The inotify instance the config watcher reads: each repository's root is added to it.
    watch: Option<std::os::fd::OwnedFd>,
    watched: BTreeSet<PathBuf>,
}

impl StatusBook {
    pub(super) fn subscribe(&mut self) -> broadcast::Receiver<Notice> {
        self.notices.get_or_insert_with(|| broadcast::channel(64).0).subscribe()
    }
}

/// An inotify instance, non-blocking: one descriptor to read its events from, and a duplicate to
/// add directories with.
fn config_watch() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use rustix::fs::inotify;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
    let adder = rustix::io::fcntl_dupfd_cloexec(&fd, 0)?;
    Ok((fd, adder))
}

/// Watch `fd` for readability on the runtime's reactor.
#[allow(unsafe_code)]
fn register_readable(
    fd: std::os::fd::OwnedFd,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: tokio asks that the descriptor stay open and refer to the same file description
    // for as long as the AsyncFd lives, with `as_raw_fd` always returning it. An `OwnedFd` is
    // the sole owner of its descriptor: it is closed only when the `OwnedFd` drops, which is
    // when the AsyncFd drops (it owns it), and its `as_raw_fd` never changes.
    Ok(unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }?)
}

/// Watch a directory for files in it being written, created, replaced or removed (editors save
/// by renaming a new file over the old one).
fn add_watch(fd: &std::os::fd::OwnedFd, dir: &Path) {
    use rustix::fs::inotify::WatchFlags;
    let flags = WatchFlags::CLOSE_WRITE
        | WatchFlags::MODIFY
        | WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MOVED_TO
        | WatchFlags::MOVED_FROM;
    if let Err(e) = rustix::fs::inotify::add_watch(fd, dir, flags) {
        warn!("cannot watch {} for config changes: {e}", dir.display());
    }
}

/// Load what the config says about status for `repo`. A repository file whose commands were not
/// approved keeps its `notify_command` from running.
fn load_repo_status(repo: &Path) -> Result<RepoStatus, String> {
    let user = paths::user_config_file();
    let repo_file = repo.join(".corral.toml");
    let stamps = (stamp(&user), stamp(&repo_file));
    let loaded = config::load(&user, Some(repo)).map_err(|e| e.to_string())?;
    let mut cfg = loaded.config;
    if let Some(rf) = &loaded.repo_file
        && rf.command_keys.iter().any(|k| k == "status.notify_command")
        && !crate::trust::is_trusted(&rf.path, &rf.content)
    {
        warn!(
            "{}: notify_command not approved (`corral trust`); not running it",
            rf.path.display()
        );
        cfg.status.notify_command.clear();
    }
    let timing = cfg.status.timing();
    let mut profiles = BTreeMap::new();
    for (name, p) in &cfg.agents {
        let rules = RuleSet::compile(&p.status_rules(&cfg.status))
            .map_err(|e| format!("profile '{name}': {e}"))?;
        let keys = KeyRules::compile(&p.key_rules).map_err(|e| format!("profile '{name}': {e}"))?;
        profiles.insert(name.clone(), Arc::new(Settings { rules, keys, timing }));
    }
    Ok(RepoStatus { stamps, config: cfg.status, profiles })
}

impl Session {
    /// The badge an agent shows now, if it has one.
    pub(super) fn badge_view(&self, key: &Key) -> Option<View> {
        self.status.badges.get(key).map(BadgeHandle::view)
    }

    /// Give a freshly started pane its badge (replacing the badge of an earlier run).
    pub(super) fn start_badge(&mut self, key: &Key, pane: &PaneHandle, run: u64) {
        self.start_badge_from(key, pane, run, None);
    }

    /// [`Session::start_badge`], going on from the badge a previous server showed.
    pub(super) fn start_badge_from(
        &mut self,
        key: &Key,
        pane: &PaneHandle,
        run: u64,
        resumed: Option<View>,
    ) {
        let Some(a) = self.agents.get(key) else { return };
        let settings =
            self.status.repos.get(&key.0).and_then(|r| r.profiles.get(&a.rec.profile).cloned());
        let tx = self.tx.clone();
        let k = key.clone();
        let on_change = Box::new(move |tr: Transition, view: View| {
            let k = k.clone();
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                s.on_status(&k, run, &tr, view);
            })));
        });
        let handle =
            badge::start(pane.clone(), settings, a.rec.worktree.clone(), on_change, resumed);
        self.status.badges.insert(key.clone(), handle);
        self.status.delivered_at_seq.remove(key);
        self.status.delivering.remove(key);
        if !self.status.repos.contains_key(&key.0) {
            self.reload_status_config(key.0.clone(), true);
        }
        if !self.status.ticker {
            self.status.ticker = true;
            self.start_config_watch();
        }
        self.watch_repo(&key.0);
    }

    /// Check the config files whenever the kernel says one of their directories changed; nothing
    /// wakes an idle server (SPEC §11). Where inotify is not available, every CONFIG_CHECK.
    fn start_config_watch(&mut self) {
        let tx = self.tx.clone();
        let check = move || {
            let job = Box::new(|s: &mut Session| s.check_status_configs());
            tx.send(SessionMsg::Run(job)).is_ok()
        };
        match config_watch() {
            Ok((reader, adder)) => {
                // The user's config directory: made if missing, so that the file appearing later
                // is seen too.
                let dir = paths::user_config_file().parent().map(Path::to_path_buf);
                if let Some(d) = dir {
                    let _ = std::fs::create_dir_all(&d);
                    add_watch(&adder, &d);
                }
                self.status.watch = Some(adder);
                tokio::spawn(async move {
                    let Ok(afd) = register_readable(reader) else { return };
                    let mut buf = [0u8; 4096];
                    // Drain what is there; the events themselves do not matter, only that
                    // something changed (the check compares the files' stamps). True: some were.
                    let drain = |fd: &std::os::fd::OwnedFd, buf: &mut [u8]| {
                        let mut any = false;
                        loop {
                            match rustix::io::read(fd, &mut *buf) {
                                Ok(n) if n > 0 => any = true,
                                Err(rustix::io::Errno::INTR) => {}
                                _ => return any,
                            }
                        }
                    };
                    loop {
                        let Ok(mut ready) = afd.readable().await else { return };
                        drain(afd.get_ref(), &mut buf);
                        ready.clear_ready();
                        // A file is mostly written in steps (emptied, then written): read it
                        // once the writes have stopped for a moment, not half way through.
                        for _ in 0..20 {
                            tokio::time::sleep(CONFIG_SETTLE).await;
                            if !drain(afd.get_ref(), &mut buf) {
                                break;
                            }
                        }
                        if !check() {
                            return;
                        }
                    }
                });
            }
            Err(e) => {
                warn!("cannot watch the config files ({e}); checking them every {CONFIG_CHECK:?}");
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(CONFIG_CHECK);
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        every.tick().await;
                        if !check() {
                            return;
                        }
                    }
                });
            }
        }
    }

    /// Watch the repository's root for its `.corral.toml` changing.
    fn watch_repo(&mut self, repo: &Path) {
        if let Some(w) = &self.status.watch
            && self.status.watched.insert(repo.to_path_buf())
        {
            add_watch(w, repo);
        }
    }

    /// Forget everything status knows of a removed agent.
    pub(super) fn forget_badge(&mut self, key: &Key) {
        self.status.badges.remove(key);
        self.status.delivered_at_seq.remove(key);
        self.status.delivering.remove(key);
        self.status.last_notice.retain(|(k, _), _| k != key);
    }

    /// Check every repository with running badges for config changes.
    pub(super) fn check_status_configs(&mut self) {
        let repos: BTreeSet<PathBuf> = self.status.badges.keys().map(|(r, _)| r.clone()).collect();
        for repo in repos {
            self.reload_status_config(repo, false);
        }
    }

    /// Reload `repo`'s status config off the session when its files changed (or when `force`).
    fn reload_status_config(&mut self, repo: PathBuf, force: bool) {
        if !self.status.checking.insert(repo.clone()) {
            // The read under way may have caught the file half written: look again after it.
            self.status.again.insert(repo);
            return;
        }
        let known = self.status.repos.get(&repo).map(|r| r.stamps);
        let root = repo.clone();
        off_session(
            &self.tx,
            move || {
                let now = (stamp(&paths::user_config_file()), stamp(&root.join(".corral.toml")));
                if !force && known == Some(now) {
                    return None;
                }
                Some(load_repo_status(&root))
            },
            move |s, result| {
                s.status.checking.remove(&repo);
                let again = s.status.again.remove(&repo);
                match result {
                    None => {}
                    Some(Ok(rs)) => {
                        info!("status config of {} (re)loaded", repo.display());
                        s.apply_repo_status(&repo, rs);
                    }
                    Some(Err(e)) => {
                        warn!("keeping the old status rules of {}: {e}", repo.display())
                    }
                }
                if again {
                    s.reload_status_config(repo, false);
                }
            },
        );
    }

    fn apply_repo_status(&mut self, repo: &Path, rs: RepoStatus) {
        for ((r, name), badge) in &self.status.badges {
            if r != repo {
                continue;
            }
            let Some(a) = self.agents.get(&(r.clone(), name.clone())) else { continue };
            if let Some(settings) = rs.profiles.get(&a.rec.profile) {
                badge.set_settings(settings.clone());
            }
        }
        self.status.repos.insert(repo.to_path_buf(), rs);
    }

    /// `ls`: the agent with the badge's status and the queue's length.
    pub(super) fn agent_info(&self, key: &Key, a: &Agent) -> AgentInfo {
        let mut info = info_of(a);
        info.queued = u32::try_from(a.rec.queue.len()).unwrap_or(u32::MAX);
        if a.phase == Phase::Starting || a.pane.is_none() {
            return info;
        }
        if let Some(b) = self.status.badges.get(key) {
            let v = b.view();
            info.status = v.status.as_str().into();
            info.status_since = v.since;
            info.status_reason = v.reason;
        }
        info
    }

    /// A transition of an agent's badge: notify, and deliver a queued message if it became idle.
    fn on_status(&mut self, key: &Key, run: u64, tr: &Transition, view: View) {
        let from = tr.from;
        let Some(a) = self.agents.get(key) else { return };
        if a.run != run {
            return;
        }
        debug!("agent {} is {} ({})", key.1, view.status, view.reason);
        let worth = match view.status {
            Status::NeedsInput | Status::Stuck | Status::Exited => true,
            // Not when it only undoes a key's working that the agent never confirmed.
            Status::Idle => matches!(from, Status::Working | Status::Stuck) && !tr.key_undone,
            Status::Starting | Status::Working => false,
        };
        if worth {
            self.notify(key, from, &view);
        }
        self.deliver_queued(key);
    }

    fn notify(&mut self, key: &Key, from: Status, view: &View) {
        let Some(a) = self.agents.get(key) else { return };
        let cfg = self.status.repos.get(&key.0).map(|r| r.config.clone()).unwrap_or_default();
        let now = Instant::now();
        let debounce = Duration::from_secs(cfg.notify_debounce_secs);
        let slot = (key.clone(), view.status);
        if self.status.last_notice.get(&slot).is_some_and(|t| now.duration_since(*t) < debounce) {
            debug!("not repeating {} for {} within {:?}", view.status, key.1, debounce);
            return;
        }
        self.status.last_notice.insert(slot, now);
        let notice = Notice {
            agent: key.1.clone(),
            repo: key.0.clone(),
            status: view.status,
            reason: view.reason.clone(),
        };
        if cfg.bell
            && let Some(tx) = &self.status.notices
        {
            let _ = tx.send(notice);
        }
        if let Some((program, args)) = cfg.notify_command.split_first() {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args)
                .env("CORRAL_AGENT", &key.1)
                .env("CORRAL_STATUS", view.status.as_str())
                .env("CORRAL_PREVIOUS_STATUS", from.as_str())
                .env("CORRAL_REASON", &view.reason)
                .env("CORRAL_REPO", &key.0)
                .env("CORRAL_WORKTREE", &a.rec.worktree)
                .env("CORRAL_BRANCH", &a.rec.branch)
                .current_dir(if a.rec.worktree.is_dir() { &a.rec.worktree } else { &key.0 })
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            match cmd.spawn() {
                Ok(mut child) => {
                    tokio::spawn(async move {
                        if tokio::time::timeout(NOTIFY_LIMIT, child.wait()).await.is_err() {
                            warn!("notify_command ran for {NOTIFY_LIMIT:?}; killing it");
                            let _ = child.kill().await;
                        }
                    });
                }
                Err(e) => warn!("cannot run notify_command {program}: {e}"),
            }
        }
    }

    /// Type the oldest queued message if the agent is idle and has been busy since the last one.
    fn deliver_queued(&mut self, key: &Key) {
        let Some(badge) = self.status.badges.get(key) else { return };
        let view = badge.view();
        if view.status != Status::Idle
            || self.status.delivering.contains(key)
            || self.status.delivered_at_seq.get(key).is_some_and(|s| *s >= view.seq)
        {
            return;
        }
        let Some(a) = self.agents.get_mut(key) else { return };
        let Some(pane) = a.pane.clone().filter(|p| !p.state().exited) else { return };
        if a.rec.queue.is_empty() {
            return;
        }
        let text = a.rec.queue.remove(0);
        info!("delivering a queued message to {} ({} left)", key.1, a.rec.queue.len());
        self.status.delivering.insert(key.clone());
        self.save(&key.0);
        let tx = self.tx.clone();
        let k = key.clone();
        let seq = view.seq;
        tokio::spawn(async move {
            crate::server::listener::type_text(&pane, &text, true).await;
            let _ = tx.send(SessionMsg::Run(Box::new(move |s: &mut Session| {
                s.status.delivering.remove(&k);
                s.status.delivered_at_seq.insert(k.clone(), seq);
                s.deliver_queued(&k);
            })));
        });
    }

    pub(super) fn hook(&mut self, target: &Target, event: &str, payload: &str) -> Outcome {
        let key = (target.repo.clone(), target.name.clone());
        if let Err(e) = self.agent(target) {
            return err(e);
        }
        match (status::hooks::interpret(event, payload), self.status.badges.get(&key)) {
            (Some((s, why)), Some(b)) => {
                debug!("hook {event} of {}: {s}", key.1);
                b.hook(s, why, status::hooks::ends_the_turn(event));
            }
            (None, _) => debug!("hook {event} of {} says nothing about its state", key.1),
            (_, None) => debug!("hook {event} of {}, which is not running", key.1),
        }
        Outcome::Reply(Reply::Ok)
    }

    pub(super) fn status_report(
        &mut self,
        target: &Target,
        explain: bool,
        reply: oneshot::Sender<Outcome>,
    ) {
        let key = (target.repo.clone(), target.name.clone());
        let a = match self.agent(target) {
            Ok(a) => a,
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        let info = self.agent_info(&key, a);
        let mut report = status::Report {
            name: info.name,
            status: info.status,
            status_since: info.status_since,
            status_reason: info.status_reason,
            signals: Vec::new(),
            rules: Vec::new(),
            queued: a.rec.queue.clone(),
        };
        self.reload_status_config(key.0.clone(), false);
        let badge = self.status.badges.get(&key).cloned();
        match (explain, badge) {
            (true, Some(b)) => {
                tokio::spawn(async move {
                    if let Some((signals, rules)) = b.explain().await {
                        report.signals = signals;
                        report.rules = rules;
                    }
                    let _ = reply.send(Outcome::Reply(Reply::Status(Box::new(report))));
                });
            }
            (true, None) => {
                report.signals.push("process: not running (no screen to read)".into());
                let _ = reply.send(Outcome::Reply(Reply::Status(Box::new(report))));
            }
            (false, _) => {
                let _ = reply.send(Outcome::Reply(Reply::Status(Box::new(report))));
            }
        }
    }

    pub(super) fn enqueue(&mut self, target: &Target, text: String) -> Outcome {
        let key = (target.repo.clone(), target.name.clone());
        if let Err(e) = self.agent(target) {
            return err(e);
        }
        if text.is_empty() {
            return err("nothing to queue: the message is empty");
        }
        let Some(a) = self.agents.get_mut(&key) else { return err("no such agent") };
        a.rec.queue.push(text);
        let n = a.rec.queue.len();
        self.save(&key.0);
        self.deliver_queued(&key);
        let still = self.agents.get(&key).map_or(0, |a| a.rec.queue.len());
        Outcome::Reply(Reply::Note(if still < n {
            format!("agent '{}' is idle: delivering it now", key.1)
        } else {
            format!("queued for agent '{}' ({n} waiting)", key.1)
        }))
    }

    pub(super) fn queue(&mut self, target: &Target, clear: bool, remove: Option<u32>) -> Outcome {
        let key = (target.repo.clone(), target.name.clone());
        if let Err(e) = self.agent(target) {
            return err(e);
        }
        let Some(a) = self.agents.get_mut(&key) else { return err("no such agent") };
        let mut changed = false;
        if clear {
            changed = !a.rec.queue.is_empty();
            a.rec.queue.clear();
        } else if let Some(n) = remove {
            let i = n as usize;
            if i == 0 || i > a.rec.queue.len() {
                return err(format!(
                    "agent '{}' has {} queued message(s); there is no number {n}",
                    key.1,
                    a.rec.queue.len()
                ));
            }
            a.rec.queue.remove(i - 1);
            changed = true;
        }
        let left = a.rec.queue.clone();
        if changed {
            self.save(&key.0);
        }
        Outcome::Reply(Reply::Queue(left))
    }
}
