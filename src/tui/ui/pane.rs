//! Agents' screens drawn into the frame: our `Screen` cells with their colours and attributes,
//! the cursor, and the history when scrolled back; one beside the list, or several in the grid.

use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders, Widget};

use super::{ACCENT, badge, fit, grid_cells, overlays};
use crate::term::screen::attr;
use crate::term::{Cell, Line, Screen};
use crate::tui::action::Action;
use crate::tui::keymap::KeyMode;
use crate::tui::state::{AgentKey, AppState, Mode, Pane, View};

pub fn color(c: crate::term::Color) -> Color {
    match c {
        crate::term::Color::Default => Color::Reset,
        crate::term::Color::Indexed(n) => Color::Indexed(n),
        crate::term::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

pub fn modifier(attrs: u16) -> Modifier {
    let mut m = Modifier::empty();
    if attrs & attr::BOLD != 0 {
        m |= Modifier::BOLD;
    }
    if attrs & attr::DIM != 0 {
        m |= Modifier::DIM;
    }
    if attrs & attr::ITALIC != 0 {
        m |= Modifier::ITALIC;
    }
    if attrs & (attr::UNDERLINE | attr::DOUBLE_UNDERLINE | attr::UNDERCURL) != 0 {
        m |= Modifier::UNDERLINED;
    }
    if attrs & attr::BLINK != 0 {
        m |= Modifier::SLOW_BLINK;
    }
    if attrs & attr::INVERSE != 0 {
        m |= Modifier::REVERSED;
    }
    if attrs & attr::HIDDEN != 0 {
        m |= Modifier::HIDDEN;
    }
    if attrs & attr::STRIKE != 0 {
        m |= Modifier::CROSSED_OUT;
    }
    m
}

/// Draw one row of cells at (x, y), at most `width` columns (and never past the buffer's edge).
/// Works on the buffer's row as a slice: with 8 busy panes this runs for every cell of every
/// pane in every frame, and indexing cell by cell costs a position check each time.
fn draw_cells(cells: &[Cell], x: u16, y: u16, width: u16, buf: &mut Buffer) {
    let room = buf.area.right().saturating_sub(x);
    let n = cells.len().min(usize::from(width.min(room)));
    if n == 0 || !buf.area.contains(Position::new(x, y)) {
        return;
    }
    let start = buf.index_of(x, y);
    let row = &mut buf.content[start..start + n];
    let mut i = 0;
    while i < n {
        let cell = &cells[i];
        let out = &mut row[i];
        let wide = cell.attrs & attr::WIDE != 0;
        let spacer = cell.attrs & attr::WIDE_SPACER != 0;
        // A wide character needs its spacer inside the area; a spacer without its wide half (or
        // a wide character cut by the edge) shows as a blank in the cell's colours.
        let paired = wide && i + 1 < n && cells[i + 1].attrs & attr::WIDE_SPACER != 0;
        if spacer || (wide && !paired) {
            out.set_char(' ');
        } else if let Some(extra) = &cell.extra {
            let mut s = String::with_capacity(4 + extra.len());
            s.push(printable(cell.ch));
            s.push_str(extra);
            out.set_symbol(&s);
        } else {
            out.set_char(printable(cell.ch));
        }
        out.fg = color(cell.fg);
        out.bg = color(cell.bg);
        out.modifier = modifier(cell.attrs);
        if paired {
            // The spacer is covered by the wide character; ratatui skips it when drawing.
            let bg = out.bg;
            let next = &mut row[i + 1];
            next.reset();
            next.bg = bg;
            i += 2;
        } else {
            i += 1;
        }
    }
}

fn printable(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}

/// The first screen row shown when the screen is taller than the area: the rows that hold text
/// and the cursor, bottom-aligned, since that is where agents prompt.
pub fn anchor(screen: &Screen, height: u16) -> usize {
    let rows = screen.lines.len();
    let h = usize::from(height);
    if rows <= h {
        return 0;
    }
    let last_text = screen.lines.iter().rposition(|l| !l.is_blank()).unwrap_or(0);
    let last = last_text.max(usize::from(screen.cursor.0)).min(rows - 1);
    (last + 1).saturating_sub(h)
}

/// An agent's live screen.
pub struct ScreenView<'a> {
    pub screen: &'a Screen,
    /// Mark the cursor cell (when the real cursor is elsewhere).
    pub mark_cursor: bool,
}

impl Widget for ScreenView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let s = self.screen;
        let top = anchor(s, area.height);
        for (dy, line) in s.lines.iter().skip(top).take(usize::from(area.height)).enumerate() {
            draw_cells(&line.cells, area.x, area.y + dy as u16, area.width, buf);
        }
        if self.mark_cursor && s.modes.cursor_visible {
            let (r, c) = (usize::from(s.cursor.0), s.cursor.1);
            if r >= top && r < top + usize::from(area.height) && c < area.width {
                let cell = &mut buf[(area.x + c, area.y + (r - top) as u16)];
                cell.modifier.toggle(Modifier::REVERSED);
            }
        }
    }
}

