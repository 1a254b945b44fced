//! The client under test, run in a PTY the benchmark owns: its output arrives as chunks on a
//! channel (read on a thread of its own, so the client never waits on a full PTY), device
//! attributes queries are answered as a terminal would, and keys are written whole.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, mpsc};

pub type Writer = Arc<Mutex<Box<dyn Write + Send>>>;

pub struct Probe {
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    pub rx: mpsc::Receiver<Vec<u8>>,
    writer: Writer,
}

impl Probe {
    /// Start `cmd` at `cols`×`rows` in the current directory.
    pub fn spawn(
        cmd: &[String],
        cols: u16,
        rows: u16,
    ) -> Result<Probe, Box<dyn std::error::Error>> {
        let (program, rest) = cmd.split_first().ok_or("no command")?;
        let pty = portable_pty::native_pty_system();
        let pair =
            pty.openpty(portable_pty::PtySize { rows, cols, pixel_width: 0, pixel_height: 0 })?;
        let mut builder = portable_pty::CommandBuilder::new(program);
        builder.args(rest);
        builder.env("TERM", "xterm-256color");
        builder.cwd(std::env::current_dir()?);
        let child = pair.slave.spawn_command(builder)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader()?;
        let writer: Writer = Arc::new(Mutex::new(pair.master.take_writer()?));
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let answers = writer.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = reader.read(&mut buf) {
                // Answer device attributes as every terminal does (clients ask when they start:
                // corral for the colours, with DA1 last), as one that knows no colour queries.
                if buf[..n].windows(3).any(|w| w == b"\x1b[c") {
                    let mut w = answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let _ = w.write_all(b"\x1b[?62;22c").and_then(|()| w.flush());
                }
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Probe { child, rx, writer })
    }

    /// Write `bytes` to the client, whole (the reader thread answers queries through the same
    /// writer).
    pub fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        w.write_all(bytes)?;
        w.flush()
    }
}
