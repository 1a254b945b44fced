//! Cold scrollback: history lines kept compactly once they are far enough up that no program can
//! touch them again. The emulator's grid stores every cell at full width (24 bytes each, so a
//! 120-column line costs ~3 KiB); here a line is its text plus runs of identical style, about the
//! size of the text itself. This is what keeps an agent's 5,000 lines of scrollback smaller than a
//! tmux pane's.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::screen::Line;
use super::{Cell, Color};

/// Consecutive cells with one style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    cells: u16,
    fg: Color,
    bg: Color,
    attrs: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum ColdLine {
    /// One char per cell, for lines whose cells carry nothing else (the common case).
    Compact { text: Box<str>, runs: Box<[Run]>, wrapped: bool },
    /// Lines with combining marks or links keep their cells as they are.
    Full(Box<Line>),
}

impl ColdLine {
    fn from_line(line: &Line) -> ColdLine {
        let used = line.cells.iter().rposition(|c| *c != Cell::default()).map_or(0, |i| i + 1);
        let cells = &line.cells[..used];
        if cells.iter().any(|c| c.extra.is_some() || c.link.is_some())
            || used > usize::from(u16::MAX)
        {
            let mut l = line.clone();
            l.cells.truncate(used);
            l.cells.shrink_to_fit();
            return ColdLine::Full(Box::new(l));
        }
        let mut text = String::with_capacity(used);
        let mut runs: Vec<Run> = Vec::new();
        for c in cells {
            text.push(c.ch);
            match runs.last_mut() {
                Some(r) if r.fg == c.fg && r.bg == c.bg && r.attrs == c.attrs => r.cells += 1,
                _ => runs.push(Run { cells: 1, fg: c.fg, bg: c.bg, attrs: c.attrs }),
            }
        }
        ColdLine::Compact { text: text.into(), runs: runs.into(), wrapped: line.wrapped }
    }

    /// The line again, padded with blank cells to at least `cols`.
    fn to_line(&self, cols: usize) -> Line {
        let mut line = match self {
            ColdLine::Full(l) => (**l).clone(),
            ColdLine::Compact { text, runs, wrapped } => {
                let mut cells = Vec::with_capacity(cols.max(text.len()));
                let mut chars = text.chars();
                for r in runs.iter() {
                    for _ in 0..r.cells {
                        let ch = chars.next().unwrap_or(' ');
                        cells.push(Cell {
                            ch,
                            fg: r.fg,
                            bg: r.bg,
                            attrs: r.attrs,
                            ..Cell::default()
                        });
                    }
                }
                Line { cells, wrapped: *wrapped }
            }
        };
        if line.cells.len() < cols {
            line.cells.resize(cols, Cell::default());
        }
        line
    }
}

/// Builds a compact line cell by cell, straight from the emulator's grid, with buffers reused
/// from line to line (spilling history is on the ingest path).
#[derive(Debug, Default)]
pub struct ColdBuilder {
    text: String,
    runs: Vec<Run>,
}

impl ColdBuilder {
    /// The next cells' characters, one a cell.
    #[inline]
    pub fn text(&mut self, chars: impl ExactSizeIterator<Item = char>) {
        self.text.reserve(chars.len());
        self.text.extend(chars);
    }

    /// The style of the next `cells` cells (whose characters were given with [`Self::char`]).
    pub fn style(&mut self, mut cells: usize, fg: Color, bg: Color, attrs: u16) {
        while cells > 0 {
            match self.runs.last_mut() {
                Some(r) if r.fg == fg && r.bg == bg && r.attrs == attrs && r.cells < u16::MAX => {
                    let add = cells.min(usize::from(u16::MAX - r.cells));
                    r.cells += add as u16;
                    cells -= add;
                }
                _ => {
                    let add = cells.min(usize::from(u16::MAX));
                    self.runs.push(Run { cells: add as u16, fg, bg, attrs });
                    cells -= add;
                }
            }
        }
    }

    /// Start again, dropping what was built.
    pub fn clear(&mut self) {
        self.text.clear();
        self.runs.clear();
    }

    fn take(&mut self, wrapped: bool) -> ColdLine {
        let line = ColdLine::Compact {
            text: self.text.as_str().into(),
            runs: self.runs.as_slice().into(),
            wrapped,
        };
        self.text.clear();
        self.runs.clear();
        line
    }
}

