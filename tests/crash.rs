//! `kill -9` of the server at any instant loses nothing and leaves nothing half done (SPEC §5,
//! issue 11). The server is armed with `CORRAL_TEST_CRASH_AT=<point>` and kills itself with SIGKILL
//! at that step boundary of `new`, `rm`, `merge` (every mode) or `sync`, and in some cases the next
//! server is killed again during its recovery; then the next command must work and the repository,
//! checked with the git CLI only, must hold exactly the old state or exactly the new one.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const CRASH: &str = "CORRAL_TEST_CRASH_AT";

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn rev(dir: &Path, r: &str) -> Option<String> {
    let out = git_cmd(dir).args(["rev-parse", "--verify", "-q", r]).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn show(dir: &Path, r: &str, path: &str) -> Option<String> {
    let out = git_cmd(dir).args(["show", &format!("{r}:{path}")]).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn commit_all(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
}

fn status(dir: &Path) -> String {
    git(dir, &["status", "--porcelain", "--ignored", "-uall"])
}

/// Whether any thread of `pid` still runs: a killed process's main thread turns zombie before the
/// others are gone, and until the last one is, its socket still accepts connections.
fn alive(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|t| {
        fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
    })
}

fn server_log(env: &Env) -> String {
    read(&env.home.join(".local/state/corral/server.log")).unwrap_or_default()
}

/// Start this test's server armed with `point`; every later command talks to it.
fn arm(env: &Env, point: &str) {
    let out = env.cmd(&["ls"]).env(CRASH, point).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Run `args` on the armed server, which must die at its point (else the point was never reached).
fn run_to_crash(env: &Env, args: &[&str], point: &str) {
    let pid = env.server_pid().unwrap();
    let out = env.run(args);
    wait_for(&format!("the server to die at {point}"), || (!alive(pid)).then_some(()));
    assert!(
        !out.status.success(),
        "corral {args:?} succeeded although the server died at {point}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The next server's recovery is killed at `point` too. That server is started directly (a client
/// would wait for it to answer, and after it died, start another).
fn crash_recovery(env: &Env, point: &str) {
    let mut server = std::process::Command::new(bin());
    env.apply_env(&mut server);
    let mut server = server
        .args(["server", "--foreground", "--detach"])
        .env(CRASH, point)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(&format!("the recovering server to die at {point}"), || {
        server.try_wait().unwrap()
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "recovery never reached {point}:\n{}", server_log(env));
}

/// The first command after the crash answers (its server ran recovery first); the agents listed.
fn listed(env: &Env) -> Vec<String> {
    let out = env.run(&["ls", "--json"]);
    assert!(
        out.status.success(),
        "ls after the crash: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server_log(env)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().into()).collect()
}

fn worktrees_dir(env: &Env) -> PathBuf {
    let data = env.home.join(".local/share/corral/worktrees");
    let mut dirs = fs::read_dir(&data).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>());
    match dirs.as_mut().map(|d| d.pop()) {
        Ok(Some(d)) => d,
        _ => data.join("none"),
    }
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// No worktree, `.git/worktrees` entry or `corral/` branch that no listed agent owns (except
/// branches `rm --force` keeps on purpose), and no debris of an interrupted step anywhere.
fn no_orphans(env: &Env, agents: &[String], kept_branches: &[&str], ctx: &str) {
    let want: BTreeSet<String> = agents.iter().cloned().collect();
    let admin = names_in(&env.repo.join(".git/worktrees"));
    assert_eq!(admin, want, "{ctx}: .git/worktrees entries");
    let linked: BTreeSet<String> = git(&env.repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .filter(|p| Path::new(p) != env.repo)
        .map(|p| Path::new(p).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(linked, want, "{ctx}: git worktree list");
    let dirs = names_in(&worktrees_dir(env));
    assert_eq!(dirs, want, "{ctx}: worktree directories (debris of a removal included)");
    let branches: BTreeSet<String> = git(&env.repo, &["branch", "--list", "corral/*"])
        .lines()
        .map(|l| l.trim_start_matches(['*', '+', ' ']).trim().to_string())
        .filter(|b| !kept_branches.contains(&b.as_str()))
        .collect();
    let want_branches: BTreeSet<String> = want.iter().map(|n| format!("corral/{n}")).collect();
    assert_eq!(branches, want_branches, "{ctx}: corral branches");
    assert!(names_in(&env.repo.join(".git/corral/intents")).is_empty(), "{ctx}: intents left");
    assert!(names_in(&env.repo.join(".git/corral/trash")).is_empty(), "{ctx}: trash left");
    for name in agents {
        let wt = worktrees_dir(env).join(name);
        assert!(
            names_in(&wt).iter().all(|n| !n.starts_with(".corral-checkout")),
            "{ctx}: staging left in {name}"
        );
    }
    assert!(
        names_in(&env.repo).iter().all(|n| !n.starts_with(".corral-checkout")),
        "{ctx}: staging left in the main worktree"
    );
    git(&env.repo, &["fsck", "--no-progress", "--no-dangling"]);
}

/// `corral new` under that name works again (after removing the agent if it survived).
fn name_reusable(env: &Env, name: &str, agents: &[String]) {
    if agents.iter().any(|a| a == name) {
        env.ok(&["rm", name, "--force"]);
    }
    env.new_shell(name);
    env.ok(&["rm", name]);
}

// ---------------------------------------------------------------------------------------------
// new

const NEW_POINTS: &[&str] = &[
    "new:intent",
    "new:branch",
    "new:registered",
    "new:checkout#2",
    "new:worktree",
    "new:spawned",
    "new:saved",
];

fn repo_with_files(env: &Env) {
    for (p, t) in [("a.txt", "a\n"), ("b.txt", "b\n"), ("dir/keep.txt", "keep\n"), ("c.txt", "c\n")]
    {
        write(&env.repo.join(p), t);
    }
    commit_all(&env.repo, "files");
}

fn new_case(point: &str, recovery: Option<&str>) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("new killed at {point}, recovery at {recovery:?}");
    arm(&env, point);
    run_to_crash(
        &env,
        &["new", "--agent", "shell", "--name", "fresh", "--detach", "--size", "80x24"],
        point,
    );
    if let Some(r) = recovery {
        crash_recovery(&env, r);
    }
    let agents = listed(&env);
    if agents.iter().any(|a| a == "fresh") {
        let wt = worktrees_dir(&env).join("fresh");
        assert_eq!(read(&wt.join("a.txt")).as_deref(), Some("a\n"), "{ctx}");
        assert_eq!(git(&wt, &["status", "--porcelain"]), "", "{ctx}");
    }
    no_orphans(&env, &agents, &[], &ctx);
    assert_eq!(status(&env.repo), "", "{ctx}: main worktree");
    name_reusable(&env, "fresh", &agents);
}

/// `new -n 3`: all three agents or none of them.
fn new_many_case(point: &str) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("new -n 3 killed at {point}");
    arm(&env, point);
    let args = ["new", "--agent", "shell", "--name", "many", "-n", "3", "--detach"];
    run_to_crash(&env, &args, point);
    let agents = listed(&env);
    assert!(agents.is_empty() || agents.len() == 3, "{ctx}: {agents:?}");
    no_orphans(&env, &agents, &[], &ctx);
    for a in &agents {
        env.ok(&["rm", a]);
    }
    let out = env.ok(&args);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["many-1", "many-2", "many-3"], "{ctx}");
}

#[test]
fn killed_new_becomes_a_listed_agent_or_nothing() {
    for point in NEW_POINTS {
        new_case(point, None);
    }
    // Killed while the second of three worktrees is checked out, after two of three started, and
    // once all three are saved.
    for point in ["new:checkout#9", "new:spawned#2", "new:saved"] {
        new_many_case(point);
    }
}

// ---------------------------------------------------------------------------------------------
// fork

/// `fork` killed at `point`: the fork is a listed agent with the original's work, or nothing of
/// it is left; the original's branch, index and files are as they were either way.
fn fork_case(point: &str) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("fork killed at {point}");
    arm(&env, point);
    env.new_shell("orig");
    let orig = worktrees_dir(&env).join("orig");
    write(&orig.join("a.txt"), "changed by orig\n");
    write(&orig.join("new.txt"), "untracked\n");
    let before = (
        status(&orig),
        rev(&orig, "HEAD"),
        fs::read(env.repo.join(".git/worktrees/orig/index")).ok(),
    );
    run_to_crash(&env, &["fork", "orig", "--name", "fk", "--detach"], point);
    let agents = listed(&env);
    assert!(agents.iter().any(|a| a == "orig"), "{ctx}: {agents:?}");
    let after = (
        status(&orig),
        rev(&orig, "HEAD"),
        fs::read(env.repo.join(".git/worktrees/orig/index")).ok(),
    );
    assert_eq!(after, before, "{ctx}: the original");
    if agents.iter().any(|a| a == "fk") {
        let wt = worktrees_dir(&env).join("fk");
        assert_eq!(read(&wt.join("a.txt")).as_deref(), Some("changed by orig\n"), "{ctx}");
        assert_eq!(read(&wt.join("new.txt")).as_deref(), Some("untracked\n"), "{ctx}");
    }
    no_orphans(&env, &agents, &[], &ctx);
    if agents.iter().any(|a| a == "fk") {
        // Its branch holds the original's work, so `rm --force` keeps it.
        env.ok(&["rm", "--force", "fk"]);
        git(&env.repo, &["branch", "-D", "corral/fk"]);
    }
    let out = env.ok(&["fork", "orig", "--name", "fk", "--detach"]);
    assert_eq!(out.trim(), "fk", "{ctx}: the name is free again");
}

#[test]
fn killed_fork_becomes_a_listed_agent_or_nothing_and_never_touches_the_original() {
    for point in [
        "fork:snapshot",
        "new:intent#2",
        "new:branch#2",
        "new:registered#2",
        "new:checkout#9",
        "new:worktree#2",
        "new:spawned#2",
        "new:saved#2",
    ] {
        fork_case(point);
    }
}

/// `compare --pick` killed while it removes the agents not picked: each of them is either still
/// listed with its branch, or gone with its work under refs/corral/backup/; nothing else is left.
fn pick_case(point: &str) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("pick killed at {point}");
    arm(&env, point);
    env.ok(&["new", "try", "--agent", "shell", "-n", "3", "--detach"]);
    for n in ["try-1", "try-2", "try-3"] {
        write(&worktrees_dir(&env).join(n).join(format!("{n}.txt")), "work\n");
    }
    run_to_crash(&env, &["compare", "try-1", "--pick", "try-1"], point);
    let agents = listed(&env);
    assert!(!agents.iter().any(|a| a == "try-1"), "{ctx}: the picked one landed: {agents:?}");
    assert_eq!(read(&env.repo.join("try-1.txt")).as_deref(), Some("work\n"), "{ctx}");
    no_orphans(&env, &agents, &[], &ctx);
    let backups = git(&env.repo, &["for-each-ref", "--format=%(refname)", "refs/corral/backup/"]);
    for n in ["try-2", "try-3"] {
        let kept = backups
            .lines()
            .find(|r| r.starts_with(&format!("refs/corral/backup/{n}/")) && r.ends_with("/agent"));
        match kept {
            Some(r) => assert_eq!(
                show(&env.repo, r, &format!("{n}.txt")).as_deref(),
                Some("work\n"),
                "{ctx}"
            ),
            None => assert!(agents.iter().any(|a| a == n), "{ctx}: {n} neither listed nor kept"),
        }
    }
}

#[test]
fn killed_pick_keeps_every_agent_not_picked_listed_or_under_a_backup_ref() {
    // The picked one is removed first (it landed): the others from the second of each point on.
    for point in ["rm:snapshot#2", "rm:backup", "rm:intent#2", "rm:removed#3", "rm:saved#2"] {
        pick_case(point);
    }
}

// ---------------------------------------------------------------------------------------------
// rm

const RM_POINTS: &[&str] =
    &["rm:snapshot", "rm:intent", "rm:worktree", "rm:admin", "rm:removed", "rm:saved"];

/// `dirty`: the agent has a commit and uncommitted work, removed with `--force` (its branch is kept
/// with the work); else a clean agent whose branch goes too.
fn rm_case(point: &str, dirty: bool, recovery: Option<&str>) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("rm (dirty: {dirty}) killed at {point}, recovery at {recovery:?}");
    arm(&env, point);
    env.new_shell("other");
    env.new_shell("gone");
    let wt = env.worktree_of("gone");
    if dirty {
        write(&wt.join("done.txt"), "committed\n");
        commit_all(&wt, "agent work");
        write(&wt.join("wip.txt"), "uncommitted\n");
    }
    let args: &[&str] = if dirty { &["rm", "gone", "--force"] } else { &["rm", "gone"] };
    run_to_crash(&env, args, point);
    if let Some(r) = recovery {
        crash_recovery(&env, r);
    }
    let agents = listed(&env);
    assert!(agents.iter().any(|a| a == "other"), "{ctx}: the other agent stays");
    if agents.iter().any(|a| a == "gone") {
        // Not removed: whole, with its work.
        assert_eq!(read(&wt.join("a.txt")).as_deref(), Some("a\n"), "{ctx}");
        if dirty {
            assert_eq!(read(&wt.join("wip.txt")).as_deref(), Some("uncommitted\n"), "{ctx}");
            assert_eq!(read(&wt.join("done.txt")).as_deref(), Some("committed\n"), "{ctx}");
        }
    } else if dirty {
        // Removed: the branch holds every bit of the work.
        assert_eq!(show(&env.repo, "corral/gone", "wip.txt").as_deref(), Some("uncommitted\n"));
        assert_eq!(show(&env.repo, "corral/gone", "done.txt").as_deref(), Some("committed\n"));
    }
    let kept: &[&str] =
        if dirty && !agents.iter().any(|a| a == "gone") { &["corral/gone"] } else { &[] };
    no_orphans(&env, &agents, kept, &ctx);
    assert_eq!(status(&env.repo), "", "{ctx}: main worktree");
    if !dirty {
        name_reusable(&env, "gone", &agents);
    }
}

#[test]
fn killed_rm_is_finished_or_leaves_the_agent_whole() {
    for point in RM_POINTS {
        rm_case(point, false, None);
    }
    for point in ["rm:snapshot", "rm:worktree", "rm:saved"] {
        rm_case(point, true, None);
    }
}

// ---------------------------------------------------------------------------------------------
// merge

/// The agent's work (committed and not) as path → content; `None`: deleted.
const AGENT_WORK: &[(&str, Option<&str>)] = &[
    ("a.txt", Some("a by the agent\n")),
    ("b.txt", None),
    ("feature.txt", Some("feature\n")),
    ("dir/c2.txt", Some("new in dir\n")),
    ("dir/keep.txt", Some("keep, edited but not committed\n")),
    ("wip.txt", Some("untracked work\n")),
];

fn merge_points(mode: &str) -> Vec<&'static str> {
    let mut p = vec![
        "land:intent",
        "land:backup",
        "land:snapshot-ref",
        "land:snapshot-index",
        "checkout:planned",
        "checkout:staged",
        "checkout:step#1",
        "checkout:step#3",
        "checkout:step#5",
        "checkout:files",
        "checkout:index",
        "checkout:ref",
        "land:base",
    ];
    if mode == "--squash" || mode == "--rebase" {
        // The agent's branch and worktree follow the base.
        p.extend(["checkout:planned#2", "checkout:step#7", "checkout:ref#2", "land:follow"]);
    }
    p.extend(["rm:intent", "rm:worktree", "rm:saved"]);
    p
}

struct Before {
    main: String,
    main_status: String,
    user_files: Vec<(PathBuf, Option<String>)>,
    agent_status: String,
}

fn user_files(env: &Env) -> Vec<(PathBuf, Option<String>)> {
    ["README.md", "staged.txt", "untracked.txt", ".env", "main.txt"]
        .iter()
        .map(|p| (env.repo.join(p), read(&env.repo.join(p))))
        .collect()
}

fn merge_case(mode: &str, point: &str, recovery: Option<&str>) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("merge {mode} killed at {point}, recovery at {recovery:?}");
    arm(&env, point);
    let wt = {
        env.new_shell("feat");
        env.worktree_of("feat")
    };
    write(&wt.join("a.txt"), "a by the agent\n");
    fs::remove_file(wt.join("b.txt")).unwrap();
    write(&wt.join("feature.txt"), "feature\n");
    write(&wt.join("dir/c2.txt"), "new in dir\n");
    commit_all(&wt, "agent work");
    write(&wt.join("dir/keep.txt"), "keep, edited but not committed\n");
    write(&wt.join("wip.txt"), "untracked work\n");
    if mode != "--ff-only" {
        write(&env.repo.join("main.txt"), "main moved on\n");
        commit_all(&env.repo, "main moves");
    }
    // The user's own changes in the main worktree, none in a file the merge changes.
    write(&env.repo.join("staged.txt"), "staged\n");
    git(&env.repo, &["add", "staged.txt"]);
    write(&env.repo.join("README.md"), "hello\nunstaged edit\n");
    write(&env.repo.join("untracked.txt"), "untracked\n");
    write(&env.repo.join(".env"), "SECRET=1\n");
    let before = Before {
        main: rev(&env.repo, "main").unwrap(),
        main_status: status(&env.repo),
        user_files: user_files(&env),
        agent_status: status(&wt),
    };
    let staged_before = git(&env.repo, &["diff", "--cached"]);

    let mut args = vec!["merge", "feat", "--yes"];
    if mode != "--merge" {
        args.push(mode);
    }
    run_to_crash(&env, &args, point);
    if let Some(r) = recovery {
        crash_recovery(&env, r);
    }
    let agents = listed(&env);

    // The base: old, or fully new.
    let main = rev(&env.repo, "main").unwrap();
    let moved = main != before.main;
    if moved {
        for (p, want) in AGENT_WORK {
            assert_eq!(show(&env.repo, "main", p).as_deref(), *want, "{ctx}: main:{p}");
        }
        git(&env.repo, &["merge-base", "--is-ancestor", &before.main, "main"]);
    }
    // The main worktree: HEAD plus exactly the user's own changes.
    assert_eq!(status(&env.repo), before.main_status, "{ctx}: main worktree status");
    assert_eq!(user_files(&env), before.user_files, "{ctx}: the user's files");
    assert_eq!(git(&env.repo, &["diff", "--cached"]), staged_before, "{ctx}: the user's staging");

    // The agent: gone only once its work is on the base; else whole, with every bit of its work.
    let kept = agents.iter().any(|a| a == "feat");
    assert!(kept || moved, "{ctx}: the agent went although main did not move");
    if kept {
        for (p, want) in AGENT_WORK {
            assert_eq!(read(&wt.join(p)).as_deref(), *want, "{ctx}: agent's {p}");
        }
        let st = status(&wt);
        assert!(
            st == before.agent_status || st.is_empty(),
            "{ctx}: agent worktree neither as it was nor committed:\n{st}"
        );
        if moved && (mode == "--squash" || mode == "--rebase") {
            // The agent's branch followed the base.
            assert_eq!(rev(&wt, "HEAD").unwrap(), main, "{ctx}: agent follows main");
        }
    }
    no_orphans(&env, &agents, &[], &ctx);
}

