//! `update`: one message in, the state changed, effects out. No I/O and no clock: time comes in
//! the messages that need it. After every message the attachments are reconciled with what is on
//! screen, so exactly the visible agents stream their screens.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use super::action::Action;
use super::input::{encode_focus, encode_key, encode_mouse, encode_paste};
use super::keymap::{KeyMode, KeySpec};
use super::state::{
    AgentKey, AppState, Attachment, Dialog, DiffView, Effect, GateView, MergeDialog, Mode, Msg,
    NewDialog, NewField, Pending, RemoveDialog, Scroll, SendDialog, TextField, View, target,
};
use super::ui::{self, areas, list, pane::anchor, pane_size};
use crate::proto::{AgentInfo, MergeMode, NewAgent, Reply, Request};
use crate::term::{Modes, Screen};

/// A terminal being resized sends a burst of sizes; the agent follows only the last one.
pub const RESIZE_DEBOUNCE: Duration = Duration::from_millis(150);
/// The prefix key pressed again within this time of leaving focus sends itself to the agent.
pub const DOUBLE_PRESS: Duration = Duration::from_millis(500);
/// Lines per mouse wheel notch.
const WHEEL_LINES: isize = 3;

pub fn update(st: &mut AppState, msg: Msg) -> Vec<Effect> {
    let mut fx = Vec::new();
    match msg {
        Msg::Key(ev, now) => on_key(st, &ev, now, &mut fx),
        Msg::Upgradable(path) => {
            if st.upgradable != path {
                st.upgradable = path;
                st.dirty = true;
            }
        }
        Msg::Upgraded(refused) => match refused {
            Some(why) => st.info(format!("the server was not upgraded: {why}")),
            None => {
                st.upgradable = None;
                st.info("server upgraded; every agent kept running");
                fx.push(Effect::RefreshList);
            }
        },
        Msg::Mouse(ev) => on_mouse(st, &ev, &mut fx),
        Msg::Paste(text) => on_paste(st, &text, &mut fx),
        Msg::Focus(gained) => {
            if st.mode == Mode::Focus
                && let Some((id, modes)) = focused_input(st)
                && let Some(bytes) = encode_focus(gained, &modes)
            {
                fx.push(Effect::Input { id, bytes });
            }
        }
        Msg::Resize(cols, rows, now) => {
            st.area = Rect::new(0, 0, cols, rows);
            st.resize_due = Some(now + RESIZE_DEBOUNCE);
            st.dirty = true;
        }
        Msg::Tick(now) => {
            if st.resize_due.is_some_and(|due| now >= due) {
                st.resize_due = None;
                resize_viewed(st, &mut fx);
            }
        }
        Msg::Config(Ok(settings)) => {
            st.keymap = settings.keymap;
            st.profiles = settings.profiles;
            st.default_profile = settings.default_profile;
            st.config_error = None;
            st.dirty = true;
        }
        Msg::Config(Err(e)) => {
            // Said once in full; the footer keeps a short reminder until the file is fixed.
            if st.config_error.as_ref() != Some(&e) {
                st.error(format!("{e} (going on with the last good config)"));
                st.config_error = Some(e);
            }
        }
        Msg::Agents(Ok(list)) => {
            if st.server_error.take().is_some() {
                st.dirty = true;
            }
            st.local_agents = list;
            on_agents(st, all_agents(st));
            follow_gate(st, &mut fx);
        }
        Msg::Host { name, result, at } => on_host(st, name, result, at),
        Msg::Agents(Err(e)) => {
            if st.server_error.as_ref() != Some(&e) {
                st.server_error = Some(e);
                st.dirty = true;
            }
        }
        Msg::Screen(id, update) => {
            if let Some(key) = attachment_key(st, id) {
                let pane = st.panes.entry(key).or_default();
                pane.screen.get_or_insert_with(|| Screen::blank(update.size)).apply_owned(update);
                pane.note = None;
                st.dirty = true;
            }
        }
        Msg::Exited(id, code) => {
            if let Some(key) = attachment_key(st, id) {
                if let Some(a) = st.attachments.get_mut(&key) {
                    a.live = false;
                }
                let what = match code {
                    Some(c) => format!("{} exited with code {c}", key.1),
                    None => format!("{} exited", key.1),
                };
                st.panes.entry(key.clone()).or_default().note = Some(what.clone());
                if st.mode == Mode::Focus && st.selected.as_ref() == Some(&key) {
                    st.mode = Mode::Normal;
                    st.info(what);
                }
                st.dirty = true;
                fx.push(Effect::RefreshList);
            }
        }
        Msg::Bell(id) => {
            if attachment_key(st, id).is_some() {
                fx.push(Effect::Bell);
            }
        }
        Msg::AttachFailed(id, e) => {
            if let Some(key) = attachment_key(st, id) {
                // This machine's server went away (upgraded, or restarted): the attachment is
                // made again at the next list it answers. A host's come back when it does.
                let local = crate::hosts::split(&key.0).is_none();
                if local && (e.starts_with(LOST) || e.starts_with(NO_SERVER)) {
                    st.attachments.remove(&key);
                } else if let Some(a) = st.attachments.get_mut(&key) {
                    a.live = false;
                }
                st.panes.entry(key).or_default().note = Some(e);
                st.dirty = true;
            }
        }
        Msg::Reply(id, result) => on_reply(st, id, result, &mut fx),
        Msg::Gate(id, result) => {
            let rows = gate_rows(st);
            if let Mode::Gate(g) = &mut st.mode
                && g.pending == Some(id)
            {
                g.pending = None;
                match result {
                    Ok(text) => g.set_text(&text, rows),
                    Err(e) => g.error = Some(e),
                }
                st.dirty = true;
            }
        }
        Msg::Diff(id, result) => {
            if super::compare::on_diff(st, id, &result) {
                // The compare view's patch.
            } else if let Mode::Diff(d) = &mut st.mode
                && d.pending == Some(id)
            {
                d.pending = None;
                match result {
                    Ok(text) => d.set_patch(&text),
                    Err(e) => d.error = Some(e),
                }
                st.dirty = true;
            }
        }
    }
    reconcile(st, &mut fx);
    fx
}

/// How an attachment's failure starts when its connection to this machine's server broke, and
/// when no server answered the attach (app.rs words them).
pub(super) const LOST: &str = "lost the connection to the server";
pub(super) const NO_SERVER: &str = "no corral server is answering";

pub(crate) fn attachment_key(st: &AppState, id: u64) -> Option<AgentKey> {
    st.attachments.iter().find(|(_, a)| a.id == id && a.live).map(|(k, _)| k.clone())
}

fn modes_of(st: &AppState, key: &AgentKey) -> Modes {
    st.panes.get(key).and_then(|p| p.screen.as_ref()).map(|s| s.modes).unwrap_or_default()
}

