//! One agent's terminal: a process in a PTY and the emulator that keeps its screen.
//!
//! The emulator sits behind a mutex shared by the pane's threads and its handles. The reader
//! thread feeds PTY output into it as soon as it arrives (no hop to another thread, and a flood
//! waits for the emulator instead of growing memory); handles read screens and lines from it
//! directly, so an attached client's frame is one lock away from the echo that caused it. The pane
//! thread keeps time: synchronized-update deadlines, memory trims, the kill grace and publishing
//! the exit; a waiter thread reports the exit to it. Writes to the PTY go through a writer thread, so
//! a program that stops reading its input can never stall its own output. Terminal queries are
//! answered here, with or without clients. Changes are published on a `watch` channel: subscribers
//! see the latest state, never a queue.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::pty::{PtyControl, PtyHost, SpawnSpec, Spawned, wait_ready};
use super::tty::TtySink;
use crate::term::{
    Emulator, Feedback, Line, Modes, NumberedLine, Screen, ScreenCopy, ScreenUpdate, Size,
    TermColors, TextCopy,
};

/// How long after the process ends the pane waits for its last output before publishing the exit.
const EXIT_DRAIN: Duration = Duration::from_millis(300);
/// Quiet time after output before the emulator gives back its caches.
const TRIM_AFTER: Duration = Duration::from_secs(1);
/// How long a stopped process gets after SIGHUP before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// The reader feeds a large read in slices of this size, letting go of the emulator between them
/// so a client's screen read waits for one slice at most.
const FEED_SLICE: usize = 16 * 1024;

/// What subscribers see of a pane; cheap to clone.
#[derive(Debug, Clone)]
pub struct PaneState {
    /// Bumped whenever the screen may have changed.
    pub generation: u64,
    pub bells: u64,
    pub started: Instant,
    pub last_output: Option<Instant>,
    /// When the current run of output began (output after a quiet spell starts a new one).
    pub burst_start: Option<Instant>,
    pub exited: bool,
    pub exit_code: Option<i32>,
    pub exited_at: Option<Instant>,
    /// The PTY's size now (clients resize it).
    pub size: Size,
}

/// What the pane thread is told.
enum PaneCmd {
    /// SIGHUP the process group, SIGKILL after a grace period.
    Kill,
    /// From the waiter thread.
    ChildExited(i32),
    /// From the reader thread: the PTY reached its end.
    ReaderDone,
    /// From the reader thread: a deadline appeared (a synchronized update began, or output after
    /// a trim), so the pane thread must look at its timers again.
    Poke,
}

/// The emulator and the PTY's size control, locked together so a resize reaches both at once.
struct Core {
    emulator: Box<dyn Emulator>,
    control: Box<dyn PtyControl>,
    /// When the emulator should give back memory (a while after the last output).
    trim_at: Option<Instant>,
}

/// The program's input. Bytes go straight onto the non-blocking PTY when nothing is queued and
/// the program is reading (no thread to wake for a keystroke); whatever the PTY does not take at
/// once goes, in order, to the writer thread, which waits for the program.
struct Input {
    queue: Sender<Vec<u8>>,
    /// The PTY's master side, non-blocking; None for the fake PTY (everything is queued).
    master: Option<Arc<OwnedFd>>,
    /// Held around every write to the PTY; the writer thread also holds it while it waits for
    /// the program, so a direct write never overtakes queued bytes.
    order: Arc<Mutex<()>>,
    /// Chunks queued and not yet written.
    queued: Arc<AtomicUsize>,
}

impl Input {
    fn write(&self, bytes: Vec<u8>) {
        if let Some(master) = &self.master
            && let Ok(_turn) = self.order.try_lock()
            && self.queued.load(Ordering::Acquire) == 0
        {
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                match rustix::io::write(&**master, rest) {
                    Ok(n) if n > 0 => rest = &rest[n..],
                    Err(rustix::io::Errno::INTR) => {}
                    // Not taken now (or failing: the writer thread reports it): queue the rest.
                    _ => break,
                }
            }
            if rest.is_empty() {
                return;
            }
            self.queued.fetch_add(1, Ordering::AcqRel);
            let _ = self.queue.send(rest.to_vec());
            return;
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.queue.send(bytes);
    }
}

