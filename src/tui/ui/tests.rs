//! Snapshots of every view at 80x24 and 120x40, with agents in every status.

use std::path::PathBuf;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use super::render;
use crate::tui::fixtures::{self, REPO};
use crate::tui::state::{
    AppState, Dialog, DiffView, GateView, MergeDialog, Mode, NewDialog, NewField, Notice,
    RemoveDialog, Scroll, SendDialog, TextField, View,
};

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn draw(st: &AppState) -> String {
    let mut t = Terminal::new(TestBackend::new(st.area.width, st.area.height)).unwrap();
    t.draw(|f| {
        render(st, f);
        // The focused pane is painted straight onto the terminal, not in the frame.
        super::pane::render_direct(st, f.buffer_mut());
    })
    .unwrap();
    t.backend().to_string()
}

/// Snapshot `make(size)` at both sizes, named `<name>_<cols>x<rows>`.
fn snap(name: &str, make: impl Fn(Rect) -> AppState) {
    for (w, h) in SIZES {
        let st = make(Rect::new(0, 0, w, h));
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(&st));
    }
}

fn key(name: &str) -> (PathBuf, String) {
    (PathBuf::from(REPO), name.to_string())
}

#[test]
fn list_with_every_status() {
    snap("list", fixtures::demo);
}

#[test]
fn list_selecting_each_status() {
    for name in ["bravo", "echo", "foxtrot"] {
        snap(&format!("list_selected_{name}"), |a| {
            let mut st = fixtures::demo(a);
            st.selected = Some(key(name));
            st
        });
    }
}

#[test]
fn focus_mode() {
    snap("focus", |a| {
        let mut st = fixtures::demo(a);
        st.mode = Mode::Focus;
        st
    });
}

#[test]
fn grid_of_six() {
    snap("grid", |a| {
        let mut st = fixtures::demo(a);
        st.view = View::Grid;
        st.selected = Some(key("bravo"));
        st
    });
}

#[test]
fn grid_of_two() {
    snap("grid_two", |a| {
        let mut st = fixtures::demo(a);
        st.agents.truncate(2);
        st.view = View::Grid;
        st
    });
}

#[test]
fn new_agent_dialog() {
    snap("new_dialog", |a| {
        let mut st = fixtures::demo(a);
        let mut d = NewDialog::new();
        d.prompt = TextField::new("fix the refund rounding in pay.rs");
        d.focus = NewField::Prompt;
        st.mode = Mode::Dialog(Dialog::New(Box::new(d)));
        st
    });
}

#[test]
fn new_agent_dialog_refused() {
    snap("new_dialog_refused", |a| {
        let mut st = fixtures::demo(a);
        let mut d = NewDialog::new();
        d.profile = TextField::new("shell");
        d.base = TextField::new("no-such-branch");
        d.focus = NewField::Base;
        d.error =
            Some("base 'no-such-branch' is not a branch, tag or commit of this repository".into());
        st.mode = Mode::Dialog(Dialog::New(Box::new(d)));
        st
    });
}

#[test]
fn send_dialog() {
    snap("send_dialog", |a| {
        let mut st = fixtures::demo(a);
        st.mode = Mode::Dialog(Dialog::Send(SendDialog {
            agent: key("alpha"),
            text: TextField::new("also run the integration tests"),
            queue: false,
            error: None,
            pending: None,
        }));
        st
    });
}

#[test]
fn remove_dialog_refused_offers_force() {
    snap("remove_dialog_refused", |a| {
        let mut st = fixtures::demo(a);
        st.selected = Some(key("charlie"));
        st.mode = Mode::Dialog(Dialog::Remove(RemoveDialog {
            agent: key("charlie"),
            refusal: Some("branch corral/charlie of agent 'charlie' has commits that are not on main; merge it, or `corral rm --force charlie` removes the worktree and keeps the branch".into()),
            pending: None,
        }));
        st
    });
}

