//! Taking an emulator's state out of one process and into another (`corral server --upgrade`).
//!
//! Alacritty's `Term` cannot be serialized and its hidden grid is private, so the state is carried
//! as what a terminal would need to be shown to end up the same: the hot history and the screen
//! painted as text with SGR (a wrapped line is painted to the last column so the next one wraps
//! onto it again), the cursor, the input modes as DECSET, and for the alternate screen the same
//! again after entering it. Our own parts travel as they are: the cold scrollback, the line
//! numbering, the title, the colours queries are answered with. A fresh emulator replays the
//! painting, is then given those parts back, and last gets the bytes of an escape sequence the old
//! parser had begun but not finished (kept by [`unfinished_len`] after every feed), so the
//! program's next bytes finish it there.
//!
//! What does not travel (none of it is drawn): the scroll region, the saved cursor, charsets,
//! tab stops, colours the program set with OSC 4/10/11, and the pen left active at the cursor.

use alacritty_terminal::grid::{Cursor, Dimensions};
use alacritty_terminal::term::cell::Cell as AlacCell;
use serde::{Deserialize, Serialize};

use super::{
    AlacrittyEmulator, ColdStore, Flags, GridLine, NumberedLine, Numbering, Processor, TermColors,
    TermMode, convert_cell,
};
use crate::term::screen::{Line, Size, attr, paint_row, write_pen};
use crate::term::{Emulator, Modes, MouseMode};

/// An escape sequence still open after this many bytes is dropped rather than carried: nothing
/// a program sends to a terminal (titles, links, colours) is that long.
pub(super) const TAIL_LIMIT: usize = 64 * 1024;
/// How far back from the end of a feed an unfinished sequence's start is looked for.
const SEARCH_BACK: usize = 4096;

/// Everything needed to rebuild an emulator in another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmulatorState {
    size: Size,
    scrollback: usize,
    cold: ColdStore,
    /// Bytes that paint the hot history, the screen(s), cursor and modes into a fresh emulator.
    replay: Vec<u8>,
    prim_top: u64,
    alt_top: u64,
    hw: u64,
    pending: Vec<NumberedLine>,
    title: String,
    colors: TermColors,
    scheme_updates: bool,
    /// The start of an escape sequence (or UTF-8 character) the parser had not finished.
    tail: Vec<u8>,
    /// The last row of the screen shown continues on the next line (painting cannot say so
    /// without scrolling).
    last_wrapped: bool,
}

/// How many bytes at the end of `bytes` belong to an escape sequence or a UTF-8 character that is
/// not finished yet: a parser fed `bytes` is in the middle of them.
pub(super) fn unfinished_len(bytes: &[u8]) -> usize {
    // This runs after every feed, on the PTY reader's path: look back only as far as a sequence
    // a program really leaves open at a read boundary goes (a title, a link); a longer string is
    // not carried.
    let window = &bytes[bytes.len().saturating_sub(SEARCH_BACK)..];
    let base = bytes.len() - window.len();
    if let Some(esc) = window.iter().rposition(|&b| b == 0x1b) {
        let seq = &window[esc..];
        if !escape_finished(seq) {
            return bytes.len() - (base + esc);
        }
    }
    utf8_unfinished(bytes)
}

/// Whether `seq` (starting with ESC, and with no other ESC in it) is a complete sequence.
fn escape_finished(seq: &[u8]) -> bool {
    let Some(&kind) = seq.get(1) else { return false };
    let rest = &seq[2..];
    match kind {
        // CSI: parameters and intermediates, then one final byte.
        b'[' => rest.iter().any(|&b| (0x40..=0x7e).contains(&b)),
        // OSC ends with BEL or ST (ESC \, whose ESC would be the last one, so not seen here);
        // DCS, SOS, PM and APC only with ST.
        b']' => rest.contains(&0x07),
        b'P' | b'X' | b'^' | b'_' => false,
        // nF sequences: intermediates, then a final byte.
        0x20..=0x2f => rest.iter().any(|&b| (0x30..=0x7e).contains(&b)),
        _ => true,
    }
}

/// Bytes at the end that start a UTF-8 character without all of its continuation bytes.
fn utf8_unfinished(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back for the lead
        }
        let need = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return 0,
        };
        return if back < need { back } else { 0 };
    }
    0
}

