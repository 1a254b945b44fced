//! Fidelity: real programs run in a corral agent and in tmux at the same size, get the same keys,
//! and their screens must match cell by cell (text, and colours where tmux can tell us them).
//! tmux is the reference terminal here; where it is the one that is wrong, the case says so.
//! Each case is skipped (with the reason printed) when a program it needs is not installed.
//! The agent CLIs (Claude Code, Codex, Gemini CLI, OpenCode, Aider) are compared too, offline against the mocks of their APIs,
//! as text with volatile parts masked ([`mask_volatile`]), and in colour on the rows with no
//! volatile part ([`Pair::compare_style_stable`]); they are found like in tests/claude.rs. Each
//! side runs them with its own copy of their HOME (they write state there), and tmux is set up
//! to answer colour queries as corral does, so the programs choose the same colours on both.
//! Their first-run screens are compared too: Claude Code's folder-trust dialog (and the prompt
//! once it is accepted), Codex's trust dialog and its sign-in screen (no provider, no key).
//! less, vim, htop, cat, Claude Code, Codex, Gemini CLI and Aider are also resized mid-run and compared again, and
//! so is a vttest screen, which is not redrawn: that compares the terminals' own reflow.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use corral::term::{Color, Size, screen::attr};
use tty::Tty;

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether every program the case needs is present; prints SKIPPED naming the missing one.
fn need(case: &str, programs: &[&str]) -> bool {
    for p in programs {
        if !installed(p) {
            eprintln!("SKIPPED {case}: {p} is not installed (scripts/setup.sh installs it)");
            return false;
        }
    }
    true
}

/// Quote for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The same program, run by corral (as an agent profile, seen through `corral attach` in a Tty)
/// and by tmux (a private server on its own socket), at the same size.
struct Pair {
    env: Env,
    tty: Tty,
    socket: String,
    size: Size,
}

impl Pair {
    /// `argv` runs in `dir` (an absolute path) with TERM=xterm-256color on both sides, so the
    /// program emits the same bytes to both terminals.
    fn start(case: &str, dir: &Path, argv: &[&str], size: Size) -> Pair {
        Pair::start_each(case, dir, argv, argv, size)
    }

