//! Key rules: what a key the user sends an agent does, read from the screen it was pressed on.
//! Enter on a prompt with text submits it (the agent is working from that moment, though its hook
//! or screen says so only a moment later); a choice key on a permission dialog approves it. A rule
//! names its keys and, like a screen rule, the region it reads and the patterns that must (and
//! must not) be found there. The badge shows the rule's state at once, provisionally: the agent's
//! hook or screen confirms or overrides it (see `engine::Engine::on_key`).
//!
//! What a rule reads is the screen with faint text left out: agents draw the placeholder of an
//! empty input box faint ("Ask Codex to do anything"), and Enter there submits nothing.

use serde::{Deserialize, Serialize};

use super::Status;
use super::rules::{RegionKind, RuleError, RuleSet, RuleSpec};

/// A key rule as written in the config (`[[agents.NAME.key_rules]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRuleSpec {
    /// Shown in `status_reason` ("key: NAME").
    pub name: String,
    /// The keys: "enter", "esc", "tab", "space", or one character. A key counts when it arrives
    /// alone (as typed), not inside pasted text.
    pub keys: Vec<String>,
    /// The state the agent is in once it took the key.
    #[serde(default = "working")]
    pub status: Status,
    /// Only while the badge shows this state (a dialog's answer: "needs-input"). Keys of such
    /// rules are not even looked at otherwise: typing a "y" into a prompt costs nothing.
    #[serde(default)]
    pub when: Option<Status>,
    /// Once the screen moves on from what the key was pressed on, whatever state a rule then
    /// reads decides, not only the key's own. For answers whose outcome the screen shows at once
    /// and plainly: Aider, after a question, either goes back to its prompt or goes on working,
    /// and draws nothing in between that a rule would misread.
    #[serde(default)]
    pub screen_decides: bool,
    #[serde(default)]
    pub region: RegionKind,
    #[serde(default = "default_lines")]
    pub lines: u16,
    #[serde(default)]
    pub input: String,
    #[serde(rename = "match")]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub unless: Vec<String>,
}

fn working() -> Status {
    Status::Working
}

fn default_lines() -> u16 {
    10
}

/// The bytes a terminal sends for a key name of [`KeyRuleSpec::keys`].
pub fn key_bytes(name: &str) -> Option<Vec<u8>> {
    let bytes = match name {
        "enter" => b"\r".to_vec(),
        "esc" => b"\x1b".to_vec(),
        "tab" => b"\t".to_vec(),
        "space" => b" ".to_vec(),
        _ => {
            let mut chars = name.chars();
            let c = chars.next()?;
            if chars.next().is_some() || c.is_control() {
                return None;
            }
            c.to_string().into_bytes()
        }
    };
    Some(bytes)
}

#[derive(Debug)]
struct KeyRule {
    name: String,
    status: Status,
    when: Option<Status>,
    screen_decides: bool,
    keys: Vec<Vec<u8>>,
    screen: RuleSet,
}

/// What a key does, by the rule that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatch {
    pub status: Status,
    /// The rule's name.
    pub name: String,
    /// See [`KeyRuleSpec::screen_decides`].
    pub screen_decides: bool,
}

/// A profile's key rules, compiled.
#[derive(Debug, Default)]
pub struct KeyRules {
    rules: Vec<KeyRule>,
}

