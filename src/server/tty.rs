//! Drawing on a client's terminal directly, as tmux does: `corral attach` names its terminal
//! device, the server opens it and paints the pane's changes on it, so an echo reaches the screen
//! without another process (or another thread) in the way.
//!
//! The pane's reader thread draws right after feeding output when the last frame is old enough;
//! the connection's task draws the rest (a flood coalesced at the frame interval), rings bells,
//! shows notices and finishes writes the terminal could not take at once. Both draw under the
//! sink's lock, so frames never interleave. The device is opened non-blocking (a stalled terminal
//! never blocks a thread; the client's own descriptor keeps its flags), and anything that is not a
//! terminal is refused.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use crate::term::screen::{mirror_modes, paint};
use crate::term::{Emulator, Modes, ScreenCopy};

/// At most this often a frame is drawn (about 120 a second): a flood of output is drawn as its
/// latest state, never frame by frame.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(8);

pub struct TtySink {
    out: AsyncFd<OwnedFd>,
    state: Mutex<SinkState>,
    /// Tells the connection's task that a frame is due later or a write is unfinished.
    pub wake: Notify,
}

pub struct SinkState {
    /// The screen as drawn on the terminal.
    copy: ScreenCopy,
    /// The input modes set on the terminal.
    drawn: Modes,
    /// Bytes the terminal has not taken yet.
    pending: Vec<u8>,
    /// No frame before this.
    next_frame: Instant,
    /// Detached: nothing more may be drawn.
    pub closed: bool,
    /// The terminal went away (a closed ssh link): so did the client.
    pub failed: bool,
}

impl TtySink {
    /// Open `path` for drawing. Must run inside the runtime (the device joins its reactor).
    pub fn open(path: &Path) -> std::io::Result<TtySink> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        if !rustix::termios::isatty(&fd) {
            return Err(std::io::Error::other("not a terminal"));
        }
        Ok(TtySink {
            out: register(fd)?,
            state: Mutex::new(SinkState {
                copy: ScreenCopy::default(),
                drawn: Modes::default(),
                pending: Vec::new(),
                next_frame: Instant::now(),
                closed: false,
                failed: false,
            }),
            wake: Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From the reader thread, after output: draw now if a frame is due and nothing is waiting
    /// to be written; otherwise leave it to the connection's task.
    pub fn draw_now(&self, emulator: &dyn Emulator) {
        let mut st = self.lock();
        if st.closed || st.failed {
            return;
        }
        if !st.pending.is_empty() || Instant::now() < st.next_frame {
            self.wake.notify_one();
            return;
        }
        self.draw(&mut st, emulator);
        if !st.pending.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Paint what changed since the last frame and write what the terminal takes now.
    pub fn draw(&self, st: &mut SinkState, emulator: &dyn Emulator) {
        if st.closed || st.failed {
            return;
        }
        let Some(update) = st.copy.refresh(emulator) else { return };
        let drawn = st.drawn;
        mirror_modes(&drawn, &update.modes, &mut st.pending);
        st.drawn = update.modes;
        paint(&update, &mut st.pending);
        st.next_frame = Instant::now() + FRAME_INTERVAL;
        self.flush(st);
    }

    /// Queue bytes of our own (a bell, a notice) and write what the terminal takes now.
    pub fn queue(&self, st: &mut SinkState, bytes: &[u8]) {
        if st.closed || st.failed {
            return;
        }
        st.pending.extend_from_slice(bytes);
        self.flush(st);
    }

    /// Write what the terminal takes without waiting.
    fn flush(&self, st: &mut SinkState) {
        while !st.pending.is_empty() {
            match rustix::io::write(self.out.get_ref(), &st.pending) {
                Ok(0) => {
                    st.failed = true;
                    return;
                }
                Ok(n) => {
                    st.pending.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    st.failed = true;
                    return;
                }
            }
        }
    }

    /// When the next frame may be drawn, or None when nothing is waiting to be written and it
    /// may be drawn now.
    pub fn due(&self, st: &SinkState) -> Option<Instant> {
        (Instant::now() < st.next_frame).then_some(st.next_frame)
    }

    pub fn has_pending(&self, st: &SinkState) -> bool {
        !st.pending.is_empty() && !st.closed && !st.failed
    }

    /// Wait until the terminal takes more, and write it (the connection's task, when a write
    /// was cut short).
    pub async fn finish_writes(&self) {
        loop {
            {
                let st = self.lock();
                if !self.has_pending(&st) {
                    return;
                }
            }
            let Ok(mut ready) = self.out.writable().await else {
                self.lock().failed = true;
                return;
            };
            let mut st = self.lock();
            let pending = std::mem::take(&mut st.pending);
            let written = ready.try_io(|fd| Ok(rustix::io::write(fd.get_ref(), &pending)?));
            st.pending = pending;
            match written {
                Ok(Ok(0)) => st.failed = true,
                Ok(Ok(n)) => {
                    st.pending.drain(..n);
                    self.flush(&mut st);
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(_)) => st.failed = true,
                // Not writable after all: tokio forgot the readiness, so the next wait waits.
                Err(_) => {}
            }
        }
    }
}

/// Watch `fd` for writability on the runtime's reactor.
#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: tokio asks that the descriptor stay open and refer to the same file description
    // for as long as the AsyncFd lives, with `as_raw_fd` always returning it. An `OwnedFd` is
    // the sole owner of its descriptor: it is closed only when the `OwnedFd` drops, which is
    // when the AsyncFd drops (it owns it), and its `as_raw_fd` never changes.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) }?)
}
