//! The dashboard's loop and its connections to the server. One `tokio::select!`, biased to the
//! user's input, over terminal events, messages from the server tasks, a frame timer and the
//! state's own deadline. Frames are drawn only when the state is dirty, at most 60 a second,
//! each wrapped in synchronized output (mode 2026) so the terminal never shows half a frame.
//!
//! Server work runs in tasks that only send messages back: a poller for the agent list, one
//! task per attached agent (its screen diffs in, keys and resizes out), one task per request.
//! Their channel to the loop is bounded: when the loop falls behind, the tasks stop reading, the
//! server's sends wait, and the server coalesces frames (latest state wins, nothing queues up).

use std::collections::HashMap;
use std::io::{BufWriter, IsTerminal, Stdout, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture, Event, KeyboardEnhancementFlags,
    PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, error, info};

use super::keymap::Keymap;
use super::state::{AgentKey, AppState, Effect, Msg, Settings};
use super::{ui, update};
use crate::client::{self, Client};
use crate::mux::HostLink;
use crate::proto::{self, ClientMsg, Reply, Request, ServerMsg, Target};
use crate::term::{Size, TermColors};

/// At most 60 frames a second.
const FRAME: Duration = Duration::from_micros(16_667);
/// How often the agent list is asked for (statuses change on their own).
const LIST_EVERY: Duration = Duration::from_millis(500);
/// A host that cannot be reached is tried again after this, then twice as long each time.
const HOST_RETRY_MIN: Duration = Duration::from_millis(500);
const HOST_RETRY_MAX: Duration = Duration::from_secs(30);
/// How often the config files are checked for changes (a stat of each).
const CONFIG_EVERY: Duration = Duration::from_secs(1);
/// Messages handled between two chances to draw, so a flood of diffs cannot starve the screen.
const BATCH: usize = 256;

type Out = CrosstermBackend<BufWriter<Stdout>>;

/// Put the user's terminal back: modes we set off, main screen, cursor shown, cooked mode.
/// Safe to call more than once and from the panic hook.
fn restore_terminal() {
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        PopKeyboardEnhancementFlags,
        DisableFocusChange,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
    let _ = crossterm::terminal::disable_raw_mode();
}

/// Restores the terminal however the dashboard ends.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard> {
        crossterm::terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let guard = TerminalGuard;
        let mut out = std::io::stdout();
        // Kitty keyboard flags are pushed without asking first: terminals that do not know them
        // ignore the sequence, and asking would stall start-up on terminals that never answer.
        // With them, shift-enter and the like arrive distinguishable from their plain keys.
        crossterm::execute!(
            out,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste,
            EnableFocusChange,
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES),
            crossterm::cursor::Hide,
            // Not ratatui's clear, which asks the terminal where the cursor is and stalls on
            // terminals that never answer.
            crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
        )
        .context("cannot set up the terminal")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Open the dashboard; returns the exit code once the user quits.
pub async fn run(repo_arg: Option<PathBuf>) -> Result<i32> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(
            "the dashboard needs a terminal; `corral ls` and `corral tail NAME` work from scripts"
        );
    }
    // Outside a repository the dashboard still shows every agent; only `new` needs one.
    let repo = match &repo_arg {
        Some(_) => Some(client::repo_root(repo_arg.as_ref())?),
        None => client::repo_root(None).ok(),
    };
    let env = client::env_vec();
    let (settings, config_error) = read_settings(repo.as_deref(), &env);
    // Connecting first (and starting the server if need be) reports a server that cannot start
    // on a plain terminal rather than inside the dashboard.
    let first = Client::connect().await?;
    let _log = crate::logging::init_file("dashboard")?;
    info!("dashboard started (server pid {})", first.server_pid);

    let (cols, rows) = crossterm::terminal::size().context("cannot read the terminal size")?;
    let mut st = AppState::new(settings.keymap.clone(), repo, Rect::new(0, 0, cols, rows));
    update::update(&mut st, Msg::Config(Ok(settings)));
    if let Some(e) = config_error {
        update::update(&mut st, Msg::Config(Err(e)));
    }
    st.env = env;

    let guard = TerminalGuard::enter()?;
    // Before anything else reads the terminal. Keys typed meanwhile are lost: the dashboard has
    // nothing to give them to yet.
    let (colors, _typed) = crate::commands::ask_terminal_colors();
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The terminal first: a panic message printed in raw mode on the alternate screen is
        // lost, and the user's shell would be left unusable.
        restore_terminal();
        error!("dashboard panicked: {info}");
        prev_hook(info);
    }));
    let backend = CrosstermBackend::new(BufWriter::with_capacity(1 << 16, std::io::stdout()));
    // A fixed viewport, resized by `draw`: ratatui's own full-screen viewport asks crossterm for
    // the size before every frame, which opens /dev/tty each time.
    let viewport = ratatui::Viewport::Fixed(st.area);
    let mut terminal = Terminal::with_options(backend, ratatui::TerminalOptions { viewport })
        .context("cannot start drawing")?;

    let result = event_loop(&mut st, &mut terminal, first, colors).await;
    drop(terminal);
    drop(guard);
    result.map(|()| 0)
}

