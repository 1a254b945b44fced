//! `update`: each key in each mode, and each message, produces the expected effects.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::update;
use crate::proto::{MergeMode, Reply, Request, Target};
use crate::term::{Modes, MouseMode, Size};
use crate::tui::fixtures::{self, REPO};
use crate::tui::state::{AppState, Dialog, Effect, Mode, Msg, NewField, View};
use crate::tui::ui::{areas, pane_size};

fn demo() -> AppState {
    fixtures::demo(Rect::new(0, 0, 120, 40))
}

fn key(name: &str) -> (PathBuf, String) {
    (PathBuf::from(REPO), name.to_string())
}

fn target(name: &str) -> Target {
    Target { repo: PathBuf::from(REPO), name: name.into() }
}

/// A key as a terminal reports it, from its config name.
fn ev(name: &str) -> KeyEvent {
    let (mods, rest) = {
        let mut m = KeyModifiers::NONE;
        let mut r = name;
        loop {
            if let Some(x) = r.strip_prefix("ctrl-").filter(|x| !x.is_empty()) {
                m |= KeyModifiers::CONTROL;
                r = x;
            } else if let Some(x) = r.strip_prefix("alt-").filter(|x| !x.is_empty()) {
                m |= KeyModifiers::ALT;
                r = x;
            } else if let Some(x) = r.strip_prefix("shift-").filter(|x| !x.is_empty()) {
                m |= KeyModifiers::SHIFT;
                r = x;
            } else {
                break (m, r);
            }
        }
    };
    let code = match rest {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" => KeyCode::PageUp,
        "pgdn" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        s => {
            let c = s.chars().next().unwrap();
            let mods = if c.is_ascii_uppercase() { mods | KeyModifiers::SHIFT } else { mods };
            return KeyEvent::new(KeyCode::Char(c), mods);
        }
    };
    KeyEvent::new(code, mods)
}

fn press(st: &mut AppState, name: &str) -> Vec<Effect> {
    update(st, Msg::Key(ev(name), Instant::now()))
}

fn type_text(st: &mut AppState, s: &str) {
    for c in s.chars() {
        let fx = update(
            st,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE), Instant::now()),
        );
        assert!(fx.is_empty(), "typing {c:?}: {fx:?}");
    }
}

fn attach_of(fx: &[Effect], name: &str) -> Option<u64> {
    fx.iter().find_map(|e| match e {
        Effect::Attach { id, target } if target.name == name => Some(*id),
        _ => None,
    })
}

// ---- normal mode ----

#[test]
fn normal_selection_keys_move_and_reattach() {
    for k in ["j", "down"] {
        let mut st = demo();
        let fx = press(&mut st, k);
        assert_eq!(st.selected, Some(key("bravo")), "{k}");
        assert_eq!(fx[0], Effect::Detach { id: 100 }, "{k}");
        assert!(attach_of(&fx, "bravo").is_some(), "{k}: {fx:?}");
        assert_eq!(fx.len(), 2);
    }
    for k in ["k", "up"] {
        let mut st = demo();
        assert_eq!(press(&mut st, k), vec![], "{k} at the top");
        assert_eq!(st.selected, Some(key("alpha")));
    }
    let mut st = demo();
    let fx = press(&mut st, "4");
    assert_eq!(st.selected, Some(key("delta")));
    assert!(attach_of(&fx, "delta").is_some());
    assert_eq!(press(&mut st, "9"), vec![], "no ninth agent");
    assert_eq!(st.selected, Some(key("delta")));
    // The agent being created has no terminal to attach yet.
    let fx = press(&mut st, "6");
    assert_eq!(st.selected, Some(key("foxtrot")));
    assert!(fx.iter().all(|e| !matches!(e, Effect::Attach { .. })), "{fx:?}");
}

#[test]
fn normal_enter_focuses_a_running_agent_and_sizes_it() {
    let mut st = demo();
    assert_eq!(press(&mut st, "enter"), vec![]);
    assert_eq!(st.mode, Mode::Focus);

    // An agent shown at another size takes the size it is shown at when focused.
    let mut st = demo();
    st.panes.get_mut(&key("alpha")).unwrap().screen =
        Some(fixtures::screen(Size::new(200, 50), ""));
    assert_eq!(press(&mut st, "enter"), vec![Effect::Resize { id: 100, size: pane_size(&st) }]);

    // Not running: refused with a reason.
    let mut st = demo();
    press(&mut st, "5");
    press(&mut st, "enter");
    assert_eq!(st.mode, Mode::Normal);
    let n = st.notice.clone().unwrap();
    assert!(n.error && n.text.contains("echo is not running; r restarts it"), "{n:?}");
}

#[test]
fn normal_grid_attaches_the_page() {
    let mut st = demo();
    let fx = press(&mut st, "g");
    assert_eq!(st.view, View::Grid);
    for n in ["bravo", "charlie", "delta", "echo"] {
        assert!(attach_of(&fx, n).is_some(), "{n}: {fx:?}");
    }
    assert!(attach_of(&fx, "foxtrot").is_none());
    assert!(!fx.contains(&Effect::Detach { id: 100 }), "alpha stays attached");
    let fx = press(&mut st, "g");
    assert_eq!(st.view, View::List);
    assert_eq!(fx.iter().filter(|e| matches!(e, Effect::Detach { .. })).count(), 4);
}

#[test]
fn normal_action_keys() {
    let mut st = demo();
    assert_eq!(press(&mut st, "n"), vec![]);
    assert!(matches!(st.mode, Mode::Dialog(Dialog::New(_))));

    let mut st = demo();
    assert_eq!(press(&mut st, "i"), vec![]);
    assert!(matches!(&st.mode, Mode::Dialog(Dialog::Send(d)) if d.agent == key("alpha")));

    let mut st = demo();
    let fx = press(&mut st, "x");
    assert!(
        matches!(&fx[..], [Effect::Request(_, Request::Stop { target: t })] if *t == target("alpha"))
    );

    let mut st = demo();
    let fx = press(&mut st, "r");
    assert!(matches!(&fx[..], [Effect::Request(_, Request::Restart { target: t, env })]
        if *t == target("alpha") && *env == st.env));

    let mut st = demo();
    assert_eq!(press(&mut st, "D"), vec![]);
    assert!(matches!(&st.mode, Mode::Dialog(Dialog::Remove(d)) if d.agent == key("alpha")));

    let mut st = demo();
    assert_eq!(press(&mut st, "?"), vec![]);
    assert_eq!(st.mode, Mode::Help);
    assert_eq!(press(&mut st, "x"), vec![], "any key closes help, doing nothing else");
    assert_eq!(st.mode, Mode::Normal);

    for k in ["q", "ctrl-c"] {
        let mut st = demo();
        assert_eq!(press(&mut st, k), vec![Effect::Quit], "{k}");
        assert!(st.quit);
    }
    // Unbound in normal mode.
    let mut st = demo();
    assert_eq!(press(&mut st, "ctrl-]"), vec![]);
    assert_eq!(st.mode, Mode::Normal);
}

