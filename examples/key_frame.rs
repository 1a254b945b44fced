//! Keystroke-to-frame latency of a full-screen client while its panes are busy: the client runs in
//! a PTY we own, its output is fed into corral's own emulator, and each key is timed until the
//! screen shows what the key should change (a selection marker, a window number). Also reports the
//! client's CPU and memory over the run. Used by `benches/scale.sh`.
//!
//!   key_frame SECONDS KEYS EXPECTS -- CMD...
//!
//! KEYS and EXPECTS are comma-separated and paired: key i is sent (escapes: `\r`, `\x02`), then the
//! screen must contain EXPECTS[i]; pairs are used in turn for SECONDS. Prints one line:
//! `median_us p99_us samples client_cpu_percent client_rss_kib`.

use std::time::{Duration, Instant};

#[path = "common/probe.rs"]
mod probe;

use probe::Probe;

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                b'x' if i + 3 < b.len() => {
                    if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("usage: key_frame SECS KEYS EXPECTS -- CMD...")?;
    let [secs, keys, expects] = &args[..split] else {
        return Err("usage: key_frame SECS KEYS EXPECTS -- CMD...".into());
    };
    let secs: u64 = secs.parse()?;
    let keys: Vec<Vec<u8>> = keys.split(',').map(unescape).collect();
    let expects: Vec<String> = expects.split(',').map(str::to_string).collect();
    if keys.len() != expects.len() || keys.is_empty() {
        return Err("KEYS and EXPECTS must pair up".into());
    }
    let cmd = &args[split + 1..];
    let size = corral::term::Size::new(200, 50);
    let mut probe = Probe::spawn(cmd, size.cols, size.rows)?;
    let pid = probe.child.process_id().ok_or("no pid")?;
    let rx = &probe.rx;
    let send = |bytes: &[u8]| probe.send(bytes);
    let mut emu = corral::term::new_emulator(size, 100);
    // The client's queries are answered as a terminal would.
    let feed = |emu: &mut Box<dyn corral::term::Emulator>, bytes: &[u8]| {
        let fb = emu.feed(bytes);
        if !fb.replies.is_empty() {
            let _ = send(&fb.replies);
        }
    };
    // Let the client start and draw its busy panes for a while.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(50)) {
            feed(&mut emu, &b);
        }
    }
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid).unwrap_or(0);
    let mut samples = Vec::new();
    let mut i = 0usize;
    while t0.elapsed() < Duration::from_secs(secs) {
        let k = i % keys.len();
        let start = Instant::now();
        send(&keys[k])?;
        let deadline = start + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => {
                    feed(&mut emu, &b);
                    if emu.screen_text().iter().any(|l| l.contains(expects[k].as_str())) {
                        break;
                    }
                }
                Err(_) => {
                    let screen = emu.screen_text().join("\n");
                    return Err(
                        format!("{:?} not on screen within 5 s:\n{screen}", expects[k]).into()
                    );
                }
            }
        }
        samples.push(start.elapsed());
        i += 1;
        // A key every half second, reading (and drawing) what comes meanwhile.
        let next = start + Duration::from_millis(500);
        while Instant::now() < next {
            if let Ok(b) = rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                feed(&mut emu, &b);
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let c1 = cpu_ticks(pid).unwrap_or(c0);
    let rss = rss_kib(pid).unwrap_or(0);
    // /proc reports CPU time in USER_HZ, 100 ticks a second on Linux.
    let cpu = (c1 - c0) as f64 / 100.0 / wall * 100.0;
    let _ = probe.child.kill();
    samples.sort();
    let med = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    println!("{} {} {} {:.1} {}", med.as_micros(), p99.as_micros(), samples.len(), cpu, rss);
    Ok(())
}
