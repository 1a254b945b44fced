//! One agent's status badge: a task that feeds the status engine from the agent's pane and hooks,
//! and publishes the status on a `watch` channel.
//!
//! It never scans in a loop: it wakes when the pane publishes a new generation (coalesced, at most
//! one screen read per [`MIN_GAP`]), when a hook or new rules arrive, and on a timer only for the
//! engine's own deadlines (the end of a quiet period, the stuck deadline). Before letting time make
//! an agent `stuck` it looks once for files changed in the worktree since its last progress (one
//! walk, stopped at the first newer file), rather than watching every worktree all the time.
//! The task ends when its [`BadgeHandle`] is dropped (the agent is removed or restarted).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use super::pane::{KeyPress, PaneHandle};
use crate::status::rules::RuleReport;
use crate::status::{Engine, KeyRules, RuleSet, Status, Timing, Transition};
use crate::term::TextCopy;
use crate::term::screen::{Screen, attr};

/// The least time between two reads of the screen: output arriving faster is read at this pace.
pub const MIN_GAP: Duration = Duration::from_millis(25);
/// Files looked at, at most, in one search for worktree changes.
const SCAN_LIMIT: usize = 200_000;

/// What a profile's status detection runs on.
#[derive(Debug, Default)]
pub struct Settings {
    pub rules: RuleSet,
    /// What keys the user sends do (Enter on a prompt, a key that approves a dialog).
    pub keys: KeyRules,
    pub timing: Timing,
}

/// The badge as others see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct View {
    pub status: Status,
    /// Unix seconds.
    pub since: u64,
    pub reason: String,
    /// Bumped on every transition.
    pub seq: u64,
}

enum Msg {
    Hook(Status, String, bool),
    Settings(Arc<Settings>),
    Explain(oneshot::Sender<(Vec<String>, Vec<RuleReport>)>),
}

#[derive(Clone)]
pub struct BadgeHandle {
    tx: mpsc::UnboundedSender<Msg>,
    view: watch::Receiver<View>,
}

impl BadgeHandle {
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A hook said the agent is in `status`; `ends_turn`: see `hooks::ends_the_turn`.
    pub fn hook(&self, status: Status, reason: String, ends_turn: bool) {
        let _ = self.tx.send(Msg::Hook(status, reason, ends_turn));
    }

    pub fn set_settings(&self, settings: Arc<Settings>) {
        let _ = self.tx.send(Msg::Settings(settings));
    }

    /// The engine's signals and every rule on the current screen.
    pub async fn explain(&self) -> Option<(Vec<String>, Vec<RuleReport>)> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Explain(tx)).ok()?;
        rx.await.ok()
    }
}

fn unix_of(at: Instant) -> u64 {
    super::session::unix_now().saturating_sub(at.elapsed().as_secs())
}

