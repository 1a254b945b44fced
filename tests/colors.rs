//! Colours for light terminals: `attach` asks its terminal for its default colours and the
//! server answers agents' colour queries with them, so programs in an agent pick the palette that
//! suits the terminal the user really looks at (issue 15).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tty.rs"]
mod tty;

use std::process::Command;

use common::*;
use corral::term::colors::Rgb8;
use corral::term::{Size, TermColors};
use tty::Tty;

const LIGHT: TermColors = TermColors { fg: Rgb8::new(0, 0, 0), bg: Rgb8::new(0xff, 0xff, 0xff) };

fn have_vim() -> bool {
    let found = Command::new("sh").args(["-c", "command -v vim"]).output();
    let ok = found.is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: vim is not installed (scripts/setup.sh installs it)");
    }
    ok
}

/// Ask the vim shown in `tty` for its 'background' until it has taken in the terminal's answer
/// (it does when it next reads input); true when that is `light`.
fn vim_background_is_light(tty: &mut Tty) -> bool {
    tty.wait("vim's empty buffer", |t| t.lines().filter(|l| l.starts_with('~')).count() > 3);
    let mut attempt = 0;
    let said = wait_for("vim to report a light background", || {
        attempt += 1;
        let mark = format!("try{attempt}");
        tty.type_str(&format!(":echo '{mark} bg=' . &background\r"));
        tty.wait_screen(&format!("{mark} bg="));
        let text = tty.text();
        text.contains(&format!("{mark} bg=light")).then_some(text)
    });
    said.contains("bg=light")
}

#[test]
fn vim_started_after_a_light_terminal_attached_sets_a_light_background() {
    if !have_vim() {
        return;
    }
    let env = Env::new();
    let name = env.new_shell("v");
    let mut tty = Tty::spawn_with_colors(&env, &["attach", &name], Size::new(80, 24), Some(LIGHT));
    tty.wait_screen("$");
    // vim asks for the background (OSC 11, its t_RB) when it starts, and sets 'background'
    // from the answer unless told otherwise; -u NONE keeps any vimrc out of it.
    tty.type_str("vim -u NONE -N -i NONE -n\r");
    assert!(vim_background_is_light(&mut tty));
    tty.type_str(":q!\r");
}

#[test]
fn an_agent_made_from_a_light_terminal_starts_with_its_colours() {
    if !have_vim() {
        return;
    }
    let env = Env::new();
    env.write_config(
        "[agents.vim]\ncommand = [\"vim\", \"-u\", \"NONE\", \"-N\", \"-i\", \"NONE\", \"-n\"]\n",
    );
    // A fresh server, and vim is the agent itself: it asks before any attach could tell.
    let mut tty = Tty::spawn_with_colors(
        &env,
        &["new", "--agent", "vim", "--name", "v"],
        Size::new(80, 24),
        Some(LIGHT),
    );
    assert!(vim_background_is_light(&mut tty));
}

#[test]
fn programs_that_subscribed_hear_when_a_light_terminal_attaches() {
    let env = Env::new();
    let name = env.new_shell("s");
    // A program that sets DEC mode 2031 and shows what the terminal sends it.
    env.ok(&["send", &name, "printf '\\033[?2031h'; stty -echo -icanon; echo ready; cat -v"]);
    env.wait_tail(&name, |t| t.lines().any(|l| l == "ready"));
    assert!(!env.tail(&name).contains("997"), "no notification before a client told colours");
    let tty = Tty::spawn_with_colors(&env, &["attach", &name], Size::new(80, 24), Some(LIGHT));
    // CSI ? 997 ; 2 n: the scheme is now light.
    tty.wait_screen("^[[?997;2n");
    // Another client with the same colours is no change.
    drop(tty);
    let again = Tty::spawn_with_colors(&env, &["attach", &name], Size::new(80, 24), Some(LIGHT));
    again.wait_screen("^[[?997;2n");
    drop(again);
    let tail = env.tail(&name);
    assert_eq!(tail.matches("997").count(), 1, "told once:\n{tail}");
    // A dark terminal attaching is a change back.
    let dark = Tty::spawn(&env, &["attach", &name], Size::new(80, 24));
    dark.wait_screen("^[[?997;1n");
}

#[test]
fn the_dashboard_tells_its_terminal_colours_too() {
    let env = Env::new();
    let name = env.new_shell("d");
    env.ok(&["send", &name, "printf '\\033[?2031h'; stty -echo -icanon; echo ready; cat -v"]);
    env.wait_tail(&name, |t| t.lines().any(|l| l == "ready"));
    // The dashboard shows the only agent, attached to it, and says what its terminal is.
    let ui = Tty::spawn_with_colors(&env, &[], Size::new(120, 40), Some(LIGHT));
    ui.wait_screen("ready");
    env.wait_tail(&name, |t| t.contains("^[[?997;2n"));
}