/// The focused agent's attachment and input modes.
fn focused_input(st: &AppState) -> Option<(u64, Modes)> {
    let key = st.selected.as_ref()?;
    Some((st.live(key)?, modes_of(st, key)))
}

fn request(st: &mut AppState, pending: Pending, req: Request, fx: &mut Vec<Effect>) -> u64 {
    let id = st.next_id();
    st.pending.insert(id, pending);
    fx.push(Effect::Request(id, req));
    id
}

// ---- keys ----

fn on_key(st: &mut AppState, ev: &KeyEvent, now: Instant, fx: &mut Vec<Effect>) {
    if ev.kind == KeyEventKind::Release {
        return;
    }
    if st.notice.take().is_some() {
        st.dirty = true;
    }
    let spec = KeySpec::from_event(ev);
    match st.mode {
        Mode::Focus => focus_key(st, ev, spec, now, fx),
        Mode::Help => {
            st.mode = Mode::Normal;
            st.dirty = true;
        }
        Mode::Dialog(_) => dialog_key(st, ev, spec, fx),
        Mode::Diff(_) => diff_key(st, ev, spec, fx),
        Mode::Compare(_) => {
            let action = spec.and_then(|s| st.keymap.lookup(KeyMode::Normal, s));
            super::compare::key(st, ev, action, fx);
        }
        Mode::Gate(_) => gate_key(st, ev, spec),
        Mode::Normal => {
            let Some(spec) = spec else { return };
            let left = st.left_focus_at.take();
            if spec == st.keymap.prefix
                && left.is_some_and(|t| now.saturating_duration_since(t) <= DOUBLE_PRESS)
            {
                // The second press of the prefix: the user meant the key itself.
                if let Some((id, modes)) = focused_input(st) {
                    st.mode = Mode::Focus;
                    st.dirty = true;
                    if let Some(bytes) = encode_key(ev, &modes) {
                        fx.push(Effect::Input { id, bytes });
                    }
                }
                return;
            }
            if let Some(a) = st.keymap.lookup(KeyMode::Normal, spec) {
                run_action(st, a, fx);
            }
        }
    }
}

fn focus_key(
    st: &mut AppState,
    ev: &KeyEvent,
    spec: Option<KeySpec>,
    now: Instant,
    fx: &mut Vec<Effect>,
) {
    let Some(key) = st.selected.clone() else {
        st.mode = Mode::Normal;
        return;
    };
    if spec == Some(st.keymap.prefix) {
        st.mode = Mode::Normal;
        st.left_focus_at = Some(now);
        st.dirty = true;
        return;
    }
    if let Some(a) = spec.and_then(|s| st.keymap.lookup(KeyMode::Focus, s)) {
        run_action(st, a, fx);
        return;
    }
    let Some(id) = st.live(&key) else { return };
    if let Some(bytes) = encode_key(ev, &modes_of(st, &key)) {
        to_live(st, &key);
        fx.push(Effect::Input { id, bytes });
    }
}

/// Typing into an agent shows its live screen again, as a terminal does.
fn to_live(st: &mut AppState, key: &AgentKey) {
    if let Some(p) = st.panes.get_mut(key)
        && p.scroll.take().is_some()
    {
        st.dirty = true;
    }
}

fn run_action(st: &mut AppState, a: Action, fx: &mut Vec<Effect>) {
    match a {
        Action::Upgrade => match st.upgradable.clone() {
            Some(path) => {
                st.info(format!("upgrading the server to {}…", path.display()));
                fx.push(Effect::Upgrade(path));
            }
            None => st.info("the server runs the newest corral on disk already"),
        },
        Action::Up => step(st, -1),
        Action::Down => step(st, 1),
        Action::Jump(n) => {
            if let Some(k) = st.agents.get(usize::from(n).saturating_sub(1)).map(AppState::key_of) {
                select(st, k);
            }
        }
        Action::Focus => focus(st, fx),
        Action::Grid => {
            st.view = if st.view == View::Grid { View::List } else { View::Grid };
            st.dirty = true;
        }
        Action::New => open_new(st),
        Action::Send | Action::Queue => {
            if let Some(k) = st.selected.clone() {
                st.mode = Mode::Dialog(Dialog::Send(SendDialog {
                    agent: k,
                    text: TextField::default(),
                    queue: a == Action::Queue,
                    error: None,
                    pending: None,
                }));
                st.dirty = true;
            }
        }
        Action::Stop => {
            if let Some(k) = st.selected.clone() {
                let t = target(&k);
                st.info(format!("stopping {}…", k.1));
                request(st, Pending::Stop(k), Request::Stop { target: t }, fx);
            }
        }
        Action::Restart => {
            if let Some(k) = st.selected.clone() {
                let t = target(&k);
                st.info(format!("restarting {}…", k.1));
                let env = st.env.clone();
                request(st, Pending::Restart(k), Request::Restart { target: t, env }, fx);
            }
        }
        Action::Remove => {
            if let Some(k) = st.selected.clone() {
                st.mode = Mode::Dialog(Dialog::Remove(RemoveDialog {
                    agent: k,
                    refusal: None,
                    pending: None,
                }));
                st.dirty = true;
            }
        }
        Action::Merge => {
            if let Some(k) = st.selected.clone() {
                st.mode = Mode::Dialog(Dialog::Merge(MergeDialog {
                    agent: k,
                    conflict: None,
                    error: None,
                    pending: None,
                }));
                st.dirty = true;
            }
        }
        Action::Diff => {
            let Some(k) = st.selected.clone() else { return };
            let Some(a) = st.agent(&k) else { return };
            let (worktree, base) = (a.worktree.clone(), a.base.clone());
            let id = st.next_id();
            let remote = crate::hosts::split(&k.0).is_some().then(|| target(&k));
            st.mode = Mode::Diff(DiffView {
                agent: k,
                lines: Vec::new(),
                files: Vec::new(),
                offset: 0,
                pending: Some(id),
                error: None,
                review: Default::default(),
            });
            st.dirty = true;
            if let Some(target) = remote {
                // The worktree is on that host: its server makes the patch.
                let req = Request::Diff { target, stat: false, colour: false, width: 80 };
                fx.push(Effect::Request(id, req));
            } else {
                fx.push(Effect::Diff { id, worktree, base });
            }
        }
        Action::GateOutput => {
            let Some(k) = st.selected.clone() else { return };
            let Some(a) = st.agent(&k) else { return };
            let Some((path, state)) =
                a.landing.as_ref().and_then(|l| Some((l.gate_log.clone()?, l.state.clone())))
            else {
                let how = st
                    .keymap
                    .first_key(KeyMode::Normal, Action::Land)
                    .map_or_else(|| "`corral land`".to_string(), |k| k.to_string());
                st.info(format!("{}'s landing gate has not run: land it with {how} first", k.1));
                return;
            };
            let id = st.next_id();
            st.mode = Mode::Gate(GateView {
                agent: k.clone(),
                path: path.clone(),
                lines: Vec::new(),
                offset: 0,
                follow: true,
                state,
                pending: Some(id),
                error: None,
            });
            st.dirty = true;
            fx.push(read_gate(&k, id, path));
        }
        Action::Sync => {
            if let Some(k) = st.selected.clone() {
                let t = target(&k);
                st.info(format!("syncing {} with its base…", k.1));
                let git_env = crate::git::identity_env(&st.env);
                request(st, Pending::Sync(k), Request::Sync { target: t, git_env }, fx);
            }
        }
        Action::Compare => super::compare::open(st, fx),
        Action::Land => {
            if let Some(k) = st.selected.clone() {
                st.info(format!("queueing {} for landing…", k.1));
                let req = Request::Land {
                    repo: k.0.clone(),
                    names: vec![k.1.clone()],
                    mode: MergeMode::Merge,
                    keep: false,
                    git_env: crate::git::identity_env(&st.env),
                };
                request(st, Pending::Land(k), req, fx);
            }
        }
        Action::Help => {
            st.mode = Mode::Help;
            st.dirty = true;
        }
        Action::Quit => {
            st.quit = true;
            fx.push(Effect::Quit);
        }
        Action::ScrollUp => {
            let half = (areas(st).pane.height / 2).max(1) as isize;
            scroll(st, half, fx);
        }
        Action::ScrollDown => {
            let half = (areas(st).pane.height / 2).max(1) as isize;
            scroll(st, -half, fx);
        }
        Action::ScrollBottom => {
            if let Some(k) = st.viewed().cloned() {
                to_live(st, &k);
            }
        }
        Action::Submit
        | Action::Cancel
        | Action::NextField
        | Action::PrevField
        | Action::Force
        | Action::None => {}
    }
}

