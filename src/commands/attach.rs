//! `corral attach`: the agent full-screen in this terminal, like `tmux attach`.
//!
//! As tmux does, the server draws on this terminal itself: the client names its terminal device
//! and the server opens it, so an echo reaches the screen without passing through this process.
//! When the server cannot open it, it sends screen diffs and this paints them. Either way the
//! input modes the agent asked for (cursor keys, keypad, bracketed paste, focus, mouse, kitty
//! keyboard flags) are mirrored onto this terminal, so keys arrive as the bytes the agent expects;
//! they are reset when we leave. Keys go to the server as this terminal encodes them. The detach
//! key returns; the agent keeps running.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use crate::client::{Client, ReadHalf, WriteHalf};
use crate::proto::{ClientMsg, KeyReading, Reply, Request, ServerMsg, Target};
use crate::term::screen::{mirror_modes, paint};
use crate::term::{Modes, TermColors};

/// Puts the terminal back however attach ends (error, exit, panic unwinding). The server may have
/// set any of the input modes, and only it knows which, so all of them are reset.
struct TermGuard;

/// Every input mode an agent's modes can set on this terminal, off; then colours, cursor and the
/// main screen back.
const RESET: &[u8] = b"\x1b[?1l\x1b>\x1b[?2004l\x1b[?1004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[=0;1u\x1b[0m\x1b[?25h\x1b[?1049l";

impl Drop for TermGuard {
    fn drop(&mut self) {
        let mut so = std::io::stdout();
        let _ = so.write_all(RESET);
        let _ = so.flush();
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Where the server can draw: this terminal's device, when it has a name.
fn terminal_device() -> Option<PathBuf> {
    let name = rustix::termios::ttyname(std::io::stdout(), Vec::new()).ok()?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
    path.is_absolute().then_some(path)
}

/// Whether standard input is the terminal standard output names (the one the server would read).
fn stdin_is_stdout() -> bool {
    let name = |fd| rustix::termios::ttyname(fd, Vec::new()).ok();
    matches!((name(std::io::stdin().as_fd()), name(std::io::stdout().as_fd())), (Some(a), Some(b)) if a == b)
}

/// The byte a `ctrl-X` key name produces, and its kitty-protocol form.
pub fn detach_key(name: &str) -> Result<(u8, Vec<u8>)> {
    let key = name.trim().to_ascii_lowercase();
    let Some(ch) = key.strip_prefix("ctrl-").and_then(|k| {
        let mut it = k.chars();
        let c = it.next()?;
        it.next().is_none().then_some(c)
    }) else {
        bail!("detach key '{name}' must be ctrl- and one character, e.g. ctrl-]");
    };
    let byte = match ch {
        'a'..='z' => ch as u8 - b'a' + 1,
        '@' | ' ' => 0,
        '[' => 0x1b,
        '\\' => 0x1c,
        ']' => 0x1d,
        '^' => 0x1e,
        '_' => 0x1f,
        _ => bail!("detach key '{name}' has no control code; use ctrl-a..ctrl-z or ctrl-] etc."),
    };
    let kitty = format!("\x1b[{};5u", ch as u32).into_bytes();
    Ok((byte, kitty))
}

pub async fn attach(c: Client, repo: PathBuf, name: String) -> Result<i32> {
    attach_asked(c, repo, name, None).await
}

/// [`attach`], when the terminal was already asked for its colours (`asked`: what it said, and
/// the keys typed meanwhile); None asks it.
pub async fn attach_asked(
    mut c: Client,
    repo: PathBuf,
    name: String,
    asked: Option<(Option<TermColors>, Vec<u8>)>,
) -> Result<i32> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(
            "attach needs a terminal; use `corral tail {name}` to read an agent's screen from a script"
        );
    }
    let config = crate::config::load(&crate::paths::user_config_file(), Some(&repo))?.config;
    let (detach_byte, detach_kitty) = detach_key(&config.terminal.detach_key)?;
    let size = super::terminal_size();
    // The terminal is ready before asking: the server may start drawing on it the moment it
    // answers.
    crossterm::terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
    let guard = TermGuard;
    let (colors, typed) = asked.unwrap_or_else(super::colors::ask_terminal);
    let mut stdout = std::io::stdout();
    stdout.write_all(b"\x1b[?1049h\x1b[H\x1b[2J")?;
    stdout.flush()?;
    let target = Target { repo, name: name.clone() };
    // A server on another host cannot draw on this terminal: it sends frames.
    let local = c.ssh.is_none();
    let tty = if local { terminal_device() } else { None };
    // The server may read the keys from the terminal too, when it is the one typed on.
    let reading = (tty.is_some() && stdin_is_stdout())
        .then(|| KeyReading { detach: detach_byte, kitty: detach_kitty.clone() });
    let attach_req = {
        let (target, tty) = (target.clone(), tty.clone());
        move |size, reading: Option<KeyReading>| Request::Attach {
            target: target.clone(),
            size,
            tty: tty.clone(),
            colors,
            keys: reading,
        }
    };
    let server_reads = match c.request(attach_req(size, reading.clone())).await? {
        Reply::Attached => false,
        Reply::AttachedReadingKeys => true,
        reply => bail!("unexpected reply to attach: {reply:?}"),
    };
    if !typed.is_empty() {
        c.send(&ClientMsg::Input(typed)).await?;
    }
    // What this process drew, when the server sends frames instead of drawing itself.
    let mut modes = Modes::default();

