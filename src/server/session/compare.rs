//! Best-of-N (SPEC §9): the agents one `new -n N` started form a group; `compare` shows them
//! side by side (status, diff stat, files touched, and `[merge] gate` run in each worktree, a
//! few at a time), and `pick` lands one (as `merge`, or through the landing queue) and removes
//! the others, their work kept under refs/corral/backup/ (`rm`'s own path, with a backup).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

use super::queue::{GateEnd, gate_log, run_gate};
use super::{Key, Outcome, Session, agent_env, err};
use crate::proto::{CompareEntry, GateRun, MergeMode, Reply, Target};
use crate::{config, git, paths};

/// Gates run at once by one `compare` (each may be a whole build and test run).
fn gate_limit() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().div_ceil(2)).clamp(1, 4)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The paths a patch changes, from its `diff --git` headers.
fn patch_files(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git "))
        .map(|rest| rest.split_once(" b/").map_or(rest, |(_, b)| b).to_string())
        .collect()
}

impl Session {
    /// The members of the group `group` (its name, or any member's name) in `repo`, by name.
    fn group_members(&self, repo: &PathBuf, group: &str) -> Result<(String, Vec<Key>), String> {
        let of = |k: &Key| self.agents.get(k).and_then(|a| a.rec.group.clone());
        let name = self
            .agents
            .keys()
            .filter(|(r, _)| r == repo)
            .find_map(|k| of(k).filter(|g| g == group || k.1 == group))
            .ok_or_else(|| {
                let mut groups: Vec<String> = self
                    .agents
                    .iter()
                    .filter(|((r, _), _)| r == repo)
                    .filter_map(|(_, a)| a.rec.group.clone())
                    .collect();
                groups.dedup();
                if groups.is_empty() {
                    format!(
                        "no group '{group}' in {}: `corral new -n N` starts a group",
                        repo.display()
                    )
                } else {
                    format!(
                        "no group '{group}' in {} (groups: {})",
                        repo.display(),
                        groups.join(", ")
                    )
                }
            })?;
        let members = self
            .agents
            .keys()
            .filter(|k| &k.0 == repo && of(k).as_deref() == Some(&name))
            .cloned()
            .collect();
        Ok((name, members))
    }

