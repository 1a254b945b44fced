//! Review in the diff view: a cursor over the patch, comments on the line or hunk under it
//! (`c`), their list (`C`), and `enter` to send them all to the agent as one message (the
//! server types it at once when the agent is idle or asks for input, else queues it).

use crossterm::event::{KeyCode, KeyEvent};

use super::action::Action;
use super::state::{AppState, DiffView, Effect, Mode, Pending, TextField, target};
use crate::proto::{Reply, Request, ReviewComment};
use crate::review::{Spot, locate};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    /// The patch line under the cursor.
    pub cursor: usize,
    /// The comments made, each with the patch line it was made on, in the order made.
    pub comments: Vec<(usize, ReviewComment)>,
    /// A comment being typed: the patch line, where it points, the text so far.
    pub input: Option<(usize, ReviewComment, TextField)>,
    /// The list of comments (`C`) is open, with this entry selected.
    pub listing: Option<usize>,
    /// The request sending them.
    pub sending: Option<u64>,
}

impl Review {
    pub fn commented(&self, line: usize) -> bool {
        self.comments.iter().any(|(l, _)| *l == line)
    }
}

/// The files listed above the patch, and how many patch lines fit below them, in a view whose
/// inside is `height` rows (shared by drawing and by the keys that keep the cursor in view).
pub fn layout(height: u16, files: usize, input: bool) -> (usize, usize) {
    let room = usize::from(height / 3).max(1);
    let shown = if files > room { room.saturating_sub(1) } else { files };
    let more = usize::from(shown < files);
    let rows = usize::from(height).saturating_sub(1 + shown + more + 1 + usize::from(input));
    (shown, rows.max(1))
}

/// Where the cursor's line points, as the view's rule shows it (`path:line`).
pub fn cursor_place(d: &DiffView) -> Option<String> {
    let c = locate(&d.lines, d.review.cursor)?.comment();
    Some(match c.end {
        Some(e) => format!("{}:{}-{e}", c.path, c.line),
        None if c.old => format!("{}:{} (base)", c.path, c.line),
        None => format!("{}:{}", c.path, c.line),
    })
}

fn rows_of(st: &AppState, d: &DiffView) -> usize {
    let height = super::ui::areas(st).main.height.saturating_sub(2);
    layout(height, d.files.len(), d.review.input.is_some()).1
}

/// Move the cursor by `delta` lines and scroll so that it stays in view.
pub fn move_cursor(d: &mut DiffView, delta: isize, rows: usize) {
    let max = d.lines.len().saturating_sub(1) as isize;
    let r = &mut d.review;
    r.cursor = (r.cursor as isize).saturating_add(delta).clamp(0, max.max(0)) as usize;
    follow(d, rows);
}

/// Scroll so that the cursor is in view.
fn follow(d: &mut DiffView, rows: usize) {
    let c = d.review.cursor;
    if c < d.offset {
        d.offset = c;
    } else if c >= d.offset + rows {
        d.offset = c + 1 - rows;
    }
}

/// After the view scrolled (the mouse wheel): keep the cursor on a line in view.
pub fn keep_cursor_in_view(d: &mut DiffView, rows: usize) {
    let last = (d.offset + rows).min(d.lines.len()).saturating_sub(1);
    d.review.cursor = d.review.cursor.clamp(d.offset, last.max(d.offset));
}

