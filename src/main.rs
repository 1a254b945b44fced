//! corral: run many coding agents side by side, each in its own PTY and git worktree.
#![allow(dead_code)]

mod config;
mod git;
mod paths;
mod proto;
mod term;

fn main() {}
