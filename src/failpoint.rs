//! Named points inside the server's multi-step changes where a test can make the server die with
//! SIGKILL, so that every step boundary of `new`, `rm`, `merge`, `sync` and of the recovery that
//! follows can be hit deterministically (tests/crash.rs).
//!
//! `CORRAL_TEST_CRASH_AT=<name>` (or `<name>#<n>`, the n-th time that point is reached) arms the
//! server at start-up; nothing else reads it, so a client run with it set only passes it on to a
//! server it starts. Unarmed, a point costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

const VAR: &str = "CORRAL_TEST_CRASH_AT";

static ARMED: AtomicBool = AtomicBool::new(false);
static TARGET: OnceLock<(String, u32)> = OnceLock::new();
static SEEN: AtomicU32 = AtomicU32::new(0);

/// Read `CORRAL_TEST_CRASH_AT`; called once by the server before it does anything else.
pub fn arm_from_env() {
    let Some(spec) = std::env::var(VAR).ok().filter(|s| !s.is_empty()) else { return };
    let (name, nth) = match spec.rsplit_once('#') {
        Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
        None => (spec, 1),
    };
    tracing::warn!("test crash point armed: {name} (hit {nth})");
    if TARGET.set((name, nth.max(1))).is_ok() {
        ARMED.store(true, Ordering::Release);
    }
}

/// A step boundary. When the server was armed with this name (and this is the n-th time it is
/// reached), the process kills itself with SIGKILL: no destructor, buffer flush or lock release
/// runs, exactly as when a user or the OOM killer kills it.
pub fn hit(name: &str) {
    if !ARMED.load(Ordering::Acquire) {
        return;
    }
    let Some((want, nth)) = TARGET.get() else { return };
    if want != name {
        return;
    }
    if SEEN.fetch_add(1, Ordering::AcqRel) + 1 == *nth {
        tracing::warn!("test crash point {name}: killing the server");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should delivery lag, nothing more may happen here.
        loop {
            std::thread::park();
        }
    }
}