/// What the pane's threads and handles share.
struct Shared {
    core: Mutex<Core>,
    state: watch::Sender<PaneState>,
    writes: Input,
    /// Clients' terminals the reader thread draws on right after output (locked after `core`).
    sinks: Mutex<Vec<Arc<TtySink>>>,
    /// Held by the reader around each read and the feed of what it read: whoever holds it knows
    /// every byte taken from the PTY is in the emulator (a hand-over takes it for good).
    reading: Mutex<()>,
    /// Who hears of which keys written to the program (the badge; see [`PaneHandle::tap_keys`]).
    tap: Mutex<Option<KeyTap>>,
    /// When a character or Backspace was last written alone (see [`PaneHandle::typed_at`]).
    typed_at: Mutex<Option<Instant>>,
}

/// A key the listener asked for, written to the program alone (as typed, not inside pasted text),
/// with the screen it was pressed on.
pub struct KeyPress {
    pub key: Vec<u8>,
    pub screen: Screen,
    pub at: Instant,
}

/// One printable character or Backspace, written alone: what typing into an input box sends.
fn is_typed_key(bytes: &[u8]) -> bool {
    if bytes == b"\x7f" {
        return true;
    }
    let Ok(s) = std::str::from_utf8(bytes) else { return false };
    let mut chars = s.chars();
    chars.next().is_some_and(|c| !c.is_control()) && chars.next().is_none()
}

struct KeyTap {
    keys: Vec<Vec<u8>>,
    tx: tokio::sync::mpsc::UnboundedSender<KeyPress>,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while feeding leaves the emulator as the parser left it, which is still a
        // screen to show: keep going rather than take every client down with it.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feed PTY output; returns whether the pane thread has a new deadline to look at.
    fn output(&self, bytes: &[u8]) -> bool {
        let mut poke = false;
        let mut fb = Feedback::default();
        for slice in bytes.chunks(FEED_SLICE) {
            let mut core = self.core();
            let had_deadline = core.emulator.sync_deadline().is_some();
            let got = core.emulator.feed(slice);
            poke |=
                core.trim_at.is_none() || !had_deadline && core.emulator.sync_deadline().is_some();
            core.trim_at = Some(Instant::now() + TRIM_AFTER);
            drop(core);
            fb.replies.extend_from_slice(&got.replies);
            fb.bell |= got.bell;
            fb.title_changed |= got.title_changed;
        }
        // Attached terminals first: publishing the change wakes other threads (the badge), which
        // on a small machine would compete with drawing the echo.
        self.draw_sinks();
        let bell = fb.bell;
        self.after_feed(fb, true);
        if bell {
            self.wake_sinks();
        }
        poke
    }

    /// Wake the connections drawing on terminals (a bell, the exit): they do not follow every
    /// change, only what the reader thread leaves to them.
    fn wake_sinks(&self) {
        for sink in self.sinks.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            sink.wake.notify_one();
        }
    }

    /// Draw the output on attached terminals at once, from this thread: the echo of a key is on
    /// the screen without waking another thread first.
    fn draw_sinks(&self) {
        // Locks: the list, then the emulator, then each sink (nobody takes the list while
        // holding the emulator).
        let sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        if sinks.is_empty() {
            return;
        }
        let core = self.core();
        for sink in sinks.iter() {
            sink.draw_now(&*core.emulator);
        }
    }

    fn after_feed(&self, fb: Feedback, was_output: bool) {
        if !fb.replies.is_empty() {
            self.writes.write(fb.replies);
        }
        let now = Instant::now();
        self.state.send_modify(|s| {
            s.generation += 1;
            if fb.bell {
                s.bells += 1;
            }
            if was_output {
                let quiet = s.last_output.is_none_or(|t| now - t > Duration::from_millis(1500));
                if quiet {
                    s.burst_start = Some(now);
                }
                s.last_output = Some(now);
            }
        });
    }
}

