//! Repository discovery and agents' worktrees: finding the repository, resolving a base, creating and
//! removing linked worktrees and their branches, and the status/commit checks that keep work from being
//! lost.
//!
//! What is on disk stays compatible with the git CLI: an agent's worktree is an ordinary linked worktree
//! (`<common dir>/worktrees/<name>/` plus a `.git` file in the worktree), so `git worktree list`,
//! `git status` and `git worktree remove` work on it. The registration is written here, the same four
//! files git and libgit2's `git_worktree_add` write, and the checkout goes through git2: git2 0.21 does
//! not expose the checkout options of `WorktreeAddOptions`, and libgit2's add always runs the
//! attribute filters, whose lookups (two realpath() walks per file) double the time of a 20,000-file
//! checkout even when no attributes exist. Here they run only when some attribute source or
//! `core.autocrlf` could make them do something.
//!
//! libgit2's own pruning is never used: it deletes dirty files without asking, and it reads a worktree
//! that was moved by hand as prunable.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{BranchType, ErrorCode, Oid, Repository, StatusOptions, TreeWalkMode, TreeWalkResult};
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
    /// A name corral was given cannot be used as a git branch or worktree name.
    #[error("'{name}' is not a valid {what} name")]
    BadName { what: &'static str, name: String },
    #[error("branch '{0}' does not exist")]
    NoBranch(String),
    #[error("branch '{branch}' is checked out in {path}")]
    BranchCheckedOut { branch: String, path: PathBuf },
    /// `.git/worktrees/<name>` belongs to a worktree that corral must not touch.
    #[error("worktree name '{name}' is taken: {detail}")]
    NameTaken { name: String, detail: String },
    #[error("worktree '{0}' is locked; run `git worktree unlock {0}` first")]
    Locked(String),
    /// A path corral was asked to treat as a linked worktree is not one (or is another one).
    #[error("{path} is not the linked worktree '{name}' of this repository: {detail}")]
    NotAWorktree { path: PathBuf, name: String, detail: String },
    /// A worktree `corral new --worktree` cannot start an agent in.
    #[error("cannot adopt {path}: {why}")]
    NotAdoptable { path: PathBuf, why: String },
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

/// What `create_worktree` needs: where, under which names, from which commit.
#[derive(Debug, Clone, Copy)]
pub struct NewWorktree<'a> {
    /// The main worktree's root (or any path git2 can open the repository from without searching).
    pub root: &'a Path,
    /// The worktree's name: the directory under `<common dir>/worktrees/`.
    pub name: &'a str,
    /// The branch to create (short name, e.g. `corral/fix-login`).
    pub branch: &'a str,
    /// Where the worktree goes; must not exist.
    pub path: &'a Path,
    /// The commit the branch starts at (full hex id).
    pub base_commit: &'a str,
}

pub(super) fn git_err(what: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let what = what.into();
    move |source| GitError::Git { what, source }
}

pub(super) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> GitError {
    let what = what.into();
    move |source| GitError::Io { what, source }
}

/// Open the repository at exactly `path` (no search upwards).
pub(super) fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::open(path).map_err(|e| match e.code() {
        ErrorCode::NotFound => GitError::NotARepo(path.to_path_buf()),
        _ => GitError::Git {
            what: format!("opening the repository at {}", path.display()),
            source: e,
        },
    })
}

/// `p` without the trailing slash libgit2 puts on directories, canonicalized when possible.
pub(super) fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.components().collect())
}

/// Whether anything (file, directory, symlink, even a dangling one) is at `p`.
pub(super) fn exists(p: &Path) -> Result<bool, GitError> {
    match fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(GitError::Io { what: format!("checking {}", p.display()), source: e }),
    }
}