#[test]
fn merge_dialog_shows_stat_conflicts_and_working() {
    // alpha is working with changes; bravo has a predicted conflict and was refused.
    snap("merge_dialog", |a| {
        let mut st = fixtures::demo(a);
        st.mode = Mode::Dialog(Dialog::Merge(MergeDialog {
            agent: key("alpha"),
            conflict: None,
            error: None,
            pending: None,
        }));
        st
    });
    snap("merge_dialog_conflict", |a| {
        let mut st = fixtures::demo(a);
        st.selected = Some(key("bravo"));
        st.mode = Mode::Dialog(Dialog::Merge(MergeDialog {
            agent: key("bravo"),
            conflict: Some(vec!["src/pay.rs".into()]),
            error: None,
            pending: None,
        }));
        st
    });
}

fn diff_view(a: Rect, offset: usize) -> AppState {
    let mut st = fixtures::demo(a);
    let mut d = DiffView {
        agent: key("alpha"),
        lines: Vec::new(),
        files: Vec::new(),
        offset: 0,
        pending: None,
        error: None,
        review: Default::default(),
    };
    d.set_patch(fixtures::PATCH);
    d.offset = offset;
    st.mode = Mode::Diff(d);
    st
}

/// The diff view with two comments made, the cursor on a third line and a comment being typed
/// there; with `listing`, the list of comments open over it instead.
fn diff_with_comments(a: Rect, listing: bool) -> AppState {
    let mut st = diff_view(a, 0);
    let Mode::Diff(d) = &mut st.mode else { unreachable!() };
    let at = |d: &DiffView, needle: &str| d.lines.iter().position(|l| l.contains(needle)).unwrap();
    for (needle, text) in [
        ("(amount * 99 + 50)", "Use the bank's rounding helper instead of inlining it."),
        ("@@ -1,3 +1,4 @@", "Why does the cart need refund?"),
    ] {
        let line = at(d, needle);
        let mut c = crate::review::locate(&d.lines, line).unwrap().comment();
        c.text = text.into();
        d.review.comments.push((line, c));
    }
    let rows = crate::tui::review::layout(a.height - 3, d.files.len(), !listing).1;
    d.review.cursor = at(d, "pub struct Cart");
    crate::tui::review::move_cursor(d, 0, rows);
    if listing {
        d.review.listing = Some(1);
    } else {
        let c = crate::review::locate(&d.lines, d.review.cursor).unwrap().comment();
        d.review.input = Some((d.review.cursor, c, TextField::new("keep it")));
    }
    st
}

#[test]
fn diff_view_with_comments_and_their_list() {
    snap("diff_with_comments", |a| diff_with_comments(a, false));
    snap("diff_comment_list", |a| diff_with_comments(a, true));
    let st = diff_with_comments(Rect::new(0, 0, 120, 40), false);
    let text = draw(&st);
    assert!(text.contains("comment on src/cart.rs:2 › keep it"), "{text}");
    assert!(text.contains("· at src/cart.rs:2 · 2 comments"), "{text}");
    assert_eq!(text.matches('●').count(), 2, "each commented line is marked: {text}");
}

/// The compare view of a group of three, the second selected (with its diff), a gate set.
fn compare_view(a: Rect, confirm: Option<bool>) -> AppState {
    use crate::proto::{CompareEntry, DiffStat, GateRun};
    let mut st = fixtures::demo(a);
    let gate =
        |passed: bool, summary: &str| Some(GateRun { passed, summary: summary.into(), log: None });
    let entry =
        |name: &str, status: &str, files: Vec<&str>, ins: u32, del: u32, gate| CompareEntry {
            name: name.into(),
            status: status.into(),
            diff: Some(DiffStat {
                files: files.len() as u32,
                insertions: ins,
                deletions: del,
                ahead: 1,
                behind: 0,
            }),
            files: files.into_iter().map(str::to_string).collect(),
            gate,
        };
    st.mode = Mode::Compare(Box::new(crate::tui::compare::CompareView {
        repo: PathBuf::from(REPO),
        group: "refund-1".into(),
        entries: vec![
            entry("refund-1", "idle", vec!["src/pay.rs"], 4, 1, gate(false, "failed (exit 101)")),
            entry(
                "refund-2",
                "idle",
                vec!["src/pay.rs", "src/cart.rs", "tests/refund.rs"],
                6,
                1,
                gate(true, "passed"),
            ),
            entry("refund-3", "working", vec!["src/bank.rs"], 40, 12, gate(false, "timed out")),
        ],
        selected: 1,
        pending: None,
        diff: fixtures::PATCH.lines().map(|l| l.replace('\t', "    ")).collect(),
        diff_pending: None,
        confirm,
        picking: None,
        error: None,
    }));
    st
}

