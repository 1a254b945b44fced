//! The dashboard end to end: the real binary in a PTY this test owns, a real server on a temp
//! socket, real shells as agents. Every step waits for the screen to show its result.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use common::*;
use corral::term::Size;
use tty::Tty;

const CTRL_RBRACKET: &str = "\x1d";
const CTRL_U: &str = "\x15";

/// Open the new-agent dialog and create a shell agent called `name` whose prompt is `prompt`.
fn create_from_dialog(ui: &mut Tty, name: &str, prompt: &str) {
    ui.type_str("n");
    ui.wait_screen("New agent");
    ui.type_str(prompt);
    // Profile, then name.
    ui.type_str(&format!("\t{CTRL_U}shell\t{name}\r"));
    ui.wait_screen(&format!("created {name}"));
}

fn size_of(env: &Env, name: &str) -> (u64, u64) {
    let a = env.agent_json(name);
    (a["size"]["cols"].as_u64().unwrap(), a["size"]["rows"].as_u64().unwrap())
}

#[test]
fn dashboard_creates_agents_focuses_switches_and_leaves_them_running() {
    let env = Env::new();
    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("no agents yet");

    create_from_dialog(&mut ui, "alpha", "echo hello-$((40+2))-alpha");
    // The new agent is selected and its screen is live beside the list.
    ui.wait_screen("hello-42-alpha");
    create_from_dialog(&mut ui, "bravo", "echo hello-$((40+2))-bravo");
    ui.wait_screen("hello-42-bravo");
    // Created at the size the dashboard shows them (120 columns less the list).
    assert_eq!(size_of(&env, "alpha"), (89, 38));

    // 1 selects alpha; enter focuses it and keys go to its shell.
    ui.type_str("1");
    ui.wait_screen("hello-42-alpha");
    ui.type_str("\r");
    ui.wait_screen("FOCUS");
    ui.type_str("echo typed-$((6*7))\r");
    ui.wait_screen("typed-42");
    // In focus mode the agent's screen is painted straight onto the terminal: in its place,
    // right of the list and its separator, with the list still drawn beside it.
    let text = ui.text();
    let row = text.lines().find(|l| l.contains("typed-42") && !l.contains("echo")).unwrap();
    let cols: Vec<char> = row.chars().collect();
    assert_eq!(cols.get(30), Some(&'│'), "{text}");
    assert_eq!(cols[31..].iter().collect::<String>().trim_end(), "typed-42", "{text}");

    // The prefix returns; 2 selects bravo, enter focuses it.
    ui.type_str(CTRL_RBRACKET);
    ui.wait_gone("FOCUS");
    ui.type_str("2");
    ui.wait_screen("hello-42-bravo");
    ui.wait_gone("typed-42");
    ui.type_str("\r");
    ui.wait_screen("FOCUS");
    ui.type_str("echo in-bravo-$((2+3))\r");
    ui.wait_screen("in-bravo-5");

    // The prefix twice reaches the agent as the key itself.
    ui.type_str("cat -v\r");
    ui.type_str(&format!("{CTRL_RBRACKET}{CTRL_RBRACKET}\r"));
    ui.wait_screen("^]");
    ui.wait_screen("FOCUS");
    ui.type_str("\x03");

    ui.type_str(CTRL_RBRACKET);
    ui.wait_gone("FOCUS");

    // Resizing the terminal resizes only the agent it views (bravo), once the size settles.
    ui.resize(Size::new(100, 30));
    ui.wait_screen("74x28");
    env.ok(&["send", "bravo", "stty size"]);
    env.wait_tail("bravo", |t| t.contains("\n28 74\n"));
    env.ok(&["send", "alpha", "stty size"]);
    env.wait_tail("alpha", |t| t.contains("\n38 89\n"));

    // Stopping bravo shows in the list.
    ui.type_str("x");
    ui.wait_screen("✕ exited");
    assert_eq!(env.agent_json("bravo")["status"], "exited");

    // A second dashboard at once: both stay live.
    let mut other = Tty::spawn(&env, &[], Size::new(100, 30));
    other.wait_screen("bravo");
    other.type_str("1");
    other.wait_screen("typed-42");
    env.ok(&["send", "alpha", "echo seen-by-$((1+1))-dashboards"]);
    ui.type_str("1");
    ui.wait_screen("seen-by-2-dashboards");
    other.wait_screen("seen-by-2-dashboards");

    // Quitting leaves every agent running.
    ui.type_str("q");
    assert!(ui.wait_exit().success());
    other.type_str("q");
    assert!(other.wait_exit().success());
    assert_ne!(env.agent_json("alpha")["status"], "exited");
    env.ok(&["send", "alpha", "echo after-quit"]);
    env.wait_tail("alpha", |t| t.contains("after-quit\n"));
}