/// Start the badge of `pane`; `on_change` runs after each transition is published. `settings`:
/// None while the repository's config is still being read (they come with `set_settings`).
/// `resumed`: the badge a previous server showed for this process (`server --upgrade`).
pub fn start(
    pane: PaneHandle,
    settings: Option<Arc<Settings>>,
    worktree: PathBuf,
    on_change: Box<dyn Fn(Transition, View) + Send>,
    resumed: Option<View>,
) -> BadgeHandle {
    let now = Instant::now();
    let loading = settings.is_none();
    let settings = settings.unwrap_or_default();
    let mut engine = Engine::new(now, settings.timing);
    // Until the rules are read, quiet is not idle: the agent's rules may well say otherwise.
    engine.set_has_rules(loading || !settings.rules.is_empty());
    if let Some(v) = &resumed {
        engine.resume(now, v.status, v.reason.clone(), v.seq);
    }
    let (view_tx, view_rx) = watch::channel(View {
        status: engine.status(),
        since: resumed.as_ref().map_or_else(|| unix_of(now), |v| v.since),
        reason: engine.reason().to_string(),
        seq: engine.seq(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let badge = Badge {
        pane,
        settings,
        worktree,
        engine,
        text: TextCopy::default(),
        view: view_tx,
        on_change,
        exit_seen: false,
        scanned_for: None,
        typed_seen: None,
        reported: String::new(),
        rescan_at: None,
    };
    tokio::spawn(badge.run(rx));
    BadgeHandle { tx, view: view_rx }
}

struct Badge {
    pane: PaneHandle,
    settings: Arc<Settings>,
    worktree: PathBuf,
    engine: Engine,
    /// The screen's rows as text, as last read (only changed rows are read again).
    text: TextCopy,
    view: watch::Sender<View>,
    on_change: Box<dyn Fn(Transition, View) + Send>,
    exit_seen: bool,
    /// The stuck deadline already checked against the worktree's files.
    scanned_for: Option<Instant>,
    /// The pane's last typing stamp the engine was told of.
    typed_seen: Option<Instant>,
    /// The program's own report of its state (`OSC 7501`) the engine was last told of.
    reported: String,
    /// While stuck: when to look at the files again.
    rescan_at: Option<Instant>,
}

impl Badge {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut state = self.pane.subscribe();
        state.mark_changed();
        let mut seen_generation: Option<u64> = None;
        // The latest change not yet read from the screen, and when the screen was last read.
        let mut dirty: Option<Instant> = None;
        let mut last_read: Option<Instant> = None;
        let mut pane_gone = false;
        let mut tapped = self.settings.keys.keys(self.engine.status());
        let mut keys = self.pane.tap_keys(tapped.clone());
        loop {
            let now = Instant::now();
            let read_at = dirty.map(|_| last_read.map_or(now, |l| (l + MIN_GAP).max(now)));
            let wake = [read_at, self.engine.next_deadline(now), self.rescan_at]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                // Before messages sent after them (`status --explain` right after a key).
                Some(press) = keys.recv() => self.on_key(press),
                msg = rx.recv() => match msg {
                    None => return,
                    Some(Msg::Hook(status, reason, ends_turn)) => {
                        self.engine.on_hook(Instant::now(), status, reason, ends_turn);
                    }
                    Some(Msg::Settings(s)) => {
                        self.settings = s;
                        self.engine.set_timing(self.settings.timing);
                        self.engine.set_has_rules(!self.settings.rules.is_empty());
                        self.engine.on_rules(self.settings.rules.evaluate_titled(&self.text.rows, &self.text.title));
                    }
                    Some(Msg::Explain(reply)) => {
                        self.read_screen().await;
                        let now = Instant::now();
                        let mut signals = vec![format!(
                            "badge: {} since {} s ago ({})",
                            self.engine.status(),
                            now.saturating_duration_since(self.engine.since()).as_secs(),
                            self.engine.reason()
                        )];
                        signals.extend(self.engine.signals(now));
                        signals.push(if self.text.program_status.is_empty() {
                            "program status (OSC 7501): none reported".to_string()
                        } else {
                            format!("program status (OSC 7501): {}", self.text.program_status)
                        });
                        let _ = reply.send((signals, self.settings.rules.explain_titled(&self.text.rows, &self.text.title)));
                    }
                },
                // While a read is due anyway, further changes are not listened to: a flood would
                // otherwise wake this task (and a runtime thread) for every read from the PTY, on
                // the cores the program and the pane's reader need. What they did is seen by the
                // read; an exit, once it is done.
                changed = state.changed(), if !pane_gone && dirty.is_none() => {
                    if changed.is_err() {
                        pane_gone = true;
                    } else {
                        let st = state.borrow_and_update().clone();
                        if seen_generation != Some(st.generation) {
                            seen_generation = Some(st.generation);
                            dirty = Some(Instant::now());
                        }
                        if st.exited && !self.exit_seen {
                            self.exit_seen = true;
                            let code = st.exit_code.map_or("unknown".into(), |c| c.to_string());
                            self.engine.on_exit(format!("process: exited with code {code}"));
                        }
                    }
                },
                () = sleep => {}
            }
            let now = Instant::now();
            if let Some(changed_at) = dirty
                && last_read.is_none_or(|l| now >= l + MIN_GAP)
                && !self.exit_seen
            {
                dirty = None;
                last_read = Some(now);
                self.read_screen().await;
                // Typing seen with the change it echoed (the pane stamps it, nothing is sent).
                if let Some(at) = self.pane.typed_at()
                    && self.typed_seen != Some(at)
                {
                    self.typed_seen = Some(at);
                    self.engine.on_typed(at);
                }
                // The program's word on its state, like a hook's (before the screen that came
                // with it, so that screen is not news over it).
                if self.text.program_status != self.reported {
                    self.reported.clone_from(&self.text.program_status);
                    if let Some((status, ends_turn)) = reported_status(&self.reported) {
                        let reason = format!("program status: {}", self.reported.replace(':', " "));
                        self.engine.on_hook(changed_at, status, reason, ends_turn);
                    }
                }
                let eval = self.settings.rules.evaluate_titled(&self.text.rows, &self.text.title);
                self.engine.on_screen(changed_at, eval);
            }
            self.look_at_files(now).await;
            self.decide(Instant::now());
            // Keys that answer a dialog are listened for only while it shows.
            let wanted = self.settings.keys.keys(self.engine.status());
            if wanted != tapped {
                self.pane.set_tapped_keys(wanted.clone());
                tapped = wanted;
            }
        }
    }

    /// A key the rules listen for was written to the agent: what it does, read from the screen
    /// it was pressed on. (Typing is not sent: the pane stamps it, see `PaneHandle::typed_at`.)
    fn on_key(&mut self, press: KeyPress) {
        if self.exit_seen {
            return;
        }
        let rows = typed_rows(&press.screen);
        let shown = self.engine.status();
        if let Some(key) = self.settings.keys.evaluate(&press.key, &rows, shown) {
            self.engine.on_key(press.at, key);
        }
    }

    async fn read_screen(&mut self) {
        self.pane.update_text(&mut self.text);
    }

    /// Before time alone makes a working agent stuck, and now and then while it is stuck: did files
    /// in the worktree change since its last progress?
    async fn look_at_files(&mut self, now: Instant) {
        let due = match self.engine.status() {
            Status::Working => {
                let deadline = self.engine.stuck_deadline();
                now >= deadline && self.scanned_for != Some(deadline)
            }
            Status::Stuck => self.rescan_at.is_none_or(|r| now >= r),
            _ => {
                self.rescan_at = None;
                false
            }
        };
        if !due {
            return;
        }
        self.scanned_for = Some(self.engine.stuck_deadline());
        let since = SystemTime::now()
            .checked_sub(now.saturating_duration_since(self.engine.last_progress()))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let dir = self.worktree.clone();
        let changed =
            tokio::task::spawn_blocking(move || changed_since(&dir, since)).await.unwrap_or(false);
        if changed {
            self.engine.on_files_changed(Instant::now());
        }
        let every = (self.engine_timing().stuck_after / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        self.rescan_at = Some(Instant::now() + every);
    }

    fn engine_timing(&self) -> Timing {
        self.settings.timing
    }

    fn decide(&mut self, now: Instant) {
        let Some(tr) = self.engine.decide(now) else {
            // The reason may have been refined without a transition.
            if self.view.borrow().reason != self.engine.reason() {
                let reason = self.engine.reason().to_string();
                self.view.send_modify(|v| v.reason = reason);
            }
            return;
        };
        let view =
            View { status: tr.to, since: unix_of(tr.at), reason: tr.reason.clone(), seq: tr.seq };
        self.view.send_replace(view.clone());
        (self.on_change)(tr, view);
    }
}

/// The badge a program's report of its own state (`OSC 7501`, as the emulator keeps it) means,
/// and whether it says a turn just ended; None for a report that says nothing we show (cleared,
/// or a state this does not know).
fn reported_status(report: &str) -> Option<(Status, bool)> {
    let state = report.split(':').next().unwrap_or_default();
    match state {
        "working" => Some((Status::Working, false)),
        "blocked" => Some((Status::NeedsInput, false)),
        "done" => Some((Status::Idle, true)),
        "idle" => Some((Status::Idle, false)),
        _ => None,
    }
}

/// The screen's rows as text with faint cells left blank: agents draw an empty input box's
/// placeholder faint, and key rules must not take it for typed text.
fn typed_rows(screen: &Screen) -> Vec<String> {
    screen
        .lines
        .iter()
        .map(|line| {
            let mut s = String::with_capacity(line.cells.len());
            for cell in line.cells.iter().filter(|c| c.attrs & attr::WIDE_SPACER == 0) {
                if cell.attrs & attr::DIM != 0 {
                    s.push(' ');
                    continue;
                }
                s.push(cell.ch);
                if let Some(extra) = &cell.extra {
                    s.push_str(extra);
                }
            }
            s.truncate(s.trim_end_matches(' ').len());
            s
        })
        .collect()
}

/// Whether any file or directory under `dir` (`.git` left out) was modified after `since`. Stops
/// at the first one, and after [`SCAN_LIMIT`] entries.
fn changed_since(dir: &Path, since: SystemTime) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > SCAN_LIMIT {
                return false;
            }
            if entry.file_name() == ".git" {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.modified().is_ok_and(|m| m > since) {
                return true;
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules_do_not_see_a_faint_placeholder() {
        use crate::term::screen::{Cell, Line, Size};
        let line = |parts: &[(&str, u16)]| Line {
            cells: parts
                .iter()
                .flat_map(|(t, attrs)| {
                    t.chars().map(|ch| Cell { ch, attrs: *attrs, ..Cell::default() })
                })
                .collect(),
            wrapped: false,
        };
        let screen = Screen {
            size: Size::new(40, 2),
            lines: vec![
                line(&[("› ", attr::BOLD), ("Ask Codex to do anything", attr::DIM)]),
                line(&[("› ", attr::BOLD), ("fix the bug", 0)]),
            ],
            ..Screen::default()
        };
        assert_eq!(typed_rows(&screen), vec!["›".to_string(), "› fix the bug".to_string()]);
    }

    #[test]
    fn a_programs_report_of_its_state_is_a_badge() {
        assert_eq!(reported_status("working"), Some((Status::Working, false)));
        assert_eq!(reported_status("blocked:permission"), Some((Status::NeedsInput, false)));
        assert_eq!(reported_status("done"), Some((Status::Idle, true)));
        assert_eq!(reported_status("idle"), Some((Status::Idle, false)));
        assert_eq!(reported_status(""), None, "cleared: the screen and hooks decide");
        assert_eq!(reported_status("dreaming"), None);
    }

    #[test]
    fn changed_since_compares_modification_times() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".git/objects")).unwrap();
        std::fs::create_dir_all(tmp.path().join("src/deep")).unwrap();
        let before = SystemTime::now() + Duration::from_secs(3600);
        assert!(!changed_since(tmp.path(), before));
        let past = SystemTime::now() - Duration::from_secs(3600);
        assert!(changed_since(tmp.path(), past));
    }
}
