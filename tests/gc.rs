//! `corral gc`: what corral left behind in a real repository (agents whose state was lost,
//! worktrees deleted by hand, a crash in the middle of an add), listed with the work each holds,
//! removed with `--yes` only when it holds none, with `--force` after keeping the work, and never
//! anything corral did not make.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

fn branches(repo: &Path) -> Vec<String> {
    git(repo, &["branch", "--format=%(refname:short)"]).lines().map(str::to_string).collect()
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn gc_removes_what_holds_no_work_keeps_the_rest_and_never_touches_others_worktrees() {
    let env = Env::new();
    let repo = &env.repo;
    for name in ["tidy", "dirty", "ahead", "gone"] {
        env.new_shell(name);
    }
    let wt_dir = env.worktree_of("tidy").parent().unwrap().to_path_buf();
    std::fs::write(wt_dir.join("dirty/notes.txt"), "unsaved thoughts\n").unwrap();
    std::fs::write(wt_dir.join("ahead/feature.txt"), "done\n").unwrap();
    git(&wt_dir.join("ahead"), &["add", "."]);
    git(&wt_dir.join("ahead"), &["commit", "-q", "-m", "the feature"]);

    // The server's state is lost (its file deleted while it is down): corral no longer knows
    // these four agents. One worktree is then deleted by hand.
    env.ok(&["kill-server"]);
    std::fs::remove_file(repo.join(".git/corral/agents.json")).unwrap();
    std::fs::remove_dir_all(wt_dir.join("gone")).unwrap();
    // Branches no agent has: one with nothing the base lacks, one with a commit.
    git(repo, &["branch", "corral/lonely"]);
    git(repo, &["checkout", "-q", "-b", "corral/lonely-work"]);
    std::fs::write(repo.join("lonely.txt"), "work\n").unwrap();
    git(repo, &["add", "lonely.txt"]);
    git(repo, &["commit", "-q", "-m", "lonely work"]);
    git(repo, &["checkout", "-q", "main"]);
    // An add that never finished (killed before the checkout): a registration and nothing else.
    let debris = repo.join(".git/worktrees/half");
    std::fs::create_dir_all(&debris).unwrap();
    std::fs::write(debris.join("gitdir"), format!("{}\n", wt_dir.join("half/.git").display()))
        .unwrap();
    std::fs::create_dir(wt_dir.join("empty")).unwrap();
    // A directory that was a worktree and is no longer registered: files git cannot vouch for.
    std::fs::create_dir(wt_dir.join("stray")).unwrap();
    std::fs::write(
        wt_dir.join("stray/.git"),
        format!("gitdir: {}\n", repo.join(".git/worktrees/stray").display()),
    )
    .unwrap();
    std::fs::write(wt_dir.join("stray/keep.txt"), "mine\n").unwrap();
    // What corral did not make: the user's own worktree (even on a corral/ branch) and branch.
    let mine = env.root().join("mine");
    git(repo, &["worktree", "add", "-q", "-b", "corral/mine", mine.to_str().unwrap()]);
    git(repo, &["branch", "feature"]);
    // And an agent corral knows.
    env.new_shell("alive");

    let listed = env.ok(&["gc"]);
    assert!(line_with(&listed, "dirty").contains("1 uncommitted change (notes.txt)"), "{listed}");
    assert!(line_with(&listed, "ahead").contains("1 commit not on main"), "{listed}");
    assert!(line_with(&listed, "tidy").contains("no work"), "{listed}");
    assert!(line_with(&listed, "'gone'").contains("is gone"), "{listed}");
    assert!(line_with(&listed, "branch corral/lonely:").contains("no work"), "{listed}");
    assert!(line_with(&listed, "corral/lonely-work").contains("1 commit not on main"), "{listed}");
    line_with(&listed, "'half'");
    line_with(&listed, "empty directory");
    assert!(line_with(&listed, "stray").contains("by hand"), "{listed}");
    for other in ["alive", "mine", "feature"] {
        assert!(!listed.contains(other), "{other} is not a leftover:\n{listed}");
    }
    assert!(wt_dir.join("tidy").exists(), "listing removes nothing");

    let done = env.ok(&["gc", "--yes"]);
    for removed in ["tidy", "'gone'", "branch corral/lonely:", "'half'", "empty directory"] {
        let removed = removed.trim_end_matches(':');
        assert!(line_with(&done, removed).starts_with("removed"), "{done}");
    }
    for kept in ["dirty", "ahead", "corral/lonely-work", "stray"] {
        assert!(line_with(&done, kept).starts_with("kept"), "{done}");
    }
    assert!(!wt_dir.join("tidy").exists() && !wt_dir.join("empty").exists());
    assert!(!debris.exists() && !repo.join(".git/worktrees/gone").exists());
    assert_eq!(
        std::fs::read_to_string(wt_dir.join("dirty/notes.txt")).unwrap(),
        "unsaved thoughts\n"
    );
    let b = branches(repo);
    for gone in ["corral/tidy", "corral/gone", "corral/lonely"] {
        assert!(!b.contains(&gone.to_string()), "{gone} deleted: {b:?}");
    }
    for kept in ["corral/dirty", "corral/ahead", "corral/lonely-work", "corral/mine", "feature"] {
        assert!(b.contains(&kept.to_string()), "{kept} kept: {b:?}");
    }
    assert!(mine.join("README.md").exists(), "the user's own worktree is untouched");
    assert!(wt_dir.join("stray/keep.txt").exists());
    assert_eq!(git(repo, &["worktree", "list", "--porcelain"]).matches("prunable").count(), 0);

    // --force: the work is kept under refs/corral/backup/ first, then the rest goes too.
    let forced = env.ok(&["gc", "--yes", "--force"]);
    for removed in ["dirty", "ahead", "corral/lonely-work"] {
        let l = line_with(&forced, removed);
        assert!(l.starts_with("removed") && l.contains("refs/corral/backup/"), "{forced}");
    }
    assert!(line_with(&forced, "stray").starts_with("kept"), "{forced}");
    assert!(wt_dir.join("stray/keep.txt").exists(), "never removed, even forced");
    assert!(!wt_dir.join("dirty").exists() && !wt_dir.join("ahead").exists());
    let backups = git(repo, &["for-each-ref", "--format=%(refname)", "refs/corral/backup/"]);
    let dirty_ref = backups.lines().find(|r| r.contains("/dirty/")).expect(&backups);
    assert_eq!(git(repo, &["show", &format!("{dirty_ref}:notes.txt")]), "unsaved thoughts\n");
    let ahead_ref = backups.lines().find(|r| r.contains("/ahead/")).expect(&backups);
    assert_eq!(git(repo, &["show", &format!("{ahead_ref}:feature.txt")]), "done\n");
    assert!(backups.contains("/lonely-work/"), "{backups}");
    assert!(!branches(repo).contains(&"corral/dirty".to_string()));

    // The known agent never noticed.
    env.ok(&["send", "alive", "echo still-$((1+1))"]);
    env.wait_tail("alive", |t| t.contains("still-2"));
    assert!(env.ok(&["gc"]).contains("stray"), "only the stray directory is left");
}

#[test]
fn gc_in_a_clean_repository_says_so() {
    let env = Env::new();
    env.new_shell("only");
    let out = env.ok(&["gc", "--yes"]);
    assert!(out.starts_with("nothing left behind in"), "{out}");
    assert!(env.worktree_of("only").exists());
}
