//! Keystroke-to-echo latency through a client running in a PTY we own: type one character, time
//! until the client's output contains it, erase the line (ctrl-u), repeat. The agent behind the
//! client is `cat`, so the echo comes from the agent's own terminal line discipline and what is
//! measured is the client/server path. Used by `benches/latency.sh`; prints
//! `median_us p95_us` for the command given after `--`.
//!
//!   echo_latency [ROUNDS] -- corral attach lat
//!   echo_latency [ROUNDS] -- tmux -L x attach

use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "common/probe.rs"]
mod probe;

use probe::Probe;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split =
        args.iter().position(|a| a == "--").ok_or("usage: echo_latency [ROUNDS] -- CMD...")?;
    let rounds: usize = args[..split].first().and_then(|r| r.parse().ok()).unwrap_or(200);
    let cmd = &args[split + 1..];
    let mut probe = Probe::spawn(cmd, 120, 40)?;
    let rx = &probe.rx;
    let send = |bytes: &[u8]| probe.send(bytes);
    // Let the client draw its first screen and go quiet.
    drain(rx, Duration::from_millis(1500));
    if std::env::var_os("FOCUS_FIRST").is_some() {
        // The dashboard: Enter focuses the selected agent, then keys go to it.
        send(b"\r")?;
        drain(rx, Duration::from_millis(1000));
    }
    let mut samples = Vec::with_capacity(rounds);
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    for i in 0..rounds {
        let c = letters[i % letters.len()];
        let start = Instant::now();
        send(&[c])?;
        let deadline = start + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(bytes) if bytes.contains(&c) => break,
                Ok(_) => continue,
                Err(_) => return Err(format!("no echo of {:?} within 5 s", c as char).into()),
            }
        }
        samples.push(start.elapsed());
        send(b"\x15")?;
        drain(rx, Duration::from_millis(30));
    }
    let _ = probe.child.kill();
    samples.sort();
    let med = samples[samples.len() / 2];
    let p95 = samples[samples.len() * 95 / 100];
    println!("{} {}", med.as_micros(), p95.as_micros());
    Ok(())
}

/// Read until nothing has come for `quiet`.
fn drain(rx: &mpsc::Receiver<Vec<u8>>, quiet: Duration) {
    while rx.recv_timeout(quiet).is_ok() {}
}
