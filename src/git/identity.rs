//! Who corral's own commits (snapshots of an agent's uncommitted work, merge and squash commits,
//! replayed commits) are by: the identity the git CLI would use for the user who asked. The
//! server runs in the environment of whichever client started it, so the asking client's identity
//! variables travel with its request and are read here, not from the server's environment; the
//! repository's config (local, then global) is read as git reads it. corral's own name is only
//! the last resort, for what neither says.

use git2::{Repository, Signature};

use super::worktree::{GitError, git_err};

/// The environment variables git reads for an identity.
pub const ENV_VARS: [&str; 5] =
    ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"];

const FALLBACK_NAME: &str = "corral";
const FALLBACK_EMAIL: &str = "corral@localhost";

/// The part of a client's environment that decides a git identity (to send with a request).
pub fn identity_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter().filter(|(k, _)| ENV_VARS.contains(&k.as_str())).cloned().collect()
}

/// An author and a committer, stamped now.
pub struct Identity {
    pub author: Signature<'static>,
    pub committer: Signature<'static>,
}

impl Identity {
    /// As git does: `GIT_AUTHOR_NAME`, else `author.name`, else `user.name`; `GIT_AUTHOR_EMAIL`,
    /// else `author.email`, else `user.email`, else `EMAIL`; the committer the same with its own
    /// variables and keys. Empty values count as unset.
    pub fn resolve(repo: &Repository, env: &[(String, String)]) -> Result<Identity, GitError> {
        let config = repo.config().map_err(git_err("reading the git config"))?;
        let var = |key: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let conf = |key: &str| config.get_string(key).ok().filter(|v| !v.is_empty());
        let one = |role: &str| -> Result<Signature<'static>, GitError> {
            let upper = role.to_ascii_uppercase();
            let name = var(&format!("GIT_{upper}_NAME"))
                .or_else(|| conf(&format!("{role}.name")))
                .or_else(|| conf("user.name"))
                .unwrap_or_else(|| FALLBACK_NAME.into());
            let email = var(&format!("GIT_{upper}_EMAIL"))
                .or_else(|| conf(&format!("{role}.email")))
                .or_else(|| conf("user.email"))
                .or_else(|| var("EMAIL"))
                .unwrap_or_else(|| FALLBACK_EMAIL.into());
            Signature::now(&name, &email)
                .map_err(git_err(format!("making the {role} signature '{name} <{email}>'")))
        };
        Ok(Identity { author: one("author")?, committer: one("committer")? })
    }
}
