//! `create_worktree` against `git worktree add` on a generated repository (default 20,000 files).
//!
//! cargo run --release --example wt_bench -- [FILES] [ROUNDS]
//!
//! Both run on the same repository, alternating, with a warm page cache; the worktree is removed
//! between rounds. Prints the median and best wall time of each. The repository is made under
//! $TMPDIR (tmpfs, e.g. /dev/shm, gives stable numbers; a slow disk mostly measures the disk).
//! `WT_BENCH_PACK=1` packs the objects first (as in a cloned repository); `WT_BENCH_NO_VERIFY=1` turns
//! off libgit2's re-hashing of every object it reads (git does not do it), a process-wide setting.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[allow(dead_code, unused_imports)]
#[path = "../src/git/mod.rs"]
mod git;
// The git steps mark their crash-test points; unarmed, each is one atomic load.
#[allow(dead_code)]
#[path = "../src/failpoint.rs"]
mod failpoint;
// The landing queue's state, which the git steps save.
#[allow(dead_code)]
#[path = "../src/queue.rs"]
mod queue;

use git as worktree;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn generate(root: &Path, files: usize) {
    std::fs::create_dir_all(root).expect("mkdir");
    git(root, &["init", "-q", "-b", "main"]);
    let per_dir = 100;
    for i in 0..files {
        let dir = root.join(format!("d{:03}/sub{}", i / per_dir, (i / 10) % 10));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let body = format!("// file {i}\n{}\n", "let x = 1; // some source text\n".repeat(30));
        std::fs::write(dir.join(format!("f{i}.rs")), body).expect("write");
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "generated"]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let root = tmp.path().join("repo");
    let t = Instant::now();
    generate(&root, files);
    if std::env::var_os("WT_BENCH_PACK").is_some() {
        git(&root, &["gc", "-q"]);
    }
    if std::env::var_os("WT_BENCH_NO_VERIFY").is_some() {
        git2::opts::strict_hash_verification(false);
    }
    eprintln!("generated {files} files in {:?}", t.elapsed());
    let (_, base) = worktree::resolve_base(&root, None).expect("base");

    let (mut cli, mut lib) = (Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        let path = tmp.path().join(format!("cli-{round}"));
        let branch = format!("cli-{round}");
        let t = Instant::now();
        git(&root, &["worktree", "add", "-q", "-b", &branch, path.to_str().expect("utf8"), &base]);
        let cli_time = t.elapsed();
        worktree::remove_worktree(&root, &branch, &path).expect("remove");

        let path = tmp.path().join(format!("lib-{round}"));
        let branch = format!("lib-{round}");
        let spec = worktree::NewWorktree {
            root: &root,
            name: &branch,
            branch: &branch,
            path: &path,
            base_commit: &base,
        };
        let t = Instant::now();
        worktree::create_worktree(&spec).expect("create");
        let lib_time = t.elapsed();
        worktree::remove_worktree(&root, &branch, &path).expect("remove");
        // Round 0 warms the page cache and the object store; it is not counted.
        if round > 0 {
            cli.push(cli_time);
            lib.push(lib_time);
        }
    }
    // Setup's copy of untracked files walks the whole main worktree for unanchored patterns.
    std::fs::write(root.join(".env"), "SECRET=1\n").expect("write .env");
    let path = tmp.path().join("copy-target");
    std::fs::create_dir(&path).expect("mkdir");
    let patterns = [".env".to_string(), ".env.*".to_string()];
    let t = Instant::now();
    let copied = worktree::copy_untracked(&root, &path, &patterns).expect("copy");
    println!("copy_untracked {patterns:?}: {:?} ({} copied)", t.elapsed(), copied.len());

    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    println!("git worktree add: median {:?}, best {:?}", median(cli.clone()), best(&cli));
    println!("create_worktree:  median {:?}, best {:?}", median(lib.clone()), best(&lib));
}
