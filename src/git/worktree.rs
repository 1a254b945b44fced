//! Repository discovery and agents' worktrees.
//!
//! INTERFACE (implemented by the git helper; signatures are what the rest of corral calls):

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GitError {
    /// `path` is not inside a git repository.
    #[error("not a git repository: {0}")]
    NotARepo(PathBuf),
    #[error("{0} is a bare repository; corral needs a repository with a working tree")]
    Bare(PathBuf),
    #[error("repository {0} has no commits yet; make a first commit, then start agents")]
    Unborn(PathBuf),
    #[error("base '{0}' is not a branch, tag or commit of this repository")]
    BadBase(String),
    #[error("branch '{0}' already exists")]
    BranchExists(String),
    #[error("worktree path {0} already exists")]
    PathExists(PathBuf),
    /// Anything else libgit2 or the file system said, with what corral was doing.
    #[error("{what}: {source}")]
    Git {
        what: String,
        #[source]
        source: git2::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A repository with a working tree, as corral addresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// The main worktree's root, canonicalized (even when discovered from a linked worktree).
    pub root: PathBuf,
    /// The common git dir (`<root>/.git` for a normal repository), canonicalized.
    pub common_dir: PathBuf,
    /// The branch checked out in the main worktree (short name), `None` when detached.
    pub current_branch: Option<String>,
}
