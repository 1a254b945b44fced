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
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::paths;
use crate::proto::{self, ClientMsg, PROTOCOL_VERSION, Reply, Request, ServerMsg};

pub struct Client {
    pub rd: OwnedReadHalf,
    pub wr: OwnedWriteHalf,
    pub server_pid: u32,
    /// Came from [`Client::connect`]: a lost connection may be replaced by starting a server.
    may_start: bool,
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
    Server(Client),
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
        let deadline = Instant::now() + START_TIMEOUT;
        let mut started: Option<(std::process::Child, Instant)> = None;
        loop {
            match Client::reach(true).await? {
                Found::Server(c) => return Ok(c),
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
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Client::reach(false).await? {
                Found::Server(c) => return Ok(Some(c)),
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
        let mut c = Client { rd, wr, server_pid: 0, may_start };
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
                Ok(Found::Server(c))
            }
            Some(ServerMsg::Hello { version, .. }) => bail!(
                "the running corral server speaks protocol {version}, this corral speaks {PROTOCOL_VERSION}; run `corral kill-server` and try again"
            ),
            Some(other) => bail!("the corral server answered Hello with {other:?}"),
        }
    }

    /// This connection, replaced (should it break) only by a server that is already running.
    pub fn without_starting(mut self) -> Client {
        self.may_start = false;
        self
    }

    /// A new connection of the same kind as this one, after this one broke.
    async fn reconnect(&self) -> Result<Option<Client>> {
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
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The client's git identity variables, sent with requests for which corral may commit: the
/// commits are by the user who asked, as the git CLI in this terminal would make them.
pub fn git_env() -> Vec<(String, String)> {
    crate::git::identity_env(&env_vec())
}

/// The repository this command is about: `--repo` or the current directory.
pub fn repo_root(repo: Option<&PathBuf>) -> Result<PathBuf> {
    let start = match repo {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    Ok(crate::git::discover(&start)?.root)
}
