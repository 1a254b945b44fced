//! Adopting a worktree made outside corral (`corral new --worktree PATH`): checking that an agent
//! can work in it as in one of its own, a linked worktree of this repository on a branch of its
//! own. Reads only; corral never changes or removes an adopted worktree.

use std::path::{Path, PathBuf};

use git2::{ErrorCode, Repository};

use super::worktree::{GitError, canonical, discover};

/// A linked worktree an agent can be started in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoptable {
    /// The worktree's top directory, canonicalized.
    pub path: PathBuf,
    /// The branch checked out in it (short name).
    pub branch: String,
}

/// Whether `path` (the worktree's top or a directory in it) is a linked worktree of the repository
/// whose main worktree is `root`, on a branch with commits. Each refusal names the thing.
pub fn adoptable_worktree(root: &Path, path: &Path) -> Result<Adoptable, GitError> {
    let refuse = |why: String| GitError::NotAdoptable { path: path.to_path_buf(), why };
    if !path.is_dir() {
        return Err(refuse("no such directory".into()));
    }
    let info = discover(path).map_err(|e| match e {
        GitError::NotARepo(_) => refuse("it is not in a git repository".into()),
        other => other,
    })?;
    if canonical(&info.root) != canonical(root) {
        return Err(refuse(format!(
            "it is a worktree of another repository ({})",
            info.root.display()
        )));
    }
    let repo = Repository::discover(path)
        .map_err(|e| refuse(format!("git cannot open it: {}", e.message())))?;
    let Some(top) = repo.workdir().map(canonical) else {
        return Err(refuse("it has no working tree".into()));
    };
    if !repo.is_worktree() {
        return Err(refuse(format!(
            "it is the main worktree of {}; `git worktree add` makes a linked one",
            info.root.display()
        )));
    }
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == ErrorCode::UnbornBranch => {
            return Err(refuse("its branch has no commits yet".into()));
        }
        Err(e) => return Err(refuse(format!("its HEAD cannot be read: {}", e.message()))),
    };
    if !head.is_branch() {
        return Err(refuse(
            "its HEAD is detached; put it on a branch first (`git switch -c NAME`)".into(),
        ));
    }
    let Some(branch) = head.shorthand().ok().map(str::to_string) else {
        return Err(refuse("its branch name is not UTF-8".into()));
    };
    Ok(Adoptable { path: top, branch })
}