fn merge_sweep(mode: &str) {
    for point in merge_points(mode) {
        merge_case(mode, point, None);
    }
}

#[test]
fn killed_merge_lands_fully_or_not_at_all() {
    merge_sweep("--merge");
}

#[test]
fn killed_squash_merge_lands_fully_or_not_at_all() {
    merge_sweep("--squash");
}

#[test]
fn killed_rebase_merge_lands_fully_or_not_at_all() {
    merge_sweep("--rebase");
}

#[test]
fn killed_ff_only_merge_lands_fully_or_not_at_all() {
    merge_sweep("--ff-only");
}

// ---------------------------------------------------------------------------------------------
// sync

const SYNC_POINTS: &[&str] = &[
    "sync:backup",
    "checkout:planned",
    "checkout:staged",
    "checkout:step#1",
    "checkout:step#3",
    "checkout:files",
    "checkout:index",
    "checkout:ref",
];

/// What the base brings: path → content (`None`: deleted).
const BASE_WORK: &[(&str, Option<&str>)] = &[
    ("a.txt", Some("a on main\n")),
    ("b.txt", None),
    ("base.txt", Some("base\n")),
    ("dir/new.txt", Some("dir on main\n")),
];

fn sync_case(point: &str, recovery: Option<&str>) {
    let env = Env::new();
    repo_with_files(&env);
    let ctx = format!("sync killed at {point}, recovery at {recovery:?}");
    arm(&env, point);
    env.new_shell("up");
    let wt = env.worktree_of("up");
    write(&wt.join("own.txt"), "the agent's commit\n");
    commit_all(&wt, "agent commit");
    write(&wt.join("c.txt"), "c, the agent's uncommitted edit\n");
    write(&wt.join("notes.txt"), "untracked notes\n");
    write(&env.repo.join("a.txt"), "a on main\n");
    fs::remove_file(env.repo.join("b.txt")).unwrap();
    write(&env.repo.join("base.txt"), "base\n");
    write(&env.repo.join("dir/new.txt"), "dir on main\n");
    commit_all(&env.repo, "main moves");
    let main = rev(&env.repo, "main").unwrap();
    let tip = rev(&wt, "HEAD").unwrap();
    let agent_status = status(&wt);

    run_to_crash(&env, &["sync", "up"], point);
    if let Some(r) = recovery {
        crash_recovery(&env, r);
    }
    let agents = listed(&env);
    assert!(agents.iter().any(|a| a == "up"), "{ctx}");
    let head = rev(&wt, "HEAD").unwrap();
    // The agent's own changes stay whatever happened.
    assert_eq!(status(&wt), agent_status, "{ctx}: agent worktree status");
    assert_eq!(read(&wt.join("c.txt")).as_deref(), Some("c, the agent's uncommitted edit\n"));
    assert_eq!(read(&wt.join("notes.txt")).as_deref(), Some("untracked notes\n"));
    assert_eq!(read(&wt.join("own.txt")).as_deref(), Some("the agent's commit\n"));
    if head == tip {
        // Unchanged: none of the base's new files.
        assert_eq!(read(&wt.join("b.txt")).as_deref(), Some("b\n"), "{ctx}");
        assert_eq!(read(&wt.join("base.txt")), None, "{ctx}");
        assert_eq!(read(&wt.join("dir/new.txt")), None, "{ctx}");
    } else {
        // Fully synced: the branch has both, the files are the new commit's.
        git(&wt, &["merge-base", "--is-ancestor", &main, "HEAD"]);
        git(&wt, &["merge-base", "--is-ancestor", &tip, "HEAD"]);
        for (p, want) in BASE_WORK {
            assert_eq!(read(&wt.join(p)).as_deref(), *want, "{ctx}: {p}");
        }
    }
    assert_eq!(rev(&env.repo, "main").unwrap(), main, "{ctx}: sync never moves main");
    assert_eq!(status(&env.repo), "", "{ctx}: main worktree");
    no_orphans(&env, &agents, &[], &ctx);
}

