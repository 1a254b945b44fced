//! `corral new --worktree PATH`: an agent in a linked worktree the user made with git, on its own
//! branch; refused (one line naming the thing) for anything else; `rm` and `merge` leave the
//! worktree and its branch, since corral did not make them.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

fn adopt(env: &Env, path: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["new", "--worktree", path.to_str().unwrap(), "--agent", "shell"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--detach", "--size", "80x24"]);
    env.run(&args)
}

#[test]
fn an_agent_works_in_an_adopted_worktree_and_rm_leaves_it() {
    let env = Env::new();
    let feat = env.root().join("feat");
    git(&env.repo, &["worktree", "add", "-q", "-b", "feat", feat.to_str().unwrap()]);
    std::fs::write(feat.join("draft.txt"), "the user's own uncommitted work\n").unwrap();

    let out = adopt(&env, &feat, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(name, "feat", "named after the worktree's directory");
    let info = env.agent_json(&name);
    assert_eq!(info["worktree"], feat.to_str().unwrap());
    assert_eq!(info["branch"], "feat");
    assert_eq!(info["base"], "main");
    env.wait_tail(&name, |t| t.contains('$'));
    env.ok(&["send", &name, "echo from-agent > proof.txt; echo done-$((6*7))"]);
    env.wait_tail(&name, |t| t.contains("done-42"));
    assert!(feat.join("proof.txt").exists(), "the agent runs in the adopted worktree");
    // Its diff is against the base, like any agent's.
    let diff = env.ok(&["diff", &name, "--stat"]);
    assert!(diff.contains("proof.txt") && diff.contains("draft.txt"), "{diff}");

    // Relative paths are the client's, and --name names it.
    let second = env.root().join("second");
    git(&env.repo, &["worktree", "add", "-q", "-b", "second", second.to_str().unwrap()]);
    let out = env
        .cmd(&["new", "--worktree", "../second", "--name", "two", "--agent", "shell", "--detach"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "two");
    assert_eq!(env.agent_json("two")["worktree"], second.to_str().unwrap());

    // rm stops and forgets the agent; the worktree, its files and its branch stay the user's.
    let out = env.run(&["rm", &name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("stay as they are") && note.contains("feat"), "{note}");
    assert!(env.ls_json()["agents"].as_array().unwrap().iter().all(|a| a["name"] != "feat"));
    assert_eq!(
        std::fs::read_to_string(feat.join("draft.txt")).unwrap(),
        "the user's own uncommitted work\n"
    );
    assert!(feat.join("proof.txt").exists());
    let list = git(&env.repo, &["worktree", "list", "--porcelain"]);
    assert!(list.contains(&format!("worktree {}", feat.display())), "{list}");
    assert!(git(&env.repo, &["branch", "--list", "feat"]).contains("feat"));
    assert_eq!(git(&feat, &["status", "--porcelain"]).lines().count(), 2, "nothing committed");
    // Nor is it a leftover to gc: corral did not make it.
    assert!(env.ok(&["gc"]).starts_with("nothing left behind"));

    // Merging an adopted agent lands its work and, again, leaves its worktree and branch.
    std::fs::write(second.join("two.txt"), "work of two\n").unwrap();
    let out = env.run(&["merge", "two"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(git(&env.repo, &["show", "main:two.txt"]), "work of two\n");
    assert!(second.join("two.txt").exists());
    assert!(git(&env.repo, &["branch", "--list", "second"]).contains("second"));
}

#[test]
fn adopting_refuses_what_is_not_a_worktree_of_its_own_naming_it() {
    let env = Env::new();
    let refused = |path: &Path, want: &str| {
        let out = adopt(&env, path, &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(path.to_str().unwrap()) && err.contains(want), "{want}: {err}");
    };
    refused(&env.repo, "main worktree");
    refused(&env.repo.join("nowhere"), "no such directory");

    let detached = env.root().join("detached");
    git(&env.repo, &["worktree", "add", "-q", "--detach", detached.to_str().unwrap()]);
    refused(&detached, "detached");

    let other = env.root().join("other");
    init_repo(&other);
    let theirs = env.root().join("theirs");
    git(&other, &["worktree", "add", "-q", "-b", "t", theirs.to_str().unwrap()]);
    refused(&theirs, "another repository");

    let plain = env.root().join("plain");
    std::fs::create_dir(&plain).unwrap();
    refused(&plain, "not in a git repository");

    // On the branch its work would be merged into.
    let on_base = env.root().join("on-base");
    git(&env.repo, &["worktree", "add", "-q", "-b", "release", on_base.to_str().unwrap()]);
    let out = adopt(&env, &on_base, &["--base", "release"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("the base"), "{err}");

    let feat = env.root().join("feat");
    git(&env.repo, &["worktree", "add", "-q", "-b", "feat", feat.to_str().unwrap()]);
    assert!(adopt(&env, &feat, &["--name", "first"]).status.success());
    refused(&feat, "agent 'first'");
    // And an agent corral made is its own too.
    env.new_shell("made");
    refused(&env.worktree_of("made"), "agent 'made'");
    // Nothing was left behind by the refusals.
    let names: Vec<String> = env.ls_json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["first", "made"]);
}
