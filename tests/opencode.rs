//! The badge of a real OpenCode, end to end: corral runs the real CLI in a real PTY against a
//! local mock of OpenAI chat completions (tests/fixtures/mock_chat.py) that scripts a shell
//! command needing permission, then a long streamed reply. Covers the profile's prompt delivery
//! (`--prompt`), its hooks (corral's OpenCode plugin, given to this process only through
//! `OPENCODE_CONFIG_CONTENT`: the badge names the plugin's events as its reasons), OpenCode's
//! permission prompt, its exit, and the mock's log as the reference.
//!
//! Needs the `opencode` CLI (found like `claude` in tests/claude.rs); without it the test says so.

#![allow(clippy::unwrap_used)]

mod common;

use common::live::*;
use common::*;

#[test]
fn opencode_badge_follows_permission_prompt_and_streaming_against_the_mock_log() {
    let clis = agent_clis("opencode");
    if clis.is_empty() {
        eprintln!(
            "SKIPPED opencode_badge…: no `opencode` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return;
    }
    // The pinned release and the newest (scripts/setup.sh installs both): a failure says which.
    for cli in clis {
        eprintln!("with {}: {}", cli.display(), version_of(&cli));
        badge_against_the_mock(&cli);
    }
}

fn badge_against_the_mock(opencode: &std::path::Path) {
    let env = Env::new();
    let root = env.root();
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([
        {
            "text": "I will create the file.",
            "tool": "bash",
            "args": {"command": "echo hello from opencode > hello.txt", "description": "Create hello.txt"},
            "delay": 1.0
        },
        {
            "text": "Done: hello.txt greets whoever reads it. This reply streams slowly, a few words at a time, so that the badge has a long stretch of streaming to show as working before the turn ends.",
            "chunks": 25,
            "chunk_delay": 0.15,
            "delay": 1.0
        }
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mock = Mock::start("mock_chat.py", port, &root.join("script.json"), &log_path);
    // OpenCode offline: its config (in the HOME corral's server and so the agent run with) names
    // the mock as its only provider; it needs no sign-in and shows no first-run screen.
    std::fs::create_dir_all(env.home.join(".config/opencode")).unwrap();
    std::fs::write(env.home.join(".config/opencode/opencode.json"), opencode_config(port)).unwrap();
    env.write_config(&format!(
        "[agents.opencode]\ncommand = [\"{}\"]\n[agents.opencode.env]\nOPENCODE_DISABLE_MODELS_FETCH = \"1\"\nOPENCODE_DISABLE_AUTOUPDATE = \"1\"\n",
        opencode.display()
    ));
    let out = env.ok(&[
        "new",
        "create hello.txt",
        "--agent",
        "opencode",
        "--name",
        "oc",
        "--detach",
        "--size",
        "100x30",
    ]);
    assert_eq!(out.trim(), "oc");

    // The plugin's events decide the badge (the screen rules agree): each state is seen with the
    // event as its reason, which no screen rule gives. Without the plugin these never show.
    let hook_says = |status: &str, event: &str, seen: &std::sync::Mutex<Seen>| {
        wait_or(
            &format!("{status} from the plugin's {event}"),
            || {
                let a = env.agent_json("oc");
                (a["status"] == status
                    && a["status_reason"] == format!("hook: opencode plugin ({event})"))
                .then_some(())
            },
            || format!("{}\nnow: {}", explain(&env, "oc", seen, &log_path), env.agent_json("oc")),
        )
    };
    let seen = record_badge(&env, "oc", |seen| {
        // With a plugin configured, OpenCode's first start under a new HOME waits for its own
        // dependencies to install into ~/.config/opencode (once per user): longer than a deadline
        // made for one step on a busy machine.
        let started = std::time::Instant::now();
        let described = |a: serde_json::Value| {
            let why = a["status_reason"].as_str().unwrap_or("").to_string();
            why.starts_with("hook:") || why.starts_with("rule:")
        };
        while !described(env.agent_json("oc")) && started.elapsed() < 3 * DEADLINE {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        hook_says("working", "session.status busy", seen);
        wait_or(
            "needs-input at the permission prompt",
            || saw_after(seen, "needs-input", 0.0).then_some(()),
            || explain(&env, "oc", seen, &log_path),
        );
        hook_says("needs-input", "permission.asked", seen);
        env.wait_tail("oc", |t| t.contains("Permission required"));
        assert!(!env.worktree_of("oc").join("hello.txt").exists(), "nothing ran before permission");
        // Enter on "Allow once".
        env.ok(&["send", "oc", ""]);
        wait_idle_after_long_reply(&env, "oc", seen, &log_path);
        hook_says("idle", "session.status idle", seen);
    });

    let log = mock_log(&log_path);
    let why = format!("badge: {seen:?}\nmock: {log:?}\nscreen:\n{}", env.tail("oc"));
    eprintln!("{why}");
    // The prompt came with the command line: OpenCode may draw its input box for a moment
    // before it submits it (idle), then work.
    let statuses = order(&seen);
    let first = usize::from(statuses.first() == Some(&"idle"));
    assert_eq!(statuses[first..], ["working", "needs-input", "working", "idle"], "{why}");
    let (work, ask, idle) = (nth(&seen, first), nth(&seen, first + 1), nth(&seen, first + 3));
    let asked_from = when(&log, "stream_start", 0).unwrap();
    let resumed = when(&log, "request", 1).unwrap();
    // As in tests/claude.rs: strict about what each `ls` proves, with the mock's one-second
    // pauses as room for slow polls.
    assert!(work.after < asked_from + 1.0, "{why}");
    assert!(ask.sent > asked_from && ask.after < resumed, "{why}");
    // The plugin's permission.asked usually comes before the prompt is drawn; either says it.
    assert!(
        ["hook: opencode plugin (permission.asked)", "rule: permission"]
            .contains(&ask.reason.as_str()),
        "{why}"
    );
    assert_working_through_long_reply(&seen, &log, &why);
    assert!(
        ["hook: opencode plugin (session.status idle)", "rule: input"]
            .contains(&idle.reason.as_str()),
        "{why}"
    );
    assert_eq!(
        std::fs::read_to_string(env.worktree_of("oc").join("hello.txt")).unwrap(),
        "hello from opencode\n"
    );

    // "exit" typed at its prompt ends OpenCode: the badge says so.
    env.ok(&["send", "oc", "exit"]);
    wait_or(
        "exited after `exit`",
        || (env.agent_json("oc")["status"] == "exited").then_some(()),
        || env.tail("oc"),
    );
    drop(mock);
}
