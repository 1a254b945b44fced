//! Where corral keeps things on disk: config, state (logs, known repositories), data (worktrees) and
//! the runtime directory with the server's socket. Pure path logic plus the runtime directory's
//! ownership check; nothing here talks to git or the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => home().join(fallback),
    }
}

/// `~/.config/corral/config.toml` (or under `$XDG_CONFIG_HOME`).
pub fn user_config_file() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("corral").join("config.toml")
}

/// Logs, the list of repositories the server knows, approvals of repository config files.
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("corral")
}

/// Worktrees live under here by default.
pub fn data_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("corral")
}

/// The runtime directory: `$CORRAL_RUNTIME_DIR`, else `${TMPDIR:-/tmp}/corral-<uid>`, as tmux does,
/// so that an ssh login and a desktop terminal of the same user find the same server whether or not
/// either has `XDG_RUNTIME_DIR`.
pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORRAL_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let tmp = std::env::var_os("TMPDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    tmp.join(format!("corral-{}", rustix::process::getuid().as_raw()))
}

pub fn socket_path() -> PathBuf {
    runtime_dir().join("server.sock")
}

/// Create the runtime directory if needed (mode 0700) and refuse it unless it is a directory owned
/// by us that no one else can enter: otherwise another user could put a socket of theirs in our way.
pub fn ensure_runtime_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create runtime directory {}", dir.display()))?;
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read runtime directory {}", dir.display()));
        }
        Ok(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot read runtime directory {}", dir.display()))?;
    let uid = rustix::process::getuid().as_raw();
    if !meta.is_dir() {
        bail!("runtime directory {} is not a directory; refusing to use it", dir.display());
    }
    if meta.uid() != uid {
        bail!(
            "runtime directory {} is owned by uid {}, not by you (uid {uid}); refusing to use it",
            dir.display(),
            meta.uid()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "runtime directory {} has mode {:o}; it must be 0700 (chmod 700 it); refusing to use it",
            dir.display(),
            meta.permissions().mode() & 0o777
        );
    }
    // Keep the mode exact even if umask or a parent left it looser on creation.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

/// A short stable hash (FNV-1a, hex) for naming per-repository directories.
pub fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", (h >> 32) as u32 ^ h as u32)
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsynced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("path has no parent directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn runtime_dir_is_created_private_and_loose_modes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rt");
        ensure_runtime_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_runtime_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("must be 0700"), "{err}");
    }

    #[test]
    fn runtime_dir_that_is_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = ensure_runtime_dir(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_content() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a/b.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
