//! The server: one per user, owner of every agent's PTY, emulator and record. It listens on a unix
//! socket in a private runtime directory (no TCP), holds a lock file so two servers never run at
//! once, and hands each connection to the listener. No ratatui, no crossterm: clients draw.

pub mod badge;
pub mod handover;
pub mod listener;
pub mod names;
pub mod pane;
pub mod persist;
pub mod pty;
pub mod session;
pub mod tty;

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::paths;

/// What a server started by a hand-over (`server --upgrade`) was given by its predecessor.
pub struct Resume {
    pub state: std::path::PathBuf,
    pub listen_fd: i32,
    pub lock_fd: i32,
}

/// Run the server in this process until `kill-server` (or SIGTERM/SIGINT). With `detach`, first
/// leave the caller's session so that closing its terminal or ssh link does not hang us up.
pub fn run(detach: bool, resume: Option<Resume>) -> Result<()> {
    if let Some(r) = resume {
        return run_resumed(r);
    }
    if detach {
        // Fails only if we already lead a process group, in which case we are detached enough.
        let _ = rustix::process::setsid();
    }
    let dir = paths::runtime_dir();
    paths::ensure_runtime_dir(&dir)?;
    // The server outlives the directory it was started from (often a worktree that `rm` deletes).
    let _ = std::env::set_current_dir("/");
    let _log_guard = crate::logging::init_file("server")?;
    crate::failpoint::arm_from_env();
    let lock_path = dir.join("server.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if !take_lock(&lock, detach) {
        bail!(
            "a corral server is already running for this user (lock {} is held)",
            lock_path.display()
        );
    }
    let mut lock = lock;
    let _ = lock.set_len(0);
    let _ = writeln!(lock, "{}", std::process::id());
    runtime(lock, None, None)
}

/// Go on from the server this process was before its program was replaced: same lock, same
/// socket, the same agents.
fn run_resumed(r: Resume) -> Result<()> {
    let _log_guard = crate::logging::init_file("server")?;
    crate::failpoint::arm_from_env();
    let lock = std::fs::File::from(handover::inherited(r.lock_fd)?);
    let listener = handover::inherited(r.listen_fd)?;
    let state = match handover::load(&r.state) {
        Ok(s) => Some(s),
        Err(e) => {
            // The agents' descriptors are open here with nobody reading them: serving without
            // them is still better than no server (they come back `exited` at the next start).
            error!("{e}");
            None
        }
    };
    info!(
        "server {} took over from the previous binary ({} agents)",
        std::process::id(),
        state.as_ref().map_or(0, |s| s.agents.len())
    );
    runtime(lock, Some(std::os::unix::net::UnixListener::from(listener)), state)
}

fn runtime(
    lock: std::fs::File,
    listener: Option<std::os::unix::net::UnixListener>,
    handed: Option<handover::State>,
) -> Result<()> {
    // libgit2 re-hashes every object it reads (git does not); on a large checkout that is a fifth of
    // the time `new` takes. Objects are still checked when written.
    git2::opts::strict_hash_verification(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("corral-server")
        .build()
        .context("cannot start the server's runtime")?;
    let result = rt.block_on(serve(lock, listener, handed));
    // Panes' threads may still be winding down; do not wait for them.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// How long a server started by a client waits for the lock: a killed server holds it until the
/// kernel has torn the process down, which takes a moment when it had many threads.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Take the lock that makes this the only server. One started by a client (`detach`) waits for a
/// dying predecessor to let go; one started by hand says at once that another is running.
fn take_lock(lock: &std::fs::File, detach: bool) -> bool {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        if rustix::fs::flock(lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            return true;
        }
        if !detach || std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

async fn serve(
    lock: std::fs::File,
    inherited: Option<std::os::unix::net::UnixListener>,
    handed: Option<handover::State>,
) -> Result<()> {
    let sock = paths::socket_path();
    let listener = match inherited {
        Some(l) => {
            l.set_nonblocking(true).context("cannot use the handed-over socket")?;
            UnixListener::from_std(l).context("cannot use the handed-over socket")?
        }
        None => {
            // We hold the lock, so a socket file left here belongs to a dead server.
            match std::fs::remove_file(&sock) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot remove stale socket {}", sock.display()));
                }
            }
            UnixListener::bind(&sock)
                .with_context(|| format!("cannot listen on {}", sock.display()))?
        }
    };
    if let Err(e) = handover::keep(&listener, &lock) {
        warn!("this server will not be able to hand over to a new binary: {e}");
    }
    info!("server {} listening on {}", std::process::id(), sock.display());
    // Starting the session finishes or undoes every change a killed server left half done in the
    // repositories it knows (git::intent) before this loop accepts the first connection; clients
    // connecting meanwhile wait in the listen backlog.
    let session = session::start(Arc::new(pty::RealPty), handed);
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install a SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install a SIGINT handler")?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let s = session.clone();
                    let sd = shutdown_tx.clone();
                    tokio::spawn(listener::serve(stream, s, sd));
                }
                Err(e) => {
                    error!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown_rx.changed() => break,
            _ = term.recv() => { warn!("SIGTERM: stopping"); break; }
            _ = int.recv() => { warn!("SIGINT: stopping"); break; }
        }
    }
    let _ = std::fs::remove_file(&sock);
    // Give the reply to kill-server a moment to leave, and agents their SIGHUP.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    info!("server stopped");
    Ok(())
}
