//! Ingest throughput of the terminal emulator: `cargo run --release --example ingest`.
//!
//! Not a test: it prints MB/s for plain text lines and for SGR-heavy coloured text, fed in
//! PTY-sized reads into an emulator with 5,000 lines of scrollback, polling settled lines the way
//! `tail -f` would. Each figure is given per second of wall time and per second of this thread's
//! CPU time (from /proc, 10 ms ticks): on a shared machine the second is the steadier one.
#![allow(dead_code)]

#[path = "../src/term/mod.rs"]
mod term;

use std::time::Instant;

use alacritty_terminal::Term;
use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::term::Config;
use alacritty_terminal::vte::ansi::Processor;
use term::Size;

/// MiB of each input; `INGEST_MB=n` changes it (a small input for callgrind, say).
fn total() -> usize {
    let mb = std::env::var("INGEST_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    mb * 1024 * 1024
}
const READ: usize = 4096;

fn plain() -> Vec<u8> {
    let total = total();
    let mut out = Vec::with_capacity(total + 200);
    let mut i = 0u64;
    while out.len() < total {
        out.extend_from_slice(
            format!("{i:>8} the quick brown fox jumps over the lazy dog; lorem ipsum dolor\r\n")
                .as_bytes(),
        );
        i += 1;
    }
    out
}

fn coloured() -> Vec<u8> {
    let total = total();
    let mut out = Vec::with_capacity(total + 400);
    let mut i = 0u64;
    while out.len() < total {
        let line = format!(
            "\x1b[1;38;5;{}m{i:>8}\x1b[0m \x1b[32mfn\x1b[0m \x1b[38;2;{};120;200mname\x1b[39m(\x1b[3;33marg\x1b[23;39m: \x1b[4;36mType\x1b[24;39m) \x1b[48;5;{}m{{ body }}\x1b[0m\r\n",
            i % 256,
            i % 256,
            (i * 7) % 256
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out
}

/// This thread's user + system CPU time in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // The command name may hold spaces; the fields counted here come after its closing paren.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// "W MiB/s (C MiB/cpu-s)" for `mb` processed since `start` / `cpu`.
fn rates(mb: f64, start: Instant, cpu: f64) -> String {
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_secs() - cpu).max(0.01);
    format!("{:.1} MiB/s ({:.1} MiB/cpu-s)", mb / wall, mb / cpu)
}

fn run(name: &str, data: &[u8]) {
    let mb = data.len() as f64 / (1024.0 * 1024.0);
    let mut e = term::new_emulator(Size::new(120, 40), 5000);
    let mut next = 0;
    let mut settled = 0usize;
    let cpu = cpu_secs();
    let start = Instant::now();
    let mut polling = std::time::Duration::ZERO;
    for chunk in data.chunks(READ) {
        e.feed(chunk);
        let t = Instant::now();
        for l in e.settled_lines_since(next) {
            next = l.number + 1;
            settled += 1;
        }
        polling += t.elapsed();
    }
    println!(
        "{name:>9}: {} feeding and polling settled lines ({settled} lines, polling {:.2} s)",
        rates(mb, start, cpu),
        polling.as_secs_f64()
    );

    let mut e = term::new_emulator(Size::new(120, 40), 5000);
    let cpu = cpu_secs();
    let start = Instant::now();
    for chunk in data.chunks(READ) {
        e.feed(chunk);
    }
    println!("{name:>9}: {} feeding only", rates(mb, start, cpu));

    // For comparison: alacritty alone, without our tracking, replies or XTVERSION scan.
    let config = Config { scrolling_history: 5000, ..Config::default() };
    let mut t = Term::new(config, &Dims, VoidListener);
    let mut p: Processor = Processor::new();
    let cpu = cpu_secs();
    let start = Instant::now();
    for chunk in data.chunks(READ) {
        p.advance(&mut t, chunk);
    }
    println!("{name:>9}: {} bare alacritty_terminal", rates(mb, start, cpu));
}

struct Dims;

impl Dimensions for Dims {
    fn total_lines(&self) -> usize {
        40
    }
    fn screen_lines(&self) -> usize {
        40
    }
    fn columns(&self) -> usize {
        120
    }
}

fn main() {
    // `INGEST_ONLY=plain` (or `coloured`) runs one input.
    let only = std::env::var("INGEST_ONLY").unwrap_or_default();
    if only != "coloured" {
        run("plain", &plain());
    }
    if only != "plain" {
        run("coloured", &coloured());
    }
}
