//! The review loop's commands: `review`, `fork` and `compare`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};

use super::{attach, colors, target, terminal_size};
use crate::client::{self, Client};
use crate::proto::{MergeMode, Reply, Request};
use crate::term::Size;

pub async fn fork(
    repo: Option<PathBuf>,
    name: String,
    new_name: Option<String>,
    prompt: Option<String>,
    size: Option<Size>,
    detach: bool,
) -> Result<i32> {
    let t = target(repo.as_ref(), name)?;
    let root = t.repo.clone();
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let asked = (interactive && !detach).then(colors::ask_terminal_now);
    let mut c = Client::connect().await?;
    let reply = c
        .request(Request::Fork {
            target: t,
            name: new_name,
            prompt,
            size: size.or_else(terminal_size),
            env: client::env_vec(),
            git_env: client::git_env(),
        })
        .await?;
    let Reply::Forked { name, note } = reply else { bail!("unexpected reply to fork: {reply:?}") };
    if let Some(n) = note {
        eprintln!("corral: {n}");
    }
    println!("{name}");
    if !detach && interactive {
        return attach::attach_asked(c, root, name, asked).await;
    }
    Ok(0)
}

pub async fn review(
    repo: Option<PathBuf>,
    name: String,
    comments: Vec<String>,
    queue: bool,
) -> Result<i32> {
    let comments = match comments.iter().map(|c| crate::review::parse_cli(c)).collect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corral: {e}");
            return Ok(2);
        }
    };
    let t = target(repo.as_ref(), name)?;
    let mut c = Client::connect().await?;
    if let Reply::Note(n) = c.request(Request::Review { target: t, comments, queue }).await? {
        eprintln!("{n}");
    }
    Ok(0)
}

pub async fn compare(repo: Option<PathBuf>, group: String, gate: bool, json: bool) -> Result<i32> {
    let root = client::repo_root(repo.as_ref())?;
    let mut c = Client::connect().await?;
    let Reply::Compare(entries) = c.request(Request::Compare { repo: root, group, gate }).await?
    else {
        bail!("unexpected reply to compare");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(0);
    }
    let name_w = entries.iter().map(|e| e.name.len()).max().unwrap_or(4).max(4);
    let with_gate = entries.iter().any(|e| e.gate.is_some());
    let mut head = format!("{:name_w$}  {:11}  {:>5}  {:>13}", "NAME", "STATUS", "FILES", "+/-");
    if with_gate {
        head.push_str(&format!("  {:16}", "GATE"));
    }
    head.push_str("  TOUCHED");
    println!("{head}");
    for e in &entries {
        let (files, lines) = match e.diff {
            Some(d) => (d.files.to_string(), format!("+{} -{}", d.insertions, d.deletions)),
            None => ("?".into(), "?".into()),
        };
        let mut row = format!("{:name_w$}  {:11}  {files:>5}  {lines:>13}", e.name, e.status);
        if with_gate {
            let g = e.gate.as_ref().map_or("-", |g| g.summary.as_str());
            row.push_str(&format!("  {g:16}"));
        }
        row.push_str(&format!("  {}", e.files.join(", ")));
        println!("{}", row.trim_end());
    }
    Ok(0)
}

pub async fn pick(
    repo: Option<PathBuf>,
    group: String,
    name: String,
    mode: MergeMode,
    queue: bool,
) -> Result<i32> {
    let t = target(repo.as_ref(), name)?;
    let mut c = Client::connect().await?;
    // The others go: make sure they are the group the user named.
    let ask = Request::Compare { repo: t.repo.clone(), group: group.clone(), gate: false };
    let Reply::Compare(entries) = c.request(ask).await? else {
        bail!("unexpected reply to compare")
    };
    if !entries.iter().any(|e| e.name == t.name) {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        bail!("agent '{}' is not in group '{group}' ({})", t.name, names.join(", "));
    }
    let req = Request::Pick { target: t, mode, queue, git_env: client::git_env() };
    match c.request(req).await? {
        Reply::Note(n) => eprintln!("{n}"),
        Reply::Conflict(paths) => {
            eprintln!(
                "corral: landing it would conflict in {}; nothing was removed",
                paths.join(", ")
            );
            return Ok(3);
        }
        _ => {}
    }
    Ok(0)
}