/// Terminal events, read on their own thread: a blocking read cannot be cancelled, and the thread
/// simply ends with the process.
fn spawn_input(tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        loop {
            let ev = match crossterm::event::read() {
                Ok(ev) => ev,
                Err(e) => {
                    error!("reading the terminal: {e}");
                    break;
                }
            };
            let now = Instant::now();
            let msg = match ev {
                Event::Key(k) => Msg::Key(k, now),
                Event::Mouse(m) => Msg::Mouse(m),
                Event::Paste(p) => Msg::Paste(p),
                Event::FocusGained => Msg::Focus(true),
                Event::FocusLost => Msg::Focus(false),
                Event::Resize(c, r) => Msg::Resize(c, r, now),
            };
            if tx.blocking_send(msg).is_err() {
                break;
            }
        }
    });
}

/// Keys and resizes for one attached agent.
enum AttachCmd {
    Input(Vec<u8>),
    Resize(Size),
}

struct Tasks {
    msgs: mpsc::Sender<Msg>,
    refresh: Arc<Notify>,
    /// Dropping a sender ends that attachment (the task says Detach and closes).
    attached: HashMap<u64, mpsc::UnboundedSender<AttachCmd>>,
    /// This terminal's default colours, told to the server with each attach.
    colors: Option<TermColors>,
    /// The ssh session to each host, shared by its list, requests and screens.
    links: Links,
}

type Links = Arc<Mutex<HashMap<String, Arc<HostLink>>>>;

impl Tasks {
    fn run(&mut self, effects: Vec<Effect>) {
        for fx in effects {
            match fx {
                Effect::Request(id, mut req) => {
                    // Only the loop knows the terminal's colours; a new agent starts with them.
                    if let Request::New(new) = &mut req {
                        new.colors = self.colors;
                    }
                    tokio::spawn(request_task(id, req, self.msgs.clone(), self.links.clone()));
                }
                Effect::Attach { id, target } => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.attached.insert(id, tx);
                    let links = self.links.clone();
                    let colors = self.colors;
                    tokio::spawn(attach_task(id, target, colors, self.msgs.clone(), rx, links));
                }
                Effect::Detach { id } => {
                    self.attached.remove(&id);
                }
                Effect::Input { id, bytes } => {
                    if let Some(tx) = self.attached.get(&id) {
                        let _ = tx.send(AttachCmd::Input(bytes));
                    }
                }
                Effect::Resize { id, size } => {
                    if let Some(tx) = self.attached.get(&id) {
                        let _ = tx.send(AttachCmd::Resize(size));
                    }
                }
                Effect::Diff { id, worktree, base } => {
                    let msgs = self.msgs.clone();
                    tokio::spawn(async move {
                        // Reading the repository can take a while: never on the UI loop.
                        let made = tokio::task::spawn_blocking(move || {
                            crate::git::agent_patch(&worktree, &base, false, false, 80)
                        })
                        .await;
                        let result = match made {
                            Ok(Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(e) => Err(format!("the diff was interrupted: {e}")),
                        };
                        let _ = msgs.send(Msg::Diff(id, result)).await;
                    });
                }
                Effect::ReadGate { id, path } => {
                    let msgs = self.msgs.clone();
                    tokio::spawn(async move {
                        let read =
                            tokio::task::spawn_blocking(move || crate::queue::read_log_tail(&path))
                                .await;
                        let result = match read {
                            Ok(r) => r,
                            Err(e) => {
                                Err(format!("reading the gate's output was interrupted: {e}"))
                            }
                        };
                        let _ = msgs.send(Msg::Gate(id, result)).await;
                    });
                }
                Effect::RefreshList => self.refresh.notify_one(),
                Effect::Upgrade(path) => {
                    let msgs = self.msgs.clone();
                    tokio::spawn(async move {
                        let refused = match Client::ask_upgrade(&path).await {
                            Ok(r) => r,
                            Err(e) => Some(format!("{e:#}")),
                        };
                        let _ = msgs.send(Msg::Upgraded(refused)).await;
                    });
                }
                Effect::Bell => {
                    // Between frames the drawing buffer is empty (every frame ends flushed), so
                    // the bell cannot land inside a frame.
                    let mut out = std::io::stdout();
                    let _ = out.write_all(b"\x07");
                    let _ = out.flush();
                }
                Effect::Quit => {}
            }
        }
    }
}

