//! `corral fork NAME`: a new agent that starts where another one is, its uncommitted and
//! untracked work included, and continues its conversation where the profile says how.
//!
//! It is a `new` with three differences, carried by [`ForkPlan`]: the branch starts at a
//! snapshot of the forked agent's worktree (made without touching that worktree, its index or
//! its branch: `git::fork_point`), its ignored files to copy come from that worktree, and the
//! process starts with the profile's `fork` arguments. Everything else, including the intent
//! record that makes a killed server undo a half-made agent, is `new`'s own path.

use std::path::PathBuf;

use tokio::sync::oneshot;

use super::{Outcome, Session, err, off_session, prepare};
use crate::config::Profile;
use crate::proto::{NewAgent, Reply, Target};
use crate::server::names;
use crate::term::Size;

pub(super) struct ForkPlan {
    /// The name to start from when the user gave none.
    pub name: String,
    /// The snapshot commit (or the forked agent's HEAD when it had nothing uncommitted).
    pub start: String,
    pub parent_worktree: PathBuf,
    /// The profile with `command` replaced by its `fork` arguments, when it has them.
    pub profile: Profile,
}

impl super::Prepared {
    /// The commit the new branch starts at.
    pub(super) fn start_commit(&self) -> &str {
        self.fork.as_ref().map_or(&self.base_commit, |f| &f.start)
    }
}

/// What a fork of an agent of `profile` runs: its `fork` arguments with the forked agent's
/// session in place of `{parent_session}`, or None when the profile cannot fork a conversation.
fn fork_profile(profile: &Profile, parent_session: &str) -> Option<Profile> {
    if profile.fork.is_empty() {
        return None;
    }
    let command = profile.fork.iter().map(|a| a.replace("{parent_session}", parent_session));
    Some(Profile { command: command.collect(), ..profile.clone() })
}

pub(super) struct ForkAsk {
    pub name: Option<String>,
    pub prompt: Option<String>,
    pub size: Option<Size>,
    pub env: Vec<(String, String)>,
    pub git_env: Vec<(String, String)>,
}

impl Session {
    pub(super) fn fork(&mut self, target: Target, ask: ForkAsk, reply: oneshot::Sender<Outcome>) {
        if let Some(name) = &ask.name
            && let Err(e) = names::validate(name)
        {
            let _ = reply.send(err(e));
            return;
        }
        let parent = match self.ready(&target) {
            Ok(a) => a.rec.clone(),
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        let size = ask.size.or_else(|| {
            self.agents
                .get(&(target.repo.clone(), target.name.clone()))
                .and_then(|a| a.pane.as_ref())
                .map(|p| p.state().size)
        });
        let req = NewAgent {
            repo: target.repo.clone(),
            prompt: ask.prompt,
            profile: Some(parent.profile.clone()),
            name: ask.name,
            base: Some(parent.base.clone()),
            count: 1,
            size: size.or(Some(parent.size)),
            env: ask.env,
            worktree: None,
            colors: None,
            args: parent.args.clone(),
        };
        let git_env = ask.git_env;
        off_session(
            &self.tx,
            move || {
                let mut prep = prepare(&req, &[])?;
                let msg = format!(
                    "corral: work of agent {} when it was forked (uncommitted and untracked files)",
                    parent.name
                );
                let start = crate::git::fork_point(&parent.worktree, &msg, &git_env)
                    .map_err(|e| format!("cannot fork agent '{}': {e}", parent.name))?;
                crate::failpoint::hit("fork:snapshot");
                let forked = fork_profile(&prep.profile, &parent.session);
                let note = match &forked {
                    Some(_) => None,
                    None => Some(format!(
                        "profile '{}' cannot fork a conversation (no `fork` arguments): the fork starts a fresh one",
                        prep.profile_name
                    )),
                };
                let stem: String = parent.name.chars().take(names::MAX_NAME - 7).collect();
                // The fork diffs and lands against the same base the forked agent started from.
                prep.base.clone_from(&parent.base);
                prep.base_commit.clone_from(&parent.base_commit);
                prep.fork = Some(ForkPlan {
                    name: format!("{}-fork", stem.trim_end_matches('-')),
                    start,
                    parent_worktree: parent.worktree.clone(),
                    profile: forked.unwrap_or_else(|| prep.profile.clone()),
                });
                Ok((req, prep, note))
            },
            move |s, result: Result<_, String>| match result {
                Ok((req, prep, note)) => {
                    let (tx, rx) = oneshot::channel();
                    s.new_prepared(req, prep, tx);
                    tokio::spawn(async move {
                        let out = match rx.await {
                            Ok(Outcome::Reply(Reply::Created(mut names))) if names.len() == 1 => {
                                Outcome::Reply(Reply::Forked { name: names.remove(0), note })
                            }
                            Ok(other) => other,
                            Err(_) => err("the server dropped the fork"),
                        };
                        let _ = reply.send(out);
                    });
                }
                Err(e) => {
                    let _ = reply.send(err(e));
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_arguments_name_the_parent_session_and_keep_the_rest_of_the_profile() {
        let p = Profile {
            command: vec!["claude".into(), "--session-id".into(), "{session}".into()],
            fork: vec![
                "claude".into(),
                "--resume".into(),
                "{parent_session}".into(),
                "--fork-session".into(),
                "--session-id".into(),
                "{session}".into(),
            ],
            hooks: true,
            ..Profile::default()
        };
        let f = fork_profile(&p, "abc").unwrap_or_default();
        assert_eq!(f.command[..4], ["claude", "--resume", "abc", "--fork-session"]);
        assert_eq!(f.command[5], "{session}", "the fork's own session is filled in later");
        assert!(f.hooks);
        assert!(fork_profile(&Profile { fork: Vec::new(), ..p }, "abc").is_none());
    }
}