/// A cloneable address of a pane. The pane thread ends when every handle is dropped.
#[derive(Clone)]
pub struct PaneHandle {
    tx: Sender<PaneCmd>,
    shared: Arc<Shared>,
    state: watch::Receiver<PaneState>,
    pub pid: Option<u32>,
    /// Held while a message is typed (text, pause, Enter), so two messages never interleave.
    pub typing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl PaneHandle {
    /// Input for the program: onto the PTY at once when it takes it, else to the writer thread.
    pub fn write(&self, bytes: Vec<u8>) {
        let typed = is_typed_key(&bytes);
        let key = self.tapped(&bytes).then(|| bytes.clone());
        // Taken before the write: the program may answer, and its answer be read, before this
        // thread runs again, and the badge tells an echo from other output by this time.
        let at = Instant::now();
        if typed {
            // Stamped, not sent: the badge reads it with the echo's screen change, so typing
            // wakes nothing besides the program.
            *self.shared.typed_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
        }
        self.shared.writes.write(bytes);
        if let Some(key) = key {
            // Read right after the write, so the key is not held up by the copy: the program has
            // to be scheduled, read and redraw before its answer could be here. Should it win
            // that race, a rule sees the answered screen (an emptied prompt) and does nothing.
            let screen = self.shared.core().emulator.screen();
            let tap = self.shared.tap.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(t) = tap.as_ref() {
                let _ = t.tx.send(KeyPress { key, screen, at });
            }
        }
    }

    /// When a character or Backspace was last written to the program alone: the user typing.
    pub fn typed_at(&self) -> Option<Instant> {
        *self.shared.typed_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a listener asked for this key.
    fn tapped(&self, bytes: &[u8]) -> bool {
        let tap = self.shared.tap.lock().unwrap_or_else(PoisonError::into_inner);
        tap.as_ref().is_some_and(|t| t.keys.iter().any(|k| k == bytes))
    }

    /// Hear of `keys` written to the program from now on, each with the screen it was pressed on
    /// (replacing an earlier listener). Other writes cost a comparison.
    pub fn tap_keys(&self, keys: Vec<Vec<u8>>) -> tokio::sync::mpsc::UnboundedReceiver<KeyPress> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.shared.tap.lock().unwrap_or_else(PoisonError::into_inner) = Some(KeyTap { keys, tx });
        rx
    }

    /// Change which keys the listener hears of.
    pub fn set_tapped_keys(&self, keys: Vec<Vec<u8>>) {
        if let Some(t) = self.shared.tap.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            t.keys = keys;
        }
    }

    /// Resize the PTY and the emulator together (the program is told by SIGWINCH).
    pub fn resize(&self, size: Size) {
        let mut core = self.shared.core();
        if size == core.emulator.size() {
            return;
        }
        if let Err(e) = core.control.resize(size) {
            debug!("resize failed: {e}");
        }
        core.emulator.resize(size);
        let now = core.emulator.size();
        drop(core);
        self.shared.draw_sinks();
        self.shared.state.send_modify(|s| {
            s.generation += 1;
            s.size = now;
        });
    }

    /// Answer colour queries with `colors` from now on (a client's terminal's); a program that
    /// asked to hear of changes (mode 2031) is told at once.
    pub fn set_colors(&self, colors: TermColors) {
        let fb = self.shared.core().emulator.set_colors(colors);
        if !fb.replies.is_empty() {
            self.shared.writes.write(fb.replies);
        }
    }

    pub fn kill(&self) {
        let _ = self.tx.send(PaneCmd::Kill);
    }

    /// Draw on `sink` from now on, from the reader thread too.
    pub fn add_sink(&self, sink: Arc<TtySink>) {
        self.shared.sinks.lock().unwrap_or_else(PoisonError::into_inner).push(sink);
    }

    /// Stop drawing on `sink`; after this returns, nothing more is drawn on it.
    pub fn remove_sink(&self, sink: &Arc<TtySink>) {
        let mut sinks = self.shared.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        sinks.retain(|s| !Arc::ptr_eq(s, sink));
        drop(sinks);
        // A draw in progress holds the sink's lock; closing under it waits for that draw.
        sink.lock().closed = true;
    }

    /// Draw what changed on `sink` (the connection's task, for frames the reader left for later).
    pub fn draw(&self, sink: &TtySink) {
        let core = self.shared.core();
        let mut st = sink.lock();
        sink.draw(&mut st, &*core.emulator);
    }

    pub fn subscribe(&self) -> watch::Receiver<PaneState> {
        self.state.clone()
    }

    pub fn state(&self) -> PaneState {
        self.state.borrow().clone()
    }

    // The readers below are async and answer Option for the callers' sake: they were requests to
    // the pane thread once, and may be again.

