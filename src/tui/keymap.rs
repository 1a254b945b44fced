//! Keys as data: the names a config file uses for keys (`ctrl-]`, `shift-enter`, `pgup`, `D`), and
//! the keymap that turns a (mode, key) into an [`Action`]. The help overlay and the footer read the
//! same map, so what they show is what the keys do. Key names have one spelling each, so two
//! config layers cannot bind the same key under two names.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode as CtKey, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::action::Action;
use crate::config::KeysConfig;

/// A key without its modifiers, independent of the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    F(u8),
}

pub const CTRL: u8 = 1;
pub const ALT: u8 = 2;
/// Only for keys that are not characters: a shifted character is its own character (`D`).
pub const SHIFT: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct KeySpec {
    pub key: Key,
    pub mods: u8,
}

const NAMED: [(&str, Key); 15] = [
    ("enter", Key::Enter),
    ("esc", Key::Esc),
    ("tab", Key::Tab),
    ("backtab", Key::BackTab),
    ("backspace", Key::Backspace),
    ("delete", Key::Delete),
    ("insert", Key::Insert),
    ("up", Key::Up),
    ("down", Key::Down),
    ("left", Key::Left),
    ("right", Key::Right),
    ("home", Key::Home),
    ("end", Key::End),
    ("pgup", Key::PageUp),
    ("pgdn", Key::PageDown),
];

impl KeySpec {
    pub const fn new(key: Key, mods: u8) -> KeySpec {
        KeySpec { key, mods }
    }

    pub const fn plain(c: char) -> KeySpec {
        KeySpec { key: Key::Char(c), mods: 0 }
    }

    pub const fn ctrl(c: char) -> KeySpec {
        KeySpec { key: Key::Char(c), mods: CTRL }
    }

    /// The key a terminal event stands for, spelled the way a config file would spell it.
    /// Terminals disagree on a few keys, so those are brought to one form here: a shifted
    /// character carries the shift in the character; control characters are lower case; and the
    /// legacy encoding's `ctrl-4`..`ctrl-7` are the bytes of `ctrl-\`..`ctrl-_` (crossterm reads
    /// 0x1d, which is what `ctrl-]` sends, as `ctrl-5`).
    pub fn from_event(ev: &KeyEvent) -> Option<KeySpec> {
        let m = ev.modifiers;
        let mut mods = 0;
        if m.contains(KeyModifiers::CONTROL) {
            mods |= CTRL;
        }
        if m.contains(KeyModifiers::ALT) {
            mods |= ALT;
        }
        let shift = m.contains(KeyModifiers::SHIFT);
        let key = match ev.code {
            CtKey::Char(c) => {
                let c = if mods & CTRL != 0 {
                    match c {
                        '4' => '\\',
                        '5' => ']',
                        '6' => '^',
                        '7' => '_',
                        c => c.to_ascii_lowercase(),
                    }
                } else {
                    c
                };
                return Some(KeySpec { key: Key::Char(c), mods });
            }
            CtKey::Enter => Key::Enter,
            CtKey::Esc => Key::Esc,
            CtKey::Tab if shift => return Some(KeySpec { key: Key::BackTab, mods }),
            CtKey::Tab => Key::Tab,
            CtKey::BackTab => return Some(KeySpec { key: Key::BackTab, mods }),
            CtKey::Backspace => Key::Backspace,
            CtKey::Delete => Key::Delete,
            CtKey::Insert => Key::Insert,
            CtKey::Up => Key::Up,
            CtKey::Down => Key::Down,
            CtKey::Left => Key::Left,
            CtKey::Right => Key::Right,
            CtKey::Home => Key::Home,
            CtKey::End => Key::End,
            CtKey::PageUp => Key::PageUp,
            CtKey::PageDown => Key::PageDown,
            CtKey::F(n) => Key::F(n),
            _ => return None,
        };
        if shift {
            mods |= SHIFT;
        }
        Some(KeySpec { key, mods })
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods & CTRL != 0 {
            f.write_str("ctrl-")?;
        }
        if self.mods & ALT != 0 {
            f.write_str("alt-")?;
        }
        if self.mods & SHIFT != 0 {
            f.write_str("shift-")?;
        }
        match self.key {
            Key::Char(' ') => f.write_str("space"),
            Key::Char(c) => write!(f, "{c}"),
            Key::F(n) => write!(f, "f{n}"),
            k => {
                let name = NAMED.iter().find(|(_, nk)| *nk == k).map(|(n, _)| *n).unwrap_or("?");
                f.write_str(name)
            }
        }
    }
}

