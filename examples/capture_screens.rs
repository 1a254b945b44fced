//! Record an agent's screens as text, for status-rule fixtures (tests/fixtures/screens/).
//!
//!     cargo run --example capture_screens -- REPO NAME OUT_DIR
//!
//! Attaches to agent NAME of repository REPO on the running server (without resizing it) and
//! writes every distinct screen it shows to OUT_DIR/NNNN.txt (exactly one line per row), until the
//! agent exits or the example is interrupted. Pick the telling ones and copy them into the fixtures.
#![allow(clippy::unwrap_used)]

use corral::client::Client;
use corral::proto::{ClientMsg, Reply, Request, ServerMsg, Target};
use corral::term::Screen;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, name, out] = args.as_slice() else {
        anyhow::bail!("usage: capture_screens REPO NAME OUT_DIR");
    };
    std::fs::create_dir_all(out)?;
    let mut c = Client::connect_existing().await?.ok_or_else(|| anyhow::anyhow!("no server"))?;
    let target = Target { repo: repo.into(), name: name.clone() };
    c.send(&ClientMsg::Request(Request::Attach {
        target,
        size: None,
        tty: None,
        colors: None,
        keys: None,
    }))
    .await?;
    let mut screen: Option<Screen> = None;
    let mut last_text = String::new();
    let mut n = 0u32;
    loop {
        match c.recv().await? {
            ServerMsg::Reply(Reply::Error(e)) => anyhow::bail!("{e}"),
            ServerMsg::Screen(update) => {
                let s = screen.get_or_insert_with(|| Screen::blank(update.size));
                if update.full && s.size != update.size {
                    *s = Screen::blank(update.size);
                }
                s.apply(&update);
                let text: String =
                    s.lines.iter().map(|l| l.text() + "\n").collect::<Vec<_>>().concat();
                if text != last_text {
                    n += 1;
                    let t = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_secs_f64();
                    std::fs::write(format!("{out}/{n:04}.txt"), &text)?;
                    std::fs::write(format!("{out}/{n:04}.t"), format!("{t:.3}\n"))?;
                    last_text = text;
                }
            }
            ServerMsg::Exited(_) => return Ok(()),
            _ => {}
        }
    }
}
