//! `diff`, `merge`, `sync` and `land` (the landing queue): landing an agent's work. `merge` and `sync` are the server's (it
//! serializes them and stops the agent); `diff` only reads, so it runs here, against the worktree
//! the server names, and never holds the server up.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::client::{self, Client};
use crate::proto::{AgentInfo, LandingEntry, MergeMode, Reply, Request, Target};

/// Exit code of a merge or sync that would conflict (SPEC §2).
const EXIT_CONFLICT: i32 = 3;

pub async fn diff(repo: Option<&PathBuf>, name: String, stat: bool) -> Result<i32> {
    let root = client::repo_root(repo)?;
    let mut c = Client::connect().await?;
    if c.ssh.is_some() {
        // The worktree is on the other host: its server makes the patch.
        let stdout = std::io::stdout();
        let colour = stdout.is_terminal();
        let width = crossterm::terminal::size().ok().filter(|_| colour).map_or(80, |(w, _)| w);
        let target = crate::proto::Target { repo: root, name };
        let Reply::Text(text) = c.request(Request::Diff { target, stat, colour, width }).await?
        else {
            bail!("unexpected reply to diff");
        };
        let mut out = stdout.lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        return Ok(0);
    }
    let Reply::Agents(agents) = c.request(Request::List { repo: Some(root.clone()) }).await? else {
        bail!("unexpected reply to ls");
    };
    let Some(agent) = agents.into_iter().find(|a| a.name == name) else {
        bail!("no agent '{name}' in {}", root.display());
    };
    if !agent.worktree.is_dir() {
        bail!(
            "the worktree of agent '{name}' ({}) is gone; `corral rm {name}` cleans up",
            agent.worktree.display()
        );
    }
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal();
    let width = crossterm::terminal::size().ok().filter(|_| colour).map_or(80, |(w, _)| w as usize);
    let bytes = tokio::task::spawn_blocking(move || {
        crate::git::agent_patch(&agent.worktree, &agent.base, stat, colour, width)
    })
    .await
    .context("the diff was interrupted")??;
    let mut out = stdout.lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(0)
}

/// Print a conflict answer: what on stderr, the paths on stdout (one per line, for scripts).
fn report_conflict(what: &str, paths: &[String]) -> Result<i32> {
    eprintln!("corral: {what} would conflict in these files; nothing was changed:");
    let mut out = std::io::stdout().lock();
    for p in paths {
        writeln!(out, "{p}")?;
    }
    out.flush()?;
    Ok(EXIT_CONFLICT)
}

pub async fn merge(
    target: Target,
    mode: MergeMode,
    keep: bool,
    message: Option<String>,
    yes: bool,
) -> Result<i32> {
    let name = target.name.clone();
    let mut c = Client::connect().await?;
    let git_env = client::git_env();
    match c.request(Request::Merge { target, mode, keep, message, yes, git_env }).await? {
        Reply::Note(n) => {
            println!("{n}");
            Ok(0)
        }
        Reply::Ok => Ok(0),
        Reply::Conflict(paths) => report_conflict(&format!("merging agent '{name}'"), &paths),
        other => bail!("unexpected reply to merge: {other:?}"),
    }
}

pub async fn sync(target: Target) -> Result<i32> {
    let name = target.name.clone();
    let mut c = Client::connect().await?;
    match c.request(Request::Sync { target, git_env: client::git_env() }).await? {
        Reply::Note(n) => {
            println!("{n}");
            Ok(0)
        }
        Reply::Ok => Ok(0),
        Reply::Conflict(paths) => report_conflict(&format!("syncing agent '{name}'"), &paths),
        other => bail!("unexpected reply to sync: {other:?}"),
    }
}

/// Exit code of `land` when an agent was blocked by anything but a conflict (a failed gate).
const EXIT_FAILED: i32 = 1;
/// How many of the gate's last lines `land --status` shows.
const GATE_LINES: usize = 10;
/// How often `land` asks the server how its agents are doing.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

async fn landing(c: &mut Client, repo: &std::path::Path) -> Result<Vec<LandingEntry>> {
    match c.request(Request::LandStatus { repo: repo.to_path_buf() }).await? {
        Reply::Landing(entries) => Ok(entries),
        other => bail!("unexpected reply to land --status: {other:?}"),
    }
}