/// Lines of history: the window `offset` lines above the newest.
pub struct HistoryView<'a> {
    pub lines: &'a [Line],
    pub offset: usize,
}

impl Widget for HistoryView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let h = usize::from(area.height);
        let end = self.lines.len().saturating_sub(self.offset);
        let start = end.saturating_sub(h);
        for (dy, line) in self.lines[start..end].iter().enumerate() {
            draw_cells(&line.cells, area.x, area.y + dy as u16, area.width, buf);
        }
    }
}

/// An agent's screen painted straight onto the terminal instead of through a frame (see
/// `app::paint_direct`): each change of it is one write of the rows that changed, with no frame
/// rendered and diffed, as an attached terminal gets it; frames leave those cells alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectPane {
    pub key: AgentKey,
    pub area: Rect,
    /// The agent's cursor shown as a reversed cell (the grid), not as the terminal's cursor.
    pub mark_cursor: bool,
}

/// The panes painted straight onto the terminal: the focused agent in focus mode, every agent on
/// the grid, each only while nothing is drawn over it, it shows no history, and its screen is
/// exactly its area's size.
pub fn direct_panes(st: &AppState) -> Vec<DirectPane> {
    let fits = |key: &AgentKey, area: Rect| {
        let Some(p) = st.panes.get(key) else { return false };
        let Some(s) = p.screen.as_ref() else { return false };
        p.scroll.is_none()
            && s.size.cols == area.width
            && s.size.rows == area.height
            && !area.is_empty()
    };
    if st.notice.is_some() {
        return Vec::new();
    }
    match (&st.mode, st.effective_view()) {
        (Mode::Focus, View::List) => {
            let Some(key) = st.selected.clone() else { return Vec::new() };
            let area = super::areas(st).pane;
            if fits(&key, area) {
                vec![DirectPane { key, area, mark_cursor: false }]
            } else {
                Vec::new()
            }
        }
        (Mode::Normal, View::Grid) => {
            let page = st.grid_page();
            let cells = grid_cells(super::areas(st).main, page.len());
            page.into_iter()
                .zip(cells)
                .map(|(key, cell)| (key, Block::default().borders(Borders::ALL).inner(cell)))
                .filter(|(key, area)| fits(key, *area))
                .map(|(key, area)| DirectPane { key, area, mark_cursor: true })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether `key`'s screen is painted straight onto the terminal at `area`, of `direct`.
fn is_direct(direct: &[DirectPane], key: &AgentKey, area: Rect) -> bool {
    direct.iter().any(|d| &d.key == key && d.area == area)
}

/// Mark `area` as painted by someone else: a frame does not write there.
fn skip(area: Rect, buf: &mut Buffer) {
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            buf[(x, y)].set_diff_option(CellDiffOption::Skip);
        }
    }
}

/// What the terminal shows where [`direct_panes`] are painted, drawn into `buf` (for snapshots of
/// a frame as the user sees it).
#[cfg(test)]
pub fn render_direct(st: &AppState, buf: &mut Buffer) {
    for d in direct_panes(st) {
        let Some(screen) = st.panes.get(&d.key).and_then(|p| p.screen.as_ref()) else { continue };
        for y in d.area.top()..d.area.bottom() {
            for x in d.area.left()..d.area.right() {
                buf[(x, y)].set_diff_option(CellDiffOption::None);
            }
        }
        ScreenView { screen, mark_cursor: d.mark_cursor }.render(d.area, buf);
    }
}

/// Where the real cursor goes in focus mode: the agent's cursor, when shown.
pub fn focus_cursor(st: &AppState, pane: Rect) -> Option<Position> {
    if st.mode != Mode::Focus {
        return None;
    }
    let p = st.panes.get(st.selected.as_ref()?)?;
    if p.scroll.is_some() {
        return None;
    }
    let s = p.screen.as_ref()?;
    if !s.modes.cursor_visible {
        return None;
    }
    let top = anchor(s, pane.height);
    let (r, c) = (usize::from(s.cursor.0), s.cursor.1);
    (r >= top && r - top < usize::from(pane.height) && c < pane.width)
        .then(|| Position::new(pane.x + c, pane.y + (r - top) as u16))
}

/// The body of one agent's area: history, live screen, or why there is none.
fn render_body(
    st: &AppState,
    key: &AgentKey,
    p: Option<&Pane>,
    area: Rect,
    mark: bool,
    buf: &mut Buffer,
) {
    let dim = Style::default().fg(Color::DarkGray);
    match p {
        Some(Pane { scroll: Some(sc), .. }) if !sc.lines.is_empty() => {
            HistoryView { lines: &sc.lines, offset: sc.offset }.render(area, buf);
        }
        Some(Pane { screen: Some(s), .. }) => {
            ScreenView { screen: s, mark_cursor: mark }.render(area, buf)
        }
        Some(Pane { note: Some(n), .. }) => {
            for (i, l) in super::wrap(n, area.width.saturating_sub(2))
                .iter()
                .enumerate()
                .take(usize::from(area.height))
            {
                buf.set_stringn(area.x + 1, area.y + i as u16, l, usize::from(area.width), dim);
            }
        }
        _ => {
            let starting = st.agent(key).is_some_and(|a| a.status == "starting" && a.pid.is_none());
            let msg = if starting { "starting…" } else { "connecting…" };
            buf.set_stringn(
                area.x + 1,
                area.y,
                msg,
                usize::from(area.width.saturating_sub(1)),
                dim,
            );
        }
    }
}

/// The title line over the viewed agent and its screen.
pub fn render_viewed(st: &AppState, title: Rect, pane: Rect, buf: &mut Buffer) {
    let Some(key) = st.selected.clone() else {
        welcome(st, pane, buf);
        return;
    };
    let Some(a) = st.agent(&key) else { return };
    let p = st.panes.get(&key);
    let focus = st.mode == Mode::Focus;
    let bar = if focus {
        Style::default().bg(ACCENT).fg(Color::Black)
    } else {
        Style::default().bg(Color::Indexed(236))
    };
    buf.set_style(title, bar);
    let (badge_text, badge_style) = badge(a);
    let mut spans = vec![
        Span::styled(format!(" {} ", a.name), bar.add_modifier(Modifier::BOLD)),
        Span::styled(badge_text, if focus { bar } else { bar.patch(badge_style) }),
    ];
    let mut info = vec![a.profile.clone(), a.branch.clone()];
    info.extend(overlays(a));
    if let Some(s) = p.and_then(|p| p.screen.as_ref()) {
        info.push(s.size.to_string());
    }
    spans.push(Span::styled(format!(" · {}", info.join(" · ")), bar));
    let right = match (p.and_then(|p| p.scroll.as_ref()), focus) {
        (Some(sc), _) => format!("history −{} ", sc.offset),
        (None, true) => format!("FOCUS · {} returns ", st.keymap.prefix),
        (None, false) => String::new(),
    };
    let right_w = right.chars().count() as u16;
    let mut x = title.x;
    // One column between the agent's details and the state on the right.
    let left_end = title.x + title.width.saturating_sub(right_w + u16::from(right_w > 0));
    for sp in &spans {
        if x >= left_end {
            break;
        }
        let (nx, _) = buf.set_stringn(x, title.y, &sp.content, usize::from(left_end - x), sp.style);
        x = nx;
    }
    if right_w > 0 && right_w < title.width {
        buf.set_stringn(
            title.x + title.width - right_w,
            title.y,
            &right,
            usize::from(right_w),
            bar.add_modifier(Modifier::BOLD),
        );
    }
    if is_direct(&direct_panes(st), &key, pane) {
        skip(pane, buf);
        return;
    }
    render_body(st, &key, p, pane, !focus, buf);
}

fn welcome(st: &AppState, pane: Rect, buf: &mut Buffer) {
    let new = st
        .keymap
        .first_key(KeyMode::Normal, Action::New)
        .map_or_else(|| "the new-agent key".to_string(), |k| k.to_string());
    let help = st
        .keymap
        .first_key(KeyMode::Normal, Action::Help)
        .map_or_else(String::new, |k| format!(" {k} lists every key."));
    // How to get into an agent and, above all, back out of it: a new user's first question.
    let focus = st.keymap.first_key(KeyMode::Normal, Action::Focus).map_or_else(String::new, |k| {
        format!(" {k} focuses it (your keys go to the agent); {} comes back.", st.keymap.prefix)
    });
    let text = format!(
        "corral runs coding agents side by side, each in its own terminal, git worktree and branch. Press {new} to start one.{focus}{help} Agents keep running when the dashboard closes."
    );
    for (i, l) in super::wrap(&text, pane.width.saturating_sub(4))
        .iter()
        .enumerate()
        .take(usize::from(pane.height.saturating_sub(1)))
    {
        buf.set_stringn(
            pane.x + 2,
            pane.y + 1 + i as u16,
            l,
            usize::from(pane.width),
            Style::default(),
        );
    }
}

/// Several agents live at once, the page of up to nine that holds the selection.
pub fn render_grid(st: &AppState, main: Rect, buf: &mut Buffer) {
    let page = st.grid_page();
    if page.is_empty() {
        welcome(st, main, buf);
        return;
    }
    let cells = grid_cells(main, page.len());
    let direct = direct_panes(st);
    for (key, cell) in page.iter().zip(cells) {
        let Some(i) = st.index_of(key) else { continue };
        let a = &st.agents[i];
        let selected = st.selected.as_ref() == Some(key);
        let border = if selected {
            Style::default().fg(ACCENT).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::DarkGray)
        };
        let (badge_text, badge_style) = badge(a);
        let num = if i < 9 { format!("{} ", i + 1) } else { String::new() };
        let room = usize::from(cell.width.saturating_sub(6 + badge_text.chars().count() as u16));
        let title = ratatui::text::Line::from(vec![
            Span::styled(format!(" {num}{} ", fit(&a.name, room)), border),
            Span::styled(format!("{badge_text} "), badge_style),
        ]);
        let kind = if selected { BorderType::Thick } else { BorderType::Rounded };
        let inner = cell_frame(cell, kind, border, &title, buf);
        if is_direct(&direct, key, inner) {
            skip(inner, buf);
            continue;
        }
        render_body(st, key, st.panes.get(key), inner, true, buf);
    }
}

