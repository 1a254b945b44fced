//! How much memory emulators with a full scrollback take (a probe, not a test).
use corral::term::{Emulator, Size, new_emulator};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let mut text = String::new();
    for i in 0..6000 {
        text.push_str(&format!("{i:06} {}\r\n", "x".repeat(92)));
    }
    let sb: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let base = rss_kb();
    let mut emus: Vec<Box<dyn Emulator>> = Vec::new();
    for _ in 0..10 {
        let mut e = new_emulator(Size::new(120, 40), sb);
        for chunk in text.as_bytes().chunks(4096) {
            e.feed(chunk);
        }
        emus.push(e);
    }
    let fed = rss_kb();
    for e in &mut emus {
        e.trim_memory();
    }
    let trimmed = rss_kb();
    println!("per emulator: fed {} KiB, trimmed {} KiB", (fed - base) / 10, (trimmed - base) / 10);
}
