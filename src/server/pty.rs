//! The operating system's pseudo-terminals behind a trait: [`RealPty`] uses portable-pty; [`FakePty`]
//! is an in-memory stand-in for unit tests of the pane (named as a fake: integration tests use the
//! real one). Nothing here knows about agents or emulators.

use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::term::Size;

/// What to run in a new PTY.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment (nothing is inherited from the server).
    pub env: Vec<(String, String)>,
    pub size: Size,
}

/// A process running in a PTY, split into the parts the pane's threads own.
pub struct Spawned {
    /// With `master` set, reads and writes may fail with `WouldBlock`: wait with [`wait_ready`].
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    /// The PTY's master side, non-blocking (a real PTY only): input is written on it directly when
    /// the program is reading, without waking the writer thread.
    pub master: Option<Arc<OwnedFd>>,
    pub control: Box<dyn PtyControl>,
    pub child: Box<dyn ChildProcess>,
    pub pid: Option<u32>,
}

pub trait PtyControl: Send {
    fn resize(&self, size: Size) -> io::Result<()>;
}

pub trait ChildProcess: Send {
    /// Block until the process ends; its exit code (128 + signal for a signal, as shells report).
    fn wait(&mut self) -> io::Result<i32>;
}

pub trait PtyHost: Send + Sync {
    fn spawn(&self, spec: &SpawnSpec) -> io::Result<Spawned>;
}

pub struct RealPty;

struct RealControl(Box<dyn portable_pty::MasterPty + Send>);

