//! What corral left behind in a repository (`corral gc`): worktrees under corral's worktree
//! directory and branches under its prefix that no agent owns any more (the agent's state was
//! deleted, the server crashed between two steps, a worktree was deleted or moved by hand),
//! registrations in `<common dir>/worktrees/` whose directory is gone, and the debris of an add
//! that never finished.
//!
//! Only what corral made is looked at: worktrees registered at a path under its worktree
//! directory, and branches under its prefix that no other worktree has checked out. What holds
//! work (uncommitted changes, commits the base does not have) is kept unless forced, and forcing
//! loses nothing either: uncommitted changes are committed first and every tip that the base does
//! not contain is kept under `refs/corral/backup/` before its branch goes. A directory that is no
//! longer a worktree at all is only ever reported: its files are not git's to judge.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use git2::{BranchType, ErrorCode, Oid, Repository};

use super::worktree::{
    AdminDir, GitError, admin_state, admin_worktree_path, canonical, delete_branch, dirty_paths,
    git_err, io_err, open, remove_tree, remove_worktree, resolve_base, snapshot_commit,
};

/// What the agents corral knows own in a repository: never a leftover, whatever state it is in.
#[derive(Debug, Clone, Default)]
pub struct Owned {
    /// Agents' names (also the names of the worktrees corral made for them).
    pub names: BTreeSet<String>,
    /// Agents' worktree paths, canonicalized where they exist.
    pub worktrees: BTreeSet<PathBuf>,
    pub branches: BTreeSet<String>,
}

/// Where to look: the repository's main worktree, corral's worktree directory for it, and the
/// branch prefix.
#[derive(Debug, Clone, Copy)]
pub struct GcSpec<'a> {
    pub root: &'a Path,
    pub worktree_dir: &'a Path,
    pub prefix: &'a str,
    pub owned: &'a Owned,
    /// The identity variables of the client that asked (`git::identity_env`).
    pub git_env: &'a [(String, String)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftoverKind {
    /// A linked worktree in corral's worktree directory that no agent owns.
    Worktree { path: PathBuf, admin: String, branch: Option<String> },
    /// A registration whose directory in corral's worktree directory is gone: deleted, or moved
    /// by hand (then `git worktree repair` at the new place reconnects it instead).
    Missing { path: PathBuf, admin: String, branch: Option<String> },
    /// What an add that never finished left in `<common dir>/worktrees/`.
    Debris { admin: String },
    /// A branch under the prefix that no agent owns and no worktree has checked out.
    Branch { branch: String },
    /// An empty directory in corral's worktree directory.
    EmptyDir { path: PathBuf },
    /// A directory in corral's worktree directory that was a worktree of this repository and is
    /// not registered any more: reported, never removed.
    Stray { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub kind: LeftoverKind,
    /// Commits on it that the base does not have.
    pub unmerged: usize,
    /// Uncommitted changes in it (worktrees), or why they could not be read.
    pub dirty: Vec<String>,
}

impl Leftover {
    /// Whether removing it would need `--force` (work the base does not have).
    pub fn holds_work(&self) -> bool {
        self.unmerged > 0
            || !self.dirty.is_empty()
            || matches!(self.kind, LeftoverKind::Stray { .. })
    }

    /// How `corral gc` names it.
    pub fn describe(&self) -> String {
        let on = |branch: &Option<String>| match branch {
            Some(b) => format!(" (branch {b})"),
            None => " (detached HEAD)".to_string(),
        };
        match &self.kind {
            LeftoverKind::Worktree { path, branch, .. } => {
                format!("worktree {}{}", path.display(), on(branch))
            }
            LeftoverKind::Missing { path, admin, branch } => format!(
                "registered worktree '{admin}'{}, whose directory {} is gone (moved by hand? `git worktree repair NEW_PATH` reconnects it instead)",
                on(branch),
                path.display()
            ),
            LeftoverKind::Debris { admin } => {
                format!("unfinished worktree registration '{admin}'")
            }
            LeftoverKind::Branch { branch } => format!("branch {branch}"),
            LeftoverKind::EmptyDir { path } => format!("empty directory {}", path.display()),
            LeftoverKind::Stray { path } => format!(
                "directory {}, which is no longer a worktree of this repository",
                path.display()
            ),
        }
    }