/// A grid cell's border and title, drawn as `Block::bordered()` with one left-aligned title draws
/// them, and the area inside. Block's own render first sets its (here default) style on every
/// cell it covers; with eight busy panes redrawn up to 60 times a second that pass alone was
/// about a tenth of the dashboard's CPU, for cells the agents' screens overwrite anyway.
fn cell_frame(
    cell: Rect,
    kind: BorderType,
    style: Style,
    title: &ratatui::text::Line,
    buf: &mut Buffer,
) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(cell);
    let cell = cell.intersection(buf.area);
    if cell.is_empty() {
        return inner;
    }
    let set = kind.to_border_set();
    let (left, top) = (cell.left(), cell.top());
    let (right, bottom) = (cell.right() - 1, cell.bottom() - 1);
    // Block's order: sides left, top, right, bottom, then the corners over them.
    for y in top..=bottom {
        buf[(left, y)].set_symbol(set.vertical_left).set_style(style);
    }
    for x in left..=right {
        buf[(x, top)].set_symbol(set.horizontal_top).set_style(style);
    }
    for y in top..=bottom {
        buf[(right, y)].set_symbol(set.vertical_right).set_style(style);
    }
    for x in left..=right {
        buf[(x, bottom)].set_symbol(set.horizontal_bottom).set_style(style);
    }
    for (x, y, sym) in [
        (right, bottom, set.bottom_right),
        (right, top, set.top_right),
        (left, bottom, set.bottom_left),
        (left, top, set.top_left),
    ] {
        buf[(x, y)].set_symbol(sym).set_style(style);
    }
    let room = cell.width.saturating_sub(2);
    if room > 0 {
        let width = (title.width().min(usize::from(u16::MAX)) as u16).min(room);
        title.render(Rect { x: left + 1, y: top, width, height: 1 }, buf);
    }
    inner
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row handed more room than the buffer has stops at the buffer's edge instead of running
    /// on into the next row.
    #[test]
    fn draw_cells_stops_at_the_buffer_edge() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 2));
        let cells: Vec<Cell> = "abcdef".chars().map(|ch| Cell { ch, ..Cell::default() }).collect();
        draw_cells(&cells, 2, 0, 10, &mut buf);
        draw_cells(&cells, 9, 1, 10, &mut buf);
        assert_eq!(buf, Buffer::with_lines(["  ab", "    "]));
    }

    /// `cell_frame` stands in for `Block` in the grid: every cell, symbol and style must come out
    /// the same, at every size down to nothing and with titles wider than the cell.
    #[test]
    fn cell_frame_draws_what_block_draws() {
        let style = Style::default().fg(ACCENT).add_modifier(Modifier::BOLD);
        let title = ratatui::text::Line::from(vec![
            Span::styled(" 1 agent-with-a-long-name ", style),
            Span::styled("● working ", Style::default().fg(Color::Yellow)),
        ]);
        for kind in [BorderType::Thick, BorderType::Rounded] {
            for (w, h) in [(0, 0), (1, 1), (1, 3), (3, 1), (2, 2), (5, 3), (12, 4), (40, 10)] {
                // Offset inside a larger buffer with something under it, as in the grid.
                let area = Rect::new(0, 0, 50, 14);
                let cell = Rect::new(3, 2, w, h);
                let mut want = Buffer::empty(area);
                let mut got = Buffer::empty(area);
                for b in [&mut want, &mut got] {
                    b.set_string(0, 3, "x".repeat(50), Style::default().fg(Color::Red));
                }
                let block = Block::default()
                    .borders(Borders::ALL)
                    .border_type(kind)
                    .border_style(style)
                    .title(title.clone());
                let want_inner = block.inner(cell);
                block.render(cell, &mut want);
                let got_inner = cell_frame(cell, kind, style, &title, &mut got);
                assert_eq!(got_inner, want_inner, "{kind:?} {w}x{h}");
                assert_eq!(got, want, "{kind:?} {w}x{h}");
            }
        }
    }
}