impl KeyRules {
    pub fn compile(specs: &[KeyRuleSpec]) -> Result<KeyRules, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let invalid = |message: String| RuleError::Invalid { rule: spec.name.clone(), message };
            if spec.keys.is_empty() {
                return Err(invalid("has no `keys`".into()));
            }
            let keys = spec
                .keys
                .iter()
                .map(|k| {
                    key_bytes(k).ok_or_else(|| {
                        invalid(format!(
                            "key {k:?} is not \"enter\", \"esc\", \"tab\", \"space\" or one character"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if spec.region == RegionKind::Title {
                // A key rule reads the screen the key was pressed on; the title is not kept with it.
                return Err(invalid(
                    "a key rule reads the screen: region \"title\" is not one".into(),
                ));
            }
            let screen = RuleSet::compile(&[RuleSpec {
                name: spec.name.clone(),
                status: spec.status,
                region: spec.region,
                lines: spec.lines,
                input: spec.input.clone(),
                patterns: spec.patterns.clone(),
                unless: spec.unless.clone(),
                settle_ms: 0,
            }])?;
            rules.push(KeyRule {
                name: spec.name.clone(),
                status: spec.status,
                when: spec.when,
                screen_decides: spec.screen_decides,
                keys,
                screen,
            });
        }
        Ok(KeyRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every key some rule listens for while the badge shows `shown` (what the pane is asked to
    /// report).
    pub fn keys(&self, shown: Status) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for k in self.rules.iter().filter(|r| r.applies(shown)).flat_map(|r| r.keys.iter()) {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }

    /// What `key` pressed on a screen showing `rows` (faint text left out) does while the badge
    /// shows `shown`: the first rule for that key whose region matches.
    pub fn evaluate(&self, key: &[u8], rows: &[String], shown: Status) -> Option<KeyMatch> {
        self.rules
            .iter()
            .filter(|r| r.applies(shown) && r.keys.iter().any(|k| k == key))
            .find(|r| r.screen.evaluate(rows).decided.is_some())
            .map(|r| KeyMatch {
                status: r.status,
                name: r.name.clone(),
                screen_decides: r.screen_decides,
            })
    }
}

impl KeyRule {
    fn applies(&self, shown: Status) -> bool {
        self.when.is_none_or(|w| w == shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_key_rule_cannot_read_the_title() {
        let spec = KeyRuleSpec {
            name: "titled".into(),
            keys: vec!["enter".into()],
            status: Status::Working,
            when: None,
            screen_decides: false,
            region: RegionKind::Title,
            lines: 1,
            input: String::new(),
            patterns: vec!["x".into()],
            unless: vec![],
        };
        let err = KeyRules::compile(&[spec]).unwrap_err().to_string();
        assert!(err.contains("rule 'titled'") && err.contains("region \"title\""), "{err}");
    }

    #[test]
    fn key_names_are_checked() {
        assert_eq!(key_bytes("enter"), Some(b"\r".to_vec()));
        assert_eq!(key_bytes("1"), Some(b"1".to_vec()));
        assert_eq!(key_bytes("é"), Some("é".as_bytes().to_vec()));
        assert_eq!(key_bytes("ctrl-x"), None);
        let bad = KeyRuleSpec {
            name: "oops".into(),
            keys: vec!["return".into()],
            status: Status::Working,
            when: None,
            screen_decides: false,
            region: RegionKind::Bottom,
            lines: 2,
            input: String::new(),
            patterns: vec!["x".into()],
            unless: vec![],
        };
        let err = KeyRules::compile(&[bad]).unwrap_err().to_string();
        assert!(err.contains("rule 'oops'") && err.contains("\"return\""), "{err}");
    }

    #[test]
    fn the_first_rule_for_the_key_whose_screen_matches_decides() {
        let spec = |name: &str, keys: &[&str], pats: &[&str]| KeyRuleSpec {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            status: Status::Working,
            when: None,
            screen_decides: false,
            region: RegionKind::Input,
            lines: 5,
            input: "^> ".into(),
            patterns: pats.iter().map(|p| p.to_string()).collect(),
            unless: vec!["^> /".into()],
        };
        let mut yes = spec("yes", &["y"], &["Allow"]);
        yes.when = Some(Status::NeedsInput);
        let set = KeyRules::compile(&[spec("submit", &["enter"], &[r"^> \S"]), yes]).unwrap();
        assert_eq!(set.keys(Status::Idle), vec![b"\r".to_vec()]);
        assert_eq!(set.keys(Status::NeedsInput), vec![b"\r".to_vec(), b"y".to_vec()]);
        let idle = Status::Idle;
        let typed = rows("> old prompt\nanswer\n> new prompt\n───\nfooter");
        let submit = set.evaluate(b"\r", &typed, idle).unwrap();
        assert_eq!((submit.status, submit.name.as_str()), (Status::Working, "submit"));
        assert_eq!(set.evaluate(b"x", &typed, idle), None, "not a key of the rule");
        let empty = rows("> old prompt\nanswer\n> \n───\nfooter");
        assert_eq!(set.evaluate(b"\r", &empty, idle), None, "the lowest input row is empty");
        let command = rows("> /exit\n───");
        assert_eq!(set.evaluate(b"\r", &command, idle), None, "unless");
        let asked = rows("> Allow it?");
        assert_eq!(set.evaluate(b"y", &asked, idle), None, "only while needs-input shows");
        assert_eq!(set.evaluate(b"y", &asked, Status::NeedsInput).unwrap().name, "yes");
    }
}
