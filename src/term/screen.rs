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
        Cell {
            ch: ' ',
            extra: None,
            fg: Color::Default,
            bg: Color::Default,
            attrs: 0,
            link: None,
        }
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
