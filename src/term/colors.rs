//! The default colours of a terminal: what a program learns when it asks (OSC 10/11), and what
//! corral learns from a client's own terminal to answer its agents with. Programs pick a light
//! or a dark palette from the background, so a pane on a light terminal must answer light.
//!
//! Pure: parsing a terminal's answer and deciding light or dark. Asking a real terminal is the
//! client's business (`commands::colors`).

use serde::{Deserialize, Serialize};

/// One colour, 8 bits a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rgb8 {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Rgb8 {
    pub const fn new(r: u8, g: u8, b: u8) -> Rgb8 {
        Rgb8 { r, g, b }
    }

    /// Relative luminance on a 0..=255 scale (the Rec. 709 weights, without gamma: enough to
    /// tell a light background from a dark one).
    fn luma(self) -> u32 {
        (2126 * u32::from(self.r) + 7152 * u32::from(self.g) + 722 * u32::from(self.b)) / 10_000
    }
}

/// A terminal's default foreground and background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermColors {
    pub fg: Rgb8,
    pub bg: Rgb8,
}

impl TermColors {
    /// What corral claims until a client has said what its terminal shows: light grey on near
    /// black, the look most terminals ship with.
    pub const FALLBACK: TermColors =
        TermColors { fg: Rgb8::new(0xd0, 0xd0, 0xd0), bg: Rgb8::new(0x10, 0x10, 0x10) };

    /// Whether programs should use a dark palette: the background is the darker of the two
    /// (and, should they be equally bright, darker than mid-grey).
    pub fn is_dark(&self) -> bool {
        let (fg, bg) = (self.fg.luma(), self.bg.luma());
        if fg == bg { bg < 128 } else { bg < fg }
    }

    /// The colour-scheme report of DEC mode 2031 (`CSI ? 997 ; 1 n` dark, `; 2 n` light).
    pub fn scheme_report(&self) -> &'static [u8] {
        if self.is_dark() { b"\x1b[?997;1n" } else { b"\x1b[?997;2n" }
    }
}

/// What a terminal said to [`QUERY`], read from the bytes that came back so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answers {
    pub fg: Option<Rgb8>,
    pub bg: Option<Rgb8>,
    /// The answer to the device-attributes query that ends [`QUERY`] arrived: every terminal
    /// answers that one, and in order, so nothing more is coming.
    pub done: bool,
    /// Whatever else was read (keys the user typed meanwhile), in order.
    pub rest: Vec<u8>,
}

impl Answers {
    /// The colours, when the terminal told its background; a missing foreground is taken to
    /// contrast with it.
    pub fn colors(&self) -> Option<TermColors> {
        let bg = self.bg?;
        let fg = self.fg.unwrap_or({
            let guess = TermColors { fg: Rgb8::new(0x80, 0x80, 0x80), bg };
            if guess.is_dark() { TermColors::FALLBACK.fg } else { Rgb8::new(0, 0, 0) }
        });
        Some(TermColors { fg, bg })
    }
}

/// What a client writes to its terminal to learn its colours: OSC 10 and 11 queries, then a
/// primary device-attributes query (DA1), whose answer says that the others are all in.
pub const QUERY: &[u8] = b"\x1b]10;?\x1b\\\x1b]11;?\x1b\\\x1b[c";

/// Read the answers to [`QUERY`] out of `bytes` (everything read from the terminal so far).
pub fn read_answers(bytes: &[u8]) -> Answers {
    let mut a = Answers::default();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"\x1b]") {
            // An OSC answer runs to BEL or ST (ESC backslash); an unfinished one is still arriving.
            let body = &rest[2..];
            let Some(t) = body.iter().position(|&b| b == 0x07 || b == 0x1b) else { break };
            let len = match body[t] {
                0x07 => 2 + t + 1,
                _ if body.len() > t + 1 => 2 + t + 2,
                _ => break,
            };
            let answer = &rest[..len];
            if let Some(c) = parse_color_reply(answer, 10) {
                a.fg = Some(c);
            } else if let Some(c) = parse_color_reply(answer, 11) {
                a.bg = Some(c);
            }
            i += len;
            continue;
        }
        if rest.starts_with(b"\x1b[?") {
            // DA1's answer: CSI ? digits and semicolons, then `c`.
            match rest[3..].iter().position(|&b| !(b.is_ascii_digit() || b == b';')) {
                Some(p) if rest[3 + p] == b'c' => {
                    a.done = true;
                    i += 3 + p + 1;
                    continue;
                }
                None => break,
                Some(_) => {}
            }
        }
        a.rest.push(bytes[i]);
        i += 1;
    }
    a
}

/// Find a terminal's answer to OSC `code` (10 foreground, 11 background) in `bytes` and read its
/// colour: `ESC ] code ; rgb:R/G/B` ended by BEL or ST, each channel 1 to 4 hex digits (xterm's
/// form), or `#RRGGBB`. Anything else (no answer, another format) is None.
pub fn parse_color_reply(bytes: &[u8], code: u8) -> Option<Rgb8> {
    let head = format!("\x1b]{code};");
    let start = find(bytes, head.as_bytes())? + head.len();
    let rest = &bytes[start..];
    let end = rest.iter().position(|&b| b == 0x07 || b == 0x1b)?;
    let spec = std::str::from_utf8(&rest[..end]).ok()?;
    parse_spec(spec)
}

