//! The built-in screen rules against screens of the real agent CLIs.
//!
//! Claude Code (2.1.330) and Codex (0.169.0) screens were captured from the real CLIs running in
//! corral at 100x30 (`examples/capture_screens.rs`), talking to local mocks of their APIs; the
//! newest Claude Code's (2.1.332, with its version in the file name) at 120x40 from the screens
//! the status-truth instrument sampled through `corral attach`, and its trust dialog from
//! `corral tail`. Gemini CLI's (0.61.0) at 120x40 from `corral tail` of the real CLI against
//! tests/fixtures/mock_gemini.py. OpenCode (1.18.33) and Aider (0.86.2) screens were captured from
//! the real CLIs in tmux at 120x40 against tests/fixtures/mock_chat.py.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use corral::status::{RuleSet, Status};

fn rules(profile: &str) -> RuleSet {
    let loaded = corral::config::load(Path::new("/nonexistent/config.toml"), None).unwrap();
    let config = &loaded.config;
    RuleSet::compile(&config.agents[profile].status_rules(&config.status)).unwrap()
}

fn screen(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows: Vec<String> = text.lines().map(str::to_string).collect();
    // Fixtures are whole screens at the size in their name.
    // `<agent>[-<version>]-<what>.<cols>x<rows>.txt`: the size is the part before `.txt`.
    let size = name.rsplit('.').nth(1).unwrap();
    let (cols, n) = size.split_once('x').unwrap();
    assert_eq!(rows.len(), n.parse::<usize>().unwrap(), "{name}: rows");
    let cols: usize = cols.parse().unwrap();
    assert!(rows.iter().all(|r| r.chars().count() <= cols), "{name}: a row wider than {cols}");
    rows
}

/// (profile, fixture, expected status; None: no rule matches and activity decides).
const CASES: &[(&str, &str, Option<Status>)] = &[
    ("claude", "claude-idle-fresh.100x30.txt", Some(Status::Idle)),
    ("claude", "claude-thinking-start.100x30.txt", Some(Status::Working)),
    ("claude", "claude-working-streaming.100x30.txt", Some(Status::Working)),
    ("claude", "claude-working-after-tool.100x30.txt", Some(Status::Working)),
    ("claude", "claude-working-custom-verb.100x30.txt", Some(Status::Working)),
    ("claude", "claude-permission.100x30.txt", Some(Status::NeedsInput)),
    ("claude", "claude-idle-done.100x30.txt", Some(Status::Idle)),
    ("claude", "claude-interrupted.100x30.txt", Some(Status::Idle)),
    // The newest Claude Code at this writing (2.1.332): its trust dialog numbers nothing and
    // puts the cursor on "No, exit"; its footer reads differently.
    ("claude", "claude-2.1.332-trust.100x30.txt", Some(Status::NeedsInput)),
    ("claude", "claude-2.1.332-idle-fresh.120x40.txt", Some(Status::Idle)),
    ("claude", "claude-2.1.332-working.120x40.txt", Some(Status::Working)),
    ("claude", "claude-2.1.332-permission.120x40.txt", Some(Status::NeedsInput)),
    ("claude", "claude-2.1.332-idle-done.120x40.txt", Some(Status::Idle)),
    ("codex", "codex-trust.100x30.txt", Some(Status::NeedsInput)),
    ("codex", "codex-idle-fresh.100x30.txt", Some(Status::Idle)),
    ("codex", "codex-working.100x30.txt", Some(Status::Working)),
    ("codex", "codex-approval.100x30.txt", Some(Status::NeedsInput)),
    ("codex", "codex-idle-done.100x30.txt", Some(Status::Idle)),
    // Esc on an approval (sampled by the status-truth instrument): idle at once, no settling.
    ("codex", "codex-0.169.0-interrupted.120x40.txt", Some(Status::Idle)),
    // Gemini CLI 0.61.0, captured in corral against tests/fixtures/mock_gemini.py: the working
    // line while it waits for the model and while the answer streams, its approval dialog for a
    // shell command, the command list that "/" opens under the input box.
    ("gemini", "gemini-0.61.0-idle-fresh.120x40.txt", Some(Status::Idle)),
    ("gemini", "gemini-0.61.0-thinking.120x40.txt", Some(Status::Working)),
    ("gemini", "gemini-0.61.0-approval.120x40.txt", Some(Status::NeedsInput)),
    ("gemini", "gemini-0.61.0-working.120x40.txt", Some(Status::Working)),
    ("gemini", "gemini-0.61.0-idle-done.120x40.txt", Some(Status::Idle)),
    ("gemini", "gemini-0.61.0-command-menu.120x40.txt", Some(Status::Idle)),
    ("gemini", "gemini-0.61.0-typing.120x40.txt", Some(Status::Idle)),
    // Written from documentation, not captured:
    ("aider", "aider-0.86.2-idle-fresh.120x40.txt", Some(Status::Idle)),
    ("aider", "aider-0.86.2-waiting.120x40.txt", Some(Status::Working)),
    ("aider", "aider-0.86.2-confirm.120x40.txt", Some(Status::NeedsInput)),
    // Streaming: no rule; the words arriving say working.
    ("aider", "aider-0.86.2-streaming.120x40.txt", None),
    ("aider", "aider-0.86.2-idle-done.120x40.txt", Some(Status::Idle)),
    ("opencode", "opencode-1.18.33-idle-fresh.120x40.txt", Some(Status::Idle)),
    ("opencode", "opencode-1.18.33-working.120x40.txt", Some(Status::Working)),
    ("opencode", "opencode-1.18.33-permission.120x40.txt", Some(Status::NeedsInput)),
    ("opencode", "opencode-1.18.33-idle-done.120x40.txt", Some(Status::Idle)),
];

