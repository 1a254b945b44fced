//! The one-line footer: the keys that matter now, read from the keymap.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::ACCENT;
use crate::tui::action::Action;
use crate::tui::keymap::KeyMode;
use crate::tui::state::{AppState, Dialog, Mode, View};

/// (key, what it does) pairs for the current mode, most useful first.
pub fn hints(st: &AppState) -> Vec<(String, String)> {
    let km = &st.keymap;
    let mut out = Vec::new();
    let mut add = |mode: KeyMode, a: Action, label: &str| {
        if let Some(k) = km.first_key(mode, a) {
            out.push((k.to_string(), label.to_string()));
        }
    };
    match &st.mode {
        Mode::Help => return vec![("any key".into(), "closes help".into())],
        Mode::Compare(v) => {
            let mut v2 = Vec::new();
            if let (Some(d), Some(u)) = (
                km.first_key(KeyMode::Normal, Action::Down),
                km.first_key(KeyMode::Normal, Action::Up),
            ) {
                v2.push((format!("{d}/{u}"), "select".to_string()));
            }
            let pick = if v.confirm.is_some() { "confirm" } else { "pick" };
            v2.push(("enter".into(), pick.into()));
            if let Some(k) = km.first_key(KeyMode::Normal, Action::Land) {
                v2.push((k.to_string(), "pick via queue".into()));
            }
            v2.push(("esc".into(), "close".into()));
            return v2;
        }
        Mode::Diff(_) | Mode::Gate(_) => {
            let mut v = Vec::new();
            if let (Some(d), Some(u)) = (
                km.first_key(KeyMode::Normal, Action::Down),
                km.first_key(KeyMode::Normal, Action::Up),
            ) {
                v.push((format!("{d}/{u}"), "line".to_string()));
            }
            for (a, label) in [(Action::ScrollDown, "page down"), (Action::ScrollUp, "page up")] {
                if let Some(k) = km.first_key(KeyMode::Normal, a) {
                    v.push((k.to_string(), label.to_string()));
                }
            }
            if matches!(st.mode, Mode::Gate(_)) {
                v.push(("end".into(), "follow".into()));
            } else {
                v.push(("c".into(), "comment".into()));
                v.push(("C".into(), "list".into()));
                v.push(("enter".into(), "send".into()));
            }
            v.push(("esc".into(), "close".into()));
            return v;
        }
        Mode::Focus => {
            let p = km.prefix.to_string();
            let name = st.selected.as_ref().map_or("", |k| k.1.as_str());
            let mut v = vec![
                (p.clone(), "dashboard".to_string()),
                (format!("{p} {p}"), format!("sends {p}")),
            ];
            if let Some(k) = km.first_key(KeyMode::Focus, Action::ScrollUp) {
                v.push((k.to_string(), "history".into()));
            }
            v.push((String::new(), format!("keys go to {name}")));
            return v;
        }
        Mode::Dialog(Dialog::New(_)) => {
            add(KeyMode::Dialog, Action::Submit, "create");
            add(KeyMode::Dialog, Action::NextField, "next field");
            add(KeyMode::Dialog, Action::Cancel, "cancel");
        }
        Mode::Dialog(Dialog::Send(d)) => {
            add(KeyMode::Dialog, Action::Submit, if d.queue { "queue" } else { "send" });
            add(KeyMode::Dialog, Action::NextField, if d.queue { "send now" } else { "queue" });
            add(KeyMode::Dialog, Action::Cancel, "cancel");
        }
        Mode::Dialog(Dialog::Remove(d)) => {
            add(KeyMode::Dialog, Action::Submit, "remove");
            if d.refusal.is_some() {
                add(KeyMode::Dialog, Action::Force, "remove anyway");
            }
            add(KeyMode::Dialog, Action::Cancel, "cancel");
        }
        Mode::Dialog(Dialog::Merge(_)) => {
            add(KeyMode::Dialog, Action::Submit, "merge");
            add(KeyMode::Dialog, Action::Cancel, "cancel");
        }
        Mode::Normal if st.agents.is_empty() => {
            add(KeyMode::Normal, Action::New, "new agent");
            add(KeyMode::Normal, Action::Help, "help");
            add(KeyMode::Normal, Action::Quit, "quit");
        }
        Mode::Normal => {
            let scrolled = st
                .selected
                .as_ref()
                .and_then(|k| st.panes.get(k))
                .is_some_and(|p| p.scroll.is_some());
            if scrolled && st.view == View::List {
                add(KeyMode::Normal, Action::ScrollUp, "back");
                add(KeyMode::Normal, Action::ScrollDown, "forward");
                add(KeyMode::Normal, Action::ScrollBottom, "live");
            }
            let mut add = |a: Action, label: &str| {
                if let Some(k) = km.first_key(KeyMode::Normal, a) {
                    out.push((k.to_string(), label.to_string()));
                }
            };
            if st.upgradable.is_some() {
                add(Action::Upgrade, "newer corral: upgrade server");
            }
            add(Action::Focus, "focus");
            add(Action::New, "new");
            add(Action::Send, "send");
            add(Action::Stop, "stop");
            add(Action::Restart, "restart");
            add(Action::Remove, "remove");
            add(Action::Merge, "merge");
            add(Action::Diff, "diff");
            add(Action::Sync, "sync");
            add(Action::Grid, if st.view == View::Grid { "list" } else { "grid" });
            if let (Some(d), Some(u)) = (
                km.first_key(KeyMode::Normal, Action::Down),
                km.first_key(KeyMode::Normal, Action::Up),
            ) {
                out.push((format!("{d}/{u}"), "select".into()));
            }
            let mut add = |a: Action, label: &str| {
                if let Some(k) = km.first_key(KeyMode::Normal, a) {
                    out.push((k.to_string(), label.to_string()));
                }
            };
            add(Action::Help, "help");
            add(Action::Quit, "quit");
        }
    }
    out
}