impl FromStr for KeySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<KeySpec, String> {
        let bad = |why: &str| {
            format!(
                "key '{s}' {why}; write keys like j, D, ?, ctrl-], alt-x, shift-enter, pgup, f5 (names: space, {})",
                NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        };
        let mut rest = s;
        let mut mods = 0;
        loop {
            // A lone "-" is the minus key, not a modifier separator.
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                mods |= CTRL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                mods |= ALT;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-").filter(|r| !r.is_empty()) {
                mods |= SHIFT;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let key = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if c.is_control() {
                    return Err(bad("is a control character"));
                }
                if mods & SHIFT != 0 {
                    return Err(bad("has shift- with a character; write the shifted character"));
                }
                if mods & CTRL != 0 && c.is_ascii_uppercase() {
                    return Err(bad("has an upper-case letter with ctrl-; write it lower case"));
                }
                Key::Char(c)
            }
            _ if rest == "space" => Key::Char(' '),
            _ => {
                if let Some(n) = rest.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    if !(1..=24).contains(&n) {
                        return Err(bad("is not a function key f1 to f24"));
                    }
                    Key::F(n)
                } else {
                    NAMED
                        .iter()
                        .find(|(n, _)| *n == rest)
                        .map(|(_, k)| *k)
                        .ok_or_else(|| bad("is not a key name"))?
                }
            }
        };
        if key == Key::Char(' ') && mods & SHIFT != 0 {
            return Err(bad("has shift- with space"));
        }
        Ok(KeySpec { key, mods })
    }
}

impl TryFrom<String> for KeySpec {
    type Error = String;

    fn try_from(s: String) -> Result<KeySpec, String> {
        s.parse()
    }
}

/// Which keymap a key is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyMode {
    /// The dashboard: list or grid.
    Normal,
    /// Keys go to the agent; these few are taken before they do.
    Focus,
    /// Dialogs (new agent, send, remove); typed characters edit text fields first.
    Dialog,
}

impl KeyMode {
    pub const ALL: [KeyMode; 3] = [KeyMode::Normal, KeyMode::Focus, KeyMode::Dialog];

    pub fn title(self) -> &'static str {
        match self {
            KeyMode::Normal => "Dashboard",
            KeyMode::Focus => "Focus",
            KeyMode::Dialog => "Dialogs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    maps: BTreeMap<KeyMode, BTreeMap<KeySpec, Action>>,
    /// Leaves focus mode; pressed twice, sends itself to the agent. From `[terminal] detach_key`,
    /// shared with `corral attach`.
    pub prefix: KeySpec,
}

impl Keymap {
    pub fn from_config(keys: &KeysConfig, detach_key: &str) -> Result<Keymap, String> {
        let prefix: KeySpec =
            detach_key.parse().map_err(|e| format!("[terminal] detach_key: {e}"))?;
        // The same key leaves `corral attach`, which sees raw bytes: it must be a control code.
        let control = matches!(prefix.key, Key::Char(c) if c.is_ascii_lowercase()
            || matches!(c, '@' | '\\' | ']' | '^' | '_' | ' '));
        if prefix.mods != CTRL || !control {
            return Err(format!(
                "[terminal] detach_key '{detach_key}' must be ctrl- and a letter or one of @ \\ ] ^ _ space (e.g. ctrl-]), so that it is a key no agent needs and `corral attach` can see it"
            ));
        }
        let mut maps = BTreeMap::new();
        for (mode, src) in [
            (KeyMode::Normal, &keys.normal),
            (KeyMode::Focus, &keys.focus),
            (KeyMode::Dialog, &keys.dialog),
        ] {
            let m: BTreeMap<KeySpec, Action> =
                src.iter().filter(|(_, a)| **a != Action::None).map(|(k, a)| (*k, *a)).collect();
            maps.insert(mode, m);
        }
        Ok(Keymap { maps, prefix })
    }