#[test]
fn normal_scroll_keys_fetch_history_and_return_to_live() {
    let mut st = demo();
    let fx = press(&mut st, "pgup");
    let half = usize::from(areas(&st).pane.height / 2);
    let Some(Effect::Request(id, Request::Tail { target: t, lines })) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert_eq!(t, target("alpha"));
    assert!(lines >= 500);
    assert_eq!(st.panes[&key("alpha")].scroll.as_ref().unwrap().offset, half);
    // A second page while the first fetch is out asks nothing more.
    assert_eq!(press(&mut st, "pgup"), vec![]);
    // 100 lines of history: the view stops at the oldest.
    let lines_back: Vec<_> = (0..100).map(|_| crate::term::Line::blank(10)).collect();
    assert_eq!(update(&mut st, Msg::Reply(id, Ok(Reply::Lines(lines_back)))), vec![]);
    assert_eq!(st.panes[&key("alpha")].scroll.as_ref().unwrap().offset, 2 * half);
    for _ in 0..3 {
        assert_eq!(press(&mut st, "pgup"), vec![], "everything is here; no more requests");
    }
    let rows = usize::from(areas(&st).pane.height);
    assert_eq!(st.panes[&key("alpha")].scroll.as_ref().unwrap().offset, 100 - rows);
    press(&mut st, "pgdn");
    assert!(st.panes[&key("alpha")].scroll.is_some());
    assert_eq!(press(&mut st, "esc"), vec![]);
    assert!(st.panes[&key("alpha")].scroll.is_none(), "esc: back to the live screen");
}

// ---- focus mode ----

fn focused() -> AppState {
    let mut st = demo();
    press(&mut st, "enter");
    assert_eq!(st.mode, Mode::Focus);
    st
}

fn set_modes(st: &mut AppState, modes: Modes) {
    st.panes.get_mut(&key("alpha")).unwrap().screen.as_mut().unwrap().modes = modes;
}

fn input(bytes: &[u8]) -> Vec<Effect> {
    vec![Effect::Input { id: 100, bytes: bytes.to_vec() }]
}

#[test]
fn focus_keys_go_to_the_agent_encoded_for_its_modes() {
    let mut st = focused();
    for (k, bytes) in [
        ("a", &b"a"[..]),
        ("q", b"q"),
        ("ctrl-c", b"\x03"),
        ("ctrl-g", b"\x07"),
        ("ctrl-b", b"\x02"),
        ("ctrl-o", b"\x0f"),
        ("ctrl-t", b"\x14"),
        ("ctrl-s", b"\x13"),
        ("ctrl-z", b"\x1a"),
        ("ctrl-v", b"\x16"),
        ("enter", b"\r"),
        ("shift-enter", b"\x1b\r"),
        ("esc", b"\x1b"),
        ("up", b"\x1b[A"),
        ("pgup", b"\x1b[5~"),
        ("n", b"n"),
        ("D", b"D"),
        ("?", b"?"),
    ] {
        assert_eq!(press(&mut st, k), input(bytes), "{k}");
        assert_eq!(st.mode, Mode::Focus, "{k}");
    }
    set_modes(&mut st, Modes { app_cursor: true, kitty_flags: 1, ..Modes::default() });
    assert_eq!(press(&mut st, "up"), input(b"\x1bOA"));
    assert_eq!(press(&mut st, "shift-enter"), input(b"\x1b[13;2u"));
    assert_eq!(press(&mut st, "esc"), input(b"\x1b[27u"));
}

#[test]
fn focus_prefix_returns_and_twice_sends_itself() {
    let mut st = focused();
    let t0 = Instant::now();
    assert_eq!(update(&mut st, Msg::Key(ev("ctrl-]"), t0)), vec![]);
    assert_eq!(st.mode, Mode::Normal);
    assert_eq!(
        update(&mut st, Msg::Key(ev("ctrl-]"), t0 + Duration::from_millis(100))),
        input(b"\x1d")
    );
    assert_eq!(st.mode, Mode::Focus);
    // Legacy terminals report 0x1d as ctrl-5.
    let legacy = KeyEvent::new(KeyCode::Char('5'), KeyModifiers::CONTROL);
    assert_eq!(update(&mut st, Msg::Key(legacy, t0)), vec![]);
    assert_eq!(st.mode, Mode::Normal);
    // Too late for a double press: the key does nothing in the dashboard.
    assert_eq!(update(&mut st, Msg::Key(ev("ctrl-]"), t0 + Duration::from_secs(1))), vec![]);
    assert_eq!(st.mode, Mode::Normal);
    // Another key in between: no double press.
    let mut st = focused();
    update(&mut st, Msg::Key(ev("ctrl-]"), t0));
    press(&mut st, "j");
    assert_eq!(update(&mut st, Msg::Key(ev("ctrl-]"), t0)), vec![]);
    assert_eq!(st.mode, Mode::Normal);
}

#[test]
fn focus_scroll_keys_paste_and_focus_reports() {
    let mut st = focused();
    let fx = press(&mut st, "shift-pgup");
    assert!(matches!(&fx[..], [Effect::Request(_, Request::Tail { .. })]), "{fx:?}");
    assert!(st.panes[&key("alpha")].scroll.is_some());
    // Typing shows the live screen again.
    assert_eq!(press(&mut st, "x"), input(b"x"));
    assert!(st.panes[&key("alpha")].scroll.is_none());

    assert_eq!(update(&mut st, Msg::Paste("a\nb".into())), input(b"a\rb"));
    assert_eq!(update(&mut st, Msg::Focus(true)), vec![]);
    set_modes(&mut st, Modes { bracketed_paste: true, focus_events: true, ..Modes::default() });
    assert_eq!(update(&mut st, Msg::Paste("hi".into())), input(b"\x1b[200~hi\x1b[201~"));
    assert_eq!(update(&mut st, Msg::Focus(false)), input(b"\x1b[O"));
}