/// How many of the last hints must stay when the line is too narrow (help and quit: the way to
/// everything else, and the way out).
fn pinned(st: &AppState) -> usize {
    if st.mode == Mode::Normal { 2 } else { 0 }
}

fn width(hints: &[(String, String)]) -> usize {
    hints
        .iter()
        .map(|(k, l)| k.chars().count() + l.chars().count() + if k.is_empty() { 2 } else { 3 })
        .sum()
}

pub fn render(st: &AppState, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let mut hints = hints(st);
    let keep = pinned(st).min(hints.len());
    // A broken config takes the line but for the pinned keys, in the list only: dialogs and focus
    // need their keys more.
    let mut area = area;
    if let (Some(e), Mode::Normal) = (&st.config_error, &st.mode) {
        hints.drain(..hints.len() - keep);
        let room = usize::from(area.width).saturating_sub(width(&hints) + 1);
        let text = format!("config: {e}");
        let shown: String = if text.chars().count() > room.saturating_sub(1) {
            let mut t: String = text.chars().take(room.saturating_sub(2)).collect();
            t.push('…');
            t
        } else {
            text
        };
        let style = Style::default().fg(Color::Red).add_modifier(Modifier::BOLD);
        let end = buf.set_stringn(area.x + 1, area.y, &shown, room, style).0;
        let used = (end + 1).saturating_sub(area.x).min(area.width);
        area = Rect { x: area.x + used, width: area.width - used, ..area };
    }
    // Drop the least important (the last unpinned) until the line fits.
    // The last hint needs no gap after it; the line starts one column in.
    while width(&hints).saturating_sub(1) > usize::from(area.width) && hints.len() > keep {
        hints.remove(hints.len() - keep - 1);
    }
    let key_style = Style::default().fg(ACCENT).add_modifier(Modifier::BOLD);
    let label_style = Style::default().fg(Color::Gray);
    let end = area.x + area.width;
    let mut x = area.x + 1;
    for (k, label) in hints {
        if x >= end {
            break;
        }
        if !k.is_empty() {
            x = buf.set_stringn(x, area.y, &k, usize::from(end - x), key_style).0;
            x += 1;
        }
        if x >= end {
            break;
        }
        x = buf.set_stringn(x, area.y, &label, usize::from(end - x), label_style).0;
        x += 2;
    }
}
