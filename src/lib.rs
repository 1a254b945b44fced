//! corral as a library: the binary in `main.rs` is a thin shell over these modules, and the
//! integration tests drive the real binary while using the emulator and protocol from here.
//! See docs/ARCHITECTURE.md for what each module owns.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod failpoint;
pub mod git;
pub mod hosts;
pub mod logging;
pub mod mux;
pub mod paths;
pub mod proto;
pub mod queue;
pub mod review;
pub mod server;
pub mod status;
pub mod term;
pub mod trust;
pub mod tui;
