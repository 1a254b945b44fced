//! Shared harness for the integration tests: every test gets its own HOME, XDG directories,
//! runtime directory (so its own server on its own socket) and a real git repository with one
//! commit, and drives the real `corral` binary. Waits are for conditions, with deadlines.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub mod live;
pub mod sshd;

/// Generous: waits end as soon as the condition holds, and CI machines can be slow.
pub const DEADLINE: Duration = Duration::from_secs(45);

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub runtime: PathBuf,
    pub repo: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_corral")
}

/// Run git with a predictable identity and no user or system config.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid");
    c
}

/// A repository with one commit on `main` at `dir`.
pub fn init_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README.md"), "hello\n").unwrap();
    std::fs::write(dir.join(".gitignore"), ".env\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let home = root.join("home");
        let runtime = root.join("run");
        let repo = root.join("repo");
        std::fs::create_dir_all(&home).unwrap();
        init_repo(&repo);
        Env { tmp, home, runtime, repo }
    }

    pub fn root(&self) -> PathBuf {
        self.home.parent().unwrap().to_path_buf()
    }

    /// `corral` with this test's environment, run in the repository.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(&self.repo);
        self.apply_env(&mut c);
        c
    }

    pub fn apply_env(&self, c: &mut Command) {
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("CORRAL_RUNTIME_DIR", &self.runtime)
            .env("SHELL", "/bin/sh")
            .env("PS1", "$ ")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env_remove("TMUX")
            .env_remove("CORRAL_LOG");
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("corral runs")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "corral {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run and require failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "corral {args:?}: {err}");
        err
    }

    pub fn write_config(&self, toml: &str) {
        let dir = self.home.join(".config/corral");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), toml).unwrap();
    }

    /// Start a shell agent and return its name.
    pub fn new_shell(&self, name: &str) -> String {
        let out =
            self.ok(&["new", "--agent", "shell", "--name", name, "--detach", "--size", "80x24"]);
        let got = out.trim().to_string();
        assert_eq!(got, name);
        self.wait_tail(name, |t| t.contains('$'));
        got
    }

    pub fn tail(&self, name: &str) -> String {
        self.ok(&["tail", name, "--plain"])
    }

    /// Wait until `corral tail` of the agent satisfies `pred`.
    pub fn wait_tail(&self, name: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let out = self.run(&["tail", name, "--plain"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the screen of {name}; it shows:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn ls_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["ls", "--json"])).expect("ls --json is JSON")
    }

    pub fn agent_json(&self, name: &str) -> serde_json::Value {
        self.ls_json()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("agent {name} not in ls --json"))
    }

    pub fn worktree_of(&self, name: &str) -> PathBuf {
        PathBuf::from(self.agent_json(name)["worktree"].as_str().unwrap())
    }

    pub fn server_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.runtime.join("server.lock")).ok()?.trim().parse().ok()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).output();
    }
}

/// Poll `f` until it returns Some, or panic naming `what` at the deadline.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
