//! `corral review` and the diff view's comments: one message to the agent, typed at once when
//! it is idle or asks for input, else through its queue (as `send --queue`) the next time it is
//! idle, so a message never lands in the middle of a turn.

use tokio::sync::oneshot;

use super::{Outcome, Session, err, off_session};
use crate::proto::{Reply, ReviewComment, Target};

impl Session {
    pub(super) fn review(
        &mut self,
        target: Target,
        comments: Vec<ReviewComment>,
        queue: bool,
        reply: oneshot::Sender<Outcome>,
    ) {
        if comments.is_empty() {
            let _ = reply.send(err("no comments to send; give --comment PATH:LINE:TEXT"));
            return;
        }
        let worktree = match self.agent(&target) {
            Ok(a) => a.rec.worktree.clone(),
            Err(e) => {
                let _ = reply.send(err(e));
                return;
            }
        };
        // Lines the reviewer did not quote are read from the worktree: off the session.
        off_session(
            &self.tx,
            move || {
                let mut comments = comments;
                crate::review::read_excerpts(&worktree, &mut comments)?;
                Ok::<_, String>(crate::review::message(&comments))
            },
            move |s, text| match text {
                Ok(text) => s.deliver_review(&target, text, queue, reply),
                Err(e) => {
                    let _ = reply.send(err(e));
                }
            },
        );
    }

    fn deliver_review(
        &mut self,
        target: &Target,
        text: String,
        queue: bool,
        reply: oneshot::Sender<Outcome>,
    ) {
        let key = (target.repo.clone(), target.name.clone());
        let waiting = self.agents.get(&key).is_some_and(|a| {
            matches!(self.agent_info(&key, a).status.as_str(), "idle" | "needs-input")
        });
        if !queue
            && waiting
            && let Ok(pane) = self.live_pane(target, true)
        {
            let name = target.name.clone();
            tokio::spawn(async move {
                crate::server::listener::type_text(&pane, &text, true).await;
                let note = format!("review sent to agent '{name}'");
                let _ = reply.send(Outcome::Reply(Reply::Note(note)));
            });
            return;
        }
        let _ = reply.send(self.enqueue(target, text));
    }
}