#[test]
fn focus_ends_when_the_agent_exits() {
    let mut st = focused();
    let fx = update(&mut st, Msg::Exited(100, Some(3)));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.mode, Mode::Normal);
    assert!(st.notice.as_ref().unwrap().text.contains("alpha exited with code 3"));
    assert!(!st.attachments[&key("alpha")].live);
}

// ---- dialogs ----

fn new_dialog(st: &AppState) -> &crate::tui::state::NewDialog {
    match &st.mode {
        Mode::Dialog(Dialog::New(d)) => d,
        m => panic!("not the new dialog: {m:?}"),
    }
}

#[test]
fn new_dialog_fields_and_submit() {
    let mut st = demo();
    press(&mut st, "n");
    type_text(&mut st, "fix it");
    assert_eq!(press(&mut st, "tab"), vec![]);
    assert_eq!(new_dialog(&st).focus, NewField::Profile);
    assert_eq!(press(&mut st, "right"), vec![]);
    assert_eq!(new_dialog(&st).profile.text, "codex", "right: the next profile after claude");
    press(&mut st, "left");
    press(&mut st, "left");
    assert_eq!(new_dialog(&st).profile.text, "aider");
    press(&mut st, "down");
    type_text(&mut st, "fixer");
    press(&mut st, "tab");
    type_text(&mut st, "develop");
    press(&mut st, "tab");
    press(&mut st, "tab");
    assert_eq!(
        new_dialog(&st).focus,
        NewField::Args,
        "last: the fields users know keep their place"
    );
    type_text(&mut st, "--model 'big one'");
    press(&mut st, "backtab");
    press(&mut st, "backtab");
    press(&mut st, "backtab");
    assert_eq!(new_dialog(&st).focus, NewField::Name);
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, Request::New(req))] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(req.repo, PathBuf::from(REPO));
    assert_eq!(req.prompt.as_deref(), Some("fix it"));
    assert_eq!(req.profile.as_deref(), Some("aider"));
    assert_eq!(req.name.as_deref(), Some("fixer"));
    assert_eq!(req.base.as_deref(), Some("develop"));
    assert_eq!(req.args, ["--model", "big one"], "split as a shell would");
    assert_eq!(req.count, 1);
    assert_eq!(req.size, Some(pane_size(&st)));
    assert_eq!(req.env, st.env);
    assert!(new_dialog(&st).pending.is_some());
    // While the server works, keys other than cancel do nothing.
    assert_eq!(press(&mut st, "enter"), vec![]);
    // Created: the dialog closes and the new agent is selected once listed.
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Created(vec!["fixer".into()]))));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.mode, Mode::Normal);
    let mut agents = st.agents.clone();
    agents.push(fixtures::agent(REPO, "fixer", "starting", 9));
    let fx = update(&mut st, Msg::Agents(Ok(agents)));
    assert_eq!(st.selected, Some(key("fixer")));
    assert_eq!(
        fx,
        vec![
            Effect::Detach { id: 100 },
            Effect::Attach { id: fx_attach(&fx), target: target("fixer") }
        ]
    );
}

/// Issue 15: the Count field started as `1`, so typing `2` made it `12`. The defaults are
/// placeholders, and a value the dialog offers (a profile picked with the arrows) is replaced by
/// the first keystroke, in every field.
#[test]
fn new_dialog_defaults_are_replaced_by_the_first_keystroke() {
    let mut st = demo();
    press(&mut st, "n");
    for f in NewField::ALL {
        assert_eq!(new_dialog(&st).field(f).text, "", "{f:?} starts empty (its default shown)");
    }
    type_text(&mut st, "fix it");
    while new_dialog(&st).focus != NewField::Count {
        press(&mut st, "tab");
    }
    type_text(&mut st, "2");
    assert_eq!(new_dialog(&st).count.text, "2", "typing 2 in Count gives 2");
    let fx = press(&mut st, "enter");
    let [Effect::Request(_, Request::New(req))] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!((req.count, req.profile.as_deref()), (2, Some("claude")), "defaults apply");

    // A typed profile is the profile, not something after the default's name.
    let mut st = demo();
    press(&mut st, "n");
    press(&mut st, "tab");
    type_text(&mut st, "codex");
    assert_eq!(new_dialog(&st).profile.text, "codex");

    // A profile offered by the arrows: typing replaces it, deleting clears it, moving the
    // cursor keeps it for editing; a paste replaces it too.
    press(&mut st, "ctrl-u");
    press(&mut st, "right");
    assert_eq!(new_dialog(&st).profile.text, "codex", "right: the next after the default");
    type_text(&mut st, "shell");
    assert_eq!(new_dialog(&st).profile.text, "shell");
    press(&mut st, "right");
    assert_eq!(new_dialog(&st).profile.text, "aider");
    press(&mut st, "backspace");
    assert_eq!(new_dialog(&st).profile.text, "", "the default shows again");
    press(&mut st, "right");
    press(&mut st, "ctrl-e");
    type_text(&mut st, "x");
    assert_eq!(new_dialog(&st).profile.text, "codexx", "after moving the cursor, typing edits");
    press(&mut st, "right");
    update(&mut st, Msg::Paste("gemini".into()));
    assert_eq!(new_dialog(&st).profile.text, "gemini");
}

fn fx_attach(fx: &[Effect]) -> u64 {
    attach_of(fx, "fixer").unwrap_or(0)
}

#[test]
fn new_dialog_refusals_stay_in_the_dialog_and_send_nothing() {
    // Several agents without a prompt.
    let mut st = demo();
    press(&mut st, "n");
    while new_dialog(&st).focus != NewField::Count {
        press(&mut st, "tab");
    }
    press(&mut st, "backspace");
    type_text(&mut st, "3");
    assert_eq!(press(&mut st, "enter"), vec![]);
    let d = new_dialog(&st);
    assert_eq!(d.focus, NewField::Prompt, "the offending field gets focus");
    assert!(d.error.as_ref().unwrap().contains("a prompt is required to start 3 agents"));

    for (field, text, why) in [
        (NewField::Name, "alpha", "an agent named 'alpha' already exists"),
        (NewField::Name, "Bad_Name", "has 'B'"),
        (NewField::Count, "0", "count '0' must be a number from 1 to 50"),
        (NewField::Count, "x", "must be a number"),
        (NewField::Profile, "nope", "no agent profile 'nope'"),
        (NewField::Base, "two words", "has spaces"),
        (NewField::Where, "nowhere:/srv/app", "no host 'nowhere' in your config"),
        (NewField::Where, "/elsewhere", "leave it empty for this repository, or give HOST:/path"),
        (NewField::Args, "--model 'open", "arguments '--model 'open'"),
    ] {
        let mut st = demo();
        press(&mut st, "n");
        while new_dialog(&st).focus != field {
            press(&mut st, "tab");
        }
        press(&mut st, "ctrl-u");
        type_text(&mut st, text);
        assert_eq!(press(&mut st, "enter"), vec![], "{text}");
        let d = new_dialog(&st);
        assert_eq!(d.focus, field);
        assert!(d.error.as_ref().unwrap().contains(why), "{text}: {:?}", d.error);
        // Editing clears the message; esc closes without effects.
        press(&mut st, "backspace");
        assert!(new_dialog(&st).error.is_none());
        assert_eq!(press(&mut st, "esc"), vec![]);
        assert_eq!(st.mode, Mode::Normal);
    }

    // The server's refusal (a base that does not exist) is shown in the dialog.
    let mut st = demo();
    press(&mut st, "n");
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    let why = "base 'nope' is not a branch, tag or commit of this repository";
    assert_eq!(update(&mut st, Msg::Reply(*id, Err(why.into()))), vec![]);
    let d = new_dialog(&st);
    assert_eq!(d.error.as_deref(), Some(why));
    assert!(d.pending.is_none());
}

