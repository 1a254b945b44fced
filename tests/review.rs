//! The review loop end to end (SPEC §2, §9): arguments per agent, fork, review comments and
//! best-of-N, with the real binary, a real server on a temp socket, real PTYs and real git
//! repositories checked with the git CLI.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use std::os::unix::fs::PermissionsExt;

use common::*;
use corral::term::Size;
use tty::Tty;

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

/// The session id an agent of the fake profile was started with (`--session-id ID`).
fn session_of(screen: &str) -> String {
    let line = screen.lines().find(|l| l.starts_with("args: ")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "--session-id").unwrap();
    words[at + 1].to_string()
}

/// Uncommitted, staged and untracked work in `wt`, and how `git status` reads it.
fn leave_work(wt: &std::path::Path) -> String {
    std::fs::write(wt.join("README.md"), "hello\nchanged, not committed\n").unwrap();
    std::fs::write(wt.join("staged.txt"), "staged\n").unwrap();
    git(wt, &["add", "staged.txt"]);
    std::fs::create_dir_all(wt.join("notes")).unwrap();
    std::fs::write(wt.join("notes/untracked.txt"), "untracked\n").unwrap();
    git(wt, &["status", "--porcelain", "-uall"])
}

#[test]
fn fork_starts_from_uncommitted_work_and_the_conversation_without_touching_the_original() {
    let env = Env::new();
    fake_profile(&env);
    env.ok(&[
        "new", "start", "--agent", "fake", "--name", "orig", "--detach", "--", "--model", "m",
    ]);
    let parent_session = session_of(&env.wait_tail("orig", |t| t.contains("args: ")));
    let orig_wt = env.worktree_of("orig");
    git(&orig_wt, &["commit", "-q", "--allow-empty", "-m", "a commit of the agent's"]);
    let status_before = leave_work(&orig_wt);
    let head_before = git(&orig_wt, &["rev-parse", "HEAD"]);
    let index_before = std::fs::read(env.repo.join(".git/worktrees/orig/index")).unwrap();

    let out = env.ok(&["fork", "orig", "--name", "fk", "go on", "--detach"]);
    assert_eq!(out.trim(), "fk");
    // The original: branch, index and files exactly as they were.
    assert_eq!(git(&orig_wt, &["status", "--porcelain", "-uall"]), status_before);
    assert_eq!(git(&orig_wt, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(git(&env.repo, &["rev-parse", "corral/orig"]), head_before);
    assert_eq!(std::fs::read(env.repo.join(".git/worktrees/orig/index")).unwrap(), index_before);

    // The fork: the same files, its branch on top of the original's commits.
    let fk_wt = env.worktree_of("fk");
    for (path, text) in [
        ("README.md", "hello\nchanged, not committed\n"),
        ("staged.txt", "staged\n"),
        ("notes/untracked.txt", "untracked\n"),
    ] {
        assert_eq!(std::fs::read_to_string(fk_wt.join(path)).unwrap(), text, "{path}");
    }
    assert_eq!(
        git(&fk_wt, &["status", "--porcelain", "-uall"]),
        "",
        "the work is its first commit"
    );
    assert_eq!(git(&fk_wt, &["rev-parse", "HEAD~1"]), head_before);
    let fk = env.agent_json("fk");
    assert_eq!(fk["base"], env.agent_json("orig")["base"]);
    assert_eq!(fk["args"], serde_json::json!(["--model", "m"]), "the original's arguments");
    // Its conversation continues the original's, under a session of its own.
    let screen = env.wait_tail("fk", |t| t.contains("args: "));
    let line = screen.lines().find(|l| l.starts_with("args: ")).unwrap();
    assert!(line.starts_with(&format!("args: --fork-of {parent_session} --session-id ")), "{line}");
    assert!(line.ends_with("--model m go on"), "{line}");
    let own = session_of(&screen);
    assert_ne!(own, parent_session);
    env.ok(&["restart", "fk"]);
    env.wait_tail("fk", |t| t.contains(&format!("args: --resume {own}")));

    // A profile without `fork` arguments: a fresh conversation, and the user is told.
    env.new_shell("sh");
    let out = env.run(&["fork", "sh", "--detach"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sh-fork", "named after the original");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("profile 'shell' cannot fork a conversation"), "{err}");
    // Unknown agents and bad names: one clear line, nothing made.
    let err = env.fails(&["fork", "nope", "--detach"], 1);
    assert!(err.contains("no agent 'nope'"), "{err}");
    let err = env.fails(&["fork", "orig", "--name", "Bad", "--detach"], 1);
    assert!(err.contains("agent name 'Bad'"), "{err}");
    assert!(!git(&env.repo, &["branch", "--list"]).contains("Bad"));
}

/// A profile `rev` for review tests: `busy` makes it print a tick every 100 ms (working) until
/// the file `stop` in the test's root exists; any other line comes back as `got: LINE`.
fn review_profile(env: &Env) -> std::path::PathBuf {
    let script = env.root().join("rev-agent.sh");
    let stop = env.root().join("stop");
    std::fs::write(
        &script,
        "#!/bin/sh\nwhile IFS= read -r l; do\n  case \"$l\" in\n    busy) while [ ! -e \"$1\" ]; do echo tick; sleep 0.1; done; rm -f \"$1\"; echo done-busy;;\n    *) printf 'got: %s\\n' \"$l\";;\n  esac\ndone\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.write_config(&format!(
        "[agents.rev]\ncommand = [\"{}\", \"{}\"]\nprompt = \"none\"\n",
        script.display(),
        stop.display()
    ));
    stop
}

fn wait_status(env: &Env, name: &str, want: &str) {
    wait_for(&format!("{name} to be {want}"), || {
        (env.agent_json(name)["status"] == want).then_some(())
    });
}

#[test]
fn review_from_the_command_line_quotes_the_lines_and_refuses_bad_comments() {
    let env = Env::new();
    review_profile(&env);
    env.ok(&["new", "--agent", "rev", "--name", "rv", "--detach"]);
    let wt = env.worktree_of("rv");
    std::fs::write(wt.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    wait_status(&env, "rv", "idle");
    let out = env.run(&[
        "review",
        "rv",
        "--comment",
        "a.txt:2:two is wrong",
        "--comment",
        "README.md:1:and greet louder",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("review sent to agent 'rv'"));
    let screen = env.wait_tail("rv", |t| t.contains("got: and greet louder"));
    let got: Vec<&str> = screen.lines().filter_map(|l| l.strip_prefix("got: ")).collect();
    let at = |s: &str| got.iter().position(|l| *l == s).unwrap_or_else(|| panic!("{s}: {got:?}"));
    assert!(at("1. a.txt:2") < at(" two") && at(" two") < at("two is wrong"), "{got:?}");
    assert!(at("two is wrong") < at("2. README.md:1") && at(" hello") < at("and greet louder"));
    // (The terminal echoes what is typed, so a `got:` line may follow the echo on its row.)
    let one = screen.matches("got: Review of your changes: 2 comments.").count();
    assert_eq!(one, 1, "one message: {screen}");

    // Mistakes: one line naming the comment, nothing sent.
    let err = env.fails(&["review", "rv", "--comment", "a.txt:two"], 2);
    assert!(err.contains("comment 'a.txt:two' is not PATH:LINE:TEXT"), "{err}");
    let err = env.fails(&["review", "rv", "--comment", "a.txt:9:x"], 1);
    assert!(err.contains("a.txt:9: the file has 3 line(s)"), "{err}");
    let err = env.fails(&["review", "rv", "--comment", "../x:1:x"], 1);
    assert!(err.contains("inside the worktree"), "{err}");
    let err = env.fails(&["review", "nope", "--comment", "a.txt:1:x"], 1);
    assert!(err.contains("no agent 'nope'"), "{err}");
}

#[test]
fn comments_made_in_the_dashboard_diff_view_reach_the_agent_as_one_message_or_wait_for_it() {
    let env = Env::new();
    let stop = review_profile(&env);
    env.ok(&["new", "--agent", "rev", "--name", "rv", "--detach"]);
    let wt = env.worktree_of("rv");
    std::fs::write(wt.join("README.md"), "hello\nworld\n").unwrap();
    std::fs::write(wt.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    wait_status(&env, "rv", "idle");

    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("rv");
    ui.type_str("d");
    ui.wait_screen("Diff of rv");
    // Down to README.md's added line (the patch: its header, hunk, ` hello`, `+world`).
    ui.type_str("jjjjjj");
    ui.wait_screen("at README.md:2 ");
    ui.type_str("c");
    ui.wait_screen("comment on README.md:2 ›");
    ui.type_str("say more about the world\r");
    ui.wait_screen("· 1 comment ");
    // On to a.txt's hunk header: the comment is on the whole hunk.
    ui.type_str("jjjjjj");
    ui.wait_screen("at a.txt:1-3 ");
    ui.type_str("c");
    ui.type_str("why this file?\r");
    ui.wait_screen("· 2 comments ");
    ui.type_str("C");
    ui.wait_screen("2 comments to send");
    ui.type_str("\x1b");
    ui.wait_gone("comments to send");
    // The agent is idle: enter types them at once, as one message.
    ui.type_str("\r");
    ui.wait_screen("review sent to agent 'rv'");
    let screen = env.wait_tail("rv", |t| t.contains("got: why this file?"));
    let got: Vec<&str> = screen.lines().filter_map(|l| l.strip_prefix("got: ")).collect();
    let at = |s: &str| got.iter().position(|l| *l == s).unwrap_or_else(|| panic!("{s}: {got:?}"));
    assert!(at("1. README.md:2") < at("+world") && at("+world") < at("say more about the world"));
    assert!(at("2. a.txt:1-3") < at("+one") && at("+three") < at("why this file?"), "{got:?}");
    assert_eq!(screen.matches("got: Review of your changes: 2 comments.").count(), 1, "{screen}");

    // While the agent works, the next review waits in its queue and arrives once it is idle.
    env.ok(&["send", "rv", "busy"]);
    wait_status(&env, "rv", "working");
    ui.type_str("c");
    ui.wait_screen("comment on a.txt:1");
    ui.type_str("second round\r");
    ui.wait_screen("· 1 comment ");
    ui.type_str("\r");
    ui.wait_screen("queued for agent 'rv'");
    assert_eq!(env.agent_json("rv")["queued"], 1);
    assert!(!env.tail("rv").contains("second round"), "not typed while it works");
    std::fs::write(&stop, "").unwrap();
    env.wait_tail("rv", |t| t.contains("got: second round"));
    assert_eq!(env.agent_json("rv")["queued"], 0);
    ui.type_str("\x1b");
    ui.wait_gone("Diff of rv");
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}

#[test]
fn best_of_three_compare_then_pick_lands_one_and_keeps_the_others_under_backup_refs() {
    let env = Env::new();
    env.write_config("[merge]\ngate = [\"sh\", \"-c\", \"test -f ok.txt\"]\n");
    let out = env.ok(&["new", "fix it", "--agent", "shell", "-n", "3", "--detach"]);
    let names: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    assert_eq!(names, ["fix-it-1", "fix-it-2", "fix-it-3"]);
    for n in &names {
        assert_eq!(env.agent_json(n)["group"], "fix-it-1", "{n}");
    }
    // Each "agent" did something different; only the second passes the gate.
    let wt = |n: &str| env.worktree_of(n);
    std::fs::write(wt("fix-it-1").join("one.txt"), "1\n").unwrap();
    std::fs::write(wt("fix-it-2").join("two.txt"), "2\n2\n").unwrap();
    std::fs::write(wt("fix-it-2").join("ok.txt"), "ok\n").unwrap();
    git(&wt("fix-it-3"), &["rm", "-q", "README.md"]);
    git(&wt("fix-it-3"), &["commit", "-q", "-m", "no readme"]);
    // Not in a group: a single agent.
    env.new_shell("solo");

    let table = env.ok(&["compare", "fix-it-1"]);
    let row = |n: &str| {
        table.lines().find(|l| l.starts_with(n)).unwrap_or_else(|| panic!("{n}: {table}"))
    };
    assert!(table.lines().next().unwrap().contains("GATE"), "{table}");
    assert!(
        row("fix-it-1").contains("+1 -0") && row("fix-it-1").contains("failed (exit 1)"),
        "{table}"
    );
    assert!(row("fix-it-1").ends_with("one.txt"), "{table}");
    assert!(
        row("fix-it-2").contains("passed") && row("fix-it-2").ends_with("ok.txt, two.txt"),
        "{table}"
    );
    assert!(row("fix-it-3").contains("+0 -1") && row("fix-it-3").ends_with("README.md"), "{table}");
    assert!(!table.contains("solo"), "{table}");
    // Any member names the group; JSON has the same.
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["compare", "fix-it-3", "--json", "--no-gate"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert!(json[0]["gate"].is_null(), "--no-gate: {json}");
    let err = env.fails(&["compare", "nope"], 1);
    assert!(err.contains("no group 'nope'") && err.contains("groups: fix-it-1"), "{err}");
    let err = env.fails(&["compare", "fix-it-1", "--pick", "solo"], 1);
    assert!(err.contains("agent 'solo' is not in group 'fix-it-1'"), "{err}");

    let tips: Vec<String> = ["fix-it-1", "fix-it-3"]
        .iter()
        .map(|n| git(&env.repo, &["rev-parse", &format!("corral/{n}")]).trim().to_string())
        .collect();
    let out = env.run(&["compare", "fix-it-1", "--pick", "fix-it-2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Landed: main has exactly fix-it-2's tree.
    let files = git(&env.repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(
        files.split_whitespace().collect::<Vec<_>>(),
        [".gitignore", "README.md", "ok.txt", "two.txt"]
    );
    assert_eq!(git(&env.repo, &["show", "main:two.txt"]), "2\n2\n");
    // The group is gone from ls and from git's worktrees; solo stays.
    let listed: Vec<String> = env.ls_json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ["solo"]);
    let worktrees = git(&env.repo, &["worktree", "list"]);
    assert!(!worktrees.contains("fix-it"), "{worktrees}");
    assert!(git(&env.repo, &["branch", "--list", "corral/fix-it-*"]).trim().is_empty());
    // The others' work is kept: uncommitted files as a commit on their old tips.
    let backups = git(&env.repo, &["for-each-ref", "--format=%(refname)", "refs/corral/backup/"]);
    let agent_ref = |n: &str| {
        backups
            .lines()
            .find(|r| r.starts_with(&format!("refs/corral/backup/{n}/")) && r.ends_with("/agent"))
            .unwrap_or_else(|| panic!("{n}: {backups}"))
            .to_string()
    };
    assert_eq!(git(&env.repo, &["show", &format!("{}:one.txt", agent_ref("fix-it-1"))]), "1\n");
    git(&env.repo, &["merge-base", "--is-ancestor", &tips[0], &agent_ref("fix-it-1")]);
    assert_eq!(git(&env.repo, &["rev-parse", &agent_ref("fix-it-3")]).trim(), tips[1]);
}

#[test]
fn the_dashboard_compares_a_group_and_picks_one() {
    let env = Env::new();
    env.ok(&["new", "try it", "--agent", "shell", "-n", "3", "--detach"]);
    for n in ["try-it-1", "try-it-2", "try-it-3"] {
        std::fs::write(env.worktree_of(n).join(format!("{n}.txt")), "x\n").unwrap();
    }
    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("try-it-3");
    ui.type_str("2");
    ui.type_str("b");
    ui.wait_screen("Compare try-it-1 (3 agents)");
    ui.wait_screen("try-it-3.txt");
    ui.type_str("j");
    ui.wait_screen("── diff of try-it-2");
    ui.wait_screen("+++ b/try-it-2.txt");
    ui.type_str("\r");
    ui.wait_screen("enter: land try-it-2 now and remove the others");
    ui.type_str("\r");
    ui.wait_screen("landed agent 'try-it-2'");
    ui.wait_gone("Compare try-it-1");
    assert!(env.ls_json()["agents"].as_array().unwrap().is_empty());
    assert_eq!(git(&env.repo, &["show", "main:try-it-2.txt"]), "x\n");
    let backups = git(&env.repo, &["for-each-ref", "--format=%(refname)", "refs/corral/backup/"]);
    for n in ["try-it-1", "try-it-3"] {
        assert!(backups.contains(&format!("refs/corral/backup/{n}/")), "{n}: {backups}");
    }
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}