fn draw(
    terminal: &mut Terminal<Out>,
    st: &mut AppState,
    tasks: &mut Tasks,
    direct: &mut Direct,
) -> Result<()> {
    // A resize whose event has not arrived yet is taken in now, so the layout is computed for
    // the size actually drawn. One ioctl on standard output (crossterm's size() opens /dev/tty).
    let size = match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(w) => Rect::new(0, 0, w.ws_col, w.ws_row),
        Err(_) => {
            let s = terminal.size().context("cannot read the terminal size")?;
            Rect::new(0, 0, s.width, s.height)
        }
    };
    if size != st.area {
        debug!("terminal size {}x{} found at draw time", size.width, size.height);
        tasks.run(update::update(st, Msg::Resize(size.width, size.height, Instant::now())));
    }
    if terminal.get_frame().area() != st.area {
        terminal.resize(st.area).context("cannot resize the frame")?;
        // The terminal was cleared: the screens painted straight onto it too.
        direct.panes.clear();
    }
    draw_frame(terminal, st)?;
    st.dirty = false;
    // A frame leaves the directly painted panes alone: a pane that starts being painted so (or
    // on another spot) is painted whole.
    let now = ui::pane::direct_panes(st);
    for d in now.iter().filter(|d| !direct.panes.contains(d)) {
        let mark = direct.marks.entry(d.key.clone()).or_default();
        *mark = None;
        paint_direct(terminal.backend_mut(), st, d, None, mark)?;
    }
    direct.marks.retain(|k, _| now.iter().any(|d| &d.key == k));
    direct.panes = now;
    Ok(())
}

/// The panes painted straight onto the terminal as the last frame left them, and where each
/// one's cursor mark was painted.
#[derive(Default)]
struct Direct {
    panes: Vec<ui::pane::DirectPane>,
    marks: HashMap<AgentKey, Option<(u16, u16)>>,
}

/// Apply one message to the state. A change of a screen painted straight onto the terminal (see
/// [`ui::pane::direct_panes`]) is painted now, its changed rows only, and needs no frame.
fn apply(
    terminal: &mut Terminal<Out>,
    st: &mut AppState,
    tasks: &mut Tasks,
    direct: &mut Direct,
    msg: Msg,
) -> Result<()> {
    let screen = match &msg {
        Msg::Screen(id, u) if !direct.panes.is_empty() => update::attachment_key(st, *id)
            .and_then(|key| direct.panes.iter().find(|d| d.key == key).cloned())
            .map(|d| (d, u.full, u.rows.iter().map(|(r, _)| *r).collect::<Vec<u16>>())),
        _ => None,
    };
    let was_dirty = st.dirty;
    tasks.run(update::update(st, msg));
    if let Some((d, full, rows)) = screen
        && ui::pane::direct_panes(st) == direct.panes
    {
        let mark = direct.marks.entry(d.key.clone()).or_default();
        paint_direct(terminal.backend_mut(), st, &d, (!full).then_some(&rows), mark)?;
        st.dirty = was_dirty;
    }
    Ok(())
}