#[test]
fn send_dialog_refuses_empty_and_sends_text() {
    let mut st = demo();
    press(&mut st, "i");
    assert_eq!(press(&mut st, "enter"), vec![]);
    let Mode::Dialog(Dialog::Send(d)) = &st.mode else { panic!() };
    assert!(d.error.as_ref().unwrap().contains("empty message"));
    type_text(&mut st, "run the tests");
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(
        *req,
        Request::Send { target: target("alpha"), text: "run the tests".into(), enter: true }
    );
    update(&mut st, Msg::Reply(*id, Ok(Reply::Ok)));
    assert_eq!(st.mode, Mode::Normal);
    assert_eq!(st.notice.as_ref().unwrap().text, "sent to alpha");
}

#[test]
fn remove_dialog_shows_the_refusal_then_offers_force() {
    let mut st = demo();
    press(&mut st, "D");
    assert_eq!(press(&mut st, "F"), vec![], "no force before the server has refused");
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*req, Request::Remove { target: target("alpha"), force: false, git_env: vec![] });
    let why = "agent 'alpha' has uncommitted work";
    assert_eq!(update(&mut st, Msg::Reply(*id, Err(why.into()))), vec![Effect::RefreshList]);
    let Mode::Dialog(Dialog::Remove(d)) = &st.mode else { panic!() };
    assert_eq!(d.refusal.as_deref(), Some(why));
    let fx = press(&mut st, "F");
    let [Effect::Request(id, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*req, Request::Remove { target: target("alpha"), force: true, git_env: vec![] });
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Note("kept branch corral/alpha".into()))));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.mode, Mode::Normal);
    assert!(st.notice.as_ref().unwrap().text.contains("kept branch"));
    // Cancel.
    let mut st = demo();
    press(&mut st, "D");
    assert_eq!(press(&mut st, "esc"), vec![]);
    assert_eq!(st.mode, Mode::Normal);
}

fn merge(name: &str, yes: bool) -> Request {
    Request::Merge {
        target: target(name),
        mode: MergeMode::Merge,
        keep: false,
        message: None,
        yes,
        git_env: vec![],
    }
}

#[test]
fn merge_dialog_confirms_then_lands_with_yes_only_for_a_working_agent() {
    // alpha is working: the dialog says so, and confirming is the explicit yes.
    let mut st = demo();
    assert_eq!(press(&mut st, "m"), vec![]);
    let Mode::Dialog(Dialog::Merge(d)) = &st.mode else { panic!("{:?}", st.mode) };
    assert_eq!(d.agent, key("alpha"));
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*req, merge("alpha", true));
    // While the server works, only cancel does anything.
    assert_eq!(press(&mut st, "enter"), vec![]);
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Note("merged into main".into()))));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.mode, Mode::Normal);
    let n = st.notice.clone().unwrap();
    assert!(!n.error && n.text == "merged alpha: merged into main", "{n:?}");
    // charlie is idle: no yes.
    let mut st = demo();
    press(&mut st, "3");
    press(&mut st, "m");
    let fx = press(&mut st, "enter");
    let [Effect::Request(_, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*req, merge("charlie", false));
    // Cancel sends nothing.
    let mut st = demo();
    press(&mut st, "m");
    assert_eq!(press(&mut st, "esc"), vec![]);
    assert_eq!(st.mode, Mode::Normal);
}

#[test]
fn merge_conflicts_and_errors_stay_in_the_dialog() {
    let mut st = demo();
    press(&mut st, "2");
    press(&mut st, "m");
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    let paths = vec!["src/pay.rs".to_string()];
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Conflict(paths.clone()))));
    assert_eq!(fx, vec![Effect::RefreshList]);
    let Mode::Dialog(Dialog::Merge(d)) = &st.mode else { panic!("{:?}", st.mode) };
    assert_eq!(d.conflict.as_ref(), Some(&paths));
    assert_eq!(d.pending, None);
    // Trying again asks again; an error is shown in the dialog.
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    update(&mut st, Msg::Reply(*id, Err("base branch main is checked out dirty".into())));
    let Mode::Dialog(Dialog::Merge(d)) = &st.mode else { panic!("{:?}", st.mode) };
    assert_eq!(d.error.as_deref(), Some("base branch main is checked out dirty"));
    assert_eq!(d.conflict, None);
    // A conflict for a dialog already closed becomes an error notice.
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    press(&mut st, "esc");
    update(&mut st, Msg::Reply(*id, Ok(Reply::Conflict(paths))));
    let n = st.notice.clone().unwrap();
    assert!(n.error && n.text.contains("would conflict in src/pay.rs"), "{n:?}");
}