pub fn discover(path: &Path) -> Result<RepoInfo, GitError> {
    if !exists(path)? {
        return Err(GitError::Io {
            what: format!("looking for a repository at {}", path.display()),
            source: io::Error::from(io::ErrorKind::NotFound),
        });
    }
    let repo = Repository::discover(path).map_err(|e| match e.code() {
        ErrorCode::NotFound => GitError::NotARepo(path.to_path_buf()),
        _ => GitError::Git {
            what: format!("looking for a repository at {}", path.display()),
            source: e,
        },
    })?;
    if repo.is_bare() {
        return Err(GitError::Bare(canonical(repo.path())));
    }
    // From a linked worktree, address the repository through its main worktree.
    let main = if repo.is_worktree() { open(repo.commondir())? } else { repo };
    let common_dir = canonical(main.commondir());
    let Some(workdir) = main.workdir() else {
        // A bare repository whose linked worktree we were called from.
        return Err(GitError::Bare(common_dir));
    };
    let root = canonical(workdir);
    let head = match main.head() {
        Ok(head) => head,
        Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
            return Err(GitError::Unborn(root));
        }
        Err(e) => return Err(git_err(format!("reading HEAD of {}", root.display()))(e)),
    };
    let current_branch =
        if head.is_branch() { head.shorthand().ok().map(str::to_string) } else { None };
    Ok(RepoInfo { root, common_dir, current_branch })
}

pub fn resolve_base(root: &Path, base: Option<&str>) -> Result<(String, String), GitError> {
    let repo = open(root)?;
    let Some(base) = base else {
        let head = match repo.head() {
            Ok(head) => head,
            Err(e) if e.code() == ErrorCode::UnbornBranch => {
                return Err(GitError::Unborn(root.to_path_buf()));
            }
            Err(e) => return Err(git_err(format!("reading HEAD of {}", root.display()))(e)),
        };
        let commit = head
            .peel_to_commit()
            .map_err(git_err(format!("reading the commit at HEAD of {}", root.display())))?;
        let id = commit.id().to_string();
        let name = match head.shorthand().ok() {
            Some(short) if head.is_branch() => short.to_string(),
            _ => id.clone(),
        };
        return Ok((name, id));
    };
    if base.is_empty() {
        return Err(GitError::BadBase(base.to_string()));
    }
    // A local branch wins over a tag of the same name (git's own lookup order prefers the tag).
    if let Ok(branch) = repo.find_branch(base, BranchType::Local) {
        let commit = branch
            .get()
            .peel_to_commit()
            .map_err(git_err(format!("reading the tip of branch '{base}'")))?;
        return Ok((base.to_string(), commit.id().to_string()));
    }
    let (object, reference) =
        repo.revparse_ext(base).map_err(|_| GitError::BadBase(base.to_string()))?;
    let commit = object.peel_to_commit().map_err(|_| GitError::BadBase(base.to_string()))?;
    let id = commit.id().to_string();
    // `refs/heads/x` or `HEAD` name a branch: report it by its short name so it can be merged into.
    let branch_name = reference
        .and_then(|r| r.resolve().ok())
        .and_then(|r| if r.is_branch() { r.shorthand().ok().map(str::to_string) } else { None });
    Ok((branch_name.unwrap_or_else(|| base.to_string()), id))
}

/// The state of `<common dir>/worktrees/<name>` before an add.
pub(super) enum AdminDir {
    Absent,
    /// Left by an add that never finished: no `gitdir` file, or one naming a directory that does not
    /// exist and no index (the checkout never completed). Safe to delete.
    Debris,
    /// A worktree whose directory exists.
    Live(PathBuf),
    /// A worktree that was checked out but whose directory is gone: moved by hand or deleted. git reads
    /// both as prunable; only the user can tell them apart.
    Missing(PathBuf),
    Locked,
}

/// The worktree directory an admin dir's `gitdir` file points at (`<worktree>/.git` → `<worktree>`).
pub(super) fn admin_worktree_path(admin: &Path) -> Result<Option<PathBuf>, GitError> {
    let gitdir = admin.join("gitdir");
    let text = match fs::read_to_string(&gitdir) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("reading {}", gitdir.display()))(e)),
    };
    let target = text.trim_end_matches(['\n', '\r']);
    if target.is_empty() {
        return Ok(None);
    }
    let target = Path::new(target);
    // git writes absolute paths unless worktree.useRelativePaths; those are relative to the admin dir.
    let target = if target.is_absolute() { target.to_path_buf() } else { admin.join(target) };
    Ok(Some(target.parent().map(Path::to_path_buf).unwrap_or(target)))
}

