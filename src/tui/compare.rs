//! The compare view (best-of-N, SPEC §9): the agents one `new -n N` started, side by side
//! (status, diff stat, gate, files touched) with the selected one's diff below; `enter` twice
//! picks it (lands it as `merge` and removes the others, their work kept under
//! refs/corral/backup/), `L` then `enter` picks it through the landing queue.

use crossterm::event::{KeyCode, KeyEvent};

use super::action::Action;
use super::state::{AgentKey, AppState, Effect, Mode, Pending, target};
use crate::proto::{CompareEntry, MergeMode, Reply, Request};

#[derive(Debug, Clone, PartialEq)]
pub struct CompareView {
    pub repo: std::path::PathBuf,
    pub group: String,
    pub entries: Vec<CompareEntry>,
    pub selected: usize,
    /// The comparison (gates included) being computed.
    pub pending: Option<u64>,
    /// The selected agent's patch, and the request computing it.
    pub diff: Vec<String>,
    pub diff_pending: Option<u64>,
    /// Asked to confirm picking the selected agent (through the queue when `queue`).
    pub confirm: Option<bool>,
    /// The pick in flight.
    pub picking: Option<u64>,
    pub error: Option<String>,
}

/// Open the view for the selected agent's group.
pub fn open(st: &mut AppState, fx: &mut Vec<Effect>) {
    let Some(k) = st.selected.clone() else { return };
    let Some(group) = st.agent(&k).and_then(|a| a.group.clone()) else {
        st.error(format!(
            "{} was not started with others: `new` with a count of 2 or more starts agents to compare",
            k.1
        ));
        return;
    };
    let id = st.next_id();
    let req = Request::Compare { repo: k.0.clone(), group: group.clone(), gate: true };
    st.pending.insert(id, Pending::Compare);
    fx.push(Effect::Request(id, req));
    st.mode = Mode::Compare(Box::new(CompareView {
        repo: k.0,
        group,
        entries: Vec::new(),
        selected: 0,
        pending: Some(id),
        diff: Vec::new(),
        diff_pending: None,
        confirm: None,
        picking: None,
        error: None,
    }));
    st.dirty = true;
}

/// Ask for the selected agent's patch.
fn load_diff(st: &mut AppState, fx: &mut Vec<Effect>) {
    let Mode::Compare(v) = &st.mode else { return };
    let Some(e) = v.entries.get(v.selected) else { return };
    let key: AgentKey = (v.repo.clone(), e.name.clone());
    let Some(a) = st.agent(&key) else { return };
    let (worktree, base) = (a.worktree.clone(), a.base.clone());
    let id = st.next_id();
    if let Mode::Compare(v) = &mut st.mode {
        v.diff_pending = Some(id);
        v.diff.clear();
    }
    fx.push(Effect::Diff { id, worktree, base });
}

/// A patch computed for the view; false when it was not this view's.
pub fn on_diff(st: &mut AppState, id: u64, result: &Result<String, String>) -> bool {
    let Mode::Compare(v) = &mut st.mode else { return false };
    if v.diff_pending != Some(id) {
        return false;
    }
    v.diff_pending = None;
    v.diff = match result {
        Ok(text) => text.lines().map(|l| l.replace('\t', "    ")).collect(),
        Err(e) => vec![format!("no diff: {e}")],
    };
    st.dirty = true;
    true
}

pub fn on_reply(
    st: &mut AppState,
    id: u64,
    pending: Pending,
    result: Result<Reply, String>,
    fx: &mut Vec<Effect>,
) {
    st.dirty = true;
    match (pending, result) {
        (Pending::Compare, Ok(Reply::Compare(entries))) => {
            let Mode::Compare(v) = &mut st.mode else { return };
            if v.pending != Some(id) {
                return;
            }
            v.pending = None;
            v.entries = entries;
            v.selected = 0;
            load_diff(st, fx);
        }
        (Pending::Compare, other) => {
            let e = match other {
                Err(e) => e,
                Ok(r) => format!("unexpected answer: {r:?}"),
            };
            if let Mode::Compare(v) = &mut st.mode
                && v.pending == Some(id)
            {
                v.pending = None;
                v.error = Some(e);
            }
        }
        (Pending::Pick(_), Ok(reply)) => {
            if matches!(&st.mode, Mode::Compare(v) if v.picking == Some(id)) {
                st.mode = Mode::Normal;
            }
            match reply {
                Reply::Note(n) => st.info(n),
                Reply::Conflict(paths) => st.error(format!(
                    "landing it would conflict in {}; nothing was removed",
                    paths.join(", ")
                )),
                _ => st.info("picked"),
            }
            fx.push(Effect::RefreshList);
        }
        (Pending::Pick(key), Err(e)) => {
            if let Mode::Compare(v) = &mut st.mode
                && v.picking == Some(id)
            {
                v.picking = None;
                v.confirm = None;
            }
            st.error(format!("pick {}: {e}", key.1));
        }
        _ => {}
    }
}

pub fn key(st: &mut AppState, ev: &KeyEvent, action: Option<Action>, fx: &mut Vec<Effect>) {
    let Mode::Compare(v) = &mut st.mode else { return };
    st.dirty = true;
    if v.picking.is_some() {
        return;
    }
    let n = v.entries.len();
    match (action, ev.code) {
        // The first esc takes a question back, the next closes the view.
        (_, KeyCode::Esc) | (Some(Action::Quit | Action::Compare), _) if v.confirm.is_some() => {
            v.confirm = None;
        }
        (_, KeyCode::Esc) | (Some(Action::Quit | Action::Compare), _) => st.mode = Mode::Normal,
        (Some(Action::Up), _) if n > 0 => {
            v.confirm = None;
            v.selected = v.selected.saturating_sub(1);
            load_diff(st, fx);
        }
        (Some(Action::Down), _) if n > 0 => {
            v.confirm = None;
            v.selected = (v.selected + 1).min(n - 1);
            load_diff(st, fx);
        }
        (Some(Action::Land), _) if n > 0 => v.confirm = Some(true),
        (_, KeyCode::Enter) if n > 0 => match v.confirm {
            None => v.confirm = Some(false),
            Some(queue) => {
                let name = v.entries[v.selected].name.clone();
                let key: AgentKey = (v.repo.clone(), name);
                let req = Request::Pick {
                    target: target(&key),
                    mode: MergeMode::Merge,
                    queue,
                    git_env: crate::git::identity_env(&st.env),
                };
                let id = st.next_id();
                st.pending.insert(id, Pending::Pick(key));
                fx.push(Effect::Request(id, req));
                if let Mode::Compare(v) = &mut st.mode {
                    v.picking = Some(id);
                }
            }
        },
        _ => {}
    }
}
