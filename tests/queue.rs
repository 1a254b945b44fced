//! The landing queue end to end (SPEC §5b): `corral land` through the real binary and server, on
//! real repositories checked with the git CLI, with agents that are plain commands.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use corral::term::Size;
use tty::Tty;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn rev(dir: &Path, rev: &str) -> String {
    git(dir, &["rev-parse", rev]).trim().to_string()
}

fn commit_all(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
}

/// An agent that says it is ready, then echoes what it is told (so it goes idle, and shows any
/// message typed into it).
const CAT: &str = "[agents.cat]\ncommand = [\"sh\", \"-c\", \"echo ready; exec cat\"]\n";

/// Config with a gate that records each commit it ran on in `runs`, and fails where a file named
/// FAIL exists.
fn config(env: &Env, extra: &str) -> PathBuf {
    let runs = env.root().join("gate-runs.txt");
    let gate = format!(
        "git rev-parse HEAD >> {}; echo checking; if test -e FAIL; then echo 'FAIL: the tests broke'; exit 7; fi",
        runs.display()
    );
    env.write_config(&format!(
        "default_agent = \"cat\"\n{CAT}[merge]\ngate = [\"sh\", \"-c\", {gate:?}]\n{extra}"
    ));
    runs
}

fn cat_agent(env: &Env, name: &str) -> PathBuf {
    let out = env.ok(&["new", "--name", name, "--detach", "--size", "80x24"]);
    assert_eq!(out.trim(), name);
    env.wait_tail(name, |t| t.contains("ready"));
    env.worktree_of(name)
}

fn status_json(env: &Env) -> Vec<serde_json::Value> {
    let out = env.ok(&["land", "--status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().clone()
}

fn entry(env: &Env, name: &str) -> serde_json::Value {
    status_json(env).into_iter().find(|e| e["name"] == name).unwrap_or(serde_json::Value::Null)
}

fn gone(env: &Env, name: &str) -> bool {
    env.ls_json()["agents"].as_array().unwrap().iter().all(|a| a["name"] != name)
}

#[test]
fn four_queued_two_land_in_order_gated_one_conflicts_one_fails_and_an_idle_agent_follows() {
    let env = Env::new();
    let runs = config(&env, "retries = 0\n");
    let wa = cat_agent(&env, "a");
    let wb = cat_agent(&env, "b");
    let wc = cat_agent(&env, "c");
    let wd = cat_agent(&env, "d");
    let we = cat_agent(&env, "e");

    // a and b change the same line; c breaks the gate; d is clean; e is not queued.
    write(&wa.join("README.md"), "hello from a\n");
    commit_all(&wa, "a rewrites the greeting");
    write(&wb.join("README.md"), "hello from b\n");
    write(&wc.join("c.txt"), "c\n");
    write(&wc.join("FAIL"), "x\n");
    write(&wd.join("d.txt"), "d\n");
    write(&we.join("e.txt"), "e's own work, uncommitted\n");

    let out = env.run(&["land", "a", "b", "c", "d"]);
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "a conflict was blocked: {text}");

    // a then d landed, main moved only to commits the gate passed, in that order.
    let main = rev(&env.repo, "main");
    let gated: Vec<String> = read(&runs).lines().map(str::to_string).collect();
    assert_eq!(entry(&env, "d")["state"], "landed", "{text}");
    assert_eq!(entry(&env, "a")["state"], "landed", "{text}");
    let a_at = entry(&env, "a")["landed_at"].as_str().unwrap().to_string();
    assert_eq!(main, entry(&env, "d")["landed_at"].as_str().unwrap());
    assert!(gated.contains(&a_at), "a landed at a gated commit: {gated:?}");
    assert!(gated.contains(&main), "d landed at a gated commit: {gated:?}");
    git(&env.repo, &["merge-base", "--is-ancestor", &a_at, &main]);
    assert_eq!(read(&env.repo.join("README.md")), "hello from a\n");
    assert_eq!(read(&env.repo.join("d.txt")), "d\n");
    assert!(!env.repo.join("c.txt").exists() && !env.repo.join("FAIL").exists());
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    wait_for("a and d removed", || (gone(&env, "a") && gone(&env, "d")).then_some(()));

    // b and c are blocked, keep their work and worktrees, and were told why.
    let b = entry(&env, "b");
    assert_eq!(b["state"], "blocked");
    assert_eq!(b["failure"], "conflict");
    let told_b = b["told"].as_str().unwrap();
    assert!(told_b.contains("README.md") && told_b.contains("a rewrites the greeting"), "{told_b}");
    assert_eq!(read(&wb.join("README.md")), "hello from b\n");
    let c = entry(&env, "c");
    assert_eq!(c["state"], "blocked");
    assert_eq!(c["failure"], "gate");
    let told_c = c["told"].as_str().unwrap();
    assert!(told_c.contains("exit code 7") && told_c.contains("FAIL: the tests broke"), "{told_c}");
    assert!(wc.join("FAIL").exists() && wc.join("c.txt").exists());
    env.wait_tail("b", |t| t.contains("could not land your work") && t.contains("README.md"));
    env.wait_tail("c", |t| t.contains("FAIL: the tests broke"));
    assert_eq!(env.agent_json("b")["landing"]["state"], "blocked");
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("landing: blocked: conflict in README.md"), "{ls}");
    let status = env.ok(&["land", "--status"]);
    assert!(status.contains("c: blocked: gate `sh -c"), "{status}");
    assert!(
        status.contains("gate output:") && status.contains("    FAIL: the tests broke"),
        "{status}"
    );
    assert!(env.agent_json("e")["landing"].is_null());

    // e was idle and outside the queue: it now has what landed, and its own work.
    wait_for("e synced with what landed", || {
        (read(&we.join("d.txt")) == "d\n" && read(&we.join("README.md")) == "hello from a\n")
            .then_some(())
    });
    assert_eq!(read(&we.join("e.txt")), "e's own work, uncommitted\n");
    git(&env.repo, &["fsck", "--no-progress"]);
}

