//! Landing work end to end: `merge`, `sync`, `diff` and the conflict radar, through the real
//! binary and server, on real repositories checked with the git CLI.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn rev(dir: &Path, rev: &str) -> String {
    git(dir, &["rev-parse", rev]).trim().to_string()
}

fn commit_all(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
}

fn files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_name() == ".git" {
            continue;
        }
        if p.is_dir() {
            files(root, &p, out);
        } else {
            out.push((p.strip_prefix(root).unwrap().display().to_string(), fs::read(&p).unwrap()));
        }
    }
}

/// Every ref, both indexes and every file of both worktrees, byte for byte.
fn everything(env: &Env, wt: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("refs".into(), git(&env.repo, &["for-each-ref"]).into_bytes()),
        ("main index".into(), fs::read(env.repo.join(".git/index")).unwrap()),
    ];
    let admin = git(wt, &["rev-parse", "--absolute-git-dir"]);
    out.push(("agent index".into(), fs::read(Path::new(admin.trim()).join("index")).unwrap()));
    files(&env.repo, &env.repo, &mut out);
    files(wt, wt, &mut out);
    out
}

fn assert_same(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) {
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(before), names(after));
    for ((name, a), (_, b)) in before.iter().zip(after) {
        assert!(a == b, "{name} changed");
    }
}

/// A shell agent with its worktree.
fn agent(env: &Env, name: &str) -> PathBuf {
    env.new_shell(name);
    env.worktree_of(name)
}

fn gone(env: &Env, name: &str) -> bool {
    env.ls_json()["agents"].as_array().unwrap().iter().all(|a| a["name"] != name)
}

#[test]
fn clean_merge_lands_and_keeps_the_users_unrelated_changes_untouched() {
    let env = Env::new();
    let wt = agent(&env, "feat");
    write(&wt.join("feature.txt"), "feature\n");
    commit_all(&wt, "agent adds a feature");
    let agent_tip = rev(&wt, "HEAD");

    // The user's own work in the main worktree, none of it in files the merge changes.
    write(&env.repo.join("staged.txt"), "staged\n");
    git(&env.repo, &["add", "staged.txt"]);
    write(&env.repo.join("README.md"), "hello\nunstaged edit\n");
    write(&env.repo.join("untracked.txt"), "untracked\n");
    write(&env.repo.join(".env"), "SECRET=1\n");
    let status = git(&env.repo, &["status", "--porcelain"]);
    let old_main = rev(&env.repo, "main");

    let out = env.ok(&["merge", "feat", "--yes"]);
    assert!(out.contains("merged corral/feat into main (fast-forward)"), "{out}");
    assert!(out.contains("removed agent 'feat'"), "{out}");

    assert_eq!(rev(&env.repo, "main"), agent_tip);
    assert_eq!(read(&env.repo.join("feature.txt")), "feature\n");
    assert_eq!(read(&env.repo.join("README.md")), "hello\nunstaged edit\n");
    assert_eq!(read(&env.repo.join("untracked.txt")), "untracked\n");
    assert_eq!(read(&env.repo.join(".env")), "SECRET=1\n");
    // Only the user's changes, and no inverse of the merge staged.
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), status);
    assert_eq!(git(&env.repo, &["diff", "--cached", "--name-only"]), "staged.txt\n");
    assert_eq!(git(&env.repo, &["diff", "--name-only"]), "README.md\n");
    git(&env.repo, &["fsck", "--no-progress"]);

    // Not kept: agent, worktree and branch are gone; the backups hold both old tips.
    assert!(gone(&env, "feat"));
    assert!(!wt.exists());
    assert_eq!(git(&env.repo, &["branch", "--list", "corral/feat"]), "");
    let backups = git(
        &env.repo,
        &["for-each-ref", "--format=%(refname) %(objectname)", "refs/corral/backup/feat/"],
    );
    let lines: Vec<&str> = backups.lines().collect();
    assert_eq!(lines.len(), 2, "{backups}");
    assert!(lines[0].ends_with(&format!("/agent {agent_tip}")), "{backups}");
    assert!(lines[1].ends_with(&format!("/base {old_main}")), "{backups}");
}

