//! A rendered screen: cells with colours and attributes, independent of the emulator crate, so the
//! protocol can carry it and clients can draw it. Also: turning lines into plain text or ANSI text
//! (for `tail`), row diffs between two screens (what the server sends an attached client), and the
//! escape sequences that paint a diff on a real terminal (what `attach` writes).

use serde::{Deserialize, Serialize};

use super::Modes;

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
            out.push(cell.ch);
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
        const FLAGS: [(u16, &str); 9] = [
            (attr::BOLD, ";1"),
            (attr::DIM, ";2"),
            (attr::ITALIC, ";3"),
            (attr::UNDERLINE, ";4"),
            (attr::DOUBLE_UNDERLINE, ";4:2"),
            (attr::UNDERCURL, ";4:3"),
            (attr::BLINK, ";5"),
            (attr::INVERSE, ";7"),
            (attr::HIDDEN, ";8"),
        ];
        for (bit, code) in FLAGS {
            if self.attrs & bit != 0 {
                out.push_str(code);
            }
        }
        if self.attrs & attr::STRIKE != 0 {
            out.push_str(";9");
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

/// One row, starting at column 0 with the cursor already there. Tracks the column it has reached
/// so a wide character that would not fit, or a spacer without its wide half, is drawn as a blank
/// instead of shifting everything after it.
fn paint_row(line: &Line, cols: usize, out: &mut String) {
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
        if wide && col + 2 <= cols {
            out.push(printable(cell.ch));
            if let Some(extra) = &cell.extra {
                out.push_str(extra);
            }
            col += 2;
            i += 1;
            if cells.get(i).is_some_and(|c| c.attrs & attr::WIDE_SPACER != 0) {
                i += 1;
            }
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
}

/// Cells come from the emulator already sanitized, but an update also arrives over a socket: a
/// control character written to the real terminal would move its cursor.
fn printable(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}