    // Frames to the server are written whole under a lock, by the thread that reads the keys and
    // by this task (resizes); frames from it are read by a task of this runtime.
    let crate::client::Client { rd, wr, ssh, .. } = c;
    // Keeps the ssh session to another host open while attached.
    let _ssh = ssh;
    let (to_server, rd): (_, Box<dyn tokio::io::AsyncRead + Unpin + Send>) = match (rd, wr) {
        (ReadHalf::Unix(rd), WriteHalf::Unix(wr)) => {
            let (stream, rd) = split_unix(rd, wr)?;
            (std::sync::Arc::new(std::sync::Mutex::new(ToServer::Unix(stream))), rd)
        }
        (rd, mut wr) => {
            let (tx, mut frames) = mpsc::unbounded_channel::<Vec<u8>>();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                while let Some(f) = frames.recv().await {
                    if wr.write_all(&f).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                }
            });
            let to_server = std::sync::Arc::new(std::sync::Mutex::new(ToServer::Task(tx)));
            (to_server, Box::new(tokio::io::BufReader::new(rd)))
        }
    };
    // Standard input is read on a thread (a blocking read cannot be cancelled; the thread simply
    // ends with the process), which sends each key to the server itself: a keystroke crosses no
    // thread before it leaves.
    // When the server reads them, this process reads nothing from its terminal (the channel
    // stays open and silent) unless a server it attaches to again cannot.
    let (key_tx, mut keys) = mpsc::unbounded_channel::<KeysEnd>();
    let start_keys = {
        let (writer, kitty) = (to_server.clone(), detach_kitty.clone());
        move || {
            let (writer, kitty, key_tx) = (writer.clone(), kitty.clone(), key_tx.clone());
            std::thread::spawn(move || {
                let end = forward_keys(&writer, detach_byte, &kitty, local);
                let _ = key_tx.send(end);
            });
        }
    };
    let mut reading_here = !server_reads;
    if reading_here {
        start_keys();
    }
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .context("cannot watch for terminal resizes")?;
    let mut out = Vec::with_capacity(64 * 1024);
    let mut server = read_frames(rd);
    let exit_note;
    // After the detach key: until the server says it stopped drawing (or a moment passed).
    let mut detaching: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            biased;
            end = keys.recv(), if detaching.is_none() => match end {
                Some(KeysEnd::Detached) => {
                    detaching = Some(tokio::time::Instant::now() + DETACH_WAIT);
                }
                Some(KeysEnd::Lost(e)) => {
                    if !local {
                        drop(guard);
                        bail!("lost the connection to the corral server: {e}");
                    }
                    // The reading side sees the connection close too, and connects again.
                }
                Some(KeysEnd::Closed) | None => {
                    exit_note = None;
                    break;
                }
            },
            _ = winch.recv() => {
                if let Some(size) = super::terminal_size() {
                    send_frame(&to_server, &ClientMsg::Resize(size))
                        .context("lost the connection to the corral server")?;
                }
            }
            msg = server.recv() => match msg {
                Some(Ok(ServerMsg::Screen(update))) => {
                    out.clear();
                    mirror_modes(&modes, &update.modes, &mut out);
                    modes = update.modes;
                    paint(&update, &mut out);
                    stdout.write_all(&out)?;
                    stdout.flush()?;
                }
                Some(Ok(ServerMsg::Bell)) => {
                    stdout.write_all(b"\x07")?;
                    stdout.flush()?;
                }
                Some(Ok(ServerMsg::Notice(n))) => {
                    stdout.write_all(&n.terminal_bytes())?;
                    stdout.flush()?;
                }
                Some(Ok(ServerMsg::Detached)) => {
                    exit_note = Some(format!("[detached from {name}]"));
                    break;
                }
                Some(Ok(ServerMsg::Exited(code))) => {
                    exit_note = Some(format!(
                        "[{name} exited{}]",
                        code.map(|c| format!(" with code {c}")).unwrap_or_default()
                    ));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None if local && detaching.is_none() => {
                    // The server went away (upgraded, or restarted): attach again to the same
                    // agent, which draws its whole screen anew.
                    // Keys already read here go on being read here: two readers of one
                    // terminal would split the keys between them.
                    let ask = if reading_here { None } else { reading.clone() };
                    let Some((stream, rd, server_reads)) =
                        reattach(&|size| attach_req(size, ask.clone())).await
                    else {
                        drop(guard);
                        bail!("lost the connection to the corral server");
                    };
                    if !server_reads && !reading_here {
                        reading_here = true;
                        start_keys();
                    }
                    *to_server.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        ToServer::Unix(stream);
                    server = read_frames(rd);
                }
                Some(Err(e)) => {
                    drop(guard);
                    bail!("lost the connection to the corral server: {e}");
                }
                None => {
                    exit_note = detaching.map(|_| format!("[detached from {name}]"));
                    break;
                }
            },
            _ = tokio::time::sleep_until(detaching.unwrap_or_else(tokio::time::Instant::now)), if detaching.is_some() => {
                exit_note = Some(format!("[detached from {name}]"));
                break;
            }
        }
    }
    drop(guard);
    if let Some(n) = exit_note {
        eprintln!("{n}");
    }
    Ok(0)
}

