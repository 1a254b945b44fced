//! Real repositories in temp dirs, checked with the git CLI the way a user would see them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::*;

struct Fixture {
    tmp: TempDir,
    root: PathBuf,
}

impl Fixture {
    /// A repository on `main` with a few committed files, a `.gitignore` and a tag.
    fn new() -> Fixture {
        let tmp = TempDir::new().unwrap();
        fs::create_dir(tmp.path().join("home")).unwrap();
        let root = tmp.path().join("repo");
        fs::create_dir(&root).unwrap();
        let root = fs::canonicalize(&root).unwrap();
        let f = Fixture { tmp, root };
        f.git(&f.root, &["init", "-q", "-b", "main"]);
        f.git(&f.root, &["config", "user.name", "Test User"]);
        f.git(&f.root, &["config", "user.email", "test@example.com"]);
        write(&f.root.join("README.md"), "hello\n");
        write(&f.root.join("src/lib.rs"), "pub fn f() {}\n");
        write(&f.root.join(".gitignore"), "*.log\nnode_modules/\ntarget/\n.env\n");
        f.git(&f.root, &["add", "-A"]);
        f.git(&f.root, &["commit", "-q", "-m", "initial"]);
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn cmd(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("HOME", self.tmp.path().join("home"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test User")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test User")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .unwrap()
    }

    /// Run git, assert success, return stdout.
    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.cmd(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn head(&self, dir: &Path, rev: &str) -> String {
        self.git(dir, &["rev-parse", rev]).trim().to_string()
    }

    fn branches(&self) -> String {
        self.git(&self.root, &["branch", "--list", "--format=%(refname:short)"])
    }

    fn admin(&self, name: &str) -> PathBuf {
        self.root.join(".git/worktrees").join(name)
    }

    /// Create an agent worktree the way corral does: base = current branch.
    fn create(&self, name: &str, path: &Path) -> Result<(), GitError> {
        let (_, commit) = resolve_base(&self.root, None).unwrap();
        create_worktree(&NewWorktree {
            root: &self.root,
            name,
            branch: &format!("corral/{name}"),
            path,
            base_commit: &commit,
        })
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn porcelain_worktrees(f: &Fixture) -> String {
    f.git(&f.root, &["worktree", "list", "--porcelain"])
}

#[test]
fn discover_from_subdir_and_linked_worktree_returns_main_root() {
    let f = Fixture::new();
    let info = discover(&f.root.join("src")).unwrap();
    assert_eq!(info.root, f.root);
    assert_eq!(info.common_dir, f.root.join(".git"));
    assert_eq!(info.current_branch.as_deref(), Some("main"));

    let wt = f.path("linked");
    f.git(&f.root, &["worktree", "add", "-q", "-b", "feat", wt.to_str().unwrap()]);
    let info = discover(&wt.join("src")).unwrap();
    assert_eq!(info.root, f.root, "a linked worktree must resolve to the main root");
    assert_eq!(info.common_dir, f.root.join(".git"));
    assert_eq!(info.current_branch.as_deref(), Some("main"));

    f.git(&f.root, &["checkout", "-q", "--detach"]);
    assert_eq!(discover(&f.root).unwrap().current_branch, None);
}

#[test]
fn discover_errors_name_the_path() {
    let f = Fixture::new();
    let plain = f.path("plain");
    fs::create_dir(&plain).unwrap();
    let err = discover(&plain).unwrap_err();
    assert!(matches!(err, GitError::NotARepo(ref p) if p == &plain), "{err:?}");
    assert!(err.to_string().contains(plain.to_str().unwrap()), "{err}");

    let bare = f.path("bare.git");
    f.git(f.tmp.path(), &["init", "-q", "--bare", bare.to_str().unwrap()]);
    let err = discover(&bare).unwrap_err();
    assert!(matches!(err, GitError::Bare(_)), "{err:?}");
    assert!(err.to_string().contains("bare.git"), "{err}");

    let unborn = f.path("unborn");
    f.git(f.tmp.path(), &["init", "-q", unborn.to_str().unwrap()]);
    let err = discover(&unborn).unwrap_err();
    assert!(matches!(err, GitError::Unborn(_)), "{err:?}");
    assert!(err.to_string().contains("unborn"), "{err}");
}

#[test]
fn resolve_base_default_branch_tag_sha_and_bad() {
    let f = Fixture::new();
    let first = f.head(&f.root, "HEAD");
    f.git(&f.root, &["tag", "-a", "v1", "-m", "release"]);
    f.git(&f.root, &["branch", "feat"]);
    write(&f.root.join("README.md"), "two\n");
    f.git(&f.root, &["commit", "-q", "-am", "second"]);
    let second = f.head(&f.root, "HEAD");

    assert_eq!(resolve_base(&f.root, None).unwrap(), ("main".to_string(), second.clone()));
    assert_eq!(resolve_base(&f.root, Some("feat")).unwrap(), ("feat".to_string(), first.clone()));
    assert_eq!(
        resolve_base(&f.root, Some("refs/heads/feat")).unwrap(),
        ("feat".to_string(), first.clone())
    );
    // An annotated tag resolves to the commit it tags.
    assert_eq!(resolve_base(&f.root, Some("v1")).unwrap(), ("v1".to_string(), first.clone()));
    assert_eq!(resolve_base(&f.root, Some(&first)).unwrap(), (first.clone(), first.clone()));
    assert_eq!(resolve_base(&f.root, Some(&first[..10])).unwrap().1, first);

    let err = resolve_base(&f.root, Some("nope")).unwrap_err();
    assert!(matches!(err, GitError::BadBase(ref b) if b == "nope"), "{err:?}");
    assert!(err.to_string().contains("'nope'"), "{err}");

    f.git(&f.root, &["checkout", "-q", "--detach", "HEAD~1"]);
    assert_eq!(resolve_base(&f.root, None).unwrap(), (first.clone(), first));
}

#[test]
fn create_worktree_is_a_normal_linked_worktree() {
    let f = Fixture::new();
    let base = f.head(&f.root, "HEAD");
    // Parent directories that do not exist yet are created.
    let wt = f.path("data/worktrees/repo-1234/alpha");
    f.create("alpha", &wt).unwrap();

    let list = porcelain_worktrees(&f);
    let entry = format!("worktree {}\nHEAD {base}\nbranch refs/heads/corral/alpha\n", wt.display());
    assert!(list.contains(&entry), "{list}");
    assert_eq!(f.git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(fs::read_to_string(wt.join("README.md")).unwrap(), "hello\n");
    assert_eq!(fs::read_to_string(wt.join("src/lib.rs")).unwrap(), "pub fn f() {}\n");
    assert_eq!(f.git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "corral/alpha");
    assert!(is_linked_worktree(&f.root, &wt).unwrap());
    assert!(!is_linked_worktree(&f.root, &f.root).unwrap());
    assert!(branch_exists(&f.root, "corral/alpha").unwrap());
    assert!(!branch_exists(&f.root, "corral/beta").unwrap());

    // Work committed there is on the branch, as git sees it.
    write(&wt.join("new.txt"), "new\n");
    f.git(&wt, &["add", "new.txt"]);
    f.git(&wt, &["commit", "-q", "-m", "agent work"]);
    assert_eq!(f.git(&f.root, &["log", "-1", "--format=%s", "corral/alpha"]).trim(), "agent work");
}

#[test]
fn created_worktree_works_with_git_worktree_remove_and_cli_worktrees_are_recognised() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("cli", &wt).unwrap();
    f.git(&f.root, &["worktree", "remove", wt.to_str().unwrap()]);
    assert!(!wt.exists());
    assert!(!f.admin("cli").exists());
    assert_eq!(f.git(&f.root, &["worktree", "prune", "-n", "-v"]), "");

    let by_git = f.path("by-git");
    f.git(&f.root, &["worktree", "add", "-q", "-b", "manual", by_git.to_str().unwrap()]);
    assert!(is_linked_worktree(&f.root, &by_git).unwrap());
    remove_worktree(&f.root, "by-git", &by_git).unwrap();
    assert!(!porcelain_worktrees(&f).contains("by-git"));
}

#[test]
fn create_worktree_applies_gitattributes_filters() {
    let f = Fixture::new();
    write(&f.root.join("docs/.gitattributes"), "*.txt text eol=crlf\n");
    write(&f.root.join("docs/a.txt"), "one\ntwo\n");
    f.git(&f.root, &["add", "-A"]);
    f.git(&f.root, &["commit", "-q", "-m", "crlf docs"]);
    let wt = f.path("wt");
    f.create("eol", &wt).unwrap();
    assert_eq!(fs::read(wt.join("docs/a.txt")).unwrap(), b"one\r\ntwo\r\n");
    assert_eq!(fs::read(wt.join("README.md")).unwrap(), b"hello\n");
    assert_eq!(f.git(&wt, &["status", "--porcelain"]), "");

    // The same through core.autocrlf, with no attributes at all.
    let g = Fixture::new();
    g.git(&g.root, &["config", "core.autocrlf", "true"]);
    let wt = g.path("wt");
    g.create("auto", &wt).unwrap();
    assert_eq!(fs::read(wt.join("README.md")).unwrap(), b"hello\r\n");

    // And through the repository's own info/attributes.
    let h = Fixture::new();
    write(&h.root.join(".git/info/attributes"), "*.md text eol=crlf\n");
    let wt = h.path("wt");
    h.create("info", &wt).unwrap();
    assert_eq!(fs::read(wt.join("README.md")).unwrap(), b"hello\r\n");
    assert_eq!(fs::read(wt.join("src/lib.rs")).unwrap(), b"pub fn f() {}\n");
}

/// A commit whose tree has an entry named `.git`: libgit2 refuses to check it out, which fails the add
/// after the branch, the admin dir and the worktree dir were created.
fn poisoned_commit(f: &Fixture) -> String {
    let blob = f.git(&f.root, &["hash-object", "-w", "README.md"]);
    let input = format!("100644 blob {}\t.git\n", blob.trim());
    let mut child = Command::new("git")
        .args(["mktree"])
        .current_dir(&f.root)
        .env("HOME", f.tmp.path().join("home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let tree = String::from_utf8(out.stdout).unwrap();
    f.git(&f.root, &["commit-tree", tree.trim(), "-p", "HEAD", "-m", "poisoned"]).trim().to_string()
}

#[test]
fn failed_create_rolls_back_branch_admin_dir_and_directories() {
    let f = Fixture::new();
    let bad = poisoned_commit(&f);
    let wt = f.path("wts/deep/agent");
    let err = create_worktree(&NewWorktree {
        root: &f.root,
        name: "agent",
        branch: "corral/agent",
        path: &wt,
        base_commit: &bad,
    })
    .unwrap_err();
    assert!(err.to_string().contains("agent"), "{err}");
    assert_eq!(f.branches(), "main\n", "the branch must be rolled back");
    assert!(!f.admin("agent").exists(), "the admin dir must be rolled back");
    assert!(!wt.exists(), "the worktree dir must be rolled back");
    assert!(!f.path("wts").exists(), "parent dirs this call created must be rolled back");
    assert!(!porcelain_worktrees(&f).contains("agent"));

    // Nothing left behind blocks the next attempt under the same names.
    f.create("agent", &wt).unwrap();
    assert_eq!(f.git(&wt, &["status", "--porcelain"]), "");
    assert!(porcelain_worktrees(&f).contains("branch refs/heads/corral/agent"));
}

#[test]
fn create_refuses_existing_path_branch_or_name_without_leaving_anything() {
    let f = Fixture::new();
    // The path exists as a file: refused, file untouched, no branch.
    let file = f.path("taken");
    write(&file, "mine\n");
    let err = f.create("a", &file).unwrap_err();
    assert!(matches!(err, GitError::PathExists(ref p) if p == &file), "{err:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "mine\n");
    assert_eq!(f.branches(), "main\n");
    assert!(!f.admin("a").exists());

    // The branch exists: refused, and it still points where it did.
    let old = f.head(&f.root, "HEAD");
    f.git(&f.root, &["branch", "corral/b"]);
    write(&f.root.join("README.md"), "moved on\n");
    f.git(&f.root, &["commit", "-q", "-am", "later"]);
    let err = f.create("b", &f.path("wt-b")).unwrap_err();
    assert!(matches!(err, GitError::BranchExists(ref b) if b == "corral/b"), "{err:?}");
    assert!(err.to_string().contains("corral/b"));
    assert_eq!(f.head(&f.root, "corral/b"), old);
    assert!(!f.path("wt-b").exists());

    // The admin dir name collides with a live worktree: refused, the other worktree is untouched.
    f.create("c", &f.path("wt-c")).unwrap();
    let (_, base) = resolve_base(&f.root, None).unwrap();
    let err = create_worktree(&NewWorktree {
        root: &f.root,
        name: "c",
        branch: "corral/c2",
        path: &f.path("wt-c2"),
        base_commit: &base,
    })
    .unwrap_err();
    assert!(matches!(err, GitError::NameTaken { .. }), "{err:?}");
    assert!(err.to_string().contains("wt-c"), "{err}");
    assert!(!branch_exists(&f.root, "corral/c2").unwrap());
    assert!(!f.path("wt-c2").exists());
    assert_eq!(f.git(&f.path("wt-c"), &["status", "--porcelain"]), "");
}

#[test]
fn stale_debris_is_swept_but_a_moved_worktree_is_not_pruned() {
    let f = Fixture::new();
    // What a crashed add leaves: an empty admin dir.
    fs::create_dir_all(f.admin("crashed")).unwrap();
    f.create("crashed", &f.path("wt-crashed")).unwrap();
    assert_eq!(f.git(&f.path("wt-crashed"), &["status", "--porcelain"]), "");

    // Debris that got as far as writing gitdir (pointing at a directory that never appeared).
    fs::create_dir_all(f.admin("half")).unwrap();
    write(&f.admin("half").join("gitdir"), &format!("{}\n", f.path("gone/.git").display()));
    write(&f.admin("half").join("commondir"), "../..\n");
    write(&f.admin("half").join("HEAD"), "ref: refs/heads/corral/half\n");
    f.create("half", &f.path("wt-half")).unwrap();
    assert!(porcelain_worktrees(&f).contains(&format!("worktree {}", f.path("wt-half").display())));

    // A worktree moved by hand, with uncommitted work: its admin dir must survive a create under the
    // same name, so that `git worktree repair` can reconnect it.
    let old = f.path("wt-moved");
    f.create("moved", &old).unwrap();
    write(&old.join("README.md"), "unsaved work\n");
    let new = f.path("elsewhere");
    fs::rename(&old, &new).unwrap();
    let (_, base) = resolve_base(&f.root, None).unwrap();
    let err = create_worktree(&NewWorktree {
        root: &f.root,
        name: "moved",
        branch: "corral/moved-again",
        path: &f.path("wt-new"),
        base_commit: &base,
    })
    .unwrap_err();
    assert!(matches!(err, GitError::NameTaken { .. }), "{err:?}");
    assert!(err.to_string().contains("git worktree repair"), "{err}");
    assert!(f.admin("moved").join("index").exists(), "the moved worktree's admin dir was pruned");
    assert!(!branch_exists(&f.root, "corral/moved-again").unwrap());
    f.git(&new, &["worktree", "repair"]);
    assert_eq!(f.git(&new, &["status", "--porcelain"]), " M README.md\n");
    assert_eq!(fs::read_to_string(new.join("README.md")).unwrap(), "unsaved work\n");

    // A locked registration is never swept either.
    fs::create_dir_all(f.admin("locked")).unwrap();
    write(&f.admin("locked").join("locked"), "on a usb disk\n");
    let err = f.create("locked", &f.path("wt-locked")).unwrap_err();
    assert!(matches!(err, GitError::Locked(_)), "{err:?}");
    assert!(f.admin("locked").join("locked").exists());
}

#[test]
fn dirty_paths_sees_modified_staged_deleted_untracked_not_ignored() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("d", &wt).unwrap();
    assert!(dirty_paths(&wt).unwrap().is_empty());

    write(&wt.join("README.md"), "changed\n");
    write(&wt.join("staged.txt"), "s\n");
    f.git(&wt, &["add", "staged.txt"]);
    fs::remove_file(wt.join("src/lib.rs")).unwrap();
    write(&wt.join("notes/todo.txt"), "u\n");
    write(&wt.join("build.log"), "ignored\n");
    write(&wt.join("node_modules/x/index.js"), "ignored\n");

    let mut dirty = dirty_paths(&wt).unwrap();
    dirty.sort();
    assert_eq!(dirty, ["README.md", "notes/todo.txt", "src/lib.rs", "staged.txt"]);
}

/// Every file under `dir` (outside .git) with its bytes and mode.
fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                let mode = fs::metadata(&path).unwrap().permissions().mode();
                out.push((rel, fs::read(&path).unwrap(), mode));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn snapshot_commit_commits_everything_but_ignored_and_leaves_files_alone() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("snap", &wt).unwrap();
    assert_eq!(snapshot_commit(&wt, "nothing", &[]).unwrap(), None);

    write(&wt.join("README.md"), "changed\n");
    write(&wt.join("half.txt"), "staged version\n");
    f.git(&wt, &["add", "half.txt"]);
    write(&wt.join("half.txt"), "working version\n");
    fs::remove_file(wt.join("src/lib.rs")).unwrap();
    write(&wt.join("new/dir/file.rs"), "fn main() {}\n");
    write(&wt.join("run.sh"), "#!/bin/sh\n");
    fs::set_permissions(wt.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    write(&wt.join("debug.log"), "ignored\n");
    let before = snapshot_files(&wt);

    let id = snapshot_commit(&wt, "corral: snapshot of agent snap", &[]).unwrap().unwrap();
    assert_eq!(f.head(&f.root, "corral/snap"), id);
    assert_eq!(f.git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(snapshot_files(&wt), before, "files must be byte-identical");
    let changes = f.git(&wt, &["show", "--name-status", "--format=%an <%ae>%n%s", "HEAD"]);
    assert_eq!(
        changes,
        "Test User <test@example.com>\ncorral: snapshot of agent snap\n\nM\tREADME.md\nA\thalf.txt\n\
         A\tnew/dir/file.rs\nA\trun.sh\nD\tsrc/lib.rs\n"
    );
    // The working version of a partly staged file is what gets committed; modes are kept.
    assert_eq!(f.git(&wt, &["show", "HEAD:half.txt"]), "working version\n");
    assert!(f.git(&wt, &["ls-tree", "HEAD", "run.sh"]).starts_with("100755"));
    assert!(wt.join("debug.log").exists());
    assert_eq!(snapshot_commit(&wt, "again", &[]).unwrap(), None);
}

/// Issue 15: without `user.name`, corral's commits were by `corral <corral@localhost>` even when
/// the git CLI would have used the identity variables. Now git's order: the asking client's
/// `GIT_*` variables, then the config (`author.*` over `user.*`), then `EMAIL`, then corral.
#[test]
fn snapshot_commits_are_by_the_identity_git_would_use() {
    let f = Fixture::new();
    f.git(&f.root, &["config", "--unset", "user.name"]);
    f.git(&f.root, &["config", "--unset", "user.email"]);
    let wt = f.path("wt");
    f.create("sig", &wt).unwrap();
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut n = 0;
    let mut commit_with = |env: &[(String, String)]| {
        n += 1;
        write(&wt.join("x.txt"), &format!("{n}\n"));
        snapshot_commit(&wt, "corral: uncommitted work of agent sig", env).unwrap().unwrap();
        f.git(&wt, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"])
    };
    // libgit2 in this process reads the real user's global config; what it says comes before
    // EMAIL and corral's own name, as in git.
    let global = git2::Config::open_default().ok();
    let global = |key: &str| global.as_ref().and_then(|c| c.get_string(key).ok());

    let env = vars(&[
        ("GIT_AUTHOR_NAME", "Ada"),
        ("GIT_AUTHOR_EMAIL", "ada@example.invalid"),
        ("GIT_COMMITTER_NAME", "Cy"),
        ("GIT_COMMITTER_EMAIL", "cy@example.invalid"),
        ("EMAIL", "unused@example.invalid"),
    ]);
    assert_eq!(commit_with(&env), "Ada <ada@example.invalid>|Cy <cy@example.invalid>\n");

    f.git(&f.root, &["config", "user.name", "Repo User"]);
    f.git(&f.root, &["config", "author.name", "Repo Author"]);
    let email = global("user.email").unwrap_or_else(|| "mail@example.invalid".into());
    assert_eq!(
        commit_with(&vars(&[("EMAIL", "mail@example.invalid")])),
        format!("Repo Author <{email}>|Repo User <{email}>\n")
    );
    f.git(&f.root, &["config", "user.email", "repo@example.invalid"]);
    assert_eq!(
        commit_with(&vars(&[("EMAIL", "mail@example.invalid")])),
        "Repo Author <repo@example.invalid>|Repo User <repo@example.invalid>\n"
    );

    f.git(&f.root, &["config", "--unset", "user.name"]);
    f.git(&f.root, &["config", "--unset", "author.name"]);
    f.git(&f.root, &["config", "--unset", "user.email"]);
    let name = global("user.name").unwrap_or_else(|| "corral".into());
    let email = global("user.email").unwrap_or_else(|| "corral@localhost".into());
    assert_eq!(commit_with(&[]), format!("{name} <{email}>|{name} <{email}>\n"));
    assert_eq!(f.git(&wt, &["status", "--porcelain"]), "");
}

#[test]
fn branch_merged_follows_ancestry() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("m", &wt).unwrap();
    assert!(branch_merged(&f.root, "corral/m", "main").unwrap(), "a fresh branch is merged");

    write(&wt.join("work.txt"), "w\n");
    f.git(&wt, &["add", "work.txt"]);
    f.git(&wt, &["commit", "-q", "-m", "work"]);
    assert!(!branch_merged(&f.root, "corral/m", "main").unwrap());

    f.git(&f.root, &["merge", "-q", "--no-ff", "-m", "land", "corral/m"]);
    assert!(branch_merged(&f.root, "corral/m", "main").unwrap());

    let err = branch_merged(&f.root, "corral/none", "main").unwrap_err();
    assert!(matches!(err, GitError::NoBranch(_)) && err.to_string().contains("corral/none"));
    let err = branch_merged(&f.root, "corral/m", "nobase").unwrap_err();
    assert!(matches!(err, GitError::BadBase(_)) && err.to_string().contains("nobase"));
}

#[test]
fn remove_worktree_like_git_worktree_remove_force() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("r", &wt).unwrap();
    write(&wt.join("dirty.txt"), "uncommitted\n");
    write(&wt.join("target/debug/out"), "ignored\n");
    fs::set_permissions(wt.join("target/debug"), fs::Permissions::from_mode(0o555)).unwrap();

    remove_worktree(&f.root, "r", &wt).unwrap();
    assert!(!wt.exists());
    assert!(!f.admin("r").exists());
    assert!(!porcelain_worktrees(&f).contains(wt.to_str().unwrap()));
    assert_eq!(f.git(&f.root, &["worktree", "prune", "-n", "-v"]), "");
    assert!(branch_exists(&f.root, "corral/r").unwrap(), "the branch is kept");

    // Directory already gone by hand: the registration is cleaned up.
    let wt2 = f.path("wt2");
    f.create("r2", &wt2).unwrap();
    fs::remove_dir_all(&wt2).unwrap();
    remove_worktree(&f.root, "r2", &wt2).unwrap();
    assert!(!f.admin("r2").exists());
    assert_eq!(f.git(&f.root, &["worktree", "prune", "-n", "-v"]), "");
}

#[test]
fn remove_worktree_never_deletes_what_is_not_that_worktree() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("keep", &wt).unwrap();
    let other = f.path("precious");
    write(&other.join("data.txt"), "mine\n");

    let err = remove_worktree(&f.root, "keep", &other).unwrap_err();
    assert!(matches!(err, GitError::NotAWorktree { .. }), "{err:?}");
    assert!(other.join("data.txt").exists());
    assert!(wt.join("README.md").exists());
    assert!(f.admin("keep").exists());

    let err = remove_worktree(&f.root, "keep", &f.root).unwrap_err();
    assert!(err.to_string().contains("main worktree"), "{err}");
    assert!(f.root.join("README.md").exists());
}

#[test]
fn delete_branch_refuses_checked_out_branches() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("del", &wt).unwrap();

    let err = delete_branch(&f.root, "corral/del").unwrap_err();
    assert!(matches!(err, GitError::BranchCheckedOut { .. }), "{err:?}");
    assert!(err.to_string().contains("corral/del") && err.to_string().contains("wt"), "{err}");
    let err = delete_branch(&f.root, "main").unwrap_err();
    assert!(matches!(err, GitError::BranchCheckedOut { .. }), "{err:?}");

    remove_worktree(&f.root, "del", &wt).unwrap();
    delete_branch(&f.root, "corral/del").unwrap();
    assert_eq!(f.branches(), "main\n");
    let err = delete_branch(&f.root, "corral/del").unwrap_err();
    assert!(matches!(err, GitError::NoBranch(_)), "{err:?}");
}

#[test]
fn copy_untracked_copies_env_files_but_not_tracked_ignored_dirs_or_existing() {
    let f = Fixture::new();
    write(&f.root.join(".env"), "SECRET=1\n");
    fs::set_permissions(f.root.join(".env"), fs::Permissions::from_mode(0o600)).unwrap();
    write(&f.root.join(".env.local"), "LOCAL=1\n");
    write(&f.root.join(".env.example"), "SECRET=\n");
    f.git(&f.root, &["add", ".env.example"]);
    f.git(&f.root, &["commit", "-q", "-m", "example env"]);
    write(&f.root.join("config/app.local"), "local config\n");
    write(&f.root.join("config/app.toml"), "not matched\n");
    write(&f.root.join("packages/web/.env"), "WEB=1\n");
    write(&f.root.join("node_modules/pkg/.env"), "not ours\n");
    write(&f.root.join("node_modules/special/keep.txt"), "named by a pattern\n");
    write(&f.root.join("node_modules/special/skip.bin"), "not named\n");

    let wt = f.path("wt");
    f.create("cp", &wt).unwrap();
    write(&wt.join(".env.local"), "agent's own\n");

    let patterns: Vec<String> =
        [".env", ".env.*", "config/*.local", "node_modules/special/*.txt"].map(String::from).into();
    let copied = copy_untracked(&f.root, &wt, &patterns).unwrap();
    assert_eq!(
        copied,
        [".env", "config/app.local", "node_modules/special/keep.txt", "packages/web/.env"]
    );
    assert_eq!(fs::read_to_string(wt.join(".env")).unwrap(), "SECRET=1\n");
    let mode = fs::metadata(wt.join(".env")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(fs::read_to_string(wt.join(".env.local")).unwrap(), "agent's own\n");
    assert_eq!(fs::read_to_string(wt.join(".env.example")).unwrap(), "SECRET=\n");
    assert!(!wt.join("config/app.toml").exists());
    assert!(!wt.join("node_modules/pkg").exists());
    assert!(!wt.join("node_modules/special/skip.bin").exists());
    // The copies are ignored or untracked in the agent's worktree; nothing tracked changed.
    assert_eq!(f.git(&wt, &["status", "--porcelain"]), "?? .env.local\n?? config/\n");
}

#[test]
fn glob_patterns_follow_gitignore_rules() {
    let f = Fixture::new();
    for p in ["a/deep/x.key", "b.key", "logs/today/out.txt", "keep.key"] {
        write(&f.root.join(p), "x\n");
    }
    let wt = f.path("wt");
    f.create("g", &wt).unwrap();
    let patterns: Vec<String> = ["*.key", "!keep.key", "/logs/"].map(String::from).into();
    let copied = copy_untracked(&f.root, &wt, &patterns).unwrap();
    assert_eq!(copied, ["a/deep/x.key", "b.key", "logs/today/out.txt"]);
}

#[test]
fn snapshot_commit_leaves_nested_repositories_untracked() {
    let f = Fixture::new();
    let wt = f.path("wt");
    f.create("nest", &wt).unwrap();
    f.git(&wt, &["init", "-q", "scratch"]);
    write(&wt.join("scratch/file.txt"), "precious\n");
    f.git(&wt, &["clone", "-q", f.root.to_str().unwrap(), "vendor/dep"]);
    write(&wt.join("x.txt"), "x\n");

    let id = snapshot_commit(&wt, "snap", &[]).unwrap();
    assert!(id.is_some());
    assert_eq!(f.git(&wt, &["show", "--name-only", "--format=", "HEAD"]), "x.txt\n");
    assert_eq!(fs::read_to_string(wt.join("scratch/file.txt")).unwrap(), "precious\n");
    // Still reported, so a caller about to remove the worktree knows something is left.
    assert_eq!(dirty_paths(&wt).unwrap(), ["scratch/", "vendor/dep/"]);
}

#[test]
fn gc_judges_a_leftover_as_it_is_when_removing_it() {
    let f = Fixture::new();
    let dir = f.path("wts");
    f.create("late", &dir.join("late")).unwrap();
    let owned = Owned::default();
    let spec = GcSpec {
        root: &f.root,
        worktree_dir: &dir,
        prefix: "corral/",
        owned: &owned,
        git_env: &[],
    };
    let (base, found) = find_leftovers(&spec).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(!found[0].holds_work(), "listed clean");
    // The user writes in it between the listing and the removal: it is kept, file and all.
    write(&dir.join("late/new.txt"), "just now\n");
    let done = clean_leftover(&spec, &base, &found[0], false).unwrap();
    assert!(matches!(done, Cleaned::Kept(_)), "{done:?}");
    assert_eq!(fs::read_to_string(dir.join("late/new.txt")).unwrap(), "just now\n");
    assert!(f.branches().contains("corral/late"));
}

#[test]
fn gc_without_a_branch_prefix_claims_no_branch_and_spares_owned_ones() {
    let f = Fixture::new();
    let dir = f.path("wts");
    f.git(&f.root, &["branch", "corral/x"]);
    f.git(&f.root, &["branch", "corral/mine"]);
    let none = Owned::default();
    let spec = GcSpec { root: &f.root, worktree_dir: &dir, prefix: "", owned: &none, git_env: &[] };
    assert!(find_leftovers(&spec).unwrap().1.is_empty(), "no prefix: no branch is corral's");
    let owned = Owned { branches: ["corral/mine".to_string()].into(), ..Owned::default() };
    let spec = GcSpec {
        root: &f.root,
        worktree_dir: &dir,
        prefix: "corral/",
        owned: &owned,
        git_env: &[],
    };
    let found = find_leftovers(&spec).unwrap().1;
    let kinds: Vec<&LeftoverKind> = found.iter().map(|l| &l.kind).collect();
    assert_eq!(kinds, [&LeftoverKind::Branch { branch: "corral/x".into() }]);
}

#[test]
fn gc_removes_a_worktree_whose_checkout_never_happened() {
    let f = Fixture::new();
    let dir = f.path("wts");
    let path = dir.join("cut");
    f.create("cut", &path).unwrap();
    // What a kill between writing the registration and the checkout leaves behind.
    fs::remove_file(f.admin("cut").join("index")).unwrap();
    for entry in fs::read_dir(&path).unwrap().flatten() {
        if entry.file_name() != ".git" {
            let p = entry.path();
            if p.is_dir() { fs::remove_dir_all(&p).unwrap() } else { fs::remove_file(&p).unwrap() }
        }
    }
    let owned = Owned::default();
    let spec = GcSpec {
        root: &f.root,
        worktree_dir: &dir,
        prefix: "corral/",
        owned: &owned,
        git_env: &[],
    };
    let (base, found) = find_leftovers(&spec).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(!found[0].holds_work(), "{found:?}");
    assert_eq!(
        clean_leftover(&spec, &base, &found[0], false).unwrap(),
        Cleaned::Removed { backup: None }
    );
    assert!(!path.exists() && !f.admin("cut").exists());
    assert!(!f.branches().contains("corral/cut"));
}