    /// The keymap from the compiled-in config alone.
    pub fn defaults() -> Keymap {
        let cfg = crate::config::load(std::path::Path::new("/nonexistent/corral.toml"), None)
            .map(|l| l.config)
            .unwrap_or_default();
        Keymap::from_config(&cfg.keys, &cfg.terminal.detach_key)
            .unwrap_or_else(|_| Keymap { maps: BTreeMap::new(), prefix: KeySpec::ctrl(']') })
    }

    pub fn lookup(&self, mode: KeyMode, key: KeySpec) -> Option<Action> {
        self.maps.get(&mode)?.get(&key).copied()
    }

    /// Keys bound to `action` in `mode`, in a stable order (plain keys first).
    pub fn keys_for(&self, mode: KeyMode, action: Action) -> Vec<KeySpec> {
        let mut ks: Vec<KeySpec> = self
            .maps
            .get(&mode)
            .map(|m| m.iter().filter(|(_, a)| **a == action).map(|(k, _)| *k).collect())
            .unwrap_or_default();
        ks.sort_by_key(|k| (k.mods, !matches!(k.key, Key::Char(_)), *k));
        ks
    }

    /// The first key for `action`, as the footer shows it.
    pub fn first_key(&self, mode: KeyMode, action: Action) -> Option<KeySpec> {
        self.keys_for(mode, action).into_iter().next()
    }

    /// Every binding of a mode, grouped by action in the order of [`Action::ALL`].
    pub fn bindings(&self, mode: KeyMode) -> Vec<(Action, Vec<KeySpec>)> {
        Action::ALL
            .into_iter()
            .map(|a| (a, self.keys_for(mode, a)))
            .filter(|(_, ks)| !ks.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_round_trip() {
        for s in [
            "j",
            "D",
            "?",
            "1",
            "-",
            "ctrl-]",
            "ctrl-c",
            "alt-x",
            "ctrl-alt-k",
            "shift-enter",
            "enter",
            "esc",
            "tab",
            "backtab",
            "pgup",
            "pgdn",
            "shift-pgup",
            "f5",
            "space",
            "ctrl-space",
            "home",
            "delete",
            "alt--",
        ] {
            let k: KeySpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(k.to_string(), s);
        }
        for bad in ["", "ctrl-", "shift-a", "ctrl-A", "pageup", "f0", "f25", "hyper-x", "\t"] {
            assert!(bad.parse::<KeySpec>().is_err(), "{bad:?} parses");
        }
        let err = "pageup".parse::<KeySpec>().unwrap_err();
        assert!(err.contains("'pageup'") && err.contains("pgup"), "{err}");
    }

    #[test]
    fn terminal_events_normalise_to_config_names() {
        let ev = |code, m| KeyEvent::new(code, m);
        let k = |e: KeyEvent| KeySpec::from_event(&e).unwrap().to_string();
        assert_eq!(k(ev(CtKey::Char('D'), KeyModifiers::SHIFT)), "D");
        // Legacy 0x1d arrives as ctrl-5; the kitty form as ctrl-].
        assert_eq!(k(ev(CtKey::Char('5'), KeyModifiers::CONTROL)), "ctrl-]");
        assert_eq!(k(ev(CtKey::Char(']'), KeyModifiers::CONTROL)), "ctrl-]");
        assert_eq!(k(ev(CtKey::Char('C'), KeyModifiers::CONTROL | KeyModifiers::SHIFT)), "ctrl-c");
        assert_eq!(k(ev(CtKey::Enter, KeyModifiers::SHIFT)), "shift-enter");
        assert_eq!(k(ev(CtKey::BackTab, KeyModifiers::SHIFT)), "backtab");
        assert_eq!(k(ev(CtKey::PageUp, KeyModifiers::SHIFT)), "shift-pgup");
        assert_eq!(k(ev(CtKey::F(5), KeyModifiers::NONE)), "f5");
    }

    #[test]
    fn default_keymap_binds_the_documented_keys_and_no_agent_keys() {
        let km = Keymap::defaults();
        assert_eq!(km.prefix.to_string(), "ctrl-]");
        let n = |s: &str| km.lookup(KeyMode::Normal, s.parse().unwrap());
        assert_eq!(n("j"), Some(Action::Down));
        assert_eq!(n("down"), Some(Action::Down));
        assert_eq!(n("k"), Some(Action::Up));
        assert_eq!(n("3"), Some(Action::Jump(3)));
        assert_eq!(n("enter"), Some(Action::Focus));
        assert_eq!(n("n"), Some(Action::New));
        assert_eq!(n("i"), Some(Action::Send));
        assert_eq!(n("x"), Some(Action::Stop));
        assert_eq!(n("r"), Some(Action::Restart));
        assert_eq!(n("D"), Some(Action::Remove));
        assert_eq!(n("?"), Some(Action::Help));
        assert_eq!(n("m"), Some(Action::Merge));
        assert_eq!(n("d"), Some(Action::Diff));
        assert_eq!(n("s"), Some(Action::Sync));
        assert_eq!(n("I"), Some(Action::Queue));
        // Focus mode takes nothing an agent uses.
        for k in ["ctrl-g", "ctrl-b", "ctrl-o", "ctrl-t", "ctrl-s", "ctrl-z", "ctrl-v", "ctrl-a"] {
            let spec = k.parse().unwrap();
            assert_eq!(km.lookup(KeyMode::Focus, spec), None, "{k}");
            assert_ne!(km.prefix, spec, "{k}");
        }
    }

    fn load(user: &str) -> Result<crate::config::Config, String> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, user).unwrap();
        crate::config::load(&path, None).map(|l| l.config).map_err(|e| e.to_string())
    }