fn select(st: &mut AppState, key: AgentKey) {
    if st.selected.as_ref() != Some(&key) {
        if let Some(old) = st.selected.take()
            && let Some(p) = st.panes.get_mut(&old)
        {
            p.scroll = None;
        }
        st.selected = Some(key);
        st.dirty = true;
    }
}

fn step(st: &mut AppState, delta: isize) {
    if st.agents.is_empty() {
        return;
    }
    let cur = st.selected.as_ref().and_then(|k| st.index_of(k));
    let next = match cur {
        None => 0,
        Some(i) => (i as isize + delta).clamp(0, st.agents.len() as isize - 1) as usize,
    };
    let k = AppState::key_of(&st.agents[next]);
    select(st, k);
}

fn focus(st: &mut AppState, fx: &mut Vec<Effect>) {
    let Some(key) = st.selected.clone() else { return };
    let Some(a) = st.agent(&key) else { return };
    if a.pid.is_none() {
        let how = st
            .keymap
            .first_key(KeyMode::Normal, Action::Restart)
            .map_or_else(String::new, |k| format!("; {k} restarts it"));
        let what = if a.status == "starting" { "is still starting" } else { "is not running" };
        st.error(format!("{} {what}{how}", key.1));
        return;
    }
    st.mode = Mode::Focus;
    st.dirty = true;
    // Working in an agent is when it takes the size it is shown at (as `attach` does).
    if let Some(id) = st.live(&key) {
        let size = pane_size(st);
        let current = st.panes.get(&key).and_then(|p| p.screen.as_ref()).map(|s| s.size);
        if current != Some(size) {
            fx.push(Effect::Resize { id, size });
        }
    }
}

fn resize_viewed(st: &mut AppState, fx: &mut Vec<Effect>) {
    let Some(key) = st.viewed().cloned() else { return };
    let Some(id) = st.live(&key) else { return };
    let size = pane_size(st);
    let current = st.panes.get(&key).and_then(|p| p.screen.as_ref()).map(|s| s.size);
    if current != Some(size) {
        fx.push(Effect::Resize { id, size });
    }
}

/// Scroll the viewed agent's history `lines` back (negative: forward). History is fetched from
/// the server as far as needed, in growing chunks, one request at a time.
fn scroll(st: &mut AppState, lines: isize, fx: &mut Vec<Effect>) {
    let Some(key) = st.viewed().cloned() else { return };
    let rows = usize::from(areas(st).pane.height.max(1));
    let pane = st.panes.entry(key.clone()).or_default();
    let sc = pane.scroll.get_or_insert_with(Scroll::default);
    let mut offset = (sc.offset as isize + lines).max(0) as usize;
    if sc.complete {
        offset = offset.min(sc.lines.len().saturating_sub(rows));
    }
    st.dirty = true;
    if offset == 0 {
        pane.scroll = None;
        return;
    }
    sc.offset = offset;
    fetch_history(st, &key, rows, fx);
}

fn fetch_history(st: &mut AppState, key: &AgentKey, rows: usize, fx: &mut Vec<Effect>) {
    let Some(sc) = st.panes.get(key).and_then(|p| p.scroll.as_ref()) else { return };
    if sc.complete || sc.fetching.is_some() || sc.lines.len() >= sc.offset + rows {
        return;
    }
    let want = ((sc.offset + rows) * 2).max(500).min(u32::MAX as usize) as u32;
    let id = request(
        st,
        Pending::Scroll(key.clone(), want),
        Request::Tail { target: target(key), lines: want },
        fx,
    );
    if let Some(sc) = st.panes.get_mut(key).and_then(|p| p.scroll.as_mut()) {
        sc.fetching = Some(id);
    }
}

/// Lines a page of the diff view scrolls.
fn diff_page(st: &AppState) -> isize {
    (areas(st).main.height / 2).max(1) as isize
}

/// The diff view's keys: review keys first (`super::review`); the list's movement keys move the
/// cursor, the view following it; its own key, cancel-like keys and quit close it (quit only
/// closes the view: leaving the dashboard from here would surprise).
fn diff_key(st: &mut AppState, ev: &KeyEvent, spec: Option<KeySpec>, fx: &mut Vec<Effect>) {
    let page = diff_page(st);
    let action = spec.and_then(|s| st.keymap.lookup(KeyMode::Normal, s));
    if super::review::key(st, ev, action, fx) {
        return;
    }
    let rows = match &st.mode {
        Mode::Diff(d) => {
            let height = areas(st).main.height.saturating_sub(2);
            super::review::layout(height, d.files.len(), false).1
        }
        _ => return,
    };
    let Mode::Diff(d) = &mut st.mode else { return };
    st.dirty = true;
    let delta = match (action, ev.code) {
        (Some(Action::Diff | Action::Quit | Action::ScrollBottom), _) | (_, KeyCode::Esc) => {
            st.mode = Mode::Normal;
            return;
        }
        (Some(Action::Up), _) => -1,
        (Some(Action::Down), _) => 1,
        (Some(Action::ScrollUp), _) => -page,
        (Some(Action::ScrollDown), _) | (_, KeyCode::Char(' ')) => page,
        (_, KeyCode::Home) => isize::MIN / 2,
        (_, KeyCode::End) => isize::MAX / 2,
        _ => return,
    };
    super::review::move_cursor(d, delta, rows);
}

