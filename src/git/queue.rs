//! The landing queue's git steps (SPEC §5b) and where its state is kept. The queue itself is the
//! pure machine in `crate::queue`; the server's queue owner calls these on a blocking thread.
//!
//! - [`prepare`]: the agent's uncommitted work becomes a commit on its branch (as `merge` does),
//!   then the base's new commits are brought in (`sync`). Both take the repository's landing
//!   lock, the same one `merge` takes. A crash between the two leaves a committed snapshot and an
//!   unsynced branch, which the restarted queue syncs again; a crash inside the snapshot (commit
//!   made, index not yet written) leaves an index that differs from HEAD only, which the next
//!   snapshot repairs.
//! - [`land_gated`]: the base moves to exactly the commit the gate ran on (a fast-forward) or to
//!   one commit with its tree (squash), by compare-and-swap under the lock, and only while the base
//!   is still an ancestor of that commit; otherwise nothing changes and the queue syncs again.
//!   When the base is checked out, its worktree is brought along by the recoverable checkout.
//! - The queue is kept in `<common dir>/corral/queue.json`, written durably after every change.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use git2::{Oid, Sort};

use super::checkout::advance_worktree;
use super::identity::Identity;
use super::intent::write_durably;
use super::merge::{
    LandError, RepoLock, SyncSpec, backup_refs, check_quiet, checked_out_at, first_line, move_ref,
    ref_target, sync,
};
use super::worktree::snapshot_commit;
use super::{GitError, io_err, open};
use crate::failpoint;
use crate::queue::Queue;

/// Held (flock on `<common dir>/corral/queue.lock`) by the server that runs the repository's
/// queue, so two servers never run one; released when dropped or when the process dies.
pub struct QueueLock {
    _file: fs::File,
}

/// Take the queue lock, or say who has it.
pub fn lock_queue(common_dir: &Path) -> Result<QueueLock, GitError> {
    let dir = common_dir.join("corral");
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let path = dir.join("queue.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(QueueLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(io_err(format!(
            "another corral server runs the landing queue of this repository (it holds {})",
            path.display()
        ))(io::Error::other("locked"))),
        Err(e) => Err(io_err(format!("locking {}", path.display()))(e.into())),
    }
}

fn queue_file(common_dir: &Path) -> PathBuf {
    common_dir.join("corral").join("queue.json")
}

/// The queue saved in `common_dir`, if any.
pub fn load_queue(common_dir: &Path) -> Result<Option<Queue>, GitError> {
    let path = queue_file(common_dir);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_err(format!("reading {}", path.display()))(io::Error::other(e))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

/// Save the queue (an empty one removes the file).
pub fn save_queue(common_dir: &Path, queue: &Queue) -> Result<(), GitError> {
    let path = queue_file(common_dir);
    if queue.entries.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err(format!("removing {}", path.display()))(e))
            }
            _ => Ok(()),
        };
    }
    let json = serde_json::to_vec_pretty(queue).map_err(io::Error::other);
    json.and_then(|j| write_durably(&path, &j))
        .map_err(io_err(format!("writing {}", path.display())))
}

/// Commit the agent's uncommitted work, then bring the base's new commits into its branch.
/// Returns the agent's tip, which is what the gate runs on.
pub fn prepare(spec: &SyncSpec<'_>, prompt: Option<&str>) -> Result<String, LandError> {
    {
        let repo = open(spec.root)?;
        let _lock = RepoLock::acquire(repo.commondir())?;
        if !spec.worktree.is_dir() {
            return Err(LandError::Refused(format!(
                "the worktree of agent '{}' ({}) is gone",
                spec.agent,
                spec.worktree.display()
            )));
        }
        let agent_repo = open(spec.worktree)?;
        check_quiet(&agent_repo, &format!("the worktree of agent '{}'", spec.agent))?;
        let mut msg = format!("corral: uncommitted work of agent {}\n", spec.agent);
        if let Some(l) = first_line(prompt) {
            msg.push_str(&format!("\nPrompt: {l}\n"));
        }
        snapshot_commit(spec.worktree, &msg, spec.git_env)?;
    }
    failpoint::hit("queue:snapshot");
    let synced = sync(spec)?;
    failpoint::hit("queue:synced");
    Ok(synced.after)
}