#[test]
fn sync_key_syncs_and_shows_the_result_or_conflict() {
    let mut st = demo();
    // Commits a sync makes are by the user of this dashboard (issue 15): their identity goes
    // with the request, and nothing else of their environment.
    st.env.push(("GIT_AUTHOR_NAME".into(), "Ada".into()));
    let fx = press(&mut st, "s");
    let [Effect::Request(id, req)] = &fx[..] else { panic!("{fx:?}") };
    let git_env = vec![("GIT_AUTHOR_NAME".to_string(), "Ada".to_string())];
    assert_eq!(*req, Request::Sync { target: target("alpha"), git_env });
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Note("2 commits from main".into()))));
    assert_eq!(fx, vec![Effect::RefreshList]);
    let n = st.notice.clone().unwrap();
    assert!(!n.error && n.text == "synced alpha: 2 commits from main", "{n:?}");
    let fx = press(&mut st, "s");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    let paths = vec!["src/a.rs".to_string(), "src/b.rs".to_string()];
    update(&mut st, Msg::Reply(*id, Ok(Reply::Conflict(paths))));
    let n = st.notice.clone().unwrap();
    assert!(n.error && n.text.contains("would conflict in src/a.rs, src/b.rs"), "{n:?}");
    let fx = press(&mut st, "s");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    update(&mut st, Msg::Reply(*id, Err("the worktree has uncommitted changes".into())));
    let n = st.notice.clone().unwrap();
    assert!(n.error && n.text == "sync alpha: the worktree has uncommitted changes", "{n:?}");
}

#[test]
fn queue_key_and_tab_in_the_send_dialog_enqueue() {
    // I opens the dialog set to queue.
    let mut st = demo();
    press(&mut st, "I");
    for c in ["h", "i"] {
        press(&mut st, c);
    }
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*req, Request::Enqueue { target: target("alpha"), text: "hi".into() });
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Ok)));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.mode, Mode::Normal);
    assert_eq!(st.notice.clone().unwrap().text, "queued for alpha");
    // In the send dialog, tab switches between sending now and queueing.
    let mut st = demo();
    press(&mut st, "i");
    press(&mut st, "x");
    press(&mut st, "tab");
    let Mode::Dialog(Dialog::Send(d)) = &st.mode else { panic!("{:?}", st.mode) };
    assert!(d.queue);
    press(&mut st, "tab");
    let fx = press(&mut st, "enter");
    let [Effect::Request(_, req)] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*req, Request::Send { target: target("alpha"), text: "x".into(), enter: true });
}

#[test]
fn diff_key_computes_the_patch_off_the_loop_then_scrolls_and_closes() {
    let mut st = demo();
    let fx = press(&mut st, "d");
    let [Effect::Diff { id, worktree, base }] = &fx[..] else { panic!("{fx:?}") };
    let alpha = st.agent(&key("alpha")).unwrap();
    assert_eq!((worktree, base.as_str()), (&alpha.worktree, "main"));
    let Mode::Diff(d) = &st.mode else { panic!("{:?}", st.mode) };
    assert_eq!(d.pending, Some(*id));
    // A stale answer is ignored; the awaited one fills the view.
    assert_eq!(update(&mut st, Msg::Diff(id + 1, Ok("junk".into()))), vec![]);
    assert_eq!(update(&mut st, Msg::Diff(*id, Ok(fixtures::PATCH.into()))), vec![]);
    let Mode::Diff(d) = &st.mode else { panic!("{:?}", st.mode) };
    assert_eq!(d.pending, None);
    let files: Vec<_> =
        d.files.iter().map(|f| (f.path.as_str(), f.insertions, f.deletions)).collect();
    assert_eq!(files, vec![("src/pay.rs", 2, 1), ("src/cart.rs", 1, 0), ("tests/refund.rs", 3, 0)]);
    let offset = |st: &AppState| match &st.mode {
        Mode::Diff(d) => d.offset,
        m => panic!("{m:?}"),
    };
    let cursor = |st: &AppState| match &st.mode {
        Mode::Diff(d) => d.review.cursor,
        m => panic!("{m:?}"),
    };
    // Movement keys move the cursor (and send nothing); the view follows it and never moves
    // past the last line.
    assert_eq!(press(&mut st, "j"), vec![]);
    assert_eq!((cursor(&st), offset(&st)), (1, 0));
    press(&mut st, "k");
    press(&mut st, "k");
    assert_eq!(cursor(&st), 0);
    press(&mut st, "pgdn");
    assert_eq!(cursor(&st), usize::from(areas(&st).main.height / 2));
    for _ in 0..5 {
        press(&mut st, "pgdn");
    }
    let last = fixtures::PATCH.lines().count() - 1;
    assert_eq!(cursor(&st), last);
    let rows = crate::tui::review::layout(areas(&st).main.height - 2, 3, false).1;
    assert!(offset(&st) <= last && last < offset(&st) + rows, "the cursor's line in view");
    // q closes the view, not the dashboard.
    assert_eq!(press(&mut st, "q"), vec![]);
    assert_eq!(st.mode, Mode::Normal);
    assert!(!st.quit);
    // An error is shown in the view; esc closes it.
    let fx = press(&mut st, "d");
    let [Effect::Diff { id, .. }] = &fx[..] else { panic!("{fx:?}") };
    update(&mut st, Msg::Diff(*id, Err("the worktree is gone".into())));
    let Mode::Diff(d) = &st.mode else { panic!("{:?}", st.mode) };
    assert_eq!(d.error.as_deref(), Some("the worktree is gone"));
    press(&mut st, "esc");
    assert_eq!(st.mode, Mode::Normal);
}

#[test]
fn action_errors_are_shown_not_printed() {
    let mut st = demo();
    let fx = press(&mut st, "x");
    let [Effect::Request(id, _)] = &fx[..] else { panic!() };
    update(&mut st, Msg::Reply(*id, Err("agent 'alpha' is busy starting or stopping".into())));
    let n = st.notice.clone().unwrap();
    assert!(n.error && n.text == "stop alpha: agent 'alpha' is busy starting or stopping");
    // The next key dismisses it (and still does its job).
    press(&mut st, "j");
    assert!(st.notice.is_none());
    assert_eq!(st.selected, Some(key("bravo")));
}

// ---- messages ----

#[test]
fn resize_is_debounced_and_resizes_only_the_viewed_agent() {
    let mut st = demo();
    let t0 = Instant::now();
    assert_eq!(update(&mut st, Msg::Resize(100, 30, t0)), vec![]);
    assert_eq!(update(&mut st, Msg::Resize(90, 30, t0)), vec![]);
    assert_eq!(update(&mut st, Msg::Tick(t0 + Duration::from_millis(50))), vec![]);
    let due = st.next_deadline().unwrap();
    let fx = update(&mut st, Msg::Tick(due));
    assert_eq!(fx, vec![Effect::Resize { id: 100, size: pane_size(&st) }]);
    assert_eq!(pane_size(&st), Size::new(90 - 25, 28));
    assert_eq!(st.next_deadline(), None);
    // In the grid nothing is viewed alone, so nothing is resized.
    let mut st = demo();
    press(&mut st, "g");
    update(&mut st, Msg::Resize(100, 30, t0));
    assert_eq!(update(&mut st, Msg::Tick(t0 + Duration::from_secs(1))), vec![]);
}

