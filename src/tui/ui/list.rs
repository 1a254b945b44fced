//! The agent list: two lines per agent (number, name, status badge; then profile and overlays),
//! under a heading per repository when the server has several. `rows` is the model both the
//! drawing and the mouse use.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::{badge, fit, overlays};
use crate::tui::action::Action;
use crate::tui::keymap::KeyMode;
use crate::tui::state::{AgentKey, AppState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A repository heading.
    Group(String),
    /// Agent `index` (into `AppState::agents`); `true` for its first line.
    Agent(usize, bool),
}

pub fn rows(st: &AppState) -> Vec<Row> {
    let grouped = st.grouped();
    let mut out = Vec::with_capacity(st.agents.len() * 2 + 4);
    let mut last_repo = None;
    for (i, a) in st.agents.iter().enumerate() {
        if grouped && last_repo != Some(&a.repo) {
            let name = a
                .repo
                .file_name()
                .map_or_else(|| a.repo.display().to_string(), |n| n.to_string_lossy().into_owned());
            let name = match crate::hosts::split(&a.repo) {
                None => name,
                Some((host, _)) => match st.hosts.get(&host) {
                    Some(h) if !h.connected => format!("{host}: {name} · disconnected"),
                    _ => format!("{host}: {name}"),
                },
            };
            out.push(Row::Group(name));
            last_repo = Some(&a.repo);
        }
        out.push(Row::Agent(i, true));
        out.push(Row::Agent(i, false));
    }
    out
}

/// ` HH:MM:SS UTC`, when the host was ever seen.
fn last_seen(at: Option<std::time::SystemTime>) -> String {
    let Some(secs) =
        at.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() % 86_400)
    else {
        return String::new();
    };
    format!(" {:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The list without its heading line.
pub fn body(list: Rect) -> Rect {
    Rect { y: list.y + 1, height: list.height.saturating_sub(1), ..list }
}

/// The first row shown, so that the selected agent is on screen.
pub fn offset(st: &AppState, rows: &[Row], height: u16) -> usize {
    let h = usize::from(height);
    let sel = st.selected.as_ref().and_then(|k| st.index_of(k));
    let Some(last) =
        rows.iter().rposition(|r| matches!(r, Row::Agent(i, false) if Some(*i) == sel))
    else {
        return 0;
    };
    (last + 1).saturating_sub(h)
}

/// The agent drawn at screen row `y` of the list area.
pub fn hit(st: &AppState, list: Rect, y: u16) -> Option<AgentKey> {
    let b = body(list);
    if y < b.y || y >= b.y + b.height {
        return None;
    }
    let rows = rows(st);
    let off = offset(st, &rows, b.height);
    match rows.get(off + usize::from(y - b.y))? {
        Row::Agent(i, _) => st.agents.get(*i).map(AppState::key_of),
        Row::Group(_) => None,
    }
}

fn put(buf: &mut Buffer, x: u16, y: u16, max_x: u16, s: &str, style: Style) -> u16 {
    if x >= max_x {
        return x;
    }
    let (end_x, _) = buf.set_stringn(x, y, s, usize::from(max_x - x), style);
    end_x
}

pub fn render(st: &AppState, area: Rect, buf: &mut Buffer) {
    if area.width < 4 || area.height == 0 {
        return;
    }
    let max_x = area.x + area.width;
    let head = Style::default().add_modifier(Modifier::BOLD);
    let title = if st.agents.is_empty() {
        " agents".to_string()
    } else {
        format!(" agents ({})", st.agents.len())
    };
    put(buf, area.x, area.y, max_x, &title, head);
    let b = body(area);
    let dim = Style::default().fg(Color::DarkGray);
    if let Some(e) = &st.server_error {
        for (i, l) in
            super::wrap(e, b.width.saturating_sub(1)).iter().enumerate().take(usize::from(b.height))
        {
            put(buf, b.x + 1, b.y + i as u16, max_x, l, Style::default().fg(Color::Red));
        }
        return;
    }
    if st.agents.is_empty() {
        let msg = if !st.loaded {
            "connecting…".to_string()
        } else {
            match st.keymap.first_key(KeyMode::Normal, Action::New) {
                Some(k) => format!("no agents yet; {k} starts one"),
                None => "no agents yet".into(),
            }
        };
        for (i, l) in super::wrap(&msg, b.width.saturating_sub(1))
            .iter()
            .enumerate()
            .take(usize::from(b.height))
        {
            put(buf, b.x + 1, b.y + i as u16, max_x, l, dim);
        }
        return;
    }
    let rows = rows(st);
    let off = offset(st, &rows, b.height);
    let sel = st.selected.as_ref().and_then(|k| st.index_of(k));
    for (n, row) in rows.iter().skip(off).take(usize::from(b.height)).enumerate() {
        let y = b.y + n as u16;
        match row {
            Row::Group(name) => {
                put(buf, b.x, y, max_x, &format!("▾ {name}"), head.fg(Color::Blue));
            }
            Row::Agent(i, first) => {
                let a = &st.agents[*i];
                let selected = sel == Some(*i);
                let base = if selected {
                    Style::default().bg(Color::Indexed(237))
                } else {
                    Style::default()
                };
                if selected {
                    buf.set_style(Rect { x: b.x, y, width: b.width, height: 1 }, base);
                }
                if *first {
                    let marker = if selected { "▸" } else { " " };
                    let num = if *i < 9 { format!("{}", i + 1) } else { " ".into() };
                    let (badge_text, badge_style) = badge(a);
                    let badge_w = badge_text.chars().count() as u16;
                    let name_room = b.width.saturating_sub(4 + badge_w + 1);
                    let mut x = put(buf, b.x, y, max_x, marker, base.fg(super::ACCENT));
                    x = put(buf, x, y, max_x, &num, base.fg(Color::DarkGray));
                    x = put(buf, x, y, max_x, " ", base);
                    let name_style =
                        if selected { base.add_modifier(Modifier::BOLD) } else { base };
                    put(buf, x, y, max_x, &fit(&a.name, usize::from(name_room)), name_style);
                    let bx = (b.x + b.width).saturating_sub(badge_w + 1).max(x);
                    put(buf, bx, y, max_x, &badge_text, base.patch(badge_style));
                } else {
                    let mut parts = vec![a.profile.clone()];
                    // A host that does not answer: what is shown is from when it last did.
                    let away = crate::hosts::split(&a.repo)
                        .and_then(|(h, _)| st.hosts.get(&h))
                        .filter(|h| !h.connected);
                    match away {
                        Some(h) => parts = vec![format!("last seen{}", last_seen(h.last_seen))],
                        None => parts.extend(overlays(a)),
                    }
                    let text = parts.join(" · ");
                    put(
                        buf,
                        b.x + 4,
                        y,
                        max_x,
                        &fit(&text, usize::from(b.width.saturating_sub(5))),
                        base.fg(Color::DarkGray),
                    );
                }
            }
        }
    }
}
