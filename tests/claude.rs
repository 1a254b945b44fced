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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

fn find_agent_cli(name: &str) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("CORRAL_TEST_AGENTS_BIN") {
        dirs.push(d.into());
    }
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.push(manifest.join("node_modules/.bin"));
    dirs.push(manifest.join(".ci/agents/node_modules/.bin"));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The mock's log: (time, event, script index).
fn mock_log(path: &Path) -> Vec<(f64, String, i64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["t"].as_f64().unwrap(),
                v["event"].as_str().unwrap().to_string(),
                v["index"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn when(log: &[(f64, String, i64)], event: &str, index: i64) -> Option<f64> {
    log.iter().find(|(_, e, i)| e == event && *i == index).map(|(t, _, _)| *t)
}

#[test]
fn claude_code_badge_follows_permission_prompt_and_streaming_against_the_mock_log() {
    let Some(claude) = find_agent_cli("claude") else {
        eprintln!(
            "SKIPPED claude_code_badge…: no `claude` CLI (set CORRAL_TEST_AGENTS_BIN, put it on PATH, or run scripts/setup.sh to install it into .ci/agents)"
        );
        return;
    };
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
            "delay": 0.3
        },
        {
            "text": "Done. hello.txt now greets whoever reads it. This reply streams slowly, a few words at a time, so that the badge has a long stretch of streaming to show as working before the turn ends and the agent waits for its next prompt.",
            "chunks": 25,
            "chunk_delay": 0.15,
            "delay": 0.3
        }
    ]);
    std::fs::write(root.join("script.json"), script.to_string()).unwrap();
    let mock = Mock(
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mock_anthropic.py"))
            .arg(port.to_string())
            .arg(root.join("script.json"))
            .arg(&log_path)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the mock"),
    );
    wait_for("the mock to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());

    // Claude Code offline: an API key it has approved, onboarding done, and the main repository
    // trusted (a corral worktree is a linked worktree: trust is looked up at the main root).
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
command = ["{claude}", "--permission-mode", "default", "--session-id", "{{session}}"]
[agents.claude.env]
ANTHROPIC_BASE_URL = "http://127.0.0.1:{port}"
ANTHROPIC_API_KEY = "{key}"
DISABLE_AUTOUPDATER = "1"
"#,
        wts = wts.display(),
        claude = claude.display(),
    ));

    // Record every status the badge shows, with the time, until told to stop.
    let seen: Mutex<Vec<(f64, String, String)>> = Mutex::default();
    let stop = AtomicBool::new(false);
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
    let statuses = || seen.lock().unwrap().iter().map(|(_, s, _)| s.clone()).collect::<Vec<_>>();
    let explain = |env: &Env| {
        format!(
            "badge: {:?}\nmock: {:?}\nscreen:\n{}",
            seen.lock().unwrap(),
            mock_log(&log_path),
            env.tail("cc")
        )
    };

    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let before = now_secs();
                let Ok(out) = env.cmd(&["ls", "--json"]).output() else { continue };
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                    continue;
                };
                let Some(a) = v["agents"].as_array().and_then(|a| a.first()) else { continue };
                let s = a["status"].as_str().unwrap_or("").to_string();
                let r = a["status_reason"].as_str().unwrap_or("").to_string();
                let mut seen = seen.lock().unwrap();
                if seen.last().is_none_or(|(_, last, _)| *last != s) {
                    // The status held at least from the moment the request was sent.
                    seen.push((before, s, r));
                }
            }
        });
        // Whatever happens below, the watcher stops (a failed assertion must not hang the scope).
        let _stop = StopOnDrop(&stop);
        // The permission prompt: needs-input.
        wait_for("needs-input at the permission prompt", || {
            statuses().iter().any(|s| s == "needs-input").then_some(())
        });
        // The PermissionRequest hook may come a moment before the prompt is drawn.
        env.wait_tail("cc", |t| t.contains("Do you want to create hello.txt?"));
        assert!(!worktree.join("hello.txt").exists(), "nothing written before permission");
        // Grant it (Enter on "1. Yes"), and wait for the end of the turn.
        env.ok(&["send", "cc", ""]);
        wait_for("idle after the long reply", || {
            let log = mock_log(&log_path);
            let end = when(&log, "stream_end", 1)?;
            let seen = seen.lock().unwrap();
            seen.iter().any(|(t, s, _)| s == "idle" && *t > end).then_some(())
        });
    });
    drop(mock);

    let log = mock_log(&log_path);
    let why = explain(&env);
    let seen = seen.lock().unwrap().clone();
    let first_request = when(&log, "request", 0).unwrap();
    let tool_sent = when(&log, "stream_end", 0).unwrap();
    let resumed = when(&log, "request", 1).unwrap();
    let (long_start, long_end) =
        (when(&log, "stream_start", 1).unwrap(), when(&log, "stream_end", 1).unwrap());
    eprintln!("badge: {seen:?}\nmock: {log:?}");
    // The order of badges, leaving out the banner's `starting`.
    let order: Vec<&str> =
        seen.iter().map(|(_, s, _)| s.as_str()).filter(|s| *s != "starting").collect();
    assert_eq!(order, ["working", "needs-input", "working", "idle"], "{why}");
    let at = |i: usize| {
        seen.iter().filter(|(_, s, _)| s != "starting").nth(i).map(|(t, s, r)| (*t, s, r)).unwrap()
    };
    let (t_work, _, _) = at(0);
    let (t_ask, _, ask_reason) = at(1);
    let (t_work2, _, _) = at(2);
    let (t_idle, _, idle_reason) = at(3);
    // working came with the first request, before the tool call was received;
    assert!(t_work < tool_sent, "working only after the tool call arrived: {why}");
    assert!(first_request - 5.0 < t_work, "{why}");
    // needs-input only once the tool call was received, and before the agent went on;
    assert!(t_ask >= tool_sent - 0.05, "needs-input before the model asked: {why}");
    assert!(t_ask < resumed, "{why}");
    assert!(
        ask_reason.contains("permission prompt") || ask_reason.contains("Permission"),
        "{ask_reason}"
    );
    // working again after permission, through the whole long reply;
    assert!(t_work2 < long_end, "{why}");
    assert!(
        seen.iter().all(|(t, s, _)| !(*t > long_start && *t < long_end) || s == "working"),
        "the badge left working while the reply streamed: {why}"
    );
    // idle only after the reply ended.
    assert!(t_idle > long_end, "{why}");
    assert!(idle_reason.contains("Stop") || idle_reason.contains("input box"), "{idle_reason}");
    assert_eq!(
        std::fs::read_to_string(worktree.join("hello.txt")).unwrap(),
        "hello from the mock\n",
        "{why}"
    );
}
