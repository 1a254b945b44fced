//! Other machines (SPEC §12): each runs its own corral server, reached over OpenSSH. Nothing new
//! listens anywhere: `ssh … corral proxy` joins the ssh session's stdin and stdout to that user's
//! server socket on the host, and the client speaks the same framed protocol through it as through
//! its own socket.
//!
//! Hosts come from the user's own config file only (`[hosts.NAME]`): a repository's `.corral.toml`
//! naming one needs `corral trust` like any command it defines, and is not read here at all.

use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};

use crate::config::{self, HostConfig};

/// A host as a command reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub config: HostConfig,
}

impl Host {
    /// The command that logs in and runs the proxy there.
    pub fn argv(&self) -> Vec<String> {
        let mut v = self.config.ssh.clone();
        v.extend(self.config.command.iter().cloned());
        v.push("proxy".into());
        v
    }
}

static SELECTED: OnceLock<Option<Host>> = OnceLock::new();

/// The host this command talks to (`--host`), chosen once when the command starts; `None` is
/// this machine.
pub fn select(name: Option<&str>) -> Result<()> {
    let host = match name {
        None => None,
        Some(n) => Some(find(n)?),
    };
    SELECTED.set(host).map_err(|_| anyhow!("the host was chosen twice"))
}

pub fn selected() -> Option<&'static Host> {
    SELECTED.get().and_then(Option::as_ref)
}

/// Every configured host, by name.
pub fn all() -> Result<Vec<Host>> {
    let file = crate::paths::user_config_file();
    let loaded = config::load(&file, None)?;
    let mut out = Vec::new();
    for (name, c) in loaded.config.hosts {
        check(&name, &c, &file)?;
        out.push(Host { name, config: c });
    }
    Ok(out)
}

fn find(name: &str) -> Result<Host> {
    let hosts = all()?;
    if let Some(h) = hosts.iter().find(|h| h.name == name) {
        return Ok(h.clone());
    }
    let file = crate::paths::user_config_file();
    if hosts.is_empty() {
        bail!(
            "no host '{name}': {} defines no [hosts.NAME] (e.g. ssh = [\"ssh\", \"user@box\"])",
            file.display()
        );
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    bail!("no host '{name}' in {}; hosts: {}", file.display(), names.join(", "))
}

fn check(name: &str, c: &HostConfig, file: &std::path::Path) -> Result<()> {
    if c.ssh.first().is_none_or(|p| p.trim().is_empty()) {
        bail!(
            "{}: [hosts.{name}] ssh is empty: give the command that logs in, e.g. [\"ssh\", \"user@box\"]",
            file.display()
        );
    }
    if c.command.first().is_none_or(|p| p.trim().is_empty()) {
        bail!(
            "{}: [hosts.{name}] command is empty: how corral runs there, e.g. [\"corral\"]",
            file.display()
        );
    }
    Ok(())
}

/// How the dashboard names a repository on another host: `HOST:/path`. A path on this machine
/// is absolute, so it never reads as one of these.
pub fn qualify(host: &str, repo: &std::path::Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{host}:{}", repo.display()))
}

/// The host and the path there, for a repository named by [`qualify`].
pub fn split(path: &std::path::Path) -> Option<(String, std::path::PathBuf)> {
    let s = path.to_str()?;
    if s.starts_with('/') {
        return None;
    }
    let (host, p) = s.split_once(':')?;
    p.starts_with('/').then(|| (host.to_string(), std::path::PathBuf::from(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_qualified_repository_splits_back_and_local_paths_never_do() {
        let q = qualify("box", Path::new("/srv/a:b"));
        assert_eq!(split(&q), Some(("box".into(), "/srv/a:b".into())));
        assert_eq!(split(Path::new("/tmp/box:/x")), None);
        assert_eq!(split(Path::new("relative:thing")), None);
    }
}
