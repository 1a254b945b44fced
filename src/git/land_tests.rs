//! Landing work on real repositories in temp dirs: merge, sync, diff, radar, checked with the git CLI.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::checkout::interrupt_for_test;
use super::merge::advance_for_test;
use super::*;

struct Repo {
    _tmp: TempDir,
    root: PathBuf,
    home: PathBuf,
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

impl Repo {
    fn new() -> Repo {
        let tmp = TempDir::new().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let home = base.join("home");
        fs::create_dir(&home).unwrap();
        let root = base.join("repo");
        fs::create_dir(&root).unwrap();
        let r = Repo { _tmp: tmp, root, home };
        r.git(&r.root, &["init", "-q", "-b", "main"]);
        r.git(&r.root, &["config", "user.name", "Test User"]);
        r.git(&r.root, &["config", "user.email", "test@example.com"]);
        write(&r.root.join("README.md"), "hello\n");
        write(&r.root.join("a.txt"), "one\ntwo\nthree\n");
        write(&r.root.join("b.txt"), "bee\n");
        write(&r.root.join(".gitignore"), "*.log\n");
        r.git(&r.root, &["add", "-A"]);
        r.git(&r.root, &["commit", "-q", "-m", "initial"]);
        r
    }

    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test User")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test User")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env_remove("GIT_DIR")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn rev(&self, rev: &str) -> String {
        self.git(&self.root, &["rev-parse", rev]).trim().to_string()
    }

    /// An agent worktree on `corral/<name>` from the current main.
    fn agent(&self, name: &str) -> PathBuf {
        let path = self.root.parent().unwrap().join("wt").join(name);
        create_worktree(&NewWorktree {
            root: &self.root,
            name,
            branch: &format!("corral/{name}"),
            path: &path,
            base_commit: &self.rev("main"),
        })
        .unwrap();
        path
    }

    fn commit_all(&self, dir: &Path, msg: &str) {
        self.git(dir, &["add", "-A"]);
        self.git(dir, &["commit", "-q", "-m", msg]);
    }

    fn land(&self, name: &str, wt: &Path, mode: MergeMode) -> Result<Landed, LandError> {
        let branch = format!("corral/{name}");
        land(&LandSpec {
            root: &self.root,
            agent: name,
            branch: &branch,
            worktree: wt,
            base: "main",
            prompt: Some("do the thing\nwith details"),
            mode,
            message: None,
            git_env: &[],
        })
    }

    fn sync(&self, name: &str, wt: &Path, rebase: bool) -> Result<Synced, LandError> {
        let branch = format!("corral/{name}");
        sync(&SyncSpec {
            root: &self.root,
            agent: name,
            branch: &branch,
            worktree: wt,
            base: "main",
            rebase,
            git_env: &[],
        })
    }