pub(super) fn admin_state(admin: &Path) -> Result<AdminDir, GitError> {
    if !exists(admin)? {
        return Ok(AdminDir::Absent);
    }
    if exists(&admin.join("locked"))? {
        return Ok(AdminDir::Locked);
    }
    let Some(dir) = admin_worktree_path(admin)? else {
        return Ok(AdminDir::Debris);
    };
    if exists(&dir)? {
        return Ok(AdminDir::Live(dir));
    }
    if exists(&admin.join("index"))? {
        return Ok(AdminDir::Missing(dir));
    }
    Ok(AdminDir::Debris)
}

fn check_worktree_name(name: &str) -> Result<(), GitError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.ends_with(".lock")
        || name.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(GitError::BadName { what: "worktree", name: name.to_string() });
    }
    Ok(())
}

fn check_branch_name(branch: &str) -> Result<(), GitError> {
    match git2::Branch::name_is_valid(branch) {
        Ok(true) => Ok(()),
        _ => Err(GitError::BadName { what: "branch", name: branch.to_string() }),
    }
}

/// Everything `create_worktree` made so far, undone in reverse on failure.
struct Undo<'r> {
    repo: &'r Repository,
    branch: Option<String>,
    worktrees_dir: Option<PathBuf>,
    admin: Option<PathBuf>,
    workdir: Option<PathBuf>,
    parents: Vec<PathBuf>,
}