#[test]
fn a_queued_agent_waits_while_working_and_cancel_takes_it_out() {
    let env = Env::new();
    // An agent that keeps printing: working for as long as it runs.
    env.write_config(&format!(
        "default_agent = \"cat\"\n{CAT}[agents.busy]\ncommand = [\"sh\", \"-c\", \"while :; do echo tick; sleep 0.1; done\"]\n"
    ));
    let before = rev(&env.repo, "main");
    env.ok(&["new", "--agent", "busy", "--name", "w", "--detach", "--size", "80x24"]);
    write(&env.worktree_of("w").join("w.txt"), "w\n");
    wait_for("w working", || (env.agent_json("w")["status"] == "working").then_some(()));
    let out = env.ok(&["land", "w", "--no-wait"]);
    assert!(out.contains("w: waiting"), "{out}");
    assert_eq!(env.agent_json("w")["landing"]["state"], "waiting");
    assert_eq!(env.agent_json("w")["landing"]["position"], 1);
    assert_eq!(rev(&env.repo, "main"), before);
    env.ok(&["land", "--cancel", "w"]);
    assert!(env.agent_json("w")["landing"].is_null());
    let err = env.fails(&["land", "--cancel", "w"], 1);
    assert!(err.contains("not in the landing queue"), "{err}");
    let err = env.fails(&["land", "nobody"], 1);
    assert!(err.contains("nobody"), "{err}");
    let err = env.fails(&["land", "w", "w"], 1);
    assert!(err.contains("agent 'w' is named twice"), "{err}");
    assert!(env.agent_json("w")["landing"].is_null(), "all or none");
}

#[test]
fn a_gate_in_the_repositorys_file_needs_approval() {
    let env = Env::new();
    env.write_config(&format!("default_agent = \"cat\"\n{CAT}"));
    write(&env.repo.join(".corral.toml"), "[merge]\ngate = [\"true\"]\n");
    commit_all(&env.repo, "a gate");
    let wa = cat_agent_trusting(&env, "a");
    write(&wa.join("a.txt"), "a\n");
    let before = rev(&env.repo, "main");
    // Approved for `new` only after it changed: edit it so the approval no longer matches.
    write(&env.repo.join(".corral.toml"), "[merge]\ngate = [\"sh\", \"-c\", \"true\"]\n");
    let out = env.run(&["land", "a"]);
    assert_eq!(out.status.code(), Some(1));
    let a = entry(&env, "a");
    assert_eq!(a["state"], "blocked");
    assert!(a["reason"].as_str().unwrap().contains("corral trust"), "{a}");
    assert_eq!(rev(&env.repo, "main"), before);
    env.ok(&["trust"]);
    env.ok(&["land", "a"]);
    assert_eq!(read(&env.repo.join("a.txt")), "a\n");
}

fn cat_agent_trusting(env: &Env, name: &str) -> PathBuf {
    env.ok(&["trust"]);
    cat_agent(env, name)
}

