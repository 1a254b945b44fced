//! Frame cost of the dashboard with 8 busy agents visible in the grid: each frame applies one
//! screen diff per agent (every row changed, as when output scrolls) and draws the frame the
//! way the dashboard does (ratatui diff, crossterm escape sequences, synchronized output) into
//! memory. The budget (SPEC §11) is 4 ms of CPU per frame.
//!
//! `cargo run --release --example dashboard_frame [COLSxROWS ...]`

use std::time::{Duration, Instant};

use corral::proto::AgentInfo;
use corral::term::screen::ScreenUpdate;
use corral::term::{Screen, Size, new_emulator};
use corral::tui::fixtures;
use corral::tui::state::{AppState, Attachment, Msg, View};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;

const AGENTS: usize = 8;
/// Distinct screens per agent; the measured frames cycle through them.
const SCREENS: usize = 600;
const FRAMES: usize = 3000;
const AGENT_SIZE: Size = Size { cols: 120, rows: 40 };

/// Busy output: coloured build and test lines, a spinner line, scrolling.
fn updates(seed: usize) -> Vec<ScreenUpdate> {
    let mut e = new_emulator(AGENT_SIZE, 5000);
    let mut last: Option<Screen> = None;
    let mut out = Vec::with_capacity(SCREENS);
    for f in 0..SCREENS {
        let mut chunk = String::new();
        for l in 0..3 {
            let n = seed * 10_000 + f * 3 + l;
            chunk.push_str(&format!(
                "\x1b[1;32m   Compiling\x1b[0m crate-{n} v0.{}.{} \x1b[38;5;{}m(/src/{n})\x1b[0m test \x1b[{}mresult\x1b[0m … {}\r\n",
                n % 7,
                n % 13,
                n % 256,
                31 + n % 7,
                "x".repeat(n % 40)
            ));
        }
        chunk.push_str(&format!(
            "\x1b[33m✻ Working… {}s\x1b[0m \x1b[2m(esc to interrupt)\x1b[0m",
            f / 60
        ));
        chunk.push('\r');
        e.feed(chunk.as_bytes());
        let s = e.screen();
        out.push(s.diff(last.as_ref()));
        last = Some(s);
    }
    out
}

/// Where frames go: counted, then dropped, as a terminal would take them.
struct Sink {
    bytes: std::rc::Rc<std::cell::Cell<usize>>,
}

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.bytes.set(self.bytes.get() + b.len());
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn cpu_ticks() -> Option<u64> {
    // utime + stime of this process, in clock ticks (USER_HZ, 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn run(cols: u16, rows: u16, streams: &[Vec<ScreenUpdate>]) {
    let mut st: AppState = fixtures::demo(Rect::new(0, 0, cols, rows));
    st.agents = (0..AGENTS)
        .map(|i| {
            let mut a: AgentInfo =
                fixtures::agent(fixtures::REPO, &format!("agent-{i}"), "working", i as u64);
            a.pid = Some(5000 + i as u32);
            a
        })
        .collect();
    st.panes.clear();
    st.attachments.clear();
    st.view = View::Grid;
    st.selected = Some((fixtures::REPO.into(), "agent-0".into()));
    for (i, a) in st.agents.iter().enumerate() {
        st.attachments.insert(
            (a.repo.clone(), a.name.clone()),
            Attachment { id: 1 + i as u64, pid: a.pid, live: true },
        );
    }
    let counter = std::rc::Rc::new(std::cell::Cell::new(0usize));
    // A fixed viewport: the real terminal's size does not matter here.
    let backend = CrosstermBackend::new(std::io::BufWriter::with_capacity(
        1 << 16,
        Sink { bytes: counter.clone() },
    ));
    let mut term = Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(Rect::new(0, 0, cols, rows)),
        },
    )
    .expect("terminal");
    let mut times = Vec::with_capacity(FRAMES);
    let cpu0 = cpu_ticks();
    let t0 = Instant::now();
    for f in 0..FRAMES {
        let start = Instant::now();
        for (i, s) in streams.iter().enumerate() {
            let fx = corral::tui::update::update(
                &mut st,
                Msg::Screen(1 + i as u64, s[f % SCREENS].clone()),
            );
            debug_assert!(fx.is_empty());
        }
        corral::tui::app::draw_frame(&mut term, &st).expect("draw");
        assert!(counter.get() > 0 || f == 0, "nothing was drawn");
        times.push(start.elapsed());
    }
    let bytes = counter.get();
    let wall = t0.elapsed();
    let cpu = cpu0.zip(cpu_ticks()).map(|(a, b)| Duration::from_millis((b - a) * 10));
    times.sort();
    let mean = wall / FRAMES as u32;
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{cols}x{rows}, {AGENTS} busy agents in the grid: {FRAMES} frames, mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; process CPU {} ; {} KiB written per frame",
        mean.as_secs_f64() * 1e3,
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        cpu.map_or("n/a".into(), |c| format!(
            "{:.3} ms/frame",
            c.as_secs_f64() * 1e3 / FRAMES as f64
        )),
        bytes / FRAMES / 1024,
    );
}

fn main() {
    let sizes: Vec<(u16, u16)> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<Size>().ok().map(|s| (s.cols, s.rows)))
        .collect();
    let sizes = if sizes.is_empty() { vec![(120, 40), (240, 67)] } else { sizes };
    let streams: Vec<Vec<ScreenUpdate>> = (0..AGENTS).map(updates).collect();
    for (c, r) in sizes {
        run(c, r, &streams);
    }
}
