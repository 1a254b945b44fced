//! One function per command that is not the dashboard. Each turns settings from the command line
//! into requests to the server and prints the answer; none holds state of its own.

mod attach;
mod colors;
mod doctor;
mod hosts;
mod land;
mod review;
mod status;

pub use attach::attach;
pub use colors::ask_terminal as ask_terminal_colors;
pub use doctor::doctor;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::cli::Command;
use crate::client::{self, Client};
use crate::proto::{AgentInfo, MergeMode, NewAgent, Reply, Request, ServerMsg, Target};
use crate::term::{Line, Size};

/// Run one command; returns the process exit code.
pub async fn run(repo: Option<PathBuf>, cmd: Command) -> Result<i32> {
    if let Some(h) = crate::hosts::selected() {
        let here_only = match &cmd {
            Command::Ui => Some("ui"),
            Command::Server { .. } => Some("server"),
            Command::Proxy { .. } => Some("proxy"),
            Command::Hosts { .. } => Some("hosts"),
            Command::Doctor => Some("doctor"),
            Command::Trust => Some("trust"),
            Command::Hook { .. } => Some("hook"),
            Command::Completions { .. } => Some("completions"),
            _ => None,
        };
        if let Some(verb) = here_only {
            bail!(
                "`corral {verb}` works on this machine only (--host {} is for new, ls, attach, tail, send, diff, merge, land, stop, restart, rm and the like); run it on {} itself",
                h.name,
                h.name
            );
        }
    }
    match cmd {
        Command::Ui => crate::tui::run(repo).await,
        Command::New { prompt, profile, name, base, count, size, detach, worktree, args } => {
            let root = client::repo_root(repo.as_ref())?;
            // The server runs elsewhere: it needs the path as this directory sees it.
            let worktree = worktree
                .map(|p| {
                    std::path::absolute(&p)
                        .with_context(|| format!("cannot resolve worktree path {}", p.display()))
                })
                .transpose()?;
            let size = size.or_else(terminal_size).unwrap_or(Size::DEFAULT);
            let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            // Asked before the agent starts, so its first colour query gets this terminal's.
            let asked = interactive.then(colors::ask_terminal_now);
            let mut c = Client::connect().await?;
            let reply = c
                .request(Request::New(NewAgent {
                    repo: root.clone(),
                    prompt,
                    profile,
                    name,
                    base,
                    count,
                    size: Some(size),
                    env: client::env_vec(),
                    worktree,
                    colors: asked.as_ref().and_then(|(c, _)| *c),
                    args,
                }))
                .await?;
            let Reply::Created(names) = reply else { bail!("unexpected reply to new: {reply:?}") };
            let mut out = std::io::stdout().lock();
            for n in &names {
                writeln!(out, "{n}")?;
            }
            out.flush()?;
            drop(out);
            if !detach && names.len() == 1 && interactive {
                return attach::attach_asked(c, root, names[0].clone(), asked).await;
            }
            Ok(0)
        }
        Command::Ls { json, all } => {
            let root = if all { None } else { Some(client::repo_root(repo.as_ref())?) };
            // `ls` needs nothing from the config, but it is where a user looks first: a broken
            // file is reported here (as `new` would refuse it) and the agents are listed anyway.
            if crate::hosts::selected().is_none()
                && let (_, Some(e)) = crate::config::load_or_fallback(
                    &crate::paths::user_config_file(),
                    root.as_deref(),
                )
            {
                eprintln!("corral: warning: {e}");
            }
            let mut c = Client::connect().await?;
            let Reply::Agents(agents) = c.request(Request::List { repo: root }).await? else {
                bail!("unexpected reply to ls");
            };
            let here = crate::hosts::selected().map(|h| h.name.clone());
            let mut rows: Vec<(Option<String>, AgentInfo)> =
                agents.into_iter().map(|a| (here.clone(), a)).collect();
            // `--all` on this machine: every configured host's agents too.
            let mut host_states = Vec::new();
            if all && here.is_none() {
                let configured = crate::hosts::all().unwrap_or_else(|e| {
                    eprintln!("corral: warning: {e:#}");
                    Vec::new()
                });
                for h in hosts::list_hosts(configured).await {
                    match h.answer {
                        Ok((version, agents)) => {
                            host_states.push(serde_json::json!({
                                "name": h.host.name, "state": "connected", "version": version,
                            }));
                            rows.extend(agents.into_iter().map(|a| (Some(h.host.name.clone()), a)));
                        }
                        Err(e) => {
                            eprintln!("corral: {e}");
                            host_states.push(serde_json::json!({
                                "name": h.host.name, "state": "unreachable", "error": e,
                            }));
                        }
                    }
                }
            }
            if json {
                print_json(&c, &rows, &host_states)?;
            } else {
                print_table(&rows, all)?;
            }
            Ok(0)
        }
        Command::Attach { name } => {
            let root = client::repo_root(repo.as_ref())?;
            let c = Client::connect().await?;
            attach(c, root, name).await
        }
        Command::Tail { name, follow, lines, plain } => {
            let target = target(repo.as_ref(), name)?;
            let colour = !plain && std::io::stdout().is_terminal();
            let mut c = Client::connect().await?;
            tail(&mut c, target, follow, lines, colour).await
        }
        Command::Send { name, text, no_enter, queue } => {
            let target = target(repo.as_ref(), name)?;
            let mut c = Client::connect().await?;
            if queue {
                if let Reply::Note(n) = c.request(Request::Enqueue { target, text }).await? {
                    eprintln!("{n}");
                }
                return Ok(0);
            }
            c.request(Request::Send { target, text, enter: !no_enter }).await?;
            Ok(0)
        }
        Command::Queue { name, clear, remove } => {
            status::queue(target(repo.as_ref(), name)?, clear, remove).await
        }
        Command::Status { name, explain, json } => {
            status::status(target(repo.as_ref(), name)?, explain, json).await
        }
        Command::Hook { event, payload } => Ok(status::hook(repo, &event, payload).await),
        Command::Stop { name } => simple(repo, name, |t| Request::Stop { target: t }).await,
        Command::Restart { name } => {
            simple(repo, name, |t| Request::Restart { target: t, env: client::env_vec() }).await
        }
        Command::Diff { name, stat } => land::diff(repo.as_ref(), name, stat).await,
        Command::Merge { name, squash, rebase, ff_only, keep, message, yes } => {
            let mode = match (squash, rebase, ff_only) {
                (true, _, _) => MergeMode::Squash,
                (_, true, _) => MergeMode::Rebase,
                (_, _, true) => MergeMode::FfOnly,
                _ => MergeMode::Merge,
            };
            land::merge(target(repo.as_ref(), name)?, mode, keep, message, yes).await
        }
        Command::Sync { name } => land::sync(target(repo.as_ref(), name)?).await,
        Command::Resolve { name, agent } => {
            let (git_env, env) = (client::git_env(), client::env_vec());
            simple(repo, name, |t| Request::Resolve { target: t, git_env, profile: agent, env })
                .await
        }
        Command::Land { names, squash, rebase, keep, no_wait, status, json, cancel } => {
            let root = client::repo_root(repo.as_ref())?;
            if status {
                return land::queue_status(root, json).await;
            }
            if let Some(name) = cancel {
                return land::queue_cancel(Target { repo: root, name }).await;
            }
            let mode = match (squash, rebase) {
                (true, _) => MergeMode::Squash,
                (_, true) => MergeMode::Rebase,
                _ => MergeMode::Merge,
            };
            land::queue_land(root, names, mode, keep, no_wait).await
        }
        Command::Compare { group, no_gate, json, pick, queue, squash, rebase } => {
            let mode = match (squash, rebase) {
                (true, _) => MergeMode::Squash,
                (_, true) => MergeMode::Rebase,
                _ => MergeMode::Merge,
            };
            match pick {
                Some(name) => review::pick(repo, group, name, mode, queue).await,
                None => review::compare(repo, group, !no_gate, json).await,
            }
        }
        Command::Review { name, comments, queue } => {
            review::review(repo, name, comments, queue).await
        }
        Command::Fork { name, prompt, new_name, size, detach } => {
            review::fork(repo, name, new_name, prompt, size, detach).await
        }
        Command::Rm { name, force } => {
            let git_env = client::git_env();
            simple(repo, name, |t| Request::Remove { target: t, force, git_env }).await
        }
        Command::Server {
            foreground, detach, upgrade, handover_version, handover_check, ..
        } => {
            if handover_version {
                println!("{}", crate::server::handover::version_line());
                return Ok(0);
            }
            if let Some(path) = handover_check {
                crate::server::handover::check_state(&path).map_err(|e| anyhow::anyhow!(e))?;
                println!("{}", crate::server::handover::version_line());
                return Ok(0);
            }
            if let Some(to) = upgrade {
                return upgrade_server(to).await;
            }
            if foreground {
                crate::server::run(detach, None)?;
                return Ok(0);
            }
            if let Some(c) = Client::connect_existing().await? {
                println!("corral server already running (pid {})", c.server_pid);
                return Ok(0);
            }
            let c = Client::connect().await?;
            println!("corral server started (pid {})", c.server_pid);
            Ok(0)
        }
        Command::Gc { yes, force } => {
            let root = client::repo_root(repo.as_ref())?;
            let mut c = Client::connect().await?;
            let Reply::Text(report) = c
                .request(Request::Gc { repo: root, remove: yes, force, git_env: client::git_env() })
                .await?
            else {
                bail!("unexpected reply to gc");
            };
            print!("{report}");
            Ok(0)
        }
        Command::KillServer => kill_server().await,
        Command::Proxy { mux } => hosts::proxy(mux).await,
        Command::Hosts { json } => hosts::hosts(json).await,
        Command::Doctor => doctor().await,
        Command::Trust => trust(repo),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = crate::cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "corral", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn target(repo: Option<&PathBuf>, name: String) -> Result<Target> {
    Ok(Target { repo: client::repo_root(repo)?, name })
}

async fn simple(
    repo: Option<PathBuf>,
    name: String,
    make: impl FnOnce(Target) -> Request,
) -> Result<i32> {
    let t = target(repo.as_ref(), name)?;
    let mut c = Client::connect().await?;
    if let Reply::Note(n) = c.request(make(t)).await? {
        eprintln!("{n}");
    }
    Ok(0)
}

pub fn terminal_size() -> Option<Size> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let (cols, rows) = crossterm::terminal::size().ok()?;
    (cols >= 2 && rows >= 2).then(|| Size::new(cols, rows))
}

fn print_lines(lines: &[Line], colour: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(crate::term::screen::render_text(lines, colour).as_bytes())?;
    out.flush()
}

/// How long `tail -f` and `attach` try to connect again after their server went away (a server
/// being upgraded is back within a second).
const RECONNECT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn tail(
    c: &mut Client,
    target: Target,
    follow: bool,
    lines: u32,
    colour: bool,
) -> Result<i32> {
    if !follow {
        let Reply::Lines(ls) = c.request(Request::Tail { target, lines }).await? else {
            bail!("unexpected reply to tail");
        };
        print_lines(&ls, colour)?;
        return Ok(0);
    }
    let lines = if lines == 0 { 10 } else { lines };
    let follow = |from| Request::Follow { target: target.clone(), lines, ansi: colour, from };
    let Reply::Text(first) = c.request(follow(None)).await? else {
        bail!("unexpected reply to tail -f");
    };
    let print = |text: &str| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    };
    print(&first)?;
    // The next line number to print: after the connection closes (the server was upgraded), a
    // new connection goes on from there, so no line is printed twice or left out.
    let mut next = None;
    let mut reconnected;
    loop {
        let msg = match c.recv().await {
            Ok(m) => m,
            Err(e) => {
                // Another host's server is reached again by logging in again: not from here.
                let Some(from) = next.filter(|_| c.ssh.is_none()) else { return Err(e) };
                reconnected = None;
                let deadline = std::time::Instant::now() + RECONNECT_LIMIT;
                while reconnected.is_none() && std::time::Instant::now() < deadline {
                    if let Ok(Some(mut n)) = Client::connect_existing().await
                        && let Ok(Reply::Text(text)) = n.request(follow(Some(from))).await
                    {
                        print(&text)?;
                        reconnected = Some(n);
                    } else {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
                match reconnected.take() {
                    Some(n) => {
                        *c = n;
                        continue;
                    }
                    None => return Err(e),
                }
            }
        };
        match msg {
            ServerMsg::Lines(text, n) => {
                print(&text)?;
                next = Some(n);
            }
            ServerMsg::Text(text) => print(&text)?,
            ServerMsg::Exited(code) => {
                eprintln!(
                    "[agent exited{}]",
                    code.map(|c| format!(" with code {c}")).unwrap_or_default()
                );
                return Ok(0);
            }
            _ => {}
        }
    }
}

fn age(secs: u64) -> String {
    let now = crate::server::session::unix_now();
    let d = now.saturating_sub(secs);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86400 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86400),
    }
}