#[test]
fn uncommitted_and_untracked_work_of_the_agent_lands() {
    let env = Env::new();
    let wt = agent(&env, "wip");
    write(&wt.join("README.md"), "hello\nuncommitted\n");
    write(&wt.join("src/new.rs"), "untracked\n");
    write(&wt.join(".env"), "ignored, stays behind\n");
    env.ok(&["merge", "wip", "--yes", "--keep"]);
    assert_eq!(git(&env.repo, &["show", "main:README.md"]), "hello\nuncommitted\n");
    assert_eq!(git(&env.repo, &["show", "main:src/new.rs"]), "untracked\n");
    assert!(git(&env.repo, &["ls-tree", "-r", "--name-only", "main"]).lines().all(|l| l != ".env"));
    assert_eq!(read(&env.repo.join("src/new.rs")), "untracked\n");
    let msg = git(&env.repo, &["log", "-1", "--format=%B", "main"]);
    assert!(msg.contains("agent wip"), "the snapshot names the agent: {msg}");
    // Kept: the agent's worktree is clean on its branch, which the base contains.
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(rev(&wt, "HEAD"), rev(&env.repo, "main"));
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");

    // `rm` after the merge deletes worktree and branch: the work is on main.
    env.ok(&["rm", "wip"]);
    assert!(!wt.exists());
    assert_eq!(git(&env.repo, &["branch", "--list", "corral/wip"]), "");
}

