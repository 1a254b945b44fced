//! Landing an agent's work on its base branch (SPEC §5), and bringing the base's new commits into an
//! agent (sync, SPEC §6).
//!
//! Both follow one rule: work out everything in memory first (the agent's uncommitted work as a
//! tree, the merge, squash or rebase, which of the user's files are in the way), and only then change
//! the repository, each change guarded by a compare-and-swap on the ref it moves. So a conflict, a
//! refusal or a crash before the first write leaves every ref, index and file as it was; after it,
//! backup refs (`refs/corral/backup/<agent>/<unix time>/{agent,base}`) hold both old tips, and an
//! intent record (`Step::Land`) lets the next server finish the merge when the base moved, or take
//! the snapshot back off the agent's branch when it did not ([`resolve_land`]).
//!
//! A worktree that has the moved branch checked out (the user's main worktree, usually) is brought
//! along with a checkout limited to the paths the move changes (`checkout`): the user's other
//! staged, unstaged and untracked changes stay as they were, ignored files are never overwritten,
//! and if the user's own changes touch any of those paths nothing happens at all ("commit or stash
//! these").
//!
//! Merges in one repository are serialized by a lock file in its common git dir, so two servers (or
//! a test harness and a server) never interleave.
//!
//! libgit2 does not run hooks, filter drivers (Git LFS), custom merge drivers, and cannot read a
//! split index or honour a sparse checkout. Repositories that depend on the last four are refused
//! with the reason; hooks are reported as not run.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use git2::{
    ErrorCode, Index, MergeOptions, ObjectType, Oid, RebaseOptions, Repository, RepositoryState,
    Tree, TreeWalkMode, TreeWalkResult,
};
use thiserror::Error;

use super::checkout::{advance_worktree, changed_paths, changes_in_the_way};
use super::diff::base_tip;
use super::identity::Identity;
use super::intent::{self, Intent, Step};
use super::state::worktree_state;
use super::{GitError, git_err, io_err, open, worktree_heads};
use crate::failpoint;

/// How `merge` lands the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Fast-forward when possible, else a merge commit.
    Merge,
    /// One new commit on the base with the agent's changes.
    Squash,
    /// The agent's commits replayed on the base tip (linear history).
    Rebase,
    /// Only a fast-forward; refuse otherwise.
    FfOnly,
}

/// What a merge or sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    FastForward,
    MergeCommit,
    Squash,
    Rebase,
}

impl How {
    pub fn describe(self) -> &'static str {
        match self {
            How::FastForward => "fast-forward",
            How::MergeCommit => "merge commit",
            How::Squash => "squashed into one commit",
            How::Rebase => "rebased",
        }
    }
}

#[derive(Debug, Error)]
pub enum LandError {
    /// The merge itself conflicts (exit 3). Nothing was changed.
    #[error("{what} conflicts in {}", .paths.join(", "))]
    Conflict { what: String, paths: Vec<String> },
    /// Someone's uncommitted changes are in the way of a checkout. Nothing was changed.
    #[error("{who} has changes to files the {what} would change; commit or stash these: {}", .paths.join(", "))]
    Blocked { who: String, what: String, paths: Vec<String> },
    /// Refused before changing anything, for the reason given.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Git(#[from] GitError),
}

impl LandError {
    pub(super) fn git(what: impl Into<String>) -> impl FnOnce(git2::Error) -> LandError {
        let what = what.into();
        move |source| LandError::Git(GitError::Git { what, source })
    }
}

/// What `land` needs to know about the agent.
#[derive(Debug, Clone, Copy)]
pub struct LandSpec<'a> {
    /// The main worktree's root.
    pub root: &'a Path,
    pub agent: &'a str,
    /// The agent's branch (short name).
    pub branch: &'a str,
    pub worktree: &'a Path,
    /// The branch to land on (short name).
    pub base: &'a str,
    /// The agent's first prompt, for commit messages.
    pub prompt: Option<&'a str>,
    pub mode: MergeMode,
    /// Message of the merge or squash commit, instead of the default.
    pub message: Option<&'a str>,
    /// The asking client's identity variables ([`crate::git::identity_env`]).
    pub git_env: &'a [(String, String)],
}

/// The outcome of a merge that did not fail.
#[derive(Debug, Clone)]
pub struct Landed {
    /// `None`: the base already contained all of the agent's work; nothing moved.
    pub how: Option<How>,
    pub base_before: String,
    pub base_after: String,
    /// The commit of the agent's uncommitted work, when it had some.
    pub snapshot: Option<String>,
    /// `refs/corral/backup/<agent>/<time>`, under which `agent` and `base` hold the old tips.
    pub backup: Option<String>,
    /// Things the user should know (hooks not run, the agent's worktree left behind).
    pub notes: Vec<String>,
}