#[test]
fn a_told_agent_that_fixes_its_work_is_queued_again_and_lands() {
    let env = Env::new();
    let runs = env.root().join("gate-runs.txt");
    // On being told, this agent removes what breaks the gate and commits.
    let fixer = "echo ready; while read -r l; do echo \"got: $l\"; case \"$l\" in *'could not land'*) rm -f FAIL; git add -A; git commit -qm 'fix the gate';; esac; done";
    let gate = format!("git rev-parse HEAD >> {}; test ! -e FAIL", runs.display());
    env.write_config(&format!(
        "default_agent = \"fixer\"\n[agents.fixer]\ncommand = [\"sh\", \"-c\", {fixer:?}]\n[merge]\ngate = [\"sh\", \"-c\", {gate:?}]\nretries = 1\n"
    ));
    let out = env.ok(&["new", "--name", "f", "--detach", "--size", "80x24"]);
    assert_eq!(out.trim(), "f");
    env.wait_tail("f", |t| t.contains("ready"));
    let wf = env.worktree_of("f");
    write(&wf.join("f.txt"), "f\n");
    write(&wf.join("FAIL"), "x\n");
    env.ok(&["land", "f", "--no-wait"]);
    wait_for("f landed after fixing", || {
        let e = entry(&env, "f");
        assert_ne!(e, serde_json::Value::Null, "f left the queue");
        (e["state"] == "landed").then_some(e)
    });
    assert_eq!(read(&env.repo.join("f.txt")), "f\n");
    assert!(!env.repo.join("FAIL").exists());
    let e = entry(&env, "f");
    assert_eq!(e["retries"], 1);
    assert!(e["told"].as_str().unwrap().contains("try to land your work again"), "{e}");
    assert_eq!(read(&runs).lines().count(), 2, "gated once failing, once passing");
    let log = git(&env.repo, &["log", "--format=%s", "main"]);
    assert!(log.contains("fix the gate"), "{log}");
}

