//! Approval of repository config files that define commands (SPEC §10): a `.corral.toml` arrives
//! with a clone, so commands it defines (setup, agent commands) run only after the user approved
//! that exact content once. Approvals are kept in the state directory by file path and SHA-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::paths;

fn approvals_file() -> PathBuf {
    paths::state_dir().join("trusted.json")
}

fn digest(content: &str) -> String {
    Sha256::digest(content.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn load() -> BTreeMap<String, String> {
    std::fs::read(approvals_file())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn is_trusted(path: &Path, content: &str) -> bool {
    load().get(&path.to_string_lossy().into_owned()) == Some(&digest(content))
}

/// Record that the user approved `content` of `path`.
pub fn approve(path: &Path, content: &str) -> Result<()> {
    let mut all = load();
    all.insert(path.to_string_lossy().into_owned(), digest(content));
    let json = serde_json::to_vec_pretty(&all).context("cannot encode approvals")?;
    paths::write_atomic(&approvals_file(), &json)
}
