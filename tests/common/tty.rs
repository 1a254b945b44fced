//! A terminal the test owns: the real `corral` binary runs in a PTY, and its output goes through
//! corral's own emulator so the test can read the screen as a user would see it. Waits are for
//! what the screen shows, with a deadline. Tests include it with
//! `#[path = "common/tty.rs"] mod tty;` beside `mod common;`.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::term::{Emulator, Size, new_emulator};

use crate::common::{DEADLINE, Env, bin};

pub struct Tty {
    emu: Arc<Mutex<Box<dyn Emulator>>>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Tty {
    pub fn spawn(env: &Env, args: &[&str], size: Size) -> Tty {
        Tty::spawn_with_colors(env, args, size, None)
    }

    /// [`Tty::spawn`] on a terminal whose default colours (what it answers to OSC 10/11) are
    /// `colors` instead of corral's dark ones.
    pub fn spawn_with_colors(
        env: &Env,
        args: &[&str],
        size: Size,
        colors: Option<corral::term::TermColors>,
    ) -> Tty {
        Tty::spawn_program(env, bin(), args, size, colors)
    }

    /// `program` with `args` in a terminal of its own, in corral's environment (a shell that
    /// runs corral and then reads the terminal itself).
    pub fn spawn_program(
        env: &Env,
        program: &str,
        args: &[&str],
        size: Size,
        colors: Option<corral::term::TermColors>,
    ) -> Tty {
        let pty = portable_pty::native_pty_system();
        let pair = pty
            .openpty(portable_pty::PtySize {
                rows: size.rows,
                cols: size.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = portable_pty::CommandBuilder::new(program);
        cmd.args(args);
        cmd.cwd(&env.repo);
        for (k, v) in std::env::vars() {
            cmd.env(k, v);
        }
        cmd.env("HOME", &env.home);
        cmd.env("XDG_CONFIG_HOME", env.home.join(".config"));
        cmd.env("XDG_STATE_HOME", env.home.join(".local/state"));
        cmd.env("XDG_DATA_HOME", env.home.join(".local/share"));
        cmd.env("CORRAL_RUNTIME_DIR", &env.runtime);
        cmd.env("SHELL", "/bin/sh");
        cmd.env("PS1", "$ ");
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("TMUX");
        cmd.env_remove("CORRAL_LOG");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = Arc::new(Mutex::new(pair.master.take_writer().unwrap()));
        let mut emulator = new_emulator(size, 1000);
        if let Some(c) = colors {
            emulator.set_colors(c);
        }
        let emu: Arc<Mutex<Box<dyn Emulator>>> = Arc::new(Mutex::new(emulator));
        let (e, w) = (emu.clone(), writer.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let replies = e.lock().unwrap().feed(&buf[..n]).replies;
                // Answer queries (cursor position, device attributes) as a real terminal does.
                if !replies.is_empty() {
                    let mut w = w.lock().unwrap();
                    let _ = w.write_all(&replies);
                    let _ = w.flush();
                }
            }
        });
        Tty { emu, writer, master: pair.master, child }
    }

    pub fn text(&self) -> String {
        let screen = self.emu.lock().unwrap().screen();
        screen.lines.iter().map(|l| l.text()).collect::<Vec<_>>().join("\n")
    }

    /// The whole screen with cells, for tests that compare colours and attributes.
    pub fn screen(&self) -> corral::term::Screen {
        self.emu.lock().unwrap().screen()
    }

    /// The input modes the program left set on this terminal.
    pub fn modes(&self) -> corral::term::Modes {
        self.emu.lock().unwrap().modes()
    }

    /// Wait until the screen satisfies `pred`; `what` names the condition in the failure.
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = self.text();
            if pred(&text) {
                return;
            }
            assert!(Instant::now() < deadline, "screen never showed {what}:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_screen(&self, what: &str) {
        self.wait(&format!("{what:?}"), |t| t.contains(what));
    }

    pub fn wait_gone(&self, what: &str) {
        self.wait(&format!("{what:?} gone"), |t| !t.contains(what));
    }

    pub fn type_str(&mut self, s: &str) {
        let mut w = self.writer.lock().unwrap();
        w.write_all(s.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    pub fn resize(&mut self, size: Size) {
        self.emu.lock().unwrap().resize(size);
        self.master
            .resize(portable_pty::PtySize {
                rows: size.rows,
                cols: size.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    pub fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "corral did not exit; screen:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
