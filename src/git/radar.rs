//! The conflict radar and the diff stats of every agent of one repository, computed together
//! because they need the same thing: each agent's worktree as a tree (committed and uncommitted
//! work, untracked files included; SPEC §6).
//!
//! A [`Radar`] lives as long as the repository has agents and keeps what does not change between
//! runs: each worktree's tree until that worktree is touched again, the changed-path sets, and the
//! result of every three-way merge it tried (keyed by the three tree ids, so a result can never be
//! stale). Trees are written into a scratch object database in memory, shared by the repository and
//! all its worktrees, so nothing is written to the repository; it is dropped and rebuilt now and
//! then to bound its size.
//!
//! Conflicts are predicted with libgit2's three-way tree merge, the one `merge` uses, after a cheap
//! filter: two sets of changes that touch no common path (nor a file where the other needs a
//! directory) cannot conflict. A `Radar` holds libgit2 objects that must stay on one thread.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{MergeOptions, Odb, Oid, Repository};

use super::diff::{DiffStat, base_tip, touched_paths, tree_diff};
use super::merge::conflict_paths;
use super::state::{scratch_odb, worktree_state_again};
use super::{GitError, git_err, open};

/// Runs between rebuilds of the in-memory object database.
const RUNS_PER_ODB: u32 = 200;
/// Bytes of files read into the in-memory object database before it is rebuilt.
const BYTES_PER_ODB: u64 = 256 << 20;
/// Files larger than this are not read (a stand-in blob represents them).
const MAX_FILE: u64 = 32 << 20;

/// An agent as the radar sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadarAgent {
    pub name: String,
    pub worktree: PathBuf,
    /// The branch (or commit) the agent started from and will land on.
    pub base: String,
}

/// A predicted conflict of one agent's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other agent, or the base branch's name when `base`.
    pub with: String,
    pub base: bool,
    pub paths: Vec<String>,
}

/// What the radar found for one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReport {
    pub diff: Option<DiffStat>,
    pub conflicts: Vec<Conflict>,
    /// Why `diff` is missing (the worktree is gone, the base does not resolve, ...).
    pub error: Option<String>,
}

struct Cached {
    worktree: PathBuf,
    repo: Repository,
    /// The worktree as a tree; `None` until read, and again once touched.
    state: Option<Oid>,
}

/// One agent's inputs for a run.
struct Seen {
    name: String,
    base: String,
    head: Oid,
    state: Oid,
    base_tip: Oid,
    merge_base: Oid,
}

type PathSet = Rc<BTreeSet<String>>;
/// Paths a diff touches, and its files changed, insertions and deletions.
type Change = (PathSet, (usize, usize, usize));

pub struct Radar {
    common_dir: PathBuf,
    odb: Odb<'static>,
    main: Repository,
    agents: HashMap<String, Cached>,
    /// (old tree, new tree) → paths the diff touches, and its numbers.
    changes: HashMap<(Oid, Oid), Change>,
    /// (ancestor, ours, theirs) trees → conflicting paths.
    merges: HashMap<(Oid, Oid, Oid), Vec<String>>,
    runs: u32,
    /// Bytes read into `odb` since it was made.
    bytes: u64,
}

/// Whether changes to `a` and to `b` could meet: a path in both, or a path in one that is a
/// directory of a path in the other.
fn overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    let meets = |x: &BTreeSet<String>, y: &BTreeSet<String>| {
        x.iter().any(|p| {
            let mut cur = p.as_str();
            loop {
                if y.contains(cur) {
                    return true;
                }
                match cur.rfind('/') {
                    Some(i) => cur = &cur[..i],
                    None => return false,
                }
            }
        })
    };
    meets(a, b) || meets(b, a)
}

impl Radar {
    /// A radar for the repository whose main worktree is `root`.
    pub fn open(root: &Path) -> Result<Radar, GitError> {
        let main = open(root)?;
        let common_dir = main.commondir().to_path_buf();
        let odb = scratch_odb(&common_dir).map_err(git_err("opening the objects"))?;
        main.set_odb(&odb).map_err(git_err("opening the objects"))?;
        Ok(Radar {
            common_dir,
            odb,
            main,
            agents: HashMap::new(),
            changes: HashMap::new(),
            merges: HashMap::new(),
            runs: 0,
            bytes: 0,
        })
    }

    /// Something in the agent's worktree changed: read its files again on the next run.
    pub fn touch(&mut self, name: &str) {
        if let Some(c) = self.agents.get_mut(name) {
            c.state = None;
        }
    }

