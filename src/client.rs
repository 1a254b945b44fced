//! The client side of the socket: connect (starting the server in the background when nothing
//! answers), say Hello, send requests and read replies and streams. Holds no authority: everything
//! it knows comes from the server.

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
}

/// How long a freshly started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// Connect to the user's server, starting one if none answers.
    pub async fn connect() -> Result<Client> {
        match Client::connect_existing().await? {
            Some(c) => Ok(c),
            None => {
                start_server()?;
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    if let Some(c) = Client::connect_existing().await? {
                        return Ok(c);
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "started a corral server but it did not answer on {} within {} s; see {}",
                            paths::socket_path().display(),
                            START_TIMEOUT.as_secs(),
                            paths::state_dir().join("server.log").display()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Connect to a running server; `None` when no server answers.
    pub async fn connect_existing() -> Result<Option<Client>> {
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
                return Ok(None);
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot connect to {}", sock.display()));
            }
        };
        let (rd, wr) = stream.into_split();
        let mut c = Client { rd, wr, server_pid: 0 };
        c.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            client: env!("CARGO_PKG_VERSION").into(),
        })
        .await?;
        match c.recv().await? {
            ServerMsg::Hello { version, pid, .. } if version == PROTOCOL_VERSION => {
                c.server_pid = pid;
                Ok(Some(c))
            }
            ServerMsg::Hello { version, .. } => bail!(
                "the running corral server speaks protocol {version}, this corral speaks {PROTOCOL_VERSION}; run `corral kill-server` and try again"
            ),
            other => bail!("the corral server answered Hello with {other:?}"),
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

    /// Send a request and wait for its reply; a `Reply::Error` becomes an error.
    pub async fn request(&mut self, req: Request) -> Result<Reply> {
        self.send(&ClientMsg::Request(req)).await?;
        loop {
            match self.recv().await? {
                ServerMsg::Reply(Reply::Error(e)) => bail!("{e}"),
                ServerMsg::Reply(r) => return Ok(r),
                // Leftovers of a stream this connection had before; not ours.
                _ => continue,
            }
        }
    }
}

/// Start `corral server` in the background, detached from this terminal, with its output going to
/// the log file.
pub fn start_server() -> Result<()> {
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
        .context("cannot start the corral server")?;
    Ok(())
}

/// The client's environment, passed to agents it creates or restarts.
pub fn env_vec() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The repository this command is about: `--repo` or the current directory.
pub fn repo_root(repo: Option<&PathBuf>) -> Result<PathBuf> {
    let start = match repo {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    Ok(crate::git::discover(&start)?.root)
}
