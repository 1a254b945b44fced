//! The socket side of the server: accept connections, check who is calling, speak the framed
//! protocol, hand requests to the session, and stream screens and lines to attached and following
//! clients. A connection that misbehaves (wrong user, garbage, oversized frames, wrong version) is
//! closed on its own; nothing it sends reaches an agent.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::pane::PaneHandle;
use super::session::{Outcome, SessionMsg};
use super::tty::{FRAME_INTERVAL, KeyReader, KeysEnd, TtySink};
use crate::proto::{self, ClientMsg, FrameError, PROTOCOL_VERSION, Reply, ServerMsg};
use crate::status::Notice;
use crate::term::ScreenCopy;
use crate::term::screen::render_text;

/// The pause between typed text and its Enter: agents read a fast burst as a paste and would take
/// the Enter as a newline inside it.
pub const ENTER_DELAY: Duration = Duration::from_millis(120);
/// How long typing waits for the agent to echo the text before pressing Enter anyway.
const ECHO_WAIT: Duration = Duration::from_secs(2);
/// `tail -f` gathers lines for this long after a change, so a flood costs one read per interval.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(30);

/// Serve one connection until it closes.
pub async fn serve(
    stream: UnixStream,
    session: mpsc::UnboundedSender<SessionMsg>,
    shutdown: watch::Sender<bool>,
) {
    let me = rustix::process::getuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {}
        Ok(cred) => {
            warn!("refused a connection from uid {} (server runs as uid {me})", cred.uid());
            return;
        }
        Err(e) => {
            warn!("refused a connection whose peer could not be identified: {e}");
            return;
        }
    }
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    // Frames are read by their own task so that reading is never cancelled half-way by a select.
    // While the connection is attached, that task hands keystrokes and resizes to the pane itself:
    // a keystroke's way to the program is then one task, not two.
    let (in_tx, mut inbox) = mpsc::channel::<ClientMsg>(64);
    let attached = Attached::default();
    let direct = attached.clone();
    let reader = tokio::spawn(async move {
        loop {
            match proto::read_frame::<_, ClientMsg>(&mut rd).await {
                Ok(msg) => {
                    let Some(msg) = direct.deliver(msg) else { continue };
                    if in_tx.send(msg).await.is_err() {
                        break;
                    }
                }
                Err(FrameError::Closed) => break,
                Err(e) => {
                    // Closed now, in both directions, even while the connection's task is still
                    // busy with an earlier request (its reply then has nowhere to go): the peer
                    // must not wait on a connection the server has given up on.
                    close_now(rd.get_ref());
                    warn!("closing a connection: {e}");
                    break;
                }
            }
        }
    });
    let result = converse(&mut inbox, &mut wr, &session, &shutdown, &attached).await;
    if let Err(e) = result {
        debug!("connection ended: {e}");
    }
    reader.abort();
}

/// Shut the socket down for both sides; the file descriptor itself is closed when both halves
/// are dropped, which may be later.
fn close_now(rd: &OwnedReadHalf) {
    use std::os::fd::AsFd;
    let sock: &UnixStream = rd.as_ref();
    // A duplicate descriptor refers to the same socket, and std can shut that one down.
    match sock.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            let _ = std::os::unix::net::UnixStream::from(fd).shutdown(std::net::Shutdown::Both);
        }
        Err(e) => debug!("cannot shut a connection down at once: {e}"),
    }
}

async fn send(wr: &mut OwnedWriteHalf, msg: &ServerMsg) -> Result<(), FrameError> {
    proto::write_frame(wr, msg).await
}

/// The pane a connection is attached to, shared with the task that reads its frames.
#[derive(Clone, Default)]
struct Attached(std::sync::Arc<std::sync::Mutex<Option<PaneHandle>>>);

impl Attached {
    fn set(&self, pane: Option<PaneHandle>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = pane;
    }

    /// Input and resizes go straight to the attached pane; a detach ends the attachment here, so
    /// nothing typed after it reaches the pane. What is left goes on to the connection's task.
    fn deliver(&self, msg: ClientMsg) -> Option<ClientMsg> {
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(pane) = slot.as_ref() else { return Some(msg) };
        match msg {
            ClientMsg::Input(bytes) => pane.write(bytes),
            ClientMsg::Resize(size) => pane.resize(size),
            ClientMsg::Detach => {
                *slot = None;
                return Some(ClientMsg::Detach);
            }
            other => return Some(other),
        }
        None
    }
}

fn server_hello() -> ServerMsg {
    ServerMsg::Hello {
        version: PROTOCOL_VERSION,
        server: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
    }
}