    /// Whether a change at `path` (relative to the agent's worktree) matters: not ignored.
    pub fn matters(&self, name: &str, path: &Path) -> bool {
        let Some(c) = self.agents.get(name) else { return true };
        let rel = path.strip_prefix(&c.worktree).unwrap_or(path);
        if rel.as_os_str().is_empty() {
            return true;
        }
        !c.repo.status_should_ignore(rel).unwrap_or(false)
    }

    fn fresh_odb(&mut self) -> Result<(), git2::Error> {
        let odb = scratch_odb(&self.common_dir)?;
        self.main.set_odb(&odb)?;
        for c in self.agents.values_mut() {
            c.repo.set_odb(&odb)?;
            c.state = None;
        }
        self.odb = odb;
        self.changes.clear();
        self.bytes = 0;
        Ok(())
    }

    /// The agent's repository handle, opened (and pointed at the scratch objects) on first use.
    fn cached(&mut self, a: &RadarAgent) -> Result<&mut Cached, GitError> {
        let stale = self.agents.get(&a.name).is_some_and(|c| c.worktree != a.worktree);
        if stale {
            self.agents.remove(&a.name);
        }
        if !self.agents.contains_key(&a.name) {
            let repo = open(&a.worktree)?;
            repo.set_odb(&self.odb)
                .map_err(git_err(format!("opening the objects of {}", a.worktree.display())))?;
            self.agents
                .insert(a.name.clone(), Cached { worktree: a.worktree.clone(), repo, state: None });
        }
        self.agents.get_mut(&a.name).ok_or_else(|| GitError::NotARepo(a.worktree.clone()))
    }

