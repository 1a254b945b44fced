//! The badge of a real Gemini CLI, end to end: corral runs the real CLI in a real PTY against a
//! local mock of the Gemini API (tests/fixtures/mock_gemini.py) that scripts a shell command
//! needing approval, then a long streamed reply. The badge is checked against the mock's own log of
//! when it was streaming and when it was waiting, through to the agent's exit.
//!
//! Needs the `gemini` CLI (found like `claude` in tests/claude.rs); without it the test says so.

#![allow(clippy::unwrap_used)]

mod common;

use common::live::*;
use common::*;

#[test]
fn gemini_cli_badge_follows_approval_streaming_and_exit_against_the_mock_log() {
    let clis = agent_clis("gemini");
    if clis.is_empty() {
        eprintln!(
            "SKIPPED gemini_cli_badge…: no `gemini` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return;
    }
    // The pinned release and the newest (scripts/setup.sh installs both): a failure says which.
    // Each with its window title saying its state (the default: the title rules decide) and with
    // that setting off (the screen rules decide).
    for cli in clis {
        for titles in [true, false] {
            eprintln!("with {}: {}, dynamic title {titles}", cli.display(), version_of(&cli));
            badge_against_the_mock(&cli, titles);
        }
    }
}

/// Gemini CLI offline with a throwaway HOME: the API-key sign-in chosen, folder trust, update
/// checks and usage statistics off, so it starts straight at its input box; `titles`: its
/// `ui.dynamicWindowTitle` (state in the window title, on by default).
fn offline_settings(home: &std::path::Path, titles: bool) {
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    let settings = serde_json::json!({
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": false}},
        "ui": {"dynamicWindowTitle": titles},
        "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
        "privacy": {"usageStatisticsEnabled": false},
        "telemetry": {"enabled": false}
    });
    std::fs::write(home.join(".gemini/settings.json"), settings.to_string()).unwrap();
}

fn badge_against_the_mock(gemini: &std::path::Path, titles: bool) {
    let env = Env::new();
    let root = env.root();
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([
        {
            "text": "I will create the file.",
            "call": "run_shell_command",
            "args": {"command": "echo hello from gemini > hello.txt", "description": "Create hello.txt"},
            "delay": 1.0
        },
        {
            "text": "Done: hello.txt greets whoever reads it. This reply streams slowly, a few words at a time, so that the badge has a long stretch of streaming to show as working before the turn ends.",
            "chunks": 25,
            "chunk_delay": 0.15,
            "delay": 1.0
        },
        {"text": "Nothing more to say.", "delay": 0.5}
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mock = Mock::start("mock_gemini.py", port, &root.join("script.json"), &log_path);
    offline_settings(&env.home, titles);
    // The agent is held stopped for a moment below: a key must not give way meanwhile.
    env.write_config(&format!(
        r#"
[status]
key_confirm_ms = 600000
[agents.gemini]
command = ["{gemini}", "--session-id", "{{session}}"]
[agents.gemini.env]
GEMINI_API_KEY = "corral-test-key"
GOOGLE_GEMINI_BASE_URL = "http://127.0.0.1:{port}"
"#,
        gemini = gemini.display(),
    ));

    let out = env.ok(&[
        "new",
        "create hello.txt",
        "--agent",
        "gemini",
        "--name",
        "gm",
        "--detach",
        "--size",
        "100x30",
    ]);
    assert_eq!(out.trim(), "gm");
    let seen = record_badge(&env, "gm", |seen| {
        wait_or(
            "needs-input at the approval",
            || saw_after(seen, "needs-input", 0.0).then_some(()),
            || explain(&env, "gm", seen, &log_path),
        );
        env.wait_tail("gm", |t| t.contains("Allow execution of"));
        assert!(!env.worktree_of("gm").join("hello.txt").exists(), "nothing ran before approval");
        // Enter on "1. Allow once".
        env.ok(&["send", "gm", ""]);
        wait_idle_after_long_reply(&env, "gm", seen, &log_path);
        // Enter on a typed prompt is working at once, before Gemini CLI draws its working line:
        // with it stopped (it reads no key and draws nothing), the badge can only have it from
        // the key.
        env.ok(&["send", "gm", "--no-enter", "say more"]);
        env.wait_tail("gm", |t| t.lines().any(|l| l.trim() == "> say more"));
        signal_agent(&env, "gm", "-STOP");
        env.ok(&["send", "gm", ""]);
        wait_or(
            "the key's working after Enter on the typed prompt",
            || {
                let a = env.agent_json("gm");
                (a["status"] == "working" && a["status_reason"] == "key: prompt submitted")
                    .then_some(())
            },
            || explain(&env, "gm", seen, &log_path),
        );
        assert!(when(&mock_log(&log_path), "request", 2).is_none(), "Gemini CLI was stopped");
        signal_agent(&env, "gm", "-CONT");
        wait_or(
            "idle after the third reply",
            || {
                let end = when(&mock_log(&log_path), "stream_end", 2)?;
                seen.lock()
                    .unwrap()
                    .iter()
                    .any(|o| o.status == "idle" && o.after > end)
                    .then_some(())
            },
            || explain(&env, "gm", seen, &log_path),
        );
        // Its own way out: the badge says exited once the CLI is gone.
        env.ok(&["send", "gm", "/quit"]);
        wait_or(
            "exited after /quit",
            || saw_after(seen, "exited", 0.0).then_some(()),
            || explain(&env, "gm", seen, &log_path),
        );
    });
    drop(mock);

    let log = mock_log(&log_path);
    let why = format!("badge: {seen:?}\nmock: {log:?}\nscreen:\n{}", env.tail("gm"));
    eprintln!("{why}");
    // Gemini CLI draws its input box a moment before it submits the prompt it was started with:
    // idle until then is what the screen says, and it must end before the prompt reaches the model.
    let first_request =
        log.iter().find(|(_, e, _)| e == "side_request" || e == "request").unwrap().0;
    let skip = usize::from(order(&seen)[0] == "idle");
    if skip == 1 {
        assert!(
            nth(&seen, 1).sent < first_request + 1.0,
            "idle long after the prompt was sent: {why}"
        );
    }
    // /quit clears the screen and draws the session's statistics before the process ends: the
    // frames in between match no rule and may read working for a poll; the badge ends exited.
    assert_eq!(
        order(&seen)[skip..skip + 4],
        ["working", "needs-input", "working", "idle"],
        "{why}"
    );
    assert_eq!(order(&seen).last(), Some(&"exited"), "{why}");
    let (work, ask, idle) = (nth(&seen, skip), nth(&seen, skip + 1), nth(&seen, skip + 3));
    let asked_from = when(&log, "stream_start", 0).unwrap();
    let resumed = when(&log, "request", 1).unwrap();
    // As in tests/claude.rs: strict about what each `ls` proves, with the mock's one-second
    // pauses as room for slow polls.
    assert!(work.after < asked_from + 1.0, "{why}");
    assert!(ask.sent > asked_from && ask.after < resumed, "{why}");
    // What decided: the title Gemini CLI set, or without it its screen.
    let (asked_by, idle_by) =
        if titles { ("title: action required", "title: ready") } else { ("approval", "input box") };
    assert!(ask.reason.contains(asked_by), "{}", ask.reason);
    assert_working_through_long_reply(&seen, &log, &why);
    assert!(idle.reason.contains(idle_by), "{}", idle.reason);
    assert_eq!(
        std::fs::read_to_string(env.worktree_of("gm").join("hello.txt")).unwrap(),
        "hello from gemini\n"
    );
}