#[test]
fn killed_sync_leaves_the_agent_unchanged_or_fully_synced() {
    for point in SYNC_POINTS {
        sync_case(point, None);
    }
}

// ---------------------------------------------------------------------------------------------
// recovery killed too

#[test]
fn killed_recovery_is_recovered_by_the_next_server() {
    // Putting the main worktree back (the base did not move) is killed half way.
    merge_case("--merge", "checkout:step#3", Some("checkout:step#2"));
    merge_case("--merge", "checkout:index", Some("recover:checkout"));
    // Finishing a squash whose base moved: the agent's follow is killed half way.
    merge_case("--squash", "land:base", Some("checkout:step#1"));
    merge_case("--rebase", "checkout:ref", Some("recover:resolved"));
    merge_case("--ff-only", "checkout:files", Some("checkout:step#3"));
    // Completing a sync whose ref moved; undoing one whose ref did not.
    sync_case("checkout:index", Some("recover:begin"));
    sync_case("checkout:step#2", Some("checkout:step#1"));
    // Finishing a removal, and undoing a creation.
    rm_case("rm:worktree", false, Some("rm:admin"));
    rm_case("rm:intent", true, Some("recover:saved"));
    new_case("new:spawned", Some("rm:worktree"));
    new_case("new:registered", Some("recover:resolved"));
}