fn describe(e: &LandingEntry) -> String {
    let mut line = format!("{}: {}", e.name, e.state);
    if let Some(p) = e.position.filter(|_| e.state == "waiting") {
        line.push_str(&format!(" (#{p})"));
    }
    if let Some(r) = &e.reason {
        line.push_str(&format!(": {r}"));
    }
    if let Some(at) = &e.landed_at {
        line.push_str(&format!(" at {}", at.get(..12).unwrap_or(at)));
    }
    line
}

/// `corral land NAME...`: queue them, then (unless `no_wait`) follow until each is landed or
/// blocked. 0: all landed; 3: one was blocked by a conflict; 1: any other failure.
pub async fn queue_land(
    repo: PathBuf,
    names: Vec<String>,
    mode: MergeMode,
    keep: bool,
    no_wait: bool,
) -> Result<i32> {
    let mut c = Client::connect().await?;
    let git_env = client::git_env();
    let ask = Request::Land { repo: repo.clone(), names: names.clone(), mode, keep, git_env };
    match c.request(ask).await? {
        Reply::Ok => {}
        Reply::Note(n) => eprintln!("{n}"),
        other => bail!("unexpected reply to land: {other:?}"),
    }
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    loop {
        let entries = landing(&mut c, &repo).await?;
        let mut done = true;
        let (mut conflict, mut failed) = (false, false);
        for name in &names {
            let Some(e) = entries.iter().find(|e| &e.name == name) else {
                eprintln!("{name}: taken out of the queue");
                failed = true;
                continue;
            };
            let line = describe(e);
            if last.get(name) != Some(&line) {
                println!("{line}");
                last.insert(name.clone(), line);
            }
            match e.state.as_str() {
                "landed" => {}
                "blocked" => match e.failure.as_deref() {
                    Some("conflict") => conflict = true,
                    _ => failed = true,
                },
                _ => done = false,
            }
        }
        if no_wait {
            return Ok(0);
        }
        if done {
            return Ok(if conflict {
                EXIT_CONFLICT
            } else if failed {
                EXIT_FAILED
            } else {
                0
            });
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

pub async fn queue_status(repo: PathBuf, json: bool) -> Result<i32> {
    let mut c = Client::connect().await?;
    let entries = landing(&mut c, &repo).await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &entries).context("cannot write JSON")?;
        writeln!(out)?;
        return Ok(0);
    }
    if entries.is_empty() {
        writeln!(out, "the landing queue of {} is empty", repo.display())?;
    }
    for e in &entries {
        writeln!(out, "{}", describe(e))?;
        if let Some(log) = &e.gate_log {
            writeln!(out, "  gate output: {}", log.display())?;
            // The gate's last lines, while it runs or when it failed.
            if e.state == "gating" || e.failure.as_deref() == Some("gate") {
                let text = std::fs::read(log).unwrap_or_default();
                let text = String::from_utf8_lossy(&text);
                let lines: Vec<&str> = text.lines().collect();
                for l in &lines[lines.len().saturating_sub(GATE_LINES)..] {
                    writeln!(out, "    {l}")?;
                }
            }
        }
    }
    Ok(0)
}

pub async fn queue_cancel(target: Target) -> Result<i32> {
    let mut c = Client::connect().await?;
    match c.request(Request::LandCancel { target }).await? {
        Reply::Ok => Ok(0),
        Reply::Note(n) => {
            println!("{n}");
            Ok(0)
        }
        other => bail!("unexpected reply to land --cancel: {other:?}"),
    }
}

/// The `conflicts with <agent>: <paths>` lines under an agent's row in `ls`.
pub fn print_conflicts(out: &mut impl Write, a: &AgentInfo) -> std::io::Result<()> {
    for c in &a.conflicts {
        let with = if c.base { format!("{} (base)", c.with) } else { c.with.clone() };
        writeln!(out, "  conflicts with {with}: {}", c.paths.join(", "))?;
    }
    if let Some(l) = &a.landing {
        let mut line = format!("  landing: {}", l.state);
        if let Some(p) = l.position.filter(|_| l.state == "waiting") {
            line.push_str(&format!(" (#{p})"));
        }
        if let Some(r) = &l.reason {
            line.push_str(&format!(": {r}"));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}