/// Paint `lines` one after another from the cursor, as output that scrolls: each ends with CR LF
/// unless it is wrapped, in which case it is painted to the last column so the next one wraps on.
fn paint_flow(lines: &[Line], cols: usize, out: &mut String) {
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1);
        if line.wrapped && cols >= 2 && leads_wide(line, next, cols) {
            // The line ends in the blank a wide character left when it did not fit: paint the
            // rest and leave the cursor on the last column, so the wide character wraps again.
            let cut = Line { cells: line.cells[..cols - 1].to_vec(), wrapped: false };
            paint_row(&cut, cols - 1, out);
            out.push_str(&format!("\x1b[{cols}G"));
            continue;
        }
        let col = paint_row(line, cols, out);
        if next.is_none() {
            break;
        }
        if line.wrapped {
            if col < cols {
                // Trailing blanks were not painted: put the cursor on the last column and fill
                // it, which leaves the wrap pending like the program's own output did.
                out.push_str(&format!("\x1b[{cols}G "));
            }
            // Wrap now (the next line may have nothing to print that would), then paint the
            // next line over the blank this leaves.
            out.push_str(" \r");
        } else {
            out.push_str("\r\n");
        }
    }
}

/// Whether `line` ends in the spacer a wide character leaves at the end of a line it does not fit
/// on, the character being the first of `next`.
fn leads_wide(line: &Line, next: Option<&Line>, cols: usize) -> bool {
    let is = |l: &Line, i: usize, bit: u16| l.cells.get(i).is_some_and(|c| c.attrs & bit != 0);
    is(line, cols - 1, attr::WIDE_SPACER)
        && !is(line, cols - 2, attr::WIDE)
        && next.is_some_and(|n| is(n, 0, attr::WIDE))
}

/// Paint a screen's `lines` from its top (exactly as many as it has rows, so nothing scrolls).
fn paint_at(lines: &[Line], cols: usize, out: &mut String) {
    out.push_str("\x1b[0m\x1b[H");
    paint_flow(lines, cols, out);
}

/// Put the cursor where `c` is, waiting to wrap if it was, and set its pen. `screen` is what the
/// screen it is on shows.
fn cursor_bytes(c: &Cursor<AlacCell>, screen: &[Line], cols: usize, out: &mut String) {
    let row = usize::try_from(c.point.line.0).unwrap_or(0);
    let line = screen.get(row);
    let last = cols.saturating_sub(1);
    let wide = last > 0
        && line.and_then(|l| l.cells.get(last)).is_some_and(|c| c.attrs & attr::WIDE_SPACER != 0);
    let at = if wide { last - 1 } else { last };
    // Writing the last column again would take the wrap off a line that has wrapped since (only a
    // saved cursor can be there): that line keeps its wrap, the saved cursor loses its pending one.
    let repaint = c.input_needs_wrap && line.is_some_and(|l| !l.wrapped);
    match line.and_then(|l| l.cells.get(at)).filter(|_| repaint) {
        Some(cell) => {
            // The program wrote the last column and its next character wraps: write that column
            // again, which leaves the new emulator waiting to wrap too.
            out.push_str(&format!("\x1b[{};{}H", row + 1, at + 1));
            write_pen(cell, out);
            out.push(if cell.ch.is_control() { ' ' } else { cell.ch });
            if let Some(extra) = &cell.extra {
                out.push_str(extra);
            }
        }
        None => out.push_str(&format!("\x1b[{};{}H", row + 1, c.point.column.0 + 1)),
    }
    // The pen the program left set (a link included): what it writes or erases next is drawn
    // with it.
    let pen = convert_cell(&c.template);
    write_pen(&pen, out);
    if let Some(link) = &pen.link {
        out.push_str(&format!("\x1b]8;;{link}\x1b\\"));
    }
}