/// Paint `rows` of an agent's screen (all of them with None) in its area, in one synchronized
/// update, as the server paints an attached terminal: with the agent's cursor as the terminal's
/// (focus mode) or as a reversed cell (`mark`: where it was painted last, moved to where it is).
pub fn paint_direct<W: Write>(
    out: &mut W,
    st: &AppState,
    d: &ui::pane::DirectPane,
    rows: Option<&[u16]>,
    mark: &mut Option<(u16, u16)>,
) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let Some(s) = st.panes.get(&d.key).and_then(|p| p.screen.as_ref()) else { return Ok(()) };
    let area = d.area;
    let mut todo: Vec<u16> = match rows {
        Some(r) => r.to_vec(),
        None => (0..area.height).collect(),
    };
    let cursor = (s.modes.cursor_visible && s.cursor.0 < area.height && s.cursor.1 < area.width)
        .then_some(s.cursor);
    if d.mark_cursor {
        // The old mark is painted over by its row; the new one goes on its row.
        todo.extend(mark.map(|m| m.0));
        todo.extend(cursor.map(|c| c.0));
        todo.sort_unstable();
        todo.dedup();
    }
    let width = usize::from(area.width);
    let mut bytes = String::with_capacity(512);
    bytes.push_str("\x1b[?2026h");
    let mut text = String::new();
    for &r in todo.iter().filter(|r| **r < area.height) {
        // Writing to a String cannot fail.
        let _ = write!(bytes, "\x1b[{};{}H", u32::from(area.y + r) + 1, u32::from(area.x) + 1);
        text.clear();
        let col = match s.lines.get(usize::from(r)) {
            Some(line) => crate::term::screen::paint_row(line, width, &mut text),
            None => {
                text.push_str("\x1b[0m\x1b[K");
                0
            }
        };
        // The row's rest is erased within the area (ECH), not to the terminal's edge: a pane
        // of the grid has others to its right.
        if col < width && text.ends_with("\x1b[K") {
            text.truncate(text.len() - 3);
            let _ = write!(text, "\x1b[{}X", width - col);
        }
        bytes.push_str(&text);
    }
    if d.mark_cursor {
        *mark = None;
        if let Some((r, c)) = cursor {
            let line = s.lines.get(usize::from(r));
            let cell = |i: usize| line.and_then(|l| l.cells.get(i)).cloned().unwrap_or_default();
            let mut cells = vec![cell(usize::from(c))];
            cells[0].attrs ^= crate::term::screen::attr::INVERSE;
            let wide = cells[0].attrs & crate::term::screen::attr::WIDE != 0;
            if wide && usize::from(c) + 1 < width {
                cells.push(cell(usize::from(c) + 1));
            }
            let n = cells.len();
            let _ =
                write!(bytes, "\x1b[{};{}H", u32::from(area.y + r) + 1, u32::from(area.x + c) + 1);
            text.clear();
            crate::term::screen::paint_row(
                &crate::term::Line { cells, wrapped: false },
                n,
                &mut text,
            );
            bytes.push_str(&text);
            *mark = Some((r, c));
        }
        bytes.push_str("\x1b[0m\x1b[?25l");
    } else {
        bytes.push_str("\x1b[0m");
        match ui::pane::focus_cursor(st, area) {
            Some(p) => {
                let _ =
                    write!(bytes, "\x1b[{};{}H\x1b[?25h", u32::from(p.y) + 1, u32::from(p.x) + 1);
            }
            None => bytes.push_str("\x1b[?25l"),
        }
    }
    bytes.push_str("\x1b[?2026l");
    out.write_all(bytes.as_bytes())?;
    out.flush()
}

/// One frame: render the state, write what changed, all inside one synchronized update so the
/// terminal shows it at once. Public for the frame benchmark.
pub fn draw_frame<W: Write>(
    terminal: &mut Terminal<CrosstermBackend<W>>,
    st: &AppState,
) -> std::io::Result<()> {
    crossterm::queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(|f| {
        // A frame of another size than the state's would be laid out wrong; the resize message
        // is on its way and the next frame draws.
        if f.area() == st.area {
            ui::render(st, f);
        }
    })?;
    crossterm::queue!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    terminal.backend_mut().flush()
}