fn parse_spec(spec: &str) -> Option<Rgb8> {
    if let Some(hex) = spec.strip_prefix('#') {
        if hex.len() != 6 {
            return None;
        }
        let ch = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return Some(Rgb8::new(ch(0)?, ch(2)?, ch(4)?));
    }
    // `rgba:` (some terminals) carries an alpha channel after the three colours.
    let body = spec.strip_prefix("rgb:").or_else(|| spec.strip_prefix("rgba:"))?;
    let mut parts = body.split('/');
    let mut channel = || -> Option<u8> {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 4 {
            return None;
        }
        let v = u32::from_str_radix(p, 16).ok()?;
        // Scale n hex digits to 8 bits, as XParseColor does.
        let max = (1u32 << (4 * p.len())) - 1;
        u8::try_from((v * 255 + max / 2) / max).ok()
    };
    Some(Rgb8::new(channel()?, channel()?, channel()?))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xterm_answers_are_read_in_every_width_and_terminator() {
        let white = Some(Rgb8::new(255, 255, 255));
        assert_eq!(parse_color_reply(b"\x1b]11;rgb:ffff/ffff/ffff\x07", 11), white);
        assert_eq!(parse_color_reply(b"\x1b]11;rgb:ff/ff/ff\x1b\\", 11), white);
        assert_eq!(parse_color_reply(b"\x1b]11;rgb:f/f/f\x07", 11), white);
        assert_eq!(
            parse_color_reply(b"\x1b]10;rgb:1e1e/2020/3030\x07", 10),
            Some(Rgb8::new(0x1e, 0x20, 0x30))
        );
        assert_eq!(parse_color_reply(b"\x1b]11;#fdf6e3\x07", 11), Some(Rgb8::new(253, 246, 227)));
        assert_eq!(
            parse_color_reply(b"\x1b]11;rgba:0000/0000/0000/ffff\x07", 11),
            Some(Rgb8::new(0, 0, 0))
        );
        // Both answers in one read (and a DA1 after them): each is found by its code.
        let both = b"\x1b]10;rgb:0000/0000/0000\x1b\\\x1b]11;rgb:ffff/ffff/ffff\x1b\\\x1b[?6c";
        assert_eq!(parse_color_reply(both, 10), Some(Rgb8::new(0, 0, 0)));
        assert_eq!(parse_color_reply(both, 11), white);
        // No answer, a half one, or garbage: nothing.
        assert_eq!(parse_color_reply(b"\x1b[?6c", 11), None);
        assert_eq!(parse_color_reply(b"\x1b]11;rgb:ffff/ff", 11), None);
        assert_eq!(parse_color_reply(b"\x1b]11;rgb:zz/00/00\x07", 11), None);
        assert_eq!(parse_color_reply(b"\x1b]11;?\x07", 11), None);
    }

    #[test]
    fn answers_are_taken_out_of_what_the_terminal_sent_and_the_rest_kept() {
        let sent =
            b"ab\x1b]10;rgb:0000/0000/0000\x1b\\x\x1b]11;rgb:ffff/ffff/ffff\x07\x1b[?62;22cz";
        let a = read_answers(sent);
        assert_eq!(a.fg, Some(Rgb8::new(0, 0, 0)));
        assert_eq!(a.bg, Some(Rgb8::new(255, 255, 255)));
        assert!(a.done);
        assert_eq!(a.rest, b"abxz");
        assert!(!a.colors().unwrap().is_dark());
        // A terminal that knows no colour queries answers DA1 alone: done, nothing learnt.
        let a = read_answers(b"\x1b[?6c");
        assert!(a.done && a.colors().is_none() && a.rest.is_empty());
        // Half an answer so far: not done, and the half is not taken for keys.
        let a = read_answers(b"\x1b]11;rgb:ffff/ff");
        assert!(!a.done && a.bg.is_none() && a.rest.is_empty());
        let a = read_answers(b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\\x1b[?6");
        assert!(!a.done && a.bg.is_some());
        // Only a background: the foreground is guessed to contrast with it.
        let a = read_answers(b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\\x1b[?6c");
        assert_eq!(a.colors().unwrap().fg, Rgb8::new(0, 0, 0));
        // Keys that look like escapes (an arrow key) are keys.
        let a = read_answers(b"\x1b[A\x1b[?1;2c");
        assert_eq!(a.rest, b"\x1b[A");
        assert!(a.done);
    }

    #[test]
    fn light_and_dark_are_told_apart_by_the_background() {
        assert!(TermColors::FALLBACK.is_dark());
        let light = TermColors { fg: Rgb8::new(0, 0, 0), bg: Rgb8::new(255, 255, 255) };
        assert!(!light.is_dark());
        assert_eq!(light.scheme_report(), b"\x1b[?997;2n");
        assert_eq!(TermColors::FALLBACK.scheme_report(), b"\x1b[?997;1n");
        // Solarized light: a cream background under a grey-blue text.
        let solarized =
            TermColors { fg: Rgb8::new(0x65, 0x7b, 0x83), bg: Rgb8::new(253, 246, 227) };
        assert!(!solarized.is_dark());
    }
}
