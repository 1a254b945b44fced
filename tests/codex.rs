//! The badge of a real Codex, end to end: corral runs the real CLI in a real PTY against a local
//! mock of the OpenAI Responses API (tests/fixtures/mock_openai.py) that scripts a command needing
//! approval, then a long streamed reply. Covers Codex's trust dialog, its approval prompt, its
//! `notify` hook (which corral installs with `-c notify=…`), and the mock's log as the reference.
//!
//! Needs the `codex` CLI (found like `claude` in tests/claude.rs); without it the test says so.

#![allow(clippy::unwrap_used)]

mod common;

use common::live::*;
use common::*;

#[test]
fn codex_badge_follows_trust_approval_and_streaming_against_the_mock_log() {
    let clis = agent_clis("codex");
    if clis.is_empty() {
        eprintln!(
            "SKIPPED codex_badge…: no `codex` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return;
    }
    // The pinned release and the newest (scripts/setup.sh installs both): a failure says which.
    for cli in clis {
        eprintln!("with {}: {}", cli.display(), version_of(&cli));
        badge_against_the_mock(&cli);
    }
}

fn badge_against_the_mock(codex: &std::path::Path) {
    let env = Env::new();
    let root = env.root();
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([
        {"command": "echo hello from codex > hello.txt", "justification": "Create hello.txt", "delay": 1.0},
        {
            "text": "Done: hello.txt greets whoever reads it. This reply streams slowly, a few words at a time, so that the badge has a long stretch of streaming to show as working before the turn ends.",
            "chunks": 25,
            "chunk_delay": 0.15,
            "delay": 1.0
        }
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mock = Mock::start("mock_openai.py", port, &root.join("script.json"), &log_path);
    // Codex offline: a provider pointing at the mock; commands need approval to write.
    std::fs::create_dir_all(env.home.join(".codex")).unwrap();
    std::fs::write(
        env.home.join(".codex/config.toml"),
        format!(
            "model = \"m\"\nmodel_provider = \"mock\"\napproval_policy = \"on-request\"\nsandbox_mode = \"read-only\"\n[model_providers.mock]\nname = \"mock\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nenv_key = \"MOCK_KEY\"\n"
        ),
    )
    .unwrap();
    // The agent is held stopped for a while below: a key must not give way to the rules meanwhile.
    env.write_config(&format!(
        "[status]\nkey_confirm_ms = 600000\n[agents.codex]\ncommand = [\"{}\", \"--no-daemon\"]\n[agents.codex.env]\nMOCK_KEY = \"x\"\n",
        codex.display()
    ));
    env.ok(&["new", "--agent", "codex", "--name", "cx", "--detach", "--size", "100x30"]);
    let until = |what: &str, status: &str| {
        wait_for(what, || (env.agent_json("cx")["status"] == status).then_some(()));
    };
    // Codex asks whether to trust the folder: a question.
    until("the trust dialog", "needs-input");
    env.wait_tail("cx", |t| t.contains("Trust this folder?"));
    env.ok(&["send", "cx", ""]);
    until("the composer", "idle");

    // What a key does is shown at once: with the agent stopped (it reads no key, draws nothing,
    // notifies nothing), the badge can only have it from the key.
    let after_key = |what: &str, want: &str, key_rule: Option<&str>| {
        let (status, signals) = badge_report(&env, "cx");
        let why = format!("{what}: {signals:?}\nscreen:\n{}", env.tail("cx"));
        assert_eq!(status, want, "{why}");
        match key_rule {
            Some(rule) => assert!(signals[0].contains(&format!("key: {rule}")), "{why}"),
            None => assert!(signals.iter().all(|s| !s.starts_with("key:")), "{why}"),
        }
    };
    let seen = record_badge(&env, "cx", |seen| {
        // Enter on the empty composer (its faint placeholder is no prompt) submits nothing.
        env.wait_tail("cx", |t| t.contains("›"));
        env.ok(&["send", "cx", ""]);
        after_key("Enter on the empty composer", "idle", None);
        env.ok(&["send", "cx", "--no-enter", "create hello.txt"]);
        env.wait_tail("cx", |t| t.contains("› create hello.txt"));
        signal_agent(&env, "cx", "-STOP");
        env.ok(&["send", "cx", ""]);
        after_key("Enter on the typed prompt", "working", Some("prompt submitted"));
        signal_agent(&env, "cx", "-CONT");
        wait_or(
            "needs-input at the approval",
            || saw_after(seen, "needs-input", 0.0).then_some(()),
            || explain(&env, "cx", seen, &log_path),
        );
        env.wait_tail("cx", |t| t.contains("Would you like to run the following command?"));
        assert!(!env.worktree_of("cx").join("hello.txt").exists(), "nothing ran before approval");
        signal_agent(&env, "cx", "-STOP");
        env.ok(&["send", "cx", ""]);
        after_key("Enter on the approval's Yes", "working", Some("approved"));
        signal_agent(&env, "cx", "-CONT");
        wait_idle_after_long_reply(&env, "cx", seen, &log_path);
        // Codex reports its own state to the terminal (`OSC 7501`), and corral reads it.
        wait_for("Codex's own report that its turn is done", || {
            env.ok(&["status", "cx", "--explain"])
                .contains("program status (OSC 7501): done")
                .then_some(())
        });
    });
    drop(mock);

    let log = mock_log(&log_path);
    let why = format!("badge: {seen:?}\nmock: {log:?}\nscreen:\n{}", env.tail("cx"));
    eprintln!("{why}");
    assert_eq!(order(&seen), ["idle", "working", "needs-input", "working", "idle"], "{why}");
    let (work, ask) = (nth(&seen, 1), nth(&seen, 2));
    let asked_from = when(&log, "stream_start", 0).unwrap();
    let resumed = when(&log, "request", 1).unwrap();
    // As in tests/claude.rs: strict about what each `ls` proves, with the mock's one-second
    // pauses as room for slow polls.
    assert!(work.after < asked_from + 1.0, "{why}");
    assert!(ask.sent > asked_from && ask.after < resumed, "{why}");
    // From its screen, or its own report to the terminal (`OSC 7501`, as Claude Code's).
    assert!(
        ask.reason.contains("approval") || ask.reason.contains("program status: blocked"),
        "{}",
        ask.reason
    );
    assert_working_through_long_reply(&seen, &log, &why);
    assert_eq!(
        std::fs::read_to_string(env.worktree_of("cx").join("hello.txt")).unwrap(),
        "hello from codex\n"
    );
}
