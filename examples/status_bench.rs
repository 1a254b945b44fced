//! The status engine under load: N agents whose screens change every 100 ms and that switch between
//! a `working` and a `needs-input` screen every 2 s. Measures the server's CPU while nobody asks it
//! anything, then the detection delay (state change on screen → badge) by polling `ls` over one
//! connection every 2 ms. Run by `benches/status.sh`, which sets up the environment.
//!
//!     status_bench REPO PROFILE AGENTS SECONDS
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral::client::{self, Client};
use corral::proto::{NewAgent, Reply, Request};
use corral::term::Size;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, profile, n, secs] = args.as_slice() else {
        anyhow::bail!("usage: status_bench REPO PROFILE AGENTS SECONDS");
    };
    let repo = PathBuf::from(repo);
    let n: u32 = n.parse()?;
    let secs: u64 = secs.parse()?;
    let mut c = Client::connect().await?;
    let Reply::Created(names) = c
        .request(Request::New(NewAgent {
            repo: repo.clone(),
            prompt: None,
            profile: Some(profile.clone()),
            name: Some("load".into()),
            base: None,
            count: n,
            size: Some(Size::new(120, 40)),
            env: client::env_vec(),
            worktree: None,
            colors: None,
            args: Vec::new(),
        }))
        .await?
    else {
        anyhow::bail!("new failed");
    };
    let pid = c.server_pid;
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    // Let them all start and settle into their rhythm.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. CPU while nobody asks the server anything.
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let quiet_cpu = (cpu_ticks(pid) - c0) as f64 / ticks_per_sec / t0.elapsed().as_secs_f64();
    println!("agents: {n}");
    println!("server CPU, nobody asking: {:.1}% of one core", quiet_cpu * 100.0);

    // 2. Detection delay: poll the badges and compare with the agents' own log of switches.
    let mut changes: BTreeMap<String, Vec<(f64, String)>> = BTreeMap::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let started = now_unix();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut polls = 0u64;
    while Instant::now() < end {
        let before = now_unix();
        let Reply::Agents(agents) = c.request(Request::List { repo: Some(repo.clone()) }).await?
        else {
            anyhow::bail!("ls failed");
        };
        polls += 1;
        for a in agents {
            if last.get(&a.name) != Some(&a.status) {
                last.insert(a.name.clone(), a.status.clone());
                changes.entry(a.name.clone()).or_default().push((before, a.status));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut delays = Vec::new();
    let mut missed = 0;
    for name in &names {
        let Reply::Agents(agents) = c.request(Request::List { repo: Some(repo.clone()) }).await?
        else {
            anyhow::bail!("ls failed");
        };
        let Some(a) = agents.iter().find(|a| &a.name == name) else { continue };
        let log = std::fs::read_to_string(a.worktree.join("switches.log")).unwrap_or_default();
        let seen = changes.get(name).cloned().unwrap_or_default();
        for line in log.lines() {
            let Some((mode, t)) = line.split_once(' ') else { continue };
            let Ok(t) = t.parse::<f64>() else { continue };
            // Only switches well inside the polling window.
            if t < started + 0.5 || t > started + secs as f64 - 1.5 {
                continue;
            }
            let want = if mode == "ASK" { "needs-input" } else { "working" };
            match seen.iter().find(|(at, s)| *at >= t - 0.002 && s == want) {
                Some((at, _)) => delays.push((at - t).max(0.0) * 1000.0),
                None => missed += 1,
            }
        }
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    if delays.is_empty() {
        println!("detection delay: no state switches seen (agents that do not switch)");
        return Ok(());
    }
    println!(
        "detection delay over {} switches (ls polled every ~{:.1} ms): median {:.0} ms, p95 {:.0} ms, max {:.0} ms; missed {missed}",
        delays.len(),
        secs as f64 * 1000.0 / polls.max(1) as f64,
        pct(&delays, 0.5),
        pct(&delays, 0.95),
        pct(&delays, 1.0),
    );
    Ok(())
}
