//! Agents end to end: the real binary, a real server on a temp socket, real shells in real PTYs,
//! real git repositories checked with the git CLI.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

#[test]
fn new_shell_agent_gets_worktree_branch_port_and_shows_its_output() {
    let env = Env::new();
    env.write_config("[ports]\nfirst = 4300\nlast = 4399\n");
    let out = env.ok(&["new", "hello", "--agent", "shell", "--detach"]);
    let name = out.trim();
    assert_eq!(name, "hello", "the name comes from the prompt");

    // The git CLI sees a normal linked worktree on corral/<name>.
    let list = git(&env.repo, &["worktree", "list", "--porcelain"]);
    let wt = env.worktree_of(name);
    assert!(list.contains(&format!("worktree {}", wt.display())), "{list}");
    assert!(list.contains(&format!("branch refs/heads/corral/{name}")), "{list}");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");

    // The prompt was typed into the shell.
    env.wait_tail(name, |t| t.contains("hello"));

    env.ok(&["send", name, "echo $PORT > port.txt; echo marker-$((40+2))"]);
    env.wait_tail(name, |t| t.contains("marker-42"));
    let port_txt = std::fs::read_to_string(wt.join("port.txt")).unwrap();
    let port: u16 = port_txt
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("port.txt: {port_txt:?}\n{}", env.tail(name)));
    assert!((4300..=4399).contains(&port), "port {port} outside the configured range");
    assert_eq!(env.agent_json(name)["port"], port);

    let info = env.agent_json(name);
    assert_eq!(info["branch"], format!("corral/{name}"));
    assert_eq!(info["base"], "main");
    assert_eq!(info["profile"], "shell");
    assert!(info["pid"].as_u64().is_some());
}

#[test]
fn agent_environment_names_the_agent_and_never_tmux() {
    let env = Env::new();
    let name = env.new_shell("envy");
    env.ok(&[
        "send",
        &name,
        "echo \"A=$CORRAL_AGENT B=$CORRAL_BRANCH T=$TERM C=$COLORTERM X=${TMUX:-none}\"",
    ]);
    env.wait_tail(&name, |t| {
        t.contains("A=envy B=corral/envy T=xterm-256color C=truecolor X=none")
    });
}

#[test]
fn tail_keeps_scrollback_counts_lines_and_joins_wrapped_ones() {
    let env = Env::new();
    let name = env.new_shell("lines"); // 80x24
    env.ok(&["send", &name, "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo row-$i; done; printf 'x%.0s' $(seq 100); echo"]);
    let all = env.wait_tail(&name, |t| t.contains(&format!("{}\n", "x".repeat(100))));
    assert!(all.contains("\nrow-1\n") && all.contains("\nrow-40\n"), "scrollback kept: {all}");
    let last = env.ok(&["tail", &name, "-n", "3", "--plain"]);
    let lines: Vec<&str> = last.lines().collect();
    assert_eq!(lines.len(), 2, "3 rows, two of them one wrapped line: {last:?}");
    assert_eq!(lines[0], "x".repeat(100));
    assert_eq!(lines[1].trim(), "$");
}

#[test]
fn tail_follow_prints_new_output_through_a_pipe() {
    let env = Env::new();
    let name = env.new_shell("follow");
    env.ok(&["send", &name, "echo before-follow"]);
    env.wait_tail(&name, |t| t.contains("before-follow\n"));

    // stdout is a pipe, as with `corral tail -f x | cat` over ssh.
    let mut child = env.cmd(&["tail", "-f", &name]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let expect = |want: &str, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + DEADLINE;
        while !seen.iter().any(|l: &String| l == want) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("tail -f never printed {want:?}; printed {seen:?}"),
            }
        }
    };
    expect("before-follow", &mut seen);
    for i in 0..3 {
        env.ok(&["send", &name, &format!("echo streamed-{i}")]);
        expect(&format!("streamed-{i}"), &mut seen);
    }
    // No escape sequences when stdout is not a terminal.
    assert!(seen.iter().all(|l| !l.contains('\x1b')), "{seen:?}");
    // Each line once.
    assert_eq!(seen.iter().filter(|l| *l == "streamed-1").count(), 1, "{seen:?}");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn agents_never_share_port_worktree_or_branch() {
    let env = Env::new();
    let out = env.ok(&["new", "same task", "--agent", "shell", "-n", "3", "--detach"]);
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(names, vec!["same-task-1", "same-task-2", "same-task-3"]);
    let second = env.ok(&["new", "same task", "--agent", "shell", "--detach"]);
    assert_eq!(second.trim(), "same-task", "a fresh name for a new agent");
    let agents = env.ls_json()["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 4);
    let mut ports: Vec<u64> = agents.iter().map(|a| a["port"].as_u64().unwrap()).collect();
    let mut wts: Vec<String> =
        agents.iter().map(|a| a["worktree"].as_str().unwrap().into()).collect();
    let mut branches: Vec<String> =
        agents.iter().map(|a| a["branch"].as_str().unwrap().into()).collect();
    for v in [&mut wts, &mut branches] {
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 4, "{v:?}");
    }
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    // An explicit name that exists is refused, and nothing new appears.
    let err = env.fails(&["new", "--agent", "shell", "--name", "same-task", "--detach"], 1);
    assert!(err.contains("same-task"), "{err}");
    assert_eq!(env.ls_json()["agents"].as_array().unwrap().len(), 4);
}