/// DECSET/DECRST for each mode a program can change and a reader can see.
fn modes_bytes(m: TermMode, modes: &Modes, out: &mut String) {
    let flag = |on: bool, n: &str, out: &mut String| {
        out.push_str(&format!("\x1b[{n}{}", if on { 'h' } else { 'l' }));
    };
    flag(m.contains(TermMode::APP_CURSOR), "?1", out);
    out.push_str(if m.contains(TermMode::APP_KEYPAD) { "\x1b=" } else { "\x1b>" });
    flag(m.contains(TermMode::BRACKETED_PASTE), "?2004", out);
    flag(m.contains(TermMode::FOCUS_IN_OUT), "?1004", out);
    flag(m.contains(TermMode::SGR_MOUSE), "?1006", out);
    flag(m.contains(TermMode::UTF8_MOUSE), "?1005", out);
    flag(m.contains(TermMode::ALTERNATE_SCROLL), "?1007", out);
    flag(m.contains(TermMode::LINE_WRAP), "?7", out);
    flag(m.contains(TermMode::INSERT), "4", out);
    flag(m.contains(TermMode::LINE_FEED_NEW_LINE), "20", out);
    match modes.mouse {
        MouseMode::None => {}
        MouseMode::Click => flag(true, "?1000", out),
        MouseMode::Drag => flag(true, "?1002", out),
        MouseMode::Motion => flag(true, "?1003", out),
    }
    if modes.kitty_flags != 0 {
        out.push_str(&format!("\x1b[>{}u", modes.kitty_flags));
    }
    flag(m.contains(TermMode::SHOW_CURSOR), "?25", out);
}

impl AlacrittyEmulator {
    /// The state to rebuild this emulator elsewhere. Takes `&mut self` to look at the primary
    /// screen while the alternate one is shown (and put the alternate one back after).
    pub(super) fn take_state(&mut self) -> EmulatorState {
        // A synchronized update being buffered is shown now: the parser's buffer cannot travel.
        let _ = self.flush_sync();
        let cols = usize::from(self.size.cols);
        let rows = self.term.screen_lines();
        let alt = self.is_alt();
        let modes = self.modes();
        let mode = *self.term.mode();
        // The cursor as the program left it on the screen shown (pen, pending wrap).
        let shown_cursor = self.term.grid().cursor.clone();
        let alt_screen = alt.then(|| {
            let lines: Vec<Line> = (0..rows as i32).map(|r| self.line_at(r)).collect();
            let saved = self.term.grid().saved_cursor.clone();
            self.term.swap_alt();
            (lines, saved)
        });
        // The primary screen is shown now.
        let hot = self.term.grid().history_size();
        let primary: Vec<Line> = (-(hot as i32)..rows as i32).map(|l| self.line_at(l)).collect();
        let prim_cursor = self.term.grid().cursor.clone();
        let prim_saved = self.term.grid().saved_cursor.clone();
        let mut replay = String::from("\x1b[0m\x1b[H");
        paint_flow(&primary, cols, &mut replay);
        let prim_screen = &primary[hot..];
        cursor_bytes(&prim_saved, prim_screen, cols, &mut replay);
        replay.push_str("\x1b7");
        cursor_bytes(&prim_cursor, prim_screen, cols, &mut replay);
        if let Some((lines, saved)) = &alt_screen {
            replay.push_str("\x1b[?1049h");
            paint_at(lines, cols, &mut replay);
            cursor_bytes(saved, lines, cols, &mut replay);
            replay.push_str("\x1b7");
            cursor_bytes(&shown_cursor, lines, cols, &mut replay);
            // Back to how it was: entering again blanks the alternate screen, so paint it anew,
            // keeping the numbering as it stands.
            self.term.swap_alt();
            let mut again = String::new();
            paint_at(lines, cols, &mut again);
            // With a parser of its own: this one may be in the middle of the program's sequence.
            let num = std::mem::take(&mut self.num);
            let parser = std::mem::replace(&mut self.parser, Processor::new());
            self.advance(again.as_bytes());
            self.parser = parser;
            self.num = num;
            if lines.last().is_some_and(|l| l.wrapped) {
                self.wrap_last_row();
            }
            self.term.grid_mut().cursor = shown_cursor;
            self.term.grid_mut().saved_cursor = saved.clone();
            self.note_damage();
            self.row_rev.fill(self.rev);
        }
        modes_bytes(mode, &modes, &mut replay);
        EmulatorState {
            size: self.size,
            scrollback: self.scrollback,
            cold: self.cold.clone(),
            replay: replay.into_bytes(),
            prim_top: self.num.prim_top,
            alt_top: self.num.alt_top,
            hw: self.num.hw,
            pending: self.num.pending.clone(),
            title: self.title.clone(),
            colors: self.colors,
            scheme_updates: self.scheme_updates,
            tail: self.tail.clone(),
            last_wrapped: self.line_at(rows as i32 - 1).wrapped,
        }
    }