async fn converse(
    inbox: &mut mpsc::Receiver<ClientMsg>,
    wr: &mut OwnedWriteHalf,
    session: &mpsc::UnboundedSender<SessionMsg>,
    shutdown: &watch::Sender<bool>,
    attached: &Attached,
) -> Result<(), FrameError> {
    match inbox.recv().await {
        Some(ClientMsg::Hello { client, .. }) if client.starts_with(proto::UPGRADE_HELLO) => {
            send(wr, &server_hello()).await?;
            let exe = std::path::PathBuf::from(&client[proto::UPGRADE_HELLO.len()..]);
            let (tx, rx) = oneshot::channel();
            let req = proto::Request::Upgrade { exe };
            if session.send(SessionMsg::Request(Box::new(req), tx)).is_err() {
                return Ok(());
            }
            // Answered only when it failed: on success this process is another program now.
            if let Ok(Outcome::Reply(r)) = rx.await {
                send(wr, &ServerMsg::Reply(r)).await?;
            }
            return Ok(());
        }
        Some(ClientMsg::Hello { version, .. }) if version == PROTOCOL_VERSION => {
            send(wr, &server_hello()).await?;
        }
        Some(ClientMsg::Hello { version, .. }) => {
            send(wr, &server_hello()).await?;
            let msg = format!(
                "this corral speaks protocol {version} but the running server speaks {PROTOCOL_VERSION}; run `corral kill-server` (agents stop) and try again"
            );
            send(wr, &ServerMsg::Reply(Reply::Error(msg))).await?;
            return Ok(());
        }
        Some(_) => {
            warn!("closing a connection that did not start with Hello");
            return Ok(());
        }
        None => return Ok(()),
    }
    while let Some(msg) = inbox.recv().await {
        let req = match msg {
            ClientMsg::Request(req) => req,
            ClientMsg::Hello { .. } => {
                warn!("closing a connection that sent Hello twice");
                return Ok(());
            }
            // Stray attach input after a detach: nothing to deliver it to.
            ClientMsg::Input(_) | ClientMsg::Resize(_) | ClientMsg::Detach => continue,
        };
        let (tty, keys) = match &req {
            proto::Request::Attach { tty, keys, .. } => (tty.clone(), keys.clone()),
            _ => (None, None),
        };
        let (tx, rx) = oneshot::channel();
        if session.send(SessionMsg::Request(Box::new(req), tx)).is_err() {
            return Ok(());
        }
        let Ok(outcome) = rx.await else {
            send(wr, &ServerMsg::Reply(Reply::Error("the server is shutting down".into()))).await?;
            return Ok(());
        };
        match outcome {
            Outcome::Reply(r) => send(wr, &ServerMsg::Reply(r)).await?,
            Outcome::Send(pane, text, enter) => {
                type_text(&pane, &text, enter).await;
                send(wr, &ServerMsg::Reply(Reply::Ok)).await?;
            }
            Outcome::Attach(pane, notices) => {
                // The client's terminal, to draw on it and perhaps read its keys: opened before
                // the reply, which tells the client whether to read its keys itself.
                let sink = tty.as_deref().and_then(|path| {
                    TtySink::open(path)
                        .map_err(|e| {
                            debug!("cannot draw on {}, sending frames: {e}", path.display())
                        })
                        .ok()
                });
                let (ended_tx, ended) = mpsc::unbounded_channel();
                let reader = match (&sink, tty.as_deref(), keys) {
                    (Some(_), Some(path), Some(keys)) => {
                        KeyReader::start(path, pane.clone(), keys, ended_tx)
                            .map_err(|e| debug!("cannot read keys from {}: {e}", path.display()))
                            .ok()
                    }
                    _ => None,
                };
                // Before the reply: the client may type as soon as it reads it.
                attached.set(Some(pane.clone()));
                let reply =
                    if reader.is_some() { Reply::AttachedReadingKeys } else { Reply::Attached };
                send(wr, &ServerMsg::Reply(reply)).await?;
                let goes_on = match sink {
                    Some(sink) => {
                        let keys = KeysFromTty { _reader: reader, ended };
                        attach_tty(inbox, wr, &pane, notices, Arc::new(sink), keys).await
                    }
                    None => attach_frames(inbox, wr, &pane, notices).await,
                };
                attached.set(None);
                if !goes_on? {
                    return Ok(());
                }
            }
            Outcome::Follow(pane, lines, ansi, from) => {
                if !follow(inbox, wr, &pane, lines, ansi, from).await? {
                    return Ok(());
                }
            }
            Outcome::Shutdown => {
                send(wr, &ServerMsg::Reply(Reply::Ok)).await?;
                info!("kill-server requested");
                let _ = shutdown.send(true);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Type `text` into the pane as a user would paste it (bracketed when the program asked for it),
/// then Enter as its own write a moment later.
pub async fn type_text(pane: &PaneHandle, text: &str, enter: bool) {
    let _typing = pane.typing.clone().lock_owned().await;
    type_locked(pane, text, enter).await;
}

/// [`type_text`] for a caller that already holds the pane's typing lock.
pub async fn type_locked(pane: &PaneHandle, text: &str, enter: bool) {
    let modes = pane.modes().await.unwrap_or_default();
    let body = text.replace("\r\n", "\n").replace('\n', "\r");
    let mut bytes = Vec::with_capacity(body.len() + 12);
    if modes.bracketed_paste && (text.contains('\n') || !enter) {
        bytes.extend_from_slice(b"\x1b[200~");
        bytes.extend_from_slice(body.as_bytes());
        bytes.extend_from_slice(b"\x1b[201~");
    } else {
        bytes.extend_from_slice(body.as_bytes());
    }
    let mut state = pane.subscribe();
    state.borrow_and_update();
    if !bytes.is_empty() {
        pane.write(bytes);
    }
    if enter {
        if !text.is_empty() {
            // Enter must reach the agent in a read of its own. A fixed pause is not enough on a
            // loaded machine (the agent may not run before both writes are queued), so first wait
            // for the agent to show that it read the text (its screen changes), then pause.
            let _ = tokio::time::timeout(ECHO_WAIT, state.changed()).await;
            tokio::time::sleep(ENTER_DELAY).await;
        }
        pane.write(b"\r".to_vec());
    }
}

/// The keys the server reads from an attached terminal itself: the reader (its thread stops when
/// this is dropped) and how it ended.
struct KeysFromTty {
    _reader: Option<KeyReader>,
    ended: mpsc::UnboundedReceiver<KeysEnd>,
}

/// What every attached client's task does with its messages; true: detached.
fn attach_input(msg: Option<ClientMsg>, pane: &PaneHandle) -> Option<bool> {
    match msg {
        // Delivered by the reader task while attached; these only come in the moment around
        // attaching and detaching.
        Some(ClientMsg::Input(bytes)) => pane.write(bytes),
        Some(ClientMsg::Resize(size)) => pane.resize(size),
        Some(ClientMsg::Detach) => return Some(true),
        Some(_) | None => return Some(false),
    }
    None
}

/// Drawing on the client's terminal: the pane's reader thread draws right after output; this
/// task draws what it left for later, rings bells, shows notices and finishes slow writes.
async fn attach_tty(
    inbox: &mut mpsc::Receiver<ClientMsg>,
    wr: &mut OwnedWriteHalf,
    pane: &PaneHandle,
    mut notices: broadcast::Receiver<Notice>,
    sink: Arc<TtySink>,
    mut keys: KeysFromTty,
) -> Result<bool, FrameError> {
    pane.add_sink(sink.clone());
    let result = async {
        let mut state = pane.subscribe();
        let mut notices_open = true;
        let mut bells = state.borrow().bells;
        loop {
            pane.draw(&sink);
            sink.finish_writes().await;
            let st = state.borrow_and_update().clone();
            if st.bells != bells {
                bells = st.bells;
                sink.queue(&mut sink.lock(), b"\x07");
            }
            if sink.lock().failed {
                // The terminal went away (a closed ssh link): so did the client.
                return Ok(false);
            }
            if st.exited {
                pane.remove_sink(&sink);
                send(wr, &ServerMsg::Exited(st.exit_code)).await?;
                return Ok(true);
            }
            tokio::select! {
                biased;
                msg = inbox.recv() => match attach_input(msg, pane) {
                    Some(true) => {
                        // Nothing is drawn after this: the client puts its terminal back on it.
                        pane.remove_sink(&sink);
                        send(wr, &ServerMsg::Detached).await?;
                        return Ok(true);
                    }
                    Some(false) => return Ok(false),
                    None => {}
                },
                Some(end) = keys.ended.recv() => match end {
                    KeysEnd::Detach => {
                        pane.remove_sink(&sink);
                        send(wr, &ServerMsg::Detached).await?;
                        return Ok(true);
                    }
                    KeysEnd::Gone => return Ok(false),
                },
                notice = notices.recv(), if notices_open => match notice {
                    Ok(n) => sink.queue(&mut sink.lock(), &n.terminal_bytes()),
                    // Missed some while busy: the latest state is on the badges anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => notices_open = false,
                },
                // A frame the reader thread left for later (drawn when its slot comes), a
                // bell, or the exit. Other changes the reader thread draws itself: this task
                // does not wake for them.
                _ = sink.wake.notified() => {
                    let due = sink.due(&sink.lock());
                    if let Some(at) = due {
                        tokio::time::sleep_until(at.into()).await;
                    }
                }
            }
        }
    }
    .await;
    pane.remove_sink(&sink);
    result
}

/// Sending screens as frames (the dashboard, or a terminal the server cannot open).
async fn attach_frames(
    inbox: &mut mpsc::Receiver<ClientMsg>,
    wr: &mut OwnedWriteHalf,
    pane: &PaneHandle,
    mut notices: broadcast::Receiver<Notice>,
) -> Result<bool, FrameError> {
    let mut state = pane.subscribe();
    let mut notices_open = true;
    let mut copy = ScreenCopy::default();
    let mut bells = state.borrow().bells;
    // Mark the current state as unseen so the first screen is sent at once.
    state.mark_changed();
    let mut next_frame = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            msg = inbox.recv() => match attach_input(msg, pane) {
                Some(true) => {
                    send(wr, &ServerMsg::Detached).await?;
                    return Ok(true);
                }
                Some(false) => return Ok(false),
                None => {}
            },
            notice = notices.recv(), if notices_open => match notice {
                Ok(n) => send(wr, &ServerMsg::Notice(n)).await?,
                // Missed some while busy: the latest state is on the badges anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => notices_open = false,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return Ok(false);
                }
                // Keystrokes after a quiet spell draw at once; a flood is coalesced.
                if tokio::time::Instant::now() < next_frame {
                    tokio::time::sleep_until(next_frame).await;
                }
                next_frame = tokio::time::Instant::now() + FRAME_INTERVAL;
                let st = state.borrow_and_update().clone();
                if let Some(update) = pane.update_screen(&mut copy) {
                    send(wr, &ServerMsg::Screen(update)).await?;
                }
                if st.bells != bells {
                    bells = st.bells;
                    send(wr, &ServerMsg::Bell).await?;
                }
                if st.exited {
                    send(wr, &ServerMsg::Exited(st.exit_code)).await?;
                    return Ok(true);
                }
            }
        }
    }
}

/// `tail -f`: the last `lines` settled lines, then each new settled line once, as it settles.
async fn follow(
    inbox: &mut mpsc::Receiver<ClientMsg>,
    wr: &mut OwnedWriteHalf,
    pane: &PaneHandle,
    lines: u32,
    ansi: bool,
    from: Option<u64>,
) -> Result<bool, FrameError> {
    let mut state = pane.subscribe();
    state.borrow_and_update();
    let first = pane.settled(from.unwrap_or(0)).await.unwrap_or_default();
    let mut next = first.last().map(|l| l.number + 1).unwrap_or(from.unwrap_or(0));
    let skip = if from.is_some() { 0 } else { first.len().saturating_sub(lines as usize) };
    let initial: Vec<_> = first.into_iter().skip(skip).map(|l| l.line).collect();
    send(wr, &ServerMsg::Reply(Reply::Text(render_text(&initial, ansi)))).await?;
    send(wr, &ServerMsg::Lines(String::new(), next)).await?;
    loop {
        let exited = state.borrow().exited;
        if exited {
            // The process is gone: what is left on screen is final too.
            let rest = pane.settled(next).await.unwrap_or_default();
            let mut out: Vec<_> = rest.into_iter().map(|l| l.line).collect();
            let all = pane.lines(0).await.unwrap_or_default();
            let screen = pane.screen().await;
            if let Some(screen) = screen {
                let cursor_row = screen.cursor.0 as usize;
                // Lines from the cursor row down were not settled; print those with text.
                let tail: Vec<_> = all
                    .iter()
                    .skip(cursor_row.min(all.len()))
                    .filter(|l| !l.text().trim().is_empty())
                    .cloned()
                    .collect();
                out.extend(tail);
            }
            if !out.is_empty() {
                send(wr, &ServerMsg::Text(render_text(&out, ansi))).await?;
            }
            let code = state.borrow().exit_code;
            send(wr, &ServerMsg::Exited(code)).await?;
            return Ok(true);
        }
        tokio::select! {
            biased;
            msg = inbox.recv() => match msg {
                Some(ClientMsg::Detach) => return Ok(true),
                Some(_) => continue,
                None => return Ok(false),
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return Ok(false);
                }
                tokio::time::sleep(FOLLOW_INTERVAL).await;
                state.borrow_and_update();
                let new = pane.settled(next).await.unwrap_or_default();
                if let Some(l) = new.last() {
                    next = l.number + 1;
                    // Rendered here: text is a tenth of the size of the cells it came from.
                    let rows: Vec<_> = new.into_iter().map(|l| l.line).collect();
                    send(wr, &ServerMsg::Lines(render_text(&rows, ansi), next)).await?;
                }
            }
        }
    }
}
