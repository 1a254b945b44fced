//! Review comments (SPEC §9): where in a patch a comment points, how `corral review` spells one on
//! the command line, and the one message an agent gets for all of them. Pure functions: the
//! dashboard's diff view and the server both use them, and the server reads the lines a
//! command-line comment refers to from the agent's worktree.

use std::path::{Component, Path};

use crate::proto::ReviewComment;

/// What a patch line is, for a comment on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spot {
    /// A line of a hunk: added (`+`), removed (`-`, numbered as in the base) or context.
    Line(ReviewComment),
    /// A hunk header (`@@`): the comment is on the whole hunk.
    Hunk(ReviewComment),
}

impl Spot {
    pub fn comment(self) -> ReviewComment {
        match self {
            Spot::Line(c) | Spot::Hunk(c) => c,
        }
    }
}

/// `@@ -a,b +c,d @@`: the first old and new line numbers.
fn hunk_start(header: &str) -> Option<(u32, u32)> {
    let rest = header.strip_prefix("@@ -")?;
    let (old, rest) = rest.split_once(" +")?;
    let new = rest.split_whitespace().next()?;
    let first = |s: &str| s.split(',').next().and_then(|n| n.parse::<u32>().ok());
    Some((first(old)?, first(new)?))
}

/// The file a `diff --git a/X b/Y` header is about (its new name).
fn header_path(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("diff --git ")?;
    Some(rest.split_once(" b/").map_or(rest, |(_, b)| b))
}

/// What the patch line at `at` is, for a comment: a hunk line with its path and number, a hunk
/// header with the hunk's range and lines; None for file headers and anything else.
pub fn locate(lines: &[String], at: usize) -> Option<Spot> {
    let here = lines.get(at)?;
    // Walk back to the hunk header and the file header above it.
    let mut hunk = None;
    let mut path = None;
    for i in (0..=at).rev() {
        let l = &lines[i];
        if hunk.is_none() && l.starts_with("@@") {
            hunk = Some(i);
        }
        if let Some(p) = header_path(l) {
            path = Some(p.to_string());
            break;
        }
    }
    let (path, h) = (path?, hunk?);
    let (old0, new0) = hunk_start(&lines[h])?;
    // The hunk's lines: up to the next header of either kind.
    let end = (h + 1..lines.len())
        .find(|&i| lines[i].starts_with("@@") || lines[i].starts_with("diff --git "))
        .unwrap_or(lines.len());
    let body = &lines[h + 1..end];
    if at == h {
        let added_or_kept = body.iter().filter(|l| !l.starts_with('-')).count() as u32;
        let (line, last) = if added_or_kept == 0 {
            (old0, old0 + body.len().saturating_sub(1) as u32)
        } else {
            (new0, new0 + added_or_kept - 1)
        };
        return Some(Spot::Hunk(ReviewComment {
            path,
            line,
            end: (last > line).then_some(last),
            old: added_or_kept == 0,
            excerpt: body.to_vec(),
            text: String::new(),
        }));
    }
    if at < h || at >= end || here.starts_with('\\') {
        return None;
    }
    let (mut old, mut new) = (old0, new0);
    for l in &lines[h + 1..at] {
        match l.as_bytes().first() {
            Some(b'+') => new += 1,
            Some(b'-') => old += 1,
            Some(b'\\') => {}
            _ => {
                old += 1;
                new += 1;
            }
        }
    }
    let removed = here.starts_with('-');
    Some(Spot::Line(ReviewComment {
        path,
        line: if removed { old } else { new },
        end: None,
        old: removed,
        excerpt: vec![here.clone()],
        text: String::new(),
    }))
}