/// What a key does in a full-screen text view (diff, gate output).
enum ScrollKey {
    Close,
    By(isize),
}

/// The list's movement keys scroll by a line or `page`, `Home`/`End` to either end; the view's own
/// key, cancel-like keys and quit close it (quit only closes the view: leaving the dashboard from
/// here would surprise).
fn scroll_key(
    action: Option<Action>,
    code: KeyCode,
    own: Action,
    page: isize,
) -> Option<ScrollKey> {
    Some(match (action, code) {
        (Some(a), _) if a == own => ScrollKey::Close,
        (Some(Action::Quit | Action::ScrollBottom), _) | (_, KeyCode::Esc) => ScrollKey::Close,
        (Some(Action::Up), _) => ScrollKey::By(-1),
        (Some(Action::Down), _) => ScrollKey::By(1),
        (Some(Action::ScrollUp), _) => ScrollKey::By(-page),
        (Some(Action::ScrollDown), _) | (_, KeyCode::Char(' ')) => ScrollKey::By(page),
        (_, KeyCode::Home) => ScrollKey::By(isize::MIN / 2),
        (_, KeyCode::End) => ScrollKey::By(isize::MAX / 2),
        _ => return None,
    })
}

/// Read an agent's gate log: here, or through the server of the host the agent is on (its state
/// dir is there).
fn read_gate(key: &AgentKey, id: u64, path: std::path::PathBuf) -> Effect {
    if crate::hosts::split(&key.0).is_some() {
        Effect::Request(id, Request::GateLog { target: target(key) })
    } else {
        Effect::ReadGate { id, path }
    }
}

/// The log lines the gate view has room for.
fn gate_rows(st: &AppState) -> usize {
    usize::from(areas(st).main.height.saturating_sub(3)).max(1)
}

/// The gate view's keys, like the diff view's: scrolling back stops following the output, the
/// end (or `End`) follows it again.
fn gate_key(st: &mut AppState, ev: &KeyEvent, spec: Option<KeySpec>) {
    let page = diff_page(st);
    let rows = gate_rows(st);
    let action = spec.and_then(|s| st.keymap.lookup(KeyMode::Normal, s));
    let Mode::Gate(g) = &mut st.mode else { return };
    st.dirty = true;
    let delta = match scroll_key(action, ev.code, Action::GateOutput, page) {
        Some(ScrollKey::Close) => {
            st.mode = Mode::Normal;
            return;
        }
        Some(ScrollKey::By(d)) => d,
        None => return,
    };
    scroll_gate(g, delta, rows);
}

fn scroll_gate(g: &mut GateView, delta: isize, rows: usize) {
    let max = g.lines.len().saturating_sub(rows) as isize;
    g.offset = (g.offset as isize).saturating_add(delta).clamp(0, max) as usize;
    g.follow = g.offset as isize >= max;
}

/// While the gate view is open, every listing of the agents reads its log again if the gate is
/// still running (or has run again): the view follows the output as `tail -f` would, at the
/// list's pace.
fn follow_gate(st: &mut AppState, fx: &mut Vec<Effect>) {
    let Mode::Gate(g) = &st.mode else { return };
    if g.pending.is_some() {
        return;
    }
    let landing = st.agents.iter().find(|a| a.repo == g.agent.0 && a.name == g.agent.1);
    let (state, path) = match landing.and_then(|a| a.landing.as_ref()) {
        Some(l) => (l.state.clone(), l.gate_log.clone()),
        // Gone from the list after its gate: it landed (or was removed); the log stays readable.
        None => ("landed".to_string(), None),
    };
    let was_running = g.state == "gating";
    let id = st.next_id();
    let Mode::Gate(g) = &mut st.mode else { return };
    if g.state != state {
        g.state = state;
        st.dirty = true;
    }
    if let Some(p) = path {
        g.path = p;
    }
    // One more read after the gate ends picks up its last lines.
    if was_running || g.state == "gating" {
        g.pending = Some(id);
        fx.push(read_gate(&g.agent, id, g.path.clone()));
    }
}

fn scroll_diff(d: &mut DiffView, delta: isize) {
    let max = d.lines.len().saturating_sub(1) as isize;
    d.offset = (d.offset as isize).saturating_add(delta).clamp(0, max) as usize;
}

// ---- dialogs ----

fn open_new(st: &mut AppState) {
    if st.repo.is_none() && st.hosts.is_empty() {
        st.error("the dashboard was not opened in a git repository, so new agents have nowhere to go; run corral inside one (or with --repo)");
        return;
    }
    st.mode = Mode::Dialog(Dialog::New(Box::default()));
    st.dirty = true;
}

/// Line editing in a text field; returns whether the key was used.
pub(super) fn edit(f: &mut TextField, ev: &KeyEvent) -> bool {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    let alt = ev.modifiers.contains(KeyModifiers::ALT);
    match ev.code {
        KeyCode::Char(c) if !ctrl && !alt => f.insert(c.encode_utf8(&mut [0; 4])),
        KeyCode::Char('u') if ctrl => f.kill_start(),
        KeyCode::Char('w') if ctrl => f.kill_word(),
        KeyCode::Char('a') if ctrl => f.home(),
        KeyCode::Char('e') if ctrl => f.end(),
        KeyCode::Backspace => f.backspace(),
        KeyCode::Delete => f.delete(),
        KeyCode::Left => f.left(),
        KeyCode::Right => f.right(),
        KeyCode::Home => f.home(),
        KeyCode::End => f.end(),
        _ => return false,
    }
    true
}