    /// Everything a failed operation must leave alone, byte for byte.
    fn snapshot(&self, wt: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = vec![
            ("refs".into(), self.git(&self.root, &["for-each-ref"]).into_bytes()),
            ("main index".into(), fs::read(self.root.join(".git/index")).unwrap()),
            ("main status".into(), self.git(&self.root, &["status", "--porcelain"]).into_bytes()),
            ("agent status".into(), self.git(wt, &["status", "--porcelain"]).into_bytes()),
        ];
        for dir in [&self.root, &wt.to_path_buf()] {
            let mut files = Vec::new();
            collect(dir, dir, &mut files);
            out.extend(files);
        }
        let admin = self.git(wt, &["rev-parse", "--git-dir"]);
        out.push(("agent index".into(), fs::read(Path::new(admin.trim()).join("index")).unwrap()));
        out
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_name() == ".git" {
            continue;
        }
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            out.push((p.strip_prefix(root).unwrap().display().to_string(), fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn fast_forward_keeps_the_users_unrelated_changes_and_stages_nothing_new() {
    let r = Repo::new();
    let wt = r.agent("ff");
    write(&wt.join("a.txt"), "one\ntwo\nthree\nfour\n");
    r.commit_all(&wt, "agent edit");
    // Uncommitted and untracked work of the agent lands too.
    write(&wt.join("b.txt"), "bee\nbuzz\n");
    write(&wt.join("new/file.txt"), "new\n");
    write(&wt.join("debug.log"), "ignored, stays out\n");

    // The user's own work in the main worktree: staged, unstaged, untracked, ignored.
    write(&r.root.join("staged.txt"), "staged\n");
    r.git(&r.root, &["add", "staged.txt"]);
    write(&r.root.join("README.md"), "hello, edited\n");
    write(&r.root.join("mine.txt"), "untracked\n");
    write(&r.root.join("local.log"), "ignored\n");
    let status_before = r.git(&r.root, &["status", "--porcelain"]);
    let old_main = r.rev("main");

    let landed = r.land("ff", &wt, MergeMode::Merge).unwrap();
    assert_eq!(landed.how, Some(How::FastForward));
    let snapshot = landed.snapshot.clone().unwrap();
    assert_eq!(r.rev("main"), snapshot);
    assert_eq!(r.rev("corral/ff"), snapshot, "the snapshot went on the agent's branch");
    let msg = r.git(&r.root, &["log", "-1", "--format=%B", "main"]);
    assert!(msg.contains("agent ff") && msg.contains("do the thing"), "{msg}");
    assert!(!msg.contains("with details"), "{msg}");

    assert_eq!(read(&r.root.join("a.txt")), "one\ntwo\nthree\nfour\n");
    assert_eq!(read(&r.root.join("b.txt")), "bee\nbuzz\n");
    assert_eq!(read(&r.root.join("new/file.txt")), "new\n");
    assert!(!r.root.join("debug.log").exists());
    assert_eq!(read(&r.root.join("README.md")), "hello, edited\n");
    assert_eq!(read(&r.root.join("local.log")), "ignored\n");
    assert_eq!(r.git(&r.root, &["status", "--porcelain"]), status_before);
    assert_eq!(r.git(&r.root, &["diff", "--cached", "--name-only"]), "staged.txt\n");
    // The agent's worktree is clean: its index matches the snapshot.
    assert_eq!(r.git(&wt, &["status", "--porcelain"]), "");
    r.git(&r.root, &["fsck", "--no-progress"]);

    let backup = landed.backup.unwrap();
    assert_eq!(r.rev(&format!("{backup}/agent")), snapshot);
    assert_eq!(r.rev(&format!("{backup}/base")), old_main);
    assert!(branch_merged(&r.root, "corral/ff", "main").unwrap());
}

#[test]
fn merge_commit_when_main_moved_and_squash_and_rebase() {
    let r = Repo::new();
    let m = r.agent("m");
    let s = r.agent("s");
    let b = r.agent("b");
    for (wt, file) in [(&m, "m.txt"), (&s, "s.txt"), (&b, "b2.txt")] {
        write(&wt.join(file), "1\n");
        r.commit_all(wt, "first");
        write(&wt.join(file), "1\n2\n");
        r.commit_all(wt, "second");
    }
    write(&r.root.join("main.txt"), "main moved\n");
    r.commit_all(&r.root, "main moves");

    let landed = r.land("m", &m, MergeMode::Merge).unwrap();
    assert_eq!(landed.how, Some(How::MergeCommit));
    let parents = r.git(&r.root, &["log", "-1", "--format=%P", "main"]);
    assert_eq!(parents.split_whitespace().count(), 2, "{parents}");
    assert_eq!(read(&r.root.join("m.txt")), "1\n2\n");

    let before = r.rev("main");
    let landed = r.land("s", &s, MergeMode::Squash).unwrap();
    assert_eq!(landed.how, Some(How::Squash));
    assert_eq!(r.git(&r.root, &["rev-list", "--count", &format!("{before}..main")]).trim(), "1");
    assert_eq!(r.rev("main^"), before);
    let msg = r.git(&r.root, &["log", "-1", "--format=%B", "main"]);
    assert!(msg.starts_with("do the thing\n") && msg.contains("* second"), "{msg}");
    assert_eq!(read(&r.root.join("s.txt")), "1\n2\n");
    assert!(branch_merged(&r.root, "corral/s", "main").unwrap(), "the branch follows");
    assert_eq!(r.git(&s, &["status", "--porcelain"]), "");
    assert_eq!(read(&s.join("m.txt")), "1\n2\n", "its worktree too");

    let before = r.rev("main");
    let landed = r.land("b", &b, MergeMode::Rebase).unwrap();
    assert_eq!(landed.how, Some(How::Rebase));
    let merges = r.git(&r.root, &["rev-list", "--merges", &format!("{before}..main")]);
    assert_eq!(merges, "", "linear");
    assert_eq!(r.git(&r.root, &["rev-list", "--count", &format!("{before}..main")]).trim(), "2");
    assert_eq!(read(&r.root.join("b2.txt")), "1\n2\n");
    assert!(branch_merged(&r.root, "corral/b", "main").unwrap());
    assert_eq!(r.git(&r.root, &["status", "--porcelain"]), "");
    r.git(&r.root, &["fsck", "--no-progress"]);
}

#[test]
fn ff_only_refuses_when_main_moved_and_changes_nothing() {
    let r = Repo::new();
    let wt = r.agent("f");
    write(&wt.join("f.txt"), "f\n");
    r.commit_all(&wt, "f");
    write(&r.root.join("main.txt"), "main moved\n");
    r.commit_all(&r.root, "main moves");
    let before = r.snapshot(&wt);
    let err = r.land("f", &wt, MergeMode::FfOnly).unwrap_err();
    assert!(matches!(err, LandError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("not a fast-forward"), "{err}");
    assert!(before == r.snapshot(&wt));
}

#[test]
fn conflict_changes_nothing_and_lists_paths() {
    let r = Repo::new();
    let wt = r.agent("c");
    write(&wt.join("a.txt"), "one\nTWO by agent\nthree\n");
    r.commit_all(&wt, "agent");
    write(&wt.join("b.txt"), "uncommitted\n");
    write(&r.root.join("a.txt"), "one\nTWO by main\nthree\n");
    r.commit_all(&r.root, "main");
    write(&r.root.join("mine.txt"), "user\n");
    let before = r.snapshot(&wt);
    for mode in [MergeMode::Merge, MergeMode::Squash, MergeMode::Rebase] {
        match r.land("c", &wt, mode) {
            Err(LandError::Conflict { paths, .. }) => assert_eq!(paths, vec!["a.txt"]),
            other => panic!("{mode:?}: {other:?}"),
        }
        assert!(before == r.snapshot(&wt), "{mode:?} changed something");
    }
    assert_eq!(r.git(&r.root, &["for-each-ref", "refs/corral"]), "", "no backups either");
}

#[test]
fn users_change_to_a_merged_file_refuses_and_changes_nothing() {
    let r = Repo::new();
    let wt = r.agent("u");
    write(&wt.join("a.txt"), "agent\n");
    write(&wt.join("c.txt"), "agent adds\n");
    write(&r.root.join("a.txt"), "user edits\n");
    write(&r.root.join("c.txt"), "user's own untracked\n");
    let before = r.snapshot(&wt);
    let err = r.land("u", &wt, MergeMode::Merge).unwrap_err();
    match &err {
        LandError::Blocked { paths, .. } => assert_eq!(paths, &vec!["a.txt", "c.txt"]),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("commit or stash these: a.txt, c.txt"), "{err}");
    assert!(before == r.snapshot(&wt));

    // Staged only (the file itself back as it was) is in the way too.
    write(&r.root.join("a.txt"), "staged version\n");
    r.git(&r.root, &["add", "a.txt"]);
    write(&r.root.join("a.txt"), "one\ntwo\nthree\n");
    fs::remove_file(r.root.join("c.txt")).unwrap();
    let err = r.land("u", &wt, MergeMode::Merge).unwrap_err();
    assert!(matches!(&err, LandError::Blocked { paths, .. } if paths == &vec!["a.txt"]), "{err:?}");
}

#[test]
fn ignored_file_in_the_way_is_never_overwritten() {
    let r = Repo::new();
    let wt = r.agent("i");
    write(&wt.join("keep.log"), "agent's tracked log\n");
    r.git(&wt, &["add", "-f", "keep.log"]);
    r.git(&wt, &["commit", "-q", "-m", "tracked log"]);
    write(&r.root.join("keep.log"), "user's ignored log\n");
    let err = r.land("i", &wt, MergeMode::Merge).unwrap_err();
    assert!(
        matches!(&err, LandError::Blocked { paths, .. } if paths == &vec!["keep.log"]),
        "{err:?}"
    );
    assert_eq!(read(&r.root.join("keep.log")), "user's ignored log\n");
}

#[test]
fn up_to_date_agent_lands_nothing() {
    let r = Repo::new();
    let wt = r.agent("same");
    let before = r.rev("main");
    let landed = r.land("same", &wt, MergeMode::Merge).unwrap();
    assert_eq!(landed.how, None);
    assert_eq!(r.rev("main"), before);
}

#[test]
fn sync_merges_or_rebases_and_refuses_overlaps() {
    let r = Repo::new();
    let wt = r.agent("s");
    write(&wt.join("agent.txt"), "agent\n");
    r.commit_all(&wt, "agent");
    write(&wt.join("wip.txt"), "uncommitted\n");
    write(&r.root.join("b.txt"), "bee\nmain\n");
    r.commit_all(&r.root, "main edits b");

    let synced = r.sync("s", &wt, false).unwrap();
    assert_eq!(synced.how, Some(How::MergeCommit));
    assert_eq!(read(&wt.join("b.txt")), "bee\nmain\n");
    assert_eq!(read(&wt.join("wip.txt")), "uncommitted\n");
    assert_eq!(r.git(&wt, &["status", "--porcelain"]), "?? wip.txt\n");
    assert_eq!(r.sync("s", &wt, false).unwrap().how, None);

    // Rebase: linear.
    write(&r.root.join("README.md"), "hello\nmain again\n");
    r.commit_all(&r.root, "main edits readme");
    let synced = r.sync("s", &wt, true).unwrap();
    assert_eq!(synced.how, Some(How::Rebase));
    assert_eq!(r.rev("corral/s^"), r.rev("main"));
    assert_eq!(read(&wt.join("README.md")), "hello\nmain again\n");

    // The agent's committed change conflicts: exit-3 kind, nothing changes.
    write(&wt.join("a.txt"), "agent a\n");
    r.commit_all(&wt, "agent edits a");
    write(&r.root.join("a.txt"), "main a\n");
    r.commit_all(&r.root, "main edits a");
    let before = r.snapshot(&wt);
    let err = r.sync("s", &wt, false).unwrap_err();
    assert!(
        matches!(&err, LandError::Conflict { paths, .. } if paths == &vec!["a.txt"]),
        "{err:?}"
    );
    assert!(before == r.snapshot(&wt));

    // Uncommitted changes to a file the base changed: refused, nothing changes.
    let wt2 = r.agent("t");
    write(&wt2.join("b.txt"), "agent's uncommitted b\n");
    write(&r.root.join("b.txt"), "main b again\n");
    r.commit_all(&r.root, "main edits b again");
    let before = r.snapshot(&wt2);
    let err = r.sync("t", &wt2, false).unwrap_err();
    assert!(matches!(&err, LandError::Blocked { paths, .. } if paths == &vec!["b.txt"]), "{err:?}");
    assert!(before == r.snapshot(&wt2));
}

#[test]
fn lfs_filters_and_merge_drivers_are_refused_and_hooks_noted() {
    let r = Repo::new();
    let wt = r.agent("t");
    write(&wt.join("x.txt"), "x\n");
    r.commit_all(&wt, "x");
    write(&r.root.join(".gitattributes"), "*.bin filter=lfs diff=lfs merge=lfs -text\n");
    r.commit_all(&r.root, "attributes");
    // Named but no driver configured: git would not run it either.
    r.sync("t", &wt, false).unwrap();
    r.git(&r.root, &["config", "filter.lfs.clean", "git-lfs clean -- %f"]);
    write(&wt.join("y.txt"), "y\n");
    r.commit_all(&wt, "y");
    let err = r.land("t", &wt, MergeMode::Merge).unwrap_err();
    assert!(err.to_string().contains("filter 'lfs' (Git LFS)"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
    r.git(&r.root, &["config", "--unset", "filter.lfs.clean"]);

    let hook = r.root.join(".git/hooks/pre-commit");
    write(&hook, "#!/bin/sh\nexit 0\n");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let landed = r.land("t", &wt, MergeMode::Merge).unwrap();
    assert!(landed.notes.iter().any(|n| n.contains("pre-commit")), "{:?}", landed.notes);
}

#[test]
fn failed_ref_swap_puts_the_worktree_back() {
    let r = Repo::new();
    let old = r.rev("main");
    write(&r.root.join("a.txt"), "changed\n");
    write(&r.root.join("added/new.txt"), "added\n");
    r.commit_all(&r.root, "target");
    let new = r.rev("main");
    r.git(&r.root, &["reset", "-q", "--hard", &old]);
    // main moves to a commit with the same tree, so the swap expecting `old` fails.
    r.git(&r.root, &["commit", "-q", "--allow-empty", "-m", "someone else"]);
    write(&r.root.join("mine.txt"), "user\n");
    let err = advance_for_test(&r.root, "refs/heads/main", &old, &new).unwrap_err();
    assert!(err.to_string().contains("moved"), "{err}");
    assert_eq!(read(&r.root.join("a.txt")), "one\ntwo\nthree\n");
    assert!(!r.root.join("added").exists());
    assert_eq!(r.git(&r.root, &["status", "--porcelain"]), "?? mine.txt\n");
}

#[test]
fn diff_shows_committed_uncommitted_and_untracked_and_stats_agree() {
    let r = Repo::new();
    let wt = r.agent("d");
    write(&wt.join("a.txt"), "one\ntwo\nthree\ncommitted\n");
    r.commit_all(&wt, "c");
    write(&wt.join("b.txt"), "bee\nunstaged\n");
    write(&wt.join("u/new.txt"), "untracked\n");
    write(&wt.join("x.log"), "ignored\n");
    // Main moving on does not show up as the agent's.
    write(&r.root.join("README.md"), "main\n");
    r.commit_all(&r.root, "main");
    let before = r.git(&wt, &["status", "--porcelain"]);
    let patch = String::from_utf8(agent_patch(&wt, "main", false, false, 80).unwrap()).unwrap();
    assert!(
        patch.contains("diff --git a/a.txt b/a.txt") && patch.contains("+committed\n"),
        "{patch}"
    );
    assert!(patch.contains("+unstaged\n") && patch.contains("+untracked\n"), "{patch}");
    assert!(patch.contains("new file mode 100644"), "{patch}");
    assert!(!patch.contains("x.log") && !patch.contains("README"), "{patch}");
    assert!(!patch.contains('\x1b'));
    let coloured = String::from_utf8(agent_patch(&wt, "main", false, true, 80).unwrap()).unwrap();
    assert!(coloured.contains("\x1b[32m+committed\x1b[m"), "{coloured}");
    let stat = String::from_utf8(agent_patch(&wt, "main", true, false, 80).unwrap()).unwrap();
    assert!(stat.contains(" 3 files changed, 3 insertions(+)"), "{stat}");
    assert_eq!(r.git(&wt, &["status", "--porcelain"]), before, "the index is untouched");
    let n = agent_stat(&wt, "main").unwrap();
    assert_eq!(n, DiffStat { files: 3, insertions: 3, deletions: 0, ahead: 1, behind: 1 });
    // Nothing was written to the repository's objects.
    assert!(r.git(&r.root, &["fsck", "--unreachable", "--no-progress"]).is_empty());
}

#[test]
fn radar_flags_same_lines_before_commit_and_not_different_files() {
    let r = Repo::new();
    let x = r.agent("x");
    let y = r.agent("y");
    let z = r.agent("z");
    let agents: Vec<RadarAgent> = [("x", &x), ("y", &y), ("z", &z)]
        .iter()
        .map(|(n, p)| RadarAgent {
            name: n.to_string(),
            worktree: p.to_path_buf(),
            base: "main".into(),
        })
        .collect();
    let mut radar = Radar::open(&r.root).unwrap();
    let rep = radar.run(&agents);
    assert!(rep.values().all(|a| a.conflicts.is_empty() && a.diff == Some(DiffStat::default())));

    write(&x.join("a.txt"), "one\nTWO x\nthree\n");
    write(&y.join("a.txt"), "one\nTWO y\nthree\n");
    write(&z.join("z.txt"), "z\n");
    for n in ["x", "y", "z"] {
        radar.touch(n);
    }
    let rep = radar.run(&agents);
    let cx = &rep["x"].conflicts;
    assert_eq!(cx.len(), 1, "{rep:?}");
    assert_eq!(
        (cx[0].with.as_str(), cx[0].base, cx[0].paths.clone()),
        ("y", false, vec!["a.txt".into()])
    );
    assert_eq!(rep["y"].conflicts[0].with, "x");
    assert!(rep["z"].conflicts.is_empty(), "{rep:?}");
    assert_eq!(rep["z"].diff.unwrap().files, 1);
    assert_eq!(rep["x"].diff.unwrap().insertions, 1);

    // Against the base: main changes the same line; z's file is untouched by main.
    write(&r.root.join("a.txt"), "one\nTWO main\nthree\n");
    r.commit_all(&r.root, "main");
    let rep = radar.run(&agents);
    let base: Vec<_> = rep["x"].conflicts.iter().filter(|c| c.base).collect();
    assert_eq!(base.len(), 1);
    assert_eq!(base[0].with, "main");
    assert!(rep["z"].conflicts.is_empty());
    assert_eq!(rep["z"].diff.unwrap().behind, 1);

    // y's edit goes away: the pair clears, once y is touched.
    write(&y.join("a.txt"), "one\ntwo\nthree\n");
    radar.touch("y");
    let rep = radar.run(&agents);
    assert!(rep["x"].conflicts.iter().all(|c| c.with != "y"), "{rep:?}");
    assert!(r.git(&r.root, &["fsck", "--unreachable", "--no-progress"]).is_empty());
}

#[test]
fn radar_reads_a_worktree_again_correctly_after_deletes_commits_and_checkouts() {
    let r = Repo::new();
    let x = r.agent("x");
    let agents = vec![RadarAgent { name: "x".into(), worktree: x.clone(), base: "main".into() }];
    let mut radar = Radar::open(&r.root).unwrap();
    let again = |radar: &mut Radar| {
        radar.touch("x");
        radar.run(&agents)["x"].diff.unwrap()
    };
    write(
        &x.join("u1.txt"),
        "1
",
    );
    write(
        &x.join("u2.txt"),
        "2
",
    );
    write(
        &x.join("a.txt"),
        "changed
",
    );
    let d = again(&mut radar);
    assert_eq!((d.files, d.insertions, d.deletions), (3, 3, 3));
    // A file staged in memory by the last run, then deleted.
    fs::remove_file(x.join("u2.txt")).unwrap();
    let d = again(&mut radar);
    assert_eq!((d.files, d.insertions), (2, 2));
    // The agent commits (its index changes on disk): same work, one commit ahead.
    r.commit_all(&x, "agent");
    let d = again(&mut radar);
    assert_eq!((d.files, d.insertions, d.deletions, d.ahead), (2, 2, 3, 1));
    // Undo the edit to a tracked file without touching the index.
    write(&x.join("a.txt"), "one\ntwo\nthree\n");
    let d = again(&mut radar);
    assert_eq!((d.files, d.insertions, d.deletions), (1, 1, 0));
    r.git(&x, &["checkout", "-q", "HEAD", "--", "a.txt"]);
    let d = again(&mut radar);
    assert_eq!((d.files, d.insertions, d.deletions), (2, 2, 3));
    // Its own index was never written by the radar.
    assert_eq!(r.git(&x, &["status", "--porcelain"]), "");
}

#[test]
fn base_worktree_mid_merge_or_split_index_is_refused_and_nothing_changes() {
    let r = Repo::new();
    let wt = r.agent("m");
    write(&wt.join("m.txt"), "m\n");
    r.commit_all(&wt, "m");
    // The user is in the middle of a conflicted merge of their own in the main worktree.
    r.git(&r.root, &["checkout", "-q", "-b", "side"]);
    write(&r.root.join("a.txt"), "side\n");
    r.commit_all(&r.root, "side");
    r.git(&r.root, &["checkout", "-q", "main"]);
    write(&r.root.join("a.txt"), "main\n");
    r.commit_all(&r.root, "main");
    let out = Command::new("git").args(["merge", "side"]).current_dir(&r.root).output().unwrap();
    assert!(!out.status.success(), "the user's merge conflicts");
    let main = r.rev("main");
    let err = r.land("m", &wt, MergeMode::Merge).unwrap_err();
    assert!(err.to_string().contains("in the middle of a merge"), "{err}");
    assert_eq!(r.rev("main"), main);
    r.git(&r.root, &["merge", "--abort"]);

    r.git(&r.root, &["config", "core.splitIndex", "true"]);
    r.git(&r.root, &["update-index", "--split-index"]);
    let err = r.land("m", &wt, MergeMode::Merge).unwrap_err();
    assert!(err.to_string().contains("split index"), "{err}");
    assert_eq!(r.rev("main"), main);
}

#[test]
fn landing_deletes_renames_mode_changes_and_symlinks_reach_the_main_worktree() {
    use std::os::unix::fs::PermissionsExt;
    let r = Repo::new();
    write(&r.root.join("dir/only.txt"), "only\n");
    write(&r.root.join("old-name.txt"), "rename me\n");
    write(&r.root.join("run.sh"), "#!/bin/sh\n");
    r.commit_all(&r.root, "more files");
    let wt = r.agent("f");
    fs::remove_file(wt.join("dir/only.txt")).unwrap();
    fs::rename(wt.join("old-name.txt"), wt.join("new-name.txt")).unwrap();
    fs::set_permissions(wt.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("README.md", wt.join("link")).unwrap();
    write(&r.root.join("mine.txt"), "user\n");
    r.land("f", &wt, MergeMode::Merge).unwrap();
    assert!(!r.root.join("dir").exists(), "the emptied directory goes too");
    assert!(!r.root.join("old-name.txt").exists());
    assert_eq!(read(&r.root.join("new-name.txt")), "rename me\n");
    assert_ne!(fs::metadata(r.root.join("run.sh")).unwrap().permissions().mode() & 0o111, 0);
    assert_eq!(fs::read_link(r.root.join("link")).unwrap(), Path::new("README.md"));
    assert_eq!(r.git(&r.root, &["status", "--porcelain"]), "?? mine.txt\n");
}

#[test]
fn radar_stands_in_for_files_too_large_to_read() {
    let r = Repo::new();
    let x = r.agent("x");
    write(&x.join("big.bin"), &"x".repeat(100));
    write(&x.join("small.txt"), "s\n");
    let repo = git2::Repository::open(&x).unwrap();
    let (tree, read) = super::state::worktree_state_again(&repo, 10).unwrap();
    assert_eq!(read, 2, "only the small file was read");
    let tree = repo.find_tree(tree).unwrap();
    let big = repo.find_blob(tree.get_name("big.bin").unwrap().id()).unwrap();
    assert_eq!(big.content(), b"corral: 100 bytes, not read\n");
    // Unchanged since: nothing is read again.
    let (_, read) = super::state::worktree_state_again(&repo, 10).unwrap();
    assert_eq!(read, 0);
    assert_eq!(r.git(&x, &["status", "--porcelain"]), "?? big.bin\n?? small.txt\n");
}

#[test]
fn unresolved_conflicts_in_the_agents_index_are_refused() {
    let r = Repo::new();
    let wt = r.agent("s");
    write(&wt.join("a.txt"), "stashed\n");
    r.git(&wt, &["stash", "-q"]);
    write(&wt.join("a.txt"), "committed\n");
    r.commit_all(&wt, "c");
    let out = Command::new("git").args(["stash", "pop"]).current_dir(&wt).output().unwrap();
    assert!(!out.status.success(), "the pop conflicts");
    let main = r.rev("main");
    let err = r.land("s", &wt, MergeMode::Merge).unwrap_err();
    assert!(err.to_string().contains("unresolved conflicts in a.txt"), "{err}");
    assert_eq!(r.rev("main"), main);
}

/// A checkout killed half way: recovery puts the files back when the ref did not move, leaves a
/// file someone changed after the crash alone (and says so), and removes its staging.
#[test]
fn checkout_killed_half_way_is_put_back_and_a_later_edit_is_left_alone() {
    let r = Repo::new();
    let old = r.rev("main");
    write(&r.root.join("a.txt"), "changed\n");
    fs::remove_file(r.root.join("b.txt")).unwrap();
    write(&r.root.join("added/new.txt"), "added\n");
    write(&r.root.join("c.txt"), "see\n");
    r.commit_all(&r.root, "target");
    let new = r.rev("main");
    r.git(&r.root, &["reset", "-q", "--hard", &old]);
    write(&r.root.join("mine.txt"), "user\n");
    write(&r.root.join("x.log"), "ignored\n");

    // Paths in order: a.txt, added/new.txt, b.txt, c.txt; the removal (b.txt) goes first.
    interrupt_for_test(&r.root, "refs/heads/main", &old, &new, 2);
    assert_ne!(r.git(&r.root, &["status", "--porcelain"]), "?? mine.txt\n", "half applied");
    let done = intent::recover(&r.root, &|_, _| false).unwrap();
    for id in &done.resolved {
        intent::clear(&r.root.join(".git"), id);
    }
    assert!(done.notes.is_empty(), "{:?}", done.notes);
    assert_eq!(r.rev("main"), old);
    assert_eq!(read(&r.root.join("a.txt")), "one\ntwo\nthree\n");
    assert_eq!(read(&r.root.join("b.txt")), "bee\n");
    assert!(!r.root.join("added").exists() && !r.root.join("c.txt").exists());
    assert_eq!(r.git(&r.root, &["status", "--porcelain", "--ignored"]), "?? mine.txt\n!! x.log\n");
    assert!(intent::pending(&r.root.join(".git")).unwrap().is_empty());

    // Killed again half way; this time the user edits a file the checkout had written.
    interrupt_for_test(&r.root, "refs/heads/main", &old, &new, 2);
    write(&r.root.join("a.txt"), "the user's fix\n");
    let done = intent::recover(&r.root, &|_, _| false).unwrap();
    assert!(done.notes.iter().any(|n| n.contains("a.txt")), "{:?}", done.notes);
    assert_eq!(read(&r.root.join("a.txt")), "the user's fix\n");
    assert_eq!(read(&r.root.join("b.txt")), "bee\n");
    assert!(!r.root.join("added").exists());
    assert!(
        fs::read_dir(&r.root)
            .unwrap()
            .flatten()
            .all(|e| { !e.file_name().to_string_lossy().starts_with(".corral-checkout") })
    );
}

fn prepare_agent(r: &Repo, name: &str, wt: &Path) -> Result<String, LandError> {
    let branch = format!("corral/{name}");
    prepare(
        &SyncSpec {
            root: &r.root,
            agent: name,
            branch: &branch,
            worktree: wt,
            base: "main",
            rebase: false,
            git_env: &[],
        },
        Some("add the feature"),
    )
}

fn land_tip(r: &Repo, name: &str, tip: &str, squash: bool) -> Result<GatedLanding, LandError> {
    let branch = format!("corral/{name}");
    land_gated(&GatedSpec {
        root: &r.root,
        agent: name,
        branch: &branch,
        base: "main",
        tip,
        squash,
        prompt: Some("add the feature"),
        git_env: &[],
    })
}

#[test]
fn queue_prepare_commits_uncommitted_work_and_brings_the_base_in_then_lands_exactly_that() {
    let r = Repo::new();
    let wt = r.agent("q");
    write(&wt.join("new.txt"), "agent work\n");
    write(&r.root.join("b.txt"), "bee two\n");
    r.commit_all(&r.root, "base moved on");
    let tip = prepare_agent(&r, "q", &wt).unwrap();
    assert_eq!(r.git(&wt, &["status", "--porcelain"]), "", "uncommitted work is committed");
    assert_eq!(r.rev("corral/q"), tip);
    assert_eq!(read(&wt.join("b.txt")), "bee two\n", "the base's commit is in the agent");
    let log = r.git(&r.root, &["log", "--format=%s", "corral/q"]);
    assert!(log.contains("corral: uncommitted work of agent q"), "{log}");

    // The base moves again after the gate ran: nothing lands.
    let gated = tip.clone();
    write(&r.root.join("README.md"), "hello again\n");
    r.commit_all(&r.root, "base moved again");
    let main_before = r.rev("main");
    assert_eq!(land_tip(&r, "q", &gated, false).unwrap(), GatedLanding::BaseMoved);
    assert_eq!(r.rev("main"), main_before);

    // Sync again, and the base fast-forwards to exactly the new gated commit, files and all.
    let tip = prepare_agent(&r, "q", &wt).unwrap();
    assert_eq!(land_tip(&r, "q", &tip, false).unwrap(), GatedLanding::Landed(tip.clone()));
    assert_eq!(r.rev("main"), tip);
    assert_eq!(read(&r.root.join("new.txt")), "agent work\n");
    assert_eq!(r.git(&r.root, &["status", "--porcelain"]), "");
    let backups = r.git(&r.root, &["for-each-ref", "refs/corral/backup/q"]);
    assert!(backups.contains(&tip), "backup refs hold the landed commit: {backups}");
}

#[test]
fn queue_squash_lands_one_commit_with_the_gated_tree_and_the_agent_follows() {
    let r = Repo::new();
    let wt = r.agent("s");
    write(&wt.join("one.txt"), "1\n");
    r.commit_all(&wt, "first part");
    write(&wt.join("two.txt"), "2\n");
    let tip = prepare_agent(&r, "s", &wt).unwrap();
    let before = r.rev("main");
    let GatedLanding::Landed(new) = land_tip(&r, "s", &tip, true).unwrap() else {
        panic!("not landed")
    };
    assert_eq!(r.rev("main^"), before, "one commit on the base");
    assert_eq!(r.rev("main^{tree}"), r.rev(&format!("{tip}^{{tree}}")), "exactly the gated tree");
    let msg = r.git(&r.root, &["log", "-1", "--format=%B", "main"]);
    assert!(msg.starts_with("add the feature") && msg.contains("* first part"), "{msg}");
    assert_eq!(r.rev("corral/s"), new, "the agent follows the squash");
    assert!(branch_merged(&r.root, "corral/s", "main").unwrap());
}

#[test]
fn queue_conflict_names_the_base_commits_that_touched_each_path() {
    let r = Repo::new();
    let wt = r.agent("c");
    write(&wt.join("a.txt"), "one\nagent\nthree\n");
    write(&r.root.join("a.txt"), "one\nbase\nthree\n");
    r.commit_all(&r.root, "base edits a");
    write(&r.root.join("b.txt"), "other\n");
    r.commit_all(&r.root, "base edits b");
    let main_before = r.rev("main");
    let err = prepare_agent(&r, "c", &wt).unwrap_err();
    let LandError::Conflict { paths, .. } = err else { panic!("{err}") };
    assert_eq!(paths, ["a.txt"]);
    assert_eq!(r.rev("main"), main_before);
    assert_eq!(read(&wt.join("a.txt")), "one\nagent\nthree\n", "the agent keeps its work");
    let subjects = conflict_subjects(&r.root, "corral/c", "main", &paths);
    assert_eq!(subjects, [("a.txt".to_string(), vec!["base edits a".to_string()])]);
}

#[test]
fn queue_is_saved_in_the_common_dir_and_an_empty_one_leaves_no_file() {
    use crate::queue::{Mode, Policy, Queue};
    let r = Repo::new();
    let common = r.root.join(".git");
    assert_eq!(load_queue(&common).unwrap(), None);
    let mut q = Queue::new(Policy::default());
    q.add("a", "main", Mode::Squash, false, false).unwrap();
    save_queue(&common, &q).unwrap();
    let back = load_queue(&common).unwrap().unwrap();
    assert_eq!(back.entries, q.entries);
    q.cancel("a").unwrap();
    save_queue(&common, &q).unwrap();
    assert!(!common.join("corral/queue.json").exists());
    fs::write(common.join("corral/queue.json"), "{").unwrap();
    let e = load_queue(&common).unwrap_err().to_string();
    assert!(e.contains("queue.json"), "{e}");
}

#[test]
fn queue_lock_keeps_a_second_queue_out_until_the_first_is_dropped() {
    let r = Repo::new();
    let common = r.root.join(".git");
    let first = lock_queue(&common).unwrap();
    let e = lock_queue(&common).err().unwrap().to_string();
    assert!(e.contains("another corral server runs the landing queue"), "{e}");
    drop(first);
    lock_queue(&common).unwrap();
}

#[test]
fn resolve_leaves_markers_in_the_agents_worktree_only_and_says_what_each_side_meant() {
    let r = Repo::new();
    let wt = r.agent("r");
    write(&wt.join("a.txt"), "one\nagent\nthree\n");
    write(&r.root.join("a.txt"), "one\nbase\nthree\n");
    r.commit_all(&r.root, "base edits a");
    let main_before = r.rev("main");
    let main_status = r.git(&r.root, &["status", "--porcelain"]);
    let branch = "corral/r".to_string();
    let spec = SyncSpec {
        root: &r.root,
        agent: "r",
        branch: &branch,
        worktree: &wt,
        base: "main",
        rebase: false,
        git_env: &[],
    };
    let got = resolve_into_worktree(&spec, Some("make a say agent")).unwrap();
    assert_eq!(
        got.paths,
        [ResolvePath {
            path: "a.txt".into(),
            base: vec!["base edits a".into()],
            agent: vec!["your task: make a say agent".into()],
        }]
    );
    let text = read(&wt.join("a.txt"));
    assert!(text.contains("<<<<<<<") && text.contains("agent") && text.contains("base"), "{text}");
    assert_eq!(r.rev("main"), main_before, "the base does not move");
    assert_eq!(
        read(&r.root.join("a.txt")),
        "one\nbase\nthree\n",
        "no markers in the main worktree"
    );
    assert_eq!(r.git(&r.root, &["status", "--porcelain"]), main_status);
    let backups = r.git(&r.root, &["for-each-ref", "--format=%(refname)", &got.backup]);
    assert_eq!(backups.lines().count(), 2, "{backups}");
    // The agent concludes the merge with a commit; then it syncs and lands cleanly.
    write(&wt.join("a.txt"), "one\nboth\nthree\n");
    r.git(&wt, &["commit", "-qam", "resolve"]);
    let tip = prepare_agent(&r, "r", &wt).unwrap();
    assert_eq!(land_tip(&r, "r", &tip, false).unwrap(), GatedLanding::Landed(tip));
    assert_eq!(read(&r.root.join("a.txt")), "one\nboth\nthree\n");
    // Nothing to resolve any more.
    let e = resolve_into_worktree(&spec, None).unwrap_err().to_string();
    assert!(e.contains("nothing to resolve"), "{e}");
}
