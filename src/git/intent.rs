//! Intent records: what a change of several steps is about to do, written before its first step,
//! so that the server started after a crash can finish it or undo it.
//!
//! One file per change in `<common dir>/corral/intents/<id>.json`, written atomically (temporary
//! name, fsync, rename, fsync of the directory) and removed once the change is complete and
//! everything that depends on it (the agent records) is saved. Which steps exist is [`Step`]; each
//! step's own module says how it is resolved, and [`recover`] resolves every record it finds, in
//! an order where a record never depends on one resolved after it: worktree checkouts first (each
//! decided by where its ref is), then the merges around them, then `new` and `rm`.
//!
//! Resolving is idempotent: a server killed during recovery finds the same records again and
//! comes to the same decisions. A new kind of multi-step change (the landing queue's steps) adds a
//! variant to [`Step`] and its resolution to [`recover`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::checkout::{self, PathState};
use super::merge::{self, RepoLock};
use super::{GitError, LandError, io_err, open};
use crate::failpoint;

/// One agent a `new` is creating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAgentStep {
    pub name: String,
    pub branch: String,
    pub worktree: PathBuf,
    /// The commit the branch starts at: a branch still there is ours to delete.
    pub base_commit: String,
}

/// A change of several steps, as recorded before its first step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `new`: a worktree, a branch and (kept by the server) a record per agent. Recovery keeps the
    /// agents whose record was saved and removes everything of the others.
    New { agents: Vec<NewAgentStep> },
    /// `rm`, once the agent's uncommitted work is committed: the worktree and admin dir go, the
    /// branch too unless `keep_branch`, then the record. Recovery finishes it. `backed_up`: the
    /// branch's tip is kept under refs/corral/backup/ (an agent not picked from its group), so
    /// the branch goes even with commits the base lacks.
    Remove {
        name: String,
        branch: String,
        worktree: PathBuf,
        base: String,
        keep_branch: bool,
        #[serde(default)]
        backed_up: bool,
    },
    /// `merge`: the snapshot of the agent's uncommitted work on its branch, the base's move (with
    /// its own `Checkout` when the base is checked out), then the agent's branch following the
    /// base (squash, rebase). Recovery finishes it when the base moved, else undoes the snapshot.
    Land {
        agent: String,
        agent_worktree: PathBuf,
        agent_ref: String,
        old_tip: String,
        snapshot: Option<String>,
        base_ref: String,
        base_old: String,
        base_new: String,
        follow: bool,
    },
    /// A worktree and its checked-out branch moving from `old` to `new`: files, index, ref.
    /// Recovery completes the files and index when the ref moved, else restores them.
    Checkout {
        worktree: PathBuf,
        refname: String,
        old: String,
        new: String,
        /// Where the new files and the old ones' pre-images wait, inside the worktree.
        staging: PathBuf,
        /// Each path's identity before and after; `None` until everything is staged (before that,
        /// no file of the worktree has been touched).
        staged: Option<Vec<PathState>>,
    },
}

impl Step {
    fn order(&self) -> u8 {
        match self {
            Step::Checkout { .. } => 0,
            Step::Land { .. } => 1,
            Step::New { .. } => 2,
            Step::Remove { .. } => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    #[serde(flatten)]
    pub step: Step,
}

fn dir(common_dir: &Path) -> PathBuf {
    common_dir.join("corral").join("intents")
}

/// A side file of an intent (a copy of an index it may have to put back).
pub(super) fn side_file(common_dir: &Path, id: &str, what: &str) -> PathBuf {
    dir(common_dir).join(format!("{id}.{what}"))
}

/// Ids sort in the order records were made.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}-{}-{n}", std::process::id())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `bytes` to `path` so that a crash leaves the old file or the new one, durably.
pub(super) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path.parent().ok_or_else(|| io::Error::other("no parent directory"))?;
    fs::create_dir_all(parent)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    sync_dir(parent)
}

impl Intent {
    /// A record with a fresh id (which can name the step's own files), not yet written.
    pub(super) fn new(step: Step) -> Intent {
        Intent { id: new_id(), step }
    }
}

/// Record `step` before its first change; returns the record, whose id names it from now on.
pub fn record(common_dir: &Path, step: Step) -> Result<Intent, GitError> {
    let intent = Intent::new(step);
    save(common_dir, &intent)?;
    Ok(intent)
}

/// Write `intent` again (a step that learned more, like the staged paths of a checkout).
pub(super) fn save(common_dir: &Path, intent: &Intent) -> Result<(), GitError> {
    let path = dir(common_dir).join(format!("{}.json", intent.id));
    let json = serde_json::to_vec_pretty(intent).map_err(io::Error::other);
    json.and_then(|j| write_durably(&path, &j))
        .map_err(io_err(format!("writing {}", path.display())))
}

/// The change is complete: forget its record and side files. A record that stays (the removal
/// failed) is only resolved again, which changes nothing.
pub fn clear(common_dir: &Path, id: &str) {
    let d = dir(common_dir);
    let Ok(entries) = fs::read_dir(&d) else { return };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            name.to_string_lossy().strip_prefix(id).is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|e| e.path())
        .collect();
    // The record itself last: while it exists, its side files are found and cleared again.
    files.sort_by_key(|p| p.extension().is_some_and(|x| x == "json"));
    for f in files {
        if let Err(err) = fs::remove_file(&f) {
            tracing::warn!("cannot remove {}: {err}", f.display());
        }
    }
}