// ---------------------------------------------------------------------------------------------
// the landing queue

/// `corral land` killed at `point`: the next server resumes the queue from the sync, and the
/// agent lands exactly once, with the base's commit and its uncommitted work, gated.
fn queue_case(point: &str) {
    let env = Env::new();
    let runs = env.root().join("gate-runs.txt");
    env.write_config(&format!(
        "[merge]\ngate = [\"sh\", \"-c\", \"git rev-parse HEAD >> {}; test -e mine.txt\"]\n",
        runs.display()
    ));
    arm(&env, point);
    let pid = env.server_pid().unwrap();
    env.new_shell("q");
    let wt = env.worktree_of("q");
    write(&wt.join("mine.txt"), "agent work\n");
    commit_all(&wt, "agent commits");
    write(&wt.join("later.txt"), "uncommitted\n");
    write(&env.repo.join("base.txt"), "base moved\n");
    commit_all(&env.repo, "base moves on");

    // The client follows the queue across the crash: its status requests are reads, asked again
    // of the next server, which resumes the queue.
    let out = env.run(&["land", "q"]);
    assert!(!alive(pid), "the server never reached {point}");
    let ctx = format!(
        "{point}: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server_log(&env)
    );
    wait_for(&format!("q landed after a crash at {point}"), || {
        let out = env.run(&["land", "--status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let e = v.as_array()?.iter().find(|e| e["name"] == "q")?.clone();
        assert_ne!(e["state"], "blocked", "{e}\n{ctx}");
        (e["state"] == "landed").then_some(())
    });
    wait_for("q removed", || (!listed(&env).contains(&"q".to_string())).then_some(()));
    let main = rev(&env.repo, "main").unwrap();
    let gated = read(&runs).unwrap_or_default();
    assert!(gated.lines().any(|l| l == main), "{point}: main {main} was never gated: {gated}");
    assert_eq!(read(&env.repo.join("mine.txt")).as_deref(), Some("agent work\n"), "{point}");
    assert_eq!(read(&env.repo.join("later.txt")).as_deref(), Some("uncommitted\n"), "{point}");
    assert_eq!(read(&env.repo.join("base.txt")).as_deref(), Some("base moved\n"), "{point}");
    assert_eq!(status(&env.repo), "", "{point}");
    assert!(!wt.exists(), "{point}: the worktree is left behind");
    git(&env.repo, &["fsck", "--no-progress"]);
    let intents = env.repo.join(".git/corral/intents");
    let left = fs::read_dir(&intents).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "{point}: intent records left behind");
}

#[test]
fn killed_landing_queue_resumes_from_the_sync_and_lands_once() {
    for point in [
        "queue:snapshot",
        "queue:synced",
        "queue:gate",
        "queue:backup",
        "checkout:files",
        "queue:landed",
    ] {
        queue_case(point);
    }
}

/// `corral resolve` killed after its snapshot and backup refs, before the merge: the agent's work
/// is all on its branch, its worktree has no markers and no merge in progress, the base is
/// untouched, and resolve works on the next server.
#[test]
fn killed_resolve_leaves_the_agents_work_committed_and_no_markers() {
    let env = Env::new();
    arm(&env, "resolve:backup");
    env.new_shell("r");
    let wt = env.worktree_of("r");
    write(&wt.join("README.md"), "from the agent\n");
    write(&env.repo.join("README.md"), "from the base\n");
    commit_all(&env.repo, "base edits the readme");
    let main = rev(&env.repo, "main").unwrap();
    run_to_crash(&env, &["resolve", "r"], "resolve:backup");
    assert!(listed(&env).contains(&"r".to_string()));
    assert_eq!(rev(&env.repo, "main").as_deref(), Some(main.as_str()));
    assert_eq!(read(&wt.join("README.md")).as_deref(), Some("from the agent\n"));
    assert_eq!(show(&env.repo, "corral/r", "README.md").as_deref(), Some("from the agent\n"));
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    let admin = git(&wt, &["rev-parse", "--absolute-git-dir"]);
    assert!(!Path::new(admin.trim()).join("MERGE_HEAD").exists());
    git(&env.repo, &["fsck", "--no-progress"]);
    let out = env.run(&["resolve", "r"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(read(&wt.join("README.md")).unwrap().contains("<<<<<<<"));
}

/// `kill -9` of the server while a long gate runs: the next server ends that gate (it would
/// otherwise run on beside the new one), then gates and lands the agent.
#[test]
fn a_gate_left_running_by_a_killed_server_is_ended_and_the_queue_finishes() {
    let env = Env::new();
    let first = env.root().join("first-gate.pid");
    let gate = format!(
        "if [ -e {0} ]; then exit 0; fi; echo $$ > {0}.tmp; mv {0}.tmp {0}; exec sleep 120",
        first.display()
    );
    env.write_config(&format!("[merge]\ngate = [\"sh\", \"-c\", {gate:?}]\n"));
    env.new_shell("q");
    let wt = env.worktree_of("q");
    write(&wt.join("mine.txt"), "agent work\n");
    let server = env.server_pid().unwrap();
    env.ok(&["land", "q", "--no-wait"]);
    let gate_pid: u32 =
        wait_for("the first gate running", || read(&first).and_then(|s| s.trim().parse().ok()));
    assert!(alive(gate_pid));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(server as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_for("the server gone", || (!alive(server)).then_some(()));
    assert!(alive(gate_pid), "the gate outlives the server until the next one ends it");
    // Any command starts the next server, which resumes the queue.
    listed(&env);
    wait_for("the orphaned gate ended", || (!alive(gate_pid)).then_some(()));
    wait_for("q landed", || {
        let out = env.run(&["land", "--status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.iter().any(|e| e["name"] == "q" && e["state"] == "landed").then_some(())
    });
    assert_eq!(read(&env.repo.join("mine.txt")).as_deref(), Some("agent work\n"));
    // A landed agent is removed after its entry says landed: look once that is done too.
    wait_for("q removed after landing", || {
        let out = env.run(&["ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["agents"].as_array()?.iter().all(|a| a["name"] != "q").then_some(())
    });
    git(&env.repo, &["fsck", "--no-progress"]);
}
