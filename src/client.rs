//! The client side of the socket: connect (starting the server in the background when nothing
//! answers), say Hello, send requests and read replies and streams. Holds no authority: everything
//! it knows comes from the server.
//!
//! A server can die at any instant (`kill -9`, a crash). Its socket file stays behind, and for a
//! moment so does its listening socket: the kernel still queues connections while it tears the
//! process down, then resets them. So a connection that is reset or closed before the server's
//! Hello is not an answer but a server going away: the client waits for it to be gone, and then
//! starts a new one, all within one deadline. A request is sent again on a new connection only when
//! doing it twice is harmless (reads); otherwise the user is told it may or may not have been done.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::hosts::Host;
use crate::paths;
use crate::proto::{self, ClientMsg, PROTOCOL_VERSION, Reply, Request, ServerMsg};

pub struct Client {
    pub rd: ReadHalf,
    pub wr: WriteHalf,
    pub server_pid: u32,
    /// Came from [`Client::connect`]: a lost connection may be replaced by starting a server.
    may_start: bool,
    /// The ssh process behind a connection to another host: ended when the connection is.
    pub ssh: Option<SshLink>,
}

/// The reading side of a connection: this machine's socket, or an ssh session's output.
pub enum ReadHalf {
    Unix(OwnedReadHalf),
    Ssh(tokio::process::ChildStdout),
    /// One channel of a host's ssh session ([`crate::mux`]).
    Mux(tokio::io::ReadHalf<tokio::io::DuplexStream>),
}