/// What `land_gated` needs.
#[derive(Debug, Clone, Copy)]
pub struct GatedSpec<'a> {
    pub root: &'a Path,
    pub agent: &'a str,
    pub branch: &'a str,
    /// The branch to land on (short name).
    pub base: &'a str,
    /// The gated commit.
    pub tip: &'a str,
    pub squash: bool,
    pub prompt: Option<&'a str>,
    pub git_env: &'a [(String, String)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatedLanding {
    /// The base is now this commit.
    Landed(String),
    /// The base has commits the gated one lacks; nothing changed.
    BaseMoved,
}

/// Move the base to exactly the gated commit (or its squash), if the base is still an ancestor
/// of it. Nothing changes otherwise, or on any error.
pub fn land_gated(spec: &GatedSpec<'_>) -> Result<GatedLanding, LandError> {
    let repo = open(spec.root)?;
    let _lock = RepoLock::acquire(repo.commondir())?;
    let base_ref = format!("refs/heads/{}", spec.base);
    if repo.find_reference(&base_ref).is_err() {
        return Err(LandError::Refused(format!(
            "agent '{}' started from '{}', which is not a branch, so there is nothing to land on",
            spec.agent, spec.base
        )));
    }
    let tip = Oid::from_str(spec.tip).map_err(LandError::git("reading the gated commit"))?;
    let base_tip = ref_target(&repo, &base_ref)?;
    let wrap = || LandError::git(format!("comparing {} with {}", spec.branch, spec.base));
    if tip == base_tip {
        return Ok(GatedLanding::Landed(base_tip.to_string()));
    }
    if !repo.graph_descendant_of(tip, base_tip).map_err(wrap())? {
        return Ok(GatedLanding::BaseMoved);
    }
    let base_worktrees = checked_out_at(&repo, &base_ref)?;
    if base_worktrees.len() > 1 {
        return Err(LandError::Refused(format!(
            "{} is checked out in several worktrees; corral cannot update them all",
            spec.base
        )));
    }
    if let Some(w) = base_worktrees.first() {
        check_quiet(&open(w)?, &w.display().to_string())?;
    }
    let new = if spec.squash {
        let who = Identity::resolve(&repo, spec.git_env)?;
        let (tree, parent) =
            (|| Ok((repo.find_commit(tip)?.tree()?, repo.find_commit(base_tip)?)))()
                .map_err(wrap())?;
        let message = squash_message(&repo, spec, base_tip, tip)?;
        repo.commit(None, &who.author, &who.committer, &message, &tree, &[&parent])
            .map_err(LandError::git("committing the squash"))?
    } else {
        tip
    };
    let why = format!("corral: backup before landing agent {}", spec.agent);
    backup_refs(&repo, spec.agent, tip, base_tip, &why)?;
    failpoint::hit("queue:backup");
    let how = if spec.squash { "squash" } else { "fast-forward" };
    let log = format!("corral: land {} ({how}, gated)", spec.branch);
    match base_worktrees.first() {
        Some(w) => advance_worktree(
            w,
            &base_ref,
            base_tip,
            new,
            &w.display().to_string(),
            &format!("landing of agent '{}'", spec.agent),
            &log,
        )?,
        None => move_ref(&repo, &base_ref, base_tip, new, &log)?,
    }
    failpoint::hit("queue:landed");
    if spec.squash {
        // As after `merge --squash`: the agent's branch follows the base, so it reads as merged
        // and a kept agent goes on from what landed. Best effort: its work is on the base now.
        let agent_ref = format!("refs/heads/{}", spec.branch);
        if ref_target(&repo, &agent_ref).ok() == Some(tip)
            && let Some(wt) = agent_worktree(&repo, &agent_ref)
            && let Err(e) = advance_worktree(
                &wt,
                &agent_ref,
                tip,
                new,
                &format!("the worktree of agent '{}'", spec.agent),
                "landing",
                &format!("corral: follow {} after a squash", spec.base),
            )
        {
            tracing::warn!("agent {} stays on its own commits: {e}", spec.agent);
        }
    }
    Ok(GatedLanding::Landed(new.to_string()))
}

fn agent_worktree(repo: &git2::Repository, agent_ref: &str) -> Option<PathBuf> {
    checked_out_at(repo, agent_ref).ok()?.into_iter().next()
}