/// Frames from the server, read by a task of this runtime until the connection ends.
fn read_frames(
    mut rd: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
) -> mpsc::Receiver<Result<ServerMsg, crate::proto::FrameError>> {
    let (srv_tx, server) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let msg = crate::proto::read_frame::<_, ServerMsg>(&mut rd).await;
            let end = msg.is_err();
            if srv_tx.send(msg).await.is_err() || end {
                break;
            }
        }
    });
    server
}

type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

/// This machine's connection as a stream the key thread writes on and a reader for the runtime.
fn split_unix(
    rd: tokio::net::unix::OwnedReadHalf,
    wr: tokio::net::unix::OwnedWriteHalf,
) -> Result<(UnixStream, Reader)> {
    let stream = rd.reunite(wr).context("cannot reunite the connection to the server")?;
    let stream = stream.into_std().context("cannot take over the connection to the server")?;
    let writer = stream.try_clone().context("cannot share the connection to the server")?;
    let rd = tokio::net::UnixStream::from_std(stream)
        .context("cannot read from the connection to the server")?;
    Ok((writer, Box::new(tokio::io::BufReader::new(rd))))
}

/// Connect to this machine's server again and attach, for up to `RECONNECT_LIMIT`; true: the
/// server reads the keys.
async fn reattach(
    request: &impl Fn(Option<crate::term::Size>) -> Request,
) -> Option<(UnixStream, Reader, bool)> {
    let deadline = std::time::Instant::now() + super::RECONNECT_LIMIT;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(mut c)) = Client::connect_existing().await
            && let Ok(reply @ (Reply::Attached | Reply::AttachedReadingKeys)) =
                c.request(request(super::terminal_size())).await
        {
            let crate::client::Client { rd, wr, .. } = c;
            if let (ReadHalf::Unix(rd), WriteHalf::Unix(wr)) = (rd, wr) {
                let (stream, rd) = split_unix(rd, wr).ok()?;
                return Some((stream, rd, reply == Reply::AttachedReadingKeys));
            }
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// How long detaching waits for the server to stop drawing on this terminal before leaving anyway.
const DETACH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How the key thread stopped.
enum KeysEnd {
    /// The detach key was pressed (and the server told).
    Detached,
    /// Standard input ended.
    Closed,
    /// The server could not be written to.
    Lost(std::io::Error),
}

/// Read standard input and send it to the server as it comes, until the detach key, the end of
/// input or a lost connection.
/// With `outlive` a failed write does not end it (keys typed while the connection is being made
/// again are lost, the ones after it are sent on the new one).
fn forward_keys(
    to_server: &std::sync::Mutex<ToServer>,
    detach: u8,
    kitty: &[u8],
    outlive: bool,
) -> KeysEnd {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 8192];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return KeysEnd::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return KeysEnd::Closed,
        };
        let bytes = &buf[..n];
        let pos = bytes.iter().position(|b| *b == detach);
        let kpos = find(bytes, kitty);
        let sent = match [pos, kpos].into_iter().flatten().min() {
            Some(p) => (if p > 0 {
                send_frame(to_server, &ClientMsg::Input(bytes[..p].to_vec()))
            } else {
                Ok(())
            })
            .and_then(|_| send_frame(to_server, &ClientMsg::Detach))
            .map(|_| Some(KeysEnd::Detached)),
            None => send_frame(to_server, &ClientMsg::Input(bytes.to_vec())).map(|_| None),
        };
        match sent {
            Ok(Some(end)) => return end,
            Ok(None) => {}
            Err(_) if outlive => {}
            Err(e) => return KeysEnd::Lost(e),
        }
    }
}

