//! Keys and mouse events from the user's terminal, encoded as the bytes the agent's own terminal
//! would have sent for the input modes the agent asked for (cursor keys, keypad, kitty keyboard
//! flags, bracketed paste, mouse reporting). `corral attach` gets this for free by mirroring the
//! modes onto the real terminal; the dashboard shares one terminal among many agents, so it
//! decodes keys and encodes them again per agent. Pure functions, no I/O.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};

use crate::term::{Modes, MouseMode};

/// Kitty keyboard flags (CSI > flags u).
const KITTY_DISAMBIGUATE: u8 = 1;
const KITTY_ALL_KEYS: u8 = 8;

/// xterm's modifier parameter: 1 + shift(1) + alt(2) + ctrl(4) + super(8).
fn mod_param(m: KeyModifiers) -> u8 {
    let mut p = 0;
    if m.contains(KeyModifiers::SHIFT) {
        p |= 1;
    }
    if m.contains(KeyModifiers::ALT) {
        p |= 2;
    }
    if m.contains(KeyModifiers::CONTROL) {
        p |= 4;
    }
    if m.contains(KeyModifiers::SUPER) {
        p |= 8;
    }
    p + 1
}

/// The C0 byte ctrl plus this character produces in a legacy terminal.
fn ctrl_byte(c: char) -> Option<u8> {
    Some(match c.to_ascii_lowercase() {
        c @ 'a'..='z' => c as u8 - b'a' + 1,
        '@' | ' ' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '/' | '7' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// CSI {n} ; {mods} {final}, leaving out parameters that are defaults.
fn csi(out: &mut Vec<u8>, n: u32, mods: u8, fin: char) {
    out.extend_from_slice(b"\x1b[");
    if mods > 1 {
        push_str(out, &format!("{n};{mods}{fin}"));
    } else if n != 1 || fin == '~' || fin == 'u' {
        push_str(out, &format!("{n}{fin}"));
    } else {
        push_str(out, &fin.to_string());
    }
}

/// The kitty protocol's codes for keypad keys.
fn keypad_kitty(code: &KeyCode) -> Option<u32> {
    Some(match code {
        KeyCode::Char(c @ '0'..='9') => 57399 + (*c as u32 - '0' as u32),
        KeyCode::Char('.') => 57409,
        KeyCode::Char('/') => 57410,
        KeyCode::Char('*') => 57411,
        KeyCode::Char('-') => 57412,
        KeyCode::Char('+') => 57413,
        KeyCode::Enter => 57414,
        KeyCode::Char('=') => 57415,
        _ => return None,
    })
}

/// The application keypad (DECKPAM) sequences: SS3 and a letter.
fn keypad_app(code: &KeyCode) -> Option<u8> {
    Some(match code {
        KeyCode::Char(c @ '0'..='9') => b'p' + (*c as u8 - b'0'),
        KeyCode::Char('.') => b'n',
        KeyCode::Char('/') => b'o',
        KeyCode::Char('*') => b'j',
        KeyCode::Char('-') => b'm',
        KeyCode::Char('+') => b'k',
        KeyCode::Enter => b'M',
        KeyCode::Char('=') => b'X',
        _ => return None,
    })
}

/// The bytes for one key press in the agent's current modes; `None` for events that send nothing
/// (releases, keys no terminal encodes).
pub fn encode_key(ev: &KeyEvent, modes: &Modes) -> Option<Vec<u8>> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    let m = ev.modifiers;
    let (shift, alt, ctrl) = (
        m.contains(KeyModifiers::SHIFT),
        m.contains(KeyModifiers::ALT),
        m.contains(KeyModifiers::CONTROL),
    );
    let mp = mod_param(m);
    let kitty = modes.kitty_flags;
    let all_keys = kitty & KITTY_ALL_KEYS != 0;
    let disambiguate = kitty & KITTY_DISAMBIGUATE != 0 || all_keys;
    let mut out = Vec::new();

    if ev.state.contains(KeyEventState::KEYPAD) {
        if disambiguate && let Some(n) = keypad_kitty(&ev.code) {
            csi(&mut out, n, mp, 'u');
            return Some(out);
        }
        if modes.app_keypad
            && mp == 1
            && let Some(b) = keypad_app(&ev.code)
        {
            out.extend_from_slice(&[0x1b, b'O', b]);
            return Some(out);
        }
    }

    match ev.code {
        KeyCode::Char(c) => {
            // Text: what the key types, shift already applied by the terminal.
            let text_only = !ctrl && !alt && !m.contains(KeyModifiers::SUPER);
            if text_only && !all_keys {
                push_str(&mut out, c.encode_utf8(&mut [0; 4]));
                return Some(out);
            }
            if disambiguate {
                // Kitty reports the unshifted key with the shift as a modifier.
                let base = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c };
                let shift_mod = shift || c.is_ascii_uppercase();
                let mut mods = m;
                if shift_mod {
                    mods |= KeyModifiers::SHIFT;
                }
                csi(&mut out, base as u32, mod_param(mods), 'u');
                return Some(out);
            }
            if alt {
                out.push(0x1b);
            }
            match (ctrl, ctrl_byte(c)) {
                (true, Some(b)) => out.push(b),
                _ => push_str(&mut out, c.encode_utf8(&mut [0; 4])),
            }
        }
        KeyCode::Enter => {
            if all_keys || (disambiguate && mp > 1) {
                csi(&mut out, 13, mp, 'u');
            } else if shift || alt {
                // Meta-Enter: what Claude Code and Codex take as "newline, don't submit" in a
                // terminal without the kitty protocol.
                out.extend_from_slice(b"\x1b\r");
            } else {
                out.push(b'\r');
            }
        }
        KeyCode::Tab => {
            if all_keys || (disambiguate && mp > 1) {
                csi(&mut out, 9, mp, 'u');
            } else if shift {
                out.extend_from_slice(b"\x1b[Z");
            } else {
                if alt {
                    out.push(0x1b);
                }
                out.push(b'\t');
            }
        }
        KeyCode::BackTab => {
            if all_keys || (disambiguate && mp > 2) {
                csi(&mut out, 9, mod_param(m | KeyModifiers::SHIFT), 'u');
            } else {
                out.extend_from_slice(b"\x1b[Z");
            }
        }
        KeyCode::Backspace => {
            if all_keys || (disambiguate && mp > 1) {
                csi(&mut out, 127, mp, 'u');
            } else {
                if alt {
                    out.push(0x1b);
                }
                out.push(if ctrl { 0x08 } else { 0x7f });
            }
        }
        KeyCode::Esc => {
            if disambiguate {
                csi(&mut out, 27, mp, 'u');
            } else {
                if alt {
                    out.push(0x1b);
                }
                out.push(0x1b);
            }
        }
        KeyCode::Up
        | KeyCode::Down
        | KeyCode::Right
        | KeyCode::Left
        | KeyCode::Home
        | KeyCode::End => {
            let fin = match ev.code {
                KeyCode::Up => 'A',
                KeyCode::Down => 'B',
                KeyCode::Right => 'C',
                KeyCode::Left => 'D',
                KeyCode::Home => 'H',
                _ => 'F',
            };
            if mp > 1 {
                csi(&mut out, 1, mp, fin);
            } else if modes.app_cursor {
                out.extend_from_slice(&[0x1b, b'O', fin as u8]);
            } else {
                csi(&mut out, 1, 1, fin);
            }
        }
        KeyCode::Insert => csi(&mut out, 2, mp, '~'),
        KeyCode::Delete => csi(&mut out, 3, mp, '~'),
        KeyCode::PageUp => csi(&mut out, 5, mp, '~'),
        KeyCode::PageDown => csi(&mut out, 6, mp, '~'),
        KeyCode::F(n @ 1..=4) => {
            let fin = (b'P' + n - 1) as char;
            if mp > 1 {
                csi(&mut out, 1, mp, fin);
            } else {
                out.extend_from_slice(&[0x1b, b'O', fin as u8]);
            }
        }
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            csi(&mut out, code, mp, '~');
        }
        KeyCode::Null => out.push(0),
        _ => return None,
    }
    Some(out)
}