fn print_table(listed: &[(Option<String>, AgentInfo)], all: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let agents: Vec<&AgentInfo> = listed.iter().map(|(_, a)| a).collect();
    let show_host = listed.iter().any(|(h, _)| h.is_some());
    if agents.is_empty() {
        writeln!(out, "no agents; start one with `corral new \"PROMPT\"`")?;
        return Ok(());
    }
    let mut rows = vec![vec![
        "NAME".to_string(),
        "STATUS".into(),
        "PROFILE".into(),
        "BRANCH".into(),
        "FILES".into(),
        "+/-".into(),
        "PORT".into(),
        "AGE".into(),
    ]];
    if all {
        rows[0].insert(0, "REPO".into());
    }
    if show_host {
        rows[0].insert(0, "HOST".into());
    }
    for (host, a) in listed {
        let mut status = a.status.clone();
        if let (Some(code), "exited") = (a.exit_code, a.status.as_str()) {
            status = format!("exited ({code})");
        }
        if a.queued > 0 {
            status = format!("{status} +{} queued", a.queued);
        }
        let mut row = vec![
            a.name.clone(),
            status,
            a.profile.clone(),
            a.branch.clone(),
            a.diff.map(|d| d.files.to_string()).unwrap_or_else(|| "-".into()),
            a.diff
                .map(|d| format!("+{} -{}", d.insertions, d.deletions))
                .unwrap_or_else(|| "-".into()),
            a.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            age(a.created),
        ];
        if all {
            row.insert(0, a.repo.display().to_string());
        }
        if show_host {
            row.insert(0, host.clone().unwrap_or_else(|| "local".into()));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for (n, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
        if let Some(a) = n.checked_sub(1).and_then(|i| agents.get(i)) {
            land::print_conflicts(&mut out, a)?;
        }
    }
    Ok(())
}

fn print_json(
    c: &Client,
    listed: &[(Option<String>, AgentInfo)],
    hosts: &[serde_json::Value],
) -> Result<()> {
    let mut agents = Vec::with_capacity(listed.len());
    for (host, a) in listed {
        let mut v = serde_json::to_value(a).context("cannot write JSON")?;
        if let Some(o) = v.as_object_mut() {
            // `null`: this machine.
            o.insert("host".into(), serde_json::json!(host));
        }
        agents.push(v);
    }
    let mut v = serde_json::json!({
        "server": {
            "pid": c.server_pid,
            "version": env!("CARGO_PKG_VERSION"),
            "socket": crate::paths::socket_path(),
        },
        "agents": agents,
    });
    if !hosts.is_empty() {
        v["hosts"] = serde_json::json!(hosts);
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &v).context("cannot write JSON")?;
    writeln!(out)?;
    Ok(())
}

/// `server --upgrade`: hand the running server's agents to this binary.
async fn upgrade_server(to: Option<std::path::PathBuf>) -> Result<i32> {
    let exe = match to {
        Some(p) => std::path::absolute(&p)
            .with_context(|| format!("cannot resolve the binary path {}", p.display()))?,
        None => std::env::current_exe().context("cannot tell where this corral binary is")?,
    };
    let before = match Client::connect_existing().await {
        Ok(Some(mut c)) => Some(list_local(&mut c).await?),
        Ok(None) => {
            // Nothing to hand over: the next command starts this binary's server anyway.
            println!("no corral server is running; the next command starts this one");
            return Ok(0);
        }
        // A server of another protocol cannot list for us, but can still be asked.
        Err(_) => None,
    };
    let started = std::time::Instant::now();
    // On success the server's program is replaced and the connection closes unanswered; a
    // refusal is answered with the reason.
    if let Some(why) = Client::ask_upgrade(&exe).await? {
        bail!("{why}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let after = loop {
        match Client::connect_existing().await {
            Ok(Some(mut c)) => {
                if let Ok(agents) = list_local(&mut c).await {
                    break agents;
                }
            }
            // Nobody holds the server's lock: it died instead of handing over.
            Ok(None) => bail!(
                "the corral server stopped during the upgrade; the next command starts a new one and its agents come back `exited` (`corral restart NAME`)"
            ),
            Err(_) => {}
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the corral server did not come back after the upgrade; `corral doctor` says more"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let running = |l: &[AgentInfo]| l.iter().filter(|a| a.pid.is_some()).count();
    println!(
        "corral server upgraded to {} in {} ms: {} of {} running agents kept running",
        exe.display(),
        started.elapsed().as_millis(),
        running(&after),
        before.as_deref().map_or_else(|| "?".to_string(), |b| running(b).to_string())
    );
    Ok(0)
}

async fn list_local(c: &mut Client) -> Result<Vec<AgentInfo>> {
    match c.request(Request::List { repo: None }).await? {
        Reply::Agents(a) => Ok(a),
        other => bail!("unexpected reply to ls: {other:?}"),
    }
}

async fn kill_server() -> Result<i32> {
    let Some(mut c) = Client::connect_existing().await? else {
        eprintln!("no corral server is running");
        return Ok(1);
    };
    let pid = c.server_pid;
    c.request(Request::KillServer).await?;
    if c.ssh.is_some() {
        // Its lock file is on that host; it said it is going.
        return Ok(0);
    }
    // Return only once it is gone, so a command right after does not meet the old server. The
    // server holds its lock file until its last moment (even a zombie has released it).
    let lock_path = crate::paths::runtime_dir().join("server.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let free = std::fs::File::open(&lock_path).is_ok_and(|f| {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
        });
        if free {
            return Ok(0);
        }
        if std::time::Instant::now() >= deadline {
            bail!("the corral server (pid {pid}) did not stop within 10 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn trust(repo: Option<PathBuf>) -> Result<i32> {
    let root = client::repo_root(repo.as_ref())?;
    let loaded = crate::config::load(&crate::paths::user_config_file(), Some(&root))?;
    let Some(rf) = loaded.repo_file else {
        println!("{} has no .corral.toml; nothing to approve", root.display());
        return Ok(0);
    };
    if rf.command_keys.is_empty() {
        println!("{} defines no commands; nothing to approve", rf.path.display());
        return Ok(0);
    }
    crate::trust::approve(&rf.path, &rf.content)?;
    println!(
        "approved the commands in {} ({}); a change to the file needs approval again",
        rf.path.display(),
        rf.command_keys.join(", ")
    );
    Ok(0)
}
