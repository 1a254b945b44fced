//! Moving a worktree and its checked-out branch from one commit to another (the base's worktree in
//! `merge`, the agent's in `sync` and after a squash or rebase), limited to the paths the move
//! changes, so that whatever else is in the worktree (the user's staged, unstaged, untracked and
//! ignored files) stays exactly as it was.
//!
//! Built so that a kill at any instant can be told apart and undone:
//! 1. Everything is checked and computed first; nothing happens when someone's own changes are in
//!    the way.
//! 2. An intent record (`Step::Checkout`) names the worktree, the ref and both commits.
//! 3. The new files are written by libgit2 (with the repository's filters) into a staging
//!    directory inside the worktree, and each file about to be replaced or deleted gets a
//!    pre-image there (a hard link, or a copy). The record is written again with each path's
//!    identity before and after (blob id of the bytes on disk, and mode).
//! 4. Only then are the worktree's files changed, each by one rename (or one unlink), then the
//!    index entries of those paths, then the ref by compare-and-swap.
//!
//! Recovery ([`resolve`]) reads where the ref is: moved, the files and index are completed to the
//! new commit; not moved, they are put back. Each path is touched only while it holds one of the
//! two identities the record names (or nothing), so a file someone changed after the crash is left
//! alone and reported. The same routine undoes a checkout whose ref update fails.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{
    ErrorCode, IndexEntry, IndexTime, ObjectType, Oid, Repository, Status, StatusOptions, Tree,
};
use serde::{Deserialize, Serialize};

use super::intent::{self, Intent, Step};
use super::merge::check_head;
use super::worktree::remove_tree;
use super::{GitError, LandError, open};
use crate::failpoint;

/// What is at a path, as git would hash it without filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub id: String,
    pub mode: u32,
}

/// One path a checkout changes: its identity before (`None`: no file) and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathState {
    pub path: String,
    pub old: Option<FileId>,
    pub new: Option<FileId>,
}

fn gerr(what: impl Into<String>) -> impl FnOnce(git2::Error) -> LandError {
    LandError::git(what)
}

fn ioerr(what: impl Into<String>) -> impl FnOnce(io::Error) -> LandError {
    let what = what.into();
    move |source| LandError::Git(GitError::Io { what, source })
}

/// The identity of what is at `path`: `None` when nothing (or a directory) is there.
fn on_disk(path: &Path) -> io::Result<Option<FileId>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
            // ENOTDIR: a file sits where a parent directory would be.
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path)?;
        let id = Oid::hash_object(ObjectType::Blob, target.as_os_str().as_bytes())
            .map_err(io::Error::other)?;
        return Ok(Some(FileId { id: id.to_string(), mode: 0o120000 }));
    }
    if !meta.is_file() {
        return Ok(None);
    }
    let id = Oid::hash_file(ObjectType::Blob, path).map_err(io::Error::other)?;
    let mode = if meta.permissions().mode() & 0o111 != 0 { 0o100755 } else { 0o100644 };
    Ok(Some(FileId { id: id.to_string(), mode }))
}

/// Whether `tree` has a file (blob or symlink) at `path`.
fn has_file(tree: &Tree<'_>, path: &str) -> bool {
    tree.get_path(Path::new(path)).is_ok_and(|e| e.kind() == Some(ObjectType::Blob))
}

