//! `corral server --upgrade`: the running server becomes the binary on disk without stopping an
//! agent (SPEC §13).
//!
//! The server replaces its own program (execve) rather than starting a second process: the agents
//! stay its children, so their exits are still waited for with their codes, and descriptors pass
//! by number with no limit on how many. What crosses: the listening socket and the lock (both
//! duplicated at start for this), each running agent's PTY master and pid, and a state file with
//! each agent's emulator state ([`crate::term::EmulatorState`]). Before replacing itself the
//! server asks the new binary which state version it reads (`server --handover-version`): a binary
//! that does not answer, answers another version or exits leaves this server serving, with one
//! line saying why. Then every pane's reader is stopped (each holds a lock around read and feed,
//! so every byte read is in its emulator and what comes later waits in the PTY) and its input
//! written out, the states are taken and written, and the program is replaced. The new server
//! recovers the repositories as at any start, and adopts the handed-over agents before it accepts
//! a connection; clients see their connection close and connect again.

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::term::{EmulatorState, TermColors};

/// The version of [`State`]: a new binary that reads another one is refused.
pub const STATE_VERSION: u32 = 1;

/// How long the new binary has to say which state version it reads.
const CHECK_LIMIT: Duration = Duration::from_secs(10);

/// What the old server hands the new one besides descriptors.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub colors: Option<TermColors>,
    pub agents: Vec<Handed>,
}

/// One running agent.
#[derive(Debug, Serialize, Deserialize)]
pub struct Handed {
    pub repo: PathBuf,
    pub name: String,
    pub pid: u32,
    /// The PTY master's descriptor number, open across the exec.
    pub fd: RawFd,
    /// The PTY's size is the emulator's (`EmulatorState::size`).
    pub emulator: EmulatorState,
    pub badge: Option<crate::server::badge::View>,
}

/// Duplicates of the listening socket and of the lock file, made at start so a hand-over can
/// pass them on (the originals close on exec; the duplicates share their socket and lock).
static KEPT: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();

/// Keep duplicates of the listener and the lock for a later hand-over.
pub fn keep(listener: impl AsFd, lock: impl AsFd) -> std::io::Result<()> {
    let l = rustix::io::fcntl_dupfd_cloexec(listener, 0)?;
    let k = rustix::io::fcntl_dupfd_cloexec(lock, 0)?;
    let _ = KEPT.set((l, k));
    Ok(())
}

/// What `server --handover-version` prints.
pub fn version_line() -> String {
    format!("corral-handover {STATE_VERSION}")
}

/// Ask the binary at `exe` which state version it reads (with `state`: whether it can read that
/// state file and rebuild every screen in it); Err says why it cannot take over.
pub fn check(exe: &Path, state: Option<&Path>) -> Result<(), String> {
    let name = exe.display().to_string();
    let mut cmd = std::process::Command::new(exe);
    match state {
        None => cmd.args(["server", "--handover-version"]),
        Some(p) => cmd.args(["server", "--handover-check"]).arg(p),
    };
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the new corral binary {name}: {e}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(CHECK_LIMIT) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("the new corral binary {name} failed: {e}")),
        Err(_) => {
            return Err(format!(
                "the new corral binary {name} did not say within {}s which state it reads",
                CHECK_LIMIT.as_secs()
            ));
        }
    };
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if said == version_line() {
        return Ok(());
    }
    if let Some(v) = said.strip_prefix("corral-handover ") {
        return Err(format!(
            "the new corral binary {name} reads server state version {v}, this server writes {STATE_VERSION}: stop the agents (`corral kill-server`) to change to it"
        ));
    }
    let why = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").trim().to_string();
    Err(format!(
        "the new corral binary {name} cannot take over (it exited with {}{}{})",
        out.status,
        if why.is_empty() { "" } else { ": " },
        why
    ))
}

/// Where the state file goes: the private runtime directory.
fn state_path() -> PathBuf {
    crate::paths::runtime_dir().join(format!("handover-{}.state", std::process::id()))
}

fn set_inherit(fd: impl AsFd, inherit: bool) -> std::io::Result<()> {
    let flags = if inherit { rustix::io::FdFlags::empty() } else { rustix::io::FdFlags::CLOEXEC };
    Ok(rustix::io::fcntl_setfd(fd, flags)?)
}

