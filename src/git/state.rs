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

use git2::{Index, IndexAddOption, Odb, Oid, Repository};

/// Stage everything in `worktree` into `index` the way `git add -A` does: new and modified files
/// (ignored ones stay out) and deletions. Nested repositories (an agent's own clone, a `git init`)
/// stay untracked: libgit2 cannot stage them and a gitlink without .gitmodules is not what anyone
/// wants landed.
pub(super) fn stage_all(worktree: &Path, index: &mut Index) -> Result<(), git2::Error> {
    let mut skip_nested = |path: &Path, _: &[u8]| -> i32 {
        let nested = worktree.join(path).join(".git");
        i32::from(fs::symlink_metadata(nested).is_ok())
    };
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip_nested))?;
    index.update_all(["*"], None)
}

/// The tree of everything in the worktree `repo` was opened at, and the index that describes it
/// (in memory only: writing it is the caller's decision). Blobs and trees are written through the
/// repository's object database.
pub(super) fn worktree_state(repo: &Repository) -> Result<(Index, Oid), git2::Error> {
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Err(git2::Error::from_str("the repository has no working tree"));
    };
    let mut index = repo.index()?;
    // The repository keeps one index object; whatever an earlier call staged in memory goes.
    index.read(true)?;
    stage_all(&workdir, &mut index)?;
    let tree = index.write_tree()?;
    Ok((index, tree))
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