    fn see(&mut self, a: &RadarAgent) -> Result<Seen, GitError> {
        if !a.worktree.is_dir() {
            return Err(GitError::Io {
                what: format!("reading the worktree {}", a.worktree.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let what = |doing: &str| format!("{doing} {}", a.worktree.display());
        let c = self.cached(a)?;
        let head = c
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(git_err(what("reading HEAD of")))?
            .id();
        let state = match c.state {
            Some(s) => s,
            None => {
                let (s, read) =
                    worktree_state_again(&c.repo, MAX_FILE).map_err(git_err(what("reading")))?;
                c.state = Some(s);
                self.bytes += read;
                s
            }
        };
        let base_tip = base_tip(&self.main, &a.base)?;
        let merge_base = self
            .main
            .merge_base(head, base_tip)
            .map_err(git_err(format!("finding where {} left '{}'", a.name, a.base)))?;
        Ok(Seen { name: a.name.clone(), base: a.base.clone(), head, state, base_tip, merge_base })
    }

    fn tree_of(&self, commit: Oid) -> Result<Oid, git2::Error> {
        Ok(self.main.find_commit(commit)?.tree_id())
    }

    /// Paths touched between two trees, and the diff's numbers; remembered.
    fn change(
        &mut self,
        old: Oid,
        new: Oid,
        used: &mut HashSet<(Oid, Oid)>,
    ) -> Result<Change, git2::Error> {
        used.insert((old, new));
        if let Some(c) = self.changes.get(&(old, new)) {
            return Ok(c.clone());
        }
        let diff = tree_diff(&self.main, &self.main.find_tree(old)?, &self.main.find_tree(new)?)?;
        let stats = diff.stats()?;
        let entry = (
            Rc::new(touched_paths(&diff)),
            (stats.files_changed(), stats.insertions(), stats.deletions()),
        );
        self.changes.insert((old, new), entry.clone());
        Ok(entry)
    }

    /// Conflicting paths when merging `ours` and `theirs` (trees) from `ancestor`; remembered.
    fn conflicts(
        &mut self,
        ancestor: Oid,
        ours: Oid,
        theirs: Oid,
        used: &mut HashSet<(Oid, Oid)>,
        used_merges: &mut HashSet<(Oid, Oid, Oid)>,
    ) -> Result<Vec<String>, git2::Error> {
        // Order does not change whether two sides conflict.
        let key = if ours <= theirs { (ancestor, ours, theirs) } else { (ancestor, theirs, ours) };
        used_merges.insert(key);
        if let Some(paths) = self.merges.get(&key) {
            return Ok(paths.clone());
        }
        let (a, _) = self.change(ancestor, ours, used)?;
        let (b, _) = self.change(ancestor, theirs, used)?;
        let paths = if ours == theirs || !overlap(&a, &b) {
            Vec::new()
        } else {
            let (anc, o, t) = (
                self.main.find_tree(key.0)?,
                self.main.find_tree(key.1)?,
                self.main.find_tree(key.2)?,
            );
            let index = self.main.merge_trees(&anc, &o, &t, Some(&MergeOptions::new()))?;
            if index.has_conflicts() { conflict_paths(&index)? } else { Vec::new() }
        };
        self.merges.insert(key, paths.clone());
        Ok(paths)
    }

    /// Stats and predicted conflicts for `agents` (the repository's live agents). Agents whose
    /// worktree was not touched since the last run are not read again.
    pub fn run(&mut self, agents: &[RadarAgent]) -> BTreeMap<String, AgentReport> {
        self.runs += 1;
        if (self.runs.is_multiple_of(RUNS_PER_ODB) || self.bytes > BYTES_PER_ODB)
            && let Err(e) = self.fresh_odb()
        {
            tracing::warn!("radar: rebuilding the scratch object database: {e}");
        }
        let names: HashSet<&str> = agents.iter().map(|a| a.name.as_str()).collect();
        self.agents.retain(|n, _| names.contains(n.as_str()));

        let mut out: BTreeMap<String, AgentReport> = BTreeMap::new();
        let mut seen: Vec<Seen> = Vec::new();
        let mut used = HashSet::new();
        let mut used_merges = HashSet::new();
        for a in agents {
            let report = out.entry(a.name.clone()).or_default();
            match self.see(a) {
                Ok(s) => seen.push(s),
                Err(e) => {
                    // Read it afresh next time, whatever went wrong.
                    self.agents.remove(&a.name);
                    report.error = Some(e.to_string());
                }
            }
        }
        for s in &seen {
            let stat = (|| {
                let (_, (files, insertions, deletions)) =
                    self.change(self.tree_of(s.merge_base)?, s.state, &mut used)?;
                let (ahead, behind) = self.main.graph_ahead_behind(s.head, s.base_tip)?;
                Ok::<_, git2::Error>(DiffStat { files, insertions, deletions, ahead, behind })
            })();
            let report = out.entry(s.name.clone()).or_default();
            match stat {
                Ok(d) => report.diff = Some(d),
                Err(e) => report.error = Some(format!("diff stats of {}: {e}", s.name)),
            }
        }

        // Each agent against the current tip of its base.
        for s in &seen {
            if s.merge_base == s.base_tip {
                continue;
            }
            let found = (|| {
                let anc = self.tree_of(s.merge_base)?;
                let tip = self.tree_of(s.base_tip)?;
                self.conflicts(anc, tip, s.state, &mut used, &mut used_merges)
            })();
            match found {
                Ok(paths) if !paths.is_empty() => {
                    out.entry(s.name.clone()).or_default().conflicts.push(Conflict {
                        with: s.base.clone(),
                        base: true,
                        paths,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("radar: {} against {}: {e}", s.name, s.base),
            }
        }

        // Every pair of agents on the same base.
        for (i, x) in seen.iter().enumerate() {
            for y in &seen[i + 1..] {
                if x.base != y.base {
                    continue;
                }
                let found = (|| {
                    let anc = if x.merge_base == y.merge_base {
                        x.merge_base
                    } else {
                        self.main.merge_base(x.head, y.head)?
                    };
                    let anc = self.tree_of(anc)?;
                    self.conflicts(anc, x.state, y.state, &mut used, &mut used_merges)
                })();
                match found {
                    Ok(paths) if !paths.is_empty() => {
                        for (me, other) in [(x, y), (y, x)] {
                            out.entry(me.name.clone()).or_default().conflicts.push(Conflict {
                                with: other.name.clone(),
                                base: false,
                                paths: paths.clone(),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("radar: {} against {}: {e}", x.name, y.name),
                }
            }
        }
        // Keep only what this run used: the caches track the agents as they are now.
        self.changes.retain(|k, _| used.contains(k));
        self.merges.retain(|k, _| used_merges.contains(k));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::overlap;
    use std::collections::BTreeSet;

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn overlap_is_a_shared_path_or_a_file_where_a_directory_goes() {
        assert!(overlap(&set(&["a.txt", "b/c"]), &set(&["b/c"])));
        assert!(overlap(&set(&["x"]), &set(&["x/y"])));
        assert!(overlap(&set(&["x/y/z"]), &set(&["x"])));
        assert!(!overlap(&set(&["a.txt"]), &set(&["b.txt", "a.txt.orig", "a/x"])));
        assert!(!overlap(&set(&[]), &set(&["a"])));
    }
}
