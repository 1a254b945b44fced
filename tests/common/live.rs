//! For tests that run real agent CLIs against local mocks of their APIs: finding the CLI, running
//! a mock, reading its log, and recording the badge while a test drives the agent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Env, wait_for};

/// The agent CLI `name`: in CORRAL_TEST_AGENTS_BIN (a directory), on PATH, or in node_modules/.bin
/// of the repository or of .ci/agents (where scripts/setup.sh installs the pinned versions), or
/// .ci/aider/bin (Aider's venv).
pub fn find_agent_cli(name: &str) -> Option<PathBuf> {
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
    dirs.push(manifest.join(".ci/aider/bin"));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Every install of the agent CLI `name` to test against: the one [`find_agent_cli`] finds (the
/// pinned release, in CI), and the newest release where scripts/setup.sh put it
/// (.ci/agents-latest), when that is another version. Agents reword their screens often; the
/// status tests run on both so that a release the rules miss is named.
pub fn agent_clis(name: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = find_agent_cli(name).into_iter().collect();
    let latest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/agents-latest/node_modules/.bin")
        .join(name);
    if latest.is_file() && out.iter().all(|p| version_of(p) != version_of(&latest)) {
        out.push(latest);
    }
    out
}

/// What `CLI --version` prints, for messages and to tell installs apart.
pub fn version_of(cli: &Path) -> String {
    Command::new(cli)
        .arg("--version")
        .env("HOME", std::env::temp_dir())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A mock API server (tests/fixtures/<script>) on `port`, killed on drop.
pub struct Mock(Child);

impl Mock {
    pub fn start(fixture: &str, port: u16, script: &Path, log: &Path) -> Mock {
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture))
            .arg(port.to_string())
            .arg(script)
            .arg(log)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the mock");
        let mock = Mock(child);
        wait_for("the mock to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        mock
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A mock's log: (time, event, script index; -1 for side requests).
pub fn mock_log(path: &Path) -> Vec<(f64, String, i64)> {
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

pub fn when(log: &[(f64, String, i64)], event: &str, index: i64) -> Option<f64> {
    log.iter().find(|(_, e, i)| e == event && *i == index).map(|(t, _, _)| *t)
}

/// One change of the badge as `ls` saw it.
#[derive(Debug, Clone)]
pub struct Obs {
    /// When the `ls` that first saw this status was sent, and when it returned: the badge changed
    /// before `after`, and (the previous `ls` having seen the old status) not long before `sent`.
    pub sent: f64,
    pub after: f64,
    pub status: String,
    pub reason: String,
}

pub type Seen = Vec<Obs>;

/// Run `drive` while recording the badge of agent `name` (polling `corral ls --json`).
pub fn record_badge(env: &Env, name: &str, drive: impl FnOnce(&Mutex<Seen>)) -> Seen {
    let seen: Mutex<Seen> = Mutex::default();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let sent = now_secs();
                let Ok(out) = env.cmd(&["ls", "--json"]).output() else { continue };
                let after = now_secs();
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                    continue;
                };
                let Some(a) =
                    v["agents"].as_array().and_then(|a| a.iter().find(|a| a["name"] == name))
                else {
                    continue;
                };
                let status = a["status"].as_str().unwrap_or("").to_string();
                let reason = a["status_reason"].as_str().unwrap_or("").to_string();
                let mut seen = seen.lock().unwrap();
                if seen.last().is_none_or(|o| o.status != status) {
                    seen.push(Obs { sent, after, status, reason });
                }
            }
        });
        // Whatever happens in `drive`, the recorder stops (a failed assertion must not hang).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        // The badge as it was before `drive` acts is part of the record: on a busy machine the
        // recorder's first `ls` could otherwise come after the first prompt took effect.
        wait_for("the recorder's first look at the badge", || {
            (!seen.lock().unwrap().is_empty()).then_some(())
        });
        drive(&seen);
    });
    seen.into_inner().unwrap()
}

/// Whether the recording so far has `status` seen by an `ls` sent after `after`.
pub fn saw_after(seen: &Mutex<Seen>, status: &str, after: f64) -> bool {
    seen.lock().unwrap().iter().any(|o| o.status == status && o.sent > after)
}

/// The statuses in the order seen, `starting` left out.
pub fn order(seen: &Seen) -> Vec<&str> {
    seen.iter().map(|o| o.status.as_str()).filter(|s| *s != "starting").collect()
}

/// The `i`th change seen, `starting` left out.
pub fn nth(seen: &Seen, i: usize) -> &Obs {
    seen.iter().filter(|o| o.status != "starting").nth(i).unwrap()
}

