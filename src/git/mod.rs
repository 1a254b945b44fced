//! Git, through git2 (vendored libgit2, no network), behind plain functions that take paths and open
//! the repository per call. This module owns everything corral does to a repository: finding it,
//! creating and removing agents' worktrees and branches, and the checks that keep work from being
//! lost. It knows nothing of agents' processes, the server, tokio or terminals; callers run it off the
//! socket loop (blocking threads).
//!
//! Every operation that changes the repository either completes or leaves it as it was: libgit2's
//! worktree add is not atomic (a failure leaves a branch and an empty `.git/worktrees/<name>/` that
//! breaks later adds), so creation rolls back what it did and sweeps such debris.

mod worktree;

pub use worktree::*;