fn dialog_key(st: &mut AppState, ev: &KeyEvent, spec: Option<KeySpec>, fx: &mut Vec<Effect>) {
    let action = spec.and_then(|s| st.keymap.lookup(KeyMode::Dialog, s));
    let profiles = st.profiles.clone();
    let default_profile = st.default_profile.clone();
    let st_hosts = &st.hosts;
    let Mode::Dialog(d) = &mut st.mode else { return };
    st.dirty = true;
    let busy = match d {
        Dialog::New(n) => n.pending.is_some(),
        Dialog::Send(s) => s.pending.is_some(),
        Dialog::Remove(r) => r.pending.is_some(),
        Dialog::Merge(m) => m.pending.is_some(),
    };
    if busy {
        // Waiting for the server: only closing the dialog makes sense.
        if action == Some(Action::Cancel) {
            st.mode = Mode::Normal;
        }
        return;
    }
    match d {
        Dialog::New(n) => {
            if n.focus == NewField::Profile
                && matches!(ev.code, KeyCode::Left | KeyCode::Right)
                && !profiles.is_empty()
            {
                let shown = match n.profile.text.trim() {
                    "" => default_profile.as_str(),
                    p => p,
                };
                let cur = profiles.iter().position(|p| p == shown);
                let len = profiles.len();
                let next = match (cur, ev.code) {
                    (None, _) => 0,
                    (Some(i), KeyCode::Right) => (i + 1) % len,
                    (Some(i), _) => (i + len - 1) % len,
                };
                n.profile = TextField::offered(&profiles[next]);
                return;
            }
            if n.focus == NewField::Where && matches!(ev.code, KeyCode::Left | KeyCode::Right) {
                // Here, then each repository another host has agents in.
                let mut places = vec![String::new()];
                places.extend(new_places(st_hosts));
                let cur = places.iter().position(|p| *p == n.place.text.trim()).unwrap_or(0);
                let len = places.len();
                let next =
                    if ev.code == KeyCode::Right { (cur + 1) % len } else { (cur + len - 1) % len };
                n.place = TextField::offered(&places[next]);
                return;
            }
            if edit(n.field_mut(n.focus), ev) {
                n.error = None;
                return;
            }
            let i = NewField::ALL.iter().position(|f| *f == n.focus).unwrap_or(0);
            let len = NewField::ALL.len();
            match action {
                Some(Action::NextField) => n.focus = NewField::ALL[(i + 1) % len],
                Some(Action::PrevField) => n.focus = NewField::ALL[(i + len - 1) % len],
                _ => {}
            }
        }
        Dialog::Send(s) => {
            if edit(&mut s.text, ev) {
                s.error = None;
                return;
            }
            if matches!(action, Some(Action::NextField | Action::PrevField)) {
                s.queue = !s.queue;
                return;
            }
        }
        Dialog::Remove(_) | Dialog::Merge(_) => {}
    }
    match action {
        Some(Action::Cancel) => st.mode = Mode::Normal,
        Some(Action::Submit) => submit(st, false, fx),
        Some(Action::Force) => submit(st, true, fx),
        _ => {}
    }
}