fn squash_message(
    repo: &git2::Repository,
    spec: &GatedSpec<'_>,
    base_tip: Oid,
    tip: Oid,
) -> Result<String, LandError> {
    let mut m = match first_line(spec.prompt) {
        Some(l) => format!("{l}\n"),
        None => format!("Work of agent {}\n", spec.agent),
    };
    m.push_str(&format!("\nSquashed from {} (agent {}):\n", spec.branch, spec.agent));
    for s in subjects_between(repo, base_tip, tip)? {
        m.push_str(&format!("* {s}\n"));
    }
    Ok(m)
}

fn subjects_between(
    repo: &git2::Repository,
    hide: Oid,
    tip: Oid,
) -> Result<Vec<String>, LandError> {
    let wrap = || LandError::git("listing commits");
    let mut walk = repo.revwalk().map_err(wrap())?;
    walk.push(tip).map_err(wrap())?;
    walk.hide(hide).map_err(wrap())?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE).map_err(wrap())?;
    let mut out = Vec::new();
    for id in walk {
        let c = repo.find_commit(id.map_err(wrap())?).map_err(wrap())?;
        out.push(c.summary().ok().flatten().unwrap_or("").to_string());
    }
    Ok(out)
}

/// A commit's subject; for corral's snapshot of an agent's uncommitted work, which says nothing,
/// the agent's task from its message.
fn describe_commit(c: &git2::Commit<'_>) -> String {
    let subject = c.summary().ok().flatten().unwrap_or("").to_string();
    let Some(agent) = subject.strip_prefix("corral: uncommitted work of agent ") else {
        return subject;
    };
    let message = c.message().ok().unwrap_or("");
    match message.lines().find_map(|l| l.strip_prefix("Prompt: ")) {
        Some(p) => format!("agent {agent}'s task: {p}"),
        None => format!("agent {agent}'s work"),
    }
}

/// For each conflicting path, the subjects of the base's commits (those the agent's branch lacks)
/// that touched it: what the other side meant, for the message to the agent.
pub fn conflict_subjects(
    root: &Path,
    branch: &str,
    base: &str,
    paths: &[String],
) -> Vec<(String, Vec<String>)> {
    let found = (|| -> Result<Vec<(String, Vec<String>)>, git2::Error> {
        let repo = git2::Repository::open(root)?;
        let base_tip = repo.revparse_single(base)?.peel_to_commit()?.id();
        let tip = repo.revparse_single(&format!("refs/heads/{branch}"))?.peel_to_commit()?.id();
        let mut walk = repo.revwalk()?;
        walk.push(base_tip)?;
        walk.hide(tip)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
        let mut out: Vec<(String, Vec<String>)> =
            paths.iter().map(|p| (p.clone(), Vec::new())).collect();
        for id in walk {
            let c = repo.find_commit(id?)?;
            let parent = c.parents().next().map(|p| p.tree()).transpose()?;
            let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&c.tree()?), None)?;
            let touched = super::diff::touched_paths(&diff);
            let subject = describe_commit(&c);
            for (p, subjects) in &mut out {
                if touched.contains(p.as_str()) && !subjects.contains(&subject) {
                    subjects.push(subject.clone());
                }
            }
        }
        Ok(out)
    })();
    found.unwrap_or_else(|e| {
        tracing::warn!("reading what the base changed in {}: {e}", paths.join(", "));
        paths.iter().map(|p| (p.clone(), Vec::new())).collect()
    })
}

/// What `resolve` left in the agent's worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolving {
    /// Each conflicting path, with the subjects of the base's commits that touched it and of the
    /// agent's own (its prompt for corral's snapshot commits).
    pub paths: Vec<ResolvePath>,
    pub backup: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvePath {
    pub path: String,
    pub base: Vec<String>,
    pub agent: Vec<String>,
}

