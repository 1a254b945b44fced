//! `corral doctor`: what works on this machine and what does not, one line each.

use std::io::IsTerminal;

use anyhow::Result;

use crate::client::Client;
use crate::config;
use crate::paths;

pub async fn doctor() -> Result<i32> {
    let mut failed = false;
    let mut line = |ok: bool, what: &str, detail: String| {
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failed = true;
        }
    };
    match std::process::Command::new("git").arg("--version").output() {
        Ok(o) if o.status.success() => {
            line(true, "git", String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        _ => line(
            false,
            "git",
            "the git command is not on PATH (corral itself uses libgit2, but you will want git)"
                .into(),
        ),
    }
    let v = git2::Version::get();
    let (maj, min, rev) = v.libgit2_version();
    line(true, "libgit2", format!("{maj}.{min}.{rev} (built in)"));
    let mut root = None;
    match std::env::current_dir().map(|d| crate::git::discover(&d)) {
        Ok(Ok(info)) => {
            line(true, "repository", info.root.display().to_string());
            root = Some(info.root);
        }
        Ok(Err(e)) => println!("--   repository: {e}"),
        Err(e) => println!("--   repository: {e}"),
    }
    let dir = paths::runtime_dir();
    match paths::ensure_runtime_dir(&dir) {
        Ok(()) => line(true, "runtime directory", dir.display().to_string()),
        Err(e) => line(false, "runtime directory", format!("{e:#}")),
    }
    match Client::connect_existing().await {
        Ok(Some(c)) => {
            line(
                true,
                "server",
                format!("running, pid {}, {}", c.server_pid, paths::socket_path().display()),
            );
            if let Some(newer) = crate::server::handover::newer_binary(c.server_pid) {
                println!(
                    "--   server binary: {} is newer than the one the server runs; `corral server --upgrade` moves it there with every agent running",
                    newer.display()
                );
            }
        }
        Ok(None) => println!("--   server: not running (any command starts it)"),
        Err(e) => line(false, "server", format!("{e:#}")),
    }
    let term = std::env::var("TERM").unwrap_or_default();
    let tty = std::io::stdout().is_terminal();
    line(
        !term.is_empty() && term != "dumb" || !tty,
        "terminal",
        format!(
            "TERM={}{}",
            if term.is_empty() { "(unset)" } else { &term },
            if tty { "" } else { ", stdout is not a terminal" }
        ),
    );
    // With this repository's `.corral.toml`, as `new` reads it here.
    match config::load(&paths::user_config_file(), root.as_deref()) {
        Ok(l) => {
            let mut files = paths::user_config_file().display().to_string();
            if let Some(rf) = &l.repo_file {
                files.push_str(&format!(", {}", rf.path.display()));
            }
            line(true, "config", files);
            let path = std::env::var("PATH").ok();
            for name in config::AUTO_PROFILES.iter().chain(["shell"].iter()) {
                let Some(p) = l.config.agents.get(*name) else { continue };
                let cmd = if p.command[0] == "{shell}" {
                    std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())
                } else {
                    p.command[0].clone()
                };
                match config::find_in_path(&cmd, path.as_deref()) {
                    Some(found) => println!("ok   agent {name}: {}", found.display()),
                    None => println!("--   agent {name}: '{cmd}' not on PATH"),
                }
            }
        }
        Err(e) => line(false, "config", e.to_string()),
    }
    Ok(if failed { 1 } else { 0 })
}
