//! Dialogs: new agent, send a message, remove. Refusals (ours or the server's) are shown inside
//! the dialog, which stays open so the input can be fixed.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};

use super::{popup, wrap};
use crate::tui::action::Action;
use crate::tui::keymap::KeyMode;
use crate::tui::state::{
    AppState, Dialog, MergeDialog, NewDialog, NewField, RemoveDialog, SendDialog, TextField,
};

const LABEL_W: u16 = 9;

fn hint_line(st: &AppState, items: &[(Action, &str)]) -> String {
    items
        .iter()
        .filter_map(|(a, label)| {
            st.keymap.first_key(KeyMode::Dialog, *a).map(|k| format!("{k} {label}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Draw a text field in `width` columns at (x, y); returns where its cursor is.
fn field(
    f: &TextField,
    placeholder: &str,
    focused: bool,
    x: u16,
    y: u16,
    width: u16,
    buf: &mut Buffer,
) -> Position {
    let bg = if focused { Style::default().bg(Color::Indexed(238)) } else { Style::default() };
    buf.set_style(Rect { x, y, width, height: 1 }, bg);
    let w = usize::from(width.saturating_sub(1)).max(1);
    if f.text.is_empty() {
        buf.set_stringn(x, y, placeholder, usize::from(width), bg.fg(Color::DarkGray));
        return Position::new(x, y);
    }
    let start = f.cursor.saturating_sub(w);
    let shown: String =
        f.text.chars().skip(start).take(w + 1).map(|c| if c == '\n' { '↵' } else { c }).collect();
    // Selected text (typing replaces it) looks selected while the field has focus.
    let style = if f.selected && focused { bg.add_modifier(Modifier::REVERSED) } else { bg };
    buf.set_stringn(x, y, &shown, usize::from(width), style);
    Position::new(x + (f.cursor - start) as u16, y)
}

/// Wrapped text from row `y` on, at most `max` lines; moves `y` past it.
fn text_lines(buf: &mut Buffer, inner: Rect, y: &mut u16, text: &str, style: Style, max: usize) {
    for l in wrap(text, inner.width.saturating_sub(2)).into_iter().take(max) {
        if *y >= inner.y + inner.height {
            return;
        }
        buf.set_stringn(inner.x + 1, *y, &l, usize::from(inner.width.saturating_sub(1)), style);
        *y += 1;
    }
}

/// Draw the dialog; returns where the text cursor goes, if a text field has focus.
pub fn render(st: &AppState, d: &Dialog, main: Rect, buf: &mut Buffer) -> Option<Position> {
    match d {
        Dialog::New(d) => new(st, d, main, buf),
        Dialog::Send(d) => send(st, d, main, buf),
        Dialog::Remove(d) => {
            remove(st, d, main, buf);
            None
        }
        Dialog::Merge(d) => {
            merge(st, d, main, buf);
            None
        }
    }
}

fn error_style() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

fn new(st: &AppState, d: &NewDialog, main: Rect, buf: &mut Buffer) -> Option<Position> {
    let w = main.width.saturating_sub(4).min(76);
    let status = match (&d.error, d.pending) {
        (_, Some(_)) => Some(("creating…".to_string(), Style::default().fg(Color::Yellow))),
        (Some(e), None) => Some((e.clone(), error_style())),
        (None, None) => None,
    };
    let status_lines =
        status.as_ref().map_or(0, |(t, _)| wrap(t, w.saturating_sub(4)).len().min(4) as u16);
    let h = 2 + NewField::ALL.len() as u16 + 1 + status_lines + u16::from(status_lines > 0) + 1;
    let inner = popup(main, w, h, "New agent", buf);
    if inner.width <= LABEL_W + 2 || inner.height == 0 {
        return None;
    }
    let fw = inner.width - LABEL_W - 1;
    let mut cursor = None;
    for (i, f) in NewField::ALL.into_iter().enumerate() {
        let y = inner.y + i as u16;
        if y >= inner.y + inner.height {
            break;
        }
        let focused = d.focus == f;
        let label_style = if focused {
            Style::default().fg(super::ACCENT).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        buf.set_stringn(inner.x + 1, y, f.label(), usize::from(LABEL_W), label_style);
        let placeholder = match f {
            NewField::Prompt => "the agent's first message",
            NewField::Profile => st.default_profile.as_str(),
            NewField::Args => "appended to the profile's command",
            NewField::Name => "from the prompt",
            NewField::Base => "the main worktree's branch",
            NewField::Count => "1",
            NewField::Where => "this repository (or HOST:/path)",
        };
        let pos = field(d.field(f), placeholder, focused, inner.x + LABEL_W, y, fw, buf);
        if focused {
            cursor = Some(pos);
        }
        if f == NewField::Where && focused && !st.hosts.is_empty() {
            let used = (d.place.text.chars().count() as u16).max(33) + 2;
            if used + 10 < fw {
                buf.set_stringn(
                    inner.x + LABEL_W + used,
                    y,
                    "←/→ hosts' repositories",
                    usize::from(fw - used),
                    Style::default().fg(Color::DarkGray).bg(Color::Indexed(238)),
                );
            }
        }
        if f == NewField::Profile && focused {
            let hint = format!("←/→ {}", st.profiles.join(" "));
            let used =
                d.profile.text.chars().count().max(st.default_profile.chars().count()) as u16 + 2;
            if used + 4 < fw {
                buf.set_stringn(
                    inner.x + LABEL_W + used,
                    y,
                    &hint,
                    usize::from(fw - used),
                    Style::default().fg(Color::DarkGray).bg(Color::Indexed(238)),
                );
            }
        }
    }
    let mut y = inner.y + NewField::ALL.len() as u16 + 1;
    if let Some((t, style)) = status {
        text_lines(buf, inner, &mut y, &t, style, usize::from(status_lines));
        y += 1;
    }
    let hints = hint_line(
        st,
        &[
            (Action::Submit, "create"),
            (Action::NextField, "next field"),
            (Action::Cancel, "cancel"),
        ],
    );
    if y < inner.y + inner.height {
        buf.set_stringn(
            inner.x + 1,
            y,
            &hints,
            usize::from(inner.width - 1),
            Style::default().fg(Color::DarkGray),
        );
    }
    cursor
}

fn send(st: &AppState, d: &SendDialog, main: Rect, buf: &mut Buffer) -> Option<Position> {
    let w = main.width.saturating_sub(4).min(70);
    let status = match (&d.error, d.pending) {
        (_, Some(_)) => Some((
            if d.queue { "queueing…" } else { "sending…" }.to_string(),
            Style::default().fg(Color::Yellow),
        )),
        (Some(e), None) => Some((e.clone(), error_style())),
        (None, None) => None,
    };
    let status_lines =
        status.as_ref().map_or(0, |(t, _)| wrap(t, w.saturating_sub(4)).len().min(4) as u16);
    let h = 2 + 1 + 1 + status_lines + u16::from(status_lines > 0) + 1;
    let title = if d.queue {
        format!("Queue for {} (delivered when idle)", d.agent.1)
    } else {
        format!("Message to {}", d.agent.1)
    };
    let inner = popup(main, w, h, &title, buf);
    if inner.width < 4 || inner.height == 0 {
        return None;
    }
    let pos = field(
        &d.text,
        "typed into the agent, then Enter",
        true,
        inner.x + 1,
        inner.y,
        inner.width - 2,
        buf,
    );
    let mut y = inner.y + 2;
    if let Some((t, style)) = status {
        text_lines(buf, inner, &mut y, &t, style, usize::from(status_lines));
        y += 1;
    }
    let hints = if d.queue {
        hint_line(
            st,
            &[
                (Action::Submit, "queue"),
                (Action::NextField, "send now"),
                (Action::Cancel, "cancel"),
            ],
        )
    } else {
        hint_line(
            st,
            &[(Action::Submit, "send"), (Action::NextField, "queue"), (Action::Cancel, "cancel")],
        )
    };
    if y < inner.y + inner.height {
        buf.set_stringn(
            inner.x + 1,
            y,
            &hints,
            usize::from(inner.width - 1),
            Style::default().fg(Color::DarkGray),
        );
    }
    Some(pos)
}

fn remove(st: &AppState, d: &RemoveDialog, main: Rect, buf: &mut Buffer) {
    let w = main.width.saturating_sub(4).min(72);
    let tw = w.saturating_sub(4);
    let a = st.agent(&d.agent);
    let (worktree, branch) = a.map_or((String::new(), String::new()), |a| {
        (a.worktree.display().to_string(), a.branch.clone())
    });
    let what = format!(
        "Stops the agent and deletes its worktree {worktree}. Its branch {branch} is deleted only if its work is merged."
    );
    let force_key = st.keymap.first_key(KeyMode::Dialog, Action::Force);
    let mut parts: Vec<(String, Style)> = vec![(what, Style::default())];
    if d.pending.is_some() {
        parts.push(("removing…".into(), Style::default().fg(Color::Yellow)));
    } else if let Some(r) = &d.refusal {
        parts.push((format!("Refused: {r}"), error_style()));
        if let Some(k) = force_key {
            parts.push((
                format!(
                    "{k} removes it anyway: uncommitted work is committed to {branch}, and the branch is kept."
                ),
                Style::default().fg(Color::Yellow),
            ));
        }
    }
    let body: u16 = parts.iter().map(|(t, _)| wrap(t, tw).len() as u16 + 1).sum();
    let h = 2 + body + 1;
    let inner = popup(main, w, h, &format!("Remove {}", d.agent.1), buf);
    if inner.width < 4 {
        return;
    }
    let mut y = inner.y;
    for (t, style) in parts {
        text_lines(buf, inner, &mut y, &t, style, usize::MAX);
        y += 1;
    }
    let mut items = vec![(Action::Submit, "remove")];
    if d.refusal.is_some() {
        items.push((Action::Force, "remove anyway"));
    }
    items.push((Action::Cancel, "cancel"));
    if y < inner.y + inner.height {
        buf.set_stringn(
            inner.x + 1,
            y,
            hint_line(st, &items),
            usize::from(inner.width - 1),
            Style::default().fg(Color::DarkGray),
        );
    }
}

fn merge(st: &AppState, d: &MergeDialog, main: Rect, buf: &mut Buffer) {
    let w = main.width.saturating_sub(4).min(76);
    let tw = w.saturating_sub(4);
    let a = st.agent(&d.agent);
    let warn = Style::default().fg(Color::Yellow);
    let mut parts: Vec<(String, Style)> = Vec::new();
    let (branch, base) =
        a.map_or((String::new(), String::new()), |a| (a.branch.clone(), a.base.clone()));
    parts.push((
        format!(
            "Lands {branch} on {base} (fast-forward when possible, else a merge commit), then removes the agent, its worktree and branch."
        ),
        Style::default(),
    ));
    let changes = match a.and_then(|a| a.diff) {
        None => "Changes: not computed yet.".to_string(),
        Some(s) if s.files == 0 && s.ahead == 0 => "Changes: none.".to_string(),
        Some(s) => format!(
            "Changes: {}, {} commit{} ahead, {} behind {base}.",
            super::diff_stat(&s),
            s.ahead,
            if s.ahead == 1 { "" } else { "s" },
            s.behind
        ),
    };
    parts.push((changes, Style::default()));
    match a.map(|a| a.conflicts.as_slice()) {
        Some(cs) if !cs.is_empty() => {
            for c in cs {
                let with = if c.base { format!("{} (base)", c.with) } else { c.with.clone() };
                parts.push((
                    format!("Predicted conflict with {with}: {}", c.paths.join(", ")),
                    warn,
                ));
            }
        }
        _ => parts.push(("No conflicts predicted.".into(), Style::default().fg(Color::Green))),
    }
    if crate::tui::update::merge_needs_yes(st, &d.agent) {
        parts.push((
            format!(
                "{} is working: merging stops it mid-task. Confirming merges anyway.",
                d.agent.1
            ),
            warn.add_modifier(Modifier::BOLD),
        ));
    }
    if d.pending.is_some() {
        parts.push(("merging…".into(), warn));
    } else if let Some(paths) = &d.conflict {
        parts.push((
            format!(
                "Refused: merging would conflict in {}. Nothing was changed.",
                paths.join(", ")
            ),
            error_style(),
        ));
    } else if let Some(e) = &d.error {
        parts.push((format!("Refused: {e}"), error_style()));
    }
    let body: u16 = parts.iter().map(|(t, _)| wrap(t, tw).len() as u16 + 1).sum();
    let h = 2 + body + 1;
    let inner = popup(main, w, h, &format!("Merge {}", d.agent.1), buf);
    if inner.width < 4 {
        return;
    }
    let mut y = inner.y;
    for (t, style) in parts {
        text_lines(buf, inner, &mut y, &t, style, usize::MAX);
        y += 1;
    }
    if y < inner.y + inner.height {
        buf.set_stringn(
            inner.x + 1,
            y,
            hint_line(st, &[(Action::Submit, "merge"), (Action::Cancel, "cancel")]),
            usize::from(inner.width - 1),
            Style::default().fg(Color::DarkGray),
        );
    }
}
