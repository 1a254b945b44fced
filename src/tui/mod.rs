//! The dashboard: every agent live, switch with a key, keys to the one in focus.
//!
//! Shaped as The Elm Architecture: [`state::AppState`] is owned by the UI loop alone;
//! [`update::update`] turns a [`state::Msg`] (a key, a screen diff from the server, a reply) into
//! a new state and a list of [`state::Effect`]s without doing any I/O; [`ui::render`] draws the
//! state and nothing else; [`app`] is the loop that reads the terminal and the server, runs the
//! effects, and draws when something changed, at most 60 times a second. Keys are data
//! ([`keymap`], from `[keys]` in the config). The dashboard is only a client of the server: it
//! owns no agent, so quitting it (or losing it) stops nothing. No git2, no PTYs, no blocking
//! calls on the loop.

pub mod action;
pub mod app;
pub mod compare;
#[doc(hidden)]
pub mod fixtures;
pub mod input;
pub mod keymap;
pub mod review;
pub mod state;
pub mod ui;
pub mod update;

pub use app::run;

/// The grid shows at most this many agents at once (the ones the 1–9 keys reach on its page).
pub const GRID_MAX: usize = 9;
