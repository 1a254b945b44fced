//! The review loop end to end (SPEC §2, §9): arguments per agent, fork, review comments and
//! best-of-N, with the real binary, a real server on a temp socket, real PTYs and real git
//! repositories checked with the git CLI.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

/// A profile `fake` whose command prints its arguments, then runs `cat` (which echoes whatever
/// is typed into it, so a message sent to it shows on its screen).
fn fake_profile(env: &Env) {
    let script = env.root().join("fake-agent.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"args: $*\"\nexec cat\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.write_config(&format!(
        "[agents.fake]\ncommand = [\"{s}\", \"--session-id\", \"{{session}}\"]\nresume = [\"{s}\", \"--resume\", \"{{session}}\"]\nfork = [\"{s}\", \"--fork-of\", \"{{parent_session}}\", \"--session-id\", \"{{session}}\"]\nprompt = \"arg\"\n",
        s = script.display()
    ));
}

#[test]
fn arguments_after_dashes_go_to_this_agent_and_survive_a_server_restart() {
    let env = Env::new();
    fake_profile(&env);
    let out = env.ok(&[
        "new", "do it", "--agent", "fake", "--name", "ar", "--detach", "--", "--model", "big one",
    ]);
    assert_eq!(out.trim(), "ar");
    let first = env.wait_tail("ar", |t| t.contains("args: --session-id"));
    let line = first.lines().find(|l| l.starts_with("args: ")).unwrap();
    assert!(line.ends_with("--model big one do it"), "extra arguments before the prompt: {line}");
    assert_eq!(env.agent_json("ar")["args"], serde_json::json!(["--model", "big one"]));
    // Another agent of the same profile does not get them.
    env.ok(&["new", "other", "--agent", "fake", "--name", "plain", "--detach"]);
    let plain = env.wait_tail("plain", |t| t.contains("args: "));
    assert!(!plain.contains("--model"), "{plain}");

    // Kept with the agent's record: a new server restarts it with them.
    env.ok(&["kill-server"]);
    env.ok(&["restart", "ar"]);
    let again = env.wait_tail("ar", |t| t.contains("args: --resume"));
    let line = again.lines().find(|l| l.starts_with("args: --resume")).unwrap();
    assert!(line.ends_with("--model big one"), "restart keeps them: {line}");
}
