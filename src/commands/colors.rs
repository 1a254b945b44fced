//! Asking the user's terminal for its default colours, once, when `attach` or the dashboard
//! starts (as tmux 3.3 does): the server answers agents' colour queries with them, so a program
//! in an agent picks the palette that suits the terminal it is really seen on.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::term::TermColors;
use crate::term::colors::{QUERY, read_answers};

/// How long a terminal gets to answer. Every terminal answers the device-attributes query that
/// ends ours, at once, so this is waited out only on one that answers nothing at all; it is long
/// because an answer that comes after it would be read as keys (the dashboard's `r`, `d`, `g`
/// are in `rgb:`), which only a terminal stalled for this long can cause.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// [`ask_terminal`] from a terminal in its usual (cooked) mode: raw only while asking, so the
/// answers are neither echoed nor held for a whole line.
pub fn ask_terminal_now() -> (Option<TermColors>, Vec<u8>) {
    if crossterm::terminal::enable_raw_mode().is_err() {
        return (None, Vec::new());
    }
    let asked = ask_terminal();
    let _ = crossterm::terminal::disable_raw_mode();
    asked
}

/// Ask the terminal on standard output for its colours and read the answers from standard input,
/// which must be a terminal in raw mode that nothing else reads yet. Returns the colours (None
/// when the terminal did not say) and whatever else arrived meanwhile (keys typed), in order.
pub fn ask_terminal() -> (Option<TermColors>, Vec<u8>) {
    let mut out = std::io::stdout();
    if out.write_all(QUERY).and_then(|()| out.flush()).is_err() {
        return (None, Vec::new());
    }
    let stdin = std::io::stdin();
    let deadline = Instant::now() + ANSWER_WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let answers = read_answers(&got);
        let left = deadline.saturating_duration_since(Instant::now());
        if answers.done || left.is_zero() {
            return (answers.colors(), answers.rest);
        }
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs().try_into().unwrap_or(0),
            tv_nsec: left.subsec_nanos().into(),
        };
        let mut fds = [rustix::event::PollFd::new(&stdin, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(_) => return (answers.colors(), answers.rest),
        }
        // Straight from the file descriptor: std's buffered stdin would keep bytes beyond the
        // answers from whoever reads the keys next.
        match rustix::io::read(&stdin, &mut buf) {
            Ok(0) => return (answers.colors(), answers.rest),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return (answers.colors(), answers.rest),
        }
    }
}
