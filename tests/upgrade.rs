//! `corral server --upgrade` (SPEC §13, issue 17): the running server hands its agents to another
//! binary and nothing the user sees stops: pids, screens, scrollback, an attached terminal and a
//! `tail -f` all go on. A binary that cannot take over leaves the old server serving; a server
//! killed in the middle leaves no agent without an owner.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use corral::term::Size;
use tty::Tty;

fn pids(env: &Env) -> BTreeMap<String, u64> {
    env.ls_json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| Some((a["name"].as_str()?.to_string(), a["pid"].as_u64()?)))
        .collect()
}

/// A copy of corral elsewhere on disk: "the new binary".
fn copy_of_corral(env: &Env) -> PathBuf {
    let to = env.root().join("corral-new");
    std::fs::copy(bin(), &to).unwrap();
    to
}

fn upgrade(env: &Env, exe: &PathBuf) -> std::process::Output {
    let mut c = Command::new(exe);
    c.args(["server", "--upgrade"]).current_dir(&env.repo);
    env.apply_env(&mut c);
    c.output().unwrap()
}

fn alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z")
}

#[test]
fn twenty_agents_keep_running_with_their_screens_across_an_upgrade() {
    let env = Env::new();
    for i in 0..20 {
        env.new_shell(&format!("a{i}"));
    }
    // A tail -f from before the counter starts, so it should print every numbered line.
    let out_path = env.root().join("follow.txt");
    let mut follow = env.cmd(&["tail", "-f", "a0", "--plain"]);
    let mut follow = follow
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.ok(&["send", "a0", "for i in $(seq 1 600); do echo n$i; sleep 0.01; done; echo counted"]);
    // Scrollback that must come through as it is (colours too: tail keeps them).
    env.ok(&[
        "send",
        "a2",
        "for i in $(seq 1 300); do printf '\\033[3%dmline %d\\033[0m\\n' $((i % 8)) $i; done",
    ]);
    env.wait_tail("a2", |t| t.contains("line 300"));
    let scrollback = env.ok(&["tail", "a2", "-n", "1000"]);

    let mut tty = Tty::spawn(&env, &["attach", "a1"], Size::new(80, 24));
    tty.wait_screen("$");
    tty.type_str("echo before-upgrade\r");
    tty.wait("the echo before", |s| s.matches("before-upgrade").count() >= 2);
    env.wait_tail("a0", |t| t.contains("n50\n"));

    let before = pids(&env);
    assert_eq!(before.len(), 20, "{before:?}");
    wait_for("a quiet agent to be idle", || {
        (env.agent_json("a5")["status"] == "idle").then_some(())
    });
    let quiet = env.agent_json("a5");
    let server = env.server_pid();
    let new = copy_of_corral(&env);
    let out = upgrade(&env, &new);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "server --upgrade failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("20 of 20 running agents kept running"), "{said}");
    assert_eq!(pids(&env), before, "every agent's process is the one from before");
    let still = env.agent_json("a5");
    assert_eq!(
        (&still["status"], &still["status_since"]),
        (&quiet["status"], &quiet["status_since"]),
        "a quiet agent's badge goes on as it was (the redrawn screen is not work): {still}"
    );
    assert_eq!(env.server_pid(), server, "the server replaced its program, not its process");
    let exe = std::fs::read_link(format!("/proc/{}/exe", server.unwrap())).unwrap();
    assert_eq!(exe, new, "the server runs the new binary");

    assert_eq!(env.ok(&["tail", "a2", "-n", "1000"]), scrollback, "scrollback is identical");

    // The attached terminal shows the same screen and typing reaches the agent again.
    tty.wait("the screen from before, redrawn", |s| s.contains("before-upgrade"));
    tty.type_str("echo after-upgrade\r");
    tty.wait("the echo after", |s| s.matches("after-upgrade").count() >= 2);
    assert!(tty.text().contains("before-upgrade"), "{}", tty.text());

    // tail -f went on: each numbered line exactly once, none missing.
    env.wait_tail("a0", |t| t.contains("counted"));
    let printed = wait_for("tail -f to print the last line", || {
        let text = std::fs::read_to_string(&out_path).unwrap();
        text.contains("n600\n").then_some(text)
    });
    let numbers: Vec<u32> =
        printed.lines().filter_map(|l| l.trim().strip_prefix('n')?.parse().ok()).collect();
    assert_eq!(numbers, (1..=600).collect::<Vec<u32>>(), "tail -f printed:\n{printed}");
    assert!(follow.try_wait().unwrap().is_none(), "tail -f is still following");
    let _ = follow.kill();
    let _ = follow.wait();
    drop(tty);
}

