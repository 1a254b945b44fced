//! Logs go to a file in the state directory, never to a terminal the user is looking at. The
//! filter comes from `CORRAL_LOG` (tracing's env-filter syntax), `info` by default.

use anyhow::{Context, Result};
use tracing_appender::non_blocking::WorkerGuard;

use crate::paths;

/// Log to `<state dir>/<name>.log`; keep the guard alive for as long as logs should be written.
pub fn init_file(name: &str) -> Result<WorkerGuard> {
    let dir = paths::state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let appender = tracing_appender::rolling::never(&dir, format!("{name}.log"));
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