#[test]
fn resolve_writes_markers_in_that_agents_worktree_only_and_the_queue_lands_it_once_committed() {
    let env = Env::new();
    // On being handed its conflict, this agent resolves it and commits.
    let resolver = "echo ready; while read -r l; do echo \"got: $l\"; case \"$l\" in *'conflict markers'*) sleep 0.3; printf 'hello from both\\n' > README.md; git add -A; git commit -qm 'resolve the greeting';; esac; done";
    env.write_config(&format!(
        "default_agent = \"cat\"\n{CAT}[agents.resolver]\ncommand = [\"sh\", \"-c\", {resolver:?}]\n[merge]\nretries = 0\n"
    ));
    let wa = cat_agent(&env, "a");
    let out = env.ok(&["new", "--agent", "resolver", "--name", "b", "--detach", "--size", "80x24"]);
    assert_eq!(out.trim(), "b");
    env.wait_tail("b", |t| t.contains("ready"));
    let wb = env.worktree_of("b");
    let wc = cat_agent(&env, "c");
    write(&wa.join("README.md"), "hello from a\n");
    write(&wb.join("README.md"), "hello from b\n");
    write(&wc.join("c.txt"), "c\n");
    env.fails(&["land", "a", "b"], 3);
    assert_eq!(entry(&env, "b")["failure"], "conflict");
    let told = entry(&env, "b")["told"].as_str().unwrap().to_string();
    assert!(told.contains("README.md (changed on main by: agent a's work)"), "{told}");
    let main = rev(&env.repo, "main");

    let err = env.run(&["resolve", "b"]);
    let note = String::from_utf8_lossy(&err.stderr).into_owned();
    assert!(err.status.success(), "{note}");
    assert!(note.contains("conflict markers in README.md of agent 'b'"), "{note}");
    // Markers only in b's worktree; the base, the main worktree and other agents are untouched.
    env.wait_tail("b", |t| t.contains("conflict markers") && t.contains("README.md"));
    assert_eq!(rev(&env.repo, "main"), main);
    assert_eq!(read(&env.repo.join("README.md")), "hello from a\n");
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    assert_eq!(read(&wc.join("c.txt")), "c\n");
    assert!(!read(&wc.join("README.md")).contains("<<<<<<<"));

    // The agent resolved and committed: the queue takes it again, and it lands.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while entry(&env, "b")["state"] != "landed" {
        assert!(
            std::time::Instant::now() < deadline,
            "b never landed after resolving: {}\n{}\n{}",
            entry(&env, "b"),
            env.tail("b"),
            git(&wb, &["log", "--oneline", "-5"])
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(read(&env.repo.join("README.md")), "hello from both\n");
    // c was idle: auto-synced with what landed, so it has nothing to resolve.
    wait_for("c synced", || (read(&wc.join("README.md")) == "hello from both\n").then_some(()));
    let err = wait_for("c free again", || {
        let out = env.run(&["resolve", "c"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!err.contains("busy")).then_some(err)
    });
    assert!(err.contains("nothing to resolve"), "{err}");
    git(&env.repo, &["fsck", "--no-progress"]);
}

#[test]
fn resolve_with_agent_starts_a_resolver_in_that_worktree_and_the_original_lands() {
    let env = Env::new();
    let resolver = "echo ready; while read -r l; do echo \"got: $l\"; case \"$l\" in *'conflict markers'*) printf 'hello from both\\n' > README.md; git add -A; git commit -qm 'resolver resolves';; esac; done";
    env.write_config(&format!(
        "default_agent = \"cat\"\n{CAT}[agents.resolver]\ncommand = [\"sh\", \"-c\", {resolver:?}]\nprompt = \"type\"\n[merge]\nretries = 0\n"
    ));
    let wa = cat_agent(&env, "a");
    let wb = cat_agent(&env, "b");
    write(&wa.join("README.md"), "hello from a\n");
    write(&wb.join("README.md"), "hello from b\n");
    env.fails(&["land", "a", "b"], 3);
    let out = env.run(&["resolve", "b", "--agent", "resolver"]);
    let note = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{note}");
    assert!(note.contains("b-resolve resolves them"), "{note}");
    assert_eq!(env.worktree_of("b-resolve"), wb, "the resolver works in b's worktree");
    wait_for("b landed after its resolver committed", || {
        (entry(&env, "b")["state"] == "landed").then_some(())
    });
    assert_eq!(read(&env.repo.join("README.md")), "hello from both\n");
    let log = git(&env.repo, &["log", "--format=%s", "main"]);
    assert!(log.contains("resolver resolves"), "{log}");
    // b goes as after a merge, and its resolver with it (their worktree is gone).
    wait_for("b and its resolver gone", || {
        (gone(&env, "b") && gone(&env, "b-resolve")).then_some(())
    });
    assert!(!wb.exists());
}

#[test]
fn the_users_own_changes_in_the_way_block_the_landing_and_nothing_changes() {
    let env = Env::new();
    config(&env, "");
    let wa = cat_agent(&env, "a");
    write(&wa.join("README.md"), "from the agent\n");
    write(&env.repo.join("README.md"), "the user's own edit\n");
    let main = rev(&env.repo, "main");
    env.fails(&["land", "a"], 1);
    let a = entry(&env, "a");
    assert_eq!(a["state"], "blocked");
    assert!(a["reason"].as_str().unwrap().contains("commit or stash these: README.md"), "{a}");
    assert!(a["told"].is_null(), "a refusal is the user's to handle: {a}");
    assert_eq!(rev(&env.repo, "main"), main);
    assert_eq!(read(&env.repo.join("README.md")), "the user's own edit\n");
    assert_eq!(read(&wa.join("README.md")), "from the agent\n");
    // Once the user's edit is out of the way, landing it again works.
    git(&env.repo, &["checkout", "README.md"]);
    env.ok(&["land", "a"]);
    assert_eq!(read(&env.repo.join("README.md")), "from the agent\n");
}

/// SPEC §5b: the gate's output is viewable in the dashboard as it runs, `tail`-like: `L` queues the
/// selected agent, `o` shows its gate's output and follows it until the gate ends.
#[test]
fn the_dashboard_lands_an_agent_and_follows_its_gates_output_live() {
    let env = Env::new();
    let release = env.root().join("release");
    // The gate prints, then waits (at most a minute) for the test to let it finish.
    let gate = format!(
        "echo 'gate: step one of two'; i=0; while ! test -e {0} && test $i -lt 600; do sleep 0.1; i=$((i+1)); done; test -e {0} && echo 'gate: all passed'",
        release.display()
    );
    env.write_config(&format!(
        "default_agent = \"cat\"\n{CAT}[merge]\ngate = [\"sh\", \"-c\", {gate:?}]\nauto_sync = \"off\"\n"
    ));
    let wa = cat_agent(&env, "a");
    write(&wa.join("a.txt"), "a's work\n");
    commit_all(&wa, "a's work");

    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("▸1 a ");
    // Nothing gated yet: o says so.
    ui.type_str("o");
    ui.wait_screen("a's landing gate has not run");
    ui.type_str("L");
    ui.wait_screen("landing: gating");
    ui.type_str("o");
    ui.wait_screen("Landing gate of a (gating)");
    ui.wait_screen("gate: step one of two");
    assert!(!ui.text().contains("gate: all passed"));
    // New output shows up in the open view, and the view says when the agent has landed.
    write(&release, "go\n");
    ui.wait_screen("gate: all passed");
    ui.wait_screen("Landing gate of a (landed)");
    assert_eq!(read(&env.repo.join("a.txt")), "a's work\n");
    ui.type_str("\x1b");
    ui.wait_gone("Landing gate of a");
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}
