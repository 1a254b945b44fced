//! Copying the main worktree's untracked files (`.env` and the like) into an agent's worktree.
//!
//! Patterns are gitignore-style globs matched against paths relative to the repository root: a pattern
//! without a slash matches a name at any depth, one with a slash is anchored at the root, `*`, `?` and
//! `[...]` stay within one path component, `**` spans components, a trailing `/` matches directories
//! only (and then everything under them), and `!` re-excludes; the last matching pattern wins. The walk
//! never enters `.git`, nested repositories, or directories git ignores as a whole (node_modules,
//! target) unless an anchored pattern names a path inside them.

use std::fs;
use std::io;
use std::path::Path;

use git2::{Index, Repository};

use super::worktree::GitError;

struct Pattern {
    negated: bool,
    dir_only: bool,
    /// Components; an unanchored pattern starts with `**`.
    segs: Vec<String>,
    anchored: bool,
}

impl Pattern {
    fn parse(raw: &str) -> Option<Pattern> {
        let mut p = raw.trim();
        if p.is_empty() || p.starts_with('#') {
            return None;
        }
        let negated = p.starts_with('!');
        if negated {
            p = &p[1..];
        }
        let dir_only = p.ends_with('/');
        let p = p.trim_end_matches('/');
        let anchored = p.contains('/');
        let p = p.trim_start_matches('/');
        if p.is_empty() {
            return None;
        }
        let mut segs: Vec<String> =
            p.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        if !anchored {
            segs.insert(0, "**".to_string());
        }
        Some(Pattern { negated, dir_only, segs, anchored })
    }

    fn matches(&self, path: &[&str], is_dir: bool) -> bool {
        (is_dir || !self.dir_only) && match_segs(&self.segs, path)
    }

    /// Whether something strictly inside directory `dir` could match, and whether that is because the
    /// pattern names the directory explicitly (not through `**`).
    fn inside(&self, dir: &[&str]) -> Inside {
        for (k, seg) in self.segs.iter().enumerate() {
            let Some(d) = dir.get(k) else {
                return Inside::Named;
            };
            if seg == "**" {
                return Inside::ViaStar;
            }
            if !glob_seg(seg.as_bytes(), d.as_bytes()) {
                return Inside::No;
            }
        }
        // The pattern is used up at or above `dir`: it matches `dir` or an ancestor, not its contents.
        Inside::No
    }
}

#[derive(PartialEq, Eq)]
enum Inside {
    No,
    ViaStar,
    Named,
}

/// Match pattern components against path components; `**` matches zero or more components.
fn match_segs(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segs(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                glob_seg(first.as_bytes(), name.as_bytes()) && match_segs(rest, path_rest)
            }
            None => false,
        },
    }
}