/// The writing side of a connection.
pub enum WriteHalf {
    Unix(OwnedWriteHalf),
    Ssh(tokio::process::ChildStdin),
    Mux(tokio::io::WriteHalf<tokio::io::DuplexStream>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Unix(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Ssh(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Mux(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Unix(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Ssh(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Mux(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Unix(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Ssh(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Mux(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Unix(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Ssh(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Mux(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

/// The ssh process of a connection to another host, and what it said on stderr (why a login
/// failed, in ssh's words).
pub struct SshLink {
    pub host: Host,
    child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
}

impl SshLink {
    /// The last thing ssh (or the corral run there) said, for an error message.
    pub fn said(&self) -> String {
        let text = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
    }

    /// Wait (a moment) for ssh to end and say why, for a connection that closed.
    async fn why_closed(&mut self) -> String {
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        // What it printed just before exiting may still be in the pipe.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let said = self.said();
        match (status, said.is_empty()) {
            (Some(st), true) => format!("ssh ended ({st})"),
            (Some(st), false) => format!("ssh ended ({st}): {said}"),
            (None, true) => "the connection closed".to_string(),
            (None, false) => said,
        }
    }
}

/// How long the client waits for a server to be there: a dying one to be gone and a new one to
/// answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server that accepted the connection may take to say Hello (it may be recovering
/// what a crash left half-done before it answers anything).
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// A server we started that exited (it lost the race for the lock to another one, or the old
/// one still held it) is started again at most this often.
const RESTART_EVERY: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(20);

/// What one attempt to reach the server found.
enum Found {
    Server(Box<Client>),
    /// No socket, or one nobody listens on (a dead server's).
    Nothing,
    /// A connection that was reset or closed before Hello: a server on its way out.
    Going,
}

/// Why a request got no reply.
enum Failure {
    /// The connection broke; `sent` says whether the request may have reached the server.
    Lost {
        sent: bool,
        error: anyhow::Error,
    },
    Other(anyhow::Error),
}

impl Client {
    /// Connect to the user's server, starting one if none answers (or the one there is dying).
    pub async fn connect() -> Result<Client> {
        if let Some(host) = crate::hosts::selected() {
            return Client::connect_host(host).await;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut started: Option<(std::process::Child, Instant)> = None;
        loop {
            match Client::reach(true).await? {
                Found::Server(c) => return Ok(*c),
                Found::Going => {}
                Found::Nothing => {
                    let start = match started.as_mut() {
                        None => true,
                        // Ours exited without answering: the lock was not free yet.
                        Some((child, at)) => {
                            at.elapsed() >= RESTART_EVERY && !matches!(child.try_wait(), Ok(None))
                        }
                    };
                    if start {
                        started = Some((start_server()?, Instant::now()));
                    }
                }
            }
            if Instant::now() >= deadline {
                let sock = paths::socket_path();
                let secs = START_TIMEOUT.as_secs();
                let what = match started.as_mut().map(|(child, _)| child.try_wait()) {
                    None => format!(
                        "the corral server on {} kept dropping connections for {secs} s",
                        sock.display()
                    ),
                    Some(Ok(Some(status))) => format!(
                        "started a corral server but it exited ({status}) without answering on {}",
                        sock.display()
                    ),
                    Some(_) => format!(
                        "started a corral server but it did not answer on {} within {secs} s",
                        sock.display()
                    ),
                };
                bail!("{what}; see {}", paths::state_dir().join("server.log").display());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Connect to a running server; `None` when no server answers. A server on its way out is
    /// waited for, so that `None` means it is gone.
    pub async fn connect_existing() -> Result<Option<Client>> {
        if let Some(host) = crate::hosts::selected() {
            // The host's proxy starts its server when none runs: there is no "existing only".
            return Client::connect_host(host).await.map(Some);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Client::reach(false).await? {
                Found::Server(c) => return Ok(Some(*c)),
                Found::Nothing => return Ok(None),
                Found::Going if Instant::now() >= deadline => return Ok(None),
                Found::Going => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn reach(may_start: bool) -> Result<Found> {
        let dir = paths::runtime_dir();
        paths::ensure_runtime_dir(&dir)?;
        let sock = paths::socket_path();
        let stream = match UnixStream::connect(&sock).await {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(Found::Nothing);
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot connect to {}", sock.display()));
            }
        };
        let (rd, wr) = stream.into_split();
        let mut c = Client {
            rd: ReadHalf::Unix(rd),
            wr: WriteHalf::Unix(wr),
            server_pid: 0,
            may_start,
            ssh: None,
        };
        let hello = async {
            if c.send(&hello_msg()).await.is_err() {
                return Ok(None);
            }
            match proto::read_frame::<_, ServerMsg>(&mut c.rd).await {
                Ok(msg) => Ok(Some(msg)),
                Err(proto::FrameError::Closed | proto::FrameError::Io(_)) => Ok(None),
                Err(e) => Err(anyhow!("reading the corral server's Hello: {e}")),
            }
        };
        let answer = tokio::time::timeout(HELLO_TIMEOUT, hello).await.map_err(|_| {
            anyhow!(
                "the corral server on {} accepted the connection but did not answer within {} s; see {}",
                sock.display(),
                HELLO_TIMEOUT.as_secs(),
                paths::state_dir().join("server.log").display()
            )
        })??;
        match answer {
            None => Ok(Found::Going),
            Some(ServerMsg::Hello { version, pid, .. }) if version == PROTOCOL_VERSION => {
                c.server_pid = pid;
                Ok(Found::Server(Box::new(c)))
            }
            Some(ServerMsg::Hello { version, .. }) => bail!(
                "the running corral server speaks protocol {version}, this corral speaks {PROTOCOL_VERSION}; run `corral kill-server` and try again"
            ),
            Some(other) => bail!("the corral server answered Hello with {other:?}"),
        }
    }

    /// Ask this machine's server, whatever protocol it speaks, to hand over to the binary at
    /// `exe` (see [`proto::UPGRADE_HELLO`]): Ok(None) when it closed the connection (it did),
    /// Ok(Some(why)) when it refused, Err when there is no server or it could not be asked.
    pub async fn ask_upgrade(exe: &std::path::Path) -> Result<Option<String>> {
        let sock = paths::socket_path();
        let stream = UnixStream::connect(&sock)
            .await
            .with_context(|| format!("no corral server answers on {}", sock.display()))?;
        let (mut rd, mut wr) = stream.into_split();
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            client: format!("{}{}", proto::UPGRADE_HELLO, exe.display()),
        };
        proto::write_frame(&mut wr, &hello).await.context("cannot ask the corral server")?;
        match proto::read_frame::<_, ServerMsg>(&mut rd).await {
            Ok(ServerMsg::Hello { .. }) => {}
            Ok(other) => bail!("the corral server answered Hello with {other:?}"),
            Err(e) => bail!("the corral server did not answer: {e}"),
        }
        match proto::read_frame::<_, ServerMsg>(&mut rd).await {
            Ok(ServerMsg::Reply(Reply::Error(e))) => Ok(Some(e)),
            Ok(other) => bail!("unexpected answer to server --upgrade: {other:?}"),
            Err(proto::FrameError::Closed | proto::FrameError::Io(_)) => Ok(None),
            Err(e) => bail!("the corral server's answer to server --upgrade: {e}"),
        }
    }

    /// Connect to the corral server on another host through `ssh … corral proxy`.
    pub async fn connect_host(host: &Host) -> Result<Client> {
        let name = &host.name;
        let (link, stdin, stdout) = spawn_ssh(host, &host.argv())?;
        let mut c = Client {
            rd: ReadHalf::Ssh(stdout),
            wr: WriteHalf::Ssh(stdin),
            server_pid: 0,
            may_start: true,
            ssh: Some(link),
        };
        let hello = async {
            c.send(&hello_msg()).await.ok();
            proto::read_frame::<_, ServerMsg>(&mut c.rd).await
        };
        let answer = tokio::time::timeout(HELLO_TIMEOUT, hello).await;
        let why = match answer {
            Ok(Ok(ServerMsg::Hello { version, pid, .. })) if version == PROTOCOL_VERSION => {
                c.server_pid = pid;
                return Ok(c);
            }
            Ok(Ok(ServerMsg::Hello { version, server, .. })) => format!(
                "its corral server ({server}) speaks protocol {version}, this corral speaks {PROTOCOL_VERSION}: run the same corral version on both"
            ),
            Ok(Ok(other)) => format!("its corral server answered Hello with {other:?}"),
            Ok(Err(proto::FrameError::Closed | proto::FrameError::Io(_))) => match c.ssh.as_mut() {
                Some(l) => l.why_closed().await,
                None => "the connection closed".into(),
            },
            Ok(Err(e)) => {
                let cmd = host.config.command.join(" ");
                format!(
                    "what came back is not corral's protocol ({e}); does `{cmd} proxy` run corral there, and does the login print nothing on stdout?"
                )
            }
            Err(_) => format!("no answer within {} s", HELLO_TIMEOUT.as_secs()),
        };
        bail!("host '{name}': {why}")
    }

    /// A connection over one channel of a host's ssh session, Hello done.
    pub async fn over_channel(stream: tokio::io::DuplexStream, host: &str) -> Result<Client> {
        let (rd, wr) = tokio::io::split(stream);
        let mut c = Client {
            rd: ReadHalf::Mux(rd),
            wr: WriteHalf::Mux(wr),
            server_pid: 0,
            may_start: false,
            ssh: None,
        };
        c.send(&hello_msg()).await?;
        match tokio::time::timeout(HELLO_TIMEOUT, proto::read_frame::<_, ServerMsg>(&mut c.rd))
            .await
        {
            Ok(Ok(ServerMsg::Hello { version, pid, .. })) if version == PROTOCOL_VERSION => {
                c.server_pid = pid;
                Ok(c)
            }
            Ok(Ok(ServerMsg::Hello { version, server, .. })) => bail!(
                "its corral server ({server}) speaks protocol {version}, this corral speaks {PROTOCOL_VERSION}: run the same corral version on both"
            ),
            Ok(Ok(other)) => bail!("its corral server answered Hello with {other:?}"),
            Ok(Err(e)) => bail!("no corral server answered on {host}: {e}"),
            Err(_) => bail!("no answer within {} s", HELLO_TIMEOUT.as_secs()),
        }
    }

    /// This connection, replaced (should it break) only by a server that is already running.
    pub fn without_starting(mut self) -> Client {
        self.may_start = false;
        self
    }

    /// A new connection of the same kind as this one, after this one broke.
    async fn reconnect(&self) -> Result<Option<Client>> {
        match (&self.rd, &self.ssh) {
            // A channel of a host's session: its owner decides when to log in again.
            (ReadHalf::Mux(_), _) => return Ok(None),
            (ReadHalf::Ssh(_), Some(link)) => {
                return Client::connect_host(&link.host).await.map(Some);
            }
            _ => {}
        }
        if self.may_start {
            Client::connect().await.map(Some)
        } else {
            Client::connect_existing().await
        }
    }

    pub async fn send(&mut self, msg: &ClientMsg) -> Result<()> {
        proto::write_frame(&mut self.wr, msg)
            .await
            .context("lost the connection to the corral server")
    }

    pub async fn recv(&mut self) -> Result<ServerMsg> {
        proto::read_frame(&mut self.rd).await.map_err(|e| match e {
            proto::FrameError::Closed => anyhow!("the corral server closed the connection"),
            e => anyhow!("reading from the corral server: {e}"),
        })
    }

    /// Send a request and wait for its reply; a `Reply::Error` becomes an error. When the
    /// connection breaks first (the server died), a request that surely never arrived, or a read,
    /// is asked again of the server that replaces it; anything else may have been done, and the
    /// user is told so instead of it being done twice.
    pub async fn request(&mut self, req: Request) -> Result<Reply> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let (sent, error) = match self.exchange(&req).await {
                Ok(Reply::Error(e)) => bail!("{e}"),
                Ok(r) => return Ok(r),
                Err(Failure::Other(e)) => return Err(e),
                Err(Failure::Lost { sent, error }) => (sent, error),
            };
            if sent && !req.is_read_only() {
                return Err(error.context(format!(
                    "the corral server went away before answering `{}`; it may or may not have been done (`corral ls` shows what happened)",
                    req.verb()
                )));
            }
            if Instant::now() >= deadline {
                return Err(error.context(format!(
                    "the corral server kept going away before answering `{}`; see {}",
                    req.verb(),
                    paths::state_dir().join("server.log").display()
                )));
            }
            match self.reconnect().await? {
                Some(c) => *self = c,
                None => return Err(error.context("no corral server is answering")),
            }
        }
    }

    async fn exchange(&mut self, req: &Request) -> Result<Reply, Failure> {
        let frame = proto::encode(&ClientMsg::Request(req.clone()))
            .map_err(|e| Failure::Other(anyhow!("cannot send `{}`: {e}", req.verb())))?;
        {
            use tokio::io::AsyncWriteExt;
            if let Err(e) = self.wr.write_all(&frame).await {
                // Not a whole frame reached the server: it cannot have acted on it. (Text, not
                // the io::Error: a broken pipe in an error's chain reads as `| head` closing.)
                let error = anyhow!("cannot write to the corral server: {e}");
                return Err(Failure::Lost { sent: false, error });
            }
        }
        loop {
            match proto::read_frame::<_, ServerMsg>(&mut self.rd).await {
                Ok(ServerMsg::Reply(r)) => return Ok(r),
                // Leftovers of a stream this connection had before; not ours.
                Ok(_) => continue,
                Err(e @ (proto::FrameError::Closed | proto::FrameError::Io(_))) => {
                    return Err(Failure::Lost { sent: true, error: e.into() });
                }
                Err(e) => {
                    return Err(Failure::Other(anyhow!("reading from the corral server: {e}")));
                }
            }
        }
    }
}

/// Start `argv` (an ssh command line for `host`) with its standard streams piped; what it says on
/// stderr is kept for error messages.
pub fn spawn_ssh(
    host: &Host,
    argv: &[String],
) -> Result<(SshLink, tokio::process::ChildStdin, tokio::process::ChildStdout)> {
    let name = &host.name;
    let Some((program, args)) = argv.split_first() else {
        bail!("host '{name}': no ssh command");
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child =
        cmd.spawn().with_context(|| format!("host '{name}': cannot run `{program}`"))?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        bail!("host '{name}': ssh was started without its pipes");
    };
    let said = Arc::new(Mutex::new(String::new()));
    let keep = said.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = keep.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                // The end is what says why; keep a few lines' worth.
                if s.len() > 4096 {
                    let cut = s.len() - 2048;
                    let cut = (cut..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                    s.drain(..cut);
                }
            }
        }
    });
    Ok((SshLink { host: host.clone(), child, stderr: said }, stdin, stdout))
}

fn hello_msg() -> ClientMsg {
    ClientMsg::Hello { version: PROTOCOL_VERSION, client: env!("CARGO_PKG_VERSION").into() }
}

/// Start `corral server` in the background, detached from this terminal, with its output going to
/// the log file. The child is returned so that the caller can tell when it gave up.
fn start_server() -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the corral executable")?;
    let log_dir = paths::state_dir();
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log_path = log_dir.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let err = log.try_clone().context("cannot duplicate the log file handle")?;
    let mut cmd = std::process::Command::new(exe);
    // glibc gives every thread that allocates its own arena, and each pane has four threads whose
    // freed output buffers would stay in theirs; two arenas keep the server's memory to its data.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        cmd.env("MALLOC_ARENA_MAX", "2");
    }
    cmd.args(["server", "--foreground", "--detach"])
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .context("cannot start the corral server")
}

/// The client's environment, passed to agents it creates or restarts.
pub fn env_vec() -> Vec<(String, String)> {
    // Agents on another host get that host's environment (its server's), not this terminal's:
    // an empty environment asks for that.
    if crate::hosts::selected().is_some() {
        return Vec::new();
    }
    local_env()
}

fn local_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The client's git identity variables, sent with requests for which corral may commit: the
/// commits are by the user who asked, as the git CLI in this terminal would make them.
pub fn git_env() -> Vec<(String, String)> {
    crate::git::identity_env(&local_env())
}

/// The repository this command is about: `--repo` or the current directory.
pub fn repo_root(repo: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(host) = crate::hosts::selected() {
        // A path on that host: this machine cannot look at it; its server checks it.
        return match repo {
            Some(p) if p.is_absolute() => Ok(p.clone()),
            Some(p) => bail!(
                "--repo {}: with --host, give the repository's absolute path on {}",
                p.display(),
                host.name
            ),
            None => bail!("with --host {}, name the repository on it with --repo PATH", host.name),
        };
    }
    let start = match repo {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    Ok(crate::git::discover(&start)?.root)
}