    /// What it holds that the base does not, for the listing ("" when nothing).
    pub fn work(&self, base: &str) -> String {
        let mut parts = Vec::new();
        if self.unmerged > 0 {
            let s = if self.unmerged == 1 { "" } else { "s" };
            parts.push(format!("{} commit{s} not on {base}", self.unmerged));
        }
        if !self.dirty.is_empty() {
            let mut shown: Vec<&str> = self.dirty.iter().map(String::as_str).take(3).collect();
            if self.dirty.len() > 3 {
                shown.push("…");
            }
            let s = if self.dirty.len() == 1 { "" } else { "s" };
            parts.push(format!(
                "{} uncommitted change{s} ({})",
                self.dirty.len(),
                shown.join(", ")
            ));
        }
        parts.join(", ")
    }
}

/// The base that "merged" is measured against: the branch checked out in the main worktree.
#[derive(Debug, Clone)]
pub struct Base {
    pub name: String,
    pub id: Oid,
}

/// Everything corral left behind in the repository, with the work each holds.
pub fn find_leftovers(spec: &GcSpec) -> Result<(Base, Vec<Leftover>), GitError> {
    let repo = open(spec.root)?;
    let (name, id) = resolve_base(spec.root, None)?;
    let id = Oid::from_str(&id).map_err(git_err("reading the base commit"))?;
    let base = Base { name, id };
    let wt_dir = canonical(spec.worktree_dir);
    let ours = |p: &Path| canonical(p).starts_with(&wt_dir);
    let our_branch = |b: &str| is_ours(b, spec.prefix);
    let mut out = Vec::new();
    // Worktree directories registered in the repository, whatever their state.
    let mut registered: BTreeSet<PathBuf> = BTreeSet::new();
    // Branches some worktree has checked out: not a leftover on their own.
    let mut checked_out: BTreeSet<String> = BTreeSet::new();
    if let Some(b) = head_branch(&repo.commondir().join("HEAD")) {
        checked_out.insert(b);
    }

    let admins_dir = repo.commondir().join("worktrees");
    let mut admins: Vec<(String, PathBuf)> = match fs::read_dir(&admins_dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(format!("reading {}", admins_dir.display()))(e)),
    };
    admins.sort();
    for (admin_name, admin) in admins {
        let branch = head_branch(&admin.join("HEAD"));
        if let Some(b) = &branch {
            checked_out.insert(b.clone());
        }
        if let Some(dir) = admin_worktree_path(&admin)? {
            registered.insert(canonical(&dir));
        }
        if spec.owned.names.contains(&admin_name) {
            continue;
        }
        let kind = match admin_state(&admin)? {
            AdminDir::Absent | AdminDir::Locked => continue,
            AdminDir::Live(dir) => {
                if !ours(&dir) || spec.owned.worktrees.contains(&canonical(&dir)) {
                    continue;
                }
                LeftoverKind::Worktree { path: canonical(&dir), admin: admin_name, branch }
            }
            AdminDir::Missing(dir) => {
                if !ours(&dir) || spec.owned.worktrees.contains(&canonical(&dir)) {
                    continue;
                }
                LeftoverKind::Missing { path: canonical(&dir), admin: admin_name, branch }
            }
            AdminDir::Debris => {
                // Ours when it names a place in our directory, or (written before that) a
                // branch under our prefix.
                let named = admin_worktree_path(&admin)?;
                let mine = match &named {
                    Some(dir) => ours(dir),
                    None => branch.as_deref().is_some_and(our_branch),
                };
                if !mine {
                    continue;
                }
                LeftoverKind::Debris { admin: admin_name }
            }
        };
        let mut item = Leftover { kind, unmerged: 0, dirty: Vec::new() };
        if let LeftoverKind::Worktree { path, .. } = &item.kind {
            item.dirty = worktree_changes(&admin, path)
                .unwrap_or_else(|e| vec![format!("its status cannot be read: {e}")]);
        }
        if let LeftoverKind::Worktree { .. } | LeftoverKind::Missing { .. } = &item.kind
            && let Some(tip) = admin_tip(&repo, &admin)
        {
            item.unmerged = unmerged(&repo, tip, base.id)?;
        }
        out.push(item);
    }

    let mut branches = Vec::new();
    for b in repo.branches(Some(BranchType::Local)).map_err(git_err("listing branches"))? {
        let (b, _) = b.map_err(git_err("listing branches"))?;
        let (Ok(Some(name)), Some(tip)) = (b.name(), b.get().target()) else { continue };
        if our_branch(name) && !spec.owned.branches.contains(name) && !checked_out.contains(name) {
            branches.push((name.to_string(), tip));
        }
    }
    for (branch, tip) in branches {
        let unmerged = unmerged(&repo, tip, base.id)?;
        out.push(Leftover { kind: LeftoverKind::Branch { branch }, unmerged, dirty: Vec::new() });
    }

    if let Ok(entries) = fs::read_dir(&wt_dir) {
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let path = canonical(&dir);
            if !dir.is_dir()
                || registered.contains(&path)
                || spec.owned.names.contains(name)
                || spec.owned.worktrees.contains(&path)
            {
                continue;
            }
            let kind = if fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none()) {
                LeftoverKind::EmptyDir { path }
            } else if points_into(&dir, &admins_dir) {
                LeftoverKind::Stray { path }
            } else {
                // Not ours to judge (a shared directory may hold other repositories' worktrees).
                continue;
            };
            out.push(Leftover { kind, unmerged: 0, dirty: Vec::new() });
        }
    }
    Ok((base, out))
}