/// Like [`wait_for`], with `context` (screen, logs) in the failure message.
pub fn wait_or<T>(what: &str, mut f: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let deadline = std::time::Instant::now() + super::DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// What a failed badge test shows: the badge as observed, the mock's log and the agent's screen.
pub fn explain(env: &Env, name: &str, seen: &Mutex<Seen>, mock: &Path) -> String {
    format!(
        "badge: {:?}\nmock: {:?}\nscreen:\n{}",
        seen.lock().unwrap(),
        mock_log(mock),
        env.tail(name)
    )
}

/// Wait until the badge says idle after the mock finished streaming its second (long) reply.
pub fn wait_idle_after_long_reply(env: &Env, name: &str, seen: &Mutex<Seen>, mock: &Path) {
    wait_or(
        "idle after the long reply",
        || {
            let end = when(&mock_log(mock), "stream_end", 1)?;
            // Idle shows within a moment of the end: an `ls` already on its way may see it.
            seen.lock().unwrap().iter().any(|o| o.status == "idle" && o.after > end).then_some(())
        },
        || explain(env, name, seen, mock),
    );
}

/// The badge around the long reply (the mock's second stream): working within a second of its
/// start (the mock pauses a second before replying, room for slow polls), working all through
/// it, and idle only after it ended.
pub fn assert_working_through_long_reply(seen: &Seen, log: &[(f64, String, i64)], why: &str) {
    let (start, end) = (when(log, "stream_start", 1).unwrap(), when(log, "stream_end", 1).unwrap());
    let working_again = seen.iter().filter(|o| o.status == "working").nth(1).unwrap();
    assert!(working_again.after < start + 1.0, "{why}");
    assert!(
        // What an `ls` sent during the reply and back before its end saw (one still on its way
        // at the end may see the idle that follows it at once).
        seen.iter().all(|o| !(o.sent > start && o.after < end) || o.status == "working"),
        "the badge left working while the reply streamed: {why}"
    );
    // Idle not before the reply ended: no `ls` that returned before the end saw it.
    let idle = seen.iter().rfind(|o| o.status == "idle").unwrap();
    assert!(idle.after > end, "{why}");
}

/// `corral status NAME --json`: the badge's status and its signals (the badge's task answers it
/// after every key written to the agent before it was asked).
pub fn badge_report(env: &Env, name: &str) -> (String, Vec<String>) {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["status", name, "--json"])).unwrap();
    let signals = v["signals"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string());
    (v["status"].as_str().unwrap().to_string(), signals.collect())
}

/// Stop or continue the agent's whole process group: while it is stopped it reads no key, draws
/// nothing and fires no hook, so what the badge does then comes from the key alone.
pub fn signal_agent(env: &Env, name: &str, sig: &str) {
    let pid = env.agent_json(name)["pid"].as_u64().unwrap();
    let st = std::process::Command::new("kill").args([sig, "--", &format!("-{pid}")]).status();
    assert!(st.unwrap().success(), "kill {sig} -{pid}");
}

/// OpenCode's config (opencode.json) for running it offline: one OpenAI-compatible provider, the
/// mock of chat completions at `port` (tests/fixtures/mock_chat.py), as the model for turns and
/// titles alike; asking before shell commands and edits, so its permission prompt comes up; no
/// sharing, no self-update.
pub fn opencode_config(port: u16) -> String {
    serde_json::json!({
        "$schema": "https://opencode.ai/config.json",
        "model": "mock/m",
        "small_model": "mock/m",
        "autoupdate": false,
        "share": "disabled",
        "permission": {"bash": "ask", "edit": "ask"},
        "provider": {"mock": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Mock",
            "options": {"baseURL": format!("http://127.0.0.1:{port}/v1"), "apiKey": "x"},
            "models": {"m": {"name": "Mock model"}}
        }}
    })
    .to_string()
}

/// The arguments that run Aider offline against the mock of chat completions at `port`: the
/// model named as an OpenAI one (so the OpenAI base URL applies), no update check, release notes,
/// analytics question, .gitignore question or unknown-model warning. With [`aider_home`].
pub fn aider_args(port: u16) -> Vec<String> {
    [
        "--model",
        "openai/m",
        "--openai-api-base",
        &format!("http://127.0.0.1:{port}/v1"),
        "--openai-api-key",
        "x",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-analytics",
        "--no-gitignore",
        "--no-show-model-warnings",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Aider fetches a table of models from GitHub at start unless its cache of it is fresh and has
/// something in it: a cache naming the mock's model, in `home`, keeps it off the network.
pub fn aider_home(home: &Path) {
    let caches = home.join(".aider/caches");
    std::fs::create_dir_all(&caches).unwrap();
    let table = serde_json::json!({"openai/m": {
        "max_input_tokens": 128000, "max_output_tokens": 4096,
        "litellm_provider": "openai", "mode": "chat"
    }});
    std::fs::write(caches.join("model_prices_and_context_window.json"), table.to_string()).unwrap();
}
