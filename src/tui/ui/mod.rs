//! Drawing: `render` is a pure function of [`AppState`] into a ratatui frame. The layout
//! functions here are also what `update` uses to size agents and to hit-test the mouse, so what is
//! drawn and what is clicked always agree.

mod compare;
mod dialog;
mod diff;
mod footer;
mod gate;
mod help;
pub mod list;
pub mod pane;

#[cfg(test)]
mod tests;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget};

use super::state::{AppState, Mode, View};
use crate::proto::AgentInfo;
use crate::term::Size;

/// Where each part of the dashboard goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Everything above the footer.
    pub main: Rect,
    /// The agent list (list view only; empty in the grid).
    pub list: Rect,
    /// The line above the viewed agent's screen.
    pub title: Rect,
    /// The viewed agent's screen.
    pub pane: Rect,
    pub footer: Rect,
}

/// The list takes a quarter of the width, within limits that keep names readable and leave the
/// agent most of the room.
pub fn list_width(cols: u16) -> u16 {
    (cols / 4).clamp(24, 34).min(cols / 2)
}

pub fn areas(st: &AppState) -> Areas {
    let a = st.area;
    let main = Rect { height: a.height.saturating_sub(1), ..a };
    let footer = Rect { y: a.y + main.height, height: a.height.min(1), ..a };
    if st.effective_view() == View::Grid {
        return Areas { main, list: Rect::default(), title: Rect::default(), pane: main, footer };
    }
    let (list, title, pane) = list_layout(main);
    Areas { main, list, title, pane, footer }
}

/// The list view's parts of `main`: the list, a separator column, and on the right a title line
/// over the agent's screen.
fn list_layout(main: Rect) -> (Rect, Rect, Rect) {
    let lw = list_width(main.width);
    let list = Rect { width: lw, ..main };
    let right_x = main.x + lw + 1;
    let right_w = main.width.saturating_sub(lw + 1);
    let title = Rect { x: right_x, y: main.y, width: right_w, height: main.height.min(1) };
    let pane = Rect {
        x: right_x,
        y: main.y + title.height,
        width: right_w,
        height: main.height.saturating_sub(1),
    };
    (list, title, pane)
}

/// The size an agent viewed beside the list gets: what new agents start at, and what the viewed
/// agent follows when the terminal is resized (in the grid too, so leaving it changes nothing).
pub fn pane_size(st: &AppState) -> Size {
    let main = Rect { height: st.area.height.saturating_sub(1), ..st.area };
    let (_, _, pane) = list_layout(main);
    Size::new(pane.width.max(2), pane.height.max(2))
}

/// The grid's cells for `n` agents: as square as possible, filled row by row.
pub fn grid_cells(main: Rect, n: usize) -> Vec<Rect> {
    if n == 0 || main.width == 0 || main.height == 0 {
        return Vec::new();
    }
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
    let rows = n.div_ceil(cols);
    let mut cells = Vec::with_capacity(n);
    for i in 0..n {
        let (r, c) = ((i / cols) as u32, (i % cols) as u32);
        let (w, h) = (u32::from(main.width), u32::from(main.height));
        let (cols32, rows32) = (cols as u32, rows as u32);
        let x0 = w * c / cols32;
        let x1 = w * (c + 1) / cols32;
        let y0 = h * r / rows32;
        let y1 = h * (r + 1) / rows32;
        cells.push(Rect {
            x: main.x + x0 as u16,
            y: main.y + y0 as u16,
            width: (x1 - x0) as u16,
            height: (y1 - y0) as u16,
        });
    }
    cells
}

pub const ACCENT: Color = Color::Cyan;

/// The badge that says who needs you.
pub fn badge(a: &AgentInfo) -> (String, Style) {
    let s = Style::default();
    match a.status.as_str() {
        "starting" => ("◌ starting".into(), s.fg(Color::Blue)),
        "working" => ("● working".into(), s.fg(Color::Yellow)),
        "needs-input" => {
            ("▲ needs input".into(), s.fg(Color::Magenta).add_modifier(Modifier::BOLD))
        }
        "idle" => ("○ idle".into(), s.fg(Color::Green)),
        "stuck" => ("■ stuck".into(), s.fg(Color::Red).add_modifier(Modifier::BOLD)),
        "exited" => (
            match a.exit_code {
                Some(c) => format!("✕ exited {c}"),
                None => "✕ exited".into(),
            },
            s.fg(Color::DarkGray),
        ),
        other => (format!("? {other}"), s.fg(Color::DarkGray)),
    }
}

/// Overlays shown beside the status: predicted conflicts first (they decide whether to land now),
/// then its place in the landing queue, the diff stat, the port and queued messages.
pub fn overlays(a: &AgentInfo) -> Vec<String> {
    let mut v = Vec::new();
    if !a.conflicts.is_empty() {
        v.push(format!("conflicts with {}", conflict_names(a)));
    }
    if let Some(l) = &a.landing {
        v.push(match (l.state.as_str(), l.position) {
            ("waiting", Some(p)) => format!("landing #{p}"),
            ("blocked", _) => "landing blocked".to_string(),
            (state, _) => format!("landing: {state}"),
        });
    }
    if let Some(d) = a.diff.filter(|d| d.files > 0) {
        v.push(diff_stat(&d));
    }
    if let Some(p) = a.port {
        v.push(format!(":{p}"));
    }
    if a.queued > 0 {
        v.push(format!("{} queued", a.queued));
    }
    v
}