/// Where the key thread writes frames: straight onto this machine's socket (a keystroke crosses
/// no other thread), or, for another host, to the task that writes on the ssh session.
enum ToServer {
    Unix(UnixStream),
    Task(mpsc::UnboundedSender<Vec<u8>>),
}

/// Write one whole frame to the server. The socket is non-blocking (the runtime reads the same
/// socket), so a full send buffer is waited out with poll rather than spun on.
fn send_frame(to_server: &std::sync::Mutex<ToServer>, msg: &ClientMsg) -> std::io::Result<()> {
    let bytes = crate::proto::encode(msg).map_err(std::io::Error::other)?;
    let to = to_server.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stream = match &*to {
        ToServer::Unix(s) => s,
        ToServer::Task(tx) => {
            return tx.send(bytes).map_err(|_| std::io::ErrorKind::BrokenPipe.into());
        }
    };
    let mut left = bytes.as_slice();
    while !left.is_empty() {
        match (&*stream).write(left) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => left = &left[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [rustix::event::PollFd::new(stream, rustix::event::PollFlags::OUT)];
                rustix::event::poll(&mut fds, None)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::MouseMode;

    #[test]
    fn detach_keys_parse_to_their_control_bytes() {
        assert_eq!(detach_key("ctrl-]").unwrap().0, 0x1d);
        assert_eq!(detach_key("Ctrl-B").unwrap().0, 2);
        assert_eq!(detach_key("ctrl-]").unwrap().1, b"\x1b[93;5u");
        assert!(detach_key("alt-x").unwrap_err().to_string().contains("alt-x"));
        assert!(detach_key("ctrl-1").is_err());
    }

    #[test]
    fn modes_are_mirrored_and_undone() {
        let on = Modes {
            app_cursor: true,
            bracketed_paste: true,
            mouse: MouseMode::Drag,
            sgr_mouse: true,
            kitty_flags: 1,
            ..Modes::default()
        };
        let mut out = Vec::new();
        mirror_modes(&Modes::default(), &on, &mut out);
        let s = String::from_utf8(out).unwrap();
        for seq in ["\x1b[?1h", "\x1b[?2004h", "\x1b[?1002h", "\x1b[?1006h", "\x1b[=1;1u"] {
            assert!(s.contains(seq), "{seq:?} in {s:?}");
        }
        let mut back = Vec::new();
        mirror_modes(&on, &Modes::default(), &mut back);
        let s = String::from_utf8(back).unwrap();
        for seq in ["\x1b[?1l", "\x1b[?2004l", "\x1b[?1002l", "\x1b[?1006l", "\x1b[=0;1u"] {
            assert!(s.contains(seq), "{seq:?} in {s:?}");
        }
    }
}