/// The oldest part of the scrollback, bounded: pushing past the bound drops the oldest line.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ColdStore {
    lines: VecDeque<ColdLine>,
    cap: usize,
}

impl ColdStore {
    pub fn new(cap: usize) -> ColdStore {
        ColdStore { lines: VecDeque::new(), cap }
    }

    pub fn push(&mut self, line: &Line) {
        self.push_cold(ColdLine::from_line(line));
    }

    /// Store the line built so far in `b` (and reset `b` for the next one).
    pub fn push_built(&mut self, b: &mut ColdBuilder, wrapped: bool) {
        let line = b.take(wrapped);
        self.push_cold(line);
    }

    fn push_cold(&mut self, line: ColdLine) {
        if self.cap == 0 {
            return;
        }
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn clear(&mut self) {
        self.lines = VecDeque::new();
    }

    /// Line `i`, counting from the oldest, at least `cols` wide.
    pub fn get(&self, i: usize, cols: usize) -> Option<Line> {
        self.lines.get(i).map(|l| l.to_line(cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_len(c: &ColdLine) -> usize {
        match c {
            ColdLine::Compact { runs, .. } => runs.iter().map(|r| usize::from(r.cells)).sum(),
            ColdLine::Full(l) => l.cells.len(),
        }
    }
    use crate::term::screen::attr;

    fn styled(text: &str) -> Line {
        let mut cells: Vec<Cell> = text
            .chars()
            .enumerate()
            .map(|(i, ch)| Cell {
                ch,
                fg: if i % 3 == 0 { Color::Indexed(1) } else { Color::Rgb(1, 2, 3) },
                attrs: if i > 2 { attr::BOLD } else { 0 },
                ..Cell::default()
            })
            .collect();
        cells.resize(20, Cell::default());
        Line { cells, wrapped: true }
    }

    #[test]
    fn lines_come_back_as_they_went_in() {
        let mut store = ColdStore::new(10);
        let a = styled("hello, wörld");
        let mut b = styled("x");
        b.cells[0].extra = Some("\u{301}".into());
        b.cells[1].link = Some("https://example.invalid".into());
        let blank = Line { cells: vec![Cell::default(); 20], wrapped: false };
        for l in [&a, &b, &blank] {
            store.push(l);
        }
        assert_eq!(store.get(0, 20).unwrap(), a);
        assert_eq!(store.get(1, 20).unwrap(), b);
        assert_eq!(store.get(2, 20).unwrap(), blank);
        assert_eq!(store.get(3, 20), None);
    }

    #[test]
    fn built_lines_equal_converted_ones() {
        let line = styled("built cell by cell");
        let mut b = ColdBuilder::default();
        let used = line.cells.iter().rposition(|c| *c != Cell::default()).unwrap() + 1;
        for c in &line.cells[..used] {
            b.style(1, c.fg, c.bg, c.attrs);
        }
        b.text(line.cells[..used].iter().map(|c| c.ch));
        let mut store = ColdStore::new(2);
        store.push_built(&mut b, line.wrapped);
        store.push(&line);
        assert_eq!(store.get(0, 20).unwrap(), line);
        assert_eq!(store.get(0, 20), store.get(1, 20));
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_oldest() {
        let mut store = ColdStore::new(3);
        for i in 0..5 {
            store.push(&styled(&format!("line {i}")));
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.get(0, 20).unwrap().text(), "line 2");
        assert_eq!(store.get(2, 20).unwrap().text(), "line 4");
        store.clear();
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_compact_line_is_much_smaller_than_its_cells() {
        let plain = "a plain line of text, trailing blanks are not stored";
        let mut cells: Vec<Cell> = plain.chars().map(|ch| Cell { ch, ..Cell::default() }).collect();
        cells[2].attrs = attr::BOLD;
        cells.resize(120, Cell::default());
        let cold = ColdLine::from_line(&Line { cells, wrapped: false });
        let ColdLine::Compact { text, runs, .. } = &cold else {
            panic!("plain text stays compact")
        };
        assert!(runs.len() <= 3, "{runs:?}");
        assert_eq!(&**text, plain);
        assert_eq!(text_len(&cold), plain.len());
    }
}
