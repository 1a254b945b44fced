//! corral: run many coding agents side by side, each in its own PTY and git worktree.
//!
//! `main` parses the command line, runs the command and maps the outcome to an exit code: 0
//! success, 1 failure (one line on stderr), 2 usage error, 3 merge conflict.

use clap::Parser;
use corral::{cli, commands, server};

fn main() {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        // The server builds its own runtime; it must not run inside the client's.
        Some(cli::Command::Server {
            foreground,
            detach,
            resume,
            listen_fd,
            lock_fd,
            handover_version: false,
            handover_check: None,
            upgrade: None,
        }) if foreground || resume.is_some() => {
            let resume = match (resume, listen_fd, lock_fd) {
                (Some(state), Some(listen_fd), Some(lock_fd)) => {
                    Some(server::Resume { state, listen_fd, lock_fd })
                }
                _ => None,
            };
            match server::run(detach, resume) {
                Ok(()) => 0,
                Err(e) => report(&e),
            }
        }
        cmd => {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("corral: cannot start: {e}");
                    std::process::exit(1);
                }
            };
            let cmd = cmd.unwrap_or(cli::Command::Ui);
            if let Err(e) = corral::hosts::select(cli.host.as_deref()) {
                std::process::exit(report(&e));
            }
            match rt.block_on(commands::run(cli.repo, cmd)) {
                Ok(code) => code,
                Err(e) => report(&e),
            }
        }
    };
    std::process::exit(code);
}

fn report(e: &anyhow::Error) -> i32 {
    // Output cut short by a closed pipe (`corral tail x | head`) is not a failure.
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return 0;
    }
    eprintln!("corral: {e:#}");
    1
}