/// The repositories on other hosts that have agents, as `HOST:/path`, for the new dialog's
/// Where field.
fn new_places(hosts: &std::collections::BTreeMap<String, super::state::HostView>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in hosts.values() {
        for a in &h.agents {
            let p = a.repo.display().to_string();
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// What the server will be asked to create, or which field is wrong and why. Checks what can be
/// known here (the base branch only the server can check, and does before creating anything).
pub fn validate_new(st: &AppState, d: &NewDialog) -> Result<NewAgent, (NewField, String)> {
    let place = d.place.text.trim();
    let remote = !place.is_empty();
    let repo = if !remote {
        st.repo.clone().ok_or_else(|| {
            (
                NewField::Where,
                "the dashboard is not in a git repository: give HOST:/path".to_string(),
            )
        })?
    } else {
        match crate::hosts::split(std::path::Path::new(place)) {
            Some((host, _)) if st.hosts.contains_key(&host) => std::path::PathBuf::from(place),
            Some((host, _)) => {
                let known: Vec<&str> = st.hosts.keys().map(String::as_str).collect();
                return Err((
                    NewField::Where,
                    format!("no host '{host}' in your config (hosts: {})", known.join(", ")),
                ));
            }
            None => {
                return Err((
                    NewField::Where,
                    format!(
                        "'{place}': leave it empty for this repository, or give HOST:/path/to/repo"
                    ),
                ));
            }
        }
    };
    let count_text = d.count.text.trim();
    let count = if count_text.is_empty() {
        1
    } else {
        match count_text.parse::<u32>() {
            Ok(n @ 1..=50) => n,
            _ => {
                return Err((
                    NewField::Count,
                    format!("count '{count_text}' must be a number from 1 to 50"),
                ));
            }
        }
    };
    let prompt = d.prompt.text.trim();
    if prompt.is_empty() && count > 1 {
        return Err((
            NewField::Prompt,
            format!(
                "a prompt is required to start {count} agents: without one they are {count} copies of the same empty session"
            ),
        ));
    }
    let profile = match d.profile.text.trim() {
        "" => st.default_profile.clone(),
        p => p.to_string(),
    };
    // A host has its own profiles: its server checks the name.
    if !remote && !st.profiles.is_empty() && !st.profiles.contains(&profile) {
        return Err((
            NewField::Profile,
            format!("no agent profile '{profile}' (profiles: {})", st.profiles.join(", ")),
        ));
    }
    let args = shell_words::split(d.args.text.trim())
        .map_err(|e| (NewField::Args, format!("arguments '{}': {e}", d.args.text.trim())))?;
    let name = d.name.text.trim();
    if !name.is_empty() {
        crate::server::names::validate(name).map_err(|e| (NewField::Name, e))?;
        if st.agents.iter().any(|a| a.repo == repo && a.name == name) {
            return Err((
                NewField::Name,
                format!("an agent named '{name}' already exists in this repository"),
            ));
        }
    }
    let base = d.base.text.trim();
    if base.contains(char::is_whitespace) {
        return Err((
            NewField::Base,
            format!("base '{base}' has spaces; name a branch, tag or commit"),
        ));
    }
    Ok(NewAgent {
        repo,
        prompt: (!prompt.is_empty()).then(|| prompt.to_string()),
        profile: Some(profile),
        name: (!name.is_empty()).then(|| name.to_string()),
        base: (!base.is_empty()).then(|| base.to_string()),
        count,
        size: Some(pane_size(st)),
        // Agents on a host get that host's environment (see `corral --host`).
        env: if remote { Vec::new() } else { st.env.clone() },
        worktree: None,
        colors: None,
        args,
    })
}

fn submit(st: &mut AppState, force: bool, fx: &mut Vec<Effect>) {
    let Mode::Dialog(d) = &st.mode else { return };
    match d.clone() {
        Dialog::New(n) => match validate_new(st, n.as_ref()) {
            Ok(req) => {
                let repo = req.repo.clone();
                let id = request(st, Pending::New(repo), Request::New(req), fx);
                if let Mode::Dialog(Dialog::New(n)) = &mut st.mode {
                    n.pending = Some(id);
                    n.error = None;
                }
            }
            Err((field, e)) => {
                if let Mode::Dialog(Dialog::New(n)) = &mut st.mode {
                    n.focus = field;
                    n.error = Some(e);
                }
            }
        },
        Dialog::Send(s) => {
            if s.text.text.trim().is_empty() {
                if let Mode::Dialog(Dialog::Send(s)) = &mut st.mode {
                    s.error = Some("type a message first; an empty message is not sent".into());
                }
                return;
            }
            let (req, pending) = if s.queue {
                let req = Request::Enqueue { target: target(&s.agent), text: s.text.text.clone() };
                (req, Pending::Enqueue(s.agent.clone()))
            } else {
                let req = Request::Send {
                    target: target(&s.agent),
                    text: s.text.text.clone(),
                    enter: true,
                };
                (req, Pending::Send(s.agent.clone()))
            };
            let id = request(st, pending, req, fx);
            if let Mode::Dialog(Dialog::Send(s)) = &mut st.mode {
                s.pending = Some(id);
            }
        }
        Dialog::Remove(r) => {
            // Force only once the server has said why not: it must be a deliberate second step.
            if force && r.refusal.is_none() {
                return;
            }
            let git_env = crate::git::identity_env(&st.env);
            let req = Request::Remove { target: target(&r.agent), force, git_env };
            let id = request(st, Pending::Remove(r.agent.clone(), force), req, fx);
            if let Mode::Dialog(Dialog::Remove(r)) = &mut st.mode {
                r.pending = Some(id);
            }
        }
        Dialog::Merge(m) => {
            if force {
                return;
            }
            // The dialog says when the agent is working, so confirming it is the explicit "yes"
            // the server wants before stopping a working agent to land its work.
            let yes = merge_needs_yes(st, &m.agent);
            let req = Request::Merge {
                target: target(&m.agent),
                mode: MergeMode::Merge,
                keep: false,
                message: None,
                yes,
                git_env: crate::git::identity_env(&st.env),
            };
            let id = request(st, Pending::Merge(m.agent.clone()), req, fx);
            if let Mode::Dialog(Dialog::Merge(m)) = &mut st.mode {
                m.pending = Some(id);
                m.conflict = None;
                m.error = None;
            }
        }
    }
}

/// The agent is working: merging stops it mid-task, which the merge dialog warns about.
pub fn merge_needs_yes(st: &AppState, key: &AgentKey) -> bool {
    st.agent(key).is_some_and(|a| a.status == "working")
}

fn on_reply(st: &mut AppState, id: u64, result: Result<Reply, String>, fx: &mut Vec<Effect>) {
    // The gate log of an agent on another host, read by its server.
    let rows = gate_rows(st);
    if let Mode::Gate(g) = &mut st.mode
        && g.pending == Some(id)
    {
        g.pending = None;
        match result {
            Ok(Reply::Text(text)) => g.set_text(&text, rows),
            Ok(other) => g.error = Some(format!("unexpected answer: {other:?}")),
            Err(e) => g.error = Some(e),
        }
        st.dirty = true;
        return;
    }
    // The patch of an agent on another host, made by its server.
    if let Mode::Diff(d) = &mut st.mode
        && d.pending == Some(id)
    {
        d.pending = None;
        match result {
            Ok(Reply::Text(text)) => d.set_patch(&text),
            Ok(other) => d.error = Some(format!("unexpected answer to diff: {other:?}")),
            Err(e) => d.error = Some(e),
        }
        st.dirty = true;
        return;
    }
    let Some(pending) = st.pending.remove(&id) else { return };
    st.dirty = true;
    // The dialog that is waiting for this reply, if it is still open.
    let waiting = match &st.mode {
        Mode::Dialog(Dialog::New(d)) => d.pending == Some(id),
        Mode::Dialog(Dialog::Send(d)) => d.pending == Some(id),
        Mode::Dialog(Dialog::Remove(d)) => d.pending == Some(id),
        Mode::Dialog(Dialog::Merge(d)) => d.pending == Some(id),
        _ => false,
    };
    match (pending, result) {
        (Pending::Scroll(key, asked), result) => {
            let rows = usize::from(areas(st).pane.height.max(1));
            let Some(p) = st.panes.get_mut(&key) else { return };
            let Some(sc) = p.scroll.as_mut().filter(|sc| sc.fetching == Some(id)) else { return };
            sc.fetching = None;
            match result {
                Ok(Reply::Lines(lines)) => {
                    sc.complete = (lines.len() as u64) < u64::from(asked);
                    sc.lines = lines;
                    let max = sc.lines.len().saturating_sub(rows);
                    if sc.complete && sc.offset > max {
                        sc.offset = max;
                    }
                    if sc.offset == 0 {
                        p.scroll = None;
                    } else {
                        fetch_history(st, &key, rows, fx);
                    }
                }
                Ok(other) => {
                    p.scroll = None;
                    st.error(format!("unexpected answer to a history request: {other:?}"));
                }
                Err(e) => {
                    p.scroll = None;
                    st.error(e);
                }
            }
        }
        (Pending::New(repo), Ok(reply)) => {
            let names = match reply {
                Reply::Created(names) => names,
                _ => Vec::new(),
            };
            if waiting {
                st.mode = Mode::Normal;
            }
            if let Some(first) = names.first() {
                st.select_when_listed = Some((repo, first.clone()));
            }
            st.info(format!("created {}", names.join(", ")));
            fx.push(Effect::RefreshList);
        }
        (Pending::New(_), Err(e)) => {
            if waiting && let Mode::Dialog(Dialog::New(d)) = &mut st.mode {
                d.pending = None;
                d.error = Some(e);
            } else {
                st.error(format!("new agent: {e}"));
            }
        }
        (Pending::Review(key), result) => super::review::on_reply(st, id, &key, result),
        (p @ (Pending::Compare | Pending::Pick(_)), result) => {
            super::compare::on_reply(st, id, p, result, fx)
        }
        (Pending::Send(key), Ok(_)) => {
            if waiting {
                st.mode = Mode::Normal;
            }
            st.info(format!("sent to {}", key.1));
        }
        (Pending::Enqueue(key), Ok(reply)) => {
            if waiting {
                st.mode = Mode::Normal;
            }
            match reply {
                Reply::Note(n) => st.info(format!("queued for {}: {n}", key.1)),
                _ => st.info(format!("queued for {}", key.1)),
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Send(key) | Pending::Enqueue(key), Err(e)) => {
            if waiting && let Mode::Dialog(Dialog::Send(d)) = &mut st.mode {
                d.pending = None;
                d.error = Some(e);
            } else {
                st.error(format!("send to {}: {e}", key.1));
            }
        }
        (Pending::Sync(key), Ok(Reply::Conflict(paths))) => {
            st.error(format!(
                "syncing {} would conflict in {}; nothing was changed",
                key.1,
                paths.join(", ")
            ));
            fx.push(Effect::RefreshList);
        }
        (Pending::Sync(key), Ok(reply)) => {
            match reply {
                Reply::Note(n) => st.info(format!("synced {}: {n}", key.1)),
                _ => st.info(format!("synced {}", key.1)),
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Land(key), Ok(_)) => {
            st.info(format!("{} is in the landing queue", key.1));
            fx.push(Effect::RefreshList);
        }
        (Pending::Land(key), Err(e)) => {
            st.error(format!("land {}: {e}", key.1));
        }
        (Pending::Sync(key), Err(e)) => {
            st.error(format!("sync {}: {e}", key.1));
            fx.push(Effect::RefreshList);
        }
        (pending @ (Pending::Stop(_) | Pending::Restart(_)), Ok(reply)) => {
            let (verb, key) = match pending {
                Pending::Stop(k) => ("stopped", k),
                Pending::Restart(k) => ("restarted", k),
                _ => return,
            };
            match reply {
                Reply::Note(n) => st.info(format!("{verb} {}: {n}", key.1)),
                _ => st.info(format!("{verb} {}", key.1)),
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Stop(key), Err(e)) => {
            st.error(format!("stop {}: {e}", key.1));
            fx.push(Effect::RefreshList);
        }
        (Pending::Restart(key), Err(e)) => {
            st.error(format!("restart {}: {e}", key.1));
            fx.push(Effect::RefreshList);
        }
        (Pending::Remove(key, _), Ok(reply)) => {
            if waiting {
                st.mode = Mode::Normal;
            }
            match reply {
                Reply::Note(n) => st.info(format!("removed {}: {n}", key.1)),
                _ => st.info(format!("removed {}", key.1)),
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Remove(key, _), Err(e)) => {
            if waiting && let Mode::Dialog(Dialog::Remove(d)) = &mut st.mode {
                d.pending = None;
                d.refusal = Some(e);
            } else {
                st.error(format!("remove {}: {e}", key.1));
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Merge(key), Ok(Reply::Conflict(paths))) => {
            if waiting && let Mode::Dialog(Dialog::Merge(d)) = &mut st.mode {
                d.pending = None;
                d.conflict = Some(paths);
            } else {
                st.error(format!(
                    "merging {} would conflict in {}; nothing was changed",
                    key.1,
                    paths.join(", ")
                ));
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Merge(key), Ok(reply)) => {
            if waiting {
                st.mode = Mode::Normal;
            }
            match reply {
                Reply::Note(n) => st.info(format!("merged {}: {n}", key.1)),
                _ => st.info(format!("merged {}", key.1)),
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Merge(key), Err(e)) => {
            if waiting && let Mode::Dialog(Dialog::Merge(d)) = &mut st.mode {
                d.pending = None;
                d.error = Some(e);
            } else {
                st.error(format!("merge {}: {e}", key.1));
            }
            fx.push(Effect::RefreshList);
        }
    }
}

// ---- mouse and paste ----

fn on_mouse(st: &mut AppState, ev: &MouseEvent, fx: &mut Vec<Effect>) {
    let ar = areas(st);
    let at = Position::new(ev.column, ev.row);
    let click = matches!(ev.kind, MouseEventKind::Down(MouseButton::Left));
    let wheel = match ev.kind {
        MouseEventKind::ScrollUp => Some(WHEEL_LINES),
        MouseEventKind::ScrollDown => Some(-WHEEL_LINES),
        _ => None,
    };
    if click && st.notice.take().is_some() {
        st.dirty = true;
    }
    match st.mode {
        Mode::Dialog(_) | Mode::Help | Mode::Compare(_) => {}
        Mode::Diff(ref mut d) => {
            if let Some(n) = wheel {
                scroll_diff(d, -n);
                let height = ar.main.height.saturating_sub(2);
                let rows = super::review::layout(height, d.files.len(), false).1;
                super::review::keep_cursor_in_view(d, rows);
                st.dirty = true;
            }
        }
        Mode::Gate(_) => {
            let rows = gate_rows(st);
            if let (Some(n), Mode::Gate(g)) = (wheel, &mut st.mode) {
                scroll_gate(g, -n, rows);
                st.dirty = true;
            }
        }
        Mode::Focus => {
            let Some(key) = st.selected.clone() else { return };
            if ar.pane.contains(at) {
                let modes = modes_of(st, &key);
                let Some(id) = st.live(&key) else { return };
                if modes.mouse != crate::term::MouseMode::None {
                    // The agent uses the mouse itself: it gets every event, in its coordinates.
                    let top = st
                        .panes
                        .get(&key)
                        .and_then(|p| p.screen.as_ref())
                        .map_or(0, |s| anchor(s, ar.pane.height));
                    let (col, row) = (ev.column - ar.pane.x, ev.row - ar.pane.y + top as u16);
                    if let Some(bytes) = encode_mouse(ev, col, row, &modes) {
                        fx.push(Effect::Input { id, bytes });
                    }
                    return;
                }
                if let Some(n) = wheel {
                    let scrolled = st.panes.get(&key).is_some_and(|p| p.scroll.is_some());
                    if modes.alt_screen && modes.alternate_scroll && !scrolled {
                        // A full-screen program without mouse support (less, vim): the wheel
                        // becomes arrow keys, as terminals do in mode 1007.
                        let code = if n > 0 { KeyCode::Up } else { KeyCode::Down };
                        let k = KeyEvent::new(code, KeyModifiers::NONE);
                        if let Some(bytes) = encode_key(&k, &modes) {
                            fx.push(Effect::Input { id, bytes: bytes.repeat(n.unsigned_abs()) });
                        }
                    } else {
                        scroll(st, n, fx);
                    }
                }
            } else if click
                && ar.list.contains(at)
                && let Some(k) = list::hit(st, ar.list, ev.row)
            {
                st.mode = Mode::Normal;
                select(st, k);
            }
        }
        Mode::Normal => match st.view {
            View::List => {
                if ar.list.contains(at) {
                    if click && let Some(k) = list::hit(st, ar.list, ev.row) {
                        select(st, k);
                    }
                    if let Some(n) = wheel {
                        step(st, if n > 0 { -1 } else { 1 });
                    }
                } else if ar.pane.contains(at) || ar.title.contains(at) {
                    if click {
                        focus(st, fx);
                    }
                    if let Some(n) = wheel {
                        scroll(st, n, fx);
                    }
                }
            }
            View::Grid => {
                let page = st.grid_page();
                let cells = ui::grid_cells(ar.main, page.len());
                if let Some((k, _)) = page.into_iter().zip(cells).find(|(_, c)| c.contains(at)) {
                    if click {
                        if st.selected.as_ref() == Some(&k) {
                            focus(st, fx);
                        } else {
                            select(st, k);
                        }
                    }
                } else if let Some(n) = wheel {
                    step(st, if n > 0 { -1 } else { 1 });
                }
            }
        },
    }
}

fn on_paste(st: &mut AppState, text: &str, fx: &mut Vec<Effect>) {
    match &mut st.mode {
        Mode::Focus => {
            if let Some((id, modes)) = focused_input(st) {
                let bytes = encode_paste(text, &modes);
                if let Some(k) = st.selected.clone() {
                    to_live(st, &k);
                }
                fx.push(Effect::Input { id, bytes });
            }
        }
        Mode::Dialog(Dialog::New(n)) if n.pending.is_none() => {
            n.field_mut(n.focus).insert(text);
            st.dirty = true;
        }
        Mode::Dialog(Dialog::Send(s)) if s.pending.is_none() => {
            s.text.insert(text);
            st.dirty = true;
        }
        _ => {}
    }
}

// ---- the agent list ----

/// What the list shows of an agent: a new list that differs only in other fields (the status
/// reason's "output 0.4s ago") needs no frame.
fn shown(a: &AgentInfo) -> impl PartialEq + '_ {
    (
        (&a.name, &a.repo, &a.profile, &a.status, &a.branch, &a.worktree),
        (a.port, a.queued, a.pid, a.exit_code, a.size),
    )
}

fn on_agents(st: &mut AppState, mut agents: Vec<AgentInfo>) {
    let here = st.repo.clone();
    agents.sort_by(|a, b| {
        (Some(&a.repo) != here.as_ref(), &a.repo, a.created, &a.name).cmp(&(
            Some(&b.repo) != here.as_ref(),
            &b.repo,
            b.created,
            &b.name,
        ))
    });
    let changed = st.agents.len() != agents.len()
        || st.agents.iter().zip(&agents).any(|(a, b)| shown(a) != shown(b));
    let old_index = st.selected.as_ref().and_then(|k| st.index_of(k));
    st.agents = agents;
    if !st.loaded || changed {
        st.dirty = true;
    }
    st.loaded = true;
    if let Some(k) = st.select_when_listed.clone()
        && st.index_of(&k).is_some()
    {
        st.select_when_listed = None;
        select(st, k);
    }
    let present = st.selected.as_ref().is_some_and(|k| st.index_of(k).is_some());
    if !present {
        st.selected = None;
        if !st.agents.is_empty() {
            let i = old_index.unwrap_or(0).min(st.agents.len() - 1);
            st.selected = Some(AppState::key_of(&st.agents[i]));
        }
        if st.mode == Mode::Focus {
            st.mode = Mode::Normal;
        }
        st.dirty = true;
    }
    let keys: HashSet<AgentKey> = st.agents.iter().map(AppState::key_of).collect();
    st.panes.retain(|k, _| keys.contains(k));
    // A dialog about an agent that is gone has nothing left to do.
    let gone = match &st.mode {
        Mode::Dialog(Dialog::Send(d)) => d.pending.is_none() && !keys.contains(&d.agent),
        Mode::Dialog(Dialog::Remove(d)) => d.pending.is_none() && !keys.contains(&d.agent),
        _ => false,
    };
    if gone {
        st.mode = Mode::Normal;
    }
}

/// This machine's agents, then every host's as last listed.
fn all_agents(st: &AppState) -> Vec<AgentInfo> {
    let mut all = st.local_agents.clone();
    all.extend(st.hosts.values().flat_map(|h| h.agents.iter().cloned()));
    all
}

/// A host answered with its agents, or did not answer. A host that stops answering keeps its
/// agents as last seen (the list says it is disconnected, and since when); when it answers again,
/// the screens that broke with it are streamed again.
fn on_host(
    st: &mut AppState,
    name: String,
    result: Result<Vec<AgentInfo>, String>,
    at: std::time::SystemTime,
) {
    let view = st.hosts.entry(name.clone()).or_default();
    match result {
        Ok(mut list) => {
            for a in &mut list {
                a.repo = crate::hosts::qualify(&name, &a.repo);
            }
            let back = !view.connected;
            view.agents = list;
            view.connected = true;
            view.last_seen = Some(at);
            view.error = None;
            if back {
                st.attachments.retain(|k, a| {
                    a.live || crate::hosts::split(&k.0).is_none_or(|(h, _)| h != name)
                });
                st.dirty = true;
            }
        }
        Err(e) => {
            if view.connected || view.error.as_ref() != Some(&e) {
                st.dirty = true;
            }
            view.connected = false;
            view.error = Some(e);
        }
    }
    let all = all_agents(st);
    on_agents(st, all);
}

/// Stream exactly the agents on screen: attach newly shown ones (and restarted ones, which are
/// new processes), detach the rest.
fn reconcile(st: &mut AppState, fx: &mut Vec<Effect>) {
    let wanted: Vec<AgentKey> = match st.effective_view() {
        View::List => st.selected.iter().cloned().collect(),
        View::Grid => st.grid_page(),
    };
    let wanted: Vec<(AgentKey, Option<u32>)> = wanted
        .into_iter()
        .filter_map(|k| {
            let a = st.agent(&k)?;
            // An agent still being created has no terminal yet.
            let attachable = a.pid.is_some() || a.status != "starting";
            attachable.then_some((k, a.pid))
        })
        .collect();
    let keep: HashSet<&AgentKey> = wanted.iter().map(|(k, _)| k).collect();
    let drop: Vec<AgentKey> =
        st.attachments.keys().filter(|k| !keep.contains(k)).cloned().collect();
    for k in drop {
        if let Some(a) = st.attachments.remove(&k)
            && a.live
        {
            fx.push(Effect::Detach { id: a.id });
        }
        if let Some(p) = st.panes.get_mut(&k) {
            p.scroll = None;
        }
    }
    for (k, pid) in wanted {
        let current = st.attachments.get(&k);
        let stale = match current {
            None => true,
            // A live stream whose agent just lost its pid is ending: its Exited is on the way.
            Some(a) => pid.is_some() && a.pid != pid,
        };
        if !stale {
            continue;
        }
        if let Some(a) = current
            && a.live
        {
            fx.push(Effect::Detach { id: a.id });
        }
        let replaced = current.is_some();
        let id = st.next_id();
        st.attachments.insert(k.clone(), Attachment { id, pid, live: true });
        let pane = st.panes.entry(k.clone()).or_default();
        pane.note = None;
        // A new process has a history of its own.
        if replaced {
            pane.scroll = None;
        }
        fx.push(Effect::Attach { id, target: target(&k) });
    }
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
