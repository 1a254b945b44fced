//! Screen rules: data from the config (a profile's `rules`), compiled once, evaluated on the rendered
//! screen as text rows. Each rule looks at one region of the screen and says which status it shows
//! when every `match` pattern is found there and no `unless` pattern is. Rules are tried in order;
//! the first that matches decides. Evaluation also reports, rule by rule, what region it read and
//! why it did or did not match, for `corral status --explain`.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Status;

/// A rule as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Shown in `status_reason` and `--explain`.
    pub name: String,
    pub status: Status,
    /// Where on the screen to look.
    #[serde(default)]
    pub region: RegionKind,
    /// How many rows the region spans.
    #[serde(default = "default_lines")]
    pub lines: u16,
    /// For `region = "above-input"` and `"input"`: a pattern for the input row (e.g. `^❯`); the
    /// region is the `lines` rows above the input box (the input row and the border rows around it
    /// excluded), or the input box's own rows from that row down.
    #[serde(default)]
    pub input: String,
    /// Every pattern must be found in the region (regexes; `^` and `$` match at line ends).
    #[serde(rename = "match")]
    pub patterns: Vec<String>,
    /// None of these may be found in the region.
    #[serde(default)]
    pub unless: Vec<String>,
    /// Leaving `working` for this rule's state waits until the screen's words have been still
    /// this long: for agents that stream their answer under a screen that already looks done.
    #[serde(default)]
    pub settle_ms: u64,
}

fn default_lines() -> u16 {
    10
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionKind {
    /// The last `lines` rows that end at the last row with text (programs that draw inline leave
    /// the bottom of the screen blank, so the real bottom is the last row written).
    #[default]
    Bottom,
    /// The `lines` rows above the input box found with `input`.
    AboveInput,
    /// The input box found with `input`: its input row and the rows under it down to its border
    /// (at most `lines`), i.e. what the user has typed.
    Input,
    /// The whole screen.
    Screen,
    /// The window title the program set (OSC 0 or 2), not the screen: some agents say there what
    /// they are doing (Gemini CLI: "◇  Ready", "✦  Working…", "✋  Action Required"), at the
    /// moment their state changes and without the half-drawn frames a screen goes through.
    /// `lines` is not used.
    Title,
}

#[derive(Debug, Error)]
pub enum RuleError {
    #[error("rule '{rule}': pattern {pattern:?}: {message}")]
    Pattern { rule: String, pattern: String, message: String },
    #[error("rule '{rule}': {message}")]
    Invalid { rule: String, message: String },
}

#[derive(Debug)]
struct Rule {
    spec: RuleSpec,
    input: Option<Regex>,
    patterns: Vec<Regex>,
    unless: Vec<Regex>,
}

/// A profile's rules, compiled.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// Rows of an input box border: box-drawing characters and blanks only.
fn is_border(row: &str) -> bool {
    let t = row.trim();
    !t.is_empty() && t.chars().all(|c| ('\u{2500}'..='\u{257f}').contains(&c) || c.is_whitespace())
}

fn compile_one(rule: &str, pattern: &str) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern).multi_line(true).size_limit(1 << 20).build().map_err(|e| {
        RuleError::Pattern { rule: rule.into(), pattern: pattern.into(), message: e.to_string() }
    })
}

/// What one rule made of one screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleReport {
    pub name: String,
    pub status: Status,
    /// The region in words, with the rows it covered (1-based, inclusive).
    pub region: String,
    pub text: Vec<String>,
    pub matched: bool,
    /// Why it matched or not (the first pattern missing, or the `unless` found).
    pub detail: String,
}

/// The outcome of evaluating a rule set on a screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The first rule that matched: its status and name.
    pub decided: Option<(Status, String)>,
    /// That rule's `settle_ms`.
    pub settle: std::time::Duration,
    /// A hash of the screen's letters only, so spinners, timers and token counters that animate
    /// without progress do not count as change (what `stuck` is measured against).
    pub fingerprint: u64,
}