#[test]
fn builtin_rules_read_every_fixture_screen_right() {
    let mut wrong = Vec::new();
    for (profile, fixture, want) in CASES {
        let rows = screen(fixture);
        let got = rules(profile).evaluate(&rows).decided.map(|(s, _)| s);
        if got != *want {
            let why: Vec<String> = rules(profile)
                .explain(&rows)
                .iter()
                .map(|r| format!("  {} ({}): {} [{}]", r.name, r.status, r.matched, r.detail))
                .collect();
            wrong.push(format!("{fixture}: want {want:?}, got {got:?}\n{}", why.join("\n")));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_builtin_agent_profile_has_rules_and_a_fixture_for_each_state() {
    for profile in ["claude", "codex", "gemini", "aider", "opencode"] {
        assert!(!rules(profile).is_empty(), "{profile} has no rules");
        for want in [Status::Idle, Status::NeedsInput] {
            assert!(
                CASES.iter().any(|(p, _, s)| *p == profile && *s == Some(want)),
                "{profile}: no fixture for {want}"
            );
        }
    }
}

#[test]
fn an_unusual_spinner_word_is_working_by_the_spinner_rule_alone() {
    // The user replaced Claude Code's spinner verbs ("Frobnicating…"): the spinner rule must
    // match without knowing the word, not only the "esc to interrupt" footer.
    let rows = screen("claude-working-custom-verb.100x30.txt");
    assert!(rows.iter().any(|r| r.contains("Frobnicating…")));
    let report = rules("claude").explain(&rows);
    let spinner = report.iter().find(|r| r.name == "spinner").unwrap();
    assert!(spinner.matched, "{spinner:?}");
    // And with the footer gone (an older or narrower layout), the verdict stays working.
    let no_footer: Vec<String> = rows.iter().map(|r| r.replace("esc to interrupt", "")).collect();
    assert_eq!(
        rules("claude").evaluate(&no_footer).decided,
        Some((Status::Working, "spinner".to_string()))
    );
}

#[test]
fn a_finished_reply_ending_in_an_ellipsis_is_not_a_spinner() {
    let mut rows = screen("claude-idle-done.100x30.txt");
    let i = rows.iter().position(|r| r.starts_with("✻ Churned")).unwrap();
    rows[i] = "● Let me know what else to do…".into();
    assert_eq!(rules("claude").evaluate(&rows).decided.map(|(s, _)| s), Some(Status::Idle));
}

#[test]
fn typing_into_the_input_box_keeps_an_idle_agent_idle() {
    // Derived from the fixtures: the user's unsent text in the input row.
    let cases = [
        ("claude", "claude-idle-fresh.100x30.txt", "❯\u{a0}", "❯ fix the login test"),
        (
            "codex",
            "codex-idle-fresh.100x30.txt",
            "› Ask Codex to do anything",
            "› fix the login test",
        ),
        (
            "gemini",
            "gemini-0.61.0-idle-fresh.120x40.txt",
            ">   Type your message or @path/to/file",
            ">   fix the login test",
        ),
        ("aider", "aider-0.86.2-idle-fresh.120x40.txt", ">", "> fix the login test"),
        (
            "opencode",
            "opencode-1.18.33-idle-fresh.120x40.txt",
            "Ask anything… \"Fix broken tests\"",
            "fix the login test",
        ),
    ];
    for (profile, fixture, from, to) in cases {
        let rows: Vec<String> = screen(fixture).iter().map(|r| r.replacen(from, to, 1)).collect();
        assert!(
            rows.iter().any(|r| r.contains("fix the login test")),
            "{fixture}: {from:?} not found"
        );
        assert_eq!(
            rules(profile).evaluate(&rows).decided.map(|(s, _)| s),
            Some(Status::Idle),
            "{fixture}"
        );
    }
}

#[test]
fn aider_prompt_with_text_after_it_is_idle_only_once_the_words_settle() {
    // Aider leaves "> the prompt" on its last line when it has taken it, until its spinner shows,
    // and again for a moment between the spinner and the answer: idle, but only once the words
    // have been still a while (an idle agent being typed into stays idle meanwhile).
    let rows: Vec<String> = screen("aider-0.86.2-waiting.120x40.txt")
        .into_iter()
        .filter(|r| !r.contains("Waiting for"))
        .chain(std::iter::once(String::new()))
        .collect();
    assert!(rows.iter().any(|r| r == "> create hello.txt"));
    let eval = rules("aider").evaluate(&rows);
    assert_eq!(eval.decided, Some((Status::Idle, "prompt with text".to_string())));
    assert!(!eval.settle.is_zero());
    // The empty prompt is idle at once.
    let eval = rules("aider").evaluate(&screen("aider-0.86.2-idle-done.120x40.txt"));
    assert_eq!(eval.decided, Some((Status::Idle, "prompt".to_string())));
    assert!(eval.settle.is_zero());
}

#[test]
fn a_dialog_no_rule_knows_is_needs_input_for_every_profile_with_rules() {
    // Made up, as a new release or a new kind of question would draw it: a selection cursor on
    // choices and a confirm/cancel hint, over (or under) the agent's idle screen.
    let dialogs = [
        [
            "Open the pod bay doors?",
            "❯ Yes, open them",
            "  No, keep them shut",
            "Enter to confirm · Esc to cancel",
        ],
        ["Which branch should I use?", "› 1. main", "  2. develop", "Press enter to select"],
        ["Overwrite notes.txt? (y/n)", "▶ y", "  n", ""],
    ];
    let idle = [
        ("claude", "claude-idle-done.100x30.txt"),
        ("claude", "claude-2.1.332-idle-done.120x40.txt"),
        ("codex", "codex-idle-done.100x30.txt"),
        ("gemini", "gemini-0.61.0-idle-fresh.120x40.txt"),
        ("opencode", "opencode-1.18.33-idle-done.120x40.txt"),
    ];
    for (profile, fixture) in idle {
        for dialog in &dialogs {
            let mut rows = screen(fixture);
            let last = rows.iter().rposition(|r| !r.trim().is_empty()).unwrap();
            let at = (last + 1).min(rows.len() - dialog.len());
            for (i, line) in dialog.iter().enumerate() {
                rows[at + i] = format!(" {line}");
            }
            assert_eq!(
                rules(profile).evaluate(&rows).decided.map(|(s, _)| s),
                Some(Status::NeedsInput),
                "{fixture} with {dialog:?}"
            );
        }
    }
}

#[test]
fn codex_interrupted_is_idle_without_waiting_for_the_words_to_settle() {
    // The composer rule waits for Codex's streamed words to settle; an interrupted turn has none
    // coming, so its own rule decides, with no settle period.
    let rows = screen("codex-0.169.0-interrupted.120x40.txt");
    let eval = rules("codex").evaluate(&rows);
    assert_eq!(eval.decided, Some((Status::Idle, "interrupted".to_string())));
    assert!(eval.settle.is_zero());
    // A later turn streaming its answer under it: the old line says nothing of that turn.
    let mut later = rows.clone();
    let at = later.iter().position(|r| r.contains("Conversation interrupted")).unwrap();
    later[at + 2] = "• Sure, here is what I would do instead".into();
    let eval = rules("codex").evaluate(&later);
    assert_eq!(eval.decided, Some((Status::Idle, "composer".to_string())));
    assert!(!eval.settle.is_zero());
}

fn key_rules(profile: &str) -> corral::status::KeyRules {
    let loaded = corral::config::load(Path::new("/nonexistent/config.toml"), None).unwrap();
    corral::status::KeyRules::compile(&loaded.config.agents[profile].key_rules).unwrap()
}

/// Replace the input row (the last row starting with `mark`) of a fixture with `text`.
fn with_input(mut rows: Vec<String>, mark: &str, text: &str) -> Vec<String> {
    let i = rows.iter().rposition(|r| r.starts_with(mark)).unwrap();
    rows[i] = text.to_string();
    rows
}

/// (profile, what is on screen, the screen, the key, the rule that takes it).
type KeyCase = (&'static str, &'static str, Vec<String>, &'static [u8], Option<&'static str>);

#[test]
fn builtin_key_rules_tell_a_submit_or_an_approval_from_keys_that_do_neither() {
    let enter = b"\r".as_slice();
    let typed = screen("claude-typed.120x40.txt");
    let aider_done = screen("aider-0.86.2-idle-done.120x40.txt");
    let aider_confirm = screen("aider-0.86.2-confirm.120x40.txt");
    let gemini_typed = screen("gemini-0.61.0-typing.120x40.txt");
    let gemini_approval = screen("gemini-0.61.0-approval.120x40.txt");
    // None: the badge must not move on the key.
    let cases: Vec<KeyCase> = vec![
        ("claude", "a typed prompt", typed.clone(), enter, Some("prompt submitted")),
        ("claude", "an empty prompt", screen("claude-idle-fresh.100x30.txt"), enter, None),
        (
            "claude",
            "an empty prompt under an earlier one",
            screen("claude-idle-done.100x30.txt"),
            enter,
            None,
        ),
        (
            "claude",
            "the newest release's empty prompt",
            screen("claude-2.1.332-idle-done.120x40.txt"),
            enter,
            None,
        ),
        ("claude", "the / command picker", screen("claude-command-picker.120x40.txt"), enter, None),
        (
            "claude",
            "a line continued with a backslash",
            with_input(typed.clone(), "❯", "❯\u{a0}first line \\"),
            enter,
            None,
        ),
        (
            "claude",
            "a file mention being completed",
            with_input(typed.clone(), "❯", "❯\u{a0}look at @src/ma"),
            enter,
            None,
        ),
        ("claude", "a shell line", with_input(typed.clone(), "❯", "❯\u{a0}!ls"), enter, None),
        ("claude", "a key that is not Enter", typed.clone(), b"x", None),
        (
            "claude",
            "Esc while a turn runs",
            screen("claude-working-streaming.100x30.txt"),
            b"\x1b",
            Some("interrupted"),
        ),
        ("claude", "Esc at the idle prompt", typed.clone(), b"\x1b", None),
        (
            "codex",
            "Esc while a turn runs",
            screen("codex-working.100x30.txt"),
            b"\x1b",
            Some("interrupted"),
        ),
        (
            "claude",
            "1 on a permission",
            screen("claude-permission.100x30.txt"),
            b"1",
            Some("approved"),
        ),
        (
            "claude",
            "Enter on a permission's Yes",
            screen("claude-permission.100x30.txt"),
            enter,
            Some("approved"),
        ),
        ("claude", "3 (No) on a permission", screen("claude-permission.100x30.txt"), b"3", None),
        (
            "claude",
            "Enter on a permission's No",
            with_input(screen("claude-permission.100x30.txt"), " ❯ 1. Yes", "   1. Yes")
                .into_iter()
                .map(|r| if r == "   3. No" { " ❯ 3. No".to_string() } else { r })
                .collect(),
            enter,
            None,
        ),
        (
            "claude",
            "the newest release's permission",
            screen("claude-2.1.332-permission.120x40.txt"),
            b"1",
            Some("approved"),
        ),
        (
            "claude",
            "Enter on the trust dialog",
            screen("claude-2.1.332-trust.100x30.txt"),
            enter,
            None,
        ),
        (
            "codex",
            "a typed prompt",
            screen("codex-0.169.0-typed.120x40.txt"),
            enter,
            Some("prompt submitted"),
        ),
        (
            "codex",
            "a / command",
            with_input(screen("codex-0.169.0-typed.120x40.txt"), "›", "› /model"),
            enter,
            None,
        ),
        ("codex", "y on an approval", screen("codex-approval.100x30.txt"), b"y", Some("approved")),
        ("codex", "p on an approval", screen("codex-approval.100x30.txt"), b"p", Some("approved")),
        (
            "codex",
            "Enter on an approval's Yes",
            screen("codex-approval.100x30.txt"),
            enter,
            Some("approved"),
        ),
        ("codex", "n on an approval", screen("codex-approval.100x30.txt"), b"n", None),
        ("codex", "y on the composer", screen("codex-0.169.0-typed.120x40.txt"), b"y", None),
        // Aider 0.86.2: its prompt is the last line; Enter answers its questions.
        (
            "aider",
            "a typed prompt",
            with_input(aider_done.clone(), ">", "> explain the code"),
            enter,
            Some("prompt submitted"),
        ),
        ("aider", "an empty prompt", aider_done.clone(), enter, None),
        (
            "aider",
            "a fresh empty prompt",
            screen("aider-0.86.2-idle-fresh.120x40.txt"),
            enter,
            None,
        ),
        ("aider", "a / command", with_input(aider_done.clone(), ">", "> /add hi.txt"), enter, None),
        ("aider", "a ! shell line", with_input(aider_done.clone(), ">", "> !ls"), enter, None),
        (
            "aider",
            "a { that opens a multi-line message",
            with_input(aider_done.clone(), ">", "> {"),
            enter,
            None,
        ),
        (
            "aider",
            "a typed prompt in architect mode",
            with_input(aider_done.clone(), ">", "architect> plan it"),
            enter,
            Some("prompt submitted"),
        ),
        ("aider", "a key that is not Enter", with_input(aider_done, ">", "> hi"), b"x", None),
        ("aider", "Enter on its question", aider_confirm.clone(), enter, Some("answered")),
        (
            "aider",
            "Enter on its question with an answer typed",
            with_input(
                aider_confirm.clone(),
                "Create new file?",
                "Create new file? (Y)es/(N)o [Yes]: n",
            ),
            enter,
            Some("answered"),
        ),
        ("aider", "y on its question (Enter sends it)", aider_confirm, b"y", None),
        (
            "aider",
            "Enter while it waits for the model",
            screen("aider-0.86.2-waiting.120x40.txt"),
            enter,
            None,
        ),
        (
            "aider",
            "Enter while it streams",
            screen("aider-0.86.2-streaming.120x40.txt"),
            enter,
            None,
        ),
        // Gemini CLI 0.61.0: the input box is the last one between ▄ and ▀ rows; its placeholder
        // is not faint.
        ("gemini", "a typed prompt", gemini_typed.clone(), enter, Some("prompt submitted")),
        (
            "gemini",
            "a typed prompt under earlier ones",
            with_input(screen("gemini-0.61.0-idle-done.120x40.txt"), " >", " > now say more"),
            enter,
            Some("prompt submitted"),
        ),
        (
            "gemini",
            "a typed prompt in YOLO mode",
            with_input(gemini_typed.clone(), " >", " * go on"),
            enter,
            Some("prompt submitted"),
        ),
        ("gemini", "the placeholder", screen("gemini-0.61.0-idle-fresh.120x40.txt"), enter, None),
        (
            "gemini",
            "the placeholder under an earlier prompt",
            screen("gemini-0.61.0-idle-done.120x40.txt"),
            enter,
            None,
        ),
        (
            "gemini",
            "the placeholder while a turn runs",
            screen("gemini-0.61.0-working.120x40.txt"),
            enter,
            None,
        ),
        (
            "gemini",
            "the / command list",
            screen("gemini-0.61.0-command-menu.120x40.txt"),
            enter,
            None,
        ),
        ("gemini", "a ! shell line", with_input(gemini_typed.clone(), " >", " > !ls"), enter, None),
        (
            "gemini",
            "shell mode's placeholder",
            with_input(gemini_typed.clone(), " >", " !   Type your shell command"),
            enter,
            None,
        ),
        (
            "gemini",
            "a file mention being completed",
            with_input(gemini_typed.clone(), " >", " > look at @src/ma"),
            enter,
            None,
        ),
        (
            "gemini",
            "a line continued with a backslash",
            with_input(gemini_typed.clone(), " >", " > first line \\"),
            enter,
            None,
        ),
        ("gemini", "a key that is not Enter", gemini_typed, b"x", None),
        (
            "gemini",
            "Enter on an approval's Allow once",
            gemini_approval.clone(),
            enter,
            Some("approved"),
        ),
        ("gemini", "1 on an approval", gemini_approval.clone(), b"1", Some("approved")),
        ("gemini", "2 on an approval", gemini_approval.clone(), b"2", Some("approved")),
        ("gemini", "3 (No, suggest changes) on an approval", gemini_approval.clone(), b"3", None),
        (
            "gemini",
            "Enter on an approval's No",
            gemini_approval
                .iter()
                .map(|r| {
                    r.replace("● 1. Allow once", "  1. Allow once")
                        .replace("  3. No, suggest changes", "● 3. No, suggest changes")
                })
                .collect(),
            enter,
            None,
        ),
    ];
    let mut wrong = Vec::new();
    for (profile, what, rows, key, want) in cases {
        // What the badge shows when the key comes: what the screen says.
        let shown = rules(profile).evaluate(&rows).decided.map_or(Status::Idle, |(s, _)| s);
        let got = key_rules(profile).evaluate(key, &rows, shown).map(|k| {
            let to = if k.name == "interrupted" { Status::Idle } else { Status::Working };
            assert_eq!(k.status, to, "{profile}, {what}");
            k.name
        });
        if got.as_deref() != want {
            wrong.push(format!("{profile}, {what}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn gemini_cli_window_title_decides_over_half_drawn_frames() {
    // Gemini CLI writes a frame in pieces (erase the box, then draw it again); the screen between
    // two pieces was captured from the real CLI's output. Its window title says the state at once.
    let set = rules("gemini");
    let decided = |rows: &[String], title: &str| set.evaluate_titled(rows, title).decided;
    let (ready, working, asking, plain) = (
        "◇  Ready (harness)                                                              ",
        "✦  Working… (harness)                                                           ",
        "✋  Action Required (harness)                                                    ",
        "Gemini CLI (harness)                                                            ",
    );
    // Mid-turn, the box erased: no screen rule reads it (activity would decide), the title says
    // the turn goes on.
    let mid = screen("gemini-0.61.0-half-drawn-turn.120x40.txt");
    assert_eq!(decided(&mid, working), Some((Status::Working, "title: working".into())));
    assert_eq!(decided(&mid, ""), None);
    // At start-up, a blank frame: activity would read it as work; the title says ready.
    let blank = screen("gemini-0.61.0-half-drawn-start.120x40.txt");
    assert_eq!(decided(&blank, ready), Some((Status::Idle, "title: ready".into())));
    assert_eq!(decided(&blank, ""), None);
    let approval = screen("gemini-0.61.0-approval.120x40.txt");
    assert_eq!(
        decided(&approval, asking),
        Some((Status::NeedsInput, "title: action required".into()))
    );
    // The title with `ui.dynamicWindowTitle` off says nothing: the screen decides.
    assert_eq!(decided(&approval, plain), Some((Status::NeedsInput, "approval".into())));
    let done = screen("gemini-0.61.0-idle-done.120x40.txt");
    assert_eq!(decided(&done, ready), Some((Status::Idle, "title: ready".into())));
    assert_eq!(
        decided(&screen("gemini-0.61.0-thinking.120x40.txt"), plain),
        Some((Status::Working, "esc to cancel".into()))
    );
    // A dialog drawn while the title still says ready (one Gemini CLI does not count as
    // confirming, or one no rule knows) is still a question.
    assert_eq!(decided(&approval, ready).map(|(s, _)| s), Some(Status::NeedsInput));
    let mut unknown = screen("gemini-0.61.0-idle-fresh.120x40.txt");
    let last = unknown.iter().rposition(|r| !r.trim().is_empty()).unwrap();
    for (i, line) in ["Open the pod bay doors?", "❯ Yes, open them", "  No", "Enter to confirm"]
        .iter()
        .enumerate()
    {
        unknown[last + 1 + i] = format!(" {line}");
    }
    assert_eq!(decided(&unknown, ready).map(|(s, _)| s), Some(Status::NeedsInput));
}
