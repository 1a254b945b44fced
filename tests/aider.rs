//! The badge of a real Aider, end to end: corral runs the real CLI in a real PTY against a local
//! mock of OpenAI chat completions (tests/fixtures/mock_chat.py). The first reply is a file in
//! Aider's "whole" edit format, so Aider asks "Create new file?"; a second prompt gets a long
//! streamed reply. Covers the profile's prompt delivery (typed once the screen settles), Aider's
//! question, its `/exit`, and the mock's log as the reference.
//!
//! Needs `aider` (CORRAL_TEST_AGENTS_BIN, PATH, or .ci/aider/bin where scripts/setup.sh installs
//! it); without it the test says so.

#![allow(clippy::unwrap_used)]

mod common;

use common::live::*;
use common::*;

#[test]
fn aider_badge_follows_its_question_and_streaming_against_the_mock_log() {
    let Some(cli) = find_agent_cli("aider") else {
        eprintln!(
            "SKIPPED aider_badge…: no `aider` (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/aider)"
        );
        return;
    };
    eprintln!("with {}: {}", cli.display(), version_of(&cli));
    let env = Env::new();
    let root = env.root();
    let port = free_port();
    let log_path = root.join("mock.jsonl");
    let script = serde_json::json!([
        {"text": "I will create the file.\n\nhello.txt\n```\nhello from aider\n```\n", "delay": 1.0},
        {
            "text": "Done: hello.txt greets whoever reads it. This reply streams slowly, a few words at a time, so that the badge has a long stretch of streaming to show as working before the turn ends.",
            "chunks": 25,
            "chunk_delay": 0.15,
            "delay": 1.0
        }
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mock = Mock::start("mock_chat.py", port, &root.join("script.json"), &log_path);
    aider_home(&env.home);
    let mut argv = vec![cli.display().to_string()];
    argv.extend(aider_args(port));
    // The agent is held stopped for a moment below: the key must not give way meanwhile.
    env.write_config(&format!(
        "[status]\nkey_confirm_ms = 600000\n[agents.aider]\ncommand = {argv:?}\n"
    ));
    let out = env.ok(&[
        "new",
        "create hello.txt",
        "--agent",
        "aider",
        "--name",
        "ad",
        "--detach",
        "--size",
        "100x30",
    ]);
    assert_eq!(out.trim(), "ad");
    let worktree = env.worktree_of("ad");

    let seen = record_badge(&env, "ad", |seen| {
        wait_or(
            "needs-input at Aider's question",
            || saw_after(seen, "needs-input", 0.0).then_some(()),
            || explain(&env, "ad", seen, &log_path),
        );
        env.wait_tail("ad", |t| t.contains("Create new file? (Y)es/(N)o [Yes]:"));
        assert!(!worktree.join("hello.txt").exists(), "nothing written before the answer");
        // Enter takes the default, Yes: Aider writes the file, commits it, and is back at its prompt.
        env.ok(&["send", "ad", ""]);
        wait_or(
            "idle after the edit",
            || {
                let after = seen.lock().unwrap().iter().rfind(|o| o.status == "needs-input")?.after;
                (saw_after(seen, "idle", after) && worktree.join("hello.txt").exists())
                    .then_some(())
            },
            || explain(&env, "ad", seen, &log_path),
        );
        // Enter on the typed prompt is working at once, before Aider draws anything: with Aider
        // stopped (it reads no key and draws nothing), the badge can only have it from the key.
        env.ok(&["send", "ad", "--no-enter", "say more"]);
        env.wait_tail("ad", |t| t.lines().any(|l| l.trim_end() == "> say more"));
        signal_agent(&env, "ad", "-STOP");
        env.ok(&["send", "ad", ""]);
        wait_or(
            "the key's working after Enter on the typed prompt",
            || {
                let a = env.agent_json("ad");
                (a["status"] == "working" && a["status_reason"] == "key: prompt submitted")
                    .then_some(())
            },
            || explain(&env, "ad", seen, &log_path),
        );
        assert!(when(&mock_log(&log_path), "request", 1).is_none(), "Aider was stopped");
        signal_agent(&env, "ad", "-CONT");
        wait_idle_after_long_reply(&env, "ad", seen, &log_path);
    });

    let log = mock_log(&log_path);
    let why = format!("badge: {seen:?}\nmock: {log:?}\nscreen:\n{}", env.tail("ad"));
    eprintln!("{why}");
    let statuses = order(&seen);
    // (Idle at the prompt while it is typed, if the typing was seen); work; the question; idle
    // at the prompt once the file is written (Aider's commit may show working for a moment);
    // work; idle.
    let ask_at = statuses.iter().position(|s| *s == "needs-input").unwrap();
    let first = statuses.iter().position(|s| *s == "working").unwrap();
    assert!(statuses[..first].iter().all(|s| *s == "idle"), "{why}");
    assert_eq!(&statuses[first..ask_at + 1], ["working", "needs-input"], "{why}");
    assert_eq!(statuses.iter().filter(|s| **s == "needs-input").count(), 1, "{why}");
    assert_eq!(&statuses[statuses.len() - 3..], ["idle", "working", "idle"], "{why}");
    let (work, ask) = (nth(&seen, first), nth(&seen, first + 1));
    let (asked0, ended0) =
        (when(&log, "request", 0).unwrap(), when(&log, "stream_end", 0).unwrap());
    // Aider draws nothing new for the first half second of a request (its spinner waits that
    // long): working from then on, within the mock's one-second pause.
    assert!(work.after < asked0 + 1.0, "{why}");
    // The question comes once the reply is in (and before the answer let Aider go on): the `ls`
    // that saw it came back after the stream's end (on a loaded machine one `ls` takes half a
    // second, so it may have been sent just before).
    assert!(ask.after > ended0, "{why}");
    assert_eq!(ask.reason, "rule: confirmation", "{why}");
    // The long reply: working from the spinner on (half a second after the request) and all
    // through the stream, idle after it.
    let (asked1, start1, end1) = (
        when(&log, "request", 1).unwrap(),
        when(&log, "stream_start", 1).unwrap(),
        when(&log, "stream_end", 1).unwrap(),
    );
    assert!(start1 >= asked1);
    assert!(
        seen.iter().all(|o| !(o.sent > asked1 + 0.6 && o.after < end1) || o.status == "working"),
        "the badge left working while the reply streamed: {why}"
    );
    let idle = seen.iter().rfind(|o| o.status == "idle").unwrap();
    assert!(idle.after > end1, "{why}");
    assert_eq!(idle.reason, "rule: prompt", "{why}");
    assert_eq!(std::fs::read_to_string(worktree.join("hello.txt")).unwrap(), "hello from aider\n");

    env.ok(&["send", "ad", "/exit"]);
    wait_or(
        "exited after /exit",
        || (env.agent_json("ad")["status"] == "exited").then_some(()),
        || env.tail("ad"),
    );
    drop(mock);
}
