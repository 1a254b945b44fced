//! Where `corral fork` starts: the forked agent's work exactly as it is, committed or not.

use std::path::Path;

use git2::ErrorCode;

use super::worktree::{GitError, git_err, open};

/// The commit a fork of the agent working in `worktree` starts at: its HEAD when nothing is
/// uncommitted, else a new commit on top of HEAD holding the worktree as `git add -A` would
/// stage it (untracked files included, ignored ones not). Nothing of that worktree changes: the
/// staging happens in a copy of its index in memory, and the commit is only an object until the
/// fork's branch points at it (a crash before then leaves an unreferenced object, which git's
/// own gc removes in time).
pub fn fork_point(
    worktree: &Path,
    message: &str,
    git_env: &[(String, String)],
) -> Result<String, GitError> {
    let repo = open(worktree)?;
    let what = |doing: &str| format!("{doing} in {}", worktree.display());
    let head = match repo.head() {
        Ok(h) => Some(h.peel_to_commit().map_err(git_err(what("reading HEAD")))?),
        Err(e) if e.code() == ErrorCode::UnbornBranch => None,
        Err(e) => return Err(git_err(what("reading HEAD"))(e)),
    };
    let (_, tree_id) =
        super::state::worktree_state(&repo).map_err(git_err(what("reading the work")))?;
    if let Some(h) = &head
        && h.tree_id() == tree_id
    {
        return Ok(h.id().to_string());
    }
    let tree = repo.find_tree(tree_id).map_err(git_err(what("reading the tree")))?;
    let who = super::Identity::resolve(&repo, git_env)?;
    let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
    let id = repo
        .commit(None, &who.author, &who.committer, message, &tree, &parents)
        .map_err(git_err(what("committing the snapshot")))?;
    Ok(id.to_string())
}

/// Keep the tip of `branch` under `refs/corral/backup/<agent>/<stamp>/agent` (with the base's tip
/// beside it), before a best-of-N pick removes the agent and its branch. Returns the prefix.
pub fn backup_branch(
    root: &Path,
    agent: &str,
    branch: &str,
    base: &str,
) -> Result<String, GitError> {
    let repo = open(root)?;
    let tip = |name: &str| {
        repo.revparse_single(name)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(git_err(format!("reading the tip of '{name}'")))
    };
    let agent_tip = tip(&format!("refs/heads/{branch}"))?;
    let base_tip = tip(base)?;
    let why = format!("corral: agent {agent} was not picked; its work is kept here");
    match super::merge::backup_refs(&repo, agent, agent_tip, base_tip, &why) {
        Ok(prefix) => Ok(prefix),
        Err(super::LandError::Git(e)) => Err(e),
        Err(e) => Err(GitError::Io {
            what: "keeping the work under a backup ref".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}
