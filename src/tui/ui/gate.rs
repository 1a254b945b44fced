//! The gate-output view: the last run of an agent's landing gate, full screen, as `corral tail`
//! shows an agent: the newest lines at the bottom, followed while the gate runs.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::popup;
use crate::tui::state::GateView;

pub fn render(g: &GateView, main: Rect, buf: &mut Buffer) {
    let title = format!("Landing gate of {} ({})", g.agent.1, g.state);
    let inner = popup(main, main.width, main.height, &title, buf);
    if inner.width < 4 || inner.height < 2 {
        return;
    }
    let (x, w) = (inner.x + 1, usize::from(inner.width - 1));
    let bottom = inner.y + inner.height;
    let dim = Style::default().fg(Color::DarkGray);
    let mut y = inner.y;
    let head = match (&g.error, g.lines.is_empty(), g.pending.is_some()) {
        (Some(e), _, _) => {
            let red = Style::default().fg(Color::Red).add_modifier(Modifier::BOLD);
            buf.set_stringn(x, y, e, w, red);
            return;
        }
        (None, true, true) => "reading the gate's output…".to_string(),
        (None, true, false) => "The gate has printed nothing yet.".to_string(),
        (None, false, _) => {
            let rows = usize::from(bottom - y - 1);
            let last = (g.offset + rows).min(g.lines.len());
            let follow = if g.follow { ", following" } else { "" };
            format!("── lines {}–{last} of {}{follow} ", g.offset + 1, g.lines.len())
        }
    };
    let rule: String = head.chars().chain(std::iter::repeat('─')).take(w).collect();
    buf.set_stringn(x, y, &rule, w, dim);
    y += 1;
    // The log's path, where `land --status` also points, on the rule's right end.
    let path = format!(" {} ", g.path.display());
    if path.chars().count() + head.chars().count() + 2 < w {
        let px = x + (w - path.chars().count()) as u16;
        buf.set_stringn(px, inner.y, &path, path.chars().count(), dim);
    }
    for l in g.lines.iter().skip(g.offset).take(usize::from(bottom - y)) {
        buf.set_stringn(x, y, l, w, Style::default());
        y += 1;
    }
}