/// `+ins -del N files`: how much an agent changed against its base.
pub fn diff_stat(d: &crate::proto::DiffStat) -> String {
    let files = if d.files == 1 { "file" } else { "files" };
    format!("+{} -{} {} {files}", d.insertions, d.deletions, d.files)
}

/// Who an agent's work would conflict with: agents by name, the base branch marked "(base)".
pub fn conflict_names(a: &AgentInfo) -> String {
    a.conflicts
        .iter()
        .map(|c| if c.base { format!("{} (base)", c.with) } else { c.with.clone() })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(st: &AppState, frame: &mut Frame) {
    let ar = areas(st);
    let buf = frame.buffer_mut();
    match st.effective_view() {
        View::List => {
            list::render(st, ar.list, buf);
            separator(ar, buf);
            pane::render_viewed(st, ar.title, ar.pane, buf);
        }
        View::Grid => pane::render_grid(st, ar.main, buf),
    }
    footer::render(st, ar.footer, buf);
    if let Some(n) = &st.notice {
        notice(&n.text, n.error, ar.main, buf);
    }
    match &st.mode {
        Mode::Dialog(d) => {
            if let Some(pos) = dialog::render(st, d, ar.main, frame.buffer_mut()) {
                frame.set_cursor_position(pos);
            }
        }
        Mode::Help => help::render(st, ar.main, frame.buffer_mut()),
        Mode::Compare(v) => {
            compare::render(v, ar.main, frame.buffer_mut());
            if let Some(n) = &st.notice {
                notice(&n.text, n.error, ar.main, frame.buffer_mut());
            }
        }
        Mode::Diff(d) => {
            diff::render(st, d, ar.main, frame.buffer_mut());
            // The view covers everything: what its review keys report shows over it.
            if let Some(n) = &st.notice {
                notice(&n.text, n.error, ar.main, frame.buffer_mut());
            }
        }
        Mode::Gate(g) => gate::render(g, ar.main, frame.buffer_mut()),
        Mode::Focus => {
            if let Some(pos) = pane::focus_cursor(st, ar.pane) {
                frame.set_cursor_position(pos);
            }
        }
        Mode::Normal => {}
    }
}

fn separator(ar: Areas, buf: &mut Buffer) {
    let x = ar.list.x + ar.list.width;
    if x >= ar.main.x + ar.main.width {
        return;
    }
    for y in ar.main.y..ar.main.y + ar.main.height {
        buf[(x, y)].set_char('│').set_style(Style::default().fg(Color::DarkGray));
    }
}

/// Words of `text` in lines at most `width` columns wide (longer words are cut).
pub fn wrap(text: &str, width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let mut word: String = word.to_string();
            loop {
                let wlen = word.chars().count();
                let llen = line.chars().count();
                if llen > 0 && llen + 1 + wlen <= width {
                    line.push(' ');
                    line.push_str(&word);
                    break;
                }
                if llen > 0 {
                    out.push(std::mem::take(&mut line));
                }
                if wlen <= width {
                    line = word;
                    break;
                }
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                out.push(head);
            }
        }
        out.push(line);
    }
    while out.len() > 1 && out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// A message box at the bottom of the main area: errors in red until the next key.
fn notice(text: &str, error: bool, main: Rect, buf: &mut Buffer) {
    if main.width < 6 || main.height < 3 {
        return;
    }
    let inner_w = main.width - 4;
    let mut lines = wrap(text, inner_w);
    let max_lines = usize::from((main.height / 2).saturating_sub(2)).max(1);
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(l) = lines.last_mut() {
            l.push('…');
        }
    }
    let h = lines.len() as u16 + 2;
    let area = Rect { x: main.x, y: main.y + main.height - h, width: main.width, height: h };
    let color = if error { Color::Red } else { ACCENT };
    let title = if error { " error " } else { " note " };
    Clear.render(area, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(Style::default().fg(color))
        .title(Span::styled(title, Style::default().fg(color).add_modifier(Modifier::BOLD)));
    let inner = block.inner(area);
    block.render(area, buf);
    let text: Vec<Line> = lines.into_iter().map(Line::from).collect();
    Paragraph::new(text).render(Rect { x: inner.x + 1, width: inner.width - 1, ..inner }, buf);
}

/// A centred box of `w` x `h` inside `outer`, cleared, with a title; returns its inside.
pub fn popup(outer: Rect, w: u16, h: u16, title: &str, buf: &mut Buffer) -> Rect {
    let w = w.min(outer.width);
    let h = h.min(outer.height);
    let area = Rect {
        x: outer.x + (outer.width - w) / 2,
        y: outer.y + (outer.height - h) / 2,
        width: w,
        height: h,
    };
    Clear.render(area, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(Style::default().fg(ACCENT))
        .title(Span::styled(
            format!(" {title} "),
            Style::default().fg(ACCENT).add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// Text cut to `width` columns, with an ellipsis when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(width - 1).collect();
    t.push('…');
    t
}