impl PtyControl for RealControl {
    fn resize(&self, size: Size) -> io::Result<()> {
        self.0
            .resize(portable_pty::PtySize {
                rows: size.rows,
                cols: size.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

struct RealChild(Box<dyn portable_pty::Child + Send + Sync>);

impl ChildProcess for RealChild {
    fn wait(&mut self) -> io::Result<i32> {
        let status = self.0.wait()?;
        if let Some(sig) = status.signal() {
            return Ok(128 + signal_number(sig));
        }
        Ok(status.exit_code() as i32)
    }
}

/// portable-pty reports signals by name; map the common ones back to numbers.
fn signal_number(name: &str) -> i32 {
    let n = name.to_ascii_lowercase();
    match () {
        _ if n.contains("hangup") || n.contains("hup") => 1,
        _ if n.contains("interrupt") || n.contains("int") => 2,
        _ if n.contains("kill") => 9,
        _ if n.contains("terminated") || n.contains("term") => 15,
        _ => 0,
    }
}

impl PtyHost for RealPty {
    fn spawn(&self, spec: &SpawnSpec) -> io::Result<Spawned> {
        let system = portable_pty::native_pty_system();
        let pair = system
            .openpty(portable_pty::PtySize {
                rows: spec.size.rows,
                cols: spec.size.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| io::Error::other(format!("cannot open a pseudo-terminal: {e}")))?;
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut cmd = portable_pty::CommandBuilder::new(program);
        cmd.args(args);
        cmd.env_clear();
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        cmd.cwd(&spec.cwd);
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| io::Error::other(format!("cannot start {program}: {e}")))?;
        // The slave side belongs to the child now; keeping it open here would hide its exit (EOF).
        drop(pair.slave);
        let pid = child.process_id();
        let reader = pair.master.try_clone_reader().map_err(|e| io::Error::other(e.to_string()))?;
        let writer = pair.master.take_writer().map_err(|e| io::Error::other(e.to_string()))?;
        let master = nonblocking_master(&*pair.master)?;
        Ok(Spawned {
            reader,
            writer,
            master: Some(Arc::new(master)),
            control: Box::new(RealControl(pair.master)),
            child: Box::new(RealChild(child)),
            pid,
        })
    }
}

/// Our own descriptor of the PTY's master side, with the master made non-blocking (the flag is
/// shared by every descriptor of it, portable-pty's reader and writer included).
#[allow(unsafe_code)]
fn nonblocking_master(master: &dyn portable_pty::MasterPty) -> io::Result<OwnedFd> {
    let raw = master
        .as_raw_fd()
        .ok_or_else(|| io::Error::other("the pseudo-terminal has no file descriptor"))?;
    // SAFETY: `raw` is the descriptor `master` owns and keeps open until it is dropped; `master`
    // is borrowed for this whole function, so the descriptor is open while this borrow of it
    // lives, and the borrow ends here: what we keep is a duplicate of our own.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let fd = rustix::io::fcntl_dupfd_cloexec(borrowed, 0)?;
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(fd)
}

/// A process already running in a PTY whose master side this process holds (handed over by the
/// server this one replaced): the same parts [`PtyHost::spawn`] gives, from the master's descriptor.
/// The process must be our child (it is: the hand-over replaces the server's program, not its
/// process), so its exit is waited for as before.
pub fn adopt(master: OwnedFd, pid: u32) -> io::Result<Spawned> {
    let flags = rustix::fs::fcntl_getfl(&master)?;
    rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)?;
    rustix::io::fcntl_setfd(&master, rustix::io::FdFlags::CLOEXEC)?;
    let reader = std::fs::File::from(master.try_clone()?);
    let writer = std::fs::File::from(master.try_clone()?);
    let control = FdControl(master.try_clone()?);
    Ok(Spawned {
        reader: Box::new(reader),
        writer: Box::new(writer),
        master: Some(Arc::new(master)),
        control: Box::new(control),
        child: Box::new(PidChild(pid)),
        pid: Some(pid),
    })
}

/// Resizes an adopted PTY through its master descriptor.
struct FdControl(OwnedFd);

impl PtyControl for FdControl {
    fn resize(&self, size: Size) -> io::Result<()> {
        let ws = rustix::termios::Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        Ok(rustix::termios::tcsetwinsize(&self.0, ws)?)
    }
}

/// An adopted child, waited for by its pid.
struct PidChild(u32);

impl ChildProcess for PidChild {
    fn wait(&mut self) -> io::Result<i32> {
        let pid = rustix::process::Pid::from_raw(self.0 as i32)
            .ok_or_else(|| io::Error::other("no such process"))?;
        loop {
            match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
                Ok(Some((_, status))) => {
                    if let Some(sig) = status.terminating_signal() {
                        return Ok(128 + sig);
                    }
                    return Ok(status.exit_status().unwrap_or(0));
                }
                Ok(None) => continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Wait until `fd` can be read (`out` false) or written (`out` true).
pub fn wait_ready(fd: &OwnedFd, out: bool) -> io::Result<()> {
    let flags = if out { rustix::event::PollFlags::OUT } else { rustix::event::PollFlags::IN };
    let mut fds = [rustix::event::PollFd::new(fd, flags)];
    match rustix::event::poll(&mut fds, None) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// FAKE, for unit tests only: a "process" whose output is scripted and whose input is recorded.
/// The output channel closing is the process exiting with the code given.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::sync::{Arc, Mutex, mpsc};

    pub struct FakePty {
        pub output: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
        pub input: Arc<Mutex<Vec<u8>>>,
        pub sizes: Arc<Mutex<Vec<Size>>>,
        pub exit_code: i32,
    }

    struct ChanReader {
        rx: mpsc::Receiver<Vec<u8>>,
        pending: Vec<u8>,
    }

    impl Read for ChanReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pending.is_empty() {
                match self.rx.recv() {
                    Ok(bytes) => self.pending = bytes,
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    struct VecWriter(Arc<Mutex<Vec<u8>>>);

    impl Write for VecWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct FakeControl(Arc<Mutex<Vec<Size>>>);

    impl PtyControl for FakeControl {
        fn resize(&self, size: Size) -> io::Result<()> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.push(size);
            Ok(())
        }
    }

    /// Exits once the output side is done: the test drops its sender.
    struct FakeChild {
        done: mpsc::Receiver<()>,
        code: i32,
    }

    impl ChildProcess for FakeChild {
        fn wait(&mut self) -> io::Result<i32> {
            let _ = self.done.recv();
            Ok(self.code)
        }
    }

    impl FakePty {
        /// Returns the pty and the sender that scripts its output (drop it to end the process).
        pub fn new(exit_code: i32) -> (FakePty, mpsc::Sender<Vec<u8>>) {
            let (tx, rx) = mpsc::channel();
            let pty = FakePty {
                output: Mutex::new(Some(rx)),
                input: Arc::new(Mutex::new(Vec::new())),
                sizes: Arc::new(Mutex::new(Vec::new())),
                exit_code,
            };
            (pty, tx)
        }
    }

    impl PtyHost for FakePty {
        fn spawn(&self, _spec: &SpawnSpec) -> io::Result<Spawned> {
            let rx = self
                .output
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .take()
                .ok_or_else(|| io::Error::other("fake pty spawns once"))?;
            // The child "exits" when the reader sees the end of the script: relay that.
            let (done_tx, done_rx) = mpsc::channel();
            let (relay_tx, relay_rx) = mpsc::channel();
            std::thread::spawn(move || {
                for chunk in rx {
                    if relay_tx.send(chunk).is_err() {
                        break;
                    }
                }
                drop(relay_tx);
                let _ = done_tx.send(());
            });
            Ok(Spawned {
                reader: Box::new(ChanReader { rx: relay_rx, pending: Vec::new() }),
                writer: Box::new(VecWriter(self.input.clone())),
                master: None,
                control: Box::new(FakeControl(self.sizes.clone())),
                child: Box::new(FakeChild { done: done_rx, code: self.exit_code }),
                pid: None,
            })
        }
    }
}
