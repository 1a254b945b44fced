//! A dashboard full of made-up agents, one in every status, with screens produced by our own
//! emulator from escape sequences like real agents print. For snapshot and update tests and the
//! frame benchmark; nothing here talks to a server.

use std::path::PathBuf;

use ratatui::layout::Rect;

use super::keymap::Keymap;
use super::state::{AppState, Attachment, Pane};
use crate::proto::{AgentInfo, ConflictInfo, DiffStat};
use crate::term::{Screen, Size, new_emulator};

pub const REPO: &str = "/home/dev/shop";

pub fn agent(repo: &str, name: &str, status: &str, n: u64) -> AgentInfo {
    let creating = status == "starting" && name == "foxtrot";
    let running = status != "exited" && !creating;
    AgentInfo {
        name: name.into(),
        repo: PathBuf::from(repo),
        profile: ["claude", "codex", "shell", "gemini", "aider", "opencode"][(n % 6) as usize]
            .into(),
        status: status.into(),
        status_since: 1_700_000_000 + n,
        status_reason: "fixture".into(),
        branch: format!("corral/{name}"),
        base: "main".into(),
        base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
        worktree: PathBuf::from(format!(
            "/home/dev/.local/share/corral/worktrees/shop-1a2b3c/{name}"
        )),
        pid: running.then_some(1000 + n as u32),
        exit_code: (status == "exited").then_some(1),
        port: Some(4100 + n as u16),
        size: Size::new(80, 24),
        created: 1_700_000_000 + n,
        prompt: Some(format!("task for {name}")),
        queued: if n == 2 { 2 } else { 0 },
        diff: match n {
            0 => Some(DiffStat { files: 3, insertions: 42, deletions: 7, ahead: 2, behind: 0 }),
            1 => Some(DiffStat { files: 1, insertions: 5, deletions: 0, ahead: 0, behind: 1 }),
            _ => None,
        },
        conflicts: if n == 1 {
            vec![ConflictInfo {
                with: "alpha".into(),
                base: false,
                paths: vec!["src/pay.rs".into()],
            }]
        } else {
            Vec::new()
        },
        landing: None,
        args: Vec::new(),
        group: None,
    }
}

/// A screen of `size` showing what `bytes` draw.
pub fn screen(size: Size, bytes: &str) -> Screen {
    let mut e = new_emulator(size, 100);
    e.feed(bytes.as_bytes());
    e.screen()
}

/// What each fixture agent shows.
pub fn content(name: &str) -> String {
    match name {
        "alpha" => "\x1b[1;32m$\x1b[0m cargo test\r\n   \x1b[1;32mCompiling\x1b[0m shop v0.3.0\r\n    \x1b[1;32mFinished\x1b[0m `test` profile in 4.2s\r\nrunning 12 tests\r\ntest cart::adds ... \x1b[32mok\x1b[0m\r\ntest cart::removes ... \x1b[32mok\x1b[0m\r\ntest pay::refunds ... \x1b[31mFAILED\x1b[0m\r\n\r\n\x1b[33m✻ Fixing the refund rounding…\x1b[0m \x1b[2m(esc to interrupt)\x1b[0m\r\n".into(),
        "bravo" => "\x1b[1m● Update(src/cart.rs)\x1b[0m\r\n  ⎿  Updated src/cart.rs with 3 additions\r\n\r\n\x1b[7m Do you want to make this edit to src/pay.rs? \x1b[0m\r\n\x1b[36m ❯ 1. Yes\x1b[0m\r\n   2. Yes, and don't ask again this session\r\n   3. No, and tell Claude what to do differently\r\n".into(),
        "charlie" => "\x1b[34m╭──────────────────────────────╮\x1b[0m\r\n\x1b[34m│\x1b[0m > \x1b[2mTry \"write a test for…\"\x1b[0m   \x1b[34m│\x1b[0m\r\n\x1b[34m╰──────────────────────────────╯\x1b[0m\r\n  ? for shortcuts\r\n".into(),
        "delta" => "Running migrations…\r\n\x1b[33mwaiting for lock on db/schema.lock\x1b[0m\r\n".into(),
        "echo" => "$ npm run build\r\n\x1b[31merror\x1b[0m TS2304: Cannot find name 'Cart'.\r\n\x1b[31mnpm ERR!\x1b[0m code 1\r\n$ exit 1\r\n".into(),
        "golf" => "中文 wide ✓ and e\u{301} marks\r\n\x1b[38;2;255;100;0mtrue colour\x1b[0m \x1b[48;5;22m 256 bg \x1b[0m\r\n".into(),
        _ => format!("$ echo {name}\r\n{name}\r\n$ "),
    }
}

/// Six agents, one per status, the first selected (and attached as id 100); `foxtrot` is still
/// being created.
pub fn demo(area: Rect) -> AppState {
    let mut st = AppState::new(Keymap::defaults(), Some(PathBuf::from(REPO)), area);
    st.profiles = ["aider", "claude", "codex", "gemini", "opencode", "shell"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    st.default_profile = "claude".into();
    st.env = vec![("PATH".into(), "/usr/bin".into())];
    let statuses = [
        ("alpha", "working"),
        ("bravo", "needs-input"),
        ("charlie", "idle"),
        ("delta", "stuck"),
        ("echo", "exited"),
        ("foxtrot", "starting"),
    ];
    st.agents =
        statuses.iter().enumerate().map(|(i, (n, s))| agent(REPO, n, s, i as u64)).collect();
    st.loaded = true;
    let size = super::ui::pane_size(&st);
    for (i, (n, _)) in statuses.iter().enumerate() {
        if *n == "foxtrot" {
            continue;
        }
        let key = (PathBuf::from(REPO), n.to_string());
        st.panes.insert(
            key.clone(),
            Pane { screen: Some(screen(size, &content(n))), note: None, scroll: None },
        );
        // Only the selected agent streams in the list view.
        if i == 0 {
            st.attachments.insert(key, Attachment { id: 100, pid: st.agents[i].pid, live: true });
        }
    }
    st.selected = Some((PathBuf::from(REPO), "alpha".into()));
    st.dirty = false;
    st
}

/// A patch as `git diff` prints it, for the diff view.
pub const PATCH: &str = "diff --git a/src/pay.rs b/src/pay.rs
index 1111111..2222222 100644
--- a/src/pay.rs
+++ b/src/pay.rs
@@ -10,7 +10,8 @@ pub fn refund(amount: Cents) -> Cents {
     let fee = amount / 100;
-    amount - fee
+    // Round half up, as the bank does.
+    (amount * 99 + 50) / 100
 }
 
 #[cfg(test)]
diff --git a/src/cart.rs b/src/cart.rs
index 3333333..4444444 100644
--- a/src/cart.rs
+++ b/src/cart.rs
@@ -1,3 +1,4 @@
+use crate::pay::refund;
 pub struct Cart {
\titems: Vec<Item>,
 }
diff --git a/tests/refund.rs b/tests/refund.rs
new file mode 100644
index 0000000..5555555
--- /dev/null
+++ b/tests/refund.rs
@@ -0,0 +1,3 @@
+#[test]
+fn rounds_half_up() {
+    assert_eq!(shop::pay::refund(150), 149);
";