/// Match one component against a glob: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\x`.
fn glob_seg(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, name index it has swallowed up to).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pat[p..], name[n]) {
                        if matched {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if pat[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pat`: whether `c` is in it, and the class's length. `None` when
/// the bracket is not closed (then it is a literal `[`).
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        let lo = pat[i];
        if lo == b']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            if (lo..=pat[i + 2]).contains(&c) {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Last matching pattern decides; `None` when none matches.
fn decide(patterns: &[Pattern], path: &[&str], is_dir: bool) -> Option<bool> {
    patterns.iter().rev().find(|p| p.matches(path, is_dir)).map(|p| !p.negated)
}

struct Walk<'a> {
    repo: &'a Repository,
    index: Index,
    root: &'a Path,
    worktree: &'a Path,
    patterns: Vec<Pattern>,
    copied: Vec<String>,
}

pub fn copy_untracked(
    root: &Path,
    worktree: &Path,
    patterns: &[String],
) -> Result<Vec<String>, GitError> {
    let patterns: Vec<Pattern> = patterns.iter().filter_map(|p| Pattern::parse(p)).collect();
    if !patterns.iter().any(|p| !p.negated) {
        return Ok(Vec::new());
    }
    let repo = Repository::open(root).map_err(|e| match e.code() {
        git2::ErrorCode::NotFound => GitError::NotARepo(root.to_path_buf()),
        _ => GitError::Git {
            what: format!("opening the repository at {}", root.display()),
            source: e,
        },
    })?;
    if !worktree.is_dir() {
        return Err(GitError::Io {
            what: format!("copying files into {}", worktree.display()),
            source: io::Error::from(io::ErrorKind::NotFound),
        });
    }
    let index = repo.index().map_err(|e| GitError::Git {
        what: format!("reading the index of {}", root.display()),
        source: e,
    })?;
    let mut walk = Walk { repo: &repo, index, root, worktree, patterns, copied: Vec::new() };
    walk.dir(&mut Vec::new(), false, false)?;
    Ok(walk.copied)
}

impl Walk<'_> {
    /// Visit the directory at `rel` (components). `matched`: a pattern matched it or an ancestor, so
    /// everything untracked inside is copied. `ignored`: git ignores it (or an ancestor).
    fn dir(&mut self, rel: &mut Vec<String>, matched: bool, ignored: bool) -> Result<(), GitError> {
        let abs = rel.iter().fold(self.root.to_path_buf(), |p, s| p.join(s));
        let mut entries: Vec<fs::DirEntry> = match fs::read_dir(&abs) {
            Ok(entries) => entries.filter_map(Result::ok).collect(),
            Err(e) if rel.is_empty() => {
                return Err(GitError::Io { what: format!("reading {}", abs.display()), source: e });
            }
            Err(e) => {
                tracing::warn!("copy_untracked: skipping {}: {e}", abs.display());
                return Ok(());
            }
        };
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if name == ".git" {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            rel.push(name);
            let result = if kind.is_dir() {
                self.subdir(rel, matched, ignored)
            } else {
                self.file(rel, matched)
            };
            rel.pop();
            result?;
        }
        Ok(())
    }

    fn subdir(
        &mut self,
        rel: &mut Vec<String>,
        matched: bool,
        ignored: bool,
    ) -> Result<(), GitError> {
        let abs = rel.iter().fold(self.root.to_path_buf(), |p, s| p.join(s));
        if abs.join(".git").exists() {
            // A nested repository or submodule: its files are its own.
            return Ok(());
        }
        let segs: Vec<&str> = rel.iter().map(String::as_str).collect();
        if matched || decide(&self.patterns, &segs, true) == Some(true) {
            return self.dir(rel, true, ignored);
        }
        let mut star = false;
        let mut named = false;
        for p in self.patterns.iter().filter(|p| !p.negated) {
            match p.inside(&segs) {
                Inside::No => {}
                Inside::ViaStar => star = true,
                Inside::Named => named = named || p.anchored,
            }
        }
        if named {
            let ignored = ignored || self.is_ignored(&segs);
            return self.dir(rel, false, ignored);
        }
        if star && !ignored && !self.is_ignored(&segs) {
            return self.dir(rel, false, false);
        }
        Ok(())
    }

    fn is_ignored(&self, segs: &[&str]) -> bool {
        self.repo.is_path_ignored(segs.join("/")).unwrap_or(false)
    }

    fn file(&mut self, rel: &[String], matched: bool) -> Result<(), GitError> {
        let segs: Vec<&str> = rel.iter().map(String::as_str).collect();
        if !matched && decide(&self.patterns, &segs, false) != Some(true) {
            return Ok(());
        }
        let rel_path = segs.join("/");
        if self.index.get_path(Path::new(&rel_path), 0).is_some() {
            return Ok(());
        }
        let src = self.root.join(&rel_path);
        let dest = self.worktree.join(&rel_path);
        if copy_new(&src, &dest)? {
            self.copied.push(rel_path);
        }
        Ok(())
    }
}

/// Copy a regular file or symlink to `dest`, which must not exist; permissions are kept. Returns
/// false (and copies nothing) when something is already at `dest` or `src` is neither.
fn copy_new(src: &Path, dest: &Path) -> Result<bool, GitError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |what: &str, path: &Path| {
        let what = format!("{what} {}", path.display());
        move |source| GitError::Io { what, source }
    };
    let meta = fs::symlink_metadata(src).map_err(err("reading", src))?;
    if fs::symlink_metadata(dest).is_ok() {
        return Ok(false);
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(err("creating", parent))?;
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(err("reading", src))?;
        return match std::os::unix::fs::symlink(&target, dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err("creating", dest)(e)),
        };
    }
    if !meta.is_file() {
        return Ok(false);
    }
    let mode = meta.permissions().mode();
    let mut input = fs::File::open(src).map_err(err("reading", src))?;
    // create_new: never overwrite, even if the file appeared since the check above.
    let mut output = match fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(dest)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(err("creating", dest)(e)),
    };
    let copied = io::copy(&mut input, &mut output)
        .and_then(|_| output.set_permissions(fs::Permissions::from_mode(mode)));
    if let Err(e) = copied {
        drop(output);
        let _ = fs::remove_file(dest);
        return Err(err("copying to", dest)(e));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str, is_dir: bool) -> bool {
        let segs: Vec<&str> = path.split('/').collect();
        Pattern::parse(pattern).unwrap().matches(&segs, is_dir)
    }

    #[test]
    fn globs_match_like_gitignore() {
        assert!(matches(".env", ".env", false));
        assert!(matches(".env", "apps/web/.env", false), "no slash: any depth");
        assert!(!matches(".env", ".env.local", false));
        assert!(matches(".env.*", ".env.local", false));
        assert!(!matches(".env.*", ".env", false));
        assert!(matches("config/*.local", "config/app.local", false));
        assert!(!matches("config/*.local", "sub/config/app.local", false), "slash: anchored");
        assert!(!matches("config/*.local", "config/deep/app.local", false), "* stays in one part");
        assert!(matches("/secrets.json", "secrets.json", false));
        assert!(!matches("/secrets.json", "a/secrets.json", false));
        assert!(matches("a/**/b.txt", "a/b.txt", false));
        assert!(matches("a/**/b.txt", "a/x/y/b.txt", false));
        assert!(matches("**/cert.pem", "x/cert.pem", false));
        assert!(matches("local/", "local", true));
        assert!(!matches("local/", "local", false), "trailing slash: directories only");
        assert!(matches("f?le[0-9].t[!y]t", "file7.txt", false));
        assert!(!matches("f?le[0-9].t[!x]t", "file7.txt", false));
        assert!(matches("a*b*c", "axxbyybzzc", false));
        assert!(!matches("a*b*c", "axxbyybzz", false));
        assert!(matches("\\*literal", "*literal", false));
        assert!(!matches("\\*literal", "xliteral", false));
        assert!(matches("[unclosed", "[unclosed", false));
    }

    #[test]
    fn only_anchored_patterns_name_paths_inside_a_directory() {
        let named = |pattern: &str, dir: &str| {
            let segs: Vec<&str> = dir.split('/').collect();
            let p = Pattern::parse(pattern).unwrap();
            p.inside(&segs) == Inside::Named
        };
        assert!(named("node_modules/special/*.txt", "node_modules"));
        assert!(named("node_modules/special/*.txt", "node_modules/special"));
        assert!(!named("node_modules/special/*.txt", "node_modules/other"));
        assert!(!named(".env", "node_modules"));
        assert!(!named("**/.env", "node_modules"));
        assert!(!named("target", "target"), "matches the directory itself, not inside it");
    }
}
