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

use git2::{Delta, DiffOptions, Index, IndexEntry, IndexTime, Odb, Oid, Repository};

/// Stage everything in the worktree `repo` was opened at into `index` the way `git add -A` does:
/// new and modified files (ignored ones stay out) and deletions. Nested repositories (an agent's
/// own clone, a `git init`) stay untracked: libgit2 cannot stage them and a gitlink without
/// .gitmodules is not what anyone wants landed.
///
/// One pass over the worktree (libgit2's `add_all` then `update_all` make two), and only the files
/// whose stat data differs from `index` are read.
///
/// Files larger than `max_file` are not read: a small stand-in blob takes their place (the radar
/// must not hold a copy of every huge file an agent writes). Returns the bytes read.
pub(super) fn stage_all(
    repo: &Repository,
    index: &mut Index,
    max_file: Option<u64>,
) -> Result<u64, git2::Error> {
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
    let mut read = 0;
    for p in add {
        let meta = fs::symlink_metadata(workdir.join(&p)).ok();
        match meta {
            Some(m) if m.is_file() && max_file.is_some_and(|max| m.len() > max) => {
                add_stand_in(repo, index, &p, &m)?;
            }
            _ => {
                index.add_path(&p)?;
                read += meta.map_or(0, |m| m.len());
            }
        }
    }
    Ok(read)
}

/// Stage a stand-in for a file too large to read, with the file's stat data so that the next pass
/// sees it unchanged until it changes.
fn add_stand_in(
    repo: &Repository,
    index: &mut Index,
    path: &Path,
    meta: &fs::Metadata,
) -> Result<(), git2::Error> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let id = repo.blob(format!("corral: {} bytes, not read\n", meta.len()).as_bytes())?;
    // The index stores these fields truncated to 32 bits, as git does.
    let time = |secs: i64, nanos: i64| IndexTime::new(secs as i32, nanos as u32);
    let entry = IndexEntry {
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        mode: if meta.mode() & 0o111 != 0 { 0o100755 } else { 0o100644 },
        uid: meta.uid(),
        gid: meta.gid(),
        file_size: meta.len() as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_os_str().as_bytes().to_vec(),
    };
    index.add(&entry)
}

/// The tree of everything in the worktree `repo` was opened at, and the index that describes it
/// (in memory only: writing it is the caller's decision). Blobs and trees are written through the
/// repository's object database.
pub(super) fn worktree_state(repo: &Repository) -> Result<(Index, Oid), git2::Error> {
    let mut index = repo.index()?;
    // The repository keeps one index object; whatever an earlier call staged in memory goes.
    index.read(true)?;
    stage_all(repo, &mut index, None)?;
    let tree = index.write_tree()?;
    Ok((index, tree))
}

/// [`worktree_state`] for a caller that reads the same worktree again and again (the radar): the
/// index is read from disk only when it changed there, and otherwise keeps what the last call
/// staged in memory, so only files changed since then are read. Never written.
/// Files over `max_file` get a stand-in; returns the tree and the bytes read.
pub(super) fn worktree_state_again(
    repo: &Repository,
    max_file: u64,
) -> Result<(Oid, u64), git2::Error> {
    let mut index = repo.index()?;
    index.read(false)?;
    let read = stage_all(repo, &mut index, Some(max_file))?;
    Ok((index.write_tree()?, read))
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