/// The diff view's review keys; false when the key is not one of them (movement and closing
/// are the view's own).
pub fn key(st: &mut AppState, ev: &KeyEvent, action: Option<Action>, fx: &mut Vec<Effect>) -> bool {
    let rows = match &st.mode {
        Mode::Diff(d) => rows_of(st, d),
        _ => return false,
    };
    let Mode::Diff(d) = &mut st.mode else { return false };
    if d.pending.is_some() || d.error.is_some() {
        return false;
    }
    // Typing a comment: every key edits it, enter keeps it, esc drops it.
    if let Some((line, mut comment, mut field)) = d.review.input.take() {
        st.dirty = true;
        match ev.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                if field.text.trim().is_empty() {
                    d.review.input = Some((line, comment, field));
                } else {
                    comment.text = field.text.trim().to_string();
                    d.review.comments.push((line, comment));
                }
            }
            _ => {
                super::update::edit(&mut field, ev);
                d.review.input = Some((line, comment, field));
            }
        }
        return true;
    }
    // The list of comments: move, delete, send, close.
    if let Some(sel) = d.review.listing {
        st.dirty = true;
        let n = d.review.comments.len();
        match (action, ev.code) {
            (_, KeyCode::Enter) => {
                d.review.listing = None;
                send(st, fx);
            }
            (Some(Action::Up), _) | (_, KeyCode::Up) => {
                d.review.listing = Some(sel.saturating_sub(1));
            }
            (Some(Action::Down), _) | (_, KeyCode::Down) => {
                d.review.listing = Some((sel + 1).min(n.saturating_sub(1)));
            }
            (_, KeyCode::Char('x') | KeyCode::Delete | KeyCode::Backspace) if sel < n => {
                d.review.comments.remove(sel);
                let n = d.review.comments.len();
                d.review.listing = (n > 0).then(|| sel.min(n - 1));
            }
            _ => d.review.listing = None,
        }
        return true;
    }
    match ev.code {
        KeyCode::Char('c') => {
            st.dirty = true;
            match locate(&d.lines, d.review.cursor) {
                Some(spot) => {
                    let line = d.review.cursor;
                    let comment = match spot {
                        Spot::Line(c) | Spot::Hunk(c) => c,
                    };
                    d.review.input = Some((line, comment, TextField::default()));
                    // The input takes a row: the cursor's line stays in view above it.
                    let rows = rows.saturating_sub(1).max(1);
                    follow(d, rows);
                }
                None => st.error(
                    "put the cursor on a line of a hunk (or its @@ header for the whole hunk) to comment on it",
                ),
            }
            true
        }
        KeyCode::Char('C') => {
            st.dirty = true;
            if d.review.comments.is_empty() {
                st.info("no comments yet: c comments on the line under the cursor");
            } else {
                d.review.listing = Some(0);
            }
            true
        }
        KeyCode::Enter => {
            send(st, fx);
            true
        }
        _ => false,
    }
}

/// Send every comment as one message.
fn send(st: &mut AppState, fx: &mut Vec<Effect>) {
    let Mode::Diff(d) = &mut st.mode else { return };
    st.dirty = true;
    if d.review.sending.is_some() {
        return;
    }
    if d.review.comments.is_empty() {
        st.info("no comments to send: c comments on the line under the cursor");
        return;
    }
    let comments = d.review.comments.iter().map(|(_, c)| c.clone()).collect();
    let agent = d.agent.clone();
    let req = Request::Review { target: target(&agent), comments, queue: false };
    let id = st.next_id();
    st.pending.insert(id, Pending::Review(agent));
    fx.push(Effect::Request(id, req));
    if let Mode::Diff(d) = &mut st.mode {
        d.review.sending = Some(id);
    }
}

/// The answer to sending the comments: sent or queued (they are cleared), or why not (kept).
pub fn on_reply(
    st: &mut AppState,
    id: u64,
    agent: &super::state::AgentKey,
    result: Result<Reply, String>,
) {
    let mine = match &mut st.mode {
        Mode::Diff(d) if d.review.sending == Some(id) => {
            d.review.sending = None;
            if result.is_ok() {
                d.review.comments.clear();
            }
            true
        }
        _ => false,
    };
    match result {
        Ok(Reply::Note(n)) => st.info(n),
        Ok(_) => st.info(format!("review sent to {}", agent.1)),
        Err(e) if mine => st.error(format!("review not sent (the comments are kept): {e}")),
        Err(e) => st.error(format!("review for {}: {e}", agent.1)),
    }
}
