//! The diff view: an agent's patch against its base, full screen, its files listed on top and
//! its lines coloured as `git diff` colours them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::popup;
use crate::tui::review::{Review, cursor_place, layout};
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
    let review = &d.review;
    let (shown, rows) = layout(inner.height, d.files.len(), review.input.is_some());
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
    let last = (d.offset + rows).min(d.lines.len());
    let mut rule = format!("── lines {}–{last} of {} ", d.offset + 1, d.lines.len());
    if let Some(place) = cursor_place(d) {
        rule.push_str(&format!("· at {place} "));
    }
    match review.comments.len() {
        0 => {}
        1 => rule.push_str("· 1 comment "),
        n => rule.push_str(&format!("· {n} comments ")),
    }
    let rule: String = rule.chars().chain(std::iter::repeat('─')).take(w).collect();
    buf.set_stringn(x, y, &rule, w, dim);
    y += 1;
    let cursor_bg = Color::Indexed(238);
    for (i, l) in d.lines.iter().enumerate().skip(d.offset).take(rows) {
        if i == review.cursor {
            buf.set_style(
                Rect { x: inner.x, y, width: inner.width, height: 1 },
                Style::default().bg(cursor_bg),
            );
        }
        if review.commented(i) {
            buf.set_stringn(
                inner.x,
                y,
                "●",
                1,
                Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            );
        }
        let mut style = line_style(l);
        if i == review.cursor {
            style = style.bg(cursor_bg);
        }
        buf.set_stringn(x, y, l, w, style);
        y += 1;
    }
    if let Some((_, c, field)) = &review.input {
        let y = bottom - 1;
        let label = format!("comment on {}:{} › ", c.path, c.line);
        let accent = Style::default().fg(super::ACCENT).add_modifier(Modifier::BOLD);
        let (cx, _) = buf.set_stringn(x, y, &label, w, accent);
        let room = w.saturating_sub(usize::from(cx - x)).saturating_sub(1);
        let start = field.cursor.saturating_sub(room);
        let shown: String = field.text.chars().skip(start).take(room).collect();
        let (ex, _) = buf.set_stringn(cx, y, &shown, room, Style::default());
        let caret = cx + (field.cursor - start) as u16;
        if caret < inner.x + inner.width {
            buf.set_style(
                Rect { x: caret.min(ex), y, width: 1, height: 1 },
                Style::default().add_modifier(Modifier::REVERSED),
            );
        }
    }
    if let Some(sel) = review.listing {
        comment_list(review, sel, main, buf);
    }
}

/// The comments made so far (`C`), over the patch.
fn comment_list(review: &Review, sel: usize, main: Rect, buf: &mut Buffer) {
    let w = main.width.saturating_sub(6).min(100);
    let n = review.comments.len();
    let h = (n as u16 * 2 + 3).min(main.height.saturating_sub(2));
    let title = format!("{n} comment{} to send", if n == 1 { "" } else { "s" });
    let inner = popup(main, w, h, &title, buf);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    let (x, cw) = (inner.x + 1, usize::from(inner.width - 2));
    let bottom = inner.y + inner.height;
    // The selected entry stays in view.
    let per = 2usize;
    let fit = (usize::from(inner.height.saturating_sub(1)) / per).max(1);
    let first = sel.saturating_sub(fit - 1);
    let mut y = inner.y;
    for (i, (_, c)) in review.comments.iter().enumerate().skip(first) {
        if y + 1 >= bottom {
            break;
        }
        let place = match c.end {
            Some(e) => format!("{}:{}-{e}", c.path, c.line),
            None => format!("{}:{}", c.path, c.line),
        };
        let style =
            if i == sel { Style::default().bg(Color::Indexed(238)) } else { Style::default() };
        buf.set_style(Rect { x: inner.x, y, width: inner.width, height: 2 }, style);
        buf.set_stringn(
            x,
            y,
            format!("{}. {place}", i + 1),
            cw,
            style.fg(super::ACCENT).add_modifier(Modifier::BOLD),
        );
        buf.set_stringn(x + 3, y + 1, &c.text, cw.saturating_sub(3), style);
        y += 2;
    }
    let hint = "enter sends all · x deletes · esc closes";
    buf.set_stringn(x, bottom - 1, hint, cw, Style::default().fg(Color::DarkGray));
}