impl Undo<'_> {
    fn run(self) {
        if let Some(dir) = &self.workdir
            && let Err(e) = remove_tree(dir)
        {
            tracing::warn!("rolling back worktree add: removing {}: {e}", dir.display());
        }
        if let Some(admin) = &self.admin
            && let Err(e) = remove_tree(admin)
        {
            tracing::warn!("rolling back worktree add: removing {}: {e}", admin.display());
        }
        if let Some(dir) = &self.worktrees_dir {
            let _ = fs::remove_dir(dir);
        }
        if let Some(branch) = &self.branch {
            let deleted = self
                .repo
                .find_branch(branch, BranchType::Local)
                .and_then(|b| b.into_reference().delete());
            if let Err(e) = deleted {
                tracing::warn!("rolling back worktree add: deleting branch {branch}: {e}");
            }
        }
        for dir in self.parents.iter().rev() {
            // Only directories this call created, and only while still empty.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Whether `dir`'s `.git` file points at `admin`, i.e. `dir` is that linked worktree.
pub(super) fn gitfile_points_at(dir: &Path, admin: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(".git")) else {
        return false;
    };
    let Some(target) = text.trim_end().strip_prefix("gitdir: ") else {
        return false;
    };
    canonical(Path::new(target)) == canonical(admin)
}

pub fn create_worktree(spec: &NewWorktree) -> Result<(), GitError> {
    check_worktree_name(spec.name)?;
    check_branch_name(spec.branch)?;
    let repo = open(spec.root)?;
    let base = Oid::from_str(spec.base_commit)
        .and_then(|id| repo.find_commit(id))
        .map_err(|_| GitError::BadBase(spec.base_commit.to_string()))?;
    if branch_exists_in(&repo, spec.branch)? {
        return Err(GitError::BranchExists(spec.branch.to_string()));
    }
    if exists(spec.path)? {
        return Err(GitError::PathExists(spec.path.to_path_buf()));
    }

    let worktrees_dir = repo.commondir().join("worktrees");
    let admin = worktrees_dir.join(spec.name);
    let taken = |detail: String| GitError::NameTaken { name: spec.name.to_string(), detail };
    match admin_state(&admin)? {
        AdminDir::Absent => {}
        AdminDir::Debris => {
            tracing::info!("removing debris of an unfinished worktree add: {}", admin.display());
            remove_tree(&admin)
                .map_err(io_err(format!("removing stale worktree data {}", admin.display())))?;
        }
        AdminDir::Locked => return Err(GitError::Locked(spec.name.to_string())),
        AdminDir::Live(dir) => {
            return Err(taken(format!("its worktree is at {}", dir.display())));
        }
        AdminDir::Missing(dir) => {
            return Err(taken(format!(
                "it is registered at {}, which is missing (moved by hand? run `git worktree repair \
                 <new path>`; deleted? run `git worktree prune`)",
                dir.display()
            )));
        }
    }

    let mut undo = Undo {
        repo: &repo,
        branch: None,
        worktrees_dir: None,
        admin: None,
        workdir: None,
        parents: Vec::new(),
    };
    let result = add(&repo, spec, &base, &worktrees_dir, &admin, &mut undo);
    if result.is_err() {
        undo.run();
    }
    result
}

fn add(
    repo: &Repository,
    spec: &NewWorktree,
    base: &git2::Commit<'_>,
    worktrees_dir: &Path,
    admin: &Path,
    undo: &mut Undo<'_>,
) -> Result<(), GitError> {
    if let Some(parent) = spec.path.parent() {
        let mut missing = Vec::new();
        let mut p = parent;
        while !p.as_os_str().is_empty() && !exists(p)? {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(up) => p = up,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            match fs::create_dir(&dir) {
                Ok(()) => undo.parents.push(dir),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(format!("creating {}", dir.display()))(e)),
            }
        }
    }
    if !exists(worktrees_dir)? {
        match fs::create_dir(worktrees_dir) {
            Ok(()) => undo.worktrees_dir = Some(worktrees_dir.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("creating {}", worktrees_dir.display()))(e)),
        }
    }

    repo.branch(spec.branch, base, false).map_err(|e| match e.code() {
        ErrorCode::Exists => GitError::BranchExists(spec.branch.to_string()),
        _ => GitError::Git { what: format!("creating branch '{}'", spec.branch), source: e },
    })?;
    undo.branch = Some(spec.branch.to_string());
    crate::failpoint::hit("new:branch");

    // Exclusive mkdirs: whatever is found already there (a concurrent add) is not ours to remove.
    match fs::create_dir(admin) {
        Ok(()) => undo.admin = Some(admin.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(GitError::NameTaken {
                name: spec.name.to_string(),
                detail: format!("{} appeared while creating it", admin.display()),
            });
        }
        Err(e) => return Err(io_err(format!("creating {}", admin.display()))(e)),
    }
    match fs::create_dir(spec.path) {
        Ok(()) => undo.workdir = Some(spec.path.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(GitError::PathExists(spec.path.to_path_buf()));
        }
        Err(e) => return Err(io_err(format!("creating {}", spec.path.display()))(e)),
    }

    // The registration git itself writes (and libgit2's worktree add): a `.git` file naming the admin
    // dir, and in the admin dir the way back, the common dir and the worktree's own HEAD.
    let workdir = canonical(spec.path);
    let admin = canonical(admin);
    let write = |path: PathBuf, parts: &[&[u8]]| {
        fs::write(&path, parts.concat()).map_err(io_err(format!("writing {}", path.display())))
    };
    write(workdir.join(".git"), &[b"gitdir: ", admin.as_os_str().as_bytes(), b"\n"])?;
    write(admin.join("commondir"), &[b"../..\n"])?;
    write(admin.join("gitdir"), &[workdir.join(".git").as_os_str().as_bytes(), b"\n"])?;
    write(admin.join("HEAD"), &[b"ref: refs/heads/", spec.branch.as_bytes(), b"\n"])?;
    crate::failpoint::hit("new:registered");

    let what = || format!("checking out worktree '{}' at {}", spec.name, spec.path.display());
    let worktree = Repository::open(&workdir).map_err(git_err(what()))?;
    let tree = base.tree().map_err(git_err(what()))?;
    let mut checkout = CheckoutBuilder::new();
    // Attribute lookups cost libgit2 two realpath() walks per file, half the time of a checkout; when
    // no attributes and no autocrlf can apply, the filters they drive are no-ops anyway.
    checkout.disable_filters(!filters_may_apply(repo, &tree)?);
    checkout.progress(|path, _, _| {
        if path.is_some() {
            crate::failpoint::hit("new:checkout");
        }
    });
    worktree.checkout_head(Some(&mut checkout)).map_err(git_err(what()))
}

