//! `diff`, `merge` and `sync`: landing an agent's work. `merge` and `sync` are the server's (it
//! serializes them and stops the agent); `diff` only reads, so it runs here, against the worktree
//! the server names, and never holds the server up.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::client::{self, Client};
use crate::proto::{AgentInfo, MergeMode, Reply, Request, Target};

/// Exit code of a merge or sync that would conflict (SPEC §2).
const EXIT_CONFLICT: i32 = 3;

pub async fn diff(repo: Option<&PathBuf>, name: String, stat: bool) -> Result<i32> {
    let root = client::repo_root(repo)?;
    let mut c = Client::connect().await?;
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

/// The `conflicts with <agent>: <paths>` lines under an agent's row in `ls`.
pub fn print_conflicts(out: &mut impl Write, a: &AgentInfo) -> std::io::Result<()> {
    for c in &a.conflicts {
        let with = if c.base { format!("{} (base)", c.with) } else { c.with.clone() };
        writeln!(out, "  conflicts with {with}: {}", c.paths.join(", "))?;
    }
    Ok(())
}