/// What `sync` needs to know about the agent.
#[derive(Debug, Clone, Copy)]
pub struct SyncSpec<'a> {
    pub root: &'a Path,
    pub agent: &'a str,
    pub branch: &'a str,
    pub worktree: &'a Path,
    /// Branch, tag or commit the agent follows.
    pub base: &'a str,
    /// Replay the agent's commits on the base instead of merging the base in.
    pub rebase: bool,
    /// The asking client's identity variables ([`crate::git::identity_env`]).
    pub git_env: &'a [(String, String)],
}

#[derive(Debug, Clone)]
pub struct Synced {
    /// `None`: the agent already had every commit of the base.
    pub how: Option<How>,
    pub before: String,
    pub after: String,
    pub backup: Option<String>,
    pub notes: Vec<String>,
}

/// How long a merge waits for another one in the same repository.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The per-repository landing lock: `<common dir>/corral/land.lock`, held (flock) while a merge or
/// sync reads and moves refs. Released when dropped, or when the process dies.
pub(super) struct RepoLock {
    _file: File,
}

impl RepoLock {
    pub(super) fn acquire(common_dir: &Path) -> Result<RepoLock, LandError> {
        let dir = common_dir.join("corral");
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let path = dir.join("land.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(RepoLock { _file: file }),
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {
                    if Instant::now() >= deadline {
                        return Err(LandError::Refused(format!(
                            "another merge in this repository still holds {} after {} s",
                            path.display(),
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(io_err(format!("locking {}", path.display()))(e.into()).into());
                }
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The first non-empty line of a prompt, short enough for a commit subject.
pub(super) fn first_line(prompt: Option<&str>) -> Option<String> {
    let line = prompt?.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut out: String = line.chars().take(72).collect();
    if line.chars().count() > 72 {
        out.push('…');
    }
    Some(out)
}

/// Paths with a conflict in a merge's index, sorted, each once.
pub(super) fn conflict_paths(index: &Index) -> Result<Vec<String>, git2::Error> {
    let mut out = BTreeSet::new();
    for c in index.conflicts()? {
        let c = c?;
        for e in [c.our, c.their, c.ancestor].into_iter().flatten() {
            out.insert(String::from_utf8_lossy(&e.path).into_owned());
        }
    }
    Ok(out.into_iter().collect())
}

fn state_name(s: RepositoryState) -> &'static str {
    match s {
        RepositoryState::Clean => "nothing",
        RepositoryState::Merge => "a merge",
        RepositoryState::Revert | RepositoryState::RevertSequence => "a revert",
        RepositoryState::CherryPick | RepositoryState::CherryPickSequence => "a cherry-pick",
        RepositoryState::Bisect => "a bisect",
        RepositoryState::Rebase
        | RepositoryState::RebaseInteractive
        | RepositoryState::RebaseMerge => "a rebase",
        RepositoryState::ApplyMailbox | RepositoryState::ApplyMailboxOrRebase => "a `git am`",
    }
}

/// Refuse when the worktree `repo` is mid-merge, mid-rebase and the like.
pub(super) fn check_quiet(repo: &Repository, who: &str) -> Result<(), LandError> {
    match repo.state() {
        RepositoryState::Clean => Ok(()),
        s => Err(LandError::Refused(format!(
            "{who} is in the middle of {}; finish or abort it first",
            state_name(s)
        ))),
    }
}

/// The worktrees that have `refname` checked out.
pub(super) fn checked_out_at(repo: &Repository, refname: &str) -> Result<Vec<PathBuf>, GitError> {
    let mut out = Vec::new();
    for (head, dir) in worktree_heads(repo)? {
        let Ok(text) = fs::read_to_string(&head) else { continue };
        if text.trim_end().strip_prefix("ref: ") == Some(refname) {
            out.push(dir);
        }
    }
    Ok(out)
}

/// The commit at `refname` (which must exist).
pub(super) fn ref_target(repo: &Repository, refname: &str) -> Result<Oid, LandError> {
    let r = repo.find_reference(refname).map_err(LandError::git(format!("reading {refname}")))?;
    let c = r.peel_to_commit().map_err(LandError::git(format!("reading {refname}")))?;
    Ok(c.id())
}

/// Check that the worktree at `repo` has `refname` checked out at `at`.
pub(super) fn check_head(repo: &Repository, refname: &str, who: &str) -> Result<(), LandError> {
    let head =
        repo.find_reference("HEAD").map_err(LandError::git(format!("reading HEAD of {who}")))?;
    match head.symbolic_target().ok().flatten() {
        Some(t) if t == refname => Ok(()),
        Some(t) => Err(LandError::Refused(format!(
            "{who} has {} checked out instead of {}; check it out again first",
            t.trim_start_matches("refs/heads/"),
            refname.trim_start_matches("refs/heads/")
        ))),
        None => Err(LandError::Refused(format!(
            "{who} has a detached HEAD instead of {}; check the branch out again first",
            refname.trim_start_matches("refs/heads/")
        ))),
    }
}

/// What a repository needs that libgit2 does not do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Traps {
    /// Reasons corral cannot land work here safely (filters, merge drivers, split index, sparse).
    pub refuse: Vec<String>,
    /// Hooks git would run on a commit, merge or checkout, which corral does not.
    pub hooks: Vec<String>,
}

const HOOKS: [&str; 10] = [
    "pre-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-merge-commit",
    "post-merge",
    "post-checkout",
    "post-rewrite",
    "pre-rebase",
    "reference-transaction",
];

/// `filter=` and `merge=` drivers named in a gitattributes text.
fn attribute_drivers(text: &str, out: &mut BTreeSet<(&'static str, String)>) {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for word in line.split_whitespace().skip(1) {
            if let Some(v) = word.strip_prefix("filter=") {
                out.insert(("filter", v.to_string()));
            } else if let Some(v) = word.strip_prefix("merge=") {
                out.insert(("merge", v.to_string()));
            }
        }
    }
}

/// What in this repository (its config, hooks, and the `.gitattributes` in `trees`) libgit2 would
/// silently get wrong.
pub fn traps(repo: &Repository, trees: &[&Tree<'_>]) -> Result<Traps, GitError> {
    let config = repo.config().map_err(git_err("reading the repository's config"))?;
    let mut t = Traps::default();
    if config.get_bool("core.splitIndex").unwrap_or(false)
        || fs::read_dir(repo.commondir())
            .map(|d| {
                d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("sharedindex."))
            })
            .unwrap_or(false)
    {
        t.refuse.push("it uses a split index (core.splitIndex), which libgit2 cannot read".into());
    }
    if config.get_bool("core.sparseCheckout").unwrap_or(false) {
        t.refuse.push(
            "it uses a sparse checkout (core.sparseCheckout), which libgit2 would fill in".into(),
        );
    }

    let mut drivers = BTreeSet::new();
    let mut files: Vec<PathBuf> = vec![repo.commondir().join("info/attributes")];
    if let Ok(p) = config.get_path("core.attributesFile") {
        files.push(p);
    }
    for f in files {
        if let Ok(text) = fs::read_to_string(&f) {
            attribute_drivers(&text, &mut drivers);
        }
    }
    for tree in trees {
        let mut blobs = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |_, e| {
            if e.name_bytes() == b".gitattributes" && e.kind() == Some(ObjectType::Blob) {
                blobs.push(e.id());
            }
            TreeWalkResult::Ok
        })
        .map_err(git_err("looking for .gitattributes files"))?;
        for id in blobs {
            if let Ok(blob) = repo.find_blob(id) {
                attribute_drivers(&String::from_utf8_lossy(blob.content()), &mut drivers);
            }
        }
    }
    let set = |key: String| config.get_entry(&key).is_ok();
    for (kind, name) in drivers {
        match kind {
            "filter"
                if ["clean", "smudge", "process"]
                    .iter()
                    .any(|k| set(format!("filter.{name}.{k}"))) =>
            {
                let what = if name == "lfs" { " (Git LFS)".to_string() } else { String::new() };
                t.refuse.push(format!(
                    ".gitattributes uses the filter '{name}'{what}, which libgit2 does not run"
                ));
            }
            "merge"
                if !["text", "binary", "union"].contains(&name.as_str())
                    && set(format!("merge.{name}.driver")) =>
            {
                t.refuse.push(format!(
                    ".gitattributes uses the merge driver '{name}', which libgit2 does not run"
                ));
            }
            _ => {}
        }
    }

    let hooks_dir = match config.get_path("core.hooksPath") {
        Ok(p) if p.is_absolute() => p,
        Ok(p) => repo.workdir().map(|w| w.join(&p)).unwrap_or(p),
        Err(_) => repo.commondir().join("hooks"),
    };
    for name in HOOKS {
        let executable = fs::metadata(hooks_dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable {
            t.hooks.push(name.to_string());
        }
    }
    Ok(t)
}

fn refuse_traps(t: &Traps, root: &Path, doing: &str, by_hand: &str) -> Result<(), LandError> {
    if t.refuse.is_empty() {
        return Ok(());
    }
    Err(LandError::Refused(format!(
        "corral cannot {doing} safely in {}: {}; use git instead ({by_hand})",
        root.display(),
        t.refuse.join("; ")
    )))
}

fn hooks_note(t: &Traps) -> Option<String> {
    (!t.hooks.is_empty()).then(|| {
        format!(
            "this repository's hooks were not run (corral uses libgit2): {}",
            t.hooks.join(", ")
        )
    })
}

/// Record `refs/corral/backup/<agent>/<unix time>/{agent,base}`; returns the prefix.
pub(super) fn backup_refs(
    repo: &Repository,
    agent: &str,
    agent_tip: Oid,
    base_tip: Oid,
    why: &str,
) -> Result<String, LandError> {
    let mut stamp = unix_now();
    loop {
        let prefix = format!("refs/corral/backup/{agent}/{stamp}");
        match repo.reference(&format!("{prefix}/agent"), agent_tip, false, why) {
            Ok(_) => {
                repo.reference(&format!("{prefix}/base"), base_tip, false, why)
                    .map_err(LandError::git(format!("writing {prefix}/base")))?;
                return Ok(prefix);
            }
            // A second merge of the same agent within the same second.
            Err(e) if e.code() == ErrorCode::Exists => stamp += 1,
            Err(e) => return Err(LandError::git(format!("writing {prefix}/agent"))(e)),
        }
    }
}

/// Compare-and-swap a ref that no worktree has checked out.
pub(super) fn move_ref(
    repo: &Repository,
    refname: &str,
    old: Oid,
    new: Oid,
    log: &str,
) -> Result<(), LandError> {
    match repo.reference_matching(refname, new, true, old, log) {
        Ok(_) => Ok(()),
        Err(e) if e.code() == ErrorCode::Modified => Err(LandError::Refused(format!(
            "{} moved while corral was updating it; nothing was changed, try again",
            refname.trim_start_matches("refs/heads/")
        ))),
        Err(e) => Err(LandError::git(format!("moving {refname}"))(e)),
    }
}

/// Replay the commits of `tip` that `onto` lacks on top of `onto`, in memory. Returns the new tip.
fn rebase_in_memory(
    repo: &Repository,
    onto: Oid,
    tip: Oid,
    what: &str,
    git_env: &[(String, String)],
) -> Result<Oid, LandError> {
    let wrap = || LandError::git(format!("rebasing for {what}"));
    let upstream = repo.find_annotated_commit(onto).map_err(wrap())?;
    let branch = repo.find_annotated_commit(tip).map_err(wrap())?;
    let mut opts = RebaseOptions::new();
    opts.inmemory(true);
    let mut rebase =
        repo.rebase(Some(&branch), Some(&upstream), None, Some(&mut opts)).map_err(wrap())?;
    let who = Identity::resolve(repo, git_env)?;
    let mut last = onto;
    while let Some(op) = rebase.next() {
        op.map_err(wrap())?;
        let index = rebase.inmemory_index().map_err(wrap())?;
        if index.has_conflicts() {
            let paths = conflict_paths(&index).map_err(wrap())?;
            let _ = rebase.abort();
            return Err(LandError::Conflict { what: what.into(), paths });
        }
        match rebase.commit(None, &who.committer, None) {
            Ok(id) => last = id,
            // The change is already on the base: git drops such a commit too.
            Err(e) if e.code() == ErrorCode::Applied => {}
            Err(e) => return Err(wrap()(e)),
        }
    }
    rebase.finish(None).map_err(wrap())?;
    Ok(last)
}

/// Merge `theirs` into `ours` in memory; the merged tree, or the conflicting paths.
fn merge_tree(repo: &Repository, ours: Oid, theirs: Oid, what: &str) -> Result<Oid, LandError> {
    let wrap = || LandError::git(format!("computing {what}"));
    let ours = repo.find_commit(ours).map_err(wrap())?;
    let theirs = repo.find_commit(theirs).map_err(wrap())?;
    let mut index =
        repo.merge_commits(&ours, &theirs, Some(&MergeOptions::new())).map_err(wrap())?;
    if index.has_conflicts() {
        let paths = conflict_paths(&index).map_err(wrap())?;
        return Err(LandError::Conflict { what: what.into(), paths });
    }
    index.write_tree_to(repo).map_err(wrap())
}

/// What the base becomes.
struct Plan {
    new: Oid,
    how: How,
    /// The agent's branch moves to `new` as well (its own commits were rewritten).
    agent_follows: bool,
}

fn plan(
    repo: &Repository,
    spec: &LandSpec<'_>,
    base_tip: Oid,
    agent_tip: Oid,
) -> Result<Option<Plan>, LandError> {
    let wrap = || LandError::git(format!("comparing {} with {}", spec.branch, spec.base));
    if base_tip == agent_tip || repo.graph_descendant_of(base_tip, agent_tip).map_err(wrap())? {
        return Ok(None);
    }
    let ff = repo.graph_descendant_of(agent_tip, base_tip).map_err(wrap())?;
    let what = format!("merging {} into {}", spec.branch, spec.base);
    let line = first_line(spec.prompt);
    let who = Identity::resolve(repo, spec.git_env)?;
    let commit = |tree: Oid, parents: &[Oid], message: &str| -> Result<Oid, LandError> {
        let wrap = || LandError::git(format!("committing the result of {what}"));
        let tree = repo.find_tree(tree).map_err(wrap())?;
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|p| repo.find_commit(*p))
            .collect::<Result<_, _>>()
            .map_err(wrap())?;
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(None, &who.author, &who.committer, message, &tree, &parents).map_err(wrap())
    };
    let plan = match spec.mode {
        _ if ff && spec.mode != MergeMode::Squash => {
            Plan { new: agent_tip, how: How::FastForward, agent_follows: false }
        }
        MergeMode::FfOnly => {
            return Err(LandError::Refused(format!(
                "{} has commits that {} lacks, so this is not a fast-forward; `corral sync {}` first, or merge without --ff-only",
                spec.base, spec.branch, spec.agent
            )));
        }
        MergeMode::Merge => {
            let tree = merge_tree(repo, base_tip, agent_tip, &what)?;
            let message = match spec.message {
                Some(m) => m.to_string(),
                None => {
                    let mut m = format!("Merge branch '{}' into {}\n", spec.branch, spec.base);
                    if let Some(l) = &line {
                        m.push_str(&format!("\nAgent {}: {l}\n", spec.agent));
                    }
                    m
                }
            };
            Plan {
                new: commit(tree, &[base_tip, agent_tip], &message)?,
                how: How::MergeCommit,
                agent_follows: false,
            }
        }
        MergeMode::Squash => {
            let tree = if ff {
                repo.find_commit(agent_tip).map_err(wrap())?.tree_id()
            } else {
                merge_tree(repo, base_tip, agent_tip, &what)?
            };
            let message = match spec.message {
                Some(m) => m.to_string(),
                None => squash_message(repo, spec, base_tip, agent_tip, line.as_deref())?,
            };
            Plan {
                new: commit(tree, &[base_tip], &message)?,
                how: How::Squash,
                agent_follows: true,
            }
        }
        MergeMode::Rebase => Plan {
            new: rebase_in_memory(repo, base_tip, agent_tip, &what, spec.git_env)?,
            how: How::Rebase,
            agent_follows: true,
        },
    };
    Ok(Some(plan))
}

/// The prompt's first line, then the subjects of the commits squashed.
fn squash_message(
    repo: &Repository,
    spec: &LandSpec<'_>,
    base_tip: Oid,
    agent_tip: Oid,
    line: Option<&str>,
) -> Result<String, LandError> {
    let wrap = || LandError::git(format!("listing the commits of {}", spec.branch));
    let mut walk = repo.revwalk().map_err(wrap())?;
    walk.push(agent_tip).map_err(wrap())?;
    walk.hide(base_tip).map_err(wrap())?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE).map_err(wrap())?;
    let mut m = match line {
        Some(l) => format!("{l}\n"),
        None => format!("Work of agent {}\n", spec.agent),
    };
    m.push_str(&format!("\nSquashed from {} (agent {}):\n", spec.branch, spec.agent));
    for id in walk {
        let c = repo.find_commit(id.map_err(wrap())?).map_err(wrap())?;
        m.push_str(&format!("* {}\n", c.summary().ok().flatten().unwrap_or("")));
    }
    Ok(m)
}

/// Land the agent's work on its base branch, SPEC §5 steps 1–5 (stopping and removing the agent is
/// the caller's). On `Conflict`, `Blocked` and `Refused` nothing was changed.
pub fn land(spec: &LandSpec<'_>) -> Result<Landed, LandError> {
    let repo = open(spec.root)?;
    let _lock = RepoLock::acquire(repo.commondir())?;
    let agent_who = format!("the worktree of agent '{}'", spec.agent);

    // 1. Where things are, and whether they are in a state to be changed.
    let base_ref = format!("refs/heads/{}", spec.base);
    match repo.find_reference(&base_ref) {
        Ok(_) => {}
        Err(e) if e.code() == ErrorCode::NotFound => {
            return Err(LandError::Refused(format!(
                "agent '{}' started from '{}', which is not a branch, so there is nothing to merge into; merge {} by hand",
                spec.agent, spec.base, spec.branch
            )));
        }
        Err(e) => return Err(LandError::git(format!("reading {base_ref}"))(e)),
    }
    let base_tip = ref_target(&repo, &base_ref)?;
    let base_worktrees = checked_out_at(&repo, &base_ref)?;
    if base_worktrees.len() > 1 {
        return Err(LandError::Refused(format!(
            "{} is checked out in several worktrees ({}); corral cannot update them all",
            spec.base,
            base_worktrees.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let base_wt = base_worktrees.into_iter().next();
    if let Some(w) = &base_wt {
        let wt = open(w).map_err(|_| {
            LandError::Refused(format!(
                "{} is checked out in {}, which is missing; check it out elsewhere or prune that worktree",
                spec.base,
                w.display()
            ))
        })?;
        check_quiet(&wt, &w.display().to_string())?;
    }
    if !spec.worktree.is_dir() {
        return Err(LandError::Refused(format!(
            "the worktree of agent '{}' ({}) is gone",
            spec.agent,
            spec.worktree.display()
        )));
    }
    let agent_repo = open(spec.worktree)?;
    let agent_ref = format!("refs/heads/{}", spec.branch);
    check_head(&agent_repo, &agent_ref, &agent_who)?;
    check_quiet(&agent_repo, &agent_who)?;
    let old_tip = ref_target(&repo, &agent_ref)?;

    // 2. The agent's uncommitted work, as a commit no ref points at yet. Conflict entries (a
    // `stash pop` gone wrong) would be staged with their markers: refuse instead.
    let conflicted = agent_repo
        .index()
        .and_then(|i| if i.has_conflicts() { conflict_paths(&i) } else { Ok(Vec::new()) })
        .map_err(LandError::git(format!("reading the index of {}", spec.worktree.display())))?;
    if !conflicted.is_empty() {
        return Err(LandError::Refused(format!(
            "{agent_who} has unresolved conflicts in {}; resolve them first",
            conflicted.join(", ")
        )));
    }
    let (mut agent_index, state) = worktree_state(&agent_repo)
        .map_err(LandError::git(format!("reading {}", spec.worktree.display())))?;
    let trees = (|| Ok((repo.find_commit(base_tip)?.tree()?, repo.find_tree(state)?)))();
    let (base_tree, state_tree) = trees.map_err(LandError::git("reading trees"))?;
    let traps = traps(&repo, &[&base_tree, &state_tree])?;
    refuse_traps(&traps, spec.root, "merge", &format!("git merge {}", spec.branch))?;
    let mut notes: Vec<String> = hooks_note(&traps).into_iter().collect();
    let old_tip_tree =
        repo.find_commit(old_tip).map_err(LandError::git("reading the agent's tip"))?;
    let snapshot = if old_tip_tree.tree_id() == state {
        None
    } else {
        let who = Identity::resolve(&repo, spec.git_env)?;
        let mut msg = format!("corral: uncommitted work of agent {}\n", spec.agent);
        if let Some(l) = first_line(spec.prompt) {
            msg.push_str(&format!("\nPrompt: {l}\n"));
        }
        let id = repo
            .commit(None, &who.author, &who.committer, &msg, &state_tree, &[&old_tip_tree])
            .map_err(LandError::git("committing the agent's uncommitted work"))?;
        Some(id)
    };
    let agent_tip = snapshot.unwrap_or(old_tip);

    // 4 (computed before anything changes). The result, in memory.
    let Some(plan) = plan(&repo, spec, base_tip, agent_tip)? else {
        return Ok(Landed {
            how: None,
            base_before: base_tip.to_string(),
            base_after: base_tip.to_string(),
            snapshot: None,
            backup: None,
            notes,
        });
    };
    // The user's worktree: refuse now if their own changes are in the way (checked again, by
    // libgit2, when the checkout runs).
    if let Some(w) = &base_wt {
        let wt = open(w)?;
        let new_tree = repo.find_commit(plan.new).and_then(|c| c.tree());
        let new_tree = new_tree.map_err(LandError::git("reading the merge result"))?;
        let paths = changed_paths(&wt, &base_tree, &new_tree).map_err(LandError::git("diffing"))?;
        let in_the_way = changes_in_the_way(&wt, &paths)
            .map_err(LandError::git(format!("status of {}", w.display())))?;
        if !in_the_way.is_empty() {
            return Err(LandError::Blocked {
                who: w.display().to_string(),
                what: format!("merge of agent '{}'", spec.agent),
                paths: in_the_way,
            });
        }
    }

    if plan.how == How::FastForward && spec.message.is_some() {
        notes.push("-m was not used: a fast-forward makes no commit".into());
    }

    // From here on the repository changes: first say what is about to happen, so that a crash at
    // any point is finished (the base moved) or undone (it did not) by the next server.
    let common = repo.commondir().to_path_buf();
    let intent = intent::record(
        &common,
        Step::Land {
            agent: spec.agent.to_string(),
            agent_worktree: spec.worktree.to_path_buf(),
            agent_ref: agent_ref.clone(),
            old_tip: old_tip.to_string(),
            snapshot: snapshot.map(|s| s.to_string()),
            base_ref: base_ref.clone(),
            base_old: base_tip.to_string(),
            base_new: plan.new.to_string(),
            follow: plan.agent_follows,
        },
    )?;
    failpoint::hit("land:intent");

    // Until the base moved, a failure puts the agent's branch and index back as they were.
    let undo = |e: LandError| -> LandError {
        match resolve_land(&common, &intent) {
            Ok(_) => intent::clear(&common, &intent.id),
            Err(u) => tracing::warn!("undoing the merge of agent {}: {u}", spec.agent),
        }
        e
    };

    // 3. Nothing can be lost from here on.
    let why = format!("corral: backup before merging agent {}", spec.agent);
    let backup = backup_refs(&repo, spec.agent, agent_tip, base_tip, &why).map_err(undo)?;
    failpoint::hit("land:backup");

    // 2 (applied). The snapshot goes on the agent's branch; its index then matches it. The index
    // as it was is kept beside the record, to be put back if the merge is undone.
    if let Some(s) = snapshot {
        let index_path = agent_repo.path().join("index");
        let copy = intent::side_file(&common, &intent.id, "index");
        match fs::read(&index_path) {
            Ok(bytes) => intent::write_durably(&copy, &bytes)
                .map_err(io_err(format!("keeping a copy of {}", index_path.display())))
                .map_err(|e| undo(e.into()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(undo(io_err(format!("reading {}", index_path.display()))(e).into()));
            }
        }
        move_ref(
            &repo,
            &agent_ref,
            old_tip,
            s,
            "corral: snapshot of uncommitted work before merge",
        )
        .map_err(undo)?;
        failpoint::hit("land:snapshot-ref");
        agent_index
            .write()
            .map_err(LandError::git(format!("writing the index of {}", spec.worktree.display())))
            .map_err(undo)?;
        failpoint::hit("land:snapshot-index");
    }

    // 5. Move the base, bringing its worktree along.
    let log = format!("corral: merge {} ({})", spec.branch, plan.how.describe());
    match &base_wt {
        Some(w) => advance_worktree(
            w,
            &base_ref,
            base_tip,
            plan.new,
            &w.display().to_string(),
            &format!("merge of agent '{}'", spec.agent),
            &log,
        )
        .map_err(undo)?,
        None => move_ref(&repo, &base_ref, base_tip, plan.new, &log).map_err(undo)?,
    }
    failpoint::hit("land:base");
    if plan.agent_follows {
        let moved = advance_worktree(
            spec.worktree,
            &agent_ref,
            agent_tip,
            plan.new,
            &agent_who,
            "merge",
            &format!("corral: follow {} after {}", spec.base, plan.how.describe()),
        );
        if let Err(e) = moved {
            notes.push(format!(
                "{} stays on its own commits ({e}); its work is on {} and under {backup}",
                spec.branch, spec.base
            ));
        }
        failpoint::hit("land:follow");
    }
    intent::clear(&common, &intent.id);
    Ok(Landed {
        how: Some(plan.how),
        base_before: base_tip.to_string(),
        base_after: plan.new.to_string(),
        snapshot: snapshot.map(|s| s.to_string()),
        backup: Some(backup),
        notes,
    })
}

/// Bring the base's new commits into the agent's branch and worktree (merge, or rebase with
/// `spec.rebase`). The agent's uncommitted changes stay; when they touch files the base changed,
/// or the merge conflicts, nothing changes.
pub fn sync(spec: &SyncSpec<'_>) -> Result<Synced, LandError> {
    let repo = open(spec.root)?;
    let _lock = RepoLock::acquire(repo.commondir())?;
    let who = format!("agent '{}'", spec.agent);
    if !spec.worktree.is_dir() {
        return Err(LandError::Refused(format!(
            "the worktree of agent '{}' ({}) is gone",
            spec.agent,
            spec.worktree.display()
        )));
    }
    let base_tip = base_tip(&repo, spec.base)?;
    let agent_repo = open(spec.worktree)?;
    let agent_ref = format!("refs/heads/{}", spec.branch);
    let agent_who = format!("the worktree of agent '{}'", spec.agent);
    check_head(&agent_repo, &agent_ref, &agent_who)?;
    check_quiet(&agent_repo, &agent_who)?;
    let tip = ref_target(&repo, &agent_ref)?;
    let wrap = || LandError::git(format!("comparing {} with {}", spec.branch, spec.base));
    let up_to_date = tip == base_tip || repo.graph_descendant_of(tip, base_tip).map_err(wrap())?;
    if up_to_date {
        return Ok(Synced {
            how: None,
            before: tip.to_string(),
            after: tip.to_string(),
            backup: None,
            notes: Vec::new(),
        });
    }
    let trees = (|| Ok((repo.find_commit(base_tip)?.tree()?, repo.find_commit(tip)?.tree()?)))();
    let (base_tree, tip_tree) = trees.map_err(wrap())?;
    let traps = traps(&repo, &[&base_tree, &tip_tree])?;
    refuse_traps(
        &traps,
        spec.root,
        "sync",
        &format!("git merge {} in {}", spec.base, spec.worktree.display()),
    )?;
    let notes: Vec<String> = hooks_note(&traps).into_iter().collect();
    let what = format!("merging {} into {}", spec.base, spec.branch);
    let (new, how) = if repo.graph_descendant_of(base_tip, tip).map_err(wrap())? {
        (base_tip, How::FastForward)
    } else if spec.rebase {
        let what = format!("rebasing {} onto {}", spec.branch, spec.base);
        (rebase_in_memory(&repo, base_tip, tip, &what, spec.git_env)?, How::Rebase)
    } else {
        let tree = merge_tree(&repo, tip, base_tip, &what)?;
        let tree = repo.find_tree(tree).map_err(wrap())?;
        let who = Identity::resolve(&repo, spec.git_env)?;
        let parents = (|| Ok((repo.find_commit(tip)?, repo.find_commit(base_tip)?)))();
        let (ours, theirs) = parents.map_err(wrap())?;
        let message = format!("Merge {} into {}\n", spec.base, spec.branch);
        let id = repo
            .commit(None, &who.author, &who.committer, &message, &tree, &[&ours, &theirs])
            .map_err(LandError::git(format!("committing the result of {what}")))?;
        (id, How::MergeCommit)
    };
    // Refuse before the backup when the agent's own changes are in the way.
    let new_tree = repo.find_commit(new).and_then(|c| c.tree()).map_err(wrap())?;
    let paths = changed_paths(&agent_repo, &tip_tree, &new_tree).map_err(wrap())?;
    let in_the_way = changes_in_the_way(&agent_repo, &paths).map_err(wrap())?;
    if !in_the_way.is_empty() {
        return Err(LandError::Blocked {
            who,
            what: format!("sync with {}", spec.base),
            paths: in_the_way,
        });
    }
    let backup = backup_refs(
        &repo,
        spec.agent,
        tip,
        base_tip,
        &format!("corral: backup before syncing agent {}", spec.agent),
    )?;
    failpoint::hit("sync:backup");
    advance_worktree(
        spec.worktree,
        &agent_ref,
        tip,
        new,
        &who,
        &format!("sync with {}", spec.base),
        &format!("corral: sync with {} ({})", spec.base, how.describe()),
    )?;
    Ok(Synced {
        how: Some(how),
        before: tip.to_string(),
        after: new.to_string(),
        backup: Some(backup),
        notes,
    })
}

/// [`advance_worktree`] for tests, with ids as hex.
#[cfg(test)]
pub(super) fn advance_for_test(
    path: &Path,
    refname: &str,
    old: &str,
    new: &str,
) -> Result<(), LandError> {
    let id = |s: &str| Oid::from_str(s).map_err(LandError::git("parsing an id"));
    advance_worktree(path, refname, id(old)?, id(new)?, "test", "test", "test")
}

/// Finish or undo an interrupted merge (after its checkouts were resolved): when the base reached
/// the merge's result, the agent's index matches its snapshot and, for a squash or rebase, its
/// branch and worktree follow the base; otherwise the snapshot is taken off the agent's branch and
/// its index put back. Backup refs stay either way.
pub(super) fn resolve_land(common: &Path, intent: &Intent) -> Result<Vec<String>, LandError> {
    let Step::Land {
        agent,
        agent_worktree,
        agent_ref,
        old_tip,
        snapshot,
        base_ref,
        base_new,
        follow,
        ..
    } = &intent.step
    else {
        return Ok(Vec::new());
    };
    let id = |s: &str| Oid::from_str(s).map_err(LandError::git("reading an intent record"));
    let repo = open(common)?;
    let base_now = repo.find_reference(base_ref).ok().and_then(|r| r.target());
    let agent_now = repo.find_reference(agent_ref).ok().and_then(|r| r.target());
    let old_tip = id(old_tip)?;
    let snapshot = snapshot.as_deref().map(id).transpose()?;
    let base_new = id(base_new)?;
    let mut notes = Vec::new();
    let agent_repo = agent_worktree.is_dir().then(|| open(agent_worktree)).transpose()?;
    if base_now == Some(base_new) {
        // The merge happened: finish the agent's side.
        let agent_tip = snapshot.unwrap_or(old_tip);
        if let Some(wt) = &agent_repo
            && agent_now == Some(agent_tip)
        {
            if snapshot.is_some() {
                // The snapshot holds exactly the worktree's files: stage them all, as the merge did.
                let (mut index, _) = worktree_state(wt)
                    .map_err(LandError::git(format!("reading {}", agent_worktree.display())))?;
                index.write().map_err(LandError::git(format!(
                    "writing the index of {}",
                    agent_worktree.display()
                )))?;
            }
            if *follow {
                let who = format!("the worktree of agent '{agent}'");
                let log = "corral: follow the base after an interrupted merge";
                if let Err(e) = advance_worktree(
                    agent_worktree,
                    agent_ref,
                    agent_tip,
                    base_new,
                    &who,
                    "merge",
                    log,
                ) {
                    notes.push(format!(
                        "{} stays on its own commits ({e}); its work is on {}",
                        agent_ref.trim_start_matches("refs/heads/"),
                        base_ref.trim_start_matches("refs/heads/")
                    ));
                }
            }
        }
        return Ok(notes);
    }
    // The base did not move: the merge did not happen, so neither does its snapshot.
    if let Some(s) = snapshot
        && agent_now == Some(s)
    {
        let copy = intent::side_file(common, &intent.id, "index");
        if let (Some(wt), Ok(bytes)) = (&agent_repo, fs::read(&copy)) {
            let index_path = wt.path().join("index");
            intent::write_durably(&index_path, &bytes)
                .map_err(io_err(format!("putting back {}", index_path.display())))?;
        }
        move_ref(
            &repo,
            agent_ref,
            s,
            old_tip,
            "corral: undo the snapshot of an interrupted merge",
        )?;
    }
    Ok(notes)
}