#[test]
fn dashboard_new_dialog_refuses_bad_input_and_creates_nothing() {
    let env = Env::new();
    env.write_config("default_agent = \"shell\"\n");
    env.new_shell("taken");
    let mut ui = Tty::spawn(&env, &[], Size::new(100, 30));
    ui.wait_screen("taken");

    // Several agents need a prompt.
    ui.type_str("n");
    ui.wait_screen("New agent");
    ui.type_str(&format!("\t\t\t\t{CTRL_U}2\r"));
    ui.wait_screen("a prompt is required to start 2 agents");

    // A name that exists.
    ui.type_str(&format!("\t\t\t\t{CTRL_U}1\t\t\t\t\ttaken\r"));
    ui.wait_screen("an agent named 'taken' already exists");

    // A base branch that does not exist: the server refuses, the dialog says why.
    ui.type_str(&format!("{CTRL_U}fresh\tno-such-branch\r"));
    ui.wait_screen("base 'no-such-branch' is not a branch");
    ui.wait_screen("New agent");

    ui.type_str("\x1b");
    ui.wait_gone("New agent");
    let agents = env.ls_json()["agents"].as_array().unwrap().clone();
    let names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["taken"]);
    let branches = git(&env.repo, &["branch", "--list", "corral/*"]);
    assert!(!branches.contains("fresh"), "{branches}");
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}

/// Issue 15: the Count field started as `1` and typing `2` made it `12`. What is typed into a
/// field with a default (Profile, Count) is the value.
#[test]
fn dashboard_new_dialog_typed_values_replace_the_defaults() {
    let env = Env::new();
    env.write_config("default_agent = \"shell\"\n");
    let mut ui = Tty::spawn(&env, &[], Size::new(100, 30));
    ui.wait_screen("no agents yet");
    // The first screen says how to get into an agent and back out (issue 15).
    ui.wait_screen("ctrl-] comes back");
    ui.type_str("n");
    ui.wait_screen("New agent");
    ui.type_str("echo twin-$((40+2))\tshell\t\t\t2\r");
    ui.wait_screen("created ");
    let agents = env.ls_json()["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 2, "two agents, not twelve: {agents:?}");
    for a in &agents {
        assert_eq!(a["profile"], "shell");
    }
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}

/// Issue 15: a broken config was silent in the dashboard (or kept it from starting). It is named
/// in the footer, file, line and key, while the dashboard goes on with the last good config;
/// fixing the file clears it.
#[test]
fn dashboard_names_a_broken_config_in_its_footer_and_keeps_working() {
    let env = Env::new();
    env.write_config("default_agent = \"shell\"\n");
    env.new_shell("steady");
    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("steady");

    env.write_config("default_agent = \"shell\"\n[worktrees]\ndir = \"x\"\n");
    ui.wait_screen("config.toml: line 2: key 'worktrees'");
    // Still working, with the last good config: the dialog's default profile is still shell.
    ui.type_str("n");
    ui.wait_screen("New agent");
    ui.wait_screen("Profile shell");
    ui.type_str("\x1b");
    ui.wait_gone("New agent");
    ui.wait("the footer naming the config error", |t| {
        t.lines().last().is_some_and(|l| l.contains("config: ") && l.contains("line 2"))
    });

    env.write_config("default_agent = \"shell\"\n");
    ui.wait_gone("config: ");
    ui.type_str("q");
    assert!(ui.wait_exit().success());

    // Broken from the start: the dashboard opens all the same and says why.
    env.write_config("[worktree]\ndirr = \"x\"\n");
    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("steady");
    ui.wait_screen("config.toml: line 2: key 'worktree.dirr'");
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}

#[test]
fn dashboard_killed_restores_the_terminal_and_stops_nothing() {
    let env = Env::new();
    env.new_shell("steady");
    let mut ui = Tty::spawn(&env, &[], Size::new(80, 24));
    ui.wait_screen("steady");
    let on = ui.modes();
    assert!(on.alt_screen && on.bracketed_paste && on.mouse != corral::term::MouseMode::None);
    let pid = ui.child.process_id().unwrap();
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(ui.wait_exit().success());
    let off = ui.modes();
    assert!(!off.alt_screen, "{off:?}");
    assert!(!off.bracketed_paste && !off.focus_events, "{off:?}");
    assert_eq!(off.mouse, corral::term::MouseMode::None);
    assert_eq!(off.kitty_flags, 0);
    assert!(off.cursor_visible);
    assert_ne!(env.agent_json("steady")["status"], "exited");
}

#[test]
fn dashboard_diff_then_merge_lands_the_agents_commit_on_main() {
    let env = Env::new();
    env.new_shell("lander");
    // The agent's work: a file committed on its branch, in its worktree.
    let wt = env.worktree_of("lander");
    std::fs::write(wt.join("landed.txt"), "landed by the agent\n").unwrap();
    git(&wt, &["add", "landed.txt"]);
    git(&wt, &["commit", "-q", "-m", "add landed.txt"]);

    let mut ui = Tty::spawn(&env, &[], Size::new(120, 40));
    ui.wait_screen("lander");

    // d shows the patch with its file list; esc returns to the list.
    ui.type_str("d");
    ui.wait_screen("Diff of lander against main");
    ui.wait_screen("1 file changed, +1 -0");
    ui.wait_screen("+landed by the agent");
    ui.type_str("\x1b");
    ui.wait_gone("Diff of lander");

    // m asks first, then one confirmation lands it and the agent leaves the list.
    ui.type_str("m");
    ui.wait_screen("Merge lander");
    ui.wait_screen("Lands corral/lander on main");
    ui.type_str("\r");
    ui.wait_screen("merged lander");
    // Any key dismisses the notice; j does nothing else with no agents.
    ui.type_str("j");
    ui.wait_screen("no agents yet");
    ui.wait_gone("lander");

    assert_eq!(git(&env.repo, &["show", "main:landed.txt"]), "landed by the agent\n");
    assert!(env.ls_json()["agents"].as_array().unwrap().is_empty());
    ui.type_str("q");
    assert!(ui.wait_exit().success());
}