#[test]
fn screens_apply_to_their_attachment_only() {
    let mut st = demo();
    let new = fixtures::screen(pane_size(&st), "fresh output");
    let old = st.panes[&key("alpha")].screen.clone().unwrap();
    st.dirty = false;
    assert_eq!(update(&mut st, Msg::Screen(100, new.diff(Some(&old)))), vec![]);
    assert_eq!(st.panes[&key("alpha")].screen.as_ref().unwrap(), &new);
    assert!(st.dirty);
    // A bell from a screen on view reaches the user's terminal; from a stale stream, nothing.
    assert_eq!(update(&mut st, Msg::Bell(100)), vec![Effect::Bell]);
    assert_eq!(update(&mut st, Msg::Bell(7)), vec![]);
    // A stale stream (detached) changes nothing.
    st.dirty = false;
    update(&mut st, Msg::Screen(7, old.diff(Some(&new))));
    assert_eq!(st.panes[&key("alpha")].screen.as_ref().unwrap(), &new);
    assert!(!st.dirty);
}

#[test]
fn a_restarted_agent_is_attached_again_and_a_list_without_changes_draws_nothing() {
    let mut st = demo();
    let mut agents = st.agents.clone();
    st.dirty = false;
    assert_eq!(update(&mut st, Msg::Agents(Ok(agents.clone()))), vec![]);
    assert!(!st.dirty, "same list");
    agents[0].status_reason = "activity: output 0.2s ago".into();
    update(&mut st, Msg::Agents(Ok(agents.clone())));
    assert!(!st.dirty, "only the reason changed");
    st.panes.get_mut(&key("alpha")).unwrap().scroll = Some(Default::default());
    agents[0].pid = Some(4242);
    let fx = update(&mut st, Msg::Agents(Ok(agents.clone())));
    assert!(st.dirty);
    assert!(st.panes[&key("alpha")].scroll.is_none(), "a new process: the old history is gone");
    assert_eq!(fx[0], Effect::Detach { id: 100 });
    assert!(attach_of(&fx, "alpha").is_some());
    // The selected agent removed elsewhere: the one now at its place is selected.
    agents.remove(0);
    update(&mut st, Msg::Agents(Ok(agents)));
    assert_eq!(st.selected, Some(key("bravo")));
    assert!(!st.panes.contains_key(&key("alpha")));
}

#[test]
fn mouse_selects_focuses_scrolls_and_reaches_agents_that_want_it() {
    let mut st = demo();
    let ar = areas(&st);
    let click = |x, y| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    // Rows: heading, alpha (2 lines), bravo (2 lines)…
    update(&mut st, Msg::Mouse(click(3, ar.list.y + 3)));
    assert_eq!(st.selected, Some(key("bravo")));
    let fx = update(&mut st, Msg::Mouse(click(ar.pane.x + 2, ar.pane.y + 2)));
    assert_eq!(st.mode, Mode::Focus, "click on the screen focuses");
    let id = st.attachments[&key("bravo")].id;
    assert!(fx.iter().all(|e| !matches!(e, Effect::Input { .. })));
    // The agent uses the mouse: it gets the click in its own coordinates.
    st.panes.get_mut(&key("bravo")).unwrap().screen.as_mut().unwrap().modes =
        Modes { mouse: MouseMode::Click, sgr_mouse: true, ..Modes::default() };
    let fx = update(&mut st, Msg::Mouse(click(ar.pane.x + 2, ar.pane.y + 1)));
    assert_eq!(fx, vec![Effect::Input { id, bytes: b"\x1b[<0;3;2M".to_vec() }]);
    // It does not: the wheel scrolls history.
    st.panes.get_mut(&key("bravo")).unwrap().screen.as_mut().unwrap().modes = Modes::default();
    let wheel = MouseEvent { kind: MouseEventKind::ScrollUp, ..click(ar.pane.x, ar.pane.y) };
    let fx = update(&mut st, Msg::Mouse(wheel));
    assert!(matches!(&fx[..], [Effect::Request(_, Request::Tail { .. })]), "{fx:?}");
    // A full-screen program with alternate scroll: the wheel becomes arrow keys.
    let mut st = demo();
    press(&mut st, "enter");
    set_modes(&mut st, Modes { alt_screen: true, alternate_scroll: true, ..Modes::default() });
    let fx = update(&mut st, Msg::Mouse(wheel));
    assert_eq!(fx, input(b"\x1b[A\x1b[A\x1b[A"));
}

/// Issue 15: a config broken while the dashboard runs is reported once in full and then in the
/// footer, and the dashboard keeps the last good settings; fixed, the new settings apply.
#[test]
fn a_broken_config_keeps_the_last_good_settings_and_a_fixed_one_applies() {
    let mut st = demo();
    let before = (st.keymap.clone(), st.profiles.clone(), st.default_profile.clone());
    let why = "/h/.config/corral/config.toml: line 2: key 'worktrees': unknown field `worktrees`";
    assert_eq!(update(&mut st, Msg::Config(Err(why.into()))), vec![]);
    assert_eq!(st.config_error.as_deref(), Some(why));
    let notice = st.notice.clone().unwrap();
    assert!(notice.error && notice.text.contains(why), "{notice:?}");
    assert_eq!((st.keymap.clone(), st.profiles.clone(), st.default_profile.clone()), before);
    // Keys work as before: n opens the new-agent dialog.
    press(&mut st, "esc");
    press(&mut st, "n");
    new_dialog(&st);
    press(&mut st, "esc");
    // The same error again is not announced again.
    st.notice = None;
    update(&mut st, Msg::Config(Err(why.into())));
    assert!(st.notice.is_none());

    let settings = crate::tui::state::Settings {
        keymap: st.keymap.clone(),
        profiles: vec!["shell".into()],
        default_profile: "shell".into(),
    };
    update(&mut st, Msg::Config(Ok(settings)));
    assert_eq!(st.config_error, None);
    assert_eq!((st.profiles.clone(), st.default_profile.as_str()), (vec!["shell".into()], "shell"));
}