#[test]
fn a_binary_that_cannot_take_over_leaves_the_old_server_serving() {
    let env = Env::new();
    env.new_shell("keep");
    let before = pids(&env);
    let server = env.server_pid();
    let bad = env.root().join("corral-broken");
    std::fs::write(&bad, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = env.fails(&["server", "--upgrade", bad.to_str().unwrap()], 1);
    assert!(err.contains("corral-broken") && err.contains("cannot take over"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(env.server_pid(), server);
    assert_eq!(pids(&env), before);
    env.ok(&["send", "keep", "echo still-here"]);
    env.wait_tail("keep", |t| t.contains("still-here\n"));

    // A binary that speaks another state version is refused the same way.
    let other = env.root().join("corral-other");
    std::fs::write(&other, "#!/bin/sh\necho corral-handover 999\n").unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = env.fails(&["server", "--upgrade", other.to_str().unwrap()], 1);
    assert!(err.contains("version 999"), "{err}");
    assert_eq!(pids(&env), before);

    // One that says the right version but cannot read the state (it crashes on it): found
    // before the hand-over, while the agents' output waits; they read and print on after.
    let crashes = env.root().join("corral-crashes");
    std::fs::write(
        &crashes,
        format!(
            "#!/bin/sh\ncase \"$2\" in --handover-version) echo {};; *) echo boom-on-state >&2; exit 101;; esac\n",
            corral::server::handover::version_line()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&crashes, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let err = env.fails(&["server", "--upgrade", crashes.to_str().unwrap()], 1);
    assert!(err.contains("corral-crashes") && err.contains("boom-on-state"), "{err}");
    assert_eq!(pids(&env), before);
    env.ok(&["send", "keep", "echo reading-again"]);
    env.wait_tail("keep", |t| t.contains("reading-again\n"));

    // Asked by a client of another protocol (a newer corral whose protocol changed): still
    // heard, and answered with why not, not with a protocol complaint.
    let mut s = std::os::unix::net::UnixStream::connect(env.runtime.join("server.sock")).unwrap();
    let hello = corral::proto::ClientMsg::Hello {
        version: corral::proto::PROTOCOL_VERSION + 100,
        client: format!("{}{}", corral::proto::UPGRADE_HELLO, bad.display()),
    };
    std::io::Write::write_all(&mut s, &corral::proto::encode(&hello).unwrap()).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("cannot take over") && !text.contains("protocol"), "{text}");
    assert_eq!(pids(&env), before);
}

/// SIGKILL of the server while it hands over (just before the exec), and of the new one while it
/// adopts: the agents end with their PTYs (nobody owns them) and come back `exited` with their
/// worktrees at the next start.
#[test]
fn a_server_killed_during_the_hand_over_leaves_no_agent_without_an_owner() {
    for point in ["upgrade:exec", "upgrade:adopt"] {
        let env = Env::new();
        let mut c = env.cmd(&["new", "--agent", "shell", "--name", "kept", "--detach"]);
        c.env("CORRAL_TEST_CRASH_AT", point);
        assert!(c.output().unwrap().status.success());
        env.wait_tail("kept", |t| t.contains('$'));
        let pid = pids(&env)["kept"];
        let worktree = env.worktree_of("kept");
        let new = copy_of_corral(&env);
        let out = upgrade(&env, &new);
        assert!(!out.status.success(), "{point}: the killed server cannot say it upgraded");
        wait_for("the agent to be gone with its owner", || (!alive(pid)).then_some(()));
        let a = env.agent_json("kept");
        assert_eq!(a["status"], "exited", "{point}: {a}");
        assert!(worktree.is_dir(), "{point}: the worktree stays");
    }
}

/// A server whose binary was replaced on disk (a reinstall): `corral doctor` says so, the
/// dashboard offers the upgrade and, with `U`, does it; it loses its connections when the server
/// replaces its program and makes them again by itself: the agent's screen comes back and keys
/// reach it.
#[test]
fn the_dashboard_offers_the_upgrade_and_reconnects_by_itself() {
    let env = Env::new();
    let installed = env.root().join("bin/corral");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(bin(), &installed).unwrap();
    let mut start = Command::new(&installed);
    start.arg("server").current_dir(&env.repo);
    env.apply_env(&mut start);
    assert!(start.output().unwrap().status.success());
    env.new_shell("one");
    env.ok(&["send", "one", "echo shown-$((20+1))"]);
    env.wait_tail("one", |t| t.contains("shown-21\n"));
    assert!(!env.ok(&["doctor"]).contains("server binary"), "nothing newer yet");

    // Reinstalled: a new file where the server's binary was.
    let fresh = env.root().join("bin/corral.new");
    std::fs::copy(bin(), &fresh).unwrap();
    std::fs::rename(&fresh, &installed).unwrap();
    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("server binary") && doctor.contains("server --upgrade"), "{doctor}");

    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("▸1 one");
    ui.wait_screen("shown-21");
    ui.wait_screen("upgrade server");
    let pid = pids(&env)["one"];
    ui.type_str("U");
    ui.wait_screen("server upgraded");
    assert_eq!(pids(&env)["one"], pid);
    let exe = std::fs::read_link(format!("/proc/{}/exe", env.server_pid().unwrap())).unwrap();
    assert_eq!(exe, installed, "the server runs the reinstalled binary");
    ui.wait_gone("upgrade server");
    ui.type_str("\r");
    ui.wait_screen("FOCUS");
    ui.type_str("echo typed-after-$((40+2))\r");
    ui.wait_screen("typed-after-42");
    assert!(ui.text().contains("shown-21"), "{}", ui.text());
    ui.type_str("\x1d");
    ui.wait_gone("FOCUS");
    ui.type_str("q");
    ui.wait_exit();
}