    pub(super) fn compare(
        &mut self,
        repo: PathBuf,
        group: String,
        gate: bool,
        reply: oneshot::Sender<Outcome>,
    ) {
        let (_, members) = match self.group_members(&repo, &group) {
            Ok(m) => m,
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        let agents: Vec<_> = members
            .iter()
            .filter_map(|k| {
                self.agents.get(k).map(|a| (self.agent_info(k, a).status, a.rec.clone()))
            })
            .collect();
        tokio::spawn(async move {
            let loaded = if gate {
                match config::load(&paths::user_config_file(), Some(&repo)) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        let _ = reply.send(err(e.to_string()));
                        return;
                    }
                }
            } else {
                None
            };
            if let Some(rf) = loaded.as_ref().and_then(|l| l.repo_file.as_ref())
                && rf.command_keys.iter().any(|k| k == "merge.gate")
                && !crate::trust::is_trusted(&rf.path, &rf.content)
            {
                let _ = reply.send(err(format!(
                    "{} defines a gate that you have not approved; review the file, then run `corral trust`",
                    rf.path.display()
                )));
                return;
            }
            let limit = Arc::new(Semaphore::new(gate_limit()));
            let server_env: Arc<Vec<(String, String)>> = Arc::new(std::env::vars().collect());
            let mut jobs = Vec::new();
            for (status, rec) in agents {
                let loaded = loaded.clone();
                let (limit, server_env) = (limit.clone(), server_env.clone());
                jobs.push(tokio::spawn(async move {
                    let (wt, base) = (rec.worktree.clone(), rec.base.clone());
                    let (diff, files) = tokio::task::spawn_blocking(move || {
                        let diff =
                            git::agent_stat(&wt, &base).ok().map(|d| crate::proto::DiffStat {
                                files: count(d.files),
                                insertions: count(d.insertions),
                                deletions: count(d.deletions),
                                ahead: count(d.ahead),
                                behind: count(d.behind),
                            });
                        let files = git::agent_patch(&wt, &base, false, false, 0)
                            .map(|p| patch_files(&String::from_utf8_lossy(&p)))
                            .unwrap_or_default();
                        (diff, files)
                    })
                    .await
                    .unwrap_or_default();
                    let gate = match loaded.filter(|l| !l.config.merge.gate.is_empty()) {
                        None => None,
                        Some(l) => {
                            let _slot = limit.acquire().await;
                            let profile =
                                l.config.agents.get(&rec.profile).cloned().unwrap_or_default();
                            let env = agent_env(&server_env, &profile, &rec);
                            let log = gate_log(&rec.repo, &format!("{}-compare", rec.name));
                            let timeout =
                                Duration::from_secs(l.config.merge.gate_timeout_secs.max(1));
                            // Never cancelled: the sender lives as long as the gate.
                            let (_keep, kill) = oneshot::channel();
                            let end = run_gate(
                                &l.config.merge.gate,
                                &rec.worktree,
                                &env,
                                &log,
                                timeout,
                                kill,
                                |_| {},
                            )
                            .await;
                            Some(match end {
                                Ok(GateEnd::Passed) => GateRun {
                                    passed: true,
                                    summary: "passed".into(),
                                    log: Some(log),
                                },
                                Ok(GateEnd::Failed { timed_out: true, .. }) => GateRun {
                                    passed: false,
                                    summary: "timed out".into(),
                                    log: Some(log),
                                },
                                Ok(GateEnd::Failed { code, .. }) => GateRun {
                                    passed: false,
                                    summary: match code {
                                        Some(c) => format!("failed (exit {c})"),
                                        None => "failed (killed)".into(),
                                    },
                                    log: Some(log),
                                },
                                Ok(GateEnd::Killed) => GateRun {
                                    passed: false,
                                    summary: "cancelled".into(),
                                    log: Some(log),
                                },
                                Err(e) => GateRun { passed: false, summary: e, log: None },
                            })
                        }
                    };
                    CompareEntry { name: rec.name, status, diff, files, gate }
                }));
            }
            let mut entries = Vec::new();
            for j in jobs {
                match j.await {
                    Ok(e) => entries.push(e),
                    Err(e) => {
                        let _ = reply.send(err(format!("compare failed: {e}")));
                        return;
                    }
                }
            }
            let _ = reply.send(Outcome::Reply(Reply::Compare(entries)));
        });
    }

    /// Land `target` (merge, or through the queue), then remove the rest of its group, each
    /// one's tip kept under refs/corral/backup/. Nothing is removed when the landing fails.
    pub(super) fn pick(
        &mut self,
        target: Target,
        mode: MergeMode,
        queue: bool,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let group = match self.agent(&target) {
            Ok(a) => a.rec.group.clone(),
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        let Some(group) = group else {
            let _ = reply.send(err(format!(
                "agent '{}' is not in a group (`corral new -n N` starts one); merge it with `corral merge`",
                target.name
            )));
            return;
        };
        let others: Vec<Key> = match self.group_members(&target.repo, &group) {
            Ok((_, m)) => m.into_iter().filter(|k| k.1 != target.name).collect(),
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        let name = target.name.clone();
        let landed = if queue {
            match self.queue_land(
                target.repo.clone(),
                vec![name.clone()],
                mode,
                false,
                git_env.clone(),
            ) {
                Outcome::Reply(Reply::Error(e)) => {
                    let _ = reply.send(err(e));
                    return;
                }
                _ => format!("queued agent '{name}' to land"),
            }
        } else {
            let (tx, rx) = oneshot::channel();
            let ask = super::land::MergeAsk {
                mode,
                keep: false,
                message: None,
                git_env: git_env.clone(),
            };
            self.merge(target, ask, true, tx);
            let session = self.tx.clone();
            tokio::spawn(async move {
                match rx.await {
                    Ok(Outcome::Reply(Reply::Ok | Reply::Note(_))) => {
                        let _ = session.send(super::SessionMsg::Run(Box::new(
                            move |s: &mut Session| {
                                s.remove_others(
                                    format!("landed agent '{name}'"),
                                    others,
                                    git_env,
                                    reply,
                                );
                            },
                        )));
                    }
                    Ok(other) => {
                        let _ = reply.send(other);
                    }
                    Err(_) => {
                        let _ = reply.send(err("the server dropped the merge"));
                    }
                }
            });
            return;
        };
        self.remove_others(landed, others, git_env, reply);
    }

    /// Remove `others` one after the other (as many `rm`s typed in turn: two removals at once
    /// would contend for the repository's refs), then answer with what happened to each.
    fn remove_others(
        &mut self,
        note: String,
        others: Vec<Key>,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        let session = self.tx.clone();
        tokio::spawn(async move {
            let mut note = note;
            for (repo, name) in others {
                let (tx, rx) = oneshot::channel();
                let (target, env) = (Target { repo, name: name.clone() }, git_env.clone());
                let job = move |s: &mut Session| s.remove_with(target, true, true, env, tx);
                if session.send(super::SessionMsg::Run(Box::new(job))).is_err() {
                    return;
                }
                match rx.await {
                    Ok(Outcome::Reply(Reply::Note(n))) => note.push_str(&format!("; {n}")),
                    Ok(Outcome::Reply(Reply::Error(e))) => {
                        note.push_str(&format!("; could not remove agent '{name}': {e}"))
                    }
                    _ => note.push_str(&format!("; removed agent '{name}'")),
                }
            }
            let _ = reply.send(Outcome::Reply(Reply::Note(note)));
        });
    }
}
