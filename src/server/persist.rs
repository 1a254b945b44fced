//! What survives the server: each repository's agents in `<common git dir>/corral/agents.json`, and
//! the list of repositories the server knows in the state directory. Files are written atomically
//! (temp file, fsync, rename), so a crash leaves the old or the new version, never half of one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::paths;
use crate::term::Size;

const FORMAT: u32 = 1;

/// The persistent part of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub name: String,
    pub repo: PathBuf,
    pub profile: String,
    pub branch: String,
    pub base: String,
    pub base_commit: String,
    pub worktree: PathBuf,
    pub port: Option<u16>,
    pub prompt: Option<String>,
    /// A UUID fixed for the agent's life, for agents that can resume a conversation by id.
    pub session: String,
    /// Unix seconds.
    pub created: u64,
    pub size: Size,
    /// The argv that was started last, for `ls` and for restarting.
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    /// Messages waiting for the agent to be idle (`corral send --queue`), oldest first.
    #[serde(default)]
    pub queue: Vec<String>,
    /// The worktree and branch were there before the agent (`new --worktree`): removing the
    /// agent leaves them.
    #[serde(default)]
    pub adopted: bool,
    /// Arguments appended to the profile's command (`new ... -- ARGS`), at start and restart.
    #[serde(default)]
    pub args: Vec<String>,
    /// Set on the agents made by one `new -n N` (N > 1): the first one's name (best-of-N).
    #[serde(default)]
    pub group: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AgentsFile {
    format: u32,
    agents: Vec<AgentRecord>,
}

pub fn agents_file(common_dir: &Path) -> PathBuf {
    common_dir.join("corral").join("agents.json")
}

pub fn save_agents(common_dir: &Path, agents: &[AgentRecord]) -> Result<()> {
    let file = AgentsFile { format: FORMAT, agents: agents.to_vec() };
    let json = serde_json::to_vec_pretty(&file).context("cannot encode agent records")?;
    paths::write_atomic(&agents_file(common_dir), &json)
}

pub fn load_agents(common_dir: &Path) -> Result<Vec<AgentRecord>> {
    let path = agents_file(common_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let file: AgentsFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a corral agents file", path.display()))?;
    Ok(file.agents)
}

fn repos_file() -> PathBuf {
    paths::state_dir().join("repos.json")
}

/// Repositories (main worktree roots) that had agents.
pub fn load_repos() -> Vec<PathBuf> {
    std::fs::read(repos_file())
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<PathBuf>>(&b).ok())
        .unwrap_or_default()
}

pub fn save_repos(repos: &[PathBuf]) -> Result<()> {
    let json = serde_json::to_vec_pretty(repos).context("cannot encode repository list")?;
    paths::write_atomic(&repos_file(), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = AgentRecord {
            name: "fix-1".into(),
            repo: "/r".into(),
            profile: "shell".into(),
            branch: "corral/fix-1".into(),
            base: "main".into(),
            base_commit: "0123".into(),
            worktree: "/w/fix-1".into(),
            port: Some(4100),
            prompt: Some("fix it".into()),
            session: "u".into(),
            created: 5,
            size: Size::new(80, 24),
            argv: vec!["sh".into()],
            exit_code: None,
            queue: vec!["later".into()],
            adopted: true,
            args: vec!["--model".into(), "x".into()],
            group: Some("fix".into()),
        };
        save_agents(tmp.path(), std::slice::from_ref(&rec)).unwrap();
        assert_eq!(load_agents(tmp.path()).unwrap(), vec![rec]);
    }

    #[test]
    fn missing_file_is_no_agents_and_garbage_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(load_agents(tmp.path()).unwrap().is_empty());
        std::fs::create_dir_all(tmp.path().join("corral")).unwrap();
        std::fs::write(agents_file(tmp.path()), "{nope").unwrap();
        let err = format!("{:#}", load_agents(tmp.path()).unwrap_err());
        assert!(err.contains("agents.json"), "{err}");
    }
}