#[test]
fn conflicting_merge_exits_3_lists_paths_and_changes_nothing() {
    let env = Env::new();
    let wt = agent(&env, "clash");
    write(&wt.join("README.md"), "hello from the agent\n");
    commit_all(&wt, "agent edits README");
    write(&wt.join("notes.txt"), "uncommitted agent work\n");
    write(&env.repo.join("README.md"), "hello from main\n");
    commit_all(&env.repo, "main edits README");
    write(&env.repo.join("mine.txt"), "the user's\n");
    git(&env.repo, &["add", "mine.txt"]);
    let before = everything(&env, &wt);

    let out = env.run(&["merge", "clash", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "README.md\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("conflict"));
    for mode in ["--squash", "--rebase"] {
        let out = env.run(&["merge", "clash", "--yes", mode]);
        assert_eq!(out.status.code(), Some(3), "{mode}");
    }
    assert_same(&before, &everything(&env, &wt));
    assert_eq!(git(&env.repo, &["for-each-ref", "refs/corral"]), "");
    assert!(!gone(&env, "clash"), "the agent stays");
    // The agent shows the conflict with its base.
    let a = env.agent_json("clash");
    let c = a["conflicts"].as_array().unwrap();
    assert!(
        c.iter().any(|c| c["with"] == "main" && c["base"] == true && c["paths"][0] == "README.md"),
        "{a}"
    );
}

#[test]
fn users_edit_to_a_file_the_merge_changes_is_refused_and_nothing_changes() {
    let env = Env::new();
    let wt = agent(&env, "mine");
    write(&wt.join("README.md"), "hello\nfrom the agent\n");
    commit_all(&wt, "agent edits README");
    write(&env.repo.join("README.md"), "hello\nthe user's own edit\n");
    let before = everything(&env, &wt);
    let err = env.fails(&["merge", "mine", "--yes"], 1);
    assert!(err.contains("commit or stash these: README.md"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_same(&before, &everything(&env, &wt));
    assert_eq!(git(&env.repo, &["for-each-ref", "refs/corral"]), "");
}

#[test]
fn fast_forward_when_possible_squash_one_commit_rebase_linear() {
    let env = Env::new();
    let ff = agent(&env, "ff");
    let sq = agent(&env, "sq");
    let rb = agent(&env, "rb");
    for (wt, file) in [(&ff, "ff.txt"), (&sq, "sq.txt"), (&rb, "rb.txt")] {
        write(&wt.join(file), "1\n");
        commit_all(wt, &format!("{file} one"));
        write(&wt.join(file), "1\n2\n");
        commit_all(wt, &format!("{file} two"));
    }
    let tip = rev(&ff, "HEAD");
    env.ok(&["merge", "ff", "--yes", "--ff-only"]);
    assert_eq!(rev(&env.repo, "main"), tip, "fast-forward: main is the agent's tip");

    // main has moved on: --ff-only refuses, squash makes one commit on top of main.
    let err = env.fails(&["merge", "sq", "--yes", "--ff-only"], 1);
    assert!(err.contains("not a fast-forward"), "{err}");
    let before = rev(&env.repo, "main");
    env.ok(&["merge", "sq", "--yes", "--squash"]);
    assert_eq!(git(&env.repo, &["rev-list", "--count", &format!("{before}..main")]).trim(), "1");
    assert_eq!(rev(&env.repo, "main^"), before);
    assert_eq!(git(&env.repo, &["show", "main:sq.txt"]), "1\n2\n");
    assert!(gone(&env, "sq"));
    assert_eq!(
        git(&env.repo, &["branch", "--list", "corral/sq"]),
        "",
        "squashed work counts as merged"
    );

    let before = rev(&env.repo, "main");
    env.ok(&["merge", "rb", "--yes", "--rebase"]);
    assert_eq!(git(&env.repo, &["rev-list", "--count", &format!("{before}..main")]).trim(), "2");
    assert_eq!(git(&env.repo, &["rev-list", "--merges", "main"]), "", "linear history");
    assert_eq!(git(&env.repo, &["log", "-1", "--format=%s", "main"]).trim(), "rb.txt two");
    assert_eq!(read(&env.repo.join("rb.txt")), "1\n2\n");
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    git(&env.repo, &["fsck", "--no-progress"]);
}

#[test]
fn two_merges_at_once_both_land_without_losing_either() {
    let env = Env::new();
    let a = agent(&env, "one");
    let b = agent(&env, "two");
    write(&a.join("one.txt"), "one\n");
    commit_all(&a, "one");
    write(&b.join("two.txt"), "two\n");
    commit_all(&b, "two");
    let (tip_a, tip_b) = (rev(&a, "HEAD"), rev(&b, "HEAD"));
    let spawn = |name: &str| {
        env.cmd(&["merge", name, "--yes"]).stdout(std::process::Stdio::null()).spawn().unwrap()
    };
    let (mut c1, mut c2) = (spawn("one"), spawn("two"));
    assert!(c1.wait().unwrap().success());
    assert!(c2.wait().unwrap().success());
    for tip in [&tip_a, &tip_b] {
        git(&env.repo, &["merge-base", "--is-ancestor", tip, "main"]);
    }
    assert_eq!(read(&env.repo.join("one.txt")), "one\n");
    assert_eq!(read(&env.repo.join("two.txt")), "two\n");
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    git(&env.repo, &["fsck", "--no-progress"]);
}

#[test]
fn merging_a_working_agent_needs_yes() {
    let env = Env::new();
    let wt = agent(&env, "busy");
    write(&wt.join("x.txt"), "x\n");
    env.ok(&["send", "busy", "while :; do echo tick; sleep 0.2; done"]);
    wait_for("the agent to be working", || {
        (env.agent_json("busy")["status"] == "working").then_some(())
    });
    let before = everything(&env, &wt);
    let err = env.fails(&["merge", "busy"], 1);
    assert!(err.contains("--yes"), "{err}");
    assert_same(&before, &everything(&env, &wt));
    env.ok(&["merge", "busy", "--yes", "--keep"]);
    assert_eq!(git(&env.repo, &["show", "main:x.txt"]), "x\n");
}

#[test]
fn radar_flags_same_lines_before_commit_but_not_different_files() {
    let env = Env::new();
    let x = agent(&env, "x");
    let y = agent(&env, "y");
    let z = agent(&env, "z");
    write(&x.join("README.md"), "hello from x\n");
    write(&y.join("README.md"), "hello from y\n");
    write(&z.join("other.txt"), "z\n");
    let conflicts = |name: &str| env.agent_json(name)["conflicts"].clone();
    wait_for("x and y flagged against each other", || {
        let cx = conflicts("x");
        let cy = conflicts("y");
        let hit = |c: &serde_json::Value, other: &str| {
            c.as_array()
                .unwrap()
                .iter()
                .any(|c| c["with"] == other && c["paths"] == serde_json::json!(["README.md"]))
        };
        (hit(&cx, "y") && hit(&cy, "x")).then_some(())
    });
    wait_for("z's stats", || (env.agent_json("z")["diff"]["files"] == 1).then_some(()));
    assert_eq!(conflicts("z"), serde_json::json!([]), "different files do not conflict");
    assert!(
        conflicts("x").as_array().unwrap().iter().all(|c| c["with"] != "z"),
        "{}",
        conflicts("x")
    );
    let table = env.ok(&["ls"]);
    assert!(table.contains("conflicts with y: README.md"), "{table}");
    assert!(table.contains("FILES") && table.contains("+1 -1"), "{table}");

    // Once y is gone, nobody conflicts with it any more, at once.
    env.ok(&["rm", "--force", "y"]);
    assert!(
        conflicts("x").as_array().unwrap().iter().all(|c| c["with"] != "y"),
        "{}",
        conflicts("x")
    );
}

#[test]
fn sync_brings_new_base_commits_and_refuses_overlaps() {
    let env = Env::new();
    let wt = agent(&env, "s");
    write(&wt.join("agent.txt"), "agent\n");
    commit_all(&wt, "agent work");
    write(&wt.join("wip.txt"), "uncommitted\n");
    write(&env.repo.join("base.txt"), "new on main\n");
    commit_all(&env.repo, "main moves");
    let out = env.ok(&["sync", "s"]);
    assert!(out.contains("brought main into corral/s"), "{out}");
    assert_eq!(read(&wt.join("base.txt")), "new on main\n");
    assert_eq!(read(&wt.join("wip.txt")), "uncommitted\n");
    git(&env.repo, &["merge-base", "--is-ancestor", "main", "corral/s"]);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "?? wip.txt\n");

    // Overlapping committed changes: exit 3, everything as it was.
    write(&wt.join("README.md"), "agent's readme\n");
    commit_all(&wt, "agent edits README");
    write(&env.repo.join("README.md"), "main's readme\n");
    commit_all(&env.repo, "main edits README");
    let before = everything(&env, &wt);
    let out = env.run(&["sync", "s"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "README.md\n");
    assert_same(&before, &everything(&env, &wt));

    // With rebase configured, the agent's commits go on top of main.
    env.write_config("[merge]\nsync = \"rebase\"\n");
    let r = agent(&env, "r");
    write(&r.join("r.txt"), "r\n");
    commit_all(&r, "r work");
    write(&env.repo.join("later.txt"), "later\n");
    commit_all(&env.repo, "main again");
    env.ok(&["sync", "r"]);
    assert_eq!(rev(&env.repo, "corral/r^"), rev(&env.repo, "main"));
    assert_eq!(read(&r.join("later.txt")), "later\n");
}

#[test]
fn diff_shows_all_work_and_ls_stats_follow_file_changes() {
    let env = Env::new();
    let wt = agent(&env, "d");
    write(&wt.join("README.md"), "hello\ncommitted\n");
    commit_all(&wt, "c");
    write(&wt.join("notes.txt"), "uncommitted\n");
    git(&wt, &["add", "notes.txt"]);
    write(&wt.join("notes.txt"), "uncommitted\nand unstaged\n");
    write(&wt.join("new/file.txt"), "untracked\n");
    write(&wt.join(".env"), "ignored\n");
    let patch = env.ok(&["diff", "d"]);
    assert!(
        patch.contains("diff --git a/README.md b/README.md") && patch.contains("+committed\n"),
        "{patch}"
    );
    assert!(patch.contains("+and unstaged\n") && patch.contains("+untracked\n"), "{patch}");
    assert!(!patch.contains(".env") && !patch.contains('\x1b'), "{patch}");
    let stat = env.ok(&["diff", "d", "--stat"]);
    assert!(stat.contains("3 files changed, 4 insertions(+)"), "{stat}");

    wait_for("stats for 3 files", || (env.agent_json("d")["diff"]["files"] == 3).then_some(()));
    let d = env.agent_json("d")["diff"].clone();
    assert_eq!(
        d,
        serde_json::json!({"files": 3, "insertions": 4, "deletions": 0, "ahead": 1, "behind": 0})
    );
    write(&wt.join("fourth.txt"), "one\ntwo\n");
    wait_for("stats to follow a new file", || {
        let d = env.agent_json("d")["diff"].clone();
        (d["files"] == 4 && d["insertions"] == 6).then_some(())
    });
    // A commit moves `ahead` (no file changes at all).
    commit_all(&wt, "more");
    wait_for("ahead to follow a commit", || {
        (env.agent_json("d")["diff"]["ahead"] == 2).then_some(())
    });
}

/// Issue 15: in a repository without `user.name`, corral's commits were by
/// `corral <corral@localhost>` even with `GIT_AUTHOR_NAME`/`EMAIL` set, which the git CLI would
/// use. They are by the identity git would use for the client that asked (its environment, not
/// the server's), with the agent named in the message; corral's own name only when git would
/// have nothing.
#[test]
fn corral_commits_are_by_the_identity_git_would_use() {
    let env = Env::new();
    let config = |key: &str| {
        let out = git_cmd(&env.repo).args(["config", key]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(config("user.name"), "", "the repository has no user.name");
    // The server was started by a client whose identity is "Test" (the harness's environment).
    let wt = agent(&env, "ident");
    let log = |rev: &str| git(&env.repo, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", rev]);

    // A merge asked for by another identity: a name, an email only from EMAIL.
    write(&wt.join("a.txt"), "a\n");
    let out = env
        .cmd(&["merge", "ident", "--yes", "--keep"])
        .env("GIT_AUTHOR_NAME", "Ada Merger")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env("EMAIL", "ada@example.invalid")
        .env("GIT_COMMITTER_NAME", "Ada Merger")
        .env("GIT_COMMITTER_EMAIL", "ada.commits@example.invalid")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        log("main"),
        "Ada Merger <ada@example.invalid>|Ada Merger <ada.commits@example.invalid>|corral: uncommitted work of agent ident\n"
    );

    // The repository's own identity comes before EMAIL, as in git.
    git(&env.repo, &["config", "user.name", "Repo User"]);
    git(&env.repo, &["config", "user.email", "repo@example.invalid"]);
    write(&wt.join("b.txt"), "b\n");
    let mut merge = env.cmd(&["merge", "ident", "--yes", "--keep"]);
    for var in ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"]
    {
        merge.env_remove(var);
    }
    assert!(merge.env("EMAIL", "mail@example.invalid").output().unwrap().status.success());
    assert!(log("main").starts_with("Repo User <repo@example.invalid>|Repo User <repo@example"));

    // Nothing at all (no variables, no config in the repository or this test's HOME): corral's
    // own name, here through `rm --force`, which commits the work it keeps on the branch.
    git(&env.repo, &["config", "--unset", "user.name"]);
    git(&env.repo, &["config", "--unset", "user.email"]);
    let system = std::process::Command::new("git")
        .args(["config", "--system", "user.name"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    write(&wt.join("c.txt"), "c\n");
    let mut rm = env.cmd(&["rm", "ident", "--force"]);
    for var in ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"]
    {
        rm.env_remove(var);
    }
    assert!(rm.env_remove("EMAIL").output().unwrap().status.success());
    let by = log("corral/ident");
    if !system {
        assert!(by.starts_with("corral <corral@localhost>|corral <corral@localhost>|"), "{by}");
    }
    assert!(by.contains("agent ident"), "{by}");
}
