//! The session's side of `server --upgrade` (see `server::handover`): handing its running agents
//! over, and adopting them in the server that took over.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{Key, Outcome, Phase, Session, SessionMsg, err, off_session};
use crate::server::handover::{self, Handed, STATE_VERSION, State};
use crate::server::pane::start_pane;
use crate::server::pty;

/// How long the hand-over waits for input already sent to an agent to be written to it.
const INPUT_LIMIT: Duration = Duration::from_secs(3);

impl Session {
    /// Check the new binary off the session, then hand over (replacing this process) or answer why
    /// not.
    pub(super) fn upgrade(&mut self, exe: std::path::PathBuf, reply: oneshot::Sender<Outcome>) {
        let path = exe.clone();
        off_session(
            &self.tx,
            move || handover::check(&path, None),
            move |s, checked: Result<(), String>| match checked {
                Ok(()) => {
                    let why = s.hand_over(&exe);
                    warn!("server --upgrade failed: {why}");
                    let _ = reply.send(err(why));
                }
                Err(why) => {
                    let _ = reply.send(err(why));
                }
            },
        );
    }

    /// Stop every pane's reading, take the states and replace the program; returns only on
    /// failure, with every pane reading again.
    fn hand_over(&mut self, exe: &std::path::Path) -> String {
        let started = Instant::now();
        // Work in flight off the session would be cut like a kill -9 (and undone at the next
        // start): wait for it instead.
        if let Some((key, _)) = self.agents.iter().find(|(_, a)| a.phase != Phase::Ready) {
            return format!(
                "agent '{}' is being created, stopped or removed; try again in a moment",
                key.1
            );
        }
        if let Some(repo) = self.land.busy_repo() {
            return format!(
                "a merge or sync is running in {}; try again in a moment",
                repo.display()
            );
        }
        if let Some(repo) = self.gc_running.keys().next() {
            return format!("`corral gc` is running in {}; try again in a moment", repo.display());
        }
        let live: Vec<(Key, crate::server::pane::PaneHandle)> = self
            .agents
            .iter()
            .filter(|(_, a)| a.phase == Phase::Ready)
            .filter_map(|(k, a)| a.pane.clone().map(|p| (k.clone(), p)))
            .filter(|(_, p)| !p.state().exited && p.pid.is_some() && p.master().is_some())
            .collect();
        for (key, pane) in &live {
            if pane.typing.try_lock().is_err() {
                return format!("a message is being typed to agent '{}'; try again", key.1);
            }
        }
        let reading: Vec<_> = live.iter().map(|(_, p)| p.stop_reading()).collect();
        let deadline = Instant::now() + INPUT_LIMIT;
        while let Some((key, _)) = live.iter().find(|(_, p)| !p.input_written()) {
            if Instant::now() > deadline {
                return format!(
                    "agent '{}' has not read the input sent to it for {}s; try again",
                    key.1,
                    INPUT_LIMIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let repos: Vec<std::path::PathBuf> = self.repos.iter().cloned().collect();
        for r in repos {
            self.save(&r);
        }
        let mut agents = Vec::with_capacity(live.len());
        let mut masters = Vec::with_capacity(live.len());
        for (key, pane) in &live {
            let Some(master) = pane.master() else { continue };
            use std::os::fd::AsRawFd as _;
            agents.push(Handed {
                repo: key.0.clone(),
                name: key.1.clone(),
                pid: pane.pid.unwrap_or(0),
                fd: master.as_raw_fd(),
                emulator: pane.emulator_state(),
                badge: self.badge_view(key),
            });
            masters.push(master);
        }
        let state = State { version: STATE_VERSION, colors: self.colors, agents };
        info!(
            "handing {} agents over to {} (prepared in {} ms)",
            live.len(),
            exe.display(),
            started.elapsed().as_millis()
        );
        let refs: Vec<&std::os::fd::OwnedFd> = masters.iter().map(|m| &**m).collect();
        let why = handover::exec(exe, &state, &refs);
        drop(reading);
        why
    }

    /// Adopt the agents a previous server handed over (their records were just recovered).
    pub(super) fn adopt(&mut self, state: State) {
        crate::failpoint::hit("upgrade:adopt");
        if let Some(c) = state.colors {
            self.colors = Some(c);
        }
        for h in state.agents {
            let key: Key = (h.repo.clone(), h.name.clone());
            let master = match handover::inherited(h.fd) {
                Ok(m) => m,
                Err(e) => {
                    warn!("agent {} was not handed over: {e}", h.name);
                    continue;
                }
            };
            self.load_repo(&h.repo);
            if !self.agents.contains_key(&key) {
                // No record: nothing to show it under. It ends with its PTY.
                warn!("agent {} of {} has no record; letting it go", h.name, h.repo.display());
                continue;
            }
            let spawned = match pty::adopt(master, h.pid) {
                Ok(s) => s,
                Err(e) => {
                    warn!("cannot adopt agent {}: {e}", h.name);
                    continue;
                }
            };
            self.runs += 1;
            let run = self.runs;
            let tx = self.tx.clone();
            let k = key.clone();
            let pane = match start_pane(
                spawned,
                h.emulator.size(),
                crate::term::restore(h.emulator),
                Box::new(move |code| {
                    let _ = tx.send(SessionMsg::Run(Box::new(move |s| s.on_exit(&k, run, code))));
                }),
            ) {
                Ok(p) => p,
                Err(e) => {
                    warn!("cannot adopt agent {}: {e}", h.name);
                    continue;
                }
            };
            if let Some(a) = self.agents.get_mut(&key) {
                a.pane = Some(pane.clone());
                a.run = run;
                a.phase = Phase::Ready;
                a.recovered_at = None;
                a.rec.exit_code = None;
            }
            self.start_badge_from(&key, &pane, run, h.badge);
            info!("adopted agent {} (pid {})", h.name, h.pid);
        }
    }
}
