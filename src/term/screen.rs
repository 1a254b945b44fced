//! A rendered screen: cells with colours and attributes, independent of the emulator crate, so the
//! protocol can carry it and clients can draw it. Also: turning lines into plain text or ANSI text
//! (for `tail`), row diffs between two screens (what the server sends an attached client), and the
//! escape sequences that paint a diff on a real terminal (what `attach` writes).

use serde::{Deserialize, Serialize};

use super::{Modes, MouseMode};

/// A pane size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Size {
    pub const DEFAULT: Size = Size { cols: 120, rows: 40 };

    pub fn new(cols: u16, rows: u16) -> Size {
        Size { cols: cols.max(1), rows: rows.max(1) }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

impl std::str::FromStr for Size {
    type Err = String;

    /// `COLSxROWS`, e.g. `120x40`.
    fn from_str(s: &str) -> Result<Size, String> {
        let bad = || format!("size '{s}' is not COLSxROWS (for example 120x40)");
        let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let cols: u16 = c.trim().parse().map_err(|_| bad())?;
        let rows: u16 = r.trim().parse().map_err(|_| bad())?;
        if cols < 2 || rows < 2 || cols > 1000 || rows > 1000 {
            return Err(format!("size '{s}' is out of range (2x2 to 1000x1000)"));
        }
        Ok(Size { cols, rows })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Color {
    #[default]
    Default,
    /// 0–255 palette index (0–15 are the named colours).
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// Attribute bits of a cell.
pub mod attr {
    pub const BOLD: u16 = 1;
    pub const DIM: u16 = 1 << 1;
    pub const ITALIC: u16 = 1 << 2;
    pub const UNDERLINE: u16 = 1 << 3;
    pub const BLINK: u16 = 1 << 4;
    pub const INVERSE: u16 = 1 << 5;
    pub const HIDDEN: u16 = 1 << 6;
    pub const STRIKE: u16 = 1 << 7;
    /// The first half of a double-width character.
    pub const WIDE: u16 = 1 << 8;
    /// The second half of a double-width character: draws nothing of its own.
    pub const WIDE_SPACER: u16 = 1 << 9;
    pub const DOUBLE_UNDERLINE: u16 = 1 << 10;
    pub const UNDERCURL: u16 = 1 << 11;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cell {
    pub ch: char,
    /// Zero-width characters (combining marks, variation selectors) drawn with `ch`.
    pub extra: Option<String>,
    pub fg: Color,
    pub bg: Color,
    pub attrs: u16,
    /// OSC 8 hyperlink target, if any.
    pub link: Option<String>,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell { ch: ' ', extra: None, fg: Color::Default, bg: Color::Default, attrs: 0, link: None }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Line {
    pub cells: Vec<Cell>,
    /// The line continues on the next one (soft wrap), so text joins without a newline.
    pub wrapped: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    pub size: Size,
    /// Exactly `size.rows` lines of `size.cols` cells.
    pub lines: Vec<Line>,
    /// (row, col), zero-based.
    pub cursor: (u16, u16),
    pub modes: Modes,
    pub title: String,
}

impl Default for Size {
    fn default() -> Size {
        Size::DEFAULT
    }
}

/// What changed between two screens: whole rows, plus cursor, modes and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenUpdate {
    pub size: Size,
    /// True when the receiver must clear everything first (new size, first frame).
    pub full: bool,
    pub rows: Vec<(u16, Line)>,
    pub cursor: (u16, u16),
    pub modes: Modes,
    pub title: String,
}

/// Attributes that make a blank cell visible, so trailing blanks carrying them must be kept.
const VISIBLE_ON_BLANK: u16 =
    attr::INVERSE | attr::UNDERLINE | attr::DOUBLE_UNDERLINE | attr::UNDERCURL | attr::STRIKE;

impl Cell {
    /// A cell that draws nothing and whose absence is indistinguishable from it on a default
    /// background: what may be trimmed from the end of a line.
    pub fn is_default_blank(&self) -> bool {
        self.ch == ' '
            && self.extra.is_none()
            && self.bg == Color::Default
            && self.attrs & VISIBLE_ON_BLANK == 0
            && self.link.is_none()
    }
}

impl Line {
    /// A line of `cols` default cells.
    pub fn blank(cols: u16) -> Line {
        Line { cells: vec![Cell::default(); usize::from(cols)], wrapped: false }
    }

    /// The characters as a user would copy them: the spacer half of wide characters is dropped
    /// (the wide character already stands for both cells) and the padding to the right margin is
    /// not text.
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(self.cells.len());
        for cell in &self.cells {
            if cell.attrs & attr::WIDE_SPACER != 0 {
                continue;
            }
            s.push(cell.ch);
            if let Some(extra) = &cell.extra {
                s.push_str(extra);
            }
        }
        let trimmed = s.trim_end_matches(' ').len();
        s.truncate(trimmed);
        s
    }

    /// Whether every cell is a default blank (the line shows nothing).
    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(Cell::is_default_blank)
    }

    /// The cells worth drawing: everything up to the last cell that is not a default blank.
    fn content_len(&self) -> usize {
        self.cells.iter().rposition(|c| !c.is_default_blank()).map_or(0, |i| i + 1)
    }

    /// The line as text with SGR colours and attributes, for `tail` output to a terminal. Styles
    /// are only emitted when they change, and the line ends with a reset if it left any set, so
    /// lines can be printed one after another without bleeding into each other.
    pub fn write_ansi(&self, out: &mut String) {
        let mut pen = Pen::default();
        for cell in &self.cells[..self.content_len()] {
            if cell.attrs & attr::WIDE_SPACER != 0 {
                continue;
            }
            let next = Pen::of(cell);
            if next != pen {
                next.write_sgr(out);
                pen = next;
            }
            out.push(printable(cell.ch));
            if let Some(extra) = &cell.extra {
                out.push_str(extra);
            }
        }
        if pen != Pen::default() {
            out.push_str("\x1b[0m");
        }
    }
}

/// The graphic rendition a cell is drawn with (what SGR controls), without its character.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    attrs: u16,
}

impl Pen {
    /// Bits that are rendition; WIDE/WIDE_SPACER describe layout, not style.
    const STYLE: u16 = !(attr::WIDE | attr::WIDE_SPACER);

    fn of(cell: &Cell) -> Pen {
        Pen { fg: cell.fg, bg: cell.bg, attrs: cell.attrs & Pen::STYLE }
    }

    /// One SGR that sets this pen from any previous state. Starting from a reset keeps the
    /// encoder trivially correct; the reset costs two bytes.
    fn write_sgr(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("\x1b[0");
        const FLAGS: [(u16, &str); 10] = [
            (attr::BOLD, ";1"),
            (attr::DIM, ";2"),
            (attr::ITALIC, ";3"),
            (attr::UNDERLINE, ";4"),
            (attr::DOUBLE_UNDERLINE, ";4:2"),
            (attr::UNDERCURL, ";4:3"),
            (attr::BLINK, ";5"),
            (attr::INVERSE, ";7"),
            (attr::HIDDEN, ";8"),
            (attr::STRIKE, ";9"),
        ];
        for (bit, code) in FLAGS {
            if self.attrs & bit != 0 {
                out.push_str(code);
            }
        }
        // Writing to a String cannot fail.
        let _ = match self.fg {
            Color::Default => Ok(()),
            Color::Indexed(n @ 0..=7) => write!(out, ";{}", 30 + u16::from(n)),
            Color::Indexed(n @ 8..=15) => write!(out, ";{}", 90 + u16::from(n) - 8),
            Color::Indexed(n) => write!(out, ";38;5;{n}"),
            Color::Rgb(r, g, b) => write!(out, ";38;2;{r};{g};{b}"),
        };
        let _ = match self.bg {
            Color::Default => Ok(()),
            Color::Indexed(n @ 0..=7) => write!(out, ";{}", 40 + u16::from(n)),
            Color::Indexed(n @ 8..=15) => write!(out, ";{}", 100 + u16::from(n) - 8),
            Color::Indexed(n) => write!(out, ";48;5;{n}"),
            Color::Rgb(r, g, b) => write!(out, ";48;2;{r};{g};{b}"),
        };
        out.push('m');
    }
}

impl Screen {
    /// A blank screen of the given size, as a client holds before the first update.
    pub fn blank(size: Size) -> Screen {
        Screen {
            size,
            lines: vec![Line::blank(size.cols); usize::from(size.rows)],
            cursor: (0, 0),
            modes: Modes { cursor_visible: true, ..Modes::default() },
            title: String::new(),
        }
    }

    /// What to send a client that holds `old` so it ends up holding `self`. Only changed rows
    /// travel; a missing or differently sized `old` means the client must start over.
    pub fn diff(&self, old: Option<&Screen>) -> ScreenUpdate {
        let full = old.is_none_or(|o| o.size != self.size || o.lines.len() != self.lines.len());
        let rows = self
            .lines
            .iter()
            .enumerate()
            .filter(|(i, line)| full || old.and_then(|o| o.lines.get(*i)) != Some(*line))
            .map(|(i, line)| (u16::try_from(i).unwrap_or(u16::MAX), line.clone()))
            .collect();
        ScreenUpdate {
            size: self.size,
            full,
            rows,
            cursor: self.cursor,
            modes: self.modes,
            title: self.title.clone(),
        }
    }

    /// Bring this copy up to date with an update made by [`Screen::diff`]. Rows outside the
    /// screen are ignored rather than trusted, since the update came over a socket.
    pub fn apply(&mut self, update: &ScreenUpdate) {
        if update.full
            || update.size != self.size
            || self.lines.len() != usize::from(update.size.rows)
        {
            self.lines = vec![Line::blank(update.size.cols); usize::from(update.size.rows)];
        }
        self.size = update.size;
        for (row, line) in &update.rows {
            if let Some(slot) = self.lines.get_mut(usize::from(*row)) {
                slot.clone_from(line);
            }
        }
        self.cursor = update.cursor;
        self.modes = update.modes;
        self.title.clone_from(&update.title);
    }

    /// [`Screen::apply`] for an update the caller owns: its rows are moved in, not copied cell
    /// by cell. The dashboard receives every update by value, and with busy panes copying the
    /// rows was a third of its work per frame.
    pub fn apply_owned(&mut self, update: ScreenUpdate) {
        if update.full
            || update.size != self.size
            || self.lines.len() != usize::from(update.size.rows)
        {
            self.lines = vec![Line::blank(update.size.cols); usize::from(update.size.rows)];
        }
        self.size = update.size;
        for (row, line) in update.rows {
            if let Some(slot) = self.lines.get_mut(usize::from(row)) {
                *slot = line;
            }
        }
        self.cursor = update.cursor;
        self.modes = update.modes;
        self.title = update.title;
    }
}

fn set(out: &mut Vec<u8>, mode: u16, on: bool) {
    out.extend_from_slice(format!("\x1b[?{mode}{}", if on { 'h' } else { 'l' }).as_bytes());
}

/// The escape sequences that move this terminal's input modes from `old` to `new`.
pub fn mirror_modes(old: &Modes, new: &Modes, out: &mut Vec<u8>) {
    if old.app_cursor != new.app_cursor {
        set(out, 1, new.app_cursor);
    }
    if old.app_keypad != new.app_keypad {
        out.extend_from_slice(if new.app_keypad { b"\x1b=" } else { b"\x1b>" });
    }
    if old.bracketed_paste != new.bracketed_paste {
        set(out, 2004, new.bracketed_paste);
    }
    if old.focus_events != new.focus_events {
        set(out, 1004, new.focus_events);
    }
    if old.mouse != new.mouse {
        match old.mouse {
            MouseMode::None => {}
            MouseMode::Click => set(out, 1000, false),
            MouseMode::Drag => set(out, 1002, false),
            MouseMode::Motion => set(out, 1003, false),
        }
        match new.mouse {
            MouseMode::None => {}
            MouseMode::Click => set(out, 1000, true),
            MouseMode::Drag => set(out, 1002, true),
            MouseMode::Motion => set(out, 1003, true),
        }
    }
    if old.sgr_mouse != new.sgr_mouse {
        set(out, 1006, new.sgr_mouse);
    }
    if old.kitty_flags != new.kitty_flags {
        // CSI = flags ; 1 u sets the flags outright.
        out.extend_from_slice(format!("\x1b[={};1u", new.kitty_flags).as_bytes());
    }
}

/// The bytes that draw `update` on a real terminal whose top-left cell is the pane's top-left
/// (full-screen passthrough in `corral attach`). The whole frame is wrapped in a synchronized
/// update so the user never sees it half drawn; every row ends with the SGR reset so styles cannot
/// leak into the next row or into whatever the client prints afterwards.
pub fn paint(update: &ScreenUpdate, out: &mut Vec<u8>) {
    use std::io::Write as _;
    out.extend_from_slice(b"\x1b[?2026h");
    if update.full {
        out.extend_from_slice(b"\x1b[0m\x1b[H\x1b[2J");
    }
    let cols = usize::from(update.size.cols);
    let mut s = String::new();
    for (row, line) in &update.rows {
        if *row >= update.size.rows {
            continue;
        }
        s.clear();
        paint_row(line, cols, &mut s);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "\x1b[{};1H", u32::from(*row) + 1);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(b"\x1b[0m");
    let (r, c) = update.cursor;
    let r = r.min(update.size.rows.saturating_sub(1));
    let c = c.min(update.size.cols.saturating_sub(1));
    let _ = write!(out, "\x1b[{};{}H", u32::from(r) + 1, u32::from(c) + 1);
    out.extend_from_slice(if update.modes.cursor_visible { b"\x1b[?25h" } else { b"\x1b[?25l" });
    out.extend_from_slice(b"\x1b[?2026l");
}

/// One row, starting at column 0 with the cursor already there. A wide character is only drawn
/// with its spacer cell next to it (deleting characters can separate them, and a cropped row can
/// cut one off); otherwise it and a spacer without its wide half are drawn as blanks, so every
/// cell after them stays in its column.
/// The SGR that draws with `cell`'s style, from any previous one.
pub(crate) fn write_pen(cell: &Cell, out: &mut String) {
    Pen::of(cell).write_sgr(out);
}

/// Returns the column the cursor is left at.
pub(crate) fn paint_row(line: &Line, cols: usize, out: &mut String) -> usize {
    let cells = &line.cells[..line.cells.len().min(cols)];
    let end = line.content_len().min(cells.len());
    let mut pen = Pen::default();
    let mut link: Option<&str> = None;
    let mut col = 0;
    let mut i = 0;
    while i < end {
        let cell = &cells[i];
        let next_link = cell.link.as_deref();
        if next_link != link {
            out.push_str("\x1b]8;;");
            out.push_str(next_link.unwrap_or(""));
            out.push_str("\x1b\\");
            link = next_link;
        }
        let next = Pen::of(cell);
        if next != pen {
            next.write_sgr(out);
            pen = next;
        }
        let wide = cell.attrs & attr::WIDE != 0;
        let paired = cells.get(i + 1).is_some_and(|c| c.attrs & attr::WIDE_SPACER != 0);
        if wide && paired {
            out.push(printable(cell.ch));
            if let Some(extra) = &cell.extra {
                out.push_str(extra);
            }
            col += 2;
            i += 2;
        } else if wide || cell.attrs & attr::WIDE_SPACER != 0 {
            out.push(' ');
            col += 1;
            i += 1;
        } else {
            out.push(printable(cell.ch));
            if let Some(extra) = &cell.extra {
                out.push_str(extra);
            }
            col += 1;
            i += 1;
        }
    }
    if link.is_some() {
        out.push_str("\x1b]8;;\x1b\\");
    }
    out.push_str("\x1b[0m");
    // With the row filled the cursor sits on the last column waiting to wrap, and an erase there
    // would wipe the last character.
    if col < cols {
        out.push_str("\x1b[K");
    }
    col
}

/// Cells come from the emulator already sanitized, but an update also arrives over a socket: a
/// control character written to the real terminal would move its cursor.
fn printable(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}

/// Rows as text for a reader: plain or with SGR colours, one logical line per output line (a
/// soft-wrapped row runs on into the next one, as `tmux capture-pane -J` prints it).
pub fn render_text(lines: &[Line], ansi: bool) -> String {
    let mut out = String::with_capacity(lines.len() * 64);
    for l in lines {
        if ansi {
            l.write_ansi(&mut out);
        } else {
            out.push_str(&l.text());
        }
        if !l.wrapped {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{AlacrittyEmulator, Emulator};
    use super::*;

    fn cell(ch: char) -> Cell {
        Cell { ch, ..Cell::default() }
    }

    fn styled(ch: char, fg: Color, bg: Color, attrs: u16) -> Cell {
        Cell { ch, fg, bg, attrs, ..Cell::default() }
    }

    fn line(cells: Vec<Cell>) -> Line {
        Line { cells, wrapped: false }
    }

    #[test]
    fn text_skips_spacers_keeps_marks_and_trims() {
        let mut wide = cell('中');
        wide.attrs = attr::WIDE;
        let mut spacer = cell(' ');
        spacer.attrs = attr::WIDE_SPACER;
        let mut marked = cell('e');
        marked.extra = Some("\u{301}".into());
        let l =
            line(vec![cell(' '), wide, spacer, marked, cell(' '), cell('x'), cell(' '), cell(' ')]);
        assert_eq!(l.text(), " 中é x".replace('é', "e\u{301}"));
        assert_eq!(Line::blank(5).text(), "");
        assert!(Line::blank(5).is_blank());
        assert!(!l.is_blank());
    }

    #[test]
    fn write_ansi_emits_sgr_only_on_change() {
        let red_bold = |c| styled(c, Color::Indexed(1), Color::Default, attr::BOLD);
        let l = line(vec![
            cell('a'),
            red_bold('b'),
            red_bold('c'),
            styled('d', Color::Indexed(200), Color::Default, 0),
            styled('e', Color::Rgb(1, 2, 3), Color::Indexed(12), attr::ITALIC | attr::INVERSE),
            cell('f'),
            cell(' '),
            cell(' '),
        ]);
        let mut out = String::new();
        l.write_ansi(&mut out);
        assert_eq!(out, "a\x1b[0;1;31mbc\x1b[0;38;5;200md\x1b[0;3;7;38;2;1;2;3;104me\x1b[0mf");

        // Ends styled: reset at the end. Trailing blanks with a background are content.
        let l = line(vec![
            styled('x', Color::Default, Color::Rgb(9, 9, 9), 0),
            styled(' ', Color::Default, Color::Indexed(100), 0),
            cell(' '),
        ]);
        let mut out = String::new();
        l.write_ansi(&mut out);
        assert_eq!(out, "\x1b[0;48;2;9;9;9mx\x1b[0;48;5;100m \x1b[0m");

        let mut out = String::new();
        Line::blank(4).write_ansi(&mut out);
        assert_eq!(out, "");
        let mut out = String::new();
        line(vec![styled('u', Color::Default, Color::Default, attr::UNDERLINE | attr::WIDE)])
            .write_ansi(&mut out);
        assert_eq!(out, "\x1b[0;4mu\x1b[0m");
    }

    /// Deterministic pseudo-random numbers (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn random_cell(rng: &mut Rng) -> Cell {
        let colors = |rng: &mut Rng| match rng.below(4) {
            0 => Color::Default,
            1 => Color::Indexed(rng.below(256) as u8),
            2 => Color::Rgb(rng.below(256) as u8, rng.below(256) as u8, rng.below(256) as u8),
            _ => Color::Default,
        };
        Cell {
            ch: char::from(b'a' + rng.below(26) as u8),
            extra: (rng.below(10) == 0).then(|| "\u{301}".to_string()),
            fg: colors(rng),
            bg: colors(rng),
            attrs: rng.below(1 << 8) as u16,
            link: (rng.below(10) == 0).then(|| "http://x/".to_string()),
        }
    }

    fn random_screen(rng: &mut Rng, size: Size) -> Screen {
        let mut s = Screen::blank(size);
        for l in &mut s.lines {
            for c in &mut l.cells {
                if rng.below(3) == 0 {
                    *c = random_cell(rng);
                }
            }
            l.wrapped = rng.below(2) == 0;
        }
        s.cursor = (rng.below(u64::from(size.rows)) as u16, rng.below(u64::from(size.cols)) as u16);
        s.modes.cursor_visible = rng.below(2) == 0;
        s.modes.bracketed_paste = rng.below(2) == 0;
        s.title = format!("t{}", rng.below(3));
        s
    }

    /// Change a few rows, sometimes none, sometimes the size.
    fn mutate(rng: &mut Rng, s: &Screen) -> Screen {
        if rng.below(5) == 0 {
            let size = Size::new(1 + rng.below(30) as u16, 1 + rng.below(10) as u16);
            return random_screen(rng, size);
        }
        let mut n = s.clone();
        for _ in 0..rng.below(4) {
            let r = rng.below(u64::from(s.size.rows)) as usize;
            let c = rng.below(u64::from(s.size.cols)) as usize;
            n.lines[r].cells[c] = random_cell(rng);
        }
        if rng.below(3) == 0 {
            n.cursor = (0, 0);
            n.title.push('!');
            n.modes.alt_screen = !n.modes.alt_screen;
        }
        n
    }

    #[test]
    fn diff_then_apply_round_trips() {
        let mut rng = Rng(42);
        let mut old = random_screen(&mut rng, Size::new(12, 5));
        for _ in 0..500 {
            let new = mutate(&mut rng, &old);
            let update = new.diff(Some(&old));
            let changed = old.lines.iter().zip(&new.lines).filter(|(a, b)| a != b).count();
            if update.full {
                assert!(old.size != new.size);
                assert_eq!(update.rows.len(), usize::from(new.size.rows));
            } else {
                assert_eq!(update.rows.len(), changed);
            }
            let mut copy = old.clone();
            copy.apply(&update);
            assert_eq!(copy, new);
            let mut moved = old.clone();
            moved.apply_owned(update);
            assert_eq!(moved, new);
            old = new;
        }
        // From nothing: a full update that builds the screen from a blank one.
        let update = old.diff(None);
        assert!(update.full);
        let mut fresh = Screen::blank(Size::new(3, 3));
        fresh.apply(&update);
        assert_eq!(fresh, old);
        // Unchanged: no rows.
        assert!(old.diff(Some(&old)).rows.is_empty());
    }

    #[test]
    fn apply_ignores_rows_outside_the_screen() {
        let mut s = Screen::blank(Size::new(4, 2));
        let update = ScreenUpdate {
            size: Size::new(4, 2),
            full: false,
            rows: vec![(7, Line::blank(4))],
            cursor: (1, 1),
            modes: Modes::default(),
            title: "x".into(),
        };
        let mut moved = s.clone();
        s.apply(&update);
        assert_eq!(s.lines.len(), 2);
        assert_eq!((s.cursor, s.title.as_str()), ((1, 1), "x"));
        moved.apply_owned(update);
        assert_eq!(moved, s);
    }

    /// What a real terminal would show after `paint`: run the bytes through our own emulator.
    fn painted(emu: &mut AlacrittyEmulator, update: &ScreenUpdate) -> Screen {
        let mut out = Vec::new();
        paint(update, &mut out);
        assert!(out.starts_with(b"\x1b[?2026h") && out.ends_with(b"\x1b[?2026l"));
        emu.feed(&out);
        assert_eq!(emu.sync_deadline(), None);
        emu.screen()
    }

    /// What painting cannot (and need not) reproduce: soft-wrap flags, spacers without their wide
    /// half and wide characters without their spacer (both drawn as styled blanks), and the style
    /// of trailing blanks that show nothing.
    fn drawn(s: &Screen) -> Vec<(Vec<Cell>, bool)> {
        s.lines
            .iter()
            .map(|l| {
                let mut cells = l.cells.clone();
                for (i, cell) in cells.iter_mut().enumerate() {
                    let orphan = cell.attrs & attr::WIDE_SPACER != 0
                        && (i == 0 || l.cells[i - 1].attrs & attr::WIDE == 0);
                    if orphan {
                        cell.ch = ' ';
                        cell.extra = None;
                        cell.attrs &= !attr::WIDE_SPACER;
                    }
                    let unpaired = cell.attrs & attr::WIDE != 0
                        && l.cells.get(i + 1).is_none_or(|c| c.attrs & attr::WIDE_SPACER == 0);
                    if unpaired {
                        cell.ch = ' ';
                        cell.extra = None;
                        cell.attrs &= !attr::WIDE;
                    }
                }
                let end = line(cells.clone()).content_len();
                for c in &mut cells[end..] {
                    *c = Cell::default();
                }
                (cells, s.modes.cursor_visible)
            })
            .collect()
    }

    fn feed_random(rng: &mut Rng, e: &mut AlacrittyEmulator) {
        let mut s = String::new();
        for _ in 0..200 {
            match rng.below(10) {
                0 => s.push_str(&format!("\x1b[{};{}H", rng.below(8), rng.below(25))),
                1 => s.push_str(&format!("\x1b[38;5;{}m", rng.below(256))),
                2 => s.push_str(&format!("\x1b[48;2;{};0;{}m", rng.below(256), rng.below(256))),
                3 => s.push_str(
                    [
                        "\x1b[1m",
                        "\x1b[3m",
                        "\x1b[4m",
                        "\x1b[7m",
                        "\x1b[0m",
                        "\x1b[2m",
                        "\x1b[9m",
                        "\x1b[4:3m",
                        "\x1b[21m",
                        "\x1b[91m",
                        "\x1b[8m",
                    ][rng.below(11) as usize],
                ),
                4 => s.push_str(["中", "😀", "e\u{301}", "字"][rng.below(4) as usize]),
                5 => {
                    s.push_str(["\x1b]8;;http://a/\x1b\\", "\x1b]8;;\x1b\\"][rng.below(2) as usize])
                }
                6 => s.push_str(
                    ["\x1b[K", "\x1b[?25l", "\x1b[?25h", "\r\n", "\x1b[2P"][rng.below(5) as usize],
                ),
                _ => s.push(char::from(b' ' + rng.below(95) as u8)),
            }
        }
        e.feed(s.as_bytes());
    }

    #[test]
    fn paint_reproduces_the_screen_on_a_terminal() {
        let mut rng = Rng(7);
        let size = Size::new(24, 7);
        let mut source = AlacrittyEmulator::new(size, 0);
        let mut terminal = AlacrittyEmulator::new(size, 0);
        let mut shown: Option<Screen> = None;
        for round in 0..300 {
            feed_random(&mut rng, &mut source);
            let screen = source.screen();
            let update = screen.diff(shown.as_ref());
            assert_eq!(update.full, round == 0);
            let got = painted(&mut terminal, &update);
            let (got_cells, want_cells) = (drawn(&got), drawn(&screen));
            for (r, (g, w)) in got_cells.iter().zip(&want_cells).enumerate() {
                for (c, (gc, wc)) in g.0.iter().zip(&w.0).enumerate() {
                    assert_eq!(
                        gc,
                        wc,
                        "round {round} row {r} col {c}\n{:?}\n{:?}",
                        got.lines[r].text(),
                        screen.lines[r].text()
                    );
                }
                assert_eq!(g.1, w.1, "round {round}: cursor visibility");
            }
            assert_eq!(got.cursor, screen.cursor, "round {round}");
            shown = Some(screen);
        }
    }

    #[test]
    fn paint_handles_wide_cells_without_room_and_orphan_spacers() {
        let mut wide = cell('中');
        wide.attrs = attr::WIDE;
        let mut spacer = cell(' ');
        spacer.attrs = attr::WIDE_SPACER;
        let mut bad = Screen::blank(Size::new(3, 2));
        // A spacer with no wide half, then a wide cell in the last column.
        bad.lines[0].cells = vec![spacer.clone(), cell('x'), wide.clone()];
        bad.lines[1].cells = vec![wide, spacer, cell('\x07')];
        let mut terminal = AlacrittyEmulator::new(bad.size, 0);
        let got = painted(&mut terminal, &bad.diff(None));
        assert_eq!(got.lines[0].text(), " x");
        assert_eq!(got.lines[1].text(), "中");
        let mut out = Vec::new();
        paint(&bad.diff(None), &mut out);
        assert!(!out.contains(&0x07));
    }

    #[test]
    fn paint_frames_and_cursor() {
        let mut s = Screen::blank(Size::new(5, 3));
        s.lines[1].cells[0] = cell('a');
        s.cursor = (2, 4);
        s.modes.cursor_visible = false;
        let mut out = Vec::new();
        paint(&s.diff(None), &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("\x1b[?2026h\x1b[0m\x1b[H\x1b[2J"), "{text:?}");
        assert!(text.contains("\x1b[2;1Ha\x1b[0m\x1b[K"), "{text:?}");
        assert!(text.ends_with("\x1b[3;5H\x1b[?25l\x1b[?2026l"), "{text:?}");
        // Incremental: no clear, only the changed row.
        let mut n = s.clone();
        n.lines[0].cells = "abcde".chars().map(cell).collect();
        n.modes.cursor_visible = true;
        let mut out = Vec::new();
        paint(&n.diff(Some(&s)), &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("\x1b[2J"));
        assert!(!text.contains("\x1b[2;1H"));
        // A full row must not be followed by an erase, which would wipe its last cell.
        assert!(text.contains("\x1b[1;1Habcde\x1b[0m\x1b[0m"), "{text:?}");
        assert!(text.ends_with("\x1b[?25h\x1b[?2026l"));
    }
}