/// Whether checking out `tree` could run a content filter: any attributes file libgit2 reads
/// (`.gitattributes` in the tree, `info/attributes`, `core.attributesFile` or the XDG default, the
/// system file) or `core.autocrlf = true`. Conservative: a source that exists counts, whatever it says.
fn filters_may_apply(repo: &Repository, tree: &git2::Tree<'_>) -> Result<bool, GitError> {
    let config = repo.config().map_err(git_err("reading the repository's config"))?;
    if config.get_bool("core.autocrlf").unwrap_or(false)
        || config.get_entry("core.attributesFile").is_ok()
    {
        return Ok(true);
    }
    let xdg = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")),
    };
    let files = [
        Some(repo.commondir().join("info/attributes")),
        xdg.map(|dir| dir.join("git/attributes")),
        Some(PathBuf::from("/etc/gitattributes")),
    ];
    for file in files.iter().flatten() {
        if exists(file)? {
            return Ok(true);
        }
    }
    let mut found = false;
    let walked = tree.walk(TreeWalkMode::PreOrder, |_, entry| {
        if entry.name_bytes() == b".gitattributes" {
            found = true;
            TreeWalkResult::Abort
        } else {
            TreeWalkResult::Ok
        }
    });
    if !found {
        walked.map_err(git_err("looking for .gitattributes files"))?;
    }
    Ok(found)
}

pub fn dirty_paths(worktree: &Path) -> Result<Vec<String>, GitError> {
    let repo = open(worktree)?;
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(false);
    let statuses = repo
        .statuses(Some(&mut opts))
        .map_err(git_err(format!("reading the status of {}", worktree.display())))?;
    Ok(statuses
        .iter()
        .filter(|e| !e.status().is_ignored() && e.status() != git2::Status::CURRENT)
        .map(|e| String::from_utf8_lossy(e.path_bytes()).into_owned())
        .collect())
}

/// Resolve `spec` (branch, tag, commit-ish) to a commit id.
pub(super) fn resolve_commit(repo: &Repository, spec: &str) -> Option<Oid> {
    if let Ok(branch) = repo.find_branch(spec, BranchType::Local) {
        return branch.get().peel_to_commit().ok().map(|c| c.id());
    }
    repo.revparse_single(spec).ok()?.peel_to_commit().ok().map(|c| c.id())
}

pub fn branch_merged(root: &Path, branch: &str, base: &str) -> Result<bool, GitError> {
    let repo = open(root)?;
    let tip = repo
        .find_branch(branch, BranchType::Local)
        .map_err(|_| GitError::NoBranch(branch.to_string()))?
        .get()
        .peel_to_commit()
        .map_err(git_err(format!("reading the tip of branch '{branch}'")))?
        .id();
    let base_tip =
        resolve_commit(&repo, base).ok_or_else(|| GitError::BadBase(base.to_string()))?;
    if tip == base_tip {
        return Ok(true);
    }
    repo.graph_descendant_of(base_tip, tip)
        .map_err(git_err(format!("comparing branch '{branch}' with '{base}'")))
}

pub fn snapshot_commit(
    worktree: &Path,
    message: &str,
    git_env: &[(String, String)],
) -> Result<Option<String>, GitError> {
    if dirty_paths(worktree)?.is_empty() {
        return Ok(None);
    }
    let repo = open(worktree)?;
    let what = |doing: &str| format!("{doing} in {}", worktree.display());
    let mut index = repo.index().map_err(git_err(what("reading the index")))?;
    super::state::stage_all(&repo, &mut index, None).map_err(git_err(what("staging changes")))?;
    let tree_id = index.write_tree().map_err(git_err(what("writing the tree")))?;
    let parent = match repo.head() {
        Ok(head) => Some(head.peel_to_commit().map_err(git_err(what("reading HEAD")))?),
        Err(e) if e.code() == ErrorCode::UnbornBranch => None,
        Err(e) => return Err(git_err(what("reading HEAD"))(e)),
    };
    if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
        // Only the index differed (e.g. a staged change undone in the file); sync it so status is clean.
        index.write().map_err(git_err(what("writing the index")))?;
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id).map_err(git_err(what("reading the tree")))?;
    let who = super::Identity::resolve(&repo, git_env)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    // The index is written only once the commit exists, so a failure leaves the user's staging as it was.
    let id = repo
        .commit(Some("HEAD"), &who.author, &who.committer, message, &tree, &parents)
        .map_err(git_err(what("committing")))?;
    index.write().map_err(git_err(what("writing the index")))?;
    Ok(Some(id.to_string()))
}