impl RuleSet {
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            if spec.patterns.is_empty() {
                return Err(RuleError::Invalid {
                    rule: spec.name.clone(),
                    message: "has no `match` patterns".into(),
                });
            }
            if spec.lines == 0 && !matches!(spec.region, RegionKind::Screen | RegionKind::Title) {
                return Err(RuleError::Invalid {
                    rule: spec.name.clone(),
                    message: "`lines` must be at least 1".into(),
                });
            }
            let input = match spec.region {
                RegionKind::AboveInput | RegionKind::Input if spec.input.is_empty() => {
                    return Err(RuleError::Invalid {
                        rule: spec.name.clone(),
                        message: "regions \"above-input\" and \"input\" need an `input` pattern"
                            .into(),
                    });
                }
                RegionKind::AboveInput | RegionKind::Input => {
                    Some(compile_one(&spec.name, &spec.input)?)
                }
                _ => None,
            };
            let patterns = spec
                .patterns
                .iter()
                .map(|p| compile_one(&spec.name, p))
                .collect::<Result<_, _>>()?;
            let unless =
                spec.unless.iter().map(|p| compile_one(&spec.name, p)).collect::<Result<_, _>>()?;
            rules.push(Rule { spec: spec.clone(), input, patterns, unless });
        }
        Ok(RuleSet { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first matching rule's verdict, and the screen's fingerprint, for a program that set no
    /// window title.
    pub fn evaluate(&self, rows: &[String]) -> Evaluation {
        self.evaluate_titled(rows, "")
    }

    /// The first matching rule's verdict on a screen whose program set the window title `title`,
    /// and the screen's fingerprint.
    pub fn evaluate_titled(&self, rows: &[String], title: &str) -> Evaluation {
        let rule = self.rules.iter().find(|r| {
            if r.spec.region == RegionKind::Title {
                return r.matches(title);
            }
            r.region(rows).is_some_and(|(start, end)| r.matches(&rows[start..end].join("\n")))
        });
        Evaluation {
            decided: rule.map(|r| (r.spec.status, r.spec.name.clone())),
            settle: rule.map_or(std::time::Duration::ZERO, |r| {
                std::time::Duration::from_millis(r.spec.settle_ms)
            }),
            fingerprint: fingerprint(rows),
        }
    }

    /// Every rule, with the region it read and why it matched or not, for a program that set no
    /// window title.
    pub fn explain(&self, rows: &[String]) -> Vec<RuleReport> {
        self.explain_titled(rows, "")
    }

    /// Every rule, with the region it read (the window title `title` for a title rule) and why it
    /// matched or not.
    pub fn explain_titled(&self, rows: &[String], title: &str) -> Vec<RuleReport> {
        self.rules
            .iter()
            .map(|r| {
                if r.spec.region == RegionKind::Title {
                    let (matched, detail) = r.why(title);
                    return RuleReport {
                        name: r.spec.name.clone(),
                        status: r.spec.status,
                        region: "the window title".into(),
                        text: vec![title.to_string()],
                        matched,
                        detail,
                    };
                }
                let region = r.region(rows);
                let (label, text, matched, detail) = match region {
                    None => (
                        format!("above the input box: no row matches {:?}", r.spec.input),
                        Vec::new(),
                        false,
                        "no input box on screen".to_string(),
                    ),
                    Some((s, e)) => {
                        let label = match r.spec.region {
                            RegionKind::Bottom => format!("bottom {} rows", r.spec.lines),
                            RegionKind::AboveInput => {
                                format!("{} rows above the input box", r.spec.lines)
                            }
                            RegionKind::Input => "the input box".to_string(),
                            RegionKind::Screen => "whole screen".to_string(),
                            RegionKind::Title => "the window title".to_string(),
                        };
                        let label = if s < e {
                            format!("{label} (rows {}-{})", s + 1, e)
                        } else {
                            format!("{label} (empty)")
                        };
                        let joined = rows[s..e].join("\n");
                        let (m, d) = r.why(&joined);
                        (label, rows[s..e].to_vec(), m, d)
                    }
                };
                RuleReport {
                    name: r.spec.name.clone(),
                    status: r.spec.status,
                    region: label,
                    text,
                    matched,
                    detail,
                }
            })
            .collect()
    }
}

impl Rule {
    /// Row range `[start, end)` of the region on this screen; `None` when it cannot be found.
    fn region(&self, rows: &[String]) -> Option<(usize, usize)> {
        let last_text = rows.iter().rposition(|r| !r.trim().is_empty()).map_or(0, |i| i + 1);
        let lines = usize::from(self.spec.lines);
        match self.spec.region {
            // Read by the caller, not from the rows.
            RegionKind::Title => None,
            RegionKind::Screen => Some((0, rows.len())),
            RegionKind::Bottom => Some((last_text.saturating_sub(lines), last_text)),
            RegionKind::AboveInput => {
                let input = self.input.as_ref()?;
                // The lowest input row: history above may echo earlier prompts with the same mark.
                let row = rows[..last_text].iter().rposition(|r| input.is_match(r))?;
                let mut top = row;
                while top > 0 && is_border(&rows[top - 1]) {
                    top -= 1;
                }
                Some((top.saturating_sub(lines), top))
            }
            RegionKind::Input => {
                let input = self.input.as_ref()?;
                let row = rows[..last_text].iter().rposition(|r| input.is_match(r))?;
                let end = rows[row + 1..last_text]
                    .iter()
                    .position(|r| is_border(r) || r.trim().is_empty())
                    .map_or(last_text, |i| row + 1 + i);
                Some((row, end.min(row + lines.max(1))))
            }
        }
    }

    fn matches(&self, text: &str) -> bool {
        self.patterns.iter().all(|p| p.is_match(text))
            && !self.unless.iter().any(|p| p.is_match(text))
    }

    fn why(&self, text: &str) -> (bool, String) {
        if let Some(p) = self.patterns.iter().find(|p| !p.is_match(text)) {
            return (false, format!("not found: {:?}", p.as_str()));
        }
        if let Some(p) = self.unless.iter().find(|p| p.is_match(text)) {
            return (false, format!("found `unless` {:?}", p.as_str()));
        }
        let found: Vec<String> = self
            .patterns
            .iter()
            .filter_map(|p| p.find(text).map(|m| format!("{:?}", m.as_str())))
            .collect();
        (true, format!("found {}", found.join(", ")))
    }
}

/// FNV-1a over the letters of the screen: digits, punctuation, symbols (spinner glyphs) and blanks
/// are left out, so a spinner with a timer reads as no change while new words do not.
pub fn fingerprint(rows: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for row in rows {
        for c in row.chars().filter(|c| c.is_alphabetic()) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h ^= 0x0a;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    fn spec(name: &str, status: Status, region: RegionKind, lines: u16, pats: &[&str]) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            status,
            region,
            lines,
            input: "^❯".into(),
            patterns: pats.iter().map(|s| s.to_string()).collect(),
            unless: vec![],
            settle_ms: 0,
        }
    }

    #[test]
    fn a_title_rule_reads_the_window_title_and_not_the_screen() {
        let mut ready = spec("ready", Status::Idle, RegionKind::Title, 0, &["^◇ Ready"]);
        ready.unless = vec!["later".into()];
        let set = RuleSet::compile(&[ready]).unwrap();
        let screen = rows("◇ Ready\n");
        assert_eq!(set.evaluate(&screen).decided, None, "the rows are not the title");
        assert_eq!(
            set.evaluate_titled(&rows("busy"), "◇ Ready (repo)").decided,
            Some((Status::Idle, "ready".into()))
        );
        assert_eq!(set.evaluate_titled(&rows(""), "◇ Ready later").decided, None);
        let why = set.explain_titled(&rows("x"), "◇ Ready (repo)");
        assert_eq!(why[0].region, "the window title");
        assert_eq!(why[0].text, vec!["◇ Ready (repo)".to_string()]);
        assert!(why[0].matched, "{}", why[0].detail);
    }

    #[test]
    fn bottom_region_ends_at_the_last_row_with_text() {
        let set = RuleSet::compile(&[spec("w", Status::Working, RegionKind::Bottom, 1, &["busy"])])
            .unwrap();
        let screen = rows("a\nbusy\n\n\n");
        assert_eq!(set.evaluate(&screen).decided, Some((Status::Working, "w".into())));
        let screen = rows("busy\nnot\n\n");
        assert_eq!(set.evaluate(&screen).decided, None);
    }

    #[test]
    fn above_input_skips_the_box_border_and_uses_the_lowest_input_row() {
        let set = RuleSet::compile(&[spec(
            "spin",
            Status::Working,
            RegionKind::AboveInput,
            2,
            &["^\\S \\w+…"],
        )])
        .unwrap();
        let screen = rows("❯ old prompt\n✻ Thinking…\n\n────\n❯ \n────\n  footer");
        let report = set.explain(&screen);
        assert!(report[0].matched, "{report:?}");
        assert_eq!(report[0].text, vec!["✻ Thinking…", ""]);
        assert!(report[0].region.contains("rows 2-3"), "{}", report[0].region);
    }

    #[test]
    fn unless_vetoes_and_first_rule_wins() {
        let mut a = spec("a", Status::NeedsInput, RegionKind::Screen, 0, &["x"]);
        a.unless = vec!["y".into()];
        let b = spec("b", Status::Idle, RegionKind::Screen, 0, &["x"]);
        let set = RuleSet::compile(&[a, b]).unwrap();
        assert_eq!(set.evaluate(&rows("x")).decided, Some((Status::NeedsInput, "a".into())));
        assert_eq!(set.evaluate(&rows("x y")).decided, Some((Status::Idle, "b".into())));
        let why = set.explain(&rows("x y"));
        assert!(why[0].detail.contains("unless"), "{why:?}");
    }

    #[test]
    fn bad_rules_are_errors_naming_the_rule() {
        let bad = spec("oops", Status::Idle, RegionKind::Bottom, 3, &["("]);
        let err = RuleSet::compile(&[bad]).unwrap_err().to_string();
        assert!(err.contains("rule 'oops'") && err.contains("\"(\""), "{err}");
        let mut no_input = spec("box", Status::Idle, RegionKind::AboveInput, 3, &["x"]);
        no_input.input.clear();
        assert!(RuleSet::compile(&[no_input]).unwrap_err().to_string().contains("input"));
    }

    #[test]
    fn fingerprint_ignores_spinners_timers_and_counters() {
        let a = rows("⠋ Thinking… (3s · ↓ 17 tokens)");
        let b = rows("⠙ Thinking… (4s · ↓ 29 tokens)");
        let c = rows("⠙ Thinking… (4s · ↓ 29 tokens)\nnew words");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&b), fingerprint(&c));
    }
}