/// `corral resolve`: the agent's uncommitted work is committed, backup refs taken, then the base
/// is merged into the agent's branch in its own worktree, leaving conflict markers there (the only
/// place corral writes them) and the merge in progress, for the agent to conclude with a commit.
/// Refused, with nothing changed, when the merge would not conflict.
pub fn resolve_into_worktree(
    spec: &SyncSpec<'_>,
    prompt: Option<&str>,
) -> Result<Resolving, LandError> {
    let repo = open(spec.root)?;
    let _lock = RepoLock::acquire(repo.commondir())?;
    let who = format!("the worktree of agent '{}'", spec.agent);
    if !spec.worktree.is_dir() {
        return Err(LandError::Refused(format!("{who} ({}) is gone", spec.worktree.display())));
    }
    let agent_repo = open(spec.worktree)?;
    let agent_ref = format!("refs/heads/{}", spec.branch);
    super::merge::check_head(&agent_repo, &agent_ref, &who)?;
    check_quiet(&agent_repo, &who)?;
    let base_tip = super::diff::base_tip(&repo, spec.base)?;
    let tip = ref_target(&repo, &agent_ref)?;
    let wrap = || LandError::git(format!("merging {} into {}", spec.base, spec.branch));
    if tip == base_tip || repo.graph_descendant_of(tip, base_tip).map_err(wrap())? {
        return Err(LandError::Refused(format!(
            "agent '{}' already has every commit of {}: nothing to resolve",
            spec.agent, spec.base
        )));
    }
    // Only a real conflict is handed over (a clean merge is `corral sync`'s): the worktree as it
    // is, uncommitted work included, merged with the base in memory.
    let conflicted = (|| -> Result<bool, git2::Error> {
        let (_, state) = super::state::worktree_state(&agent_repo)?;
        let ancestor = repo.find_commit(repo.merge_base(tip, base_tip)?)?.tree()?;
        let ours = repo.find_tree(state)?;
        let theirs = repo.find_commit(base_tip)?.tree()?;
        Ok(repo.merge_trees(&ancestor, &ours, &theirs, None)?.has_conflicts())
    })()
    .map_err(wrap())?;
    if !conflicted {
        return Err(LandError::Refused(format!(
            "{} merges into agent '{}' without conflicts; `corral sync {}` brings it in",
            spec.base, spec.agent, spec.agent
        )));
    }
    let mut msg = format!("corral: uncommitted work of agent {}\n", spec.agent);
    if let Some(l) = first_line(prompt) {
        msg.push_str(&format!("\nPrompt: {l}\n"));
    }
    snapshot_commit(spec.worktree, &msg, spec.git_env)?;
    let tip = ref_target(&repo, &agent_ref)?;
    let why = format!("corral: backup before resolving agent {}", spec.agent);
    let backup = backup_refs(&repo, spec.agent, tip, base_tip, &why)?;
    failpoint::hit("resolve:backup");
    let theirs = agent_repo.find_annotated_commit(base_tip).map_err(wrap())?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.safe().allow_conflicts(true).conflict_style_merge(true);
    agent_repo.merge(&[&theirs], None, Some(&mut checkout)).map_err(wrap())?;
    let index = agent_repo.index().map_err(wrap())?;
    let paths = super::merge::conflict_paths(&index).map_err(wrap())?;
    let base_side = conflict_subjects(spec.root, spec.branch, spec.base, &paths);
    let agent_side = agent_subjects(&repo, base_tip, tip, &paths, prompt);
    Ok(Resolving {
        paths: base_side
            .into_iter()
            .zip(agent_side)
            .map(|((path, base), agent)| ResolvePath { path, base, agent })
            .collect(),
        backup,
    })
}

/// For each path, the subjects of the agent's commits (those the base lacks) that touched it;
/// corral's own snapshot commits stand for the agent's prompt.
fn agent_subjects(
    repo: &git2::Repository,
    base_tip: Oid,
    tip: Oid,
    paths: &[String],
    prompt: Option<&str>,
) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new(); paths.len()];
    let found = (|| -> Result<(), git2::Error> {
        let mut walk = repo.revwalk()?;
        walk.push(tip)?;
        walk.hide(base_tip)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
        for id in walk {
            let c = repo.find_commit(id?)?;
            let parent = c.parents().next().map(|p| p.tree()).transpose()?;
            let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&c.tree()?), None)?;
            let touched = super::diff::touched_paths(&diff);
            let mut subject = c.summary().ok().flatten().unwrap_or("").to_string();
            if subject.starts_with("corral: uncommitted work of agent") {
                subject = match first_line(prompt) {
                    Some(p) => format!("your task: {p}"),
                    None => "your uncommitted work".to_string(),
                };
            }
            for (i, p) in paths.iter().enumerate() {
                if touched.contains(p.as_str()) && !out[i].contains(&subject) {
                    out[i].push(subject.clone());
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = found {
        tracing::warn!("reading what the agent changed in {}: {e}", paths.join(", "));
    }
    out
}
