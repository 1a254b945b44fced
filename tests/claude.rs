//! The badge of a real Claude Code, end to end: corral runs the real CLI in a real PTY, talking to
//! a local mock of the Anthropic API (tests/fixtures/mock_anthropic.py) that scripts a reply with
//! text and a `Write` tool call (which needs permission), then a long streamed reply. The badge is
//! checked against the mock's own log of when it was streaming and when it was waiting.
//!
//! Needs the `claude` CLI: from CORRAL_TEST_AGENTS_BIN (a directory), PATH, or node_modules/.bin
//! in the repository or in .ci/agents (where `scripts/setup.sh` installs the pinned version).
//! Without it the test says so and passes.

#![allow(clippy::unwrap_used)]

mod common;

use common::live::*;
use common::*;

#[test]
fn claude_code_badge_follows_permission_prompt_and_streaming_against_the_mock_log() {
    let clis = agent_clis("claude");
    if clis.is_empty() {
        eprintln!(
            "SKIPPED claude_code_badge…: no `claude` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return;
    }
    // The pinned release and the newest (scripts/setup.sh installs both): a failure says which.
    for cli in clis {
        eprintln!("with {}: {}", cli.display(), version_of(&cli));
        badge_against_the_mock(&cli);
    }
}

fn badge_against_the_mock(claude: &std::path::Path) {
    let env = Env::new();
    let root = env.root();
    let wts = root.join("wts");
    let worktree = wts.join("cc");
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([
        {
            "text": "I will create the file.",
            "tool": "Write",
            "input": {"file_path": worktree.join("hello.txt"), "content": "hello from the mock\n"},
            "delay": 1.0
        },
        {
            "text": "Done. hello.txt now greets whoever reads it. This reply streams slowly, a few words at a time, so that the badge has a long stretch of streaming to show as working before the turn ends and the agent waits for its next prompt.",
            "chunks": 25,
            "chunk_delay": 0.15,
            "delay": 1.0
        }
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mock = Mock::start("mock_anthropic.py", port, &root.join("script.json"), &log_path);

    offline_claude(&env, claude, port, &wts);

    let out = env.ok(&[
        "new",
        "create hello.txt",
        "--agent",
        "claude",
        "--name",
        "cc",
        "--detach",
        "--size",
        "100x30",
    ]);
    assert_eq!(out.trim(), "cc");
    let seen = record_badge(&env, "cc", |seen| {
        // The permission prompt: needs-input.
        wait_for("needs-input at the permission prompt", || {
            saw_after(seen, "needs-input", 0.0).then_some(())
        });
        // The PermissionRequest hook may come a moment before the prompt is drawn.
        env.wait_tail("cc", |t| t.contains("Do you want to create hello.txt?"));
        assert!(!worktree.join("hello.txt").exists(), "nothing written before permission");
        // Grant it (Enter on "1. Yes"), and wait for the end of the turn.
        env.ok(&["send", "cc", ""]);
        wait_idle_after_long_reply(&env, "cc", seen, &log_path);
        // Claude Code reports its own state to a terminal that answers its probe (`OSC 7501`);
        // corral answers and reads the reports.
        wait_for("Claude Code's own report that its turn is done", || {
            env.ok(&["status", "cc", "--explain"])
                .contains("program status (OSC 7501): done")
                .then_some(())
        });
    });
    drop(mock);

    let log = mock_log(&log_path);
    let why = format!("badge: {seen:?}\nmock: {log:?}\nscreen:\n{}", env.tail("cc"));
    let asked_from = when(&log, "stream_start", 0).unwrap();
    let resumed = when(&log, "request", 1).unwrap();
    eprintln!("{why}");
    assert_eq!(order(&seen), ["working", "needs-input", "working", "idle"], "{why}");
    let (work, ask, idle) = (nth(&seen, 0), nth(&seen, 1), nth(&seen, 3));
    // Each check below is strict about what an `ls` proves (a status seen by an `ls` was there
    // before it returned; one first seen was not there when the previous `ls` was sent), and the
    // mock's pauses (a second before each reply) leave room for slow polls.
    // working came with the first request, before the tool call was sent;
    assert!(work.after < asked_from + 1.0, "{why}");
    // needs-input only once the model asked (it sends nothing in the first second), and before
    // the agent went on;
    assert!(ask.sent > asked_from, "needs-input before the model asked: {why}");
    assert!(ask.after < resumed, "{why}");
    // (from its screen, its hook, or its own report to the terminal: `OSC 7501`, which it sends
    // once corral answers its probe)
    assert!(
        ask.reason.contains("permission prompt")
            || ask.reason.contains("Permission")
            || ask.reason.contains("program status: blocked permission"),
        "{}",
        ask.reason
    );
    // working again after permission, all through the long reply, idle only after it ended.
    assert_working_through_long_reply(&seen, &log, &why);
    assert!(
        ["Stop", "input box", "program status: done"].iter().any(|r| idle.reason.contains(r)),
        "{}",
        idle.reason
    );
    assert_eq!(
        std::fs::read_to_string(worktree.join("hello.txt")).unwrap(),
        "hello from the mock\n",
        "{why}"
    );
}

/// Claude Code offline, as profile `claude`: an API key it has approved, onboarding done, the
/// main repository trusted (a corral worktree is a linked worktree: trust is looked up at the
/// main root), talking to the mock on `port`; `fork` continues a conversation under the fork's
/// own session id.
fn offline_claude(env: &Env, claude: &std::path::Path, port: u16, wts: &std::path::Path) {
    let key = "sk-ant-corral-test-0123456789abcdefghij";
    let claude_json = serde_json::json!({
        "hasCompletedOnboarding": true,
        "customApiKeyResponses": {"approved": [&key[key.len() - 20..]], "rejected": []},
        "projects": {env.repo.display().to_string(): {"hasTrustDialogAccepted": true}}
    });
    std::fs::write(env.home.join(".claude.json"), claude_json.to_string()).unwrap();
    env.write_config(&format!(
        r#"
[worktree]
dir = "{wts}"
[agents.claude]
command = ["{claude}", "--permission-mode", "manual", "--session-id", "{{session}}"]
fork = ["{claude}", "--permission-mode", "manual", "--resume", "{{parent_session}}", "--fork-session", "--session-id", "{{session}}"]
[agents.claude.env]
ANTHROPIC_BASE_URL = "http://127.0.0.1:{port}"
ANTHROPIC_API_KEY = "{key}"
DISABLE_AUTOUPDATER = "1"
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1"
"#,
        wts = wts.display(),
        claude = claude.display(),
    ));
}

#[test]
fn a_fork_of_a_claude_code_agent_continues_its_conversation() {
    let clis = agent_clis("claude");
    if clis.is_empty() {
        eprintln!("SKIPPED a_fork_of_a_claude_code_agent…: no `claude` CLI (see the test above)");
        return;
    }
    for cli in clis {
        eprintln!("with {}: {}", cli.display(), version_of(&cli));
        fork_continues_the_conversation(&cli);
    }
}

fn fork_continues_the_conversation(claude: &std::path::Path) {
    let env = Env::new();
    let root = env.root();
    let wts = root.join("wts");
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([
        {"text": "Noted: the word is PELICAN-7."},
        {"text": "The word was PELICAN-7."}
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let _mock = Mock::start("mock_anthropic.py", port, &root.join("script.json"), &log_path);
    offline_claude(&env, claude, port, &wts);

    env.ok(&[
        "new",
        "remember the word PELICAN-7",
        "--agent",
        "claude",
        "--name",
        "cc",
        "--detach",
    ]);
    let requests = |log: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "request")
            .collect()
    };
    wait_or(
        "the original's turn to end",
        || (when(&mock_log(&log_path), "stream_end", 0).is_some()).then_some(()),
        || env.tail("cc"),
    );
    env.wait_tail("cc", |t| t.contains("Noted: the word is PELICAN-7."));
    wait_or(
        "the original to be idle",
        || (env.agent_json("cc")["status"] == "idle").then_some(()),
        || env.tail("cc"),
    );

    let out = env.run(&["fork", "cc", "--name", "cf", "what was the word?", "--detach"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "no note: {}", String::from_utf8_lossy(&out.stderr));
    let first = wait_or(
        "the fork's first request",
        || requests(&log_path).into_iter().find(|r| r["index"] == 1),
        || env.tail("cf"),
    );
    let texts: Vec<String> = first["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();
    let why = format!("texts: {texts:?}\nscreen:\n{}", env.tail("cf"));
    let at = |needle: &str| texts.iter().position(|t| t.contains(needle));
    let asked =
        at("remember the word PELICAN-7").unwrap_or_else(|| panic!("original prompt: {why}"));
    let noted = at("Noted: the word is PELICAN-7.").unwrap_or_else(|| panic!("its reply: {why}"));
    let now = at("what was the word?").unwrap_or_else(|| panic!("the fork's prompt: {why}"));
    assert!(asked < noted && noted < now, "in order: {why}");
    env.wait_tail("cf", |t| t.contains("The word was PELICAN-7."));
}

#[test]
fn enter_on_a_typed_prompt_shows_working_before_the_hook_and_enter_that_submits_nothing_does_not() {
    let clis = agent_clis("claude");
    if clis.is_empty() {
        eprintln!("SKIPPED enter_on_a_typed_prompt…: no `claude` CLI (see the first test)");
        return;
    }
    for cli in clis {
        eprintln!("with {}: {}", cli.display(), version_of(&cli));
        enter_shows_working_before_the_hook(&cli);
    }
}

fn enter_shows_working_before_the_hook(claude: &std::path::Path) {
    let env = Env::new();
    let root = env.root();
    let wts = root.join("wts");
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([{"text": "Both lines read.", "delay": 0.5}]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let _mock = Mock::start("mock_anthropic.py", port, &root.join("script.json"), &log_path);
    offline_claude(&env, claude, port, &wts);
    // The agent is held stopped for a while below: the key must not give way meanwhile.
    let config = env.home.join(".config/corral/config.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("\n[status]\nkey_confirm_ms = 600000\n");
    std::fs::write(&config, toml).unwrap();
    env.ok(&["new", "--agent", "claude", "--name", "cc", "--detach", "--size", "100x30"]);
    wait_or(
        "the idle prompt",
        || (env.agent_json("cc")["status"] == "idle").then_some(()),
        || env.tail("cc"),
    );
    let no_key = |what: &str| {
        let (status, signals) = badge_report(&env, "cc");
        let why = format!("{what}: {signals:?}\nscreen:\n{}", env.tail("cc"));
        assert_eq!(status, "idle", "{why}");
        assert!(signals.iter().all(|s| !s.starts_with("key:")), "{why}");
    };
    let seen = record_badge(&env, "cc", |seen| {
        // Enter on the empty prompt submits nothing.
        env.ok(&["send", "cc", ""]);
        no_key("Enter on an empty prompt");
        // A line ended with a backslash: Enter starts a second line.
        env.ok(&["send", "cc", "--no-enter", "first line \\"]);
        env.wait_tail("cc", |t| t.contains("first line \\"));
        env.ok(&["send", "cc", ""]);
        no_key("Enter after a backslash");
        env.wait_tail("cc", |t| t.contains("first line") && !t.contains("first line \\"));
        env.ok(&["send", "cc", "--no-enter", "second line"]);
        env.wait_tail("cc", |t| t.contains("second line"));
        // The prompt goes: with the agent stopped, nothing but the key can say so.
        signal_agent(&env, "cc", "-STOP");
        env.ok(&["send", "cc", ""]);
        let (status, signals) = badge_report(&env, "cc");
        let why = format!("{signals:?}\nmock: {:?}", mock_log(&log_path));
        assert_eq!(status, "working", "{why}");
        assert!(signals[0].contains("key: prompt submitted"), "{why}");
        assert!(when(&mock_log(&log_path), "request", 0).is_none(), "{why}");
        signal_agent(&env, "cc", "-CONT");
        // The agent takes it and its hook agrees; the turn ends.
        wait_or(
            "the reply",
            || when(&mock_log(&log_path), "stream_end", 0),
            || explain(&env, "cc", seen, &log_path),
        );
        wait_or(
            "idle after the reply",
            || {
                let end = when(&mock_log(&log_path), "stream_end", 0)?;
                seen.lock()
                    .unwrap()
                    .iter()
                    .any(|o| o.status == "idle" && o.after > end)
                    .then_some(())
            },
            || explain(&env, "cc", seen, &log_path),
        );
    });
    let why = format!("badge: {seen:?}\nmock: {:?}", mock_log(&log_path));
    // No flicker: idle through the keys that submitted nothing, working once, idle at the end.
    assert_eq!(order(&seen), ["idle", "working", "idle"], "{why}");
    let texts = std::fs::read_to_string(&log_path).unwrap();
    assert!(texts.contains("first line") && texts.contains("second line"), "{texts}");
}
