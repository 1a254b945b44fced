//! Radar and merge time for several agents on a generated repository (default 20,000 files, 10
//! agents).
//!
//! cargo run --release --example land_bench -- [FILES] [AGENTS] [ROUNDS]
//!
//! Each agent commits a change to a file of its own, leaves another modified and adds an untracked
//! file; agents 0 and 1 also edit the same lines of one shared file, so the radar has one
//! conflicting pair. Timed:
//! - radar, cold: every worktree read into a tree, stats and every pair compared;
//! - radar, one agent touched: what a file change in one worktree costs (the common case);
//! - radar, nothing touched: a branch moved somewhere (heads, merge bases, cached merges);
//! - merge: each agent landed in turn (the first fast-forwards, the rest make merge commits on a
//!   moving main), with the user holding unrelated changes in the main worktree; and agent 1's
//!   conflicting merge, refused.
//!
//! The repository is made under $TMPDIR; a tmpfs gives stable numbers.

use std::path::{Path, PathBuf};
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

fn sh_git(dir: &Path, args: &[&str]) {
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

fn file_of(i: usize) -> String {
    format!("d{:03}/sub{}/f{i}.rs", i / 100, (i / 10) % 10)
}

fn body(i: usize) -> String {
    format!("// file {i}\n{}\n", "let x = 1; // some source text\n".repeat(30))
}

fn generate(root: &Path, files: usize) {
    std::fs::create_dir_all(root).expect("mkdir");
    sh_git(root, &["init", "-q", "-b", "main"]);
    sh_git(root, &["config", "user.name", "bench"]);
    sh_git(root, &["config", "user.email", "bench@localhost"]);
    for i in 0..files {
        let p = root.join(file_of(i));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body(i)).expect("write");
    }
    std::fs::write(root.join("shared.txt"), "a\nb\nc\n").expect("write");
    sh_git(root, &["add", "-A"]);
    sh_git(root, &["commit", "-q", "-m", "generated"]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Bench {
    root: PathBuf,
    agents: Vec<(String, PathBuf)>,
}

impl Bench {
    fn setup(dir: &Path, files: usize, n: usize) -> Bench {
        let root = dir.join("repo");
        generate(&root, files);
        let base = String::from_utf8(
            Command::new("git")
                .args(["rev-parse", "HEAD"])
                .current_dir(&root)
                .output()
                .expect("git")
                .stdout,
        )
        .expect("utf8");
        let mut agents = Vec::new();
        for i in 0..n {
            let name = format!("a{i}");
            let path = dir.join("wt").join(&name);
            git::create_worktree(&git::NewWorktree {
                root: &root,
                name: &name,
                branch: &format!("corral/{name}"),
                path: &path,
                base_commit: base.trim(),
            })
            .expect("worktree");
            // Committed, modified and untracked work, in files of its own.
            let own = |k: usize| path.join(file_of((i * 7 + k * 1000) % files));
            std::fs::write(own(0), format!("{}// agent {i} was here\n", body(0))).expect("write");
            sh_git(&path, &["commit", "-q", "-am", "agent work"]);
            std::fs::write(own(1), format!("// agent {i}, uncommitted\n")).expect("write");
            std::fs::write(path.join(format!("new-{name}.txt")), "untracked\n").expect("write");
            if i < 2 {
                std::fs::write(path.join("shared.txt"), format!("a\nagent {i}\nc\n"))
                    .expect("write");
            }
            agents.push((name, path));
        }
        Bench { root, agents }
    }

    fn radar_agents(&self) -> Vec<git::RadarAgent> {
        self.agents
            .iter()
            .map(|(n, p)| git::RadarAgent {
                name: n.clone(),
                worktree: p.clone(),
                base: "main".into(),
            })
            .collect()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10).max(2);
    let rounds: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    // As the server does (src/server/mod.rs): git does not re-hash objects it reads either.
    git2::opts::strict_hash_verification(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let b = Bench::setup(tmp.path(), files, n);
    println!(
        "{files} files, {n} agents (set up in {:.1} s), median of {rounds}",
        t.elapsed().as_secs_f64()
    );

    // Worktrees written within the same second as their index are "racily clean": every entry is
    // hashed again until git refreshes the index. Agents' worktrees live for hours and git
    // commands run in them refresh it; LAND_BENCH_RACY=1 measures the just-created case instead.
    if std::env::var_os("LAND_BENCH_RACY").is_none() {
        std::thread::sleep(Duration::from_millis(1100));
        for (_, path) in &b.agents {
            sh_git(path, &["status", "--porcelain"]);
        }
        sh_git(&b.root, &["status", "--porcelain"]);
    }

    // Radar.
    let agents = b.radar_agents();
    let (mut cold, mut one, mut none) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut radar = git::Radar::open(&b.root).expect("radar");
        let t = Instant::now();
        let rep = radar.run(&agents);
        cold.push(t.elapsed());
        if round == 0 {
            let pairs = rep.values().map(|r| r.conflicts.len()).sum::<usize>() / 2;
            let errors: Vec<_> = rep.values().filter_map(|r| r.error.clone()).collect();
            println!("  radar found {pairs} conflicting pair(s); errors: {errors:?}");
        }
        let (name, path) = &b.agents[n - 1];
        std::fs::write(path.join("touched.txt"), format!("round {round}\n")).expect("write");
        radar.touch(name);
        let t = Instant::now();
        radar.run(&agents);
        one.push(t.elapsed());
        let t = Instant::now();
        radar.run(&agents);
        none.push(t.elapsed());
    }
    println!("  radar, cold (read {n} worktrees, {} pairs): {}", n * (n - 1) / 2, ms(median(cold)));
    println!("  radar, one worktree touched: {}", ms(median(one)));
    println!("  radar, nothing touched:      {}", ms(median(none)));

    // For scale: git walking one worktree of the same repository.
    let mut status = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        sh_git(&b.agents[0].1, &["status", "--porcelain"]);
        status.push(t.elapsed());
    }
    println!("  (reference: `git status` in one worktree: {})", ms(median(status)));

    // Merge, with the user's own unrelated changes in the main worktree.
    std::fs::write(b.root.join("user-untracked.txt"), "mine\n").expect("write");
    std::fs::write(b.root.join(file_of(files - 1)), "// the user's edit\n").expect("write");
    let mut times = Vec::new();
    let mut conflict = None;
    for (name, path) in &b.agents {
        let branch = format!("corral/{name}");
        let spec = git::LandSpec {
            root: &b.root,
            agent: name,
            branch: &branch,
            worktree: path,
            base: "main",
            prompt: Some("bench"),
            mode: git::MergeMode::Merge,
            message: None,
            git_env: &[],
        };
        let t = Instant::now();
        match git::land(&spec) {
            Ok(l) => times.push((t.elapsed(), l.how)),
            Err(git::LandError::Conflict { .. }) => conflict = Some(t.elapsed()),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    let ff = times.iter().find(|(_, h)| *h == Some(git::How::FastForward)).map(|(d, _)| *d);
    let merges: Vec<Duration> =
        times.iter().filter(|(_, h)| *h == Some(git::How::MergeCommit)).map(|(d, _)| *d).collect();
    if let Some(d) = ff {
        println!("  merge, fast-forward:             {}", ms(d));
    }
    if !merges.is_empty() {
        let max = merges.iter().max().copied().unwrap_or_default();
        println!(
            "  merge, merge commit (x{}):       median {}, max {}",
            merges.len(),
            ms(median(merges.clone())),
            ms(max)
        );
    }
    if let Some(d) = conflict {
        println!("  merge, conflict found, refused: {}", ms(d));
    }
    let repo = git2::Repository::open(&b.root).expect("open");
    let tree = repo.head().and_then(|h| h.peel_to_tree()).expect("tree");
    let t = Instant::now();
    git::traps(&repo, &[&tree]).expect("traps");
    println!("  (libgit2-trap check, per tree: {})", ms(t.elapsed()));
}