/// Delete a directory tree; read-only directories inside (Go's module cache, some build outputs) are
/// made writable so their entries can be removed, as `rm -rf` would.
pub(super) fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_dirs_writable(dir);
            fs::remove_dir_all(dir)
        }
        Err(e) => Err(e),
    }
}

fn make_dirs_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    let _ = fs::set_permissions(dir, perms);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_dirs_writable(&entry.path());
        }
    }
}

/// Where a worktree directory goes while it is deleted: beside it (same file system, so the rename
/// is atomic), hidden, and named so that recovery finds it.
fn aside_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some(path.with_file_name(format!(".{name}.corral-removing")))
}

/// Remove a directory by first renaming it to `aside`: a kill during the (long) deletion then leaves
/// either the whole directory where it was or debris under a name git never reads.
fn remove_via(dir: &Path, aside: &Path, point: &str) -> Result<(), GitError> {
    if exists(aside)? {
        remove_tree(aside).map_err(io_err(format!("removing {}", aside.display())))?;
    }
    fs::rename(dir, aside).map_err(io_err(format!("moving {} aside", dir.display())))?;
    crate::failpoint::hit(point);
    remove_tree(aside).map_err(io_err(format!("removing {}", aside.display())))
}

pub fn remove_worktree(root: &Path, name: &str, path: &Path) -> Result<(), GitError> {
    check_worktree_name(name)?;
    let repo = open(root)?;
    let not_worktree = |detail: String| GitError::NotAWorktree {
        path: path.to_path_buf(),
        name: name.to_string(),
        detail,
    };
    let worktrees_dir = repo.commondir().join("worktrees");
    let admin = worktrees_dir.join(name);
    if let Some(main) = repo.workdir()
        && canonical(main) == canonical(path)
    {
        return Err(not_worktree("it is the main worktree".to_string()));
    }
    let aside = aside_path(path);
    // What an interrupted removal of this worktree left.
    if let Some(a) = &aside
        && exists(a)?
    {
        remove_tree(a).map_err(io_err(format!("removing {}", a.display())))?;
    }
    let admin_exists = exists(&admin)?;
    if admin_exists {
        if exists(&admin.join("locked"))? {
            return Err(GitError::Locked(name.to_string()));
        }
        // Never delete the admin dir of a worktree that lives somewhere else.
        if let Some(registered) = admin_worktree_path(&admin)?
            && exists(&registered)?
            && (!exists(path)? || canonical(&registered) != canonical(path))
        {
            return Err(not_worktree(format!(
                "the worktree '{name}' is at {}",
                registered.display()
            )));
        }
    }
    if exists(path)? {
        // Only ever delete a directory that is this worktree.
        if !gitfile_points_at(path, &admin) {
            return Err(not_worktree(format!(
                "its .git file does not point at {}",
                admin.display()
            )));
        }
        match &aside {
            Some(a) => remove_via(path, a, "rm:worktree")?,
            None => remove_tree(path)
                .map_err(io_err(format!("removing worktree {}", path.display())))?,
        }
    }
    if admin_exists {
        remove_admin(repo.commondir(), &admin, name)?;
    }
    // git leaves no empty `worktrees/` behind either.
    let _ = fs::remove_dir(&worktrees_dir);
    Ok(())
}

/// Remove `<common dir>/worktrees/<name>` by way of corral's trash directory, which git never reads
/// and recovery empties.
fn remove_admin(common: &Path, admin: &Path, name: &str) -> Result<(), GitError> {
    let trash = super::intent::trash_dir(common);
    fs::create_dir_all(&trash).map_err(io_err(format!("creating {}", trash.display())))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    remove_via(admin, &trash.join(format!("{name}-{stamp}")), "rm:admin")
}

