//! Listing branches, for choosing agent names that no branch already uses.

use std::collections::BTreeSet;
use std::path::Path;

use git2::{BranchType, Repository};

use super::GitError;

/// Short names of every local branch.
pub fn local_branches(root: &Path) -> Result<BTreeSet<String>, GitError> {
    let wrap = |what: &str| {
        let what = format!("{what} in {}", root.display());
        move |source| GitError::Git { what, source }
    };
    let repo = Repository::open(root).map_err(wrap("opening the repository"))?;
    let mut out = BTreeSet::new();
    for b in repo.branches(Some(BranchType::Local)).map_err(wrap("listing branches"))? {
        let (b, _) = b.map_err(wrap("listing branches"))?;
        if let Ok(Some(name)) = b.name() {
            out.insert(name.to_string());
        }
    }
    Ok(out)
}