    /// Mark the screen's last row as continuing on the next line: painting cannot (the wrap would
    /// scroll).
    fn wrap_last_row(&mut self) {
        let rows = self.term.screen_lines();
        let row = &mut self.term.grid_mut()[GridLine(rows as i32 - 1)];
        if let Some(cell) = row[..].last_mut() {
            cell.flags.insert(Flags::WRAPLINE);
        }
    }

    /// A new emulator showing what the one `state` was taken from showed.
    pub(super) fn from_state(state: EmulatorState) -> AlacrittyEmulator {
        let mut emu = AlacrittyEmulator::new(state.size, state.scrollback);
        emu.cold = state.cold;
        emu.advance(&state.replay);
        // Replaying raised no query, but drop whatever events it did raise.
        let _ = emu.events.take();
        emu.num = Numbering {
            prim_top: state.prim_top,
            alt_top: state.alt_top,
            hw: state.hw,
            pending: state.pending,
        };
        if state.last_wrapped {
            emu.wrap_last_row();
        }
        emu.title = state.title;
        emu.colors = state.colors;
        emu.scheme_updates = state.scheme_updates;
        if !state.tail.is_empty() {
            // The start of a sequence the program is still writing: feeding it changes nothing
            // yet, and leaves the parser where the old one was.
            let num = std::mem::take(&mut emu.num);
            emu.advance(&state.tail);
            let _ = emu.events.take();
            emu.num = num;
            emu.tail = state.tail;
        }
        emu.note_damage();
        emu.row_rev.fill(emu.rev);
        emu
    }
}

impl EmulatorState {
    pub fn size(&self) -> Size {
        self.size
    }
}