#[test]
fn compare_view_side_by_side() {
    snap("compare", |a| compare_view(a, None));
    snap("compare_confirm", |a| compare_view(a, Some(false)));
    let text = draw(&compare_view(Rect::new(0, 0, 120, 40), None));
    assert!(text.contains("▶ refund-2"), "{text}");
    assert!(text.contains("── diff of refund-2"), "{text}");
}

#[test]
fn diff_view_lists_files_and_colours_the_patch() {
    snap("diff_view", |a| diff_view(a, 0));
    snap("diff_view_scrolled", |a| diff_view(a, 14));
    let st = diff_view(Rect::new(0, 0, 80, 24), 0);
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| render(&st, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let row = |needle: &str| {
        (0..24u16)
            .find(|y| {
                (0..80u16).map(|x| buf[(x, *y)].symbol()).collect::<String>().contains(needle)
            })
            .unwrap()
    };
    let first = |y: u16, c: &str| (0..80u16).find(|x| buf[(*x, y)].symbol() == c).unwrap();
    let added = row("+    // Round half up");
    assert_eq!(buf[(first(added, "+"), added)].fg, ratatui::style::Color::Green);
    let removed = row("-    amount - fee");
    assert_eq!(buf[(first(removed, "-"), removed)].fg, ratatui::style::Color::Red);
}

#[test]
fn overlays_show_conflicts_first_then_the_diff_stat() {
    let mut a = fixtures::agent(REPO, "kilo", "idle", 3);
    a.port = None;
    assert_eq!(super::overlays(&a), Vec::<String>::new());
    a.diff = Some(crate::proto::DiffStat { files: 0, ..Default::default() });
    assert_eq!(super::overlays(&a), Vec::<String>::new(), "no changes: nothing to say");
    a.diff =
        Some(crate::proto::DiffStat { files: 2, insertions: 9, deletions: 4, ahead: 1, behind: 0 });
    a.conflicts = vec![
        crate::proto::ConflictInfo { with: "lima".into(), base: false, paths: vec!["a".into()] },
        crate::proto::ConflictInfo { with: "main".into(), base: true, paths: vec!["b".into()] },
    ];
    assert_eq!(super::overlays(&a), ["conflicts with lima, main (base)", "+9 -4 2 files"]);
    a.landing = Some(crate::proto::Landing {
        position: Some(2),
        state: "waiting".into(),
        reason: None,
        gate_log: None,
    });
    assert_eq!(super::overlays(&a)[1], "landing #2");
    a.landing = Some(crate::proto::Landing {
        position: None,
        state: "blocked".into(),
        reason: Some("conflict in a".into()),
        gate_log: None,
    });
    assert_eq!(super::overlays(&a)[1], "landing blocked");
}

#[test]
fn send_dialog_set_to_queue() {
    snap("send_dialog_queue", |a| {
        let mut st = fixtures::demo(a);
        st.mode = Mode::Dialog(Dialog::Send(SendDialog {
            agent: key("alpha"),
            text: TextField::new("then update the changelog"),
            queue: true,
            error: None,
            pending: None,
        }));
        st
    });
}

#[test]
fn help_overlay() {
    snap("help", |a| {
        let mut st = fixtures::demo(a);
        st.mode = Mode::Help;
        st
    });
}

#[test]
fn error_notice() {
    snap("error_notice", |a| {
        let mut st = fixtures::demo(a);
        st.notice = Some(Notice {
            text: "restart echo: agent 'echo' is busy starting or stopping".into(),
            error: true,
        });
        st
    });
}

/// Issue 15: a broken config is named in the footer (the list goes on with the last good config),
/// leaving help and quit.
#[test]
fn config_error_in_the_footer() {
    snap("config_error", |a| {
        let mut st = fixtures::demo(a);
        st.config_error = Some(
            "/home/u/.config/corral/config.toml: line 2: key 'worktrees': unknown field `worktrees`"
                .into(),
        );
        st
    });
}

#[test]
fn scrolled_back() {
    snap("scrolled", |a| {
        let mut st = fixtures::demo(a);
        let lines: Vec<_> = (0..200)
            .map(|i| {
                fixtures::screen(crate::term::Size::new(60, 1), &format!("history line {i}")).lines
                    [0]
                .clone()
            })
            .collect();
        st.panes.get_mut(&key("alpha")).unwrap().scroll =
            Some(Scroll { offset: 50, lines, complete: true, fetching: None });
        st
    });
}

#[test]
fn empty_and_connecting() {
    snap("empty", |a| {
        let mut st = fixtures::demo(a);
        st.agents.clear();
        st.panes.clear();
        st.selected = None;
        st
    });
    snap("connecting", |a| AppState::new(crate::tui::keymap::Keymap::defaults(), None, a));
}

#[test]
fn several_repositories_are_grouped() {
    snap("grouped", |a| {
        let mut st = fixtures::demo(a);
        st.agents.truncate(3);
        st.agents.push(fixtures::agent("/home/dev/blog", "posts", "idle", 7));
        st.agents.push(fixtures::agent("/home/dev/blog", "theme", "working", 8));
        st
    });
}

#[test]
fn wide_characters_and_colours_are_kept() {
    let mut st = fixtures::demo(Rect::new(0, 0, 80, 24));
    let size = crate::tui::ui::pane_size(&st);
    st.panes.get_mut(&key("alpha")).unwrap().screen =
        Some(fixtures::screen(size, &fixtures::content("golf")));
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| render(&st, f)).unwrap();
    let buf = t.backend().buffer();
    let pane = crate::tui::ui::areas(&st).pane;
    assert_eq!(buf[(pane.x, pane.y)].symbol(), "中");
    assert_eq!(buf[(pane.x + 2, pane.y)].symbol(), "文");
    let row1 = pane.y + 1;
    assert_eq!(buf[(pane.x, row1)].fg, ratatui::style::Color::Rgb(255, 100, 0));
    let bg_cell = (pane.x..pane.x + 40).find(|x| buf[(*x, row1)].symbol() == "2").unwrap();
    assert_eq!(buf[(bg_cell, row1)].bg, ratatui::style::Color::Indexed(22));
    insta::assert_snapshot!("wide_and_colour_80x24", t.backend().to_string());
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (w, h) in [(1, 1), (10, 3), (30, 8), (2, 40), (200, 2)] {
        for mode in [Mode::Normal, Mode::Focus, Mode::Help] {
            let mut st = fixtures::demo(Rect::new(0, 0, w, h));
            st.mode = mode.clone();
            draw(&st);
            st.view = View::Grid;
            draw(&st);
        }
        let mut st = fixtures::demo(Rect::new(0, 0, w, h));
        st.mode = Mode::Dialog(Dialog::New(Box::default()));
        draw(&st);
        draw(&diff_view(Rect::new(0, 0, w, h), 3));
    }
}

fn gate_view(a: Rect) -> AppState {
    let mut st = fixtures::demo(a);
    let mut g = GateView {
        agent: key("alpha"),
        path: "/home/dev/.local/state/corral/gates/shop-1a2b3c/alpha.log".into(),
        lines: Vec::new(),
        offset: 0,
        follow: true,
        state: "blocked".into(),
        pending: None,
        error: None,
    };
    let text: String = (1..=40)
        .map(|i| format!("test refund::case_{i} ... ok\n"))
        .chain(["test refund::rounding ... FAILED\n".to_string(), "error: 1 test failed\n".into()])
        .collect();
    g.set_text(&text, usize::from(a.height.saturating_sub(4)));
    st.mode = Mode::Gate(g);
    st
}

#[test]
fn gate_view_shows_the_end_of_the_gates_output() {
    snap("gate_view", gate_view);
}
