//! `corral proxy` (the far end of a host's ssh session), `corral hosts`, and the agents of every
//! host for `ls --all`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::UnixStream;

use crate::client::Client;
use crate::hosts::Host;
use crate::paths;
use crate::proto::{AgentInfo, Reply, Request};

/// How long a host may take to log in and answer, for the commands that ask every host.
const HOST_TIMEOUT: Duration = Duration::from_secs(20);

/// Standard input and output, joined to this user's server socket (the server is started when
/// none answers). Every byte is passed as it is: the client at the other end of ssh and the server
/// here speak the protocol to each other, Hello included.
pub async fn proxy(mux: bool) -> Result<i32> {
    if mux {
        // A server is there (started now if it was not) before the first channel opens.
        drop(Client::connect().await?);
        let connect = || -> crate::mux::ConnectFut {
            Box::pin(async { UnixStream::connect(paths::socket_path()).await })
        };
        crate::mux::serve(tokio::io::stdin(), tokio::io::stdout(), connect).await?;
        return Ok(0);
    }
    if UnixStream::connect(paths::socket_path()).await.is_err() {
        // Nobody answers: start a server the way any command here would.
        drop(Client::connect().await?);
    }
    // Two threads with blocking reads and writes: a keystroke crosses no runtime or thread pool
    // on its way (tokio's stdin and stdout hand every read to a helper thread).
    let sock = std::os::unix::net::UnixStream::connect(paths::socket_path())
        .with_context(|| format!("cannot connect to {}", paths::socket_path().display()))?;
    let mut to_server = sock.try_clone().context("cannot share the server connection")?;
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        // The client went away (ssh closed): the server sees the connection end.
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    let relay = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Read;
        let mut sock = sock;
        let mut stdout = std::io::stdout().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sock.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            stdout.write_all(&buf[..n])?;
            stdout.flush()?;
        }
    });
    relay
        .await
        .context("relaying from the corral server")?
        .context("relaying from the corral server")?;
    Ok(0)
}

/// What one host said when asked for its agents.
pub struct HostAgents {
    pub host: Host,
    pub answer: Result<(String, Vec<AgentInfo>), String>,
}

/// Ask every configured host for its agents, all at once.
pub async fn list_hosts(hosts: Vec<Host>) -> Vec<HostAgents> {
    let asks: Vec<_> = hosts
        .into_iter()
        .map(|host| {
            tokio::spawn(async move {
                let h = host.clone();
                let ask = async move {
                    let mut c = Client::connect_host(&h).await?;
                    let version = match c.request(Request::Ping).await? {
                        Reply::Pong { version, .. } => version,
                        _ => String::new(),
                    };
                    let Reply::Agents(agents) = c.request(Request::List { repo: None }).await?
                    else {
                        bail!("host '{}': unexpected reply to ls", h.name);
                    };
                    Ok((version, agents))
                };
                let answer = match tokio::time::timeout(HOST_TIMEOUT, ask).await {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err(format!(
                        "host '{}': no answer within {} s",
                        host.name,
                        HOST_TIMEOUT.as_secs()
                    )),
                };
                HostAgents { host, answer }
            })
        })
        .collect();
    let mut out = Vec::new();
    for a in asks {
        if let Ok(h) = a.await {
            out.push(h);
        }
    }
    out
}

/// `corral hosts`.
pub async fn hosts(json: bool) -> Result<i32> {
    let hosts = crate::hosts::all()?;
    if hosts.is_empty() {
        let file = paths::user_config_file();
        eprintln!(
            "no hosts: add one to {} as\n[hosts.box]\nssh = [\"ssh\", \"you@box\"]",
            file.display()
        );
        return Ok(0);
    }
    let listed = list_hosts(hosts).await;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    if json {
        let v: Vec<serde_json::Value> = listed
            .iter()
            .map(|h| match &h.answer {
                Ok((version, agents)) => serde_json::json!({
                    "name": h.host.name, "state": "connected", "version": version,
                    "agents": agents.len(),
                }),
                Err(e) => serde_json::json!({
                    "name": h.host.name, "state": "unreachable", "error": e,
                }),
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &v).context("cannot write JSON")?;
        writeln!(out)?;
    } else {
        for h in &listed {
            match &h.answer {
                Ok((version, agents)) => {
                    let n = agents.len();
                    let s = if n == 1 { "" } else { "s" };
                    writeln!(out, "{}  connected  corral {version}  {n} agent{s}", h.host.name)?;
                }
                Err(e) => {
                    failed = true;
                    writeln!(out, "{}  unreachable  {e}", h.host.name)?;
                }
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
