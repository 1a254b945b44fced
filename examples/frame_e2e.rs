//! End-to-end cost of keeping busy panes on screen: a real client (the corral dashboard, or a
//! tmux client) runs in a PTY we own, its output is read continuously (so it never blocks on a
//! full PTY) and counted, and the CPU of the client and of its server is read from /proc over a
//! fixed window. Used by `benches/compare.sh` (section `frame`) for both sides, with the same
//! busy script in every pane, so the two figures come from the same run.
//!
//!   frame_e2e --size 240x67 --secs 10 --server PID --go FILE --tags 8 [--keys g] -- CMD...
//!
//! Before the window the probe waits for the client to go quiet, types `--keys`, and checks on
//! its own copy of the screen (corral's emulator, fed with everything the client wrote) that every
//! pane shows its `ready-N` line; then it creates the `--go` file that the busy scripts wait for,
//! skips `--settle` seconds, and measures. After the window it checks again that every pane
//! shows its own output. Prints one line:
//!
//!   client_cpu_ms server_cpu_ms secs bytes sync_frames writes
//!
//! `writes` counts bursts of output separated by at least 1 ms of quiet (what a terminal would
//! see as separate updates); `sync_frames` counts synchronized-output (mode 2026) frames.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corral::term::{Size, new_emulator};

type Error = Box<dyn std::error::Error>;

struct Args {
    size: Size,
    secs: f64,
    settle: f64,
    server: u32,
    go: std::path::PathBuf,
    tags: usize,
    keys: Vec<u8>,
    show: bool,
    cmd: Vec<String>,
}

fn parse() -> Result<Args, Error> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let split = all.iter().position(|a| a == "--").ok_or("no command after --")?;
    let mut a = Args {
        size: Size::new(240, 67),
        secs: 10.0,
        settle: 1.0,
        server: 0,
        go: "go".into(),
        tags: 8,
        keys: Vec::new(),
        show: std::env::var_os("SHOW").is_some(),
        cmd: all[split + 1..].to_vec(),
    };
    let mut it = all[..split].iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--size" => a.size = v.parse().map_err(|_| format!("bad size {v}"))?,
            "--secs" => a.secs = v.parse()?,
            "--settle" => a.settle = v.parse()?,
            "--server" => a.server = v.parse()?,
            "--go" => a.go = v.into(),
            "--tags" => a.tags = v.parse()?,
            "--keys" => a.keys = v.as_bytes().to_vec(),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if a.server == 0 {
        return Err("--server PID is needed".into());
    }
    Ok(a)
}

/// utime + stime in milliseconds (from clock ticks, USER_HZ = 100 on Linux).
fn cpu_ms(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').ok_or("bad stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).ok_or("bad stat")?.parse::<u64>()?
        + f.get(12).ok_or("bad stat")?.parse::<u64>()?;
    Ok(ticks * 10)
}

/// Read until nothing has come for `quiet` (or `max` has passed), keeping what came.
fn drain(rx: &mpsc::Receiver<Vec<u8>>, all: &mut Vec<u8>, quiet: Duration, max: Duration) {
    let end = Instant::now() + max;
    while Instant::now() < end {
        match rx.recv_timeout(quiet) {
            Ok(b) => all.extend_from_slice(&b),
            Err(_) => break,
        }
    }
}

/// The screen the client's output draws, as text rows.
fn screen_rows(size: Size, bytes: &[u8]) -> Vec<String> {
    let mut e = new_emulator(size, 0);
    e.feed(bytes);
    e.screen_text()
}

/// Every pane `1..=tags` shows a line made by `line(tag)`.
fn check(
    rows: &[String],
    tags: usize,
    what: &str,
    line: impl Fn(usize) -> String,
) -> Result<(), Error> {
    let missing: Vec<usize> =
        (1..=tags).filter(|t| !rows.iter().any(|r| r.contains(&line(*t)))).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!("{what}: panes {missing:?} are not on screen:\n{}", rows.join("\n")).into())
}

