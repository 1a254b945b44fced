//! The terminal emulator behind our own trait, and what a screen is once rendered.
//!
//! This module owns the VT model of one pane: bytes from the PTY go in, a [`Screen`] of cells, the
//! scrollback as text, the input modes the program asked for, and the bytes the terminal must answer
//! (queries) come out. It does not own a PTY, a thread or a socket: the server's pane feeds it and
//! writes the replies back. Everything here is pure and synchronous so it can be tested and fuzzed
//! without a process.

mod alac;
mod cold;
pub mod colors;
pub mod screen;

// The examples include this module without the server, which is what restores emulators.
#[allow(unused_imports)]
pub use alac::{AlacrittyEmulator, EmulatorState, restore};
pub use colors::TermColors;
pub use screen::{Cell, Color, Line, Screen, ScreenUpdate, Size};

/// A reader's copy of a pane's screen as text, kept up to date by [`Emulator::update_text`].
#[derive(Debug, Clone, Default)]
pub struct TextCopy {
    pub rows: Vec<String>,
    /// The window title the program set (OSC 0 or 2).
    pub title: String,
    /// What the program last reported of its own state (`OSC 7501`, see
    /// [`Emulator::program_status`]).
    pub program_status: String,
    owner: u64,
    rev: u64,
}

/// A reader's copy of a pane's screen, kept up to date by [`Emulator::update_screen`].
#[derive(Debug, Clone, Default)]
pub struct ScreenCopy {
    /// The screen as the reader last saw it; `None` before the first update.
    pub screen: Option<Screen>,
    /// Which emulator filled it, and that emulator's change count then: rows changed since are
    /// the ones to convert again.
    owner: u64,
    rev: u64,
}

impl ScreenCopy {
    /// Bring this copy up to date from `emulator`: the update for a receiver of the old copy, or
    /// None when nothing a receiver shows (rows, cursor, modes, title) changed.
    pub fn refresh(&mut self, emulator: &dyn Emulator) -> Option<ScreenUpdate> {
        let before =
            self.screen.as_mut().map(|s| (s.cursor, s.modes, std::mem::take(&mut s.title)));
        let update = emulator.update_screen(self);
        let same = before.is_some_and(|(cursor, modes, title)| {
            cursor == update.cursor && modes == update.modes && title == update.title
        });
        (update.full || !update.rows.is_empty() || !same).then_some(update)
    }
}

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What the program in the pane asked of the terminal's input side. Clients mirror these on their
/// own terminal (attach) or encode keys for them (dashboard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modes {
    /// DECCKM: arrow keys send SS3 instead of CSI.
    pub app_cursor: bool,
    /// DECKPAM: keypad application mode.
    pub app_keypad: bool,
    /// Mode 2004.
    pub bracketed_paste: bool,
    /// Mode 1004.
    pub focus_events: bool,
    /// Mouse reporting the program enabled.
    pub mouse: MouseMode,
    /// Mode 1006 (SGR mouse encoding).
    pub sgr_mouse: bool,
    /// Mode 1049/47/1047: the alternate screen is shown.
    pub alt_screen: bool,
    /// Mode 1007: wheel scrolls become arrow keys on the alternate screen.
    pub alternate_scroll: bool,
    /// Kitty keyboard protocol flags currently pushed (CSI > flags u).
    pub kitty_flags: u8,
    /// DECTCEM.
    pub cursor_visible: bool,
}

/// Which mouse events the program wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MouseMode {
    #[default]
    None,
    /// 1000: press and release.
    Click,
    /// 1002: plus motion while a button is held.
    Drag,
    /// 1003: all motion.
    Motion,
}

/// What feeding bytes produced besides a new screen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Bytes to write back to the program: answers to its queries (CPR, DA1/DA2, DECRQM, kitty
    /// keyboard query, OSC 10/11 colours, XTVERSION, text area size), in the order asked.
    pub replies: Vec<u8>,
    /// The program rang the bell (BEL outside an OSC/DCS string).
    pub bell: bool,
    /// The window title changed (OSC 0/2).
    pub title_changed: bool,
}