/// What cleaning a leftover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// Gone; the tip the base did not have is kept at this ref.
    Removed { backup: Option<String> },
    /// Left as it was, and why.
    Kept(String),
}

/// Remove one leftover found by [`find_leftovers`], unless it holds work and `force` is not set.
/// Its state is read again first: what changed since the listing is judged as it is now.
pub fn clean_leftover(
    spec: &GcSpec,
    base: &Base,
    item: &Leftover,
    force: bool,
) -> Result<Cleaned, GitError> {
    let repo = open(spec.root)?;
    let admins_dir = repo.commondir().join("worktrees");
    match &item.kind {
        LeftoverKind::Stray { .. } => Ok(Cleaned::Kept(
            "gc never deletes a directory git cannot vouch for; look inside, then delete it".into(),
        )),
        LeftoverKind::EmptyDir { path } => {
            // remove_dir refuses a directory that is no longer empty.
            fs::remove_dir(path).map_err(io_err(format!("removing {}", path.display())))?;
            Ok(Cleaned::Removed { backup: None })
        }
        LeftoverKind::Debris { admin } => {
            let dir = admins_dir.join(admin);
            if !matches!(admin_state(&dir)?, AdminDir::Debris) {
                return Ok(Cleaned::Kept("it changed since it was listed".into()));
            }
            remove_tree(&dir).map_err(io_err(format!("removing {}", dir.display())))?;
            Ok(Cleaned::Removed { backup: None })
        }
        LeftoverKind::Branch { branch } => {
            let Some(tip) = branch_tip(&repo, branch)? else {
                return Ok(Cleaned::Removed { backup: None });
            };
            let unmerged = unmerged(&repo, tip, base.id)?;
            if unmerged > 0 && !force {
                return Ok(Cleaned::Kept(keep_note(unmerged, 0, &base.name)));
            }
            let backup = (unmerged > 0)
                .then(|| backup_ref(&repo, label(branch, spec.prefix), tip))
                .transpose()?;
            delete_branch(spec.root, branch)?;
            Ok(Cleaned::Removed { backup })
        }
        LeftoverKind::Worktree { path, admin, .. } | LeftoverKind::Missing { path, admin, .. } => {
            let admin_dir = admins_dir.join(admin);
            let live = matches!(admin_state(&admin_dir)?, AdminDir::Live(_));
            let dirty = if live { worktree_changes(&admin_dir, path)? } else { Vec::new() };
            let mut tip = admin_tip(&repo, &admin_dir);
            let mut unmerged_now = match tip {
                Some(t) => unmerged(&repo, t, base.id)?,
                None => 0,
            };
            if (!dirty.is_empty() || unmerged_now > 0) && !force {
                return Ok(Cleaned::Kept(keep_note(unmerged_now, dirty.len(), &base.name)));
            }
            if !dirty.is_empty() {
                let msg = format!(
                    "corral gc: uncommitted work left in {}, saved before removing it",
                    path.display()
                );
                if snapshot_commit(path, &msg, spec.git_env)?.is_some() {
                    tip = admin_tip(&repo, &admin_dir);
                    unmerged_now =
                        tip.map(|t| unmerged(&repo, t, base.id)).transpose()?.unwrap_or(0);
                }
            }
            let branch = head_branch(&admin_dir.join("HEAD"));
            let backup = match tip {
                Some(t) if unmerged_now > 0 => {
                    let name = branch.as_deref().map(|b| label(b, spec.prefix)).unwrap_or(admin);
                    Some(backup_ref(&repo, name, t)?)
                }
                _ => None,
            };
            remove_worktree(spec.root, admin, path)?;
            // Only a branch under our prefix goes with it; any other is the user's.
            if let Some(b) = branch.filter(|b| is_ours(b, spec.prefix))
                && branch_tip(&repo, &b)?.is_some()
                && !spec.owned.branches.contains(&b)
            {
                delete_branch(spec.root, &b)?;
            }
            Ok(Cleaned::Removed { backup })
        }
    }
}