async fn event_loop(
    st: &mut AppState,
    terminal: &mut Terminal<Out>,
    first: Client,
    colors: Option<TermColors>,
) -> Result<()> {
    let (term_tx, mut term_rx) = mpsc::channel::<Msg>(256);
    spawn_input(term_tx);
    let (msg_tx, mut server_rx) = mpsc::channel::<Msg>(1024);
    let refresh = Arc::new(Notify::new());
    // A server stopped while the dashboard is open (`kill-server` before an upgrade) is not
    // brought back by it: the dashboard says so instead.
    tokio::spawn(list_task(first.without_starting(), msg_tx.clone(), refresh.clone()));
    let links: Links = Arc::new(Mutex::new(HashMap::new()));
    match crate::hosts::all() {
        Ok(hosts) => {
            for h in hosts {
                tokio::spawn(host_task(h, msg_tx.clone(), refresh.clone(), links.clone()));
            }
        }
        Err(e) => error!("hosts: {e:#}"),
    }
    tokio::spawn(config_task(st.repo.clone(), st.env.clone(), msg_tx.clone()));
    let mut tasks = Tasks { msgs: msg_tx, refresh, attached: HashMap::new(), colors, links };
    // Being told to stop (kill, a closing terminal) ends the dashboard like `q`, so the terminal
    // is restored; the agents are the server's and keep running.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term_sig = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut hup_sig = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
    let mut int_sig = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    let mut next_frame = Instant::now();
    // The screens painted straight onto the terminal.
    let mut direct = Direct::default();
    loop {
        let now = Instant::now();
        if st.dirty && now >= next_frame {
            draw(terminal, st, &mut tasks, &mut direct)?;
            next_frame = now + FRAME;
        }
        let frame_at = st.dirty.then(|| tokio::time::Instant::from_std(next_frame));
        let tick_at = st.next_deadline().map(tokio::time::Instant::from_std);
        let msg = tokio::select! {
            biased;
            m = term_rx.recv() => match m {
                Some(m) => m,
                // The terminal is gone: nothing left to show.
                None => return Ok(()),
            },
            m = server_rx.recv() => match m {
                Some(m) => m,
                None => continue,
            },
            _ = sleep_until(frame_at), if frame_at.is_some() => continue,
            _ = sleep_until(tick_at), if tick_at.is_some() => Msg::Tick(Instant::now()),
            _ = term_sig.recv() => return Ok(()),
            _ = hup_sig.recv() => return Ok(()),
            _ = int_sig.recv() => return Ok(()),
        };
        apply(terminal, st, &mut tasks, &mut direct, msg)?;
        // Take what else is already waiting before drawing, input first.
        for _ in 0..BATCH {
            let next = match term_rx.try_recv() {
                Ok(m) => m,
                Err(_) => match server_rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            apply(terminal, st, &mut tasks, &mut direct, next)?;
            if st.quit {
                break;
            }
        }
        if st.quit {
            info!("dashboard quit; agents keep running");
            return Ok(());
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Every how many list polls the dashboard looks for a newer corral binary on disk.
const UPGRADE_CHECK_EVERY: u32 = 10;

/// Ask for the agent list every [`LIST_EVERY`], or at once when poked; reconnect when the
/// connection breaks.
async fn list_task(first: Client, msgs: mpsc::Sender<Msg>, refresh: Arc<Notify>) {
    let mut client = Some(first);
    let mut polls: u32 = 0;
    loop {
        if client.is_none() {
            client = Client::connect_existing().await.ok().flatten();
        }
        // Now and then (it reads the file system), whether a newer binary is on disk.
        if polls.is_multiple_of(UPGRADE_CHECK_EVERY)
            && let Some(c) = &client
        {
            let newer = crate::server::handover::newer_binary(c.server_pid);
            if msgs.send(Msg::Upgradable(newer)).await.is_err() {
                return;
            }
        }
        polls = polls.wrapping_add(1);
        let msg = match client.as_mut() {
            Some(c) => match c.request(Request::List { repo: None }).await {
                Ok(Reply::Agents(agents)) => Msg::Agents(Ok(agents)),
                Ok(other) => Msg::Agents(Err(format!("unexpected answer to list: {other:?}"))),
                Err(e) => {
                    client = None;
                    Msg::Agents(Err(format!("{e:#}")))
                }
            },
            None => Msg::Agents(Err(
                "no corral server is answering (was it killed?); quit and run corral again to start one".into(),
            )),
        };
        if msgs.send(msg).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(LIST_EVERY) => {}
            _ = refresh.notified() => {}
        }
    }
}

/// What the dashboard takes from the config files; when they are broken, from the layers that
/// are not (see [`crate::config::load_or_fallback`]), with the error to show.
fn read_settings(
    repo: Option<&std::path::Path>,
    env: &[(String, String)],
) -> (Settings, Option<String>) {
    let (loaded, error) = crate::config::load_or_fallback(&crate::paths::user_config_file(), repo);
    let config = loaded.config;
    let path_var = env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
    let default_profile =
        config.profile(None, path_var).map(|(n, _)| n).unwrap_or_else(|_| "shell".into());
    let profiles = config.agents.keys().cloned().collect();
    let mut error = error.map(|e| e.to_string());
    let keymap = match Keymap::from_config(&config.keys, &config.terminal.detach_key) {
        Ok(k) => k,
        Err(e) => {
            error.get_or_insert(e);
            Keymap::defaults()
        }
    };
    (Settings { keymap, profiles, default_profile }, error)
}

/// Read the config files again whenever one changes: fixed, the dashboard takes the new
/// settings; broken, it keeps the ones it has and says why.
async fn config_task(repo: Option<PathBuf>, env: Vec<(String, String)>, msgs: mpsc::Sender<Msg>) {
    let user = crate::paths::user_config_file();
    let mut seen = crate::config::file_stamps(&user, repo.as_deref());
    loop {
        tokio::time::sleep(CONFIG_EVERY).await;
        let now = crate::config::file_stamps(&user, repo.as_deref());
        if now == seen {
            continue;
        }
        seen = now;
        let (repo, env) = (repo.clone(), env.clone());
        let Ok((settings, error)) =
            tokio::task::spawn_blocking(move || read_settings(repo.as_deref(), &env)).await
        else {
            continue;
        };
        let msg = match error {
            None => Msg::Config(Ok(settings)),
            Some(e) => Msg::Config(Err(e)),
        };
        if msgs.send(msg).await.is_err() {
            return;
        }
    }
}

async fn request_task(id: u64, mut req: Request, msgs: mpsc::Sender<Msg>, links: Links) {
    let result = async {
        let mut c = connect_for(&mut req, &links).await?;
        c.request(req).await
    }
    .await
    .map_err(|e| format!("{e:#}"));
    let _ = msgs.send(Msg::Reply(id, result)).await;
}

/// A connection to the server the request is for: this machine's, or, for a repository named
/// `HOST:/path`, a new channel on that host's ssh session (the request then names the path as
/// the host sees it).
async fn connect_for(req: &mut Request, links: &Links) -> Result<Client> {
    let host = req.repo_mut().and_then(|repo| {
        let (host, path) = crate::hosts::split(repo)?;
        *repo = path;
        Some(host)
    });
    match host {
        None => Client::connect_existing().await?.ok_or_else(|| anyhow!(super::update::NO_SERVER)),
        Some(h) => {
            let link = links.lock().ok().and_then(|m| m.get(&h).cloned());
            match link {
                Some(l) if !l.is_closed() => l.open().await,
                _ => Err(anyhow!("host '{h}' is disconnected; corral is trying to reach it again")),
            }
        }
    }
}

/// Keep an ssh session to `host` and list its agents every [`LIST_EVERY`]; when it breaks, say
/// so and log in again, waiting longer after each failure (at most [`HOST_RETRY_MAX`]).
async fn host_task(
    host: crate::hosts::Host,
    msgs: mpsc::Sender<Msg>,
    refresh: Arc<Notify>,
    links: Links,
) {
    let mut wait = HOST_RETRY_MIN;
    loop {
        let linked = async {
            let link = HostLink::start(&host).await?;
            let c = link.open().await?;
            Ok::<_, anyhow::Error>((link, c))
        }
        .await;
        let (link, mut c) = match linked {
            Ok(v) => v,
            Err(e) => {
                let msg = Msg::Host {
                    name: host.name.clone(),
                    result: Err(format!("{e:#}")),
                    at: std::time::SystemTime::now(),
                };
                if msgs.send(msg).await.is_err() {
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(HOST_RETRY_MAX);
                continue;
            }
        };
        wait = HOST_RETRY_MIN;
        if let Ok(mut m) = links.lock() {
            m.insert(host.name.clone(), link.clone());
        }
        let error = loop {
            match c.request(Request::List { repo: None }).await {
                Ok(Reply::Agents(agents)) => {
                    let msg = Msg::Host {
                        name: host.name.clone(),
                        result: Ok(agents),
                        at: std::time::SystemTime::now(),
                    };
                    if msgs.send(msg).await.is_err() {
                        return;
                    }
                }
                Ok(other) => break format!("unexpected answer to list: {other:?}"),
                Err(e) => break format!("{e:#}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(LIST_EVERY) => {}
                _ = refresh.notified() => {}
            }
        };
        if let Ok(mut m) = links.lock() {
            m.remove(&host.name);
        }
        drop(link);
        let msg = Msg::Host {
            name: host.name.clone(),
            result: Err(format!("host '{}': {error}", host.name)),
            at: std::time::SystemTime::now(),
        };
        if msgs.send(msg).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

async fn attach_task(
    id: u64,
    target: Target,
    colors: Option<TermColors>,
    msgs: mpsc::Sender<Msg>,
    mut cmds: mpsc::UnboundedReceiver<AttachCmd>,
    links: Links,
) {
    let fail = |e: String| Msg::AttachFailed(id, e);
    let c = async {
        let mut req = Request::Attach { target, size: None, tty: None, colors, keys: None };
        let mut c = connect_for(&mut req, &links).await?;
        match c.request(req).await? {
            Reply::Attached => Ok(c),
            other => Err(anyhow!("unexpected answer to attach: {other:?}")),
        }
    }
    .await;
    let c = match c {
        Ok(c) => c,
        Err(e) => {
            let _ = msgs.send(fail(format!("{e:#}"))).await;
            return;
        }
    };
    let (mut rd, mut wr) = (c.rd, c.wr);
    // Frames are read by their own task so a select never cancels a read half-way.
    let (ftx, mut frames) = mpsc::channel(4);
    let reader = tokio::spawn(async move {
        loop {
            let m = proto::read_frame::<_, ServerMsg>(&mut rd).await;
            let end = m.is_err();
            if ftx.send(m).await.is_err() || end {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let msg = match cmd {
                    Some(AttachCmd::Input(b)) => ClientMsg::Input(b),
                    Some(AttachCmd::Resize(s)) => ClientMsg::Resize(s),
                    None => {
                        let _ = proto::write_frame(&mut wr, &ClientMsg::Detach).await;
                        break;
                    }
                };
                if let Err(e) = proto::write_frame(&mut wr, &msg).await {
                    let _ = msgs.send(fail(format!("{}: {e}", super::update::LOST))).await;
                    break;
                }
            }
            frame = frames.recv() => match frame {
                Some(Ok(ServerMsg::Screen(u))) => {
                    if msgs.send(Msg::Screen(id, u)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(ServerMsg::Exited(code))) => {
                    let _ = msgs.send(Msg::Exited(id, code)).await;
                    break;
                }
                Some(Ok(ServerMsg::Bell)) => {
                    if msgs.send(Msg::Bell(id)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = msgs.send(fail(format!("{}: {e}", super::update::LOST))).await;
                    break;
                }
                None => break,
            }
        }
    }
    reader.abort();
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::super::fixtures;
    use super::*;

    /// What the terminal would receive.
    struct Capture(Rc<RefCell<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn focus_mode_paints_the_agent_straight_through_and_frames_leave_it_alone() {
        use crate::term::{Cell, Line, Screen};
        let area = Rect::new(0, 0, 80, 24);
        let mut st = fixtures::demo(area);
        st.mode = super::super::state::Mode::Focus;
        let key = st.selected.clone().unwrap();
        let pane = ui::areas(&st).pane;
        let text_line = |t: &str| Line {
            cells: t.chars().map(|ch| Cell { ch, ..Cell::default() }).collect(),
            wrapped: false,
        };
        let mut screen = Screen::blank(Size::new(pane.width, pane.height));
        screen.lines[0] = text_line("$ first");
        st.panes.entry(key.clone()).or_default().screen = Some(screen);
        let d = ui::pane::DirectPane { key: key.clone(), area: pane, mark_cursor: false };
        assert_eq!(ui::pane::direct_panes(&st), vec![d.clone()]);
        let mut mark = None;

        let out = Rc::new(RefCell::new(Vec::new()));
        let backend = CrosstermBackend::new(Capture(out.clone()));
        let opts = ratatui::TerminalOptions { viewport: ratatui::Viewport::Fixed(area) };
        let mut term = Terminal::with_options(backend, opts).unwrap();
        let mut emu = crate::term::new_emulator(Size::new(80, 24), 10);
        let out2 = out.clone();
        let mut show = move || {
            emu.feed(&std::mem::take(&mut *out2.borrow_mut()));
            emu.screen().lines.iter().map(|l| l.text()).collect::<Vec<_>>()
        };
        draw_frame(&mut term, &st).unwrap();
        paint_direct(term.backend_mut(), &st, &d, None, &mut mark).unwrap();
        let rows = show();
        let at = |rows: &[String], r: u16| -> String {
            rows[usize::from(pane.y + r)].chars().skip(usize::from(pane.x)).collect()
        };
        assert_eq!(at(&rows, 0).trim_end(), "$ first", "{rows:#?}");
        assert!(rows[1].starts_with("▸1 alpha"), "the list beside it: {rows:#?}");

        // A change of one row is that row, written on its own.
        let s = st.panes.get_mut(&key).unwrap().screen.as_mut().unwrap();
        s.lines[1] = text_line("typed");
        paint_direct(term.backend_mut(), &st, &d, Some(&[1]), &mut mark).unwrap();
        let written = String::from_utf8_lossy(&out.borrow()).into_owned();
        assert!(!written.contains("first"), "only the changed row: {written:?}");
        let rows = show();
        assert_eq!(at(&rows, 1).trim_end(), "typed");
        // A frame drawn afterwards does not write over the pane.
        draw_frame(&mut term, &st).unwrap();
        let rows = show();
        assert_eq!(at(&rows, 0).trim_end(), "$ first");
        assert_eq!(at(&rows, 1).trim_end(), "typed");
        // A notice over it: the frame draws the pane again, notice on top.
        st.info("hello there".to_string());
        assert_eq!(ui::pane::direct_panes(&st), vec![]);
        draw_frame(&mut term, &st).unwrap();
        let rows = show();
        assert!(rows.iter().any(|r| r.contains("hello there")), "{rows:#?}");
        assert_eq!(at(&rows, 1).trim_end(), "typed");
    }

    #[test]
    fn the_grid_paints_every_pane_straight_through_with_its_cursor_as_a_reversed_cell() {
        use crate::term::screen::attr;
        use crate::term::{Cell, Line, Screen};
        let area = Rect::new(0, 0, 120, 40);
        let mut st = fixtures::demo(area);
        st.view = super::super::state::View::Grid;
        let page = st.grid_page();
        let cells = ui::grid_cells(ui::areas(&st).main, page.len());
        let inner = |c: Rect| ratatui::widgets::Block::bordered().inner(c);
        for (i, (key, cell)) in page.iter().zip(&cells).enumerate() {
            let a = inner(*cell);
            let mut screen = Screen::blank(Size::new(a.width, a.height));
            screen.lines[0] = Line {
                cells: format!("pane-{i} text")
                    .chars()
                    .map(|ch| Cell { ch, ..Cell::default() })
                    .collect(),
                wrapped: false,
            };
            screen.cursor = (0, 2);
            screen.modes.cursor_visible = true;
            st.panes.entry(key.clone()).or_default().screen = Some(screen);
        }
        let direct = ui::pane::direct_panes(&st);
        assert_eq!(direct.len(), page.len(), "every pane on the grid");

        let out = Rc::new(RefCell::new(Vec::new()));
        let backend = CrosstermBackend::new(Capture(out.clone()));
        let opts = ratatui::TerminalOptions { viewport: ratatui::Viewport::Fixed(area) };
        let mut term = Terminal::with_options(backend, opts).unwrap();
        let mut emu = crate::term::new_emulator(Size::new(120, 40), 10);
        draw_frame(&mut term, &st).unwrap();
        let mut marks: Vec<Option<(u16, u16)>> = vec![None; direct.len()];
        for (d, m) in direct.iter().zip(marks.iter_mut()) {
            paint_direct(term.backend_mut(), &st, d, None, m).unwrap();
        }
        emu.feed(&std::mem::take(&mut *out.borrow_mut()));
        let cell_at = |emu: &dyn crate::term::Emulator, x: u16, y: u16| -> Cell {
            emu.screen().lines[usize::from(y)]
                .cells
                .get(usize::from(x))
                .cloned()
                .unwrap_or_default()
        };
        for (i, d) in direct.iter().enumerate() {
            let row: String = emu.screen().lines[usize::from(d.area.y)]
                .text()
                .chars()
                .skip(usize::from(d.area.x))
                .take(usize::from(d.area.width))
                .collect();
            assert_eq!(row.trim_end(), format!("pane-{i} text"));
            // The border right of the pane is still there: rows are erased within the pane.
            let border = cell_at(&*emu, d.area.right(), d.area.y + 1);
            assert_ne!(border.ch, ' ', "pane {i}'s right border");
            let c = cell_at(&*emu, d.area.x + 2, d.area.y);
            assert!(c.attrs & attr::INVERSE != 0 && c.ch == 'n', "pane {i}'s cursor: {c:?}");
        }
        // The cursor moves: the old mark goes, the new one shows.
        let (d, mark) = (&direct[0], &mut marks[0]);
        st.panes.get_mut(&d.key).unwrap().screen.as_mut().unwrap().cursor = (0, 5);
        paint_direct(term.backend_mut(), &st, d, Some(&[]), mark).unwrap();
        emu.feed(&std::mem::take(&mut *out.borrow_mut()));
        assert_eq!(cell_at(&*emu, d.area.x + 2, d.area.y).attrs & attr::INVERSE, 0);
        assert_ne!(cell_at(&*emu, d.area.x + 5, d.area.y).attrs & attr::INVERSE, 0);
        assert_eq!(*mark, Some((0, 5)));
    }

    #[test]
    fn each_frame_is_one_synchronized_update() {
        let area = Rect::new(0, 0, 80, 24);
        let mut st = super::super::fixtures::demo(area);
        let out = Rc::new(RefCell::new(Vec::new()));
        let backend = CrosstermBackend::new(Capture(out.clone()));
        let opts = ratatui::TerminalOptions { viewport: ratatui::Viewport::Fixed(area) };
        let mut term = Terminal::with_options(backend, opts).unwrap();
        for round in 0..2 {
            out.borrow_mut().clear();
            draw_frame(&mut term, &st).unwrap();
            let bytes = String::from_utf8_lossy(&out.borrow()).into_owned();
            assert!(bytes.starts_with("\x1b[?2026h"), "round {round}: {bytes:?}");
            assert!(bytes.ends_with("\x1b[?2026l"), "round {round}: {bytes:?}");
            assert_eq!(bytes.matches("\x1b[?2026h").count(), 1);
            st.selected = Some((fixtures::REPO.into(), "bravo".into()));
        }
        // Only what changed is written the second time: bravo's screen, not the whole frame.
        let second = String::from_utf8_lossy(&out.borrow()).into_owned();
        assert!(second.contains("Do you want"), "{second:?}");
        assert!(!second.contains("agents (6)"), "unchanged heading redrawn: {second:?}");
    }

    #[test]
    fn a_long_gate_log_is_read_from_a_line_start_near_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let text: String = (0..40_000).map(|i| format!("line {i:06}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let tail = crate::queue::read_log_tail(&path).unwrap();
        assert!(tail.len() <= 256 * 1024 && tail.len() > 200 * 1024, "{}", tail.len());
        assert!(tail.starts_with("line ") && tail.ends_with("line 039999\n"));
        assert!(text.ends_with(&tail));
        let short = dir.path().join("b.log");
        std::fs::write(&short, "only\n").unwrap();
        assert_eq!(crate::queue::read_log_tail(&short).unwrap(), "only\n");
        let e = crate::queue::read_log_tail(&dir.path().join("none.log")).unwrap_err();
        assert!(e.starts_with("cannot read ") && e.contains("none.log"), "{e}");
    }
}
