//! The compare view: a group's agents side by side, and the selected one's diff.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::{fit, popup};
use crate::tui::compare::CompareView;

pub fn render(v: &CompareView, main: Rect, buf: &mut Buffer) {
    let title = format!("Compare {} ({} agents)", v.group, v.entries.len());
    let inner = popup(main, main.width, main.height, &title, buf);
    if inner.width < 8 || inner.height < 3 {
        return;
    }
    let (x, w) = (inner.x + 1, usize::from(inner.width - 2));
    let bottom = inner.y + inner.height;
    let dim = Style::default().fg(Color::DarkGray);
    let mut y = inner.y;
    if v.pending.is_some() {
        buf.set_stringn(
            x,
            y,
            "comparing (running the gate in each worktree)…",
            w,
            Style::default().fg(Color::Yellow),
        );
        return;
    }
    if let Some(e) = &v.error {
        buf.set_stringn(x, y, e, w, Style::default().fg(Color::Red).add_modifier(Modifier::BOLD));
        return;
    }
    let name_w = v.entries.iter().map(|e| e.name.chars().count()).max().unwrap_or(4).max(4);
    let gate = v.entries.iter().any(|e| e.gate.is_some());
    let mut head = format!("  {:name_w$}  {:11}  {:>5}  {:>11}", "NAME", "STATUS", "FILES", "+/-");
    if gate {
        head.push_str(&format!("  {:18}", "GATE"));
    }
    head.push_str("  TOUCHED");
    buf.set_stringn(x, y, &head, w, Style::default().add_modifier(Modifier::BOLD));
    y += 1;
    for (i, e) in v.entries.iter().enumerate() {
        if y >= bottom {
            return;
        }
        let sel = i == v.selected;
        let (files, lines) = match e.diff {
            Some(d) => (d.files.to_string(), format!("+{} -{}", d.insertions, d.deletions)),
            None => ("?".into(), "?".into()),
        };
        let mark = if sel { "▶" } else { " " };
        let mut row =
            format!("{mark} {:name_w$}  {:11}  {files:>5}  {lines:>11}", e.name, e.status);
        let style = if sel {
            Style::default().bg(Color::Indexed(238)).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        buf.set_style(Rect { x: inner.x, y, width: inner.width, height: 1 }, style);
        let (mut cx, _) = buf.set_stringn(x, y, &row, w, style);
        if gate {
            let (text, colour) = match &e.gate {
                Some(g) if g.passed => (g.summary.clone(), Color::Green),
                Some(g) => (g.summary.clone(), Color::Red),
                None => ("-".into(), Color::DarkGray),
            };
            row = format!("  {:18}", fit(&text, 18));
            (cx, _) = buf.set_stringn(
                cx,
                y,
                &row,
                w.saturating_sub(usize::from(cx - x)),
                style.fg(colour),
            );
        }
        let touched = format!("  {}", e.files.join(", "));
        buf.set_stringn(cx, y, fit(&touched, w.saturating_sub(usize::from(cx - x))), w, style);
        y += 1;
    }
    if y >= bottom {
        return;
    }
    let name = v.entries.get(v.selected).map_or("", |e| e.name.as_str());
    let (prompt, style) = match v.confirm {
        _ if v.picking.is_some() => {
            (format!("picking {name}…"), Style::default().fg(Color::Yellow))
        }
        Some(false) => (
            format!(
                "enter: land {name} now and remove the others (their work is kept under refs/corral/backup/) · esc: not yet"
            ),
            Style::default().fg(super::ACCENT).add_modifier(Modifier::BOLD),
        ),
        Some(true) => (
            format!(
                "enter: queue {name} to land and remove the others (their work is kept under refs/corral/backup/) · esc: not yet"
            ),
            Style::default().fg(super::ACCENT).add_modifier(Modifier::BOLD),
        ),
        None => ("enter picks the selected one · L picks it through the landing queue".into(), dim),
    };
    y += 1;
    if y >= bottom {
        return;
    }
    buf.set_stringn(x, y, fit(&prompt, w), w, style);
    y += 1;
    if y >= bottom {
        return;
    }
    let rule = format!("── diff of {name} ");
    let rule: String = rule.chars().chain(std::iter::repeat('─')).take(w).collect();
    buf.set_stringn(x, y, &rule, w, dim);
    y += 1;
    if v.diff_pending.is_some() {
        buf.set_stringn(x, y, "computing the diff…", w, Style::default().fg(Color::Yellow));
        return;
    }
    for l in &v.diff {
        if y >= bottom {
            break;
        }
        buf.set_stringn(x, y, l, w, super::diff::line_style(l));
        y += 1;
    }
}