    /// [`Pair::start`] with a command line of its own for each side (`ours` under corral,
    /// `theirs` under tmux), for programs that write state a second run would read (each side
    /// then gets its own copy of that state).
    fn start_each(case: &str, dir: &Path, ours: &[&str], theirs: &[&str], size: Size) -> Pair {
        let env = Env::new();
        let dir_s = dir.to_str().unwrap();
        let script = |argv: &[&str]| {
            let mut full = vec!["env", "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"];
            full.extend_from_slice(argv);
            format!("cd {} && exec {}", sh_quote(dir_s), shell_words(&full))
        };
        let toml =
            format!("[agents.fid]\ncommand = [\"sh\", \"-c\", {}]\n", toml_string(&script(ours)));
        env.write_config(&toml);
        let sz = format!("{}x{}", size.cols, size.rows);
        env.ok(&["new", "--agent", "fid", "--name", case, "--detach", "--size", &sz]);
        let tty = Tty::spawn(&env, &["attach", case], size);

        let socket = format!("corral-fid-{}-{case}", std::process::id());
        // The options are in place before the program starts (it may query at once). Keep the
        // pane (and its last screen) if the program exits; no status line, so the pane has
        // every row. And the pane's default colours set to the ones corral's emulator claims
        // (TermColors::FALLBACK, which `attach` in our Tty reports): asked for its colours (OSC 10/11), a tmux
        // with no client attached has none to report and stays silent unless a window style
        // names them, while corral answers. Codex, for one, shades its panels only when it
        // learns the background, so without this the sides would differ in colour for a reason
        // that is not drawing. The window style does not touch the cells capture-pane reports.
        let conf = env.root().join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g status off\nset -g window-style fg=#d0d0d0,bg=#101010\n",
        )
        .unwrap();
        let out = tmux_cmd(&socket)
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d", "-x"])
            .arg(size.cols.to_string())
            .arg("-y")
            .arg(size.rows.to_string())
            .arg(script(theirs))
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
        // Pin the window at the size given (there is no client to size it).
        tmux(
            &socket,
            &["resize-window", "-x", &size.cols.to_string(), "-y", &size.rows.to_string()],
        );
        Pair { env, tty, socket, size }
    }

    fn tmux(&self, args: &[&str]) -> String {
        tmux(&self.socket, args)
    }

    /// Type `text` literally into both.
    fn type_str(&mut self, text: &str) {
        self.tty.type_str(text);
        self.tmux(&["send-keys", "-t", "0", "-l", text]);
    }

    /// Send raw bytes (keys as the terminal encodes them) into both.
    fn keys(&mut self, bytes: &str) {
        self.tty.type_str(bytes);
        let hex: Vec<String> = bytes.bytes().map(|b| format!("0x{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", "0", "-H"];
        args.extend(hex.iter().map(String::as_str));
        self.tmux(&args);
    }

    fn resize(&mut self, size: Size) {
        self.size = size;
        self.tty.resize(size);
        self.tmux(&["resize-window", "-x", &size.cols.to_string(), "-y", &size.rows.to_string()]);
    }

    fn tmux_text(&self) -> Vec<String> {
        let out = self.tmux(&["capture-pane", "-p", "-t", "0"]);
        let mut lines: Vec<String> =
            out.lines().map(|l| l.trim_end_matches(' ').to_string()).collect();
        lines.resize(usize::from(self.size.rows), String::new());
        lines
    }

    /// The screen with its SGR sequences. Trailing blanks the program wrote are kept (-N), so a
    /// background colour written to the end of a row is compared too; blanks coloured by an
    /// erase (EL with a background set) tmux does not report at all, so those are not.
    fn tmux_ansi(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-N", "-t", "0"])
    }

    fn corral_text(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.tty.text().lines().map(str::to_string).collect();
        lines.resize(usize::from(self.size.rows), String::new());
        lines
    }

    /// Wait until each side's screen holds `pred` and then stays the same across several reads
    /// (the program is done drawing), with a deadline.
    fn settle(&self, what: &str, pred: impl Fn(&[String]) -> bool) {
        settle(&format!("corral: {what}"), || self.corral_text(), &pred);
        settle(&format!("tmux: {what}"), || self.tmux_text(), &pred);
    }

    /// Both screens settled on `what`, then compared line by line as text.
    fn compare_text(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        self.compare_masked(what, pred, |l| l.to_string())
    }

    /// [`Pair::compare_text`], with each line passed through `mask` (on both sides) first, for
    /// programs that draw volatile parts (clocks, durations, spinners).
    fn compare_masked(
        &self,
        what: &str,
        pred: impl Fn(&[String]) -> bool,
        mask: impl Fn(&str) -> String,
    ) -> Vec<String> {
        self.settle(what, &pred);
        // Each side settled on its own; one may still have a redraw to come that the other
        // already made, so agreement is awaited (with the deadline) rather than read once.
        let masked =
            |lines: Vec<String>| -> Vec<String> { lines.iter().map(|l| mask(l)).collect() };
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ours = masked(self.corral_text());
            let theirs = masked(self.tmux_text());
            if ours == theirs {
                return ours;
            }
            if Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let diffs: Vec<String> = ours
                .iter()
                .zip(&theirs)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| format!("row {i}:\n  corral {a:?}\n  tmux   {b:?}"))
                .collect();
            panic!(
                "{what}: the screens differ\n{}\n--- corral ---\n{}\n--- tmux ---\n{}",
                diffs.join("\n"),
                ours.join("\n"),
                theirs.join("\n")
            );
        }
    }

    /// Like [`Pair::compare_text`] for programs whose screen keeps changing (clocks, meters):
    /// only the rows `pick` chooses must settle and match.
    fn compare_rows(&self, what: &str, pick: impl Fn(&[String]) -> Option<Vec<String>>) {
        let picked = |read: &dyn Fn() -> Vec<String>| {
            let deadline = Instant::now() + DEADLINE;
            let (mut last, mut same) = (None, 0);
            loop {
                let now = pick(&read());
                if let Some(rows) = now.as_ref().filter(|_| now == last) {
                    same += 1;
                    if same >= 4 {
                        return rows.clone();
                    }
                } else {
                    same = 0;
                }
                assert!(Instant::now() < deadline, "{what} never settled: {now:?}");
                last = now;
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let ours = picked(&|| self.corral_text());
        let theirs = picked(&|| self.tmux_text());
        assert_eq!(ours, theirs, "{what}: corral (left) and tmux (right) differ");
    }

    /// Compare colours and the attributes tmux reports (bold, italic, underline, inverse) cell
    /// by cell against `capture-pane -e`.
    fn compare_style(&self, what: &str) {
        let all = 0..usize::from(self.size.rows);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let theirs = parse_sgr_capture(&self.tmux_ansi(), self.size);
            let diffs = style_diffs(&self.tty.screen(), &theirs, all.clone());
            if diffs.is_empty() {
                return;
            }
            // A recolouring (vim's :syntax on) redraws the same text, so settling on text may
            // have come before it on one side: wait for agreement before calling it a bug.
            assert!(Instant::now() < deadline, "{what}: styles differ\n{}", diffs.join("\n"));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Pair::compare_style`] for programs that draw volatile parts: a row is compared only if
    /// `mask` leaves it as it is (no clock, duration or spinner on it, whose colours animate
    /// independently on each side), and every such row must have the same text on both sides.
    /// Fails unless at least `min_coloured` compared cells have a colour other than the
    /// default, so the comparison cannot pass on blank or uncoloured rows alone.
    fn compare_style_stable(&self, what: &str, mask: impl Fn(&str) -> String, min_coloured: usize) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ours = self.tty.screen();
            let our_text = self.corral_text();
            let their_text = self.tmux_text();
            let theirs = parse_sgr_capture(&self.tmux_ansi(), self.size);
            let stable = |r: usize| {
                let (a, b) = (&our_text[r], &their_text[r]);
                mask(a) == *a && mask(b) == *b
            };
            let mut problems: Vec<String> = (0..our_text.len())
                .filter(|&r| stable(r) && our_text[r] != their_text[r])
                .map(|r| format!("row {r} text: corral {:?} tmux {:?}", our_text[r], their_text[r]))
                .collect();
            problems.extend(style_diffs_in(&ours, &theirs, stable));
            let coloured = (0..our_text.len())
                .filter(|&r| stable(r))
                .filter_map(|r| ours.lines.get(r))
                .flat_map(|l| &l.cells)
                .filter(|c| c.fg != Color::Default || c.bg != Color::Default)
                .count();
            if problems.is_empty() && coloured >= min_coloured {
                return;
            }
            // The text settled first (see compare_masked); a recolouring may still be on its way.
            assert!(
                Instant::now() < deadline,
                "{what}: styles differ ({coloured} coloured cells compared, {min_coloured} wanted)\n{}\n--- corral ---\n{}",
                problems.join("\n"),
                our_text.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Where our cells' colours and attributes differ from tmux's, for the rows in `rows`.
fn style_diffs(
    ours: &corral::term::Screen,
    theirs: &[Vec<(char, Style)>],
    rows: std::ops::Range<usize>,
) -> Vec<String> {
    style_diffs_in(ours, theirs, |r| rows.contains(&r))
}

/// [`style_diffs`] for the rows `pick` accepts.
fn style_diffs_in(
    ours: &corral::term::Screen,
    theirs: &[Vec<(char, Style)>],
    pick: impl Fn(usize) -> bool,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for (r, row) in theirs.iter().enumerate() {
        if !pick(r) {
            continue;
        }
        let mut col = 0usize;
        for cell in row {
            let Some(our) = ours.lines.get(r).and_then(|l| l.cells.get(col)) else { break };
            let mine = Style::of(our).seen_on(our.ch);
            if mine != cell.1.seen_on(cell.0) && diffs.len() < 20 {
                diffs.push(format!(
                    "row {r} col {col} {:?}: corral {mine:?} tmux {:?}",
                    cell.0, cell.1
                ));
            }
            col += if our.attrs & attr::WIDE != 0 { 2 } else { 1 };
        }
    }
    diffs
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = tmux_cmd(&self.socket).arg("kill-server").output();
    }
}

fn tmux_cmd(socket: &str) -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", socket]).env_remove("TMUX").env("LANG", "C.UTF-8").env("LC_ALL", "C.UTF-8");
    c
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = tmux_cmd(socket).args(args).output().unwrap();
    assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shell_words(argv: &[&str]) -> String {
    argv.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ")
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn settle(what: &str, read: impl Fn() -> Vec<String>, pred: &impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut last = Vec::new();
    let mut same = 0;
    loop {
        let now = read();
        if pred(&now) && now == last {
            same += 1;
            if same >= 4 {
                return;
            }
        } else {
            same = 0;
        }
        assert!(Instant::now() < deadline, "{what} never settled; it shows:\n{}", now.join("\n"));
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has(s: &'static str) -> impl Fn(&[String]) -> bool {
    move |lines: &[String]| lines.iter().any(|l| l.contains(s))
}

/// What both sides can say about a cell's look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    fg: Color,
    bg: Color,
    bold: bool,
    italic: bool,
    underline: bool,
    inverse: bool,
}

impl Style {
    /// The style as far as it can be seen on `ch`: a blank on the default background shows
    /// neither its foreground colour nor bold or italic (only underline and inverse draw
    /// something), and corral does not repaint the style of such blanks at the end of a row
    /// (see `paint_row` in src/term/screen.rs), so those count as unstyled on both sides.
    fn seen_on(self, ch: char) -> Style {
        if ch == ' ' && self.bg == Color::Default && !self.underline && !self.inverse {
            Style::default()
        } else {
            self
        }
    }

    fn of(c: &corral::term::Cell) -> Style {
        Style {
            fg: c.fg,
            bg: c.bg,
            bold: c.attrs & attr::BOLD != 0,
            italic: c.attrs & attr::ITALIC != 0,
            underline: c.attrs & attr::UNDERLINE != 0,
            inverse: c.attrs & attr::INVERSE != 0,
        }
    }
}

/// Parse `capture-pane -p -e` output into rows of (character, style), one entry per character
/// (a wide character is one entry). Unknown SGR parameters are ignored.
fn parse_sgr_capture(s: &str, size: Size) -> Vec<Vec<(char, Style)>> {
    let mut rows = Vec::new();
    let mut pen = Style::default();
    for line in s.split('\n').take(usize::from(size.rows)) {
        let mut row = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '\x1b' && chars.peek() == Some(&'[') {
                chars.next();
                let mut params = String::new();
                let mut fin = 'm';
                for c in chars.by_ref() {
                    if c.is_ascii_digit() || c == ';' || c == ':' {
                        params.push(c);
                    } else {
                        fin = c;
                        break;
                    }
                }
                if fin == 'm' {
                    apply_sgr(&mut pen, &params);
                }
                continue;
            }
            if ch == '\x1b' {
                // OSC 8 hyperlinks and the like: skip to ST.
                while let Some(c) = chars.next() {
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
                continue;
            }
            if unicode_width_zero(ch) {
                continue;
            }
            row.push((ch, pen));
        }
        rows.push(row);
    }
    rows
}

fn unicode_width_zero(c: char) -> bool {
    matches!(c as u32, 0x300..=0x36f | 0x200b..=0x200f | 0xfe00..=0xfe0f)
}

fn apply_sgr(pen: &mut Style, params: &str) {
    let ps: Vec<u16> = if params.is_empty() {
        vec![0]
    } else {
        params.split([';', ':']).map(|p| p.parse().unwrap_or(0)).collect()
    };
    let mut i = 0;
    while i < ps.len() {
        match ps[i] {
            0 => *pen = Style::default(),
            1 => pen.bold = true,
            3 => pen.italic = true,
            4 => pen.underline = true,
            7 => pen.inverse = true,
            22 => pen.bold = false,
            23 => pen.italic = false,
            24 => pen.underline = false,
            27 => pen.inverse = false,
            n @ 30..=37 => pen.fg = Color::Indexed((n - 30) as u8),
            39 => pen.fg = Color::Default,
            n @ 40..=47 => pen.bg = Color::Indexed((n - 40) as u8),
            49 => pen.bg = Color::Default,
            n @ 90..=97 => pen.fg = Color::Indexed((n - 90 + 8) as u8),
            n @ 100..=107 => pen.bg = Color::Indexed((n - 100 + 8) as u8),
            n @ (38 | 48) => {
                let color = match ps.get(i + 1) {
                    Some(5) => {
                        let c = Color::Indexed(ps.get(i + 2).copied().unwrap_or(0) as u8);
                        i += 2;
                        c
                    }
                    Some(2) => {
                        let g = |k: usize| ps.get(i + k).copied().unwrap_or(0) as u8;
                        let c = Color::Rgb(g(2), g(3), g(4));
                        i += 4;
                        c
                    }
                    _ => Color::Default,
                };
                if n == 38 {
                    pen.fg = color;
                } else {
                    pen.bg = color;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

fn fixture_dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().canonicalize().unwrap();
    (t, p)
}

#[test]
fn cat_of_unicode_matches_tmux() {
    if !need("cat_of_unicode", &["tmux", "cat"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let text = "plain ascii line\n\
                CJK: 漢字かなカナ한국어 end\n\
                emoji: 😀🎉👍 done\n\
                combining: e\u{301} a\u{308} n\u{303} ok\n\
                mixed: a漢b😀c\u{301}d\n\
                \x1b[1;31mbold red\x1b[0m \x1b[4;32munder green\x1b[0m \x1b[7minverse\x1b[0m \
                \x1b[38;5;208m208\x1b[0m \x1b[48;2;10;20;30mrgb bg\x1b[0m\n\
                last\n";
    std::fs::write(dir.join("u.txt"), text).unwrap();
    let size = Size::new(60, 12);
    let mut p = Pair::start("cat", &dir, &["sh", "-c", "cat u.txt; exec sleep 3600"], size);
    let screen = p.compare_text("cat of a Unicode file", has("last"));
    assert!(screen.iter().any(|l| l.contains("emoji: 😀🎉👍 done")), "{screen:?}");
    assert!(screen.iter().any(|l| l.contains("e\u{301} a\u{308}")), "{screen:?}");
    // `corral tail --plain` reads the server's screen directly: the same rows as attach shows.
    let tail = p.env.tail("cat");
    let shown: Vec<&str> = screen.iter().map(String::as_str).filter(|l| !l.is_empty()).collect();
    let tailed: Vec<&str> = tail.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(tailed, shown, "tail --plain and attach agree");
    p.compare_style("cat of a Unicode file");
    // Narrower mid-session, at an odd width so wide characters meet the wrap boundary: the
    // long lines reflow, and the coloured line's colours must move with its text.
    p.resize(Size::new(23, 12));
    let screen = p.compare_text("cat reflowed to 23 columns", |l: &[String]| {
        l.iter().any(|x| x == "last") && l.iter().all(|x| x.chars().count() <= 23)
    });
    assert!(
        screen.iter().any(|l| l == "verse 208 rgb bg"),
        "the coloured line wrapped: {screen:?}"
    );
    p.compare_style("cat reflowed to 23 columns");
    // And back wider: the wrapped rows join again.
    p.resize(Size::new(60, 12));
    let screen = p.compare_text("cat reflowed back to 60 columns", has("emoji: 😀🎉👍 done"));
    assert!(screen.iter().any(|l| l.contains("CJK: 漢字かなカナ한국어 end")), "{screen:?}");
    p.compare_style("cat reflowed back to 60 columns");
}

#[test]
fn less_paging_a_long_file_matches_tmux() {
    if !need("less_paging", &["tmux", "less"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let body: String = (1..=300).map(|i| format!("line {i:03} of the long file\n")).collect();
    std::fs::write(dir.join("long.txt"), body).unwrap();
    let size = Size::new(50, 15);
    let mut p = Pair::start("less", &dir, &["less", "-R", "long.txt"], size);
    p.compare_text("less first page", has("line 014"));
    p.keys(" ");
    p.compare_text("less second page", has("line 028"));
    // The second page-down goes through `corral send` rather than the attached terminal: the
    // server's own key path must give less the same input.
    p.env.ok(&["send", "less", " ", "--no-enter"]);
    p.tmux(&["send-keys", "-t", "0", "-l", " "]);
    let screen = p.compare_text("less third page", has("line 042"));
    assert!(screen[0].contains("line 029"), "paged twice: {screen:?}");
    p.compare_style("less third page");
    // A resize mid-session: less redraws for the new size on both.
    p.resize(Size::new(40, 10));
    p.compare_text("less after resize", |l: &[String]| l.iter().any(|x| x.contains("line 0")));
    p.compare_style("less after resize");
}

#[test]
fn vim_editing_with_syntax_colours_matches_tmux() {
    if !need("vim", &["tmux", "vim"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    std::fs::write(dir.join("f.py"), "# a comment\ndef f(x):\n    return \"str\" + 42\n").unwrap();
    let size = Size::new(60, 14);
    // vim asks the terminal for its background colour (OSC 11) and picks its palette from the
    // answer; this case fails if tmux does not answer like corral (see the window style in
    // Pair::start).
    let argv = ["vim", "-u", "NONE", "-N", "-i", "NONE", "-n", "f.py"];
    let mut p = Pair::start("vim", &dir, &argv, size);
    p.compare_text("vim opened the file", has("# a comment"));
    p.type_str("Go");
    p.type_str("print('漢字 😀 é')");
    p.keys("\x1b");
    p.type_str(":syntax on\r");
    p.compare_text("vim after typing and :syntax on", has("print('漢字"));
    p.compare_style("vim with syntax colours");
    let coloured =
        p.tty.screen().lines.iter().flat_map(|l| &l.cells).any(|c| c.fg != Color::Default);
    assert!(coloured, "syntax highlighting is on, so the colour comparison is not of defaults");
    // Resize in the middle of the edit: vim redraws for the new size on both sides.
    p.resize(Size::new(44, 10));
    p.compare_text("vim after resize", |l: &[String]| {
        l.iter().any(|x| x.contains("print('漢字")) && l.len() == 10
    });
    p.compare_style("vim after resize");
    p.type_str("ggdd");
    p.compare_text("vim after deleting the first line", |l: &[String]| {
        !l.iter().any(|x| x.contains("# a comment"))
    });
}

#[test]
fn htop_static_rows_match_tmux() {
    if !need("htop", &["tmux", "htop"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    // Its own HOME so a user's htoprc cannot change the layout on one side only.
    let home = format!("HOME={}", dir.display());
    let size = Size::new(100, 20);
    let mut p = Pair::start("htop", &dir, &["env", &home, "htop"], size);
    // The meters and the process list change every tick; the column header and the
    // function-key bar do not.
    let pick = |l: &[String]| {
        let header = l.iter().find(|x| x.contains("PID") && x.contains("USER"))?;
        let bar = l.last().filter(|x| x.contains("F1Help") || x.contains("Help"))?;
        Some(vec![header.clone(), bar.clone()])
    };
    // The function-key bar's colours (keys and labels in different colours).
    let bar_style = |p: &Pair, what: &str| {
        let last = usize::from(p.size.rows) - 1;
        let theirs = parse_sgr_capture(&p.tmux_ansi(), p.size);
        let ours = p.tty.screen();
        assert!(
            ours.lines[last].cells.iter().any(|c| c.bg != Color::Default),
            "{what}: the bar is coloured, so the comparison is not of blanks"
        );
        let diffs = style_diffs(&ours, &theirs, last..last + 1);
        assert!(diffs.is_empty(), "{what}: styles differ\n{}", diffs.join("\n"));
    };
    p.compare_rows("htop header and function keys", pick);
    bar_style(&p, "htop function-key bar");
    // Narrower and shorter mid-run: htop lays the header and the bar out again for the new
    // width (the bar is cut short at 60 columns), so the rows must follow the resize on both.
    p.resize(Size::new(60, 16));
    let narrow = |l: &[String]| {
        let rows = pick(l)?;
        (l.len() == 16 && rows.iter().all(|r| r.chars().count() <= 60)).then_some(rows)
    };
    p.compare_rows("htop header and function keys after resizing to 60x16", narrow);
    bar_style(&p, "htop function-key bar after the resize");
}

/// Keys typed into `corral attach` reach the program byte for byte: the recorder fixture puts its
/// tty in raw mode and writes down every byte it reads.
#[test]
fn keys_through_attach_reach_the_program_exactly() {
    if !need("input", &["python3"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let (_env, mut tty, log) = recorder(&dir, &["--paste"]);
    // The program's bracketed-paste request is mirrored onto the terminal attach runs in, so a
    // real terminal would wrap pastes in the markers.
    wait_for("bracketed paste mirrored onto the attach terminal", || {
        tty.modes().bracketed_paste.then_some(())
    });
    let keys: &[(&str, &str)] = &[
        ("Shift+Enter (CSI u)", "\x1b[13;2u"),
        ("Shift+Enter (modifyOtherKeys)", "\x1b[27;2;13~"),
        ("Alt+Enter", "\x1b\r"),
        ("Home", "\x1b[H"),
        ("End", "\x1b[F"),
        ("Home (vt)", "\x1b[1~"),
        ("Ctrl+Left", "\x1b[1;5D"),
        ("Ctrl+Right", "\x1b[1;5C"),
        ("Ctrl+Up", "\x1b[1;5A"),
        ("Shift+Tab", "\x1b[Z"),
        ("bracketed paste", "\x1b[200~pasted\ntext \u{6f22}\x1b[201~"),
        ("plain text", "hi!"),
    ];
    expect_each(&mut tty, &log, keys);
}

/// The key recorder (tests/fixtures/keyrec.py) run as agent `rec` with `flags`, attached in a Tty
/// at 80x24 once it says READY; gives the recorder's log too.
fn recorder(dir: &Path, flags: &[&str]) -> (Env, Tty, PathBuf) {
    let rec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keyrec.py");
    let log = dir.join("keys.hex");
    let env = Env::new();
    let mut argv = vec![toml_string(rec.to_str().unwrap()), toml_string(log.to_str().unwrap())];
    argv.extend(flags.iter().map(|f| toml_string(f)));
    env.write_config(&format!("[agents.rec]\ncommand = [\"python3\", {}]\n", argv.join(", ")));
    env.ok(&["new", "--agent", "rec", "--name", "rec", "--detach", "--size", "80x24"]);
    let tty = Tty::spawn(&env, &["attach", "rec"], Size::new(80, 24));
    tty.wait_screen("READY");
    (env, tty, log)
}

/// The bytes the recorder has read so far, waiting (up to `deadline`) until there are at least
/// `want` of them.
fn recorded(log: &Path, want: usize, deadline: Duration) -> Vec<u8> {
    let end = Instant::now() + deadline;
    loop {
        let hex = std::fs::read_to_string(log).unwrap_or_default();
        let got: Vec<u8> =
            hex.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        if got.len() >= want || Instant::now() >= end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Type each input into the attach terminal and require the recorder to have read exactly the
/// bytes typed so far, input by input.
fn expect_each(tty: &mut Tty, log: &Path, inputs: &[(&str, &str)]) {
    let mut expect = Vec::new();
    for (what, bytes) in inputs {
        tty.type_str(bytes);
        expect.extend_from_slice(bytes.as_bytes());
        let got = recorded(log, expect.len(), DEADLINE);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expect),
            "{what}: the program read other bytes than the terminal sent"
        );
    }
}

#[test]
fn mouse_wheel_reaches_a_program_that_asked_for_the_mouse_as_sgr() {
    if !need("mouse_input", &["python3"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let (_env, mut tty, log) = recorder(&dir, &["--mouse"]);
    // The program's mouse request is mirrored onto the terminal attach runs in, so a real
    // terminal would send it wheel and button events, SGR-encoded.
    wait_for("mouse reporting mirrored onto the attach terminal", || {
        let m = tty.modes();
        (m.mouse != corral::term::MouseMode::None && m.sgr_mouse).then_some(())
    });
    expect_each(
        &mut tty,
        &log,
        &[
            ("wheel up", "\x1b[<64;10;5M"),
            ("wheel down", "\x1b[<65;10;5M"),
            ("wheel up with Ctrl", "\x1b[<80;33;12M"),
            ("left press", "\x1b[<0;1;1M"),
            ("left release", "\x1b[<0;1;1m"),
            ("wheel down at the bottom-right cell", "\x1b[<65;80;24M"),
        ],
    );
}

#[test]
fn focus_in_and_out_reach_a_program_that_enabled_focus_events() {
    if !need("focus_input", &["python3"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let (_env, mut tty, log) = recorder(&dir, &["--focus"]);
    wait_for("focus reporting mirrored onto the attach terminal", || {
        tty.modes().focus_events.then_some(())
    });
    expect_each(
        &mut tty,
        &log,
        &[("focus out", "\x1b[O"), ("focus in", "\x1b[I"), ("focus out again", "\x1b[O")],
    );
}

#[test]
fn a_ten_thousand_line_bracketed_paste_arrives_complete_and_in_order() {
    if !need("big_paste", &["python3"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let (_env, mut tty, log) = recorder(&dir, &["--paste"]);
    wait_for("bracketed paste mirrored onto the attach terminal", || {
        tty.modes().bracketed_paste.then_some(())
    });
    let lines: Vec<String> =
        (1..=10_000).map(|i| format!("line {i:05} of the pasted text \u{6f22}")).collect();
    let paste = format!("\x1b[200~{}\x1b[201~", lines.join("\n"));
    tty.type_str(&paste);
    let got = recorded(&log, paste.len(), Duration::from_secs(60));
    assert_eq!(got.len(), paste.len(), "the paste arrived short (or long)");
    let got = String::from_utf8(got).expect("the paste arrived as broken UTF-8");
    let body = got
        .strip_prefix("\x1b[200~")
        .and_then(|b| b.strip_suffix("\x1b[201~"))
        .expect("the paste markers did not frame the paste");
    let got_lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(got_lines.len(), 10_000, "line count");
    assert_eq!(got_lines[0], lines[0], "first line");
    assert_eq!(got_lines[9_999], lines[9_999], "last line");
    assert!(
        got == paste,
        "the paste arrived with the right length but other bytes (out of order?)"
    );
}

#[test]
fn wrapped_wide_lines_reflow_on_resize_like_tmux() {
    if !need("reflow", &["tmux"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let long: String = (0..6).map(|i| format!("漢字{i}😀ab")).collect::<Vec<_>>().join("-");
    let text = format!("short line\n{long}{long}\nx{}\nend\n", "y".repeat(70));
    std::fs::write(dir.join("w.txt"), text).unwrap();
    let mut p =
        Pair::start("reflow", &dir, &["sh", "-c", "cat w.txt; exec sleep 3600"], Size::new(40, 12));
    p.compare_text("wrapped lines at 40 columns", has("end"));
    // An odd width, so wide characters land on the wrap boundary.
    p.resize(Size::new(27, 12));
    p.compare_text("reflowed to 27 columns", |l: &[String]| l.iter().any(|x| x == "end"));
    p.resize(Size::new(61, 12));
    p.compare_text("reflowed to 61 columns", |l: &[String]| l.iter().any(|x| x == "end"));
}

#[test]
fn scroll_regions_insert_delete_and_alt_screen_match_tmux() {
    if !need("scroll_regions", &["tmux", "less"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    // Header and footer outside a scroll region, twenty lines scrolled through it, then lines
    // inserted and deleted, characters erased and inserted, and an alternate-screen program
    // (less) run and quit, which must give back the primary screen as it was.
    let script = r#"printf '\033[2J\033[HHEADER\033[12;1HFOOTER\033[2;11r\033[11;1H'
i=1; while [ $i -le 20 ]; do printf '\033[3%dmscrolled %d\033[0m\n' $((i % 8)) $i; i=$((i+1)); done
printf '\033[r\033[4;1H\033[2L\033[4;1Hinserted\033[7;1H\033[1M\033[8;4H\033[3X\033[9;2H\033[2@'
seq 100 | less
printf '\033[13;1Hafter less\n'
exec sleep 3600"#;
    std::fs::write(dir.join("s.sh"), script).unwrap();
    let mut p = Pair::start("regions", &dir, &["sh", "s.sh"], Size::new(40, 16));
    p.compare_text("less over the scrolled region", |l: &[String]| {
        l.iter().any(|x| x == "15") && l.last().is_some_and(|x| x.starts_with(':'))
    });
    p.keys("q");
    let screen = p.compare_text("after quitting less", has("after less"));
    assert_eq!(screen[0], "HEADER", "{screen:?}");
    assert_eq!(screen[3], "inserted", "{screen:?}");
    p.compare_style("after quitting less");
}

#[test]
fn vttest_frame_matches_tmux_and_autowrap_matches_vttest() {
    if !need("vttest", &["tmux", "vttest"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    // vttest's own geometry; its first test draws a frame of E's and +'s with cursor movements,
    // then screens of autowrap and scroll checks, each ending in "Push <RETURN>".
    let mut p = Pair::start("vttest", &dir, &["vttest", "24x80.80"], Size::new(80, 24));
    p.compare_text("vttest menu", has("Enter choice number"));
    p.type_str("1\r");
    p.compare_text("vttest frame", has("Push <RETURN>"));
    // The next screen is the same frame in 132-column mode, which neither terminal here switches
    // to, so it looks unchanged; the one after tests autowrap mixed with control characters.
    // vttest discards typed-ahead input when it starts a screen, so a second Return sent at once
    // may be lost: each side gets Returns one at a time until it shows the autowrap screen.
    let autowrap = |l: Vec<String>| l.iter().any(|x| x.contains("autowrap"));
    p.keys("\r");
    let mut tries = 0;
    while !(autowrap(p.corral_text()) && autowrap(p.tmux_text())) {
        tries += 1;
        assert!(tries < 10, "vttest never reached its autowrap screen");
        if !autowrap(p.corral_text()) {
            p.tty.type_str("\r");
        }
        if !autowrap(p.tmux_text()) {
            p.tmux(&["send-keys", "-t", "0", "-H", "0x0d"]);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !(autowrap(p.corral_text()) && autowrap(p.tmux_text())) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Here tmux is the one that is wrong: vttest says "the left/right margins should have
    // letters in order", one upper/lower pair per row, and tmux (3.3a) breaks every fourth
    // pair over two rows (N/n, R/r, V/v, Z/z), so its screen scrolls further. Those are the
    // rows vttest draws as "tab to right margin": the capital at the last column, BS BS HT HT,
    // then the small letter, which must land on the last column of the same row (HT stops at
    // the right margin) where tmux wraps it to the next row. Our screen is
    // checked against vttest's own statement of the right answer instead.
    p.settle("vttest autowrap screen", has("autowrap"));
    let screen = p.corral_text();
    let pairs: Vec<String> =
        ('I'..='Z').map(|c| format!("{c}{}{}", " ".repeat(78), c.to_ascii_lowercase())).collect();
    assert_eq!(screen[2..20], pairs[..], "autowrap letters in order:\n{}", screen.join("\n"));
    let theirs = p.tmux_text();
    if theirs != screen {
        eprintln!("vttest autowrap: tmux differs (known tmux bug):\n{}", theirs.join("\n"));
    }
}

#[test]
fn vttest_frame_resized_matches_tmux_and_grows_back_like_xterm() {
    if !need("vttest", &["tmux", "vttest"]) {
        return;
    }
    let (_t, dir) = fixture_dir();
    let mut p = Pair::start("vttest-resize", &dir, &["vttest", "24x80.80"], Size::new(80, 24));
    let menu = p.compare_text("vttest menu", has("Enter choice number"));
    p.type_str("1\r");
    let frame = p.compare_text("vttest frame", has("Push <RETURN>"));
    // vttest does not redraw on SIGWINCH: what is compared is what each terminal does with the
    // frame it holds. Shorter: the 8 rows below the cursor (it waits on the "Push <RETURN>"
    // row, 13) go, and narrower: each 80-column row wraps onto two, the ones above the cursor
    // scrolling into the history.
    p.resize(Size::new(60, 16));
    let cut = p.compare_text("vttest frame cut to 60x16", |l: &[String]| {
        has("Push <")(l) && l.iter().all(|x| x.chars().count() <= 60)
    });
    assert_eq!(cut[14], frame[15][..60], "the frame's last row kept: {cut:?}");
    // Taller and wider again: the wrapped rows join, and the rows the narrowing pushed into
    // the history come back, so the frame's first 16 rows are whole again, in order (the 8
    // cut rows stay gone). Here the two differ on what else comes back: tmux (3.3a) pulls back
    // only the lines its own resizes pushed out (`hscrolled`) and leaves the rest of the
    // screen blank, where corral, like xterm (ScreenResize pulls saved lines back whatever put
    // them there), keeps the bottom where it was and fills the top from the history, which
    // holds vttest's menu: the clear before the frame scrolled it there (as tmux's
    // scroll-on-clear does too). xterm is the reference, so corral is checked against that,
    // and tmux for the frame rows both bring back.
    p.resize(Size::new(100, 30));
    let whole = &frame[..16];
    settle("corral: vttest frame grown to 100x30", || p.corral_text(), &|l: &[String]| {
        l[14..] == *whole
    });
    settle("tmux: vttest frame grown to 100x30", || p.tmux_text(), &|l: &[String]| {
        l[..16] == *whole && l[16..].iter().all(String::is_empty)
    });
    let ours = p.corral_text();
    let prompt = menu.iter().position(|l| l.contains("Enter choice number")).unwrap();
    assert!(ours[13].starts_with(&menu[prompt]), "the menu above the frame: {ours:?}");
    assert_eq!(ours[..13], menu[prompt - 13..prompt], "the menu above the frame");
}

/// Masks what differs between two runs of an agent CLI for reasons that are not the terminal's:
/// clock times ("5:04 AM", "17:04:33"), durations ("12s", "1.3s", "250ms", "1m 3s"), token
/// counts, UUIDs (session ids), the spinner glyphs Claude Code cycles through at the start of its
/// status line and the random verb after them ("Churned for 3s"). Each becomes a fixed placeholder of its own, so the rest of the row (and
/// where the placeholder sits) must still match.
fn mask_volatile(line: &str) -> String {
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
            (r"\b\d{1,2}:\d{2}(:\d{2})?\s?([AaPp][Mm])?\b", "<time>"),
            (r"\b(\d+h\s?)?(\d+m\s?)?\d+(\.\d+)?(ms|s)\b", "<dur>"),
            (r"\b\d+(\.\d+)?k? tokens\b", "<tokens>"),
            (r"^(\s*)[·✢✳✶✻✽*⏺●◐◓◑◒⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏•◦]", "$1<spin>"),
            // The verb after the spinner is picked at random ("Churned for 3s", "Crunching…").
            (r"^(\s*<spin> )\p{L}+( for |…)", "$1<verb>$2"),
            // OpenCode's input placeholder suggests a task picked at random.
            (r#"(Ask anything… )"[^"]*""#, "$1\"<example>\""),
        ]
        .into_iter()
        .map(|(re, to)| (regex::Regex::new(re).unwrap(), to))
        .collect()
    });
    let mut s = line.to_string();
    for (re, to) in rules {
        s = re.replace_all(&s, *to).into_owned();
    }
    s
}

#[test]
fn mask_volatile_masks_clocks_durations_spinners_and_ids() {
    assert_eq!(mask_volatile("✻ Churned for 12s · 5:04 AM"), "<spin> <verb> for <dur> · <time>");
    assert_eq!(mask_volatile("  ✢ Crunching… (1.3s · 250ms)"), "  <spin> <verb>… (<dur> · <dur>)");
    assert_eq!(mask_volatile("session 0b5c9a4e-1234-4abc-8def-0123456789ab"), "session <uuid>");
    assert_eq!(mask_volatile("> say hi"), "> say hi");
    assert_eq!(
        mask_volatile(r#"  ┃  Ask anything… "Fix broken tests""#),
        r#"  ┃  Ask anything… "<example>""#
    );
}

/// `claude` run the same way under corral and tmux: a HOME with the same content (onboarding
/// done, an approved API key, `dir` trusted if `trusted`, else absent from its projects so Claude
/// Code starts on its folder-trust dialog), the same environment, and the mock at `port` as its
/// API. The variables tmux sets in its panes (TMUX, TERM_PROGRAM…) are removed, so Claude Code
/// cannot tell the two terminals apart by them and draws the same thing.
fn claude_argv(claude: &Path, home: &Path, dir: &Path, trusted: bool, port: u16) -> Vec<String> {
    let key = "sk-ant-corral-test-0123456789abcdefghij";
    let mut claude_json = serde_json::json!({
        "hasCompletedOnboarding": true,
        "customApiKeyResponses": {"approved": [&key[key.len() - 20..]], "rejected": []},
    });
    if trusted {
        claude_json["projects"] =
            serde_json::json!({dir.display().to_string(): {"hasTrustDialogAccepted": true}});
    }
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join(".claude.json"), claude_json.to_string()).unwrap();
    without_tmux_vars([
        format!("HOME={}", home.display()),
        format!("ANTHROPIC_BASE_URL=http://127.0.0.1:{port}"),
        format!("ANTHROPIC_API_KEY={key}"),
        "DISABLE_AUTOUPDATER=1".to_string(),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1".to_string(),
        claude.display().to_string(),
        "--permission-mode".to_string(),
        "default".to_string(),
    ])
}

/// `env` with the variables tmux sets in its panes (TMUX, TERM_PROGRAM…) removed, then `rest`:
/// an agent CLI run this way cannot tell the two terminals apart by its environment. The
/// variables that switch colour off or on whatever the terminal (CI, NO_COLOR, FORCE_COLOR: Ink's
/// colour detection draws without colour when CI is set, as it is in `.ci/run`) are removed too,
/// so the colour comparison compares colours wherever the tests run.
fn without_tmux_vars(rest: impl IntoIterator<Item = String>) -> Vec<String> {
    let unset = [
        "TMUX",
        "TMUX_PANE",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "COLORTERM",
        "CI",
        "NO_COLOR",
        "FORCE_COLOR",
    ];
    std::iter::once("env".to_string())
        .chain(unset.iter().flat_map(|v| ["-u".to_string(), v.to_string()]))
        .chain(rest)
        .collect()
}

/// The real Claude Code under corral and under tmux (agent and tmux socket named after `case`,
/// which must differ between tests) at 100x30, in a project folder it trusts if `trusted`
/// (see [`claude_argv`]), both talking to one mock of the
/// API that answers each turn with `script(project dir)`; None (after saying SKIPPED) when the
/// CLI or tmux is missing. The guards keep the temporary directory and the mock alive.
fn claude_pair(
    case: &str,
    trusted: bool,
    script: impl Fn(&Path) -> serde_json::Value,
) -> Option<(Pair, tempfile::TempDir, common::live::Mock)> {
    let Some(claude) = common::live::find_agent_cli("claude") else {
        eprintln!(
            "SKIPPED claude_vs_tmux: no `claude` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return None;
    };
    if !need("claude_vs_tmux", &["tmux", "python3"]) {
        return None;
    }
    let (t, root) = fixture_dir();
    let dir = root.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::live::free_port();
    std::fs::write(root.join("script.json"), script(&dir).to_string()).unwrap();
    let mock = common::live::Mock::start(
        "mock_anthropic.py",
        port,
        &root.join("script.json"),
        &root.join("mock.jsonl"),
    );
    // Claude Code writes to its HOME as it runs (startup counts, which tips it has shown), and
    // the welcome screen depends on them: each side starts from its own copy of the same HOME.
    let ours = claude_argv(&claude, &root.join("home-corral"), &dir, trusted, port);
    let theirs = claude_argv(&claude, &root.join("home-tmux"), &dir, trusted, port);
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
    let p = Pair::start_each(case, &dir, &ours, &theirs, Size::new(100, 30));
    Some((p, t, mock))
}

/// Claude Code's prompt box is up (its footer says how to get help).
fn claude_prompt_box(l: &[String]) -> bool {
    l.iter().any(|x| x.contains("? for shortcuts"))
}

#[test]
fn claude_code_welcome_and_reply_match_tmux() {
    let reply = "Hello from the mock: this is the reply both terminals must draw alike.";
    let Some((mut p, _t, _mock)) =
        claude_pair("claude-reply", true, |_| serde_json::json!([{ "text": reply }]))
    else {
        return;
    };
    p.compare_masked("the welcome screen", claude_prompt_box, mask_volatile);
    p.compare_style_stable("the welcome screen", mask_volatile, 50);
    p.type_str("say hello");
    p.settle("the prompt typed", has("say hello"));
    p.keys("\r");
    let replied = |l: &[String]| l.iter().any(|x| x.contains(reply)) && claude_prompt_box(l);
    p.compare_masked("the reply, back at the prompt", replied, mask_volatile);
    p.compare_style_stable("the reply, back at the prompt", mask_volatile, 50);
    // Narrower mid-session: Claude Code redraws the conversation for the new width, and the
    // reply (longer than 70 columns) wraps, its last word on a row of its own.
    p.resize(Size::new(70, 24));
    p.compare_masked(
        "the reply redrawn at 70x24",
        |l: &[String]| {
            l.iter().any(|x| x.contains("Hello from the mock"))
                && l.iter().any(|x| x.trim() == "alike.")
                && claude_prompt_box(l)
                && l.iter().all(|x| x.chars().count() <= 70)
        },
        mask_volatile,
    );
    p.compare_style_stable("the reply redrawn at 70x24", mask_volatile, 50);
}

#[test]
fn claude_code_permission_prompt_matches_tmux() {
    let Some((mut p, _t, _mock)) = claude_pair("claude-permission", true, |dir| {
        serde_json::json!([{
            "text": "I will create the file.",
            "tool": "Write",
            "input": {"file_path": dir.join("hello.txt"), "content": "hello from the mock\n"}
        }])
    }) else {
        return;
    };
    p.settle("the welcome screen", claude_prompt_box);
    p.type_str("create hello.txt");
    p.settle("the prompt typed", has("create hello.txt"));
    p.keys("\r");
    p.compare_masked(
        "the permission prompt for the Write",
        has("Do you want to create hello.txt?"),
        mask_volatile,
    );
    p.compare_style_stable("the permission prompt for the Write", mask_volatile, 50);
}

#[test]
fn claude_code_trust_dialog_resize_and_accept_match_tmux() {
    let Some((mut p, _t, _mock)) =
        claude_pair("claude-trust", false, |_| serde_json::json!([{ "text": "ok" }]))
    else {
        return;
    };
    // The project folder is not in the HOME's projects: Claude Code asks before anything else.
    let dialog = |l: &[String]| has("Yes, I trust this folder")(l) && has("Enter to confirm")(l);
    p.compare_masked("the trust dialog", dialog, mask_volatile);
    p.compare_style_stable("the trust dialog", mask_volatile, 50);
    // Narrower and shorter with the dialog up: Claude Code lays it out again for 80 columns
    // (its paragraph wraps differently) on both sides.
    p.resize(Size::new(80, 24));
    p.compare_masked(
        "the trust dialog at 80x24",
        |l: &[String]| dialog(l) && l.iter().all(|x| x.chars().count() <= 80),
        mask_volatile,
    );
    p.compare_style_stable("the trust dialog at 80x24", mask_volatile, 50);
    // The first option is "No, exit": Down selects "Yes, I trust this folder", Enter accepts,
    // and Claude Code goes on to its prompt.
    p.keys("\x1b[B");
    p.compare_masked(
        "the trust dialog with Yes selected",
        has("❯ Yes, I trust this folder"),
        mask_volatile,
    );
    p.keys("\r");
    p.compare_masked(
        "the prompt after trusting the folder",
        |l: &[String]| claude_prompt_box(l) && !has("Enter to confirm")(l),
        mask_volatile,
    );
    p.compare_style_stable("the prompt after trusting the folder", mask_volatile, 50);
}

/// The real Codex under corral and under tmux (agent and tmux socket named after `case`) at
/// 100x30, in a fresh git repository nobody has trusted yet (so Codex asks), offline as in
/// tests/codex.rs: a provider pointing at a mock of the Responses API that follows `script`.
/// With no `script`, Codex gets no provider, no API key and no mock at all (an empty
/// $HOME/.codex), so it starts on its sign-in screen. None (after saying SKIPPED) when the CLI
/// or a tool is missing. The guards keep the temporary directory and the mocks alive.
fn codex_pair(
    case: &str,
    script: Option<serde_json::Value>,
) -> Option<(Pair, tempfile::TempDir, Vec<common::live::Mock>)> {
    let Some(codex) = common::live::find_agent_cli("codex") else {
        eprintln!(
            "SKIPPED codex_vs_tmux: no `codex` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return None;
    };
    if !need("codex_vs_tmux", &["tmux", "python3", "git"]) {
        return None;
    }
    let (t, root) = fixture_dir();
    let dir = root.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    let git = Command::new("git").args(["init", "-q"]).current_dir(&dir).output().unwrap();
    assert!(git.status.success(), "git init: {}", String::from_utf8_lossy(&git.stderr));
    if let Some(script) = &script {
        std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    }
    // Each side has its own HOME and its own mock. Codex writes the answer to the trust dialog
    // into $HOME/.codex/config.toml, so with one HOME the side that starts second may find the
    // folder trusted already and skip the dialog; and the mock hands out its script in order,
    // so with one mock each side would get a different reply.
    let codex = codex.display().to_string();
    let mut mocks = Vec::new();
    let mut side = |name: &str| {
        let home = root.join(format!("home-{name}"));
        std::fs::create_dir_all(home.join(".codex")).unwrap();
        // Keys from the environment running the tests must not sign Codex in on its own.
        let mut env = ["OPENAI_API_KEY", "CODEX_API_KEY"]
            .iter()
            .flat_map(|v| ["-u".to_string(), v.to_string()])
            .collect::<Vec<_>>();
        env.push(format!("HOME={}", home.display()));
        if script.is_some() {
            let port = common::live::free_port();
            mocks.push(common::live::Mock::start(
                "mock_openai.py",
                port,
                &root.join("script.json"),
                &root.join(format!("mock-{name}.jsonl")),
            ));
            std::fs::write(
                home.join(".codex/config.toml"),
                format!(
                    "model = \"m\"\nmodel_provider = \"mock\"\napproval_policy = \"on-request\"\nsandbox_mode = \"read-only\"\n[model_providers.mock]\nname = \"mock\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nenv_key = \"MOCK_KEY\"\n"
                ),
            )
            .unwrap();
            env.push("MOCK_KEY=x".to_string());
        }
        // As for Claude Code: tmux's pane variables removed, so Codex sees the same environment.
        without_tmux_vars(env.into_iter().chain([codex.clone(), "--no-daemon".to_string()]))
    };
    let ours = side("corral");
    let theirs = side("tmux");
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
    let p = Pair::start_each(case, &dir, &ours, &theirs, Size::new(100, 30));
    Some((p, t, mocks))
}

#[test]
fn codex_login_screen_and_resize_match_tmux() {
    let Some((mut p, _t, _mocks)) = codex_pair("codex-login", None) else {
        return;
    };
    // Not signed in and no provider configured: Codex shows its sign-in choices before the
    // trust dialog, and draws them without reaching the network (this machine has none).
    let login = |l: &[String]| has("Sign in with ChatGPT")(l) && has("Press enter to continue")(l);
    p.compare_masked("the sign-in screen", login, mask_volatile);
    // The selected option is the only coloured text (cyan): some 25 cells.
    p.compare_style_stable("the sign-in screen", mask_volatile, 20);
    // Narrower and shorter with the sign-in screen up: Codex redraws it for 60x20, its long
    // option descriptions wrapping.
    p.resize(Size::new(60, 20));
    p.compare_masked(
        "the sign-in screen at 60x20",
        |l: &[String]| login(l) && l.iter().all(|x| x.chars().count() <= 60),
        mask_volatile,
    );
    p.compare_style_stable("the sign-in screen at 60x20", mask_volatile, 20);
    // The selection moves down on both sides, and its colour with it.
    p.keys("\x1b[B");
    p.compare_masked(
        "the second option selected",
        has("> 2. Sign in with Device Code"),
        mask_volatile,
    );
    p.compare_style_stable("the second option selected", mask_volatile, 20);
}

#[test]
fn codex_trust_dialog_matches_tmux() {
    let Some((p, _t, _mocks)) =
        codex_pair("codex-trust", Some(serde_json::json!([{"text": "ok"}])))
    else {
        return;
    };
    p.compare_masked("the trust dialog", has("Trust this folder?"), mask_volatile);
    p.compare_style_stable("the trust dialog", mask_volatile, 50);
}

#[test]
fn codex_composer_reply_resize_and_approval_match_tmux() {
    let reply = "Hello from the mock: this is the reply both terminals must draw alike in Codex.";
    let script = serde_json::json!([
        {"text": reply},
        {"command": "echo hello from codex > hello.txt", "justification": "Create hello.txt"},
        {"text": "Done: hello.txt is there."}
    ]);
    let Some((mut p, _t, _mocks)) = codex_pair("codex-turns", Some(script)) else {
        return;
    };
    p.settle("the trust dialog", has("Trust this folder?"));
    p.keys("\r");
    p.compare_masked("the composer", has("Ask Codex to do anything"), mask_volatile);
    p.compare_style_stable("the composer", mask_volatile, 50);
    // Codex takes a fast burst of input for a paste, in which Enter is a newline: the prompt is
    // typed, its echo awaited on both sides, and only then Enter sent on its own.
    p.type_str("say hello");
    p.settle("the prompt typed", has("› say hello"));
    p.keys("\r");
    let replied = |l: &[String]| l.iter().any(|x| x.contains(reply)) && has("Ask Codex")(l);
    p.compare_masked("the reply, back at the composer", replied, mask_volatile);
    p.compare_style_stable("the reply, back at the composer", mask_volatile, 50);
    // Narrower mid-session: Codex redraws for the new width, the reply (longer than 70
    // columns) wrapping.
    p.resize(Size::new(70, 24));
    p.compare_masked(
        "the reply redrawn at 70x24",
        |l: &[String]| {
            l.iter().any(|x| x.contains("Hello from the mock"))
                && has("Ask Codex")(l)
                && l.iter().all(|x| x.chars().count() <= 70)
        },
        mask_volatile,
    );
    p.compare_style_stable("the reply redrawn at 70x24", mask_volatile, 50);
    // The second turn is a command that needs approval (approval_policy = "on-request").
    p.type_str("create hello.txt");
    p.settle("the second prompt typed", has("› create hello.txt"));
    p.keys("\r");
    p.compare_masked(
        "the approval prompt",
        has("Would you like to run the following command?"),
        mask_volatile,
    );
    p.compare_style_stable("the approval prompt", mask_volatile, 50);
    // Approved (both sides write the same file in the shared project directory): the command's
    // result and the reply that follows it.
    p.keys("\r");
    p.compare_masked(
        "the approved command and the last reply",
        |l: &[String]| has("Done: hello.txt is there.")(l) && has("Ask Codex")(l),
        mask_volatile,
    );
    p.compare_style_stable("the approved command and the last reply", mask_volatile, 50);
}

/// The real Gemini CLI under corral and under tmux (agent and tmux socket named after `case`) at
/// 100x30, offline as in tests/gemini.rs: an API key, the mock of the Gemini API following
/// `script`, and settings that skip its first-run dialogs. Each side has its own HOME (Gemini
/// CLI counts its startups and tips there) and its own mock (the mock hands out its script in
/// order). None (after saying SKIPPED) when the CLI or a tool is missing.
fn gemini_pair(
    case: &str,
    script: serde_json::Value,
) -> Option<(Pair, tempfile::TempDir, Vec<common::live::Mock>)> {
    let Some(gemini) = common::live::find_agent_cli("gemini") else {
        eprintln!(
            "SKIPPED gemini_vs_tmux: no `gemini` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return None;
    };
    if !need("gemini_vs_tmux", &["tmux", "python3"]) {
        return None;
    }
    let (t, root) = fixture_dir();
    let dir = root.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let gemini = gemini.display().to_string();
    let mut mocks = Vec::new();
    let mut side = |name: &str| {
        let home = root.join(format!("home-{name}"));
        std::fs::create_dir_all(home.join(".gemini")).unwrap();
        let settings = serde_json::json!({
            "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": false}},
            "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
            "privacy": {"usageStatisticsEnabled": false},
            "telemetry": {"enabled": false}
        });
        std::fs::write(home.join(".gemini/settings.json"), settings.to_string()).unwrap();
        let port = common::live::free_port();
        mocks.push(common::live::Mock::start(
            "mock_gemini.py",
            port,
            &root.join("script.json"),
            &root.join(format!("mock-{name}.jsonl")),
        ));
        // As for Claude Code: tmux's pane variables removed, so Gemini CLI sees the same
        // environment; keys from the environment running the tests must not reach it.
        without_tmux_vars(
            ["GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI"]
                .iter()
                .flat_map(|v| ["-u".to_string(), v.to_string()])
                .chain([
                    format!("HOME={}", home.display()),
                    "GEMINI_API_KEY=corral-test-key".to_string(),
                    format!("GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:{port}"),
                    gemini.clone(),
                ]),
        )
    };
    let ours = side("corral");
    let theirs = side("tmux");
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
    let p = Pair::start_each(case, &dir, &ours, &theirs, Size::new(100, 30));
    Some((p, t, mocks))
}

/// Gemini CLI's input box is up and empty (its placeholder shows).
fn gemini_input_box(l: &[String]) -> bool {
    l.iter().any(|x| x.contains("Type your message"))
}

#[test]
fn gemini_cli_welcome_reply_resize_and_approval_match_tmux() {
    let reply = "Hello from the mock: this is the reply both terminals must draw alike in Gemini.";
    let script = serde_json::json!([
        {"text": reply},
        {
            "text": "I will create the file.",
            "call": "run_shell_command",
            "args": {"command": "echo hello from gemini > hello.txt", "description": "Create hello.txt"}
        },
        {"text": "Done: hello.txt is there."}
    ]);
    let Some((mut p, _t, _mocks)) = gemini_pair("gemini-turns", script) else {
        return;
    };
    p.compare_masked(
        "the welcome screen",
        |l: &[String]| has("Tips for getting started")(l) && gemini_input_box(l),
        mask_volatile,
    );
    p.compare_style_stable("the welcome screen", mask_volatile, 50);
    // Gemini CLI, like Codex, takes a fast burst of input for a paste, in which Enter is a
    // newline: the prompt's echo is awaited on both sides before Enter is sent on its own.
    p.type_str("say hello");
    p.settle("the prompt typed", has("> say hello"));
    p.keys("\r");
    let replied = |l: &[String]| has("Hello from the mock")(l) && gemini_input_box(l);
    p.compare_masked("the reply, back at the input box", replied, mask_volatile);
    p.compare_style_stable("the reply, back at the input box", mask_volatile, 50);
    // Narrower mid-session: Gemini CLI redraws only its input box and footer; the reply above
    // (longer than 70 columns) is the terminal's to rewrap, mid-word, on both sides alike.
    p.resize(Size::new(70, 24));
    p.compare_masked(
        "the reply redrawn at 70x24",
        |l: &[String]| replied(l) && l.iter().all(|x| x.chars().count() <= 70),
        mask_volatile,
    );
    p.compare_style_stable("the reply redrawn at 70x24", mask_volatile, 50);
    // The second turn is a shell command, which Gemini CLI asks the user to approve.
    p.type_str("create hello.txt");
    p.settle("the second prompt typed", has("> create hello.txt"));
    p.keys("\r");
    p.compare_masked(
        "the approval prompt",
        |l: &[String]| has("Allow execution of")(l) && has("1. Allow once")(l),
        mask_volatile,
    );
    p.compare_style_stable("the approval prompt", mask_volatile, 50);
    // Approved (both sides write the same file in the shared project directory): the command's
    // result and the reply that follows it.
    p.keys("\r");
    p.compare_masked(
        "the approved command and the last reply",
        |l: &[String]| has("Done: hello.txt is there.")(l) && gemini_input_box(l),
        mask_volatile,
    );
    p.compare_style_stable("the approved command and the last reply", mask_volatile, 50);
}

/// An agent CLI that speaks OpenAI chat completions (OpenCode, Aider) under corral and under
/// tmux (agent and tmux socket named after `case`) at 100x30, in a fresh git repository, each
/// side with its own HOME and its own mock (tests/fixtures/mock_chat.py, which hands out
/// `script` in order). `side(home, port)` is the environment and command line for one side,
/// after it has written what it needs into `home`. None (after saying SKIPPED) when the CLI or a
/// tool is missing; the guards keep the temporary directory and the mocks alive.
fn chat_pair(
    case: &str,
    cli: &str,
    script: serde_json::Value,
    side: impl Fn(&Path, &Path, u16) -> Vec<String>,
) -> Option<(Pair, tempfile::TempDir, Vec<common::live::Mock>)> {
    let Some(path) = common::live::find_agent_cli(cli) else {
        eprintln!(
            "SKIPPED {case}: no `{cli}` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci)"
        );
        return None;
    };
    if !need(case, &["tmux", "python3", "git"]) {
        return None;
    }
    let (t, root) = fixture_dir();
    let dir = root.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    init_repo(&dir);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mut mocks = Vec::new();
    let mut argv = |name: &str| {
        let home = root.join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        let port = common::live::free_port();
        mocks.push(common::live::Mock::start(
            "mock_chat.py",
            port,
            &root.join("script.json"),
            &root.join(format!("mock-{name}.jsonl")),
        ));
        // Everything each side keeps (config, sessions, caches) under its own HOME, wherever
        // the XDG variables of the environment running the tests point.
        let mut env: Vec<String> = vec![
            format!("HOME={}", home.display()),
            format!("XDG_CONFIG_HOME={}", home.join(".config").display()),
            format!("XDG_DATA_HOME={}", home.join(".local/share").display()),
            format!("XDG_STATE_HOME={}", home.join(".local/state").display()),
            format!("XDG_CACHE_HOME={}", home.join(".cache").display()),
        ];
        env.extend(side(&path, &home, port));
        without_tmux_vars(env)
    };
    let ours = argv("corral");
    let theirs = argv("tmux");
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
    let p = Pair::start_each(case, &dir, &ours, &theirs, Size::new(100, 30));
    Some((p, t, mocks))
}

/// OpenCode offline as in tests/opencode.rs.
fn opencode_side(cli: &Path, home: &Path, port: u16) -> Vec<String> {
    std::fs::create_dir_all(home.join(".config/opencode")).unwrap();
    std::fs::write(
        home.join(".config/opencode/opencode.json"),
        common::live::opencode_config(port),
    )
    .unwrap();
    vec![
        "OPENCODE_DISABLE_MODELS_FETCH=1".into(),
        "OPENCODE_DISABLE_AUTOUPDATE=1".into(),
        cli.display().to_string(),
    ]
}

#[test]
fn opencode_welcome_reply_resize_and_permission_match_tmux() {
    let reply =
        "Hello from the mock: this is the reply both terminals must draw alike in OpenCode.";
    let script = serde_json::json!([
        {"text": reply},
        {"text": "I will create the file.", "tool": "bash",
         "args": {"command": "echo hello > hello.txt", "description": "Create hello.txt"}}
    ]);
    let Some((mut p, _t, _mocks)) = chat_pair("opencode-turns", "opencode", script, opencode_side)
    else {
        return;
    };
    let input = has("ctrl+p commands");
    p.compare_masked("the welcome screen", &input, mask_volatile);
    p.compare_style_stable("the welcome screen", mask_volatile, 50);
    p.type_str("say hello");
    p.settle("the prompt typed", has("say hello"));
    p.keys("\r");
    let replied = |l: &[String]| {
        l.iter().any(|x| x.contains("Hello from the mock")) && input(l) && !has("esc interrupt")(l)
    };
    p.compare_masked("the reply, back at the input", replied, mask_volatile);
    p.compare_style_stable("the reply, back at the input", mask_volatile, 50);
    // Narrower mid-session: OpenCode lays the session out again for 70 columns.
    p.resize(Size::new(70, 24));
    p.compare_masked(
        "the reply redrawn at 70x24",
        |l: &[String]| replied(l) && l.iter().all(|x| x.chars().count() <= 70),
        mask_volatile,
    );
    p.compare_style_stable("the reply redrawn at 70x24", mask_volatile, 50);
    // The second turn runs a shell command, which the config says to ask about.
    p.type_str("create hello.txt");
    p.settle("the second prompt typed", has("create hello.txt"));
    p.keys("\r");
    let asked = |l: &[String]| has("Permission required")(l) && has("Allow once")(l);
    p.compare_masked("the permission prompt", asked, mask_volatile);
    p.compare_style_stable("the permission prompt", mask_volatile, 50);
}

/// Aider offline as in tests/aider.rs, in a repository of its own: two Aiders starting in one
/// repository at once fail on the lock of its .git/config (each writes it at start).
fn aider_side(cli: &Path, home: &Path, port: u16) -> Vec<String> {
    common::live::aider_home(home);
    let dir = home.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    init_repo(&dir);
    ["sh", "-c", "cd \"$0\" && exec \"$@\""]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.display().to_string(), cli.display().to_string()])
        .chain(common::live::aider_args(port))
        .collect()
}

#[test]
fn aider_welcome_reply_and_question_match_tmux() {
    let reply = "Hello from the mock: this is the reply both terminals must draw alike in Aider.";
    let script = serde_json::json!([
        {"text": reply},
        {"text": "I will create the file.\n\nhello.txt\n```\nhello from aider\n```\n"}
    ]);
    let Some((mut p, _t, _mocks)) = chat_pair("aider-turns", "aider", script, aider_side) else {
        return;
    };
    let prompt =
        |l: &[String]| l.iter().rev().find(|x| !x.trim().is_empty()).is_some_and(|x| x == ">");
    p.compare_masked("the welcome and the prompt", prompt, mask_volatile);
    p.compare_style_stable("the welcome and the prompt", mask_volatile, 20);
    p.type_str("say hello");
    p.settle("the prompt typed", has("> say hello"));
    p.keys("\r");
    let replied = |l: &[String]| has("Hello from the mock")(l) && prompt(l);
    p.compare_masked("the reply, back at the prompt", replied, mask_volatile);
    p.compare_style_stable("the reply, back at the prompt", mask_volatile, 20);
    // The second reply is a new file in Aider's "whole" edit format: Aider asks first.
    p.type_str("create hello.txt");
    p.settle("the second prompt typed", has("> create hello.txt"));
    p.keys("\r");
    p.compare_masked("Aider's question", has("Create new file? (Y)es/(N)o [Yes]:"), mask_volatile);
    p.compare_style_stable("Aider's question", mask_volatile, 20);
}

#[test]
fn aider_reply_resized_matches_tmux() {
    let reply = "Hello from the mock: this is the reply both terminals must draw alike in Aider.";
    // Aider pads each line it prints to the terminal's width with blanks; a short line shows
    // whether a terminal rewraps that padding (tmux does: a blank row after the line).
    let text = format!("Short.\n\n{reply}");
    // Streamed, the reply is drawn by a live region that a spinner thread races with: on a
    // loaded machine each side's Aider may write the reply a different number of times (seen
    // in both Aiders' own output, which each terminal then drew alike). Unstreamed, Aider
    // prints it once, the same on both sides.
    let unstreamed = |cli: &Path, home: &Path, port: u16| {
        let mut argv = aider_side(cli, home, port);
        argv.push("--no-stream".into());
        argv
    };
    let Some((mut p, _t, _mocks)) =
        chat_pair("aider-resize", "aider", serde_json::json!([{ "text": text }]), unstreamed)
    else {
        return;
    };
    let prompt =
        |l: &[String]| l.iter().rev().find(|x| !x.trim().is_empty()).is_some_and(|x| x == ">");
    p.settle("the prompt", prompt);
    p.type_str("say hello");
    p.settle("the prompt typed", has("> say hello"));
    p.keys("\r");
    let replied = |l: &[String]| has("Hello from the mock")(l) && prompt(l);
    p.compare_masked("the reply, back at the prompt", replied, mask_volatile);
    // Narrower: what Aider printed wraps again (the terminal reflows it) and Aider (its
    // prompt_toolkit input) redraws its prompt where the cursor landed. tmux rewraps every row
    // as wide as the program wrote it: the padding, and the bottom row prompt_toolkit drew full
    // width and then erased from its second column (src/term/alac.rs, `written_pen` and
    // `keep_width`); each such row takes one row more and pushes the screen up.
    p.resize(Size::new(70, 30));
    p.compare_masked(
        "the reply at 70x30",
        |l: &[String]| replied(l) && l.iter().all(|x| x.chars().count() <= 70),
        mask_volatile,
    );
    p.compare_style_stable("the reply at 70x30", mask_volatile, 20);
}