/// Rebuild an emulator from state taken by [`Emulator::take_state`].
pub fn restore(state: EmulatorState) -> Box<dyn Emulator> {
    Box::new(AlacrittyEmulator::from_state(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::Feedback;

    /// What a reader can see of an emulator. A blank cell that draws nothing is the same blank
    /// whatever foreground it carries or whether it is a wide character's spacer (painting keeps
    /// neither), so that is not compared.
    fn seen(e: &dyn Emulator) -> (crate::term::Screen, Vec<Line>, Vec<NumberedLine>) {
        fn visible(line: &mut Line) {
            // A wide character without its spacer is painted as a blank, on the old server's
            // clients too.
            for i in 0..line.cells.len() {
                let wide = line.cells[i].attrs & attr::WIDE != 0;
                let paired =
                    line.cells.get(i + 1).is_some_and(|c| c.attrs & attr::WIDE_SPACER != 0);
                if wide && !paired {
                    line.cells[i] = crate::term::Cell {
                        fg: line.cells[i].fg,
                        bg: line.cells[i].bg,
                        ..Default::default()
                    };
                }
            }
            let last = line.cells.len().saturating_sub(1);
            for (i, c) in line.cells.iter_mut().enumerate() {
                // Not carried: the colours of the blank a wide character leaves at the end of a
                // line it does not fit on (it takes the character's).
                let leading = i == last && line.wrapped && c.ch == ' ' && c.extra.is_none();
                if c.is_default_blank() || leading {
                    *c = crate::term::Cell::default();
                }
            }
        }
        let mut screen = e.screen();
        screen.lines.iter_mut().for_each(visible);

        let mut lines = e.lines(100_000);
        lines.iter_mut().for_each(visible);
        let mut numbered = e.settled_lines_since(0);
        numbered.iter_mut().for_each(|n| visible(&mut n.line));
        (screen, lines, numbered)
    }

    /// Feed `before`, hand the state over (through postcard, as the server does), then feed
    /// `after` to both: the new emulator must show and number everything as the old one does.
    fn hand_over(size: Size, scrollback: usize, before: &[&[u8]], after: &[u8]) {
        let mut old = AlacrittyEmulator::new(size, scrollback);
        for chunk in before {
            old.feed(chunk);
        }
        let shown = seen(&old);
        let state = old.take_state();
        let now = seen(&old);
        assert_eq!(now, shown, "taking the state changed what the old emulator shows");
        let bytes = postcard::to_allocvec(&state).expect("state serializes");
        let state: EmulatorState = postcard::from_bytes(&bytes).expect("state deserializes");
        let mut new = restore(state);
        let (s_old, l_old, n_old) = shown;
        let (s_new, l_new, n_new) = seen(&*new);
        assert_eq!(s_new, s_old, "screen after the hand-over");
        assert_eq!(l_new, l_old, "scrollback after the hand-over");
        assert_eq!(n_new, n_old, "line numbers after the hand-over");
        let fb_old: Feedback = old.feed(after);
        let fb_new = new.feed(after);
        assert_eq!(fb_new, fb_old, "replies to what came after");
        let (s_old, l_old, n_old) = seen(&old);
        let (s_new, l_new, n_new) = seen(&*new);
        assert_eq!(s_new, s_old, "screen after more output");
        assert_eq!(l_new, l_old, "scrollback after more output");
        assert_eq!(n_new, n_old, "line numbers after more output");
    }

    #[test]
    fn colours_wraps_wide_characters_and_cold_scrollback_survive() {
        let mut before: Vec<u8> = Vec::new();
        for i in 0..400 {
            before.extend_from_slice(
                format!("\x1b[3{}mline {i}\x1b[0m \x1b[1;44mbold\x1b[0m 世界\r\n", i % 8)
                    .as_bytes(),
            );
            if i % 37 == 0 {
                // Longer than the width: wraps, trailing blanks included.
                before.extend_from_slice(format!("{}   \r\n", "x".repeat(95)).as_bytes());
            }
        }
        before.extend_from_slice(b"\x1b]2;my title\x07\x1b[?2004h\x1b[?1h\x1b[>1uprompt> typed");
        hand_over(Size::new(40, 12), 300, &[&before], b" more\r\nnext line\x1b[6n\x1b[?2004\x24p");
    }

    #[test]
    fn the_alternate_screen_and_the_primary_under_it_survive() {
        let before: &[&[u8]] = &[
            b"shell line 1\r\nshell line 2\r\n$ vim\r\n",
            b"\x1b[?1049h\x1b[H\x1b[2J\x1b[7mstatus\x1b[0m\x1b[5;3Hediting here\x1b[?1000h\x1b[?1006h",
        ];
        hand_over(Size::new(30, 8), 100, before, b"\x1b[?1049l$ back\r\n");
    }

    #[test]
    fn a_sequence_cut_by_the_hand_over_is_finished_by_the_new_emulator() {
        for cut in [&b"abc\x1b[3"[..], b"abc\x1b]2;half a ti", b"abc\xe4\xb8", b"abc\x1b"] {
            hand_over(Size::new(30, 6), 100, &[cut], b"1mX\x07tle\x07\x96\\[32mok\r\n");
        }
        // A string split over two feeds is still carried whole.
        hand_over(Size::new(30, 6), 100, &[b"a\x1b]2;one ", b"two "], b"three\x07b");
    }

    #[test]
    fn random_streams_hand_over_exactly() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        const PIECES: &[&str] = &[
            "word ",
            "\r\n",
            "\x1b[31m",
            "\x1b[1;4;48;5;200m",
            "\x1b[38;2;1;2;3m",
            "\x1b[0m",
            "世界",
            "e\u{301}",
            "\x1b[K",
            "\x1b[2J",
            "\x1b[H",
            "\x1b[3;5H",
            "\x1b[?1049h",
            "\x1b[?1049l",
            "\x1b[?25l",
            "\x1b[?25h",
            "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
            "\t",
            "\x1b[2A",
            "\x1b[L",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        for _ in 0..300 {
            let mut before = String::new();
            for _ in 0..next(300) {
                before.push_str(PIECES[next(PIECES.len() as u64) as usize]);
            }
            let mut after = String::new();
            for _ in 0..next(60) {
                after.push_str(PIECES[next(PIECES.len() as u64) as usize]);
            }
            let size = Size::new(10 + next(40) as u16, 3 + next(10) as u16);
            // Cut somewhere in the stream, sequences included.
            let bytes = before.into_bytes();
            let cut = next(bytes.len() as u64 + 1) as usize;
            let mut rest = bytes[cut..].to_vec();
            rest.extend_from_slice(after.as_bytes());
            hand_over(size, 50 + next(200) as usize, &[&bytes[..cut]], &rest);
        }
    }
}