fn main() -> Result<(), Error> {
    let a = parse()?;
    let (program, rest) = a.cmd.split_first().ok_or("no command")?;
    let pty = portable_pty::native_pty_system();
    let pair = pty.openpty(portable_pty::PtySize {
        rows: a.size.rows,
        cols: a.size.cols,
        pixel_width: 0,
        pixel_height: 0,
    })?;
    let mut builder = portable_pty::CommandBuilder::new(program);
    builder.args(rest);
    builder.env("TERM", "xterm-256color");
    builder.cwd(std::env::current_dir()?);
    let mut child = pair.slave.spawn_command(builder)?;
    drop(pair.slave);
    let client = child.process_id().ok_or("no client pid")?;
    let mut reader = pair.master.try_clone_reader()?;
    let writer = std::sync::Arc::new(std::sync::Mutex::new(pair.master.take_writer()?));
    // Until the window starts the reader thread answers the client's queries as a terminal does
    // (the dashboard asks for the colours at start and takes keys typed before the answer as
    // part of it); then it only reads and forwards, so the client never waits on a full PTY.
    let answering = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    {
        let (writer, answering, size) = (writer.clone(), answering.clone(), a.size);
        std::thread::spawn(move || {
            let mut emu = new_emulator(size, 10);
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = reader.read(&mut buf) {
                if answering.load(std::sync::atomic::Ordering::Relaxed) {
                    let replies = emu.feed(&buf[..n]).replies;
                    if !replies.is_empty()
                        && let Ok(mut w) = writer.lock()
                    {
                        let _ = w.write_all(&replies);
                        let _ = w.flush();
                    }
                }
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }

    let mut all = Vec::new();
    drain(&rx, &mut all, Duration::from_millis(1500), Duration::from_secs(20));
    if !a.keys.is_empty() {
        let mut w = writer.lock().map_err(|_| "writer poisoned")?;
        w.write_all(&a.keys)?;
        w.flush()?;
        drop(w);
        drain(&rx, &mut all, Duration::from_millis(1000), Duration::from_secs(20));
    }
    // The dashboard connects to its agents one by one: wait until every pane shows up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = screen_rows(a.size, &all);
        match check(&rows, a.tags, "before the window", |t| format!("ready-{t}")) {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => drain(&rx, &mut all, Duration::from_millis(300), Duration::from_secs(2)),
        }
    }
    if a.show {
        eprintln!("{}", screen_rows(a.size, &all).join("\n"));
    }

    answering.store(false, std::sync::atomic::Ordering::Relaxed);
    std::fs::write(&a.go, b"")?;
    // Skip the scripts' start and the first redraws.
    let settle_end = Instant::now() + Duration::from_secs_f64(a.settle);
    while let Some(left) = settle_end.checked_duration_since(Instant::now()) {
        if let Ok(b) = rx.recv_timeout(left) {
            all.extend_from_slice(&b);
        }
    }
    let (c0, s0) = (cpu_ms(client)?, cpu_ms(a.server)?);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(a.secs);
    let (mut bytes, mut frames, mut writes) = (0usize, 0usize, 0usize);
    let mut last: Option<Instant> = None;
    const BEGIN: &[u8] = b"\x1b[?2026h";
    let mut tail: Vec<u8> = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let Ok(b) = rx.recv_timeout(left) else { continue };
        let now = Instant::now();
        if last.is_none_or(|l| now - l >= Duration::from_millis(1)) {
            writes += 1;
        }
        last = Some(now);
        bytes += b.len();
        // A marker may be split across two reads.
        tail.extend_from_slice(&b);
        frames += tail.windows(BEGIN.len()).filter(|w| *w == BEGIN).count();
        let keep = tail.len().min(BEGIN.len() - 1);
        tail.drain(..tail.len() - keep);
        all.extend_from_slice(&b);
    }
    let secs = t0.elapsed().as_secs_f64();
    let (c1, s1) = (cpu_ms(client)?, cpu_ms(a.server)?);

    drain(&rx, &mut all, Duration::from_millis(200), Duration::from_secs(2));
    let rows = screen_rows(a.size, &all);
    if a.show {
        eprintln!("{}", rows.join("\n"));
    }
    check(&rows, a.tags, "after the window", |t| format!("crate-{t}-"))?;
    let _ = child.kill();
    println!("{} {} {secs:.2} {bytes} {frames} {writes}", c1 - c0, s1 - s0);
    Ok(())
}
