//! The review loop's commands: `review`, `fork` and `compare`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};

use super::{attach, colors, target, terminal_size};
use crate::client::{self, Client};
use crate::proto::{Reply, Request};
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
