//! An agent's changes against its base: what `corral diff` prints and the numbers `ls` shows.
//!
//! "Changes" are everything in the agent's worktree (committed, staged, unstaged and untracked,
//! ignored files left out) against the merge base of its HEAD with the base branch's tip, so commits
//! that landed on the base since the agent started never show as the agent's. The worktree is read
//! into a tree in a scratch object database (see `state`), so printing a diff writes nothing to the
//! repository.

use std::collections::BTreeSet;
use std::path::Path;

use git2::{
    Diff, DiffFindOptions, DiffFormat, DiffOptions, DiffStatsFormat, Oid, Repository, Tree,
};

use super::state::{scratch_odb, worktree_state};
use super::{GitError, git_err, open, resolve_commit};

/// Files changed and lines added/removed against the merge base, and commits ahead of/behind the
/// base tip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStat {
    pub files: usize,
    pub insertions: usize,
    pub deletions: usize,
    pub ahead: usize,
    pub behind: usize,
}

/// The diff between two trees as `git diff` shows it by default: renames detected.
pub(super) fn tree_diff<'r>(
    repo: &'r Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<Diff<'r>, git2::Error> {
    let mut opts = DiffOptions::new();
    let mut diff = repo.diff_tree_to_tree(Some(old), Some(new), Some(&mut opts))?;
    diff.find_similar(Some(DiffFindOptions::new().renames(true)))?;
    Ok(diff)
}

/// Every path a diff touches, old and new names of renames both.
pub(super) fn touched_paths(diff: &Diff<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in diff.deltas() {
        for f in [d.old_file(), d.new_file()] {
            if let Some(p) = f.path_bytes() {
                out.insert(String::from_utf8_lossy(p).into_owned());
            }
        }
    }
    out
}

/// The commit `base` names, seen from `repo`, or a clear error.
pub(super) fn base_tip(repo: &Repository, base: &str) -> Result<Oid, GitError> {
    resolve_commit(repo, base).ok_or_else(|| GitError::BadBase(base.to_string()))
}

/// What `corral diff` needs: the worktree's state against the merge base, in a scratch repository.
struct AgentDiff {
    repo: Repository,
    merge_base: Oid,
    state: Oid,
    head: Oid,
    base_tip: Oid,
}

fn agent_diff(worktree: &Path, base: &str) -> Result<AgentDiff, GitError> {
    let repo = open(worktree)?;
    let what = |doing: &str| format!("{doing} in {}", worktree.display());
    let odb = scratch_odb(repo.commondir()).map_err(git_err(what("opening the objects")))?;
    repo.set_odb(&odb).map_err(git_err(what("opening the objects")))?;
    let head =
        repo.head().and_then(|h| h.peel_to_commit()).map_err(git_err(what("reading HEAD")))?.id();
    let base_tip = base_tip(&repo, base)?;
    let merge_base = repo
        .merge_base(head, base_tip)
        .map_err(git_err(format!("finding where {} left '{base}'", worktree.display())))?;
    let (_, state) = worktree_state(&repo).map_err(git_err(what("reading the worktree")))?;
    Ok(AgentDiff { repo, merge_base, state, head, base_tip })
}

