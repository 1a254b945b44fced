//! `corral status`, `corral queue` and `corral hook`: the badge explained, the prompt queue shown
//! or cancelled, and the door agents' own hook systems knock on.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::client::Client;
use crate::proto::{Reply, Request, Target};

/// How long `corral hook` may take in all: an agent waits for its hooks.
const HOOK_LIMIT: Duration = Duration::from_secs(5);
/// Hook payloads larger than this are cut (the fields corral reads come first anyway).
const HOOK_PAYLOAD_MAX: u64 = 1 << 20;

fn clock(unix: u64) -> String {
    let now = crate::server::session::unix_now();
    let ago = now.saturating_sub(unix);
    let secs = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC, {ago} s ago", secs / 3600, secs / 60 % 60, secs % 60)
}

pub async fn status(target: Target, explain: bool, json: bool) -> Result<i32> {
    let mut c = Client::connect().await?;
    let Reply::Status(r) = c.request(Request::Status { target, explain: explain || json }).await?
    else {
        bail!("unexpected reply to status");
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(out, "{}: {} since {}", r.name, r.status, clock(r.status_since))?;
    writeln!(out, "  decided by {}", r.status_reason)?;
    if !r.queued.is_empty() {
        writeln!(out, "  {} message(s) queued (`corral queue {}`)", r.queued.len(), r.name)?;
    }
    if !explain {
        return Ok(0);
    }
    writeln!(out, "\nsignals, strongest first:")?;
    for s in &r.signals {
        writeln!(out, "  {s}")?;
    }
    if r.rules.is_empty() {
        writeln!(out, "\nscreen rules: none for this profile (activity decides)")?;
    } else {
        writeln!(out, "\nscreen rules, in order (the first that matches decides):")?;
    }
    let mut decided = false;
    for rule in &r.rules {
        let mark = match (rule.matched, decided) {
            (true, false) => "=>",
            (true, true) => "+ ",
            (false, _) => "  ",
        };
        decided |= rule.matched;
        writeln!(out, "{mark} {} -> {}: {}", rule.name, rule.status, rule.region)?;
        writeln!(out, "     {}", rule.detail)?;
        for line in &rule.text {
            writeln!(out, "     | {line}")?;
        }
    }
    Ok(0)
}

pub async fn queue(target: Target, clear: bool, remove: Option<u32>) -> Result<i32> {
    let name = target.name.clone();
    let mut c = Client::connect().await?;
    let Reply::Queue(left) = c.request(Request::Queue { target, clear, remove }).await? else {
        bail!("unexpected reply to queue");
    };
    let mut out = std::io::stdout().lock();
    if left.is_empty() {
        writeln!(out, "no messages queued for {name}")?;
    }
    for (i, m) in left.iter().enumerate() {
        let first = m.lines().next().unwrap_or("");
        let more = if m.lines().count() > 1 { " …" } else { "" };
        writeln!(out, "{}. {first}{more}", i + 1)?;
    }
    Ok(0)
}

/// Always succeeds: a hook must never fail or block the agent that runs it, and prints nothing
/// (Claude Code adds a hook's output to the conversation for some events).
pub async fn hook(repo: Option<PathBuf>, event: &str, payload: Option<String>) -> i32 {
    let payload = match payload {
        Some(p) => p,
        None if std::io::stdin().is_terminal() => String::new(),
        None => {
            // On a thread, so a caller that never closes our stdin cannot hold the agent up.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let mut buf = String::new();
                let _ = std::io::stdin().take(HOOK_PAYLOAD_MAX).read_to_string(&mut buf);
                let _ = tx.send(buf);
            });
            tokio::time::timeout(HOOK_LIMIT / 2, rx)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        }
    };
    let (Ok(name), repo) = (std::env::var("CORRAL_AGENT"), repo) else { return 0 };
    let repo = match repo.or_else(|| std::env::var_os("CORRAL_REPO").map(PathBuf::from)) {
        Some(r) => r,
        None => return 0,
    };
    let send = async {
        // Never start a server for a hook: with none running there is no badge to update.
        let Ok(Some(mut c)) = Client::connect_existing().await else { return };
        let target = Target { repo, name };
        let _ = c.request(Request::Hook { target, event: event.to_string(), payload }).await;
    };
    let _ = tokio::time::timeout(HOOK_LIMIT, send).await;
    0
}
