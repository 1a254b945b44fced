//! The `?` overlay: every binding of every mode, read from the keymap the keys go through.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::{ACCENT, fit, popup};
use crate::tui::action::Action;
use crate::tui::keymap::{KeyMode, KeySpec};
use crate::tui::state::AppState;

/// A heading (`None` key) or a key and what it does.
pub fn lines(st: &AppState) -> Vec<(Option<String>, String)> {
    let km = &st.keymap;
    let mut out = Vec::new();
    for mode in KeyMode::ALL {
        out.push((None, mode.title().to_string()));
        if mode == KeyMode::Focus {
            let p = km.prefix.to_string();
            out.push((Some(p.clone()), "back to the dashboard".into()));
            out.push((Some(format!("{p} {p}")), format!("sends {p} to the agent")));
        }
        let bindings = km.bindings(mode);
        let digits: Vec<(Action, Vec<KeySpec>)> =
            bindings.iter().filter(|(a, _)| matches!(a, Action::Jump(_))).cloned().collect();
        let plain_digits = digits.len() == 9
            && digits.iter().all(|(a, ks)| {
                let Action::Jump(n) = a else { return false };
                ks.len() == 1 && ks[0] == KeySpec::plain(char::from(b'0' + n))
            });
        let mut shown_digits = false;
        for (a, ks) in bindings {
            if matches!(a, Action::Jump(_)) && plain_digits {
                if !shown_digits {
                    out.push((Some("1…9".into()), "select agent N".into()));
                    shown_digits = true;
                }
                continue;
            }
            let keys = ks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            out.push((Some(keys), a.describe()));
        }
        match mode {
            KeyMode::Focus => out.push((Some("other keys".into()), "go to the agent".into())),
            KeyMode::Dialog => {
                out.push((Some("typing".into()), "edits the field".into()));
                out.push((Some("left/right".into()), "pick the profile".into()));
            }
            KeyMode::Normal => {}
        }
    }
    out.push((None, "Mouse".into()));
    out.push((Some("click".into()), "select; a screen: focus".into()));
    out.push((Some("wheel".into()), "scroll history".into()));
    out
}

pub fn render(st: &AppState, main: Rect, buf: &mut Buffer) {
    let all = lines(st);
    let key_w = all
        .iter()
        .filter_map(|(k, _)| k.as_ref())
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(8)
        .min(16);
    let text_w = all.iter().map(|(_, t)| t.chars().count()).max().unwrap_or(20);
    let col_w = (key_w + 2 + text_w + 2) as u16;
    let avail_h = usize::from(main.height.saturating_sub(2)).max(1);
    // Two columns when one would not fit the height, split at the heading nearest the middle
    // so no section is cut in two.
    let split = if all.len() > avail_h {
        let half = all.len().div_ceil(2);
        (1..all.len())
            .filter(|i| all[*i].0.is_none())
            .min_by_key(|i| i.abs_diff(half))
            .unwrap_or(half)
    } else {
        all.len()
    };
    // A section too long for that (the dashboard's own keys on a small terminal) goes on in the
    // second column rather than losing its last keys below the frame.
    let split = if split > avail_h || all.len() - split > avail_h { avail_h } else { split };
    let columns: u16 = if split < all.len() { 2 } else { 1 };
    let per_col = split.max(all.len() - split);
    let w = (col_w * columns + 2).min(main.width);
    let h = per_col as u16 + 2;
    let inner = popup(main, w, h, "Keys", buf);
    let cw = inner.width / columns;
    for (i, (k, text)) in all.iter().enumerate() {
        let (c, r) = if i < split { (0, i) } else { (1, i - split) };
        if r as u16 >= inner.height {
            continue;
        }
        let x = inner.x + 1 + c as u16 * cw;
        let y = inner.y + r as u16;
        let room = usize::from(cw.saturating_sub(2));
        match k {
            None => {
                buf.set_stringn(
                    x,
                    y,
                    fit(text, room),
                    room,
                    Style::default().fg(ACCENT).add_modifier(Modifier::BOLD),
                );
            }
            Some(k) => {
                let kk = fit(k, key_w);
                buf.set_stringn(x + 1, y, &kk, room, Style::default().add_modifier(Modifier::BOLD));
                let tx = x + 1 + key_w as u16 + 1;
                let trem = usize::from((x + cw).saturating_sub(tx + 1));
                buf.set_stringn(tx, y, fit(text, trem), trem, Style::default().fg(Color::Gray));
            }
        }
    }
}