/// `PATH:LINE:TEXT` or `PATH:FIRST-LAST:TEXT` (the path may itself hold colons: the first
/// `:NUMBER:` ends it).
pub fn parse_cli(spec: &str) -> Result<ReviewComment, String> {
    let bad =
        || format!("comment '{spec}' is not PATH:LINE:TEXT (e.g. src/main.rs:40:handle the error)");
    let mut from = 0;
    while let Some(i) = spec[from..].find(':').map(|i| i + from) {
        let rest = &spec[i + 1..];
        if let Some((num, text)) = rest.split_once(':') {
            let range = match num.split_once('-') {
                Some((a, b)) => a.parse::<u32>().ok().zip(b.parse::<u32>().ok()),
                None => num.parse::<u32>().ok().map(|n| (n, n)),
            };
            if let Some((line, last)) = range {
                let path = &spec[..i];
                if path.is_empty() || text.trim().is_empty() {
                    return Err(bad());
                }
                if line == 0 || last < line {
                    return Err(format!("comment '{spec}': lines are numbered from 1"));
                }
                return Ok(ReviewComment {
                    path: path.to_string(),
                    line,
                    end: (last > line).then_some(last),
                    old: false,
                    excerpt: Vec::new(),
                    text: text.trim().to_string(),
                });
            }
        }
        from = i + 1;
    }
    Err(bad())
}

/// Fill in the lines a comment without an excerpt refers to, from the file in `worktree`.
/// A path outside the worktree, a missing file or a line past its end is an error naming it.
pub fn read_excerpts(worktree: &Path, comments: &mut [ReviewComment]) -> Result<(), String> {
    for c in comments.iter_mut().filter(|c| c.excerpt.is_empty()) {
        let rel = Path::new(&c.path);
        if !rel.components().all(|p| matches!(p, Component::Normal(_) | Component::CurDir)) {
            return Err(format!("comment on '{}': give a path inside the worktree", c.path));
        }
        let text = std::fs::read(worktree.join(rel))
            .map_err(|e| format!("comment on '{}': cannot read it in the worktree: {e}", c.path))?;
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let last = c.end.unwrap_or(c.line);
        if last as usize > lines.len() {
            return Err(format!(
                "comment on {}:{}: the file has {} line(s)",
                c.path,
                last,
                lines.len()
            ));
        }
        c.excerpt = lines[c.line as usize - 1..last as usize]
            .iter()
            .map(|l| format!(" {}", l.replace('\t', "    ")))
            .collect();
    }
    Ok(())
}

/// Where a comment points, as an agent (and an editor) reads it: `path:line` or `path:a-b`.
fn place(c: &ReviewComment) -> String {
    let range = match c.end {
        Some(e) => format!("{}-{e}", c.line),
        None => c.line.to_string(),
    };
    let side = if c.old { " (in the base: lines you removed)" } else { "" };
    format!("{}:{range}{side}", c.path)
}

