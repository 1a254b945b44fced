//! Many connections to a host's server over one ssh session (SPEC §12): the dashboard polls the
//! list, makes requests and streams screens all at once, and a login per connection would be
//! seconds each. `corral proxy --mux` on the host opens one connection to its server per channel;
//! here, each channel looks like a socket of its own ([`HostLink::open`]) and carries the same
//! framed protocol, Hello included. The server knows nothing of channels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::hosts::Host;
use crate::proto;

/// One frame on the ssh session: what happens on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuxMsg {
    pub chan: u32,
    pub body: MuxBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MuxBody {
    /// A new connection to the server.
    Open,
    /// Bytes of that connection, as they were written.
    Data(Vec<u8>),
    /// The connection ended (either side).
    Close,
}

/// Bytes per data frame: large enough for a screen update, small enough that one busy channel
/// does not hold up keystrokes on another for long.
const CHUNK: usize = 32 * 1024;

/// The host end: `corral proxy --mux`. Each channel is its own connection to this user's server.
pub async fn serve<R, W>(mut input: R, output: W, connect: impl Fn() -> ConnectFut) -> Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::unbounded_channel::<MuxMsg>();
    let writer = tokio::spawn(write_frames(output, out_rx));
    let mut chans: HashMap<u32, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    loop {
        let msg = match proto::read_frame::<_, MuxMsg>(&mut input).await {
            Ok(m) => m,
            Err(proto::FrameError::Closed) => break,
            Err(e) => return Err(anyhow!("reading the ssh session: {e}")),
        };
        match msg.body {
            MuxBody::Open => {
                let chan = msg.chan;
                let stream = match connect().await {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = out_tx.send(MuxMsg { chan, body: MuxBody::Close });
                        continue;
                    }
                };
                let (mut rd, mut wr) = stream.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                chans.insert(chan, tx);
                // Server → client.
                let out = out_tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        match rd.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let body = MuxBody::Data(buf[..n].to_vec());
                                if out.send(MuxMsg { chan, body }).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = out.send(MuxMsg { chan, body: MuxBody::Close });
                });
                // Client → server, in order.
                tokio::spawn(async move {
                    while let Some(bytes) = rx.recv().await {
                        if wr.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    let _ = wr.shutdown().await;
                });
            }
            MuxBody::Data(bytes) => {
                if let Some(tx) = chans.get(&msg.chan) {
                    let _ = tx.send(bytes);
                }
            }
            MuxBody::Close => {
                chans.remove(&msg.chan);
            }
        }
    }
    drop(chans);
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

pub type ConnectFut = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<tokio::net::UnixStream>> + Send>,
>;

async fn write_frames<W>(mut output: W, mut rx: mpsc::UnboundedReceiver<MuxMsg>)
where
    W: tokio::io::AsyncWrite + Unpin,
{
    while let Some(m) = rx.recv().await {
        if proto::write_frame(&mut output, &m).await.is_err() {
            return;
        }
        // Frames waiting behind this one go out in the same flush.
        while let Ok(m) = rx.try_recv() {
            if proto::write_frame(&mut output, &m).await.is_err() {
                return;
            }
        }
        if output.flush().await.is_err() {
            return;
        }
    }
}

type Chans = Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>>>>;

/// This end of one ssh session to a host: channels are opened on it until it breaks.
pub struct HostLink {
    pub host: Host,
    tx: mpsc::UnboundedSender<MuxMsg>,
    chans: Chans,
    next: AtomicU32,
    /// Ends the ssh process with the link.
    _ssh: crate::client::SshLink,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl HostLink {
    /// Log in to the host and start its proxy in channel mode.
    pub async fn start(host: &Host) -> Result<Arc<HostLink>> {
        let mut argv = host.argv();
        argv.push("--mux".into());
        let (ssh, stdin, mut stdout) = crate::client::spawn_ssh(host, &argv)?;
        let (tx, rx) = mpsc::unbounded_channel::<MuxMsg>();
        tokio::spawn(write_frames(stdin, rx));
        let chans: Chans = Arc::new(Mutex::new(HashMap::new()));
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        let route = chans.clone();
        tokio::spawn(async move {
            while let Ok(m) = proto::read_frame::<_, MuxMsg>(&mut stdout).await {
                let Ok(mut map) = route.lock() else { break };
                match m.body {
                    MuxBody::Data(bytes) => {
                        if let Some(tx) = map.get(&m.chan) {
                            let _ = tx.send(Some(bytes));
                        }
                    }
                    MuxBody::Close => {
                        if let Some(tx) = map.remove(&m.chan) {
                            let _ = tx.send(None);
                        }
                    }
                    MuxBody::Open => {}
                }
            }
            // The session ended: every channel on it ends too.
            if let Ok(mut map) = route.lock() {
                for (_, tx) in map.drain() {
                    let _ = tx.send(None);
                }
            }
            let _ = closed_tx.send(true);
        });
        Ok(Arc::new(HostLink {
            host: host.clone(),
            tx,
            chans,
            next: AtomicU32::new(1),
            _ssh: ssh,
            closed,
        }))
    }

    /// The ssh session has ended: open no more channels on it.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// A new connection to the host's server, Hello done.
    pub async fn open(self: &Arc<Self>) -> Result<crate::client::Client> {
        if self.is_closed() {
            bail!("host '{}': the connection is down", self.host.name);
        }
        let chan = self.next.fetch_add(1, Ordering::Relaxed);
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let (mut trd, mut twr) = tokio::io::split(theirs);
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
        self.chans.lock().map_err(|_| anyhow!("host link poisoned"))?.insert(chan, in_tx);
        self.tx
            .send(MuxMsg { chan, body: MuxBody::Open })
            .map_err(|_| anyhow!("host '{}': the connection is down", self.host.name))?;
        // What the server sends on this channel, into our end.
        tokio::spawn(async move {
            while let Some(Some(bytes)) = in_rx.recv().await {
                if twr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = twr.shutdown().await;
        });
        // What we write on our end, to the server.
        let out = self.tx.clone();
        let chans = self.chans.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match trd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let body = MuxBody::Data(buf[..n].to_vec());
                        if out.send(MuxMsg { chan, body }).is_err() {
                            return;
                        }
                    }
                }
            }
            if let Ok(mut m) = chans.lock() {
                m.remove(&chan);
            }
            let _ = out.send(MuxMsg { chan, body: MuxBody::Close });
        });
        crate::client::Client::over_channel(ours, &self.host.name)
            .await
            .context(format!("host '{}'", self.host.name))
    }
}