    pub async fn screen(&self) -> Option<Screen> {
        Some(self.shared.core().emulator.screen())
    }

    /// Bring a client's copy of the screen up to date; the update to send it, None when nothing
    /// it shows changed.
    pub fn update_screen(&self, copy: &mut ScreenCopy) -> Option<ScreenUpdate> {
        copy.refresh(&*self.shared.core().emulator)
    }

    /// Bring a reader's copy of the screen's text up to date (only changed rows are read again).
    pub fn update_text(&self, copy: &mut TextCopy) {
        self.shared.core().emulator.update_text(copy);
    }

    pub async fn modes(&self) -> Option<Modes> {
        Some(self.shared.core().emulator.modes())
    }

    pub async fn lines(&self, max: usize) -> Option<Vec<Line>> {
        Some(self.shared.core().emulator.lines(max))
    }

    pub async fn settled(&self, from: u64) -> Option<Vec<NumberedLine>> {
        Some(self.shared.core().emulator.settled_lines_since(from))
    }

    /// Stop reading the program's output: from when this returns until the guard is dropped, what
    /// the program writes waits in the PTY (for a hand-over to another server).
    pub fn stop_reading(&self) -> MutexGuard<'_, ()> {
        self.shared.reading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// No input is waiting to be written to the program.
    pub fn input_written(&self) -> bool {
        self.shared.writes.queued.load(Ordering::Acquire) == 0
    }

    /// The emulator's state, for a new server to go on from.
    pub fn emulator_state(&self) -> crate::term::EmulatorState {
        self.shared.core().emulator.take_state()
    }

    /// The PTY's master side (a real PTY only).
    pub fn master(&self) -> Option<Arc<OwnedFd>> {
        self.shared.writes.master.clone()
    }
}

/// Start `spec` in a new PTY under `host` and the pane threads around it. `on_exit` runs once,
/// after the exit has been published, with the exit code.
pub fn spawn_pane(
    host: &dyn PtyHost,
    spec: &SpawnSpec,
    emulator: Box<dyn Emulator>,
    on_exit: Box<dyn FnOnce(i32) + Send>,
) -> std::io::Result<PaneHandle> {
    start_pane(host.spawn(spec)?, spec.size, emulator, on_exit)
}