/// Replace this process by `exe`, handing it `state` and the agents' `masters`. Returns only if
/// that failed, with everything as it was.
pub fn exec(exe: &Path, state: &State, masters: &[&OwnedFd]) -> String {
    let Some((listener, lock)) = KEPT.get() else {
        return "this server cannot hand over (it kept no copy of its socket)".into();
    };
    let path = state_path();
    let written = postcard::to_allocvec(state).map_err(std::io::Error::other).and_then(|bytes| {
        let mut f =
            std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
        f.write_all(&bytes)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return format!("cannot write the server's state to {}: {e}", path.display());
    }
    // The new binary rebuilds every screen from the file first: one it cannot read, or that makes
    // it crash, is found while this server can still go on.
    if let Err(why) = check(exe, Some(&path)) {
        let _ = std::fs::remove_file(&path);
        return why;
    }
    let fds: Vec<&OwnedFd> = [listener, lock].into_iter().chain(masters.iter().copied()).collect();
    let mut failed = None;
    for fd in &fds {
        if let Err(e) = set_inherit(fd, true) {
            failed = Some(e);
            break;
        }
    }
    crate::failpoint::hit("upgrade:exec");
    let err = match failed {
        Some(e) => e,
        None => {
            use std::os::fd::AsRawFd as _;
            use std::os::unix::process::CommandExt as _;
            std::process::Command::new(exe)
                .arg("server")
                .arg("--resume")
                .arg(&path)
                .arg("--listen-fd")
                .arg(listener.as_raw_fd().to_string())
                .arg("--lock-fd")
                .arg(lock.as_raw_fd().to_string())
                .exec()
        }
    };
    for fd in &fds {
        let _ = set_inherit(fd, false);
    }
    let _ = std::fs::remove_file(&path);
    format!("cannot start the new corral binary {}: {err}", exe.display())
}

/// Take over a descriptor the old server left open for this process.
#[allow(unsafe_code)]
pub fn inherited(fd: RawFd) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd as _;
    // Check it is open before owning it: a wrong number must not close someone else's later.
    // SAFETY: the borrow lives only for this call, which fails cleanly on a closed descriptor.
    let flags = rustix::io::fcntl_getfd(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) });
    flags
        .map_err(|e| std::io::Error::other(format!("descriptor {fd} was not handed over: {e}")))?;
    // SAFETY: `fd` is open (just checked), and nothing else in this process refers to it: the
    // process was just started by the old server's exec, which passed these numbers on the
    // command line for this process to own, and this is called once per number at start. The
    // borrow above ends with the fcntl call.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_inherit(&owned, false)?;
    Ok(owned)
}

/// The binary a `server --upgrade` would move the running server (pid `server`) to, when there
/// is a newer one than it runs: the file it was started from was replaced since (a reinstall),
/// or this corral binary is another file, newer than the server's.
pub fn newer_binary(server: u32) -> Option<PathBuf> {
    let link = std::fs::read_link(format!("/proc/{server}/exe")).ok()?;
    let text = link.to_string_lossy();
    if let Some(path) = text.strip_suffix(" (deleted)") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let me = std::env::current_exe().ok()?;
    if me == link {
        return None;
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&me)? > modified(&link)?).then_some(me)
}

/// `server --handover-check`: read the state file and rebuild every screen in it, as taking over
/// would, without taking anything over.
pub fn check_state(path: &Path) -> Result<usize, String> {
    let state = read(path)?;
    let n = state.agents.len();
    for h in state.agents {
        drop(crate::term::restore(h.emulator));
    }
    Ok(n)
}

/// Read the state the old server wrote (and remove its file).
pub fn load(path: &Path) -> Result<State, String> {
    let state = read(path);
    let _ = std::fs::remove_file(path);
    state
}

fn read(path: &Path) -> Result<State, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the handed-over state {}: {e}", path.display()))?;
    let state: State = postcard::from_bytes(&bytes)
        .map_err(|e| format!("cannot read the handed-over state {}: {e}", path.display()))?;
    if state.version != STATE_VERSION {
        return Err(format!(
            "the handed-over state is version {}, this server reads {STATE_VERSION}",
            state.version
        ));
    }
    Ok(state)
}
