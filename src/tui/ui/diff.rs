//! The diff view: an agent's patch against its base, full screen, its files listed on top and
//! its lines coloured as `git diff` colours them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::popup;
use crate::tui::state::{AppState, DiffView};

/// The colour of a patch line, from how it starts.
pub fn line_style(l: &str) -> Style {
    let s = Style::default();
    if l.starts_with("diff --git") || l.starts_with("+++") || l.starts_with("---") {
        s.add_modifier(Modifier::BOLD)
    } else if l.starts_with("@@") {
        s.fg(Color::Cyan)
    } else if l.starts_with('+') {
        s.fg(Color::Green)
    } else if l.starts_with('-') {
        s.fg(Color::Red)
    } else if l.starts_with("index ") || l.starts_with("new file") || l.starts_with("deleted file")
    {
        s.fg(Color::DarkGray)
    } else {
        s
    }
}

pub fn render(st: &AppState, d: &DiffView, main: Rect, buf: &mut Buffer) {
    let a = st.agent(&d.agent);
    let base = a.map_or("its base", |a| a.base.as_str());
    let title = format!("Diff of {} against {base}", d.agent.1);
    let inner = popup(main, main.width, main.height, &title, buf);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    let (x, w) = (inner.x + 1, usize::from(inner.width - 1));
    let bottom = inner.y + inner.height;
    let dim = Style::default().fg(Color::DarkGray);
    let say = |buf: &mut Buffer, text: &str, style: Style| {
        for (i, l) in super::wrap(text, inner.width.saturating_sub(2)).iter().enumerate() {
            let y = inner.y + i as u16;
            if y >= bottom {
                break;
            }
            buf.set_stringn(x, y, l, w, style);
        }
    };
    if d.pending.is_some() {
        say(buf, "computing the diff…", Style::default().fg(Color::Yellow));
        return;
    }
    if let Some(e) = &d.error {
        say(buf, e, Style::default().fg(Color::Red).add_modifier(Modifier::BOLD));
        return;
    }
    if d.lines.is_empty() {
        say(buf, &format!("No changes against {base}."), dim);
        return;
    }
    // The files: at most a third of the height, the rest summarised.
    let room = usize::from(inner.height / 3).max(1);
    let shown = if d.files.len() > room { room.saturating_sub(1) } else { d.files.len() };
    let mut y = inner.y;
    let (ins, del): (u32, u32) =
        d.files.iter().fold((0, 0), |(i, dl), f| (i + f.insertions, dl + f.deletions));
    let files = if d.files.len() == 1 { "file" } else { "files" };
    let head = format!("{} {files} changed, +{ins} -{del}", d.files.len());
    buf.set_stringn(x, y, &head, w, Style::default().add_modifier(Modifier::BOLD));
    y += 1;
    for f in d.files.iter().take(shown) {
        if y >= bottom {
            return;
        }
        let plus = format!("{:>6}", format!("+{}", f.insertions));
        let minus = format!("{:>6}", format!("-{}", f.deletions));
        let (mut cx, _) = buf.set_stringn(x, y, &plus, w, Style::default().fg(Color::Green));
        (cx, _) = buf.set_stringn(
            cx,
            y,
            &minus,
            w.saturating_sub(usize::from(cx - x)),
            Style::default().fg(Color::Red),
        );
        buf.set_stringn(
            cx + 2,
            y,
            &f.path,
            w.saturating_sub(usize::from(cx + 2 - x)),
            Style::default(),
        );
        y += 1;
    }
    if shown < d.files.len() && y < bottom {
        buf.set_stringn(x, y, format!("… and {} more", d.files.len() - shown), w, dim);
        y += 1;
    }
    if y >= bottom {
        return;
    }
    let rows = usize::from(bottom - y - 1);
    let last = (d.offset + rows).min(d.lines.len());
    let rule = format!("── lines {}–{last} of {} ", d.offset + 1, d.lines.len());
    let rule: String = rule.chars().chain(std::iter::repeat('─')).take(w).collect();
    buf.set_stringn(x, y, &rule, w, dim);
    y += 1;
    for l in d.lines.iter().skip(d.offset).take(rows) {
        buf.set_stringn(x, y, l, w, line_style(l));
        y += 1;
    }
}
