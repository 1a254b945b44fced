//! A worktree's state as a tree: what `git add -A && git write-tree` would produce (tracked changes
//! and untracked files, ignored ones left out), computed on an in-memory copy of its index so the
//! agent's own staging is never touched. Diff stats, the conflict radar, `corral diff` and merges
//! all compare these trees.
//!
//! Where the objects go is the caller's choice: a merge needs them in the repository (they become a
//! commit), while the radar and `diff` write them into a [`scratch_odb`] that lives in memory, so
//! watching an agent work leaves no loose objects behind.

use std::fs;
use std::path::Path;

use git2::{Delta, DiffOptions, Index, Odb, Oid, Repository};

/// Stage everything in the worktree `repo` was opened at into `index` the way `git add -A` does:
/// new and modified files (ignored ones stay out) and deletions. Nested repositories (an agent's
/// own clone, a `git init`) stay untracked: libgit2 cannot stage them and a gitlink without
/// .gitmodules is not what anyone wants landed.
///
/// One pass over the worktree (libgit2's `add_all` then `update_all` make two), and only the files
/// whose stat data differs from `index` are read.
pub(super) fn stage_all(repo: &Repository, index: &mut Index) -> Result<(), git2::Error> {
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Err(git2::Error::from_str("the repository has no working tree"));
    };
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_typechange(true)
        .ignore_submodules(true);
    let diff = repo.diff_index_to_workdir(Some(index), Some(&mut opts))?;
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path().or_else(|| d.old_file().path()) else { continue };
        match d.status() {
            Delta::Deleted => remove.push(path.to_path_buf()),
            Delta::Modified
            | Delta::Typechange
            | Delta::Untracked
            | Delta::Added
            | Delta::Renamed
            | Delta::Copied
            | Delta::Conflicted => {
                let full = workdir.join(path);
                // A nested repository shows as an untracked directory.
                let dir = fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir());
                if dir || fs::symlink_metadata(full.join(".git")).is_ok() {
                    continue;
                }
                add.push(path.to_path_buf());
            }
            _ => {}
        }
    }
    drop(diff);
    for p in remove {
        index.remove_path(&p)?;
    }
    for p in add {
        index.add_path(&p)?;
    }
    Ok(())
}

/// The tree of everything in the worktree `repo` was opened at, and the index that describes it
/// (in memory only: writing it is the caller's decision). Blobs and trees are written through the
/// repository's object database.
pub(super) fn worktree_state(repo: &Repository) -> Result<(Index, Oid), git2::Error> {
    let mut index = repo.index()?;
    // The repository keeps one index object; whatever an earlier call staged in memory goes.
    index.read(true)?;
    stage_all(repo, &mut index)?;
    let tree = index.write_tree()?;
    Ok((index, tree))
}

/// [`worktree_state`] for a caller that reads the same worktree again and again (the radar): the
/// index is read from disk only when it changed there, and otherwise keeps what the last call
/// staged in memory, so only files changed since then are read. Never written.
pub(super) fn worktree_state_again(repo: &Repository) -> Result<Oid, git2::Error> {
    let mut index = repo.index()?;
    index.read(false)?;
    stage_all(repo, &mut index)?;
    index.write_tree()
}

/// An object database that reads the repository's objects (`<common dir>/objects` and its
/// alternates) and keeps everything written to it in memory.
pub(super) fn scratch_odb(common_dir: &Path) -> Result<Odb<'static>, git2::Error> {
    let odb = Odb::new()?;
    let objects = common_dir.join("objects");
    let Some(objects) = objects.to_str() else {
        return Err(git2::Error::from_str("the object directory's path is not UTF-8"));
    };
    odb.add_disk_alternate(objects)?;
    // Above the disk backends (priorities 1 and 2), so every write lands here.
    odb.add_new_mempack_backend(1000)?;
    Ok(odb)
}