    #[test]
    fn config_layers_rebind_and_unbind_keys() {
        let cfg =
            load("[keys.normal]\na = \"new\"\nn = \"none\"\n\n[keys.focus]\nf12 = \"grid\"\n")
                .unwrap();
        let km = Keymap::from_config(&cfg.keys, &cfg.terminal.detach_key).unwrap();
        assert_eq!(km.lookup(KeyMode::Normal, KeySpec::plain('a')), Some(Action::New));
        assert_eq!(km.lookup(KeyMode::Normal, KeySpec::plain('n')), None);
        assert_eq!(km.lookup(KeyMode::Normal, KeySpec::plain('j')), Some(Action::Down), "kept");
        assert_eq!(km.lookup(KeyMode::Focus, "f12".parse().unwrap()), Some(Action::Grid));
        // The footer and help read the same map.
        assert_eq!(km.first_key(KeyMode::Normal, Action::New), Some(KeySpec::plain('a')));
    }

    #[test]
    fn bad_keys_config_names_file_line_and_key() {
        let err = load("[keys.normal]\nj = \"down\"\nk = \"upp\"\n").unwrap_err();
        assert!(err.contains("config.toml: line 3"), "{err}");
        assert!(err.contains("unknown action 'upp'"), "{err}");
        let err = load("[keys.focus]\n\n\"pageup\" = \"scroll-up\"\n").unwrap_err();
        assert!(err.contains("line 3") && err.contains("key 'pageup'"), "{err}");
        let err = load("[keys.insert]\nx = \"quit\"\n").unwrap_err();
        assert!(err.contains("keys.insert"), "{err}");
    }

    #[test]
    fn prefix_must_be_a_chord() {
        let keys = KeysConfig::default();
        assert!(Keymap::from_config(&keys, "x").unwrap_err().contains("detach_key 'x'"));
        assert!(Keymap::from_config(&keys, "ctrl-x").is_ok());
        assert!(Keymap::from_config(&keys, "ctrl-\\").is_ok());
        for bad in ["f12", "alt-x", "ctrl-alt-x", "ctrl-1", "ctrl-"] {
            assert!(Keymap::from_config(&keys, bad).unwrap_err().contains("detach_key"), "{bad}");
        }
    }
}