/// All comments as one message: what each is about, where, and the lines it refers to as the
/// diff shows them.
pub fn message(comments: &[ReviewComment]) -> String {
    let n = comments.len();
    let mut out = format!(
        "Review of your changes: {n} comment{}. Address each one, then say what you changed.\n",
        if n == 1 { "" } else { "s" }
    );
    for (i, c) in comments.iter().enumerate() {
        out.push_str(&format!("\n{}. {}\n", i + 1, place(c)));
        if !c.excerpt.is_empty() {
            out.push_str("```diff\n");
            for l in &c.excerpt {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("```\n");
        }
        out.push_str(c.text.trim());
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn patch() -> Vec<String> {
        crate::tui::fixtures::PATCH.lines().map(str::to_string).collect()
    }

    fn at(lines: &[String], needle: &str) -> usize {
        lines.iter().position(|l| l.contains(needle)).unwrap()
    }

    #[test]
    fn lines_are_numbered_in_the_new_file_and_removed_ones_in_the_base() {
        let p = patch();
        let Some(Spot::Line(c)) = locate(&p, at(&p, "(amount * 99 + 50)")) else { panic!() };
        assert_eq!((c.path.as_str(), c.line, c.old), ("src/pay.rs", 12, false));
        assert_eq!(c.excerpt, ["+    (amount * 99 + 50) / 100"]);
        let Some(Spot::Line(c)) = locate(&p, at(&p, "-    amount - fee")) else { panic!() };
        assert_eq!((c.line, c.old), (11, true));
        let Some(Spot::Line(c)) = locate(&p, at(&p, "pub struct Cart")) else { panic!() };
        assert_eq!((c.path.as_str(), c.line), ("src/cart.rs", 2));
        let Some(Spot::Line(c)) = locate(&p, at(&p, "fn rounds_half_up")) else { panic!() };
        assert_eq!((c.path.as_str(), c.line), ("tests/refund.rs", 2));
    }

    #[test]
    fn a_hunk_header_stands_for_the_whole_hunk_and_file_headers_for_nothing() {
        let p = patch();
        let Some(Spot::Hunk(c)) = locate(&p, at(&p, "@@ -10,7 +10,8 @@")) else { panic!() };
        assert_eq!((c.line, c.end, c.excerpt.len()), (10, Some(15), 7));
        assert_eq!(locate(&p, at(&p, "diff --git a/src/cart.rs")), None);
        assert_eq!(locate(&p, at(&p, "+++ b/src/cart.rs")), None);
        assert_eq!(locate(&p, 999), None);
    }

    #[test]
    fn command_line_comments_and_their_mistakes() {
        let c = parse_cli("src/a.rs:40:handle: the error").unwrap();
        assert_eq!(
            (c.path.as_str(), c.line, c.end, c.text.as_str()),
            ("src/a.rs", 40, None, "handle: the error")
        );
        let c = parse_cli("odd:name.rs:3-5:why").unwrap();
        assert_eq!((c.path.as_str(), c.line, c.end), ("odd:name.rs", 3, Some(5)));
        for bad in ["src/a.rs:40", "src/a.rs:x:y", ":4:t", "a.rs:4: ", "nothing"] {
            assert!(parse_cli(bad).unwrap_err().contains("PATH:LINE:TEXT"), "{bad}");
        }
        assert!(parse_cli("a.rs:0:t").unwrap_err().contains("numbered from 1"));
    }

    #[test]
    fn excerpts_come_from_the_worktree_and_stay_inside_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), "one\ntwo\nthree\n").unwrap();
        let mut cs = vec![parse_cli("a.txt:2-3:x").unwrap()];
        read_excerpts(tmp.path(), &mut cs).unwrap();
        assert_eq!(cs[0].excerpt, [" two", " three"]);
        let mut cs = vec![parse_cli("a.txt:4:x").unwrap()];
        assert!(
            read_excerpts(tmp.path(), &mut cs).unwrap_err().contains("a.txt:4: the file has 3")
        );
        let mut cs = vec![parse_cli("../a.txt:1:x").unwrap()];
        assert!(read_excerpts(tmp.path(), &mut cs).unwrap_err().contains("inside the worktree"));
        let mut cs = vec![parse_cli("gone.txt:1:x").unwrap()];
        assert!(read_excerpts(tmp.path(), &mut cs).unwrap_err().contains("'gone.txt'"));
    }

    #[test]
    fn one_message_names_each_place_shows_its_lines_and_says_what_to_do() {
        let p = patch();
        let mut a = locate(&p, at(&p, "(amount * 99 + 50)")).unwrap().comment();
        a.text = "Use the bank's rounding helper.".into();
        let mut b = locate(&p, at(&p, "@@ -1,3 +1,4 @@")).unwrap().comment();
        b.text = "Why import it here?".into();
        let m = message(&[a, b]);
        assert!(m.starts_with("Review of your changes: 2 comments."), "{m}");
        assert!(m.contains("\n1. src/pay.rs:12\n```diff\n+    (amount * 99 + 50) / 100\n```\nUse the bank's rounding helper.\n"), "{m}");
        assert!(m.contains("\n2. src/cart.rs:1-4\n```diff\n+use crate::pay::refund;\n"), "{m}");
        assert!(m.ends_with("Why import it here?"), "{m}");
    }
}