/// Undo what an interrupted `new` made for one agent that never got a record: its worktree (only
/// when its `.git` file points at the agent's admin dir, or it is still empty), the admin dir
/// (only when it names that worktree or nothing), and the branch. Anything an agent may already
/// have done there is kept first under `refs/corral/backup/<name>/`. Returns notes for the user.
pub fn undo_new_agent(
    root: &Path,
    a: &super::intent::NewAgentStep,
) -> Result<Vec<String>, GitError> {
    let repo = open(root)?;
    let common = repo.commondir().to_path_buf();
    let admin = common.join("worktrees").join(&a.name);
    let mut notes = Vec::new();
    if let Some(aside) = aside_path(&a.worktree)
        && exists(&aside)?
    {
        remove_tree(&aside).map_err(io_err(format!("removing {}", aside.display())))?;
    }
    let ours = exists(&a.worktree)? && gitfile_points_at(&a.worktree, &admin);
    // The checkout wrote the index last: before that no agent ran there.
    if ours && exists(&admin.join("index"))? {
        notes.extend(preserve_new_work(&repo, a)?);
    }
    if ours {
        remove_worktree(root, &a.name, &a.worktree)?;
    } else {
        if exists(&a.worktree)? {
            let empty = fs::read_dir(&a.worktree).map(|mut d| d.next().is_none()).unwrap_or(false);
            if empty {
                fs::remove_dir(&a.worktree)
                    .map_err(io_err(format!("removing {}", a.worktree.display())))?;
            } else {
                notes.push(format!(
                    "left {}: it is not the worktree corral was creating for agent '{}'",
                    a.worktree.display(),
                    a.name
                ));
            }
        }
        if exists(&admin)? {
            let mine = match admin_worktree_path(&admin)? {
                None => true,
                Some(dir) => canonical(&dir) == canonical(&a.worktree),
            };
            if mine && !exists(&a.worktree)? {
                remove_admin(&common, &admin, &a.name)?;
            }
        }
        let _ = fs::remove_dir(common.join("worktrees"));
    }
    if branch_exists_in(&repo, &a.branch)? {
        let tip = repo
            .find_reference(&format!("refs/heads/{}", a.branch))
            .ok()
            .and_then(|r| r.target())
            .map(|t| t.to_string());
        if tip.as_deref() != Some(a.base_commit.as_str()) && notes.is_empty() {
            notes.extend(preserve_new_work(&repo, a)?);
        }
        delete_branch(root, &a.branch)?;
    }
    Ok(notes)
}

/// Keep the branch tip (and the worktree's uncommitted files, as a commit on top of it) of an agent
/// whose `new` is being undone, when they differ from where it started.
fn preserve_new_work(
    repo: &Repository,
    a: &super::intent::NewAgentStep,
) -> Result<Vec<String>, GitError> {
    let refname = format!("refs/heads/{}", a.branch);
    let Some(tip) = repo.find_reference(&refname).ok().and_then(|r| r.target()) else {
        return Ok(Vec::new());
    };
    let mut keep = tip;
    if let Ok(wt) = Repository::open(&a.worktree)
        && !dirty_paths(&a.worktree)?.is_empty()
    {
        let what = format!("saving the work in {}", a.worktree.display());
        let (_, tree) = super::state::worktree_state(&wt).map_err(git_err(what.clone()))?;
        let tree = repo.find_tree(tree).map_err(git_err(what.clone()))?;
        let parent = repo.find_commit(tip).map_err(git_err(what.clone()))?;
        // Recovery runs for no client: the repository's own identity, else corral's.
        let who = super::Identity::resolve(repo, &[])?;
        let msg = format!("corral: work of agent {} whose creation was interrupted\n", a.name);
        keep = repo
            .commit(None, &who.author, &who.committer, &msg, &tree, &[&parent])
            .map_err(git_err(what))?;
    }
    if keep.to_string() == a.base_commit {
        return Ok(Vec::new());
    }
    let base = Oid::from_str(&a.base_commit).unwrap_or(keep);
    let why = format!("corral: work of agent {} whose creation was interrupted", a.name);
    let prefix = match super::merge::backup_refs(repo, &a.name, keep, base, &why) {
        Ok(p) => p,
        Err(super::LandError::Git(e)) => return Err(e),
        Err(e) => return Err(io_err("keeping the work under a backup ref")(io::Error::other(e))),
    };
    Ok(vec![format!(
        "agent '{}' was being created when the server stopped; what it had done is kept under {prefix}/agent",
        a.name
    )])
}

