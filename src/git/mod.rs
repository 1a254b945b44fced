//! Git, through git2 (vendored libgit2, no network), behind plain functions that take paths and open
//! the repository per call. This module owns everything corral does to a repository: finding it,
//! creating and removing agents' worktrees and branches, and the checks that keep work from being
//! lost. It knows nothing of agents' processes, the server, tokio or terminals; callers run it off the
//! socket loop (blocking threads).
//!
//! Every operation that changes the repository either completes or leaves it as it was: creating a
//! worktree takes several steps (branch, admin dir, directory, checkout), so a failure rolls back what
//! that call did, and the debris an interrupted add leaves (an admin dir whose worktree never
//! appeared, which would block the next add under that name) is swept first. Nothing here ever
//! prunes a worktree that may hold work: one moved by hand looks exactly like one deleted.
//!
//! Landing work (`diff`, `merge`, `radar`, on top of `state`) follows the same rule: results are
//! computed in memory, and refs move only by compare-and-swap once nothing can fail any more.
//!
//! And every change of several steps survives `kill -9` at any instant: it writes an intent record
//! (`intent`) before its first step, and [`intent::recover`] finishes or undoes whatever a killed
//! server left, before a new one serves that repository. Checkouts of a worktree (`checkout`)
//! stage every file first and change each path by one rename, so a half-done one can be told
//! apart and completed or put back.

mod adopt;
mod branches;
mod checkout;
mod copy;
mod diff;
mod fork;
mod identity;
pub mod intent;
#[cfg(test)]
mod land_tests;
mod leftovers;
mod merge;
mod queue;
mod radar;
mod state;
#[cfg(test)]
mod tests;
mod worktree;

pub use adopt::{Adoptable, adoptable_worktree};
pub use branches::local_branches;
pub use copy::copy_untracked;
pub use diff::{DiffStat, agent_patch, agent_stat};
pub use fork::{backup_branch, fork_point};
pub use identity::{Identity, identity_env};
pub use intent::{NewAgentStep, Recovered, Step};
pub use leftovers::{
    Base, Cleaned, GcSpec, Leftover, LeftoverKind, Owned, clean_leftover, find_leftovers,
};
pub use merge::{
    How, LandError, LandSpec, Landed, MergeMode, SyncSpec, Synced, Traps, land, sync, traps,
};
pub use queue::{
    GatedLanding, GatedSpec, QueueLock, ResolvePath, Resolving, conflict_subjects, land_gated,
    load_queue, lock_queue, prepare, resolve_into_worktree, save_queue,
};
pub use radar::{AgentReport, Conflict, Radar, RadarAgent};
pub use worktree::*;