/// Paths that differ between two trees (no rename detection: both names of a rename count).
pub(super) fn changed_paths(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), None)?;
    let mut out = BTreeSet::new();
    for d in diff.deltas() {
        for f in [d.old_file(), d.new_file()] {
            if let Some(p) = f.path_bytes() {
                out.insert(String::from_utf8_lossy(p).into_owned());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Which of `paths` the worktree `repo` has its own changes to: staged, unstaged, untracked or
/// ignored files, files sitting where the new tree needs a directory, and anything inside a
/// directory where the new tree needs a file (beyond the tracked files the move deletes).
pub(super) fn changes_in_the_way(
    repo: &Repository,
    paths: &[String],
) -> Result<Vec<String>, git2::Error> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(true)
        .recurse_ignored_dirs(true)
        .exclude_submodules(true)
        // Exact paths: libgit2 then walks only these, not the whole worktree.
        .disable_pathspec_match(true);
    for p in paths {
        opts.pathspec(p);
    }
    let mut out = BTreeSet::new();
    for e in repo.statuses(Some(&mut opts))?.iter() {
        if e.status() != Status::CURRENT {
            out.insert(String::from_utf8_lossy(e.path_bytes()).into_owned());
        }
    }
    if let Some(root) = repo.workdir() {
        let set: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
        for p in paths {
            let mut dir = Path::new(p.as_str()).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                let is_file = fs::symlink_metadata(root.join(d)).is_ok_and(|m| !m.is_dir());
                if is_file && !set.contains(d.to_string_lossy().as_ref()) {
                    out.insert(d.to_string_lossy().into_owned());
                }
                dir = d.parent();
            }
            // A directory where a path of the move is: whatever is in it that the move does not
            // delete would be in the way of the file that goes there.
            let full = root.join(p);
            // A submodule's directory is its own repository's business, as in git.
            let nested = fs::symlink_metadata(full.join(".git")).is_ok();
            if !nested && fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                let mut stack = vec![full];
                while let Some(d) = stack.pop() {
                    let Ok(entries) = fs::read_dir(&d) else { continue };
                    for e in entries.flatten() {
                        let path = e.path();
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            stack.push(path);
                            continue;
                        }
                        let rel = path.strip_prefix(root).unwrap_or(&path);
                        let rel = rel.to_string_lossy().into_owned();
                        if !set.contains(rel.as_str()) {
                            out.insert(rel);
                        }
                    }
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Move `refname`, checked out in the worktree at `path`, from `old` to `new`: first bring that
/// worktree's files and index to `new` for exactly the paths that differ, keeping everything else
/// there, then compare-and-swap the ref. Nothing changes when someone's own changes are in the
/// way; the files are put back when the ref moved under us.
pub(super) fn advance_worktree(
    path: &Path,
    refname: &str,
    old: Oid,
    new: Oid,
    who: &str,
    what: &str,
    log: &str,
) -> Result<(), LandError> {
    let wt = open(path)?;
    check_head(&wt, refname, who)?;
    let doing = format!("updating {}", path.display());
    let trees = (|| Ok((wt.find_commit(old)?.tree()?, wt.find_commit(new)?.tree()?)))();
    let (old_tree, new_tree) = trees.map_err(gerr(doing.clone()))?;
    let paths = changed_paths(&wt, &old_tree, &new_tree).map_err(gerr(doing.clone()))?;
    let in_the_way = changes_in_the_way(&wt, &paths).map_err(gerr(doing.clone()))?;
    if !in_the_way.is_empty() {
        return Err(LandError::Blocked { who: who.into(), what: what.into(), paths: in_the_way });
    }
    let short = refname.trim_start_matches("refs/heads/").to_string();
    let moved_under_us = |e: git2::Error| {
        if e.code() == ErrorCode::Modified {
            LandError::Refused(format!(
                "{short} moved while corral was updating it (a commit made meanwhile?); nothing was changed, try again"
            ))
        } else {
            LandError::git(format!("moving {short}"))(e)
        }
    };
    if paths.is_empty() {
        // Only the ref moves: one step, nothing to record.
        return wt
            .reference_matching(refname, new, true, old, log)
            .map(|_| ())
            .map_err(moved_under_us);
    }
    let Some(root) = wt.workdir().map(Path::to_path_buf) else {
        return Err(LandError::Refused(format!("{} has no working tree", path.display())));
    };
    let common = wt.commondir().to_path_buf();
    let mut intent = Intent::new(Step::Checkout {
        worktree: root.clone(),
        refname: refname.to_string(),
        old: old.to_string(),
        new: new.to_string(),
        staging: PathBuf::new(),
        staged: None,
    });
    let staging = root.join(format!(".corral-checkout-{}", intent.id));
    if let Step::Checkout { staging: s, .. } = &mut intent.step {
        *s = staging.clone();
    }
    intent::save(&common, &intent)?;
    failpoint::hit("checkout:planned");

    let states = match stage(&wt, &root, &staging, &old_tree, &new_tree, &paths) {
        Ok(s) => s,
        Err(e) => {
            let _ = remove_tree(&staging);
            intent::clear(&common, &intent.id);
            return Err(e);
        }
    };
    if let Step::Checkout { staged, .. } = &mut intent.step {
        *staged = Some(states.clone());
    }
    if let Err(e) = intent::save(&common, &intent) {
        let _ = remove_tree(&staging);
        intent::clear(&common, &intent.id);
        return Err(e.into());
    }
    failpoint::hit("checkout:staged");

    // Apply; anything that goes wrong from here on is undone by the recovery routine itself.
    let undo = |why: LandError| -> LandError {
        let left = settle(&root, &staging, &states, false);
        let indexed = set_index(&wt, &root, &old_tree, &paths);
        if left.is_empty() && indexed.is_ok() {
            let _ = remove_tree(&staging);
            intent::clear(&common, &intent.id);
        } else {
            // The record stays: the next start tries again.
            tracing::warn!("could not put back {}: {left:?} {indexed:?}", root.display());
        }
        why
    };
    let left = settle(&root, &staging, &states, true);
    if !left.is_empty() {
        return Err(undo(LandError::Blocked {
            who: who.into(),
            what: what.into(),
            paths: left.into_iter().map(|(p, _)| p).collect(),
        }));
    }
    failpoint::hit("checkout:files");
    if let Err(e) = set_index(&wt, &root, &new_tree, &paths) {
        return Err(undo(gerr(format!("writing the index of {}", root.display()))(e)));
    }
    failpoint::hit("checkout:index");
    if let Err(e) = wt.reference_matching(refname, new, true, old, log) {
        return Err(undo(moved_under_us(e)));
    }
    failpoint::hit("checkout:ref");
    if let Err(e) = remove_tree(&staging) {
        tracing::warn!("cannot remove {}: {e}", staging.display());
    }
    intent::clear(&common, &intent.id);
    Ok(())
}

/// Put the new files and the old ones' pre-images into `staging`; touch nothing else.
fn stage(
    wt: &Repository,
    root: &Path,
    staging: &Path,
    old_tree: &Tree<'_>,
    new_tree: &Tree<'_>,
    paths: &[String],
) -> Result<Vec<PathState>, LandError> {
    let new_dir = staging.join("new");
    let old_dir = staging.join("old");
    fs::create_dir(staging).map_err(ioerr(format!("creating {}", staging.display())))?;
    fs::create_dir(&new_dir).map_err(ioerr(format!("creating {}", new_dir.display())))?;
    let new_files: Vec<&String> = paths.iter().filter(|p| has_file(new_tree, p)).collect();
    if !new_files.is_empty() {
        let mut co = CheckoutBuilder::new();
        co.force().update_index(false).target_dir(&new_dir).disable_pathspec_match(true);
        for p in &new_files {
            co.path(p.as_str());
        }
        wt.checkout_tree(new_tree.as_object(), Some(&mut co))
            .map_err(gerr(format!("writing the new files of {}", root.display())))?;
    }
    let mut states = Vec::with_capacity(paths.len());
    for p in paths {
        let staged_new = if has_file(new_tree, p) {
            let id = on_disk(&new_dir.join(p)).map_err(ioerr(format!("reading staged {p}")))?;
            if id.is_none() {
                return Err(LandError::Refused(format!(
                    "libgit2 did not write {p} for the checkout of {}; nothing was changed",
                    root.display()
                )));
            }
            id
        } else {
            None
        };
        let current = root.join(p);
        let old = if has_file(old_tree, p) {
            on_disk(&current).map_err(ioerr(format!("reading {}", current.display())))?
        } else {
            None
        };
        if old.is_some() {
            let keep = old_dir.join(p);
            if let Some(parent) = keep.parent() {
                fs::create_dir_all(parent)
                    .map_err(ioerr(format!("creating {}", parent.display())))?;
            }
            preimage(&current, &keep).map_err(ioerr(format!("keeping {}", current.display())))?;
        }
        states.push(PathState { path: p.clone(), old, new: staged_new });
    }
    Ok(states)
}

/// A second name for the file at `from` (or a copy where hard links are not possible).
fn preimage(from: &Path, to: &Path) -> io::Result<()> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else {
        fs::copy(from, to).map(|_| ())
    }
}

/// Remove `dir` and its parents up to `root` while they are empty.
fn prune_empty(root: &Path, mut dir: Option<&Path>) {
    while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
        if fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Bring every path of `states` to its new identity (`forward`) or its old one, taking the files
/// from `staging`. Removals go first (a directory may have to become a file), then the renames.
/// A path holding neither identity was changed by someone else: it is left alone and returned.
fn settle(
    root: &Path,
    staging: &Path,
    states: &[PathState],
    forward: bool,
) -> Vec<(String, String)> {
    let source = staging.join(if forward { "new" } else { "old" });
    let mut left = Vec::new();
    let mut pending = Vec::new();
    for s in states {
        let (want, other) = if forward { (&s.new, &s.old) } else { (&s.old, &s.new) };
        let full = root.join(&s.path);
        let cur = match on_disk(&full) {
            Ok(c) => c,
            Err(e) => {
                left.push((s.path.clone(), e.to_string()));
                continue;
            }
        };
        if cur == *want {
            continue;
        }
        if cur.is_some() && cur != *other {
            left.push((s.path.clone(), "changed by someone else".into()));
            continue;
        }
        match want {
            None => {
                if let Err(e) = fs::remove_file(&full)
                    && e.kind() != io::ErrorKind::NotFound
                {
                    left.push((s.path.clone(), e.to_string()));
                    continue;
                }
                prune_empty(root, full.parent());
                failpoint::hit("checkout:step");
            }
            Some(_) => pending.push(s),
        }
    }
    for s in pending {
        let full = root.join(&s.path);
        let from = source.join(&s.path);
        let put = (|| -> io::Result<()> {
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            if fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                // Emptied by the removals above; a directory still holding something stays.
                fs::remove_dir(&full)?;
            }
            fs::rename(&from, &full)
        })();
        match put {
            Ok(()) => failpoint::hit("checkout:step"),
            Err(e) => left.push((s.path.clone(), e.to_string())),
        }
    }
    left
}

/// Set the index entries of `paths` to what `tree` has there (stat data from the file on disk
/// when it holds exactly that, so `git status` need not read it again); other entries stay.
fn set_index(
    wt: &Repository,
    root: &Path,
    tree: &Tree<'_>,
    paths: &[String],
) -> Result<(), git2::Error> {
    let mut index = wt.index()?;
    index.read(true)?;
    for p in paths {
        let entry = match tree.get_path(Path::new(p)) {
            Ok(e) if matches!(e.kind(), Some(ObjectType::Blob) | Some(ObjectType::Commit)) => e,
            _ => {
                match index.remove_path(Path::new(p)) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::NotFound => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
        };
        let mode = entry.filemode() as u32;
        let full = root.join(p);
        let meta = fs::symlink_metadata(&full).ok();
        let same = on_disk(&full)
            .ok()
            .flatten()
            .is_some_and(|d| d.id == entry.id().to_string() && d.mode == mode);
        let zero = IndexTime::new(0, 0);
        // The index stores these fields truncated to 32 bits, as git does.
        let time = |secs: i64, nanos: i64| IndexTime::new(secs as i32, nanos as u32);
        let e = match meta.filter(|_| same) {
            Some(m) => IndexEntry {
                ctime: time(m.ctime(), m.ctime_nsec()),
                mtime: time(m.mtime(), m.mtime_nsec()),
                dev: m.dev() as u32,
                ino: m.ino() as u32,
                mode,
                uid: m.uid(),
                gid: m.gid(),
                file_size: m.len() as u32,
                id: entry.id(),
                flags: 0,
                flags_extended: 0,
                path: p.as_bytes().to_vec(),
            },
            None => IndexEntry {
                ctime: zero,
                mtime: zero,
                dev: 0,
                ino: 0,
                mode,
                uid: 0,
                gid: 0,
                file_size: 0,
                id: entry.id(),
                flags: 0,
                flags_extended: 0,
                path: p.as_bytes().to_vec(),
            },
        };
        index.add(&e)?;
    }
    index.write()
}

/// Finish or undo an interrupted checkout (see the module's doc). Returns notes for the user.
pub(super) fn resolve(_common: &Path, intent: &Intent) -> Result<Vec<String>, LandError> {
    let Step::Checkout { worktree, refname, old, new, staging, staged } = &intent.step else {
        return Ok(Vec::new());
    };
    // Only ever a staging directory of ours, directly in that worktree, whatever the record says.
    let ours = staging.parent() == Some(worktree.as_path())
        && staging
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".corral-checkout-"));
    let cleanup = || {
        if ours && let Err(e) = remove_tree(staging) {
            tracing::warn!("cannot remove {}: {e}", staging.display());
        }
    };
    let Some(states) = staged else {
        // Nothing in the worktree was touched yet.
        cleanup();
        return Ok(Vec::new());
    };
    if !worktree.is_dir() {
        return Ok(vec![format!(
            "{} is gone; an interrupted update of it could not be finished",
            worktree.display()
        )]);
    }
    let wt = open(worktree)?;
    let head = wt
        .find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target().ok().flatten().map(String::from));
    if head.as_deref() != Some(refname.as_str()) {
        cleanup();
        return Ok(vec![format!(
            "{} no longer has {} checked out; an interrupted update of its files was left as it is",
            worktree.display(),
            refname.trim_start_matches("refs/heads/")
        )]);
    }
    let id = |s: &str| Oid::from_str(s).map_err(gerr("reading an intent record"));
    let (old, new) = (id(old)?, id(new)?);
    let now = wt.find_reference(refname).ok().and_then(|r| r.target());
    // Only a ref that reached `new` completes the move; anything else puts the files back.
    let forward = now == Some(new);
    let target = if forward { new } else { old };
    let tree =
        wt.find_commit(target).and_then(|c| c.tree()).map_err(gerr(format!("reading {target}")))?;
    let left = settle(worktree, staging, states, forward);
    let paths: Vec<String> = states.iter().map(|s| s.path.clone()).collect();
    set_index(&wt, worktree, &tree, &paths)
        .map_err(gerr(format!("writing the index of {}", worktree.display())))?;
    failpoint::hit("recover:checkout");
    cleanup();
    let mut notes = Vec::new();
    if !left.is_empty() {
        notes.push(format!(
            "{}: left as they are after an interrupted update to {}: {}",
            worktree.display(),
            &target.to_string()[..12],
            left.iter().map(|(p, why)| format!("{p} ({why})")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(notes)
}

/// The state a kill leaves after `applied` of a checkout's paths were changed in the worktree (the
/// index and ref not yet): for tests of [`resolve`].
#[cfg(test)]
pub(super) fn interrupt_for_test(path: &Path, refname: &str, old: &str, new: &str, applied: usize) {
    #![allow(clippy::unwrap_used)]
    let wt = open(path).unwrap();
    let root = wt.workdir().unwrap().to_path_buf();
    let (old, new) = (Oid::from_str(old).unwrap(), Oid::from_str(new).unwrap());
    let old_tree = wt.find_commit(old).unwrap().tree().unwrap();
    let new_tree = wt.find_commit(new).unwrap().tree().unwrap();
    let paths = changed_paths(&wt, &old_tree, &new_tree).unwrap();
    let staging = root.join(".corral-checkout-test");
    let states = stage(&wt, &root, &staging, &old_tree, &new_tree, &paths).unwrap();
    intent::record(
        wt.commondir(),
        Step::Checkout {
            worktree: root.clone(),
            refname: refname.into(),
            old: old.to_string(),
            new: new.to_string(),
            staging: staging.clone(),
            staged: Some(states.clone()),
        },
    )
    .unwrap();
    assert!(settle(&root, &staging, &states[..applied], true).is_empty());
}
