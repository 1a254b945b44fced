//! `corral gc` on the session: find (and remove) what corral left behind in a repository.
//!
//! The git work runs off the session (`git::find_leftovers`, `git::clean_leftover`); what the
//! session adds is that it cannot race with the making of an agent: everything an agent owns
//! (even one still starting) is in the snapshot handed to the job, and a `new` for the same
//! repository that arrives while gc runs waits until it is done, so nothing gc finds can be a
//! worktree or branch being made for an agent.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use super::{Job, Outcome, Session, err, off_session, worktree_dir};
use crate::config;
use crate::git::{self, Cleaned, GcSpec, Leftover, Owned};
use crate::paths;
use crate::proto::Reply;

impl Session {
    pub(super) fn gc(
        &mut self,
        repo: PathBuf,
        remove: bool,
        force: bool,
        git_env: Vec<(String, String)>,
        reply: oneshot::Sender<Outcome>,
    ) {
        if self.gc_running.contains_key(&repo) {
            let _ = reply.send(err(format!("corral gc is already running in {}", repo.display())));
            return;
        }
        self.gc_running.insert(repo.clone(), Vec::new());
        let owned: Vec<(String, PathBuf, String)> = self
            .agents
            .iter()
            .filter(|((r, _), _)| *r == repo)
            .map(|(_, a)| (a.rec.name.clone(), a.rec.worktree.clone(), a.rec.branch.clone()))
            .collect();
        let root = repo.clone();
        off_session(
            &self.tx,
            move || run(&root, &owned, remove, force, &git_env),
            move |s: &mut Session, result: Result<String, String>| {
                let waiting: Vec<Job> = s.gc_running.remove(&repo).unwrap_or_default();
                let _ = reply.send(match result {
                    Ok(text) => Outcome::Reply(Reply::Text(text)),
                    Err(e) => err(e),
                });
                for job in waiting {
                    job(s);
                }
            },
        );
    }
}

fn run(
    repo: &Path,
    owned: &[(String, PathBuf, String)],
    remove: bool,
    force: bool,
    git_env: &[(String, String)],
) -> Result<String, String> {
    let info = git::discover(repo).map_err(|e| e.to_string())?;
    let config = config::load(&paths::user_config_file(), Some(&info.root))
        .map_err(|e| e.to_string())?
        .config;
    let dir = worktree_dir(&config, &info.root);
    let owned = Owned {
        names: owned.iter().map(|(n, _, _)| n.clone()).collect(),
        worktrees: owned
            .iter()
            .map(|(_, w, _)| std::fs::canonicalize(w).unwrap_or_else(|_| w.components().collect()))
            .collect::<BTreeSet<_>>(),
        branches: owned.iter().map(|(_, _, b)| b.clone()).collect(),
    };
    let spec = GcSpec {
        root: &info.root,
        worktree_dir: &dir,
        prefix: &config.worktree.branch_prefix,
        git_env,
        owned: &owned,
    };
    let (base, items) = git::find_leftovers(&spec).map_err(|e| e.to_string())?;
    let mut out = String::new();
    if items.is_empty() {
        let _ = writeln!(out, "nothing left behind in {}", info.root.display());
        return Ok(out);
    }
    if !remove {
        let _ = writeln!(
            out,
            "left behind in {} (work is what {} does not have):",
            info.root.display(),
            base.name
        );
        for item in &items {
            let _ = writeln!(out, "  {}: {}", item.describe(), work_or_none(item, &base.name));
        }
        let (work, free): (Vec<&Leftover>, Vec<&Leftover>) =
            items.iter().partition(|i| i.holds_work());
        let mut hint = Vec::new();
        if !free.is_empty() {
            hint.push(format!("`corral gc --yes` removes the {} without work", free.len()));
        }
        let forceable = work.iter().filter(|i| !is_stray(i)).count();
        if forceable > 0 {
            hint.push(format!(
                "`corral gc --yes --force` also the {forceable} holding work, after keeping it under refs/corral/backup/"
            ));
        }
        if !hint.is_empty() {
            let _ = writeln!(out, "{}", hint.join("; "));
        }
        return Ok(out);
    }
    for item in &items {
        let line = match git::clean_leftover(&spec, &base, item, force) {
            Ok(Cleaned::Removed { backup: None }) => format!("removed {}", item.describe()),
            Ok(Cleaned::Removed { backup: Some(b) }) => format!(
                "removed {}; what it held ({}) is kept at {b}",
                item.describe(),
                item.work(&base.name)
            ),
            Ok(Cleaned::Kept(why)) => format!("kept {}: {why}", item.describe()),
            Err(e) => format!("kept {}: {e}", item.describe()),
        };
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

fn is_stray(item: &Leftover) -> bool {
    matches!(item.kind, git::LeftoverKind::Stray { .. })
}

fn work_or_none(item: &Leftover, base: &str) -> String {
    if is_stray(item) {
        return "not git's to judge; look inside, then delete it by hand".into();
    }
    let w = item.work(base);
    if w.is_empty() { "no work".into() } else { w }
}