/// Every record in the repository, in the order they must be resolved.
pub fn pending(common_dir: &Path) -> Result<Vec<Intent>, GitError> {
    let d = dir(common_dir);
    let entries = match fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("reading {}", d.display()))(e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            // A record whose write never finished: its change never started.
            let _ = fs::remove_file(&path);
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        match serde_json::from_slice::<Intent>(&bytes) {
            Ok(i) => out.push(i),
            Err(e) => tracing::warn!("ignoring {}: not an intent record: {e}", path.display()),
        }
    }
    out.sort_by(|a, b| (a.step.order(), &a.id).cmp(&(b.step.order(), &b.id)));
    Ok(out)
}

/// What recovery did in one repository.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Records resolved; the caller clears them (with [`clear`]) once it saved its own state.
    pub resolved: Vec<String>,
    /// Agents whose removal was finished: their records go.
    pub forget: Vec<String>,
    /// What the user should know (work kept under backup refs, files left as someone changed
    /// them).
    pub notes: Vec<String>,
}

/// Finish or undo every change recorded in the repository at `root`. `listed` says whether the
/// agent of that name and worktree has a saved record (a `new` that got that far is kept).
/// Runs under the repository's landing lock, so no merge or sync interleaves.
pub fn recover(root: &Path, listed: &dyn Fn(&str, &Path) -> bool) -> Result<Recovered, LandError> {
    let repo = open(root)?;
    let common = repo.commondir().to_path_buf();
    let mut out = Recovered::default();
    let intents = pending(&common)?;
    sweep_trash(&common);
    if intents.is_empty() {
        return Ok(out);
    }
    let _lock = RepoLock::acquire(&common)?;
    failpoint::hit("recover:begin");
    for intent in intents {
        tracing::info!("recovering {} in {}: {:?}", intent.id, root.display(), intent.step);
        let result = match &intent.step {
            Step::Checkout { .. } => checkout::resolve(&common, &intent),
            Step::Land { .. } => merge::resolve_land(&common, &intent),
            Step::New { agents } => {
                let mut notes = Vec::new();
                for a in agents {
                    if !listed(&a.name, &a.worktree) {
                        notes.extend(super::worktree::undo_new_agent(root, a)?);
                    }
                }
                Ok(notes)
            }
            Step::Remove { name, branch, worktree, base, keep_branch, backed_up } => {
                match super::worktree::finish_remove(
                    root,
                    name,
                    branch,
                    worktree,
                    base,
                    *keep_branch,
                )
                .and_then(|notes| {
                    if *backed_up && super::worktree::branch_exists(root, branch)? {
                        super::worktree::delete_branch(root, branch)?;
                    }
                    Ok(notes)
                }) {
                    Ok(notes) => {
                        out.forget.push(name.clone());
                        Ok(notes)
                    }
                    Err(e) => Ok(vec![format!("could not finish removing agent '{name}': {e}")]),
                }
            }
        };
        match result {
            Ok(notes) => out.notes.extend(notes),
            Err(e) => {
                // Left for the next start rather than decided wrongly.
                tracing::warn!("cannot recover {} in {}: {e}", intent.id, root.display());
                out.notes.push(format!("an interrupted change could not be finished yet: {e}"));
                continue;
            }
        }
        failpoint::hit("recover:resolved");
        out.resolved.push(intent.id);
    }
    Ok(out)
}

/// Directories a removal renamed out of the way before deleting them.
pub(super) fn trash_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("corral").join("trash")
}

fn sweep_trash(common_dir: &Path) {
    let d = trash_dir(common_dir);
    let Ok(entries) = fs::read_dir(&d) else { return };
    for e in entries.flatten() {
        if let Err(err) = super::worktree::remove_tree(&e.path()) {
            tracing::warn!("cannot remove {}: {err}", e.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_in_resolution_order_and_clear_takes_side_files() {
        let tmp = tempfile::tempdir().unwrap();
        let common = tmp.path();
        let rm = record(
            common,
            Step::Remove {
                name: "a".into(),
                branch: "corral/a".into(),
                worktree: "/w/a".into(),
                base: "main".into(),
                keep_branch: false,
                backed_up: false,
            },
        )
        .unwrap();
        let co = record(
            common,
            Step::Checkout {
                worktree: "/r".into(),
                refname: "refs/heads/main".into(),
                old: "1".into(),
                new: "2".into(),
                staging: "/r/.s".into(),
                staged: None,
            },
        )
        .unwrap();
        fs::write(side_file(common, &co.id, "index"), b"x").unwrap();
        // A record whose write was cut short is not a record.
        fs::write(dir(common).join(".half.json.tmp"), b"{").unwrap();
        let got = pending(common).unwrap();
        assert_eq!(got, vec![co.clone(), rm.clone()]);
        clear(common, &co.id);
        assert_eq!(pending(common).unwrap(), vec![rm]);
        let left: Vec<_> = fs::read_dir(dir(common)).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