/// A line of the pane's history with its absolute number: lines are numbered from the first line
/// the pane ever showed, and the number of a line never changes, even when old lines fall off the
/// bounded scrollback. `tail -f` uses the numbers to print each line once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberedLine {
    pub number: u64,
    pub line: Line,
}

/// The VT model of one pane. Implementations must never panic on any input bytes or sizes.
pub trait Emulator: Send {
    /// Feed bytes read from the PTY.
    fn feed(&mut self, bytes: &[u8]) -> Feedback;
    /// When a synchronized update (mode 2026) is being buffered, the instant it must be flushed
    /// even if the program never ends it; `None` otherwise.
    fn sync_deadline(&self) -> Option<Instant>;
    /// Flush a synchronized update whose deadline passed.
    fn flush_sync(&mut self) -> Feedback;
    /// The default colours to answer colour queries (OSC 10/11/12) with, from now on; a program
    /// that asked to hear of changes (mode 2031) is sent the new scheme, in the replies.
    fn set_colors(&mut self, colors: TermColors) -> Feedback;
    /// Give back memory held for speed (caches of blank rows). Called when output goes quiet.
    fn trim_memory(&mut self) {}
    /// Resize the grid (reflowing as the real terminal would). Sizes are clamped to at least 1x1.
    fn resize(&mut self, size: Size);
    fn size(&self) -> Size;
    /// The visible screen (not scrolled back), with cursor, modes and title.
    fn screen(&self) -> Screen;
    /// Bring `copy` up to date with the visible screen and return the update that takes a
    /// receiver of the old copy to the new one, as `screen().diff(old)` would. Implementations
    /// may convert only the rows that changed since `copy` was last brought up to date.
    fn update_screen(&self, copy: &mut ScreenCopy) -> ScreenUpdate {
        let screen = self.screen();
        let update = screen.diff(copy.screen.as_ref());
        *copy = ScreenCopy { screen: Some(screen), ..ScreenCopy::default() };
        update
    }
    /// The visible screen's rows as text, each as [`Line::text`] gives it. Status rules read this
    /// on every change, so implementations may skip building cells.
    fn screen_text(&self) -> Vec<String> {
        self.screen().lines.iter().map(Line::text).collect()
    }
    /// Bring `copy` up to date with [`Emulator::screen_text`]; implementations may convert only
    /// the rows that changed since `copy` was last brought up to date.
    fn update_text(&self, copy: &mut TextCopy) {
        *copy = TextCopy {
            rows: self.screen_text(),
            title: self.title(),
            program_status: self.program_status(),
            ..TextCopy::default()
        };
    }
    fn modes(&self) -> Modes;
    fn title(&self) -> String;
    /// What the program last said of its own state with `OSC 7501` ("program status", which
    /// Claude Code sends once the terminal answers its probe): `working`, `blocked:<kind>`,
    /// `done`, `idle`; empty when it never did or cleared it.
    fn program_status(&self) -> String {
        String::new()
    }
    /// The last `max` lines of scrollback followed by the visible screen, with trailing blank screen
    /// lines removed (the lines below the cursor that were never written).
    fn lines(&self, max: usize) -> Vec<Line>;
    /// Lines numbered `>= from` that are settled: lines in the scrollback, and screen lines above the
    /// cursor row. Returns them in order; the caller asks next time from `last.number + 1`.
    fn settled_lines_since(&self, from: u64) -> Vec<NumberedLine>;
    /// What a new emulator in another process needs to show the same thing (`server --upgrade`).
    fn take_state(&mut self) -> EmulatorState;
}

/// Build the emulator corral uses, with the given scrollback bound.
pub fn new_emulator(size: Size, scrollback: usize) -> Box<dyn Emulator> {
    Box::new(AlacrittyEmulator::new(size, scrollback))
}