/// The git side of `rm` once its record is written: the worktree and admin dir go, and the branch
/// unless `keep_branch` or it has commits the base lacks. Run again after a crash, it finishes.
pub fn finish_remove(
    root: &Path,
    name: &str,
    branch: &str,
    worktree: &Path,
    base: &str,
    keep_branch: bool,
) -> Result<Vec<String>, GitError> {
    remove_worktree(root, name, worktree)?;
    crate::failpoint::hit("rm:removed");
    if !keep_branch && branch_exists(root, branch)? && branch_merged(root, branch, base)? {
        delete_branch(root, branch)?;
    }
    Ok(Vec::new())
}

/// Every worktree's HEAD file with the directory it belongs to: the main one, then linked ones (even
/// those whose directory is missing: git still counts their branch as checked out).
pub(super) fn worktree_heads(repo: &Repository) -> Result<Vec<(PathBuf, PathBuf)>, GitError> {
    let common = repo.commondir().to_path_buf();
    let main_dir = repo
        .workdir()
        .map(canonical)
        .or_else(|| {
            // Opened from a linked worktree: the main worktree is the common dir's parent.
            common.parent().map(Path::to_path_buf)
        })
        .unwrap_or_else(|| common.clone());
    let mut heads = vec![(common.join("HEAD"), main_dir)];
    let worktrees_dir = common.join("worktrees");
    let entries = match fs::read_dir(&worktrees_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(heads),
        Err(e) => return Err(io_err(format!("reading {}", worktrees_dir.display()))(e)),
    };
    for entry in entries.flatten() {
        let admin = entry.path();
        let dir = admin_worktree_path(&admin)?.unwrap_or_else(|| admin.clone());
        heads.push((admin.join("HEAD"), dir));
    }
    Ok(heads)
}

pub fn delete_branch(root: &Path, branch: &str) -> Result<(), GitError> {
    let repo = open(root)?;
    let mut found = repo
        .find_branch(branch, BranchType::Local)
        .map_err(|_| GitError::NoBranch(branch.to_string()))?;
    let full = format!("refs/heads/{branch}");
    for (head, dir) in worktree_heads(&repo)? {
        let Ok(text) = fs::read_to_string(&head) else { continue };
        if text.trim_end().strip_prefix("ref: ") == Some(full.as_str()) {
            return Err(GitError::BranchCheckedOut { branch: branch.to_string(), path: dir });
        }
    }
    found.delete().map_err(git_err(format!("deleting branch '{branch}'")))
}

fn branch_exists_in(repo: &Repository, branch: &str) -> Result<bool, GitError> {
    if !matches!(git2::Branch::name_is_valid(branch), Ok(true)) {
        return Ok(false);
    }
    match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(false),
        Err(e) => Err(git_err(format!("looking up branch '{branch}'"))(e)),
    }
}

pub fn branch_exists(root: &Path, branch: &str) -> Result<bool, GitError> {
    branch_exists_in(&open(root)?, branch)
}

/// Whether `path` is a linked worktree of the repository at `root` that git can open: its `.git` file
/// points at an admin dir of this repository, and that admin dir points back at it.
pub fn is_linked_worktree(root: &Path, path: &Path) -> Result<bool, GitError> {
    let repo = open(root)?;
    let worktrees_dir = canonical(&repo.commondir().join("worktrees"));
    let Ok(text) = fs::read_to_string(path.join(".git")) else {
        return Ok(false);
    };
    let Some(target) = text.trim_end().strip_prefix("gitdir: ") else {
        return Ok(false);
    };
    let target = Path::new(target);
    let admin =
        canonical(&if target.is_absolute() { target.to_path_buf() } else { path.join(target) });
    if admin.parent() != Some(worktrees_dir.as_path()) {
        return Ok(false);
    }
    let back = admin_worktree_path(&admin)?;
    Ok(back.is_some_and(|dir| canonical(&dir) == canonical(path)) && open(path).is_ok())
}