#[test]
fn bad_names_are_refused_and_leave_nothing_behind() {
    let env = Env::new();
    let long = "a".repeat(80);
    for bad in ["../x", "a/b", "", long.as_str(), "ünïcode", "UPPER", "x-"] {
        let err = env.fails(&["new", "--agent", "shell", "--name", bad, "--detach"], 1);
        assert!(err.contains("agent name"), "{bad:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(git(&env.repo, &["branch", "--list"]).trim(), "* main");
    assert!(
        !env.repo.join(".git/worktrees").exists()
            || std::fs::read_dir(env.repo.join(".git/worktrees")).unwrap().count() == 0
    );
    assert_eq!(git(&env.repo, &["worktree", "list"]).lines().count(), 1);
}

#[test]
fn failed_creation_rolls_back_branch_and_worktree_debris() {
    let env = Env::new();
    // Make the worktree path unusable: a file where the agent's directory would go.
    let wt_parent = env.root().join("wts");
    std::fs::create_dir_all(&wt_parent).unwrap();
    std::fs::write(wt_parent.join("blocked"), "in the way").unwrap();
    env.write_config(&format!("[worktree]\ndir = \"{}\"\n", wt_parent.display()));
    let err = env.fails(&["new", "--agent", "shell", "--name", "blocked", "--detach"], 1);
    assert!(err.contains("blocked"), "{err}");
    assert_eq!(git(&env.repo, &["branch", "--list"]).trim(), "* main");
    assert_eq!(git(&env.repo, &["worktree", "list"]).lines().count(), 1);
    assert_eq!(std::fs::read_to_string(wt_parent.join("blocked")).unwrap(), "in the way");
    // And the same name works once the path is free.
    std::fs::remove_file(wt_parent.join("blocked")).unwrap();
    env.new_shell("blocked");
}

#[test]
fn missing_agent_binary_is_a_clear_error_and_creates_nothing() {
    let env = Env::new();
    env.write_config("[agents.ghost]\ncommand = [\"no-such-agent-cli\"]\n");
    let err = env.fails(&["new", "hi", "--agent", "ghost", "--detach"], 1);
    assert!(err.contains("no-such-agent-cli") && err.contains("not found"), "{err}");
    let err = env.fails(&["new", "hi", "--agent", "nonexistent", "--detach"], 1);
    assert!(err.contains("no agent profile 'nonexistent'"), "{err}");
    assert_eq!(git(&env.repo, &["branch", "--list"]).trim(), "* main");
}

#[test]
fn not_a_repo_bare_and_unborn_are_clear_errors() {
    let env = Env::new();
    let plain = env.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let err = env
        .fails(&["--repo", plain.to_str().unwrap(), "new", "x", "--agent", "shell", "--detach"], 1);
    assert!(err.contains("not a git repository") && err.contains("plain"), "{err}");

    let bare = env.root().join("bare.git");
    git(&env.root(), &["init", "-q", "--bare", bare.to_str().unwrap()]);
    let err = env.fails(&["--repo", bare.to_str().unwrap(), "ls"], 1);
    assert!(err.contains("bare"), "{err}");

    let unborn = env.root().join("unborn");
    std::fs::create_dir_all(&unborn).unwrap();
    git(&unborn, &["init", "-q"]);
    let err = env.fails(
        &["--repo", unborn.to_str().unwrap(), "new", "x", "--agent", "shell", "--detach"],
        1,
    );
    assert!(err.contains("no commits"), "{err}");
}

#[test]
fn bad_config_is_one_line_naming_file_line_and_key() {
    let env = Env::new();
    let cases = [
        ("[ports]\nfirst = 1\nlast = \"lots\"\n", "line 3", "ports.last"),
        ("[worktree]\ncopy = []\nsetpu = []\n", "line 3", "worktree.setpu"),
        ("[terminal\n", "line 1", ""),
    ];
    for (toml, line, key) in cases {
        env.write_config(toml);
        let err = env.fails(&["new", "x", "--agent", "shell", "--detach"], 1);
        assert!(
            err.contains("config.toml") && err.contains(line) && err.contains(key),
            "{toml}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(git(&env.repo, &["branch", "--list"]).trim(), "* main");
}

/// Issue 15: `ls` printed the agents as if nothing were wrong with a broken config. It warns the
/// way `new` refuses (file, line, key) on stderr, and still lists.
#[test]
fn ls_reports_a_broken_config_and_still_lists() {
    let env = Env::new();
    let name = env.new_shell("listed");
    for (file, toml, line, key) in [
        (
            env.home.join(".config/corral/config.toml"),
            "[worktrees]\ndir = \"x\"\n",
            "line 1",
            "worktrees",
        ),
        (env.repo.join(".corral.toml"), "[worktree]\ndirr = \"x\"\n", "line 2", "worktree.dirr"),
    ] {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, toml).unwrap();
        let new_err = env.fails(&["new", "x", "--agent", "shell", "--detach"], 1);
        for args in [&["ls"][..], &["ls", "--json"]] {
            let out = env.run(args);
            assert!(out.status.success(), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(
                err.contains(&file.display().to_string())
                    && err.contains(line)
                    && err.contains(key),
                "{args:?}: {err}"
            );
            // The same report as `new` gives.
            assert!(new_err.contains(err.trim().trim_start_matches("corral: warning: ")), "{err}");
            assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
        }
        // doctor names the same mistake, the repository's file included.
        let doctor = String::from_utf8_lossy(&env.run(&["doctor"]).stdout).into_owned();
        let said = doctor.lines().find_map(|l| l.strip_prefix("FAIL config: "));
        assert!(said.is_some_and(|e| new_err.contains(e)), "{doctor}");
        std::fs::remove_file(&file).unwrap();
    }
    let out = env.run(&["ls"]);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn repo_config_commands_need_approval_once() {
    let env = Env::new();
    std::fs::write(env.repo.join(".env"), "SECRET=1\n").unwrap();
    std::fs::write(
        env.repo.join(".corral.toml"),
        "[worktree]\nsetup = [\"echo setup-ran > setup.txt\"]\n",
    )
    .unwrap();
    let err = env.fails(&["new", "--agent", "shell", "--name", "s", "--detach"], 1);
    assert!(
        err.contains(".corral.toml")
            && err.contains("worktree.setup")
            && err.contains("corral trust"),
        "{err}"
    );
    env.ok(&["trust"]);
    let name = env.new_shell("s");
    let wt = env.worktree_of(&name);
    wait_for("setup to run", || wt.join("setup.txt").exists().then_some(()));
    // Untracked config files are copied into the worktree.
    assert_eq!(std::fs::read_to_string(wt.join(".env")).unwrap(), "SECRET=1\n");
    // A changed file needs approval again.
    std::fs::write(env.repo.join(".corral.toml"), "[worktree]\nsetup = [\"rm -rf ~\"]\n").unwrap();
    env.fails(&["new", "--agent", "shell", "--name", "t", "--detach"], 1);
}

#[test]
fn failing_setup_leaves_the_agent_exited_with_its_output() {
    let env = Env::new();
    env.write_config("[worktree]\nsetup = [\"echo preparing\", \"exit 7\"]\n");
    let out = env.ok(&["new", "--agent", "shell", "--name", "setup-fails", "--detach"]);
    assert_eq!(out.trim(), "setup-fails");
    wait_for("agent to exit", || {
        (env.agent_json("setup-fails")["status"] == "exited").then_some(())
    });
    assert_eq!(env.agent_json("setup-fails")["exit_code"], 7);
    let t = env.tail("setup-fails");
    assert!(t.contains("preparing"), "{t}");
    assert!(env.worktree_of("setup-fails").is_dir(), "the worktree stays");
}

#[test]
fn stop_then_restart_resumes_with_the_profile_resume_arguments() {
    let env = Env::new();
    // A profile whose command prints its arguments: the resume arguments must differ.
    let script = env.root().join("fake-agent.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"args: $*\"\nexec sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.write_config(&format!(
        "[agents.fake]\ncommand = [\"{s}\", \"--session-id\", \"{{session}}\"]\nresume = [\"{s}\", \"--resume\", \"{{session}}\"]\nprompt = \"arg\"\n",
        s = script.display()
    ));
    let name =
        env.ok(&["new", "do it", "--agent", "fake", "--name", "rs", "--detach"]).trim().to_string();
    let first = env.wait_tail(&name, |t| t.contains("args: --session-id"));
    let session = first
        .lines()
        .find_map(|l| l.strip_prefix("args: --session-id "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(first.contains("do it"), "prompt passed as an argument: {first}");
    env.ok(&["stop", &name]);
    assert_eq!(env.agent_json(&name)["status"], "exited");
    env.ok(&["restart", &name]);
    env.wait_tail(&name, |t| t.contains(&format!("args: --resume {session}")));
    assert_ne!(env.agent_json(&name)["status"], "exited");
}

#[test]
fn rm_refuses_unmerged_or_dirty_work_and_force_keeps_it_on_the_branch() {
    let env = Env::new();
    let name = env.new_shell("rmme");
    let wt = env.worktree_of(&name);
    std::fs::write(wt.join("work.txt"), "precious\n").unwrap();
    let err = env.fails(&["rm", &name], 1);
    assert!(err.contains("uncommitted") && err.contains("work.txt"), "{err}");
    assert_ne!(env.agent_json(&name)["status"], "exited", "a refused rm leaves the agent running");

    git(&wt, &["add", "work.txt"]);
    git(&wt, &["commit", "-q", "-m", "agent work"]);
    let err = env.fails(&["rm", &name], 1);
    assert!(err.contains("not on main"), "{err}");

    std::fs::write(wt.join("more.txt"), "also precious\n").unwrap();
    env.ok(&["rm", "--force", &name]);
    assert!(!wt.exists());
    assert_eq!(git(&env.repo, &["worktree", "list"]).lines().count(), 1);
    // The branch keeps both the commit and the uncommitted file.
    let files = git(&env.repo, &["ls-tree", "-r", "--name-only", "corral/rmme"]);
    assert!(files.contains("work.txt") && files.contains("more.txt"), "{files}");
    assert!(env.ls_json()["agents"].as_array().unwrap().is_empty());
}

#[test]
fn rm_of_a_clean_agent_removes_worktree_and_branch() {
    let env = Env::new();
    let name = env.new_shell("clean");
    let wt = env.worktree_of(&name);
    env.ok(&["rm", &name]);
    assert!(!wt.exists());
    assert_eq!(git(&env.repo, &["branch", "--list"]).trim(), "* main");
    git(&env.repo, &["worktree", "prune", "--dry-run"]);
    assert_eq!(git(&env.repo, &["worktree", "list"]).lines().count(), 1);
}

#[test]
fn a_killed_server_leaves_worktrees_and_a_new_one_recovers_the_agents() {
    let env = Env::new();
    let a = env.new_shell("survivor");
    let wt = env.worktree_of(&a);
    let pid = env.server_pid().expect("server pid in its lock file");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_for("the old server to be gone", || {
        let f = std::fs::File::open(env.runtime.join("server.lock")).ok()?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()
    });
    assert!(wt.is_dir());
    assert!(git(&env.repo, &["branch", "--list"]).contains("corral/survivor"));
    // Any command brings up a new server that knows the agent.
    let info = env.agent_json(&a);
    assert_eq!(info["status"], "exited");
    assert_ne!(env.server_pid(), Some(pid));
    env.ok(&["restart", &a]);
    env.ok(&["send", &a, "echo back-again"]);
    env.wait_tail(&a, |t| t.contains("back-again\n"));
}

#[test]
fn kill_server_stops_agents_and_the_next_command_starts_a_server() {
    let env = Env::new();
    let a = env.new_shell("k");
    env.ok(&["kill-server"]);
    assert!(!env.runtime.join("server.sock").exists());
    assert_eq!(env.agent_json(&a)["status"], "exited");
    assert_eq!(env.fails(&["kill-server"], 0).len(), 0);
}

#[test]
fn completions_and_doctor_run() {
    let env = Env::new();
    let out = env.ok(&["completions", "bash"]);
    assert!(out.contains("corral"), "{out}");
    let out = env.ok(&["doctor"]);
    assert!(out.contains("runtime directory") && out.contains("agent shell"), "{out}");
}
