//! Drawing on a client's terminal directly, as tmux does: `corral attach` names its terminal
//! device, the server opens it and paints the pane's changes on it, so an echo reaches the screen
//! without another process (or another thread) in the way.
//!
//! The pane's reader thread draws right after feeding output when the last frame is old enough;
//! the connection's task draws the rest (a flood coalesced at the frame interval), rings bells,
//! shows notices and finishes writes the terminal could not take at once. Both draw under the
//! sink's lock, so frames never interleave. The device is opened non-blocking (a stalled terminal
//! never blocks a thread; the client's own descriptor keeps its flags), and anything that is not a
//! terminal is refused. The device is watched for writability only while a write waits: an idle
//! registration would wake the runtime each time the terminal drained an echo.
//!
//! With [`KeyReader`] the server also reads the keys from that terminal, as tmux's server does: a
//! thread of its own waits on the device and writes each key to the agent's PTY, so a keystroke
//! reaches the agent without waking the client or the runtime.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::pane::PaneHandle;
use crate::proto::KeyReading;
use crate::term::screen::{mirror_modes, paint};
use crate::term::{Emulator, Modes, ScreenCopy};

/// At most this often a frame is drawn (about 120 a second): a flood of output is drawn as its
/// latest state, never frame by frame.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(8);

pub struct TtySink {
    out: OwnedFd,
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
            out: fd,
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
            match rustix::io::write(&self.out, &st.pending) {
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
        if !self.has_pending(&self.lock()) {
            return;
        }
        // Registered for as long as this waits (a duplicate descriptor: the registration ends
        // when it is dropped, and the sink's own descriptor stays as it is).
        let Ok(out) = self.out.try_clone().and_then(register) else {
            self.lock().failed = true;
            return;
        };
        loop {
            {
                let st = self.lock();
                if !self.has_pending(&st) {
                    return;
                }
            }
            let Ok(mut ready) = out.writable().await else {
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

/// What the thread reading an attached terminal's keys saw end its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysEnd {
    /// The detach key: nothing after it was sent, and the thread stopped reading.
    Detach,
    /// The terminal went away or cannot be read.
    Gone,
}

/// Reads the keys from a client's terminal and writes them to the pane until the detach key, the
/// terminal's end or its own drop (the client detached or went away), whichever comes first. A
/// key after the detach key is never read: the client's shell gets it.
pub struct KeyReader {
    stop: OwnedFd,
}

impl KeyReader {
    /// Open `path` for reading and start the thread. `ended` hears how it stopped, unless it was
    /// stopped by dropping the reader.
    pub fn start(
        path: &Path,
        pane: PaneHandle,
        keys: KeyReading,
        ended: tokio::sync::mpsc::UnboundedSender<KeysEnd>,
    ) -> std::io::Result<KeyReader> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let tty = rustix::fs::open(path, flags, Mode::empty())?;
        if !rustix::termios::isatty(&tty) {
            return Err(std::io::Error::other("not a terminal"));
        }
        use rustix::event::{EventfdFlags, eventfd};
        let stop = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let stop_seen = stop.try_clone()?;
        std::thread::Builder::new().name("tty-keys".into()).spawn(move || {
            if let Some(end) = read_keys(&tty, &stop_seen, &pane, &keys) {
                let _ = ended.send(end);
            }
        })?;
        Ok(KeyReader { stop })
    }
}

impl Drop for KeyReader {
    fn drop(&mut self) {
        let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
    }
}

/// The key thread's loop; None when it was stopped.
fn read_keys(
    tty: &OwnedFd,
    stop: &OwnedFd,
    pane: &PaneHandle,
    keys: &KeyReading,
) -> Option<KeysEnd> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(tty, PollFlags::IN), PollFd::new(stop, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return Some(KeysEnd::Gone),
        }
        if !fds[1].revents().is_empty() {
            return None;
        }
        let n = match rustix::io::read(tty, &mut buf) {
            Ok(0) => return Some(KeysEnd::Gone),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(_) => return Some(KeysEnd::Gone),
        };
        let bytes = &buf[..n];
        match keys.detach_at(bytes) {
            Some(at) => {
                if at > 0 {
                    pane.write(bytes[..at].to_vec());
                }
                return Some(KeysEnd::Detach);
            }
            None => pane.write(bytes.to_vec()),
        }
    }
}
