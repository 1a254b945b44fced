//! Status badges end to end: the real binary and server, scripted fake agents in real PTYs, hooks
//! called from inside an agent, notifications, the prompt queue, config reloads.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::*;

fn script(env: &Env, name: &str, body: &str) -> String {
    let path = env.root().join(name);
    std::fs::write(&path, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn status_of(env: &Env, name: &str) -> (String, String) {
    let a = env.agent_json(name);
    (a["status"].as_str().unwrap().to_string(), a["status_reason"].as_str().unwrap().to_string())
}

/// Wait until the agent's status is `want`; returns its reason.
fn wait_status(env: &Env, name: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let last = status_of(env, name);
        if last.0 == want {
            return last.1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {name} to be {want}; it is {} ({}); screen:\n{}",
            last.0,
            last.1,
            env.tail(name)
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// A fake agent: reads a line, shows a spinner for a while (noting any line typed meanwhile as
/// EARLY), then a prompt. The line "hold" spins until the file `release` appears in its worktree.
const TURN_AGENT: &str = r#"#!/bin/bash
spin='|/-\'
printf '> '
while IFS= read -r line; do
  echo "got: $line"
  i=0
  while [ $i -lt 6 ] || { [ "$line" = hold ] && [ ! -e release ]; }; do
    i=$((i+1))
    printf '\r%s working %d' "${spin:$((i%4)):1}" "$i"
    if IFS= read -r -t 0.1 early; then printf '\nEARLY: %s\n' "$early"; fi
  done
  printf '\ndone: %s\n> ' "$line"
done
"#;

fn turn_agent_config(env: &Env) -> String {
    let s = script(env, "turns.sh", TURN_AGENT);
    format!(
        r#"
[status]
idle_after_ms = 300
[agents.turns]
command = ["{s}"]
prompt = "none"
[[agents.turns.rules]]
name = "spinner"
status = "working"
lines = 1
match = ['working \d+$']
[[agents.turns.rules]]
name = "prompt"
status = "idle"
lines = 1
match = ['^> ?$']
"#
    )
}

#[test]
fn queued_messages_are_delivered_one_per_turn_only_when_idle_in_order() {
    let env = Env::new();
    env.write_config(&turn_agent_config(&env));
    env.ok(&["new", "--agent", "turns", "--name", "q", "--detach", "--size", "80x40"]);
    assert_eq!(wait_status(&env, "q", "idle"), "rule: prompt");

    // A turn that lasts until the test releases it.
    env.ok(&["send", "q", "hold"]);
    wait_status(&env, "q", "working");
    for m in ["A", "B", "C", "D"] {
        env.ok(&["send", "q", m, "--queue"]);
    }
    assert_eq!(env.agent_json("q")["queued"], 4);
    // Cancel one: the queue is visible and editable while the agent works.
    assert_eq!(env.ok(&["queue", "q", "--remove", "4"]), "1. A\n2. B\n3. C\n");
    assert_eq!(env.agent_json("q")["queued"], 3);
    assert_eq!(wait_status(&env, "q", "working"), "rule: spinner", "nothing typed while working");

    std::fs::write(env.worktree_of("q").join("release"), "").unwrap();
    let screen = env.wait_tail("q", |t| t.contains("done: C"));
    assert!(!screen.contains("EARLY"), "a message arrived while the agent was working:\n{screen}");
    let events: Vec<&str> =
        screen.lines().filter(|l| l.starts_with("got: ") || l.starts_with("done: ")).collect();
    assert_eq!(
        events,
        ["got: hold", "done: hold", "got: A", "done: A", "got: B", "done: B", "got: C", "done: C"],
        "{screen}"
    );
    assert_eq!(env.agent_json("q")["queued"], 0);
    assert_eq!(env.ok(&["queue", "q"]), "no messages queued for q\n");
}

#[test]
fn the_queue_survives_a_server_restart_and_can_be_cleared() {
    let env = Env::new();
    env.write_config(&turn_agent_config(&env));
    env.ok(&["new", "--agent", "turns", "--name", "keep", "--detach"]);
    wait_status(&env, "keep", "idle");
    env.ok(&["stop", "keep"]);
    env.ok(&["send", "keep", "first\nwith a second line", "--queue"]);
    env.ok(&["send", "keep", "second", "--queue"]);
    env.ok(&["kill-server"]);
    assert_eq!(env.agent_json("keep")["queued"], 2);
    assert_eq!(env.ok(&["queue", "keep"]), "1. first …\n2. second\n");
    assert_eq!(env.ok(&["queue", "keep", "--clear"]), "no messages queued for keep\n");
    assert_eq!(env.agent_json("keep")["queued"], 0);
    let err = env.fails(&["queue", "keep", "--remove", "1"], 1);
    assert!(err.contains("no number 1"), "{err}");
}

#[test]
fn a_spinner_forever_is_working_then_stuck_and_a_file_change_ends_stuck() {
    let env = Env::new();
    let s = script(
        &env,
        "spinner.sh",
        "#!/bin/bash\ni=0\nwhile :; do i=$((i+1)); printf '\\r%s Thinking… (%ds)' \"${i: -1}\" \"$i\"; sleep 0.1; done\n",
    );
    env.write_config(&format!(
        "[status]\nidle_after_ms = 300\nstuck_after_secs = 2\n[agents.spin]\ncommand = [\"{s}\"]\nprompt = \"none\"\n"
    ));
    env.ok(&["new", "--agent", "spin", "--name", "sp", "--detach"]);
    let why = wait_status(&env, "sp", "working");
    assert!(why.starts_with("activity"), "{why}");
    let why = wait_status(&env, "sp", "stuck");
    assert!(why.contains("no screen or file change for"), "{why}");
    // The agent writes a file: progress, though its screen still only spins.
    std::fs::write(env.worktree_of("sp").join("progress.txt"), "x").unwrap();
    wait_status(&env, "sp", "working");
    env.ok(&["stop", "sp"]);
    assert!(wait_status(&env, "sp", "exited").starts_with("process: exited with code"));
}

#[test]
fn hooks_called_inside_an_agent_set_its_badge_and_notify_once_per_debounce() {
    let env = Env::new();
    let log = env.root().join("notices.log");
    env.write_config(&format!(
        r#"
[status]
idle_after_ms = 300
notify_command = ["sh", "-c", "echo \"$CORRAL_AGENT $CORRAL_STATUS $CORRAL_PREVIOUS_STATUS $(basename $CORRAL_WORKTREE)\" >> {}"]
"#,
        log.display()
    ));
    let name = env.new_shell("hk");
    wait_status(&env, &name, "idle");
    let corral = bin();
    // Claude Code passes JSON on stdin; the agent's environment names the agent.
    env.ok(&[
        "send",
        &name,
        &format!(
            "echo '{{\"notification_type\":\"permission_prompt\"}}' | {corral} hook Notification"
        ),
    ]);
    assert_eq!(wait_status(&env, &name, "needs-input"), "hook: Notification (permission_prompt)");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(&format!("the needs-input notification in {}", log.display()), || {
        // The previous status is `working`: typing the command drew on the screen.
        read_log().contains("hk needs-input working hk\n").then_some(())
    });
    // The hook holds (this profile has no screen rules) until another hook says otherwise.
    env.ok(&["send", &name, &format!("{corral} hook idle")]);
    assert_eq!(wait_status(&env, &name, "idle"), "hook: idle");
    env.ok(&["send", &name, &format!("{corral} hook needs-input")]);
    wait_status(&env, &name, "needs-input");
    env.ok(&["stop", &name]);
    wait_for("the exit notification", || read_log().contains("hk exited").then_some(()));
    let log = read_log();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("hk needs-input")).count(),
        1,
        "debounced: {log}"
    );
    assert!(
        !log.contains(" idle needs-input"),
        "idle after needs-input is not a turn's end: {log}"
    );
    // A hook for an unknown agent, or with no server, is silent and succeeds.
    let out = env
        .cmd(&["hook", "Stop"])
        .env("CORRAL_AGENT", "nobody")
        .env("CORRAL_REPO", &env.repo)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

fn frame(msg: &corral::proto::ClientMsg) -> Vec<u8> {
    corral::proto::encode(msg).unwrap()
}

fn read_msg(s: &mut UnixStream) -> corral::proto::ServerMsg {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    corral::proto::decode(&body).unwrap()
}

#[test]
fn an_attached_client_is_told_when_another_agent_needs_input() {
    use corral::proto::{ClientMsg, Request, ServerMsg, Target};
    let env = Env::new();
    env.write_config("[status]\nidle_after_ms = 300\n");
    let watched = env.new_shell("watched");
    let other = env.new_shell("other");
    let mut s = UnixStream::connect(env.runtime.join("server.sock")).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(&frame(&ClientMsg::Hello {
        version: corral::proto::PROTOCOL_VERSION,
        client: "test".into(),
    }))
    .unwrap();
    assert!(matches!(read_msg(&mut s), ServerMsg::Hello { .. }));
    let target = Target { repo: env.repo.clone(), name: watched };
    s.write_all(&frame(&ClientMsg::Request(Request::Attach {
        target,
        size: None,
        tty: None,
        colors: None,
        keys: None,
    })))
    .unwrap();
    env.ok(&["send", &other, &format!("{} hook needs-input", bin())]);
    loop {
        match read_msg(&mut s) {
            ServerMsg::Notice(n) if n.agent == "other" && n.status.as_str() == "needs-input" => {
                assert_eq!(n.message(), "corral: other needs input");
                break;
            }
            ServerMsg::Notice(_) => continue,
            ServerMsg::Reply(_) | ServerMsg::Screen(_) | ServerMsg::Bell => continue,
            m => panic!("unexpected {m:?}"),
        }
    }
}

#[test]
fn status_explains_every_rule_and_rules_reload_without_restarting_the_server() {
    let env = Env::new();
    let rules = |word: &str, status: &str| {
        format!(
            "[status]\nidle_after_ms = 300\n[agents.shell]\ncommand = [\"{{shell}}\"]\nprompt = \"type\"\n[[agents.shell.rules]]\nname = \"marker {word}\"\nstatus = \"{status}\"\nregion = \"bottom\"\nlines = 3\nmatch = ['^MARK-{word}$']\n"
        )
    };
    env.write_config(&rules("one", "idle"));
    let name = env.new_shell("ex");
    env.ok(&["send", &name, "echo MARK-one; echo MARK-two"]);
    env.wait_tail(&name, |t| t.contains("\nMARK-two\n"));
    wait_status(&env, &name, "idle");
    let out = env.ok(&["status", &name, "--explain"]);
    assert!(out.contains("ex: idle since"), "{out}");
    assert!(out.contains("marker one -> idle: bottom 3 rows"), "{out}");
    assert!(out.contains("| MARK-two"), "the region read is shown: {out}");

    // Edit the rule while the server runs: the badge follows the new rule.
    env.write_config(&rules("two", "needs-input"));
    assert_eq!(wait_status(&env, &name, "needs-input"), "rule: marker two");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", &name, "--json"])).unwrap();
    assert_eq!(json["status"], "needs-input");
    assert_eq!(json["rules"][0]["matched"], true);
    assert!(json["rules"][0]["region"].as_str().unwrap().contains("rows"), "{json}");
    let info = env.agent_json(&name);
    assert_eq!(info["status_reason"], "rule: marker two");
    assert!(info["status_since"].as_u64().unwrap() > 0);
    // A broken rule is refused by name and the old rules stay.
    env.write_config("[[agents.shell.rules]]\nname = \"bad\"\nstatus = \"idle\"\nmatch = ['(']\n");
    let err = env.fails(&["new", "--agent", "shell", "--name", "x", "--detach"], 1);
    assert!(err.contains("rule 'bad'"), "{err}");
    assert_eq!(status_of(&env, &name).0, "needs-input");
}

/// A fake agent that reads one key at a time and redraws its prompt line through a blank frame on
/// every key, as Gemini CLI redraws its input box on every key (and Aider's completion list
/// covers its prompt); Enter on "work" prints output for a second.
const TYPING_AGENT: &str = r#"#!/bin/bash
stty -echo -icanon
buf=''
printf '> '
while IFS= read -r -n1 -d '' c; do
  if [ "$c" = $'\n' ] || [ "$c" = $'\r' ]; then
    printf '\r\n'
    if [ "$buf" = work ]; then
      for i in $(seq 20); do echo "output $i"; sleep 0.05; done
    fi
    buf=''
    printf '> '
    continue
  fi
  buf="$buf$c"
  printf '\r\033[K'
  sleep 0.15
  printf '> %s' "$buf"
done
"#;

#[test]
fn keys_typed_into_a_prompt_redrawn_through_a_blank_frame_stay_idle_and_output_after_enter_is_work()
{
    let env = Env::new();
    let s = script(&env, "typing.sh", TYPING_AGENT);
    // The prompt rule settles as Gemini CLI's and Aider's do: once read as working, the prompt
    // stays working for a second, so a false working cannot slip between two looks.
    env.write_config(&format!(
        r#"
[agents.typing]
command = ["{s}"]
prompt = "none"
[[agents.typing.rules]]
name = "prompt"
status = "idle"
lines = 1
match = ['^>']
settle_ms = 1000
"#
    ));
    env.ok(&["new", "--agent", "typing", "--name", "ty", "--detach"]);
    assert_eq!(wait_status(&env, "ty", "idle"), "rule: prompt");
    let seen = std::sync::Mutex::new(Vec::<(String, String)>::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                seen.lock().unwrap().push(status_of(&env, "ty"));
            }
        });
        // Typed one key at a time, each drawn (through its blank frame) before the next.
        let mut typed = String::new();
        for c in "hellothere".chars() {
            env.ok(&["send", "ty", "--no-enter", &c.to_string()]);
            typed.push(c);
            let want = format!("> {typed}");
            env.wait_tail("ty", |t| t.lines().any(|l| l.trim_end() == want));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let seen = seen.into_inner().unwrap();
    assert!(seen.iter().all(|(s, _)| s == "idle"), "the echo of a key read as work: {seen:?}");
    assert!(seen.len() >= 3, "the badge was looked at while the keys were typed: {seen:?}");
    // Output that goes on after Enter is work all the same.
    env.ok(&["send", "ty", ""]);
    env.wait_tail("ty", |t| t.lines().any(|l| l.trim_end() == ">"));
    for c in "work".chars() {
        env.ok(&["send", "ty", "--no-enter", &c.to_string()]);
    }
    env.wait_tail("ty", |t| t.lines().any(|l| l.trim_end() == "> work"));
    env.ok(&["send", "ty", ""]);
    assert!(wait_status(&env, "ty", "working").starts_with("activity"));
    assert_eq!(wait_status(&env, "ty", "idle"), "rule: prompt");
}

/// A fake agent that reports its state to the terminal as Claude Code does once the terminal
/// answers its probe (`OSC 7501`): it asks, shows the answer, then reports each line it reads as a
/// state, and holds still (no output no rule reads) in between.
const REPORTING_AGENT: &str = r#"#!/bin/bash
stty raw -echo
printf '\033]7501;?\033\\'
answer=$(head -c 10 | od -An -c | tr -s ' ')
stty sane -echo
printf 'answer:%s\r\n' "$answer"
while IFS= read -r state; do
  printf '\033]7501;state=%s:app=fake\033\\' "$state"
done
"#;

#[test]
fn a_program_that_reports_its_own_state_gets_that_badge() {
    let env = Env::new();
    let s = script(&env, "reporter.sh", REPORTING_AGENT);
    // A quiet period far longer than the test: only the reports can make it idle or working.
    env.write_config(&format!(
        "[status]\nidle_after_ms = 600000\n[agents.rep]\ncommand = [\"{s}\"]\nprompt = \"none\"\n"
    ));
    env.ok(&["new", "--agent", "rep", "--name", "rp", "--detach"]);
    // The probe was answered: the program goes on.
    env.wait_tail("rp", |t| t.contains("answer: 033 ] 7 5 0 1 ; ? 033 \\"));
    for (report, status, reason) in [
        ("working", "working", "hook: program status: working"),
        ("blocked:kind=permission", "needs-input", "hook: program status: blocked permission"),
        ("working", "working", "hook: program status: working"),
        ("done", "idle", "hook: program status: done"),
    ] {
        env.ok(&["send", "rp", report]);
        assert_eq!(wait_status(&env, "rp", status), reason, "after {report}");
    }
}