#[test]
fn land_key_queues_the_selected_agent() {
    let mut st = demo();
    let fx = press(&mut st, "L");
    let [Effect::Request(id, Request::Land { repo, names, mode, keep, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!((repo, names.as_slice()), (&target("alpha").repo, ["alpha".to_string()].as_slice()));
    assert_eq!((*mode, *keep), (crate::proto::MergeMode::Merge, false));
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Ok)));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.notice.clone().unwrap().text, "alpha is in the landing queue");
    let fx = press(&mut st, "L");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    update(&mut st, Msg::Reply(*id, Err("agent 'alpha' is already in the landing queue".into())));
    assert!(st.notice.clone().unwrap().text.contains("already in the landing queue"));
}

#[test]
fn gate_output_key_follows_the_running_gate_and_reads_once_more_when_it_ends() {
    let mut st = demo();
    // Not gated yet: it says how to land it, and opens nothing.
    assert_eq!(press(&mut st, "o"), vec![]);
    assert_eq!(st.mode, Mode::Normal);
    let n = st.notice.clone().unwrap().text;
    assert!(n.contains("alpha's landing gate has not run: land it with L"), "{n}");
    let log = PathBuf::from("/state/gates/repo-1/alpha.log");
    let all = st.agents.clone();
    let listed = |state: &str, with_alpha: bool| {
        let mut agents = all.clone();
        agents.retain(|a| with_alpha || a.name != "alpha");
        for a in agents.iter_mut().filter(|a| a.name == "alpha") {
            a.landing = Some(crate::proto::Landing {
                position: None,
                state: state.into(),
                reason: None,
                gate_log: Some(log.clone()),
            });
        }
        Msg::Agents(Ok(agents))
    };
    update(&mut st, listed("gating", true));
    let fx = press(&mut st, "o");
    let [Effect::ReadGate { id, path }] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(path, &log);
    let rows = usize::from(areas(&st).main.height - 3);
    // Colours and carriage-return progress are dropped, tabs expanded; the view starts at the end.
    let text: String =
        (1..=200).map(|i| format!("\x1b[32mline {i}\x1b[0m\tok\r\n")).collect::<String>()
            + "compiling 10%\rcompiling 100%\n";
    update(&mut st, Msg::Gate(*id, Ok(text)));
    let gate = |st: &AppState| match &st.mode {
        Mode::Gate(g) => g.clone(),
        m => panic!("{m:?}"),
    };
    let g = gate(&st);
    assert_eq!(g.lines[199], format!("line 200{}ok", " ".repeat(8)));
    assert_eq!(g.lines[200], "compiling 100%");
    assert_eq!((g.offset, g.follow), (201 - rows, true));
    // Scrolling back stops following: new output does not move the view.
    press(&mut st, "k");
    assert_eq!((gate(&st).offset, gate(&st).follow), (200 - rows, false));
    let fx = update(&mut st, listed("gating", true));
    let [Effect::ReadGate { id, .. }] = &fx[..] else { panic!("{fx:?}") };
    let more: String = (1..=300).map(|i| format!("line {i}\n")).collect();
    update(&mut st, Msg::Gate(*id, Ok(more.clone())));
    assert_eq!(gate(&st).offset, 200 - rows);
    // End follows again.
    press(&mut st, "end");
    assert_eq!((gate(&st).offset, gate(&st).follow), (300 - rows, true));
    // The gate passed and the agent landed (it left the list): one last read, then none.
    let fx = update(&mut st, listed("gating", false));
    let Some(Effect::ReadGate { id, .. }) = fx.first() else { panic!("{fx:?}") };
    update(&mut st, Msg::Gate(*id, Ok(more + "test result: ok\n")));
    assert_eq!(gate(&st).state, "landed");
    assert_eq!(gate(&st).lines.last().map(String::as_str), Some("test result: ok"));
    let fx = update(&mut st, listed("gating", false));
    assert!(!fx.iter().any(|e| matches!(e, Effect::ReadGate { .. })), "{fx:?}");
    // The same key closes it.
    press(&mut st, "o");
    assert_eq!(st.mode, Mode::Normal);
    // A log that cannot be read says so in the view.
    update(&mut st, listed("blocked", true));
    press(&mut st, "k");
    let fx = press(&mut st, "o");
    let [Effect::ReadGate { id, .. }] = &fx[..] else { panic!("{fx:?}") };
    update(&mut st, Msg::Gate(*id, Err("cannot read /x: gone".into())));
    assert_eq!(gate(&st).error.as_deref(), Some("cannot read /x: gone"));
    let fx = update(&mut st, listed("blocked", true));
    assert!(!fx.iter().any(|e| matches!(e, Effect::ReadGate { .. })), "{fx:?}");
    press(&mut st, "esc");
    assert_eq!(st.mode, Mode::Normal);
}

#[test]
fn the_new_dialog_offers_and_creates_on_another_hosts_repository() {
    let mut st = demo();
    let mut far = fixtures::agent("/srv/app", "far", "idle", 9);
    far.repo = PathBuf::from("/srv/app");
    update(
        &mut st,
        Msg::Host { name: "box".into(), result: Ok(vec![far]), at: std::time::SystemTime::now() },
    );
    press(&mut st, "n");
    while new_dialog(&st).focus != NewField::Where {
        press(&mut st, "tab");
    }
    // Here (empty), then the host's repositories.
    press(&mut st, "right");
    assert_eq!(new_dialog(&st).place.text, "box:/srv/app");
    press(&mut st, "right");
    assert_eq!(new_dialog(&st).place.text, "");
    press(&mut st, "left");
    // A profile only the host may have is for its server to check; the agent gets the host's
    // environment, not this terminal's.
    for _ in 0..2 {
        press(&mut st, "tab");
    }
    assert_eq!(new_dialog(&st).focus, NewField::Profile);
    type_text(&mut st, "hostonly");
    let fx = press(&mut st, "enter");
    let [Effect::Request(_, Request::New(n))] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(n.repo, PathBuf::from("box:/srv/app"));
    assert_eq!(n.profile.as_deref(), Some("hostonly"));
    assert!(n.env.is_empty());
}

fn diff_of_alpha(st: &mut AppState) {
    let fx = press(st, "d");
    let [Effect::Diff { id, .. }] = &fx[..] else { panic!("{fx:?}") };
    update(st, Msg::Diff(*id, Ok(fixtures::PATCH.into())));
}

fn review_of(st: &AppState) -> &crate::tui::review::Review {
    match &st.mode {
        Mode::Diff(d) => &d.review,
        m => panic!("{m:?}"),
    }
}

/// Move the diff view's cursor to the first patch line containing `needle`.
fn cursor_to(st: &mut AppState, needle: &str) {
    press(st, "home");
    for _ in 0..200 {
        let Mode::Diff(d) = &st.mode else { panic!() };
        if d.lines[d.review.cursor].contains(needle) {
            return;
        }
        press(st, "j");
    }
    panic!("no line with {needle}");
}

