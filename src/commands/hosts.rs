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
    let stream = match UnixStream::connect(paths::socket_path()).await {
        Ok(s) => s,
        Err(_) => {
            // Nobody answers: start a server the way any command here would, then join it.
            drop(Client::connect().await?);
            UnixStream::connect(paths::socket_path())
                .await
                .with_context(|| format!("cannot connect to {}", paths::socket_path().display()))?
        }
    };
    let (mut from_server, mut to_server) = stream.into_split();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let up = async {
        let r = tokio::io::copy(&mut stdin, &mut to_server).await;
        // The client went away (ssh closed): the server sees the connection end.
        use tokio::io::AsyncWriteExt;
        let _ = to_server.shutdown().await;
        r
    };
    let down = tokio::io::copy(&mut from_server, &mut stdout);
    tokio::select! {
        r = down => { r.context("relaying from the corral server")?; }
        r = up => {
            r.context("relaying to the corral server")?;
        }
    }
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
