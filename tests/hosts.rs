//! Agents on another host (SPEC §12), through a real sshd on 127.0.0.1: the "remote" is this
//! machine under another HOME and runtime directory, with its own corral server, reached only
//! through `ssh … corral proxy`.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::sshd::Sshd;
use common::*;
use corral::term::Size;
use tty::Tty;

/// The local user's env with `[hosts.box]` pointing at `remote` through `sshd`.
fn pair(sshd: &Sshd) -> (Env, Env) {
    let local = Env::new();
    let remote = Env::new();
    local.write_config(&sshd.host_config("box", &remote));
    (local, remote)
}

fn on_box<'a>(remote: &'a Env, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--host", "box", "--repo", remote.repo.to_str().unwrap()];
    v.extend_from_slice(args);
    v
}

#[test]
fn an_agent_on_another_host_is_started_listed_read_typed_into_attached_and_merged() {
    let Some(sshd) = Sshd::start() else { return };
    let (local, remote) = pair(&sshd);
    local.new_shell("near");

    // Started through ssh, it runs under the remote's server, in the remote's repository.
    let out = local.ok(&on_box(&remote, &["new", "--agent", "shell", "--name", "far", "--detach"]));
    assert_eq!(out.trim(), "far");
    let far = remote.agent_json("far");
    assert_eq!(far["repo"], remote.repo.to_str().unwrap());
    assert!(far["worktree"].as_str().unwrap().starts_with(remote.root().to_str().unwrap()));
    assert!(local.ls_json()["agents"].as_array().unwrap().iter().all(|a| a["name"] != "far"));

    // ls --all: this machine's agents and the host's, each with its host.
    let all: serde_json::Value =
        serde_json::from_str(&local.ok(&["ls", "--all", "--json"])).unwrap();
    let agents = all["agents"].as_array().unwrap();
    let host_of = |n: &str| agents.iter().find(|a| a["name"] == n).map(|a| a["host"].clone());
    assert_eq!(host_of("near"), Some(serde_json::Value::Null));
    assert_eq!(host_of("far"), Some(serde_json::json!("box")));
    assert_eq!(all["hosts"][0]["name"], "box");
    assert_eq!(all["hosts"][0]["state"], "connected");
    let table = local.ok(&["ls", "--all"]);
    assert!(table.lines().any(|l| l.starts_with("box") && l.contains("far")), "{table}");
    let hosts = local.ok(&["hosts"]);
    assert!(hosts.starts_with("box  connected  corral ") && hosts.contains("1 agent"), "{hosts}");

    // tail and send go to the remote agent.
    wait_for("the remote shell's prompt", || {
        let t = local.ok(&on_box(&remote, &["tail", "far", "--plain"]));
        t.contains('$').then_some(())
    });
    let mut follow = local
        .cmd(&on_box(&remote, &["tail", "-f", "far", "--plain"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    local.ok(&on_box(&remote, &["send", "far", "echo from-$((6*7))-afar"]));
    wait_for("the command's output on the remote agent", || {
        remote.tail("far").contains("from-42-afar").then_some(())
    });
    // tail -f, through the same kind of link, prints the output line as it settles.
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let seen = lines.by_ref().map_while(Result::ok).find(|l| l.trim() == "from-42-afar");
    assert!(seen.is_some(), "tail -f over ssh printed the agent's output");
    let _ = follow.kill();
    let _ = follow.wait();

    // attach: the screen comes over ssh and typed keys go back.
    let mut ui = Tty::spawn(&local, &on_box(&remote, &["attach", "far"]), Size::new(100, 30));
    ui.wait_screen("from-42-afar");
    ui.type_str("echo typed-$((2+3))-over-ssh\r");
    ui.wait_screen("typed-5-over-ssh");
    ui.type_str("\x1d");
    assert!(ui.wait_exit().success());
    assert!(remote.tail("far").contains("typed-5-over-ssh"));

    // diff and merge act on the remote repository.
    let wt = remote.worktree_of("far");
    std::fs::write(wt.join("far.txt"), "made on the box\n").unwrap();
    let diff = local.ok(&on_box(&remote, &["diff", "far", "--stat"]));
    assert!(diff.contains("far.txt"), "{diff}");
    local.ok(&on_box(&remote, &["merge", "far", "--yes"]));
    assert_eq!(git(&remote.repo, &["show", "main:far.txt"]), "made on the box\n");
    assert!(remote.ls_json()["agents"].as_array().unwrap().is_empty());
    // Nothing of it touched this machine's repository.
    assert!(!local.repo.join("far.txt").exists());
    assert_eq!(git(&local.repo, &["log", "--oneline"]).lines().count(), 1);
}

#[test]
fn a_dropped_ssh_link_mid_attach_leaves_the_remote_agent_running() {
    let Some(sshd) = Sshd::start() else { return };
    let (local, remote) = pair(&sshd);
    // The host's own config applies to its agents: a profile only it defines.
    remote.write_config("[agents.hostsh]\ncommand = [\"sh\"]\n");
    let err = local.fails(&["new", "--agent", "hostsh", "--name", "x", "--detach"], 1);
    assert!(err.contains("hostsh"), "{err}");
    local.ok(&on_box(&remote, &["new", "--agent", "hostsh", "--name", "far", "--detach"]));
    assert_eq!(remote.agent_json("far")["profile"], "hostsh");
    let mut ui = Tty::spawn(&local, &on_box(&remote, &["attach", "far"]), Size::new(100, 30));
    ui.wait_screen("$");
    // Cut the link: the ssh client of this attach (the one logging in on this sshd's port).
    let port = sshd.port.to_string();
    let out = std::process::Command::new("pkill")
        .args(["-f", &format!("ssh -p {port} ")])
        .output()
        .unwrap();
    assert!(out.status.success(), "found the attach's ssh to kill");
    ui.wait_exit();
    let far = remote.agent_json("far");
    assert_ne!(far["status"], "exited", "{far}");
    assert!(far["pid"].is_u64(), "{far}");
    remote.ok(&["send", "far", "echo still-here"]);
    remote.wait_tail("far", |t| t.lines().any(|l| l.trim() == "still-here"));
    // And it can be reached again.
    let t = local.ok(&on_box(&remote, &["tail", "far", "--plain"]));
    assert!(t.contains("still-here"), "{t}");
}

#[test]
fn a_host_that_cannot_be_reached_or_is_not_configured_is_named_in_one_line() {
    let Some(sshd) = Sshd::start() else { return };
    let local = Env::new();
    let remote = Env::new();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    local.write_config(&sshd.host_config_on("box", &remote, dead));
    let err = local.fails(&on_box(&remote, &["ls"]), 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("host 'box'") && err.contains("Connection refused"), "{err}");
    // ls --all still lists this machine's agents, and says which host it could not reach.
    local.new_shell("near");
    let out = local.run(&["ls", "--all", "--json"]);
    assert!(out.status.success());
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all["agents"][0]["name"], "near");
    assert_eq!(all["hosts"][0]["state"], "unreachable");
    let hosts = local.run(&["hosts"]);
    assert_eq!(hosts.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&hosts.stdout).starts_with("box  unreachable  host 'box'"));
    // A name not in the config, and commands that only make sense here.
    let err = local.fails(&["--host", "nope", "ls"], 1);
    assert!(err.contains("no host 'nope'") && err.contains("hosts: box"), "{err}");
    let err = local.fails(&["--host", "box", "doctor"], 1);
    assert!(err.contains("`corral doctor` works on this machine only"), "{err}");
    let err = local.fails(&["--host", "box", "ls"], 1);
    assert!(err.contains("name the repository on it with --repo PATH"), "{err}");
}

#[test]
fn the_dashboard_shows_a_hosts_agents_types_into_them_and_reconnects_when_the_link_drops() {
    let Some(sshd) = Sshd::start() else { return };
    let (local, remote) = pair(&sshd);
    // The host's own gate, which refuses (and tells the agent nothing: its shell would run it).
    remote.write_config(
        "[merge]\ngate = [\"sh\", \"-c\", \"echo remote-gate-says-no; exit 3\"]\non_failure = \"stop\"\n",
    );
    local.new_shell("near");
    local.ok(&on_box(&remote, &["new", "--agent", "shell", "--name", "far", "--detach"]));
    remote.wait_tail("far", |t| t.contains('$'));

    let mut ui = Tty::spawn(&local, &[], Size::new(120, 40));
    // The host's agents under a heading naming the host.
    ui.wait_screen("box: repo");
    ui.wait_screen("far");
    // far is listed after this machine's near: select it, focus, type.
    ui.type_str("j");
    ui.type_str("\r");
    ui.type_str("echo typed-$((3+4))-in-dash\r");
    ui.wait_screen("typed-7-in-dash");
    assert!(remote.tail("far").contains("typed-7-in-dash"));
    ui.type_str("\x1d");
    // Its diff, made by the host's server (the worktree is there).
    std::fs::write(remote.worktree_of("far").join("far.txt"), "made on the box\n").unwrap();
    ui.type_str("d");
    ui.wait_screen("Diff of far against main");
    ui.wait_screen("+made on the box");
    ui.type_str("\x1b");
    ui.wait_gone("Diff of far");
    // Start one there from the new dialog: Where names the host's repository.
    ui.type_str("n");
    ui.wait_screen("Where");
    ui.type_str("\tshell\tmade\t\t\t\t");
    ui.type_str(&format!("box:{}\r", remote.repo.display()));
    wait_for("the agent made from the dashboard on the host", || {
        remote.ls_json()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "made")
            .then_some(())
    });
    // Selected once listed (after near and far).
    ui.wait_screen("▸3 made");
    assert!(local.ls_json()["agents"].as_array().unwrap().iter().all(|a| a["name"] != "made"));
    // Land far through the host's queue: its gate refuses, and o shows what it printed there.
    ui.type_str("k");
    ui.wait_screen("▸2 far");
    ui.type_str("L");
    ui.wait_screen("landing blocked");
    ui.type_str("o");
    ui.wait_screen("Landing gate of far (blocked)");
    ui.wait_screen("remote-gate-says-no");
    ui.type_str("\x1b");
    ui.wait_gone("Landing gate of far");

    // The link drops: the host is shown disconnected, with its agents as last seen; the
    // dashboard logs in again by itself and the agent takes keys again.
    let port = sshd.port.to_string();
    let killed = std::process::Command::new("pkill")
        .args(["-f", &format!("ssh -p {port} ")])
        .output()
        .unwrap();
    assert!(killed.status.success(), "found the dashboard's ssh to kill");
    ui.wait("the host shown disconnected", |t| {
        t.contains("box: repo · disconnected") && t.contains("last seen")
    });
    assert!(ui.text().contains("far"));
    ui.wait_gone("disconnected");
    ui.type_str("\r");
    ui.type_str("echo again-$((4+4))\r");
    ui.wait_screen("again-8");
    ui.type_str("\x1d");
    // The agent never stopped.
    assert_ne!(remote.agent_json("far")["status"], "exited");
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}

/// The host's corral is a FAKE here (a script answering Hello as a server of protocol 1 would):
/// the test cannot build another corral version to run there.
#[test]
fn a_host_running_another_protocol_version_is_named_with_both_versions() {
    let Some(sshd) = Sshd::start() else { return };
    let local = Env::new();
    let old = local.root().join("old-corral.py");
    std::fs::write(
        &old,
        "import sys, time\nbody = bytes([0, 1, 5]) + b'0.0.1' + bytes([7])\n\
         sys.stdout.buffer.write(len(body).to_bytes(4, 'big') + body)\nsys.stdout.flush()\ntime.sleep(2)\n",
    )
    .unwrap();
    let ssh = sshd.ssh_argv(sshd.port);
    local.write_config(&format!(
        "[hosts.box]\nssh = {ssh:?}\ncommand = [\"python3\", {:?}]\n",
        old.display().to_string()
    ));
    let err = local.fails(&["--host", "box", "--repo", "/srv/app", "ls"], 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let now = corral::proto::PROTOCOL_VERSION;
    assert!(
        err.contains("host 'box'")
            && err.contains("(0.0.1) speaks protocol 1")
            && err.contains(&format!("this corral speaks {now}")),
        "{err}"
    );
}