#[test]
fn diff_view_comments_on_lines_and_hunks_then_sends_them_as_one_review() {
    let mut st = demo();
    diff_of_alpha(&mut st);
    // A file header is no place for a comment: the user is told where to put the cursor.
    assert_eq!(press(&mut st, "c"), vec![]);
    assert!(review_of(&st).input.is_none());
    assert!(st.notice.as_ref().unwrap().text.contains("put the cursor on a line of a hunk"));
    // A line: c, type, enter.
    cursor_to(&mut st, "(amount * 99 + 50)");
    press(&mut st, "c");
    type_text(&mut st, "use the helper");
    assert_eq!(press(&mut st, "enter"), vec![], "enter keeps the comment, sends nothing yet");
    // A hunk, from its header; esc drops a comment being typed.
    cursor_to(&mut st, "@@ -1,3 +1,4 @@");
    press(&mut st, "c");
    type_text(&mut st, "why?");
    press(&mut st, "enter");
    cursor_to(&mut st, "rounds_half_up");
    press(&mut st, "c");
    type_text(&mut st, "dropped");
    press(&mut st, "esc");
    let r = review_of(&st);
    let made: Vec<_> =
        r.comments.iter().map(|(_, c)| (c.path.as_str(), c.line, c.end, c.text.as_str())).collect();
    assert_eq!(
        made,
        [("src/pay.rs", 12, None, "use the helper"), ("src/cart.rs", 1, Some(4), "why?")]
    );
    // C lists them; x deletes the selected one; esc closes the list.
    press(&mut st, "C");
    assert_eq!(review_of(&st).listing, Some(0));
    press(&mut st, "j");
    press(&mut st, "x");
    assert_eq!(review_of(&st).comments.len(), 1);
    press(&mut st, "esc");
    assert_eq!(review_of(&st).listing, None);
    assert!(matches!(st.mode, Mode::Diff(_)), "esc closed the list, not the view");
    // enter sends them all as one request; the server's note is shown and the comments go.
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, Request::Review { target: t, comments, queue })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!((t, comments.len(), *queue), (&target("alpha"), 1, false));
    assert_eq!(comments[0].excerpt, ["+    (amount * 99 + 50) / 100"]);
    assert_eq!(press(&mut st, "enter"), vec![], "one request at a time");
    update(
        &mut st,
        Msg::Reply(*id, Ok(Reply::Note("queued for agent 'alpha' (1 waiting)".into()))),
    );
    assert!(review_of(&st).comments.is_empty());
    assert_eq!(st.notice.as_ref().unwrap().text, "queued for agent 'alpha' (1 waiting)");
}

#[test]
fn a_refused_review_keeps_its_comments() {
    let mut st = demo();
    diff_of_alpha(&mut st);
    cursor_to(&mut st, "+use crate::pay::refund;");
    press(&mut st, "c");
    type_text(&mut st, "x");
    press(&mut st, "enter");
    let fx = press(&mut st, "enter");
    let [Effect::Request(id, _)] = &fx[..] else { panic!("{fx:?}") };
    update(&mut st, Msg::Reply(*id, Err("agent 'alpha' is busy".into())));
    assert_eq!(review_of(&st).comments.len(), 1);
    assert!(st.notice.as_ref().unwrap().text.contains("the comments are kept"));
    assert!(review_of(&st).sending.is_none(), "it can be sent again");
}

fn grouped_demo() -> AppState {
    let mut st = demo();
    for a in
        st.agents.iter_mut().filter(|a| ["alpha", "bravo", "charlie"].contains(&a.name.as_str()))
    {
        a.group = Some("alpha".into());
    }
    st
}

fn entries() -> Vec<crate::proto::CompareEntry> {
    ["alpha", "bravo", "charlie"]
        .iter()
        .map(|n| crate::proto::CompareEntry {
            name: n.to_string(),
            status: "idle".into(),
            diff: None,
            files: vec![format!("{n}.rs")],
            gate: None,
        })
        .collect()
}

#[test]
fn compare_view_asks_with_the_gate_shows_the_selected_diff_and_picks_after_confirming() {
    // Not in a group: told why, nothing asked.
    let mut st = demo();
    assert_eq!(press(&mut st, "b"), vec![]);
    assert!(st.notice.as_ref().unwrap().text.contains("was not started with others"));

    let mut st = grouped_demo();
    let fx = press(&mut st, "b");
    let [Effect::Request(id, Request::Compare { group, gate, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!((group.as_str(), *gate), ("alpha", true));
    let fx = update(&mut st, Msg::Reply(*id, Ok(Reply::Compare(entries()))));
    let [Effect::Diff { id: diff, worktree, .. }] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(worktree, &st.agent(&key("alpha")).unwrap().worktree);
    update(&mut st, Msg::Diff(*diff, Ok(fixtures::PATCH.into())));
    let Mode::Compare(v) = &st.mode else { panic!("{:?}", st.mode) };
    assert!(v.diff.iter().any(|l| l.contains("Round half up")));
    // Another selection, another diff.
    let fx = press(&mut st, "j");
    let [Effect::Diff { worktree, .. }] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(worktree, &st.agent(&key("bravo")).unwrap().worktree);
    // enter asks first; esc takes the question back; enter twice picks.
    assert_eq!(press(&mut st, "enter"), vec![]);
    press(&mut st, "esc");
    assert!(matches!(&st.mode, Mode::Compare(v) if v.confirm.is_none()));
    press(&mut st, "enter");
    let fx = press(&mut st, "enter");
    let [Effect::Request(pick, Request::Pick { target: t, queue, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!((t, *queue), (&target("bravo"), false));
    let fx = update(&mut st, Msg::Reply(*pick, Ok(Reply::Note("landed agent 'bravo'".into()))));
    assert_eq!(fx, vec![Effect::RefreshList]);
    assert_eq!(st.mode, Mode::Normal);
    assert_eq!(st.notice.as_ref().unwrap().text, "landed agent 'bravo'");

    // L then enter: through the landing queue.
    let mut st = grouped_demo();
    let fx = press(&mut st, "b");
    let [Effect::Request(id, _)] = &fx[..] else { panic!() };
    update(&mut st, Msg::Reply(*id, Ok(Reply::Compare(entries()))));
    press(&mut st, "L");
    let fx = press(&mut st, "enter");
    let [Effect::Request(_, Request::Pick { target: t, queue: true, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(t, &target("alpha"));
}