/// The agent's changes as `git diff` would print them (a unified patch, or `--stat` lines), with
/// git's colours when `colour`. `width` is the terminal's, for `--stat`.
pub fn agent_patch(
    worktree: &Path,
    base: &str,
    stat: bool,
    colour: bool,
    width: usize,
) -> Result<Vec<u8>, GitError> {
    let d = agent_diff(worktree, base)?;
    let what = format!("comparing {} with '{base}'", worktree.display());
    let wrap = git_err(what.clone());
    let diff = (|| {
        let old = d.repo.find_commit(d.merge_base)?.tree()?;
        let new = d.repo.find_tree(d.state)?;
        tree_diff(&d.repo, &old, &new)
    })()
    .map_err(wrap)?;
    if stat {
        let stats = diff.stats().map_err(git_err(what.clone()))?;
        if stats.files_changed() == 0 {
            return Ok(Vec::new());
        }
        let buf = stats.to_buf(DiffStatsFormat::FULL, width).map_err(git_err(what))?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        return Ok(if colour { colour_stat(&text) } else { text }.into_bytes());
    }
    let mut out = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        let origin = line.origin();
        let content = line.content();
        let (colour_code, prefix) = match origin {
            '+' | '>' => ("\x1b[32m", Some(origin)),
            '-' | '<' => ("\x1b[31m", Some(origin)),
            ' ' | '=' => ("", Some(' ')),
            'H' => ("\x1b[36m", None),
            'F' => ("\x1b[1m", None),
            _ => ("", None),
        };
        // `>`, `<`, `=` carry "\ No newline at end of file" and have no prefix of their own in git.
        let prefix = match origin {
            '>' | '<' | '=' => None,
            _ => prefix,
        };
        for piece in content.split_inclusive(|&b| b == b'\n') {
            let (body, nl) = match piece.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (piece, false),
            };
            let paint = colour && !colour_code.is_empty();
            if paint {
                out.extend_from_slice(colour_code.as_bytes());
            }
            if let Some(p) = prefix {
                out.push(p as u8);
            }
            out.extend_from_slice(body);
            if paint {
                out.extend_from_slice(b"\x1b[m");
            }
            if nl {
                out.push(b'\n');
            }
        }
        true
    })
    .map_err(git_err(format!("printing the diff of {}", worktree.display())))?;
    Ok(out)
}

/// git's `--stat` colours: the `+` run green, the `-` run red.
fn colour_stat(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let Some(bar) = line.rfind(" | ") else {
            out.push_str(line);
            continue;
        };
        let (head, tail) = line.split_at(bar + 3);
        out.push_str(head);
        let graph_start = tail.find(['+', '-']).unwrap_or(tail.len());
        let (count, graph) = tail.split_at(graph_start);
        // "Bin 0 -> 12 bytes" has a '-' that is not part of a graph.
        if !graph.trim_end().chars().all(|c| c == '+' || c == '-') {
            out.push_str(tail);
            continue;
        }
        out.push_str(count);
        let plus = graph.chars().take_while(|&c| c == '+').count();
        let minus = graph[plus..].chars().take_while(|&c| c == '-').count();
        if plus > 0 {
            out.push_str("\x1b[32m");
            out.push_str(&graph[..plus]);
            out.push_str("\x1b[m");
        }
        if minus > 0 {
            out.push_str("\x1b[31m");
            out.push_str(&graph[plus..plus + minus]);
            out.push_str("\x1b[m");
        }
        out.push_str(&graph[plus + minus..]);
    }
    out
}

/// The numbers `ls` shows for one agent, computed the same way as `corral diff`.
pub fn agent_stat(worktree: &Path, base: &str) -> Result<DiffStat, GitError> {
    let d = agent_diff(worktree, base)?;
    let what = format!("comparing {} with '{base}'", worktree.display());
    let (files, insertions, deletions) = (|| {
        let old = d.repo.find_commit(d.merge_base)?.tree()?;
        let new = d.repo.find_tree(d.state)?;
        let stats = tree_diff(&d.repo, &old, &new)?.stats()?;
        Ok((stats.files_changed(), stats.insertions(), stats.deletions()))
    })()
    .map_err(git_err(what.clone()))?;
    let (ahead, behind) = d.repo.graph_ahead_behind(d.head, d.base_tip).map_err(git_err(what))?;
    Ok(DiffStat { files, insertions, deletions, ahead, behind })
}

#[cfg(test)]
mod tests {
    use super::colour_stat;

    #[test]
    fn stat_colours_only_the_graph() {
        let s = colour_stat(" a|b.txt | 3 ++-\n 1 file changed, 2 insertions(+), 1 deletion(-)\n");
        assert_eq!(
            s,
            " a|b.txt | 3 \x1b[32m++\x1b[m\x1b[31m-\x1b[m\n 1 file changed, 2 insertions(+), 1 deletion(-)\n"
        );
        let bin = " x.png | Bin 0 -> 3 bytes\n";
        assert_eq!(colour_stat(bin), bin);
    }
}
