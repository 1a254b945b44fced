//! Ingest throughput of the terminal emulator: `cargo run --release --example ingest`.
//!
//! Not a test: it prints MB/s for plain text lines and for SGR-heavy coloured text, fed in
//! PTY-sized reads into an emulator with 5,000 lines of scrollback, polling settled lines the way
//! `tail -f` would.
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

const TOTAL: usize = 50 * 1024 * 1024;
const READ: usize = 4096;

fn plain() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL + 200);
    let mut i = 0u64;
    while out.len() < TOTAL {
        out.extend_from_slice(
            format!("{i:>8} the quick brown fox jumps over the lazy dog; lorem ipsum dolor\r\n")
                .as_bytes(),
        );
        i += 1;
    }
    out
}

fn coloured() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL + 400);
    let mut i = 0u64;
    while out.len() < TOTAL {
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

fn run(name: &str, data: &[u8]) {
    let mut e = term::new_emulator(Size::new(120, 40), 5000);
    let mut next = 0;
    let mut settled = 0usize;
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
    let secs = start.elapsed().as_secs_f64();
    let mb = data.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{name:>9}: {:.1} MiB/s feeding and polling settled lines ({settled} lines, polling {:.2} s)",
        mb / secs,
        polling.as_secs_f64()
    );

    let mut e = term::new_emulator(Size::new(120, 40), 5000);
    let start = Instant::now();
    for chunk in data.chunks(READ) {
        e.feed(chunk);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name:>9}: {:.1} MiB/s feeding only", mb / secs);

    // For comparison: alacritty alone, without our tracking, replies or XTVERSION scan.
    let config = Config { scrolling_history: 5000, ..Config::default() };
    let mut t = Term::new(config, &Dims, VoidListener);
    let mut p: Processor = Processor::new();
    let start = Instant::now();
    for chunk in data.chunks(READ) {
        p.advance(&mut t, chunk);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name:>9}: {:.1} MiB/s bare alacritty_terminal", mb / secs);
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
    run("plain", &plain());
    run("coloured", &coloured());
}