/// Text pasted into the user's terminal, as the agent should receive it: bracketed when the agent
/// asked for bracketed paste (so it is not taken as typed keys), and with newlines as Enter.
pub fn encode_paste(text: &str, modes: &Modes) -> Vec<u8> {
    let body = text.replace("\r\n", "\r").replace('\n', "\r");
    let mut out = Vec::with_capacity(body.len() + 12);
    if modes.bracketed_paste {
        // A paste that contains the end marker would end the paste early and type the rest.
        let body = body.replace("\x1b[201~", "");
        out.extend_from_slice(b"\x1b[200~");
        out.extend_from_slice(body.as_bytes());
        out.extend_from_slice(b"\x1b[201~");
    } else {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Focus in/out reports (mode 1004), when the agent asked for them.
pub fn encode_focus(gained: bool, modes: &Modes) -> Option<Vec<u8>> {
    modes.focus_events.then(|| if gained { b"\x1b[I".to_vec() } else { b"\x1b[O".to_vec() })
}

/// A mouse event at (`col`, `row`) of the agent's screen (zero-based), in the agent's mouse
/// mode and encoding; `None` when the agent did not ask for this kind of event.
pub fn encode_mouse(ev: &MouseEvent, col: u16, row: u16, modes: &Modes) -> Option<Vec<u8>> {
    let button_code = |b: MouseButton| match b {
        MouseButton::Left => 0u16,
        MouseButton::Middle => 1,
        MouseButton::Right => 2,
    };
    let (mut code, release) = match (ev.kind, modes.mouse) {
        (_, MouseMode::None) => return None,
        (MouseEventKind::Down(b), _) => (button_code(b), false),
        (MouseEventKind::Up(b), _) => (button_code(b), true),
        (MouseEventKind::Drag(b), MouseMode::Drag | MouseMode::Motion) => {
            (button_code(b) + 32, false)
        }
        (MouseEventKind::Moved, MouseMode::Motion) => (3 + 32, false),
        (MouseEventKind::ScrollUp, _) => (64, false),
        (MouseEventKind::ScrollDown, _) => (65, false),
        (MouseEventKind::ScrollLeft, _) => (66, false),
        (MouseEventKind::ScrollRight, _) => (67, false),
        _ => return None,
    };
    if ev.modifiers.contains(KeyModifiers::SHIFT) {
        code += 4;
    }
    if ev.modifiers.contains(KeyModifiers::ALT) {
        code += 8;
    }
    if ev.modifiers.contains(KeyModifiers::CONTROL) {
        code += 16;
    }
    let (x, y) = (u32::from(col) + 1, u32::from(row) + 1);
    if modes.sgr_mouse {
        return Some(
            format!("\x1b[<{code};{x};{y}{}", if release { 'm' } else { 'M' }).into_bytes(),
        );
    }
    // X10 encoding: one byte each, offset by 32; a release does not say which button.
    let code = if release { 3 + (code & !3) } else { code };
    let enc = |v: u32| u8::try_from(v + 32).ok();
    Some(vec![0x1b, b'[', b'M', enc(u32::from(code))?, enc(x)?, enc(y)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    fn enc(code: KeyCode, m: KeyModifiers, modes: &Modes) -> String {
        String::from_utf8(encode_key(&key(code, m), modes).unwrap()).unwrap()
    }

    const N: KeyModifiers = KeyModifiers::NONE;
    const S: KeyModifiers = KeyModifiers::SHIFT;
    const C: KeyModifiers = KeyModifiers::CONTROL;
    const A: KeyModifiers = KeyModifiers::ALT;

    #[test]
    fn legacy_keys() {
        let m = Modes::default();
        assert_eq!(enc(KeyCode::Char('a'), N, &m), "a");
        assert_eq!(enc(KeyCode::Char('A'), S, &m), "A");
        assert_eq!(enc(KeyCode::Char('é'), N, &m), "é");
        assert_eq!(enc(KeyCode::Char('c'), C, &m), "\x03");
        assert_eq!(enc(KeyCode::Char(']'), C, &m), "\x1d");
        assert_eq!(enc(KeyCode::Char('5'), C, &m), "\x1d");
        assert_eq!(enc(KeyCode::Char(' '), C, &m), "\0");
        assert_eq!(enc(KeyCode::Char('x'), A, &m), "\x1bx");
        assert_eq!(enc(KeyCode::Char('x'), A | C, &m), "\x1b\x18");
        assert_eq!(enc(KeyCode::Enter, N, &m), "\r");
        assert_eq!(enc(KeyCode::Tab, N, &m), "\t");
        assert_eq!(enc(KeyCode::BackTab, S, &m), "\x1b[Z");
        assert_eq!(enc(KeyCode::Backspace, N, &m), "\x7f");
        assert_eq!(enc(KeyCode::Backspace, C, &m), "\x08");
        assert_eq!(enc(KeyCode::Backspace, A, &m), "\x1b\x7f");
        assert_eq!(enc(KeyCode::Esc, N, &m), "\x1b");
        assert_eq!(enc(KeyCode::Up, N, &m), "\x1b[A");
        assert_eq!(enc(KeyCode::Left, C, &m), "\x1b[1;5D");
        assert_eq!(enc(KeyCode::Home, S, &m), "\x1b[1;2H");
        assert_eq!(enc(KeyCode::Delete, N, &m), "\x1b[3~");
        assert_eq!(enc(KeyCode::PageUp, N, &m), "\x1b[5~");
        assert_eq!(enc(KeyCode::PageDown, S, &m), "\x1b[6;2~");
        assert_eq!(enc(KeyCode::F(1), N, &m), "\x1bOP");
        assert_eq!(enc(KeyCode::F(4), C, &m), "\x1b[1;5S");
        assert_eq!(enc(KeyCode::F(5), N, &m), "\x1b[15~");
        assert_eq!(enc(KeyCode::F(12), A, &m), "\x1b[24;3~");
        let release = KeyEvent::new_with_kind(KeyCode::Char('a'), N, KeyEventKind::Release);
        assert_eq!(encode_key(&release, &m), None);
    }

    #[test]
    fn cursor_keys_follow_decckm() {
        let m = Modes { app_cursor: true, ..Modes::default() };
        assert_eq!(enc(KeyCode::Up, N, &m), "\x1bOA");
        assert_eq!(enc(KeyCode::End, N, &m), "\x1bOF");
        // With modifiers the CSI form is used in either mode.
        assert_eq!(enc(KeyCode::Up, S, &m), "\x1b[1;2A");
    }

    #[test]
    fn keypad_follows_deckpam_and_kitty() {
        let kp = |code| KeyEvent {
            state: KeyEventState::KEYPAD,
            ..KeyEvent::new(code, KeyModifiers::NONE)
        };
        let app = Modes { app_keypad: true, ..Modes::default() };
        let s = |e: KeyEvent, m: &Modes| String::from_utf8(encode_key(&e, m).unwrap()).unwrap();
        assert_eq!(s(kp(KeyCode::Char('5')), &app), "\x1bOu");
        assert_eq!(s(kp(KeyCode::Enter), &app), "\x1bOM");
        assert_eq!(s(kp(KeyCode::Char('5')), &Modes::default()), "5");
        let kitty = Modes { kitty_flags: 1, ..Modes::default() };
        assert_eq!(s(kp(KeyCode::Char('0')), &kitty), "\x1b[57399u");
    }

    #[test]
    fn shift_enter_is_a_newline_for_agents() {
        assert_eq!(enc(KeyCode::Enter, S, &Modes::default()), "\x1b\r");
        assert_eq!(enc(KeyCode::Enter, A, &Modes::default()), "\x1b\r");
        let kitty = Modes { kitty_flags: 1, ..Modes::default() };
        assert_eq!(enc(KeyCode::Enter, S, &kitty), "\x1b[13;2u");
        assert_eq!(enc(KeyCode::Enter, N, &kitty), "\r");
    }

    #[test]
    fn kitty_disambiguates_and_reports_all_keys() {
        let k1 = Modes { kitty_flags: 1, ..Modes::default() };
        assert_eq!(enc(KeyCode::Esc, N, &k1), "\x1b[27u");
        assert_eq!(enc(KeyCode::Char('c'), C, &k1), "\x1b[99;5u");
        assert_eq!(enc(KeyCode::Char(']'), C, &k1), "\x1b[93;5u");
        assert_eq!(enc(KeyCode::Char('x'), A, &k1), "\x1b[120;3u");
        assert_eq!(enc(KeyCode::Char('a'), N, &k1), "a");
        assert_eq!(enc(KeyCode::Char('A'), S, &k1), "A");
        assert_eq!(enc(KeyCode::Tab, N, &k1), "\t");
        assert_eq!(enc(KeyCode::Backspace, C, &k1), "\x1b[127;5u");
        assert_eq!(enc(KeyCode::Up, N, &k1), "\x1b[A");
        let k8 = Modes { kitty_flags: 1 | 8, ..Modes::default() };
        assert_eq!(enc(KeyCode::Char('a'), N, &k8), "\x1b[97u");
        assert_eq!(enc(KeyCode::Char('A'), S, &k8), "\x1b[97;2u");
        assert_eq!(enc(KeyCode::Enter, N, &k8), "\x1b[13u");
    }

    #[test]
    fn paste_is_bracketed_when_asked() {
        let on = Modes { bracketed_paste: true, ..Modes::default() };
        assert_eq!(encode_paste("a\nb", &on), b"\x1b[200~a\rb\x1b[201~");
        assert_eq!(encode_paste("a\r\nb", &Modes::default()), b"a\rb");
        assert_eq!(encode_paste("x\x1b[201~y", &on), b"\x1b[200~xy\x1b[201~");
    }

    #[test]
    fn mouse_follows_the_agents_mode_and_encoding() {
        let ev = |kind, m| MouseEvent { kind, column: 0, row: 0, modifiers: m };
        let down = ev(MouseEventKind::Down(MouseButton::Left), N);
        assert_eq!(encode_mouse(&down, 4, 2, &Modes::default()), None);
        let sgr = Modes { mouse: MouseMode::Click, sgr_mouse: true, ..Modes::default() };
        assert_eq!(encode_mouse(&down, 4, 2, &sgr).unwrap(), b"\x1b[<0;5;3M");
        let up = ev(MouseEventKind::Up(MouseButton::Left), N);
        assert_eq!(encode_mouse(&up, 4, 2, &sgr).unwrap(), b"\x1b[<0;5;3m");
        let wheel = ev(MouseEventKind::ScrollDown, C);
        assert_eq!(encode_mouse(&wheel, 0, 0, &sgr).unwrap(), b"\x1b[<81;1;1M");
        let drag = ev(MouseEventKind::Drag(MouseButton::Left), N);
        assert_eq!(encode_mouse(&drag, 0, 0, &sgr), None, "click mode has no drags");
        let x10 = Modes { mouse: MouseMode::Drag, ..Modes::default() };
        assert_eq!(encode_mouse(&drag, 0, 0, &x10).unwrap(), b"\x1b[M@!!");
        assert_eq!(encode_mouse(&up, 1, 1, &x10).unwrap(), b"\x1b[M#\"\"");
        assert_eq!(encode_mouse(&down, 300, 0, &x10), None, "beyond X10's reach");
    }

    #[test]
    fn focus_reports_only_when_asked() {
        assert_eq!(encode_focus(true, &Modes::default()), None);
        let on = Modes { focus_events: true, ..Modes::default() };
        assert_eq!(encode_focus(false, &on).unwrap(), b"\x1b[O");
    }
}