/// The pane threads around a process that is already running (spawned, or handed over).
pub fn start_pane(
    spawned: Spawned,
    size: Size,
    emulator: Box<dyn Emulator>,
    on_exit: Box<dyn FnOnce(i32) + Send>,
) -> std::io::Result<PaneHandle> {
    let Spawned { reader, writer, master, control, child, pid } = spawned;
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let (write_tx, write_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let now = Instant::now();
    let (state_tx, state_rx) = watch::channel(PaneState {
        generation: 0,
        bells: 0,
        started: now,
        last_output: None,
        burst_start: None,
        exited: false,
        exit_code: None,
        exited_at: None,
        size,
    });
    let order = Arc::new(Mutex::new(()));
    let queued = Arc::new(AtomicUsize::new(0));
    let input = Input {
        queue: write_tx,
        master: master.clone(),
        order: order.clone(),
        queued: queued.clone(),
    };
    let shared = Arc::new(Shared {
        core: Mutex::new(Core { emulator, control, trim_at: None }),
        state: state_tx,
        writes: input,
        sinks: Mutex::new(Vec::new()),
        reading: Mutex::new(()),
        tap: Mutex::new(None),
        typed_at: Mutex::new(None),
    });

    let reader_shared = shared.clone();
    let reader_tx = cmd_tx.clone();
    let read_master = master.clone();
    std::thread::Builder::new()
        .name("pty-read".into())
        .spawn(move || read_loop(reader, read_master.as_deref(), &reader_shared, &reader_tx))?;
    std::thread::Builder::new()
        .name("pty-write".into())
        .spawn(move || write_loop(writer, master.as_deref(), write_rx, &order, &queued))?;
    let waiter_tx = cmd_tx.clone();
    let mut child = child;
    std::thread::Builder::new().name("pty-wait".into()).spawn(move || {
        let code = child.wait().unwrap_or_else(|e| {
            warn!("waiting for agent process failed: {e}");
            -1
        });
        let _ = waiter_tx.send(PaneCmd::ChildExited(code));
    })?;
    let pane = Pane {
        shared: shared.clone(),
        pid,
        kill_deadline: None,
        exit_pending: None,
        reader_done: false,
        on_exit: Some(on_exit),
    };
    std::thread::Builder::new().name("pane".into()).spawn(move || pane.run(cmd_rx))?;
    Ok(PaneHandle { tx: cmd_tx, shared, state: state_rx, pid, typing: Default::default() })
}

fn read_loop(
    mut reader: Box<dyn Read + Send>,
    master: Option<&OwnedFd>,
    shared: &Shared,
    cmds: &Sender<PaneCmd>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let reading = shared.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let read = reader.read(&mut buf);
        match read {
            Ok(0) => break,
            Ok(n) => {
                let poke = shared.output(&buf[..n]);
                drop(reading);
                if poke {
                    let _ = cmds.send(PaneCmd::Poke);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The master is non-blocking (for direct input): wait for output here.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                drop(reading);
                match master {
                    Some(fd) if wait_ready(fd, false).is_ok() => continue,
                    _ => break,
                }
            }
            // EIO is how Linux reports that every slave fd closed: the normal end.
            Err(_) => break,
        }
    }
    let _ = cmds.send(PaneCmd::ReaderDone);
}

fn write_loop(
    mut writer: Box<dyn Write + Send>,
    master: Option<&OwnedFd>,
    rx: Receiver<Vec<u8>>,
    order: &Mutex<()>,
    queued: &AtomicUsize,
) {
    for bytes in rx {
        let _turn = order.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match writer.write(rest) {
                Ok(0) => {
                    debug!("pty write failed: the program's input is closed");
                    return;
                }
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The program is not reading: wait for it (direct writes queue meanwhile).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => match master {
                    Some(fd) if wait_ready(fd, true).is_ok() => {}
                    _ => return,
                },
                Err(e) => {
                    debug!("pty write failed (process gone?): {e}");
                    return;
                }
            }
        }
        queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The pane thread's own state: its timers and the exit.
struct Pane {
    shared: Arc<Shared>,
    pid: Option<u32>,
    kill_deadline: Option<Instant>,
    exit_pending: Option<(i32, Instant)>,
    reader_done: bool,
    on_exit: Option<Box<dyn FnOnce(i32) + Send>>,
}

impl Pane {
    fn run(mut self, cmds: Receiver<PaneCmd>) {
        loop {
            let (sync, trim) = {
                let core = self.shared.core();
                (core.emulator.sync_deadline(), core.trim_at)
            };
            let deadline =
                [sync, self.kill_deadline, trim, self.exit_pending.map(|(_, at)| at + EXIT_DRAIN)]
                    .into_iter()
                    .flatten()
                    .min();
            let timeout = deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            select! {
                recv(cmds) -> msg => match msg {
                    Ok(cmd) => self.command(cmd),
                    Err(_) => break,
                },
                default(timeout) => self.tick(),
            }
        }
        // Every handle is gone: make sure the process does not outlive its pane.
        if !self.shared.state.borrow().exited {
            self.signal(rustix::process::Signal::KILL);
        }
    }

    fn command(&mut self, cmd: PaneCmd) {
        match cmd {
            PaneCmd::Kill => {
                if !self.shared.state.borrow().exited && self.exit_pending.is_none() {
                    self.signal(rustix::process::Signal::HUP);
                    self.signal(rustix::process::Signal::CONT);
                    self.kill_deadline = Some(Instant::now() + KILL_GRACE);
                }
            }
            PaneCmd::ChildExited(code) => {
                self.kill_deadline = None;
                self.exit_pending = Some((code, Instant::now()));
                self.maybe_publish_exit(false);
            }
            PaneCmd::ReaderDone => {
                self.reader_done = true;
                self.maybe_publish_exit(false);
            }
            PaneCmd::Poke => {}
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let mut core = self.shared.core();
        let fb = if core.emulator.sync_deadline().is_some_and(|d| d <= now) {
            Some(core.emulator.flush_sync())
        } else {
            None
        };
        if core.trim_at.is_some_and(|d| d <= now) {
            core.trim_at = None;
            core.emulator.trim_memory();
        }
        drop(core);
        if let Some(fb) = fb {
            self.shared.draw_sinks();
            self.shared.after_feed(fb, false);
        }
        if self.kill_deadline.is_some_and(|d| d <= now) {
            self.kill_deadline = None;
            self.signal(rustix::process::Signal::KILL);
        }
        self.maybe_publish_exit(true);
    }

    /// Publish the exit once the last output has been read (reader at EOF) or the drain time passed:
    /// a client that sees `exited` then also sees everything the process printed.
    fn maybe_publish_exit(&mut self, timed_out: bool) {
        let Some((code, at)) = self.exit_pending else { return };
        if !(self.reader_done || timed_out && at.elapsed() >= EXIT_DRAIN) {
            return;
        }
        self.exit_pending = None;
        let fb = {
            let mut core = self.shared.core();
            core.emulator.sync_deadline().is_some().then(|| core.emulator.flush_sync())
        };
        if let Some(fb) = fb {
            self.shared.draw_sinks();
            self.shared.after_feed(fb, false);
        }
        self.shared.state.send_modify(|s| {
            s.exited = true;
            s.exit_code = Some(code);
            s.exited_at = Some(Instant::now());
            s.generation += 1;
        });
        self.shared.wake_sinks();
        if let Some(f) = self.on_exit.take() {
            f(code);
        }
    }

    /// Signal the agent's whole process group: the agent is a session leader (setsid by the PTY
    /// spawn), so its group holds the tools it started too.
    fn signal(&self, sig: rustix::process::Signal) {
        let Some(pid) = self.pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) else {
            return;
        };
        if rustix::process::kill_process_group(pid, sig).is_err() {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pty::fake::FakePty;
    use super::*;
    use crate::term::new_emulator;

    fn spec() -> SpawnSpec {
        SpawnSpec {
            argv: vec!["fake".into()],
            cwd: "/".into(),
            env: vec![],
            size: Size::new(40, 10),
        }
    }

    async fn wait_for(
        rx: &mut watch::Receiver<PaneState>,
        what: impl Fn(&PaneState) -> bool,
    ) -> PaneState {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if what(&rx.borrow_and_update()) {
                return rx.borrow().clone();
            }
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .expect("condition not reached before the deadline")
                .expect("pane ended");
        }
    }

    #[tokio::test]
    async fn output_reaches_the_screen_and_exit_is_published_after_it() {
        let (pty, out) = FakePty::new(7);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let pane = spawn_pane(
            &pty,
            &spec(),
            new_emulator(Size::new(40, 10), 100),
            Box::new(move |code| {
                let _ = exit_tx.send(code);
            }),
        )
        .unwrap();
        out.send(b"hello\r\nworld".to_vec()).unwrap();
        drop(out);
        let mut rx = pane.subscribe();
        let st = wait_for(&mut rx, |s| s.exited).await;
        assert_eq!(st.exit_code, Some(7));
        assert_eq!(exit_rx.await.unwrap(), 7);
        let screen = pane.screen().await.unwrap();
        assert_eq!(screen.lines[0].text(), "hello");
        assert_eq!(screen.lines[1].text(), "world");
    }

    #[tokio::test]
    async fn queries_are_answered_with_no_client_attached() {
        let (pty, out) = FakePty::new(0);
        let input = pty.input.clone();
        let pane =
            spawn_pane(&pty, &spec(), new_emulator(Size::new(40, 10), 100), Box::new(|_| {}))
                .unwrap();
        out.send(b"abc\x1b[6n".to_vec()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if input.lock().unwrap().as_slice() == b"\x1b[1;4R" {
                break;
            }
            assert!(Instant::now() < deadline, "no CPR reply: {:?}", input.lock().unwrap());
            std::thread::yield_now();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(pane);
    }

    #[tokio::test]
    async fn resize_reaches_pty_and_emulator() {
        let (pty, _out) = FakePty::new(0);
        let sizes = pty.sizes.clone();
        let pane =
            spawn_pane(&pty, &spec(), new_emulator(Size::new(40, 10), 100), Box::new(|_| {}))
                .unwrap();
        pane.resize(Size::new(50, 12));
        let screen = pane.screen().await.unwrap();
        assert_eq!(screen.size, Size::new(50, 12));
        assert_eq!(pane.state().size, Size::new(50, 12), "ls reports the size clients set");
        assert_eq!(sizes.lock().unwrap().as_slice(), &[Size::new(50, 12)]);
    }
}