fn keep_note(unmerged: usize, dirty: usize, base: &str) -> String {
    let what = match (unmerged, dirty) {
        (0, _) => "uncommitted changes".to_string(),
        (n, 0) => format!("{n} commit{} not on {base}", if n == 1 { "" } else { "s" }),
        (n, _) => format!("uncommitted changes and {n} commits not on {base}"),
    };
    format!(
        "it holds {what}; `corral gc --yes --force` removes it after keeping that under refs/corral/backup/"
    )
}

/// Whether `branch` is under corral's prefix. No prefix configured: no branch is recognisably
/// corral's, so none is.
fn is_ours(branch: &str, prefix: &str) -> bool {
    !prefix.is_empty() && branch.starts_with(prefix) && branch.len() > prefix.len()
}

/// The name a backup is kept under: the agent's name when the branch is one of ours.
fn label<'a>(branch: &'a str, prefix: &str) -> &'a str {
    branch.strip_prefix(prefix).filter(|s| !s.is_empty()).unwrap_or(branch)
}

/// Keep `tip` under `refs/corral/backup/<name>/<unix time>/agent`, as merge keeps old tips.
fn backup_ref(repo: &Repository, name: &str, tip: Oid) -> Result<String, GitError> {
    let mut stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    loop {
        let prefix = format!("refs/corral/backup/{name}/{stamp}");
        match repo.reference(
            &format!("{prefix}/agent"),
            tip,
            false,
            "corral gc: kept before removal",
        ) {
            Ok(_) => return Ok(format!("{prefix}/agent")),
            Err(e) if e.code() == ErrorCode::Exists => stamp += 1,
            Err(e) => return Err(git_err(format!("writing {prefix}/agent"))(e)),
        }
    }
}

/// Uncommitted changes in a worktree. One whose checkout never happened (an add killed before
/// it: no index, nothing but the `.git` file) has none, though git would call every file deleted.
fn worktree_changes(admin: &Path, path: &Path) -> Result<Vec<String>, GitError> {
    let only_gitfile = fs::read_dir(path)
        .map(|entries| entries.flatten().all(|e| e.file_name() == ".git"))
        .unwrap_or(false);
    if only_gitfile && !admin.join("index").exists() {
        return Ok(Vec::new());
    }
    dirty_paths(path)
}

/// The branch a HEAD file has checked out (`ref: refs/heads/<branch>`).
fn head_branch(head: &Path) -> Option<String> {
    let text = fs::read_to_string(head).ok()?;
    text.trim_end().strip_prefix("ref: refs/heads/").map(str::to_string)
}

/// The commit a registered worktree's HEAD is at (through its branch, or detached).
fn admin_tip(repo: &Repository, admin: &Path) -> Option<Oid> {
    let text = fs::read_to_string(admin.join("HEAD")).ok()?;
    let text = text.trim_end();
    match text.strip_prefix("ref: refs/heads/") {
        Some(branch) => branch_tip(repo, branch).ok().flatten(),
        None => Oid::from_str(text).ok(),
    }
}

fn branch_tip(repo: &Repository, branch: &str) -> Result<Option<Oid>, GitError> {
    match repo.find_branch(branch, BranchType::Local) {
        Ok(b) => Ok(b.get().target()),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(git_err(format!("looking up branch '{branch}'"))(e)),
    }
}

/// Commits reachable from `tip` and not from `base`.
fn unmerged(repo: &Repository, tip: Oid, base: Oid) -> Result<usize, GitError> {
    if tip == base {
        return Ok(0);
    }
    let what = "counting commits not on the base";
    let mut walk = repo.revwalk().map_err(git_err(what))?;
    walk.push(tip).map_err(git_err(what))?;
    walk.hide(base).map_err(git_err(what))?;
    let mut n = 0;
    for id in walk {
        id.map_err(git_err(what))?;
        n += 1;
    }
    Ok(n)
}

/// Whether `dir`'s `.git` file names an entry of `admins_dir` (it was a worktree of this
/// repository).
fn points_into(dir: &Path, admins_dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(".git")) else { return false };
    let Some(target) = text.trim_end().strip_prefix("gitdir: ") else { return false };
    let target = Path::new(target);
    let target = if target.is_absolute() { target.to_path_buf() } else { dir.join(target) };
    let admins = canonical(admins_dir);
    canonical(&target).starts_with(&admins) || target.starts_with(&admins)
}
