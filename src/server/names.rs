//! Agent names: short, `[a-z0-9-]`, unique per repository, and also the branch suffix and the
//! worktree directory name, so a bad one must never reach git or the file system.

pub const MAX_NAME: usize = 40;

/// Check a name given by the user; the error says what is wrong with it, naming it.
pub fn validate(name: &str) -> Result<(), String> {
    let shown: String = name.chars().take(60).collect();
    if name.is_empty() {
        return Err("agent name is empty; use lowercase letters, digits and '-'".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("agent name '{shown}…' is longer than {MAX_NAME} characters"));
    }
    if let Some(bad) =
        name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "agent name '{shown}' has '{bad}'; use only lowercase letters, digits and '-'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!("agent name '{shown}' must not start or end with '-'"));
    }
    Ok(())
}

/// A name made from the first words of a prompt (or the profile when there is none).
pub fn from_prompt(prompt: Option<&str>, profile: &str) -> String {
    let mut slug = String::new();
    for word in prompt.unwrap_or("").split_whitespace().take(3) {
        let w: String = word
            .chars()
            .filter_map(|c| {
                let c = c.to_ascii_lowercase();
                (c.is_ascii_lowercase() || c.is_ascii_digit()).then_some(c)
            })
            .collect();
        if w.is_empty() {
            continue;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&w);
        if slug.len() >= 20 {
            break;
        }
    }
    slug.truncate(24);
    let slug = slug.trim_matches('-').to_string();
    if validate(&slug).is_ok() {
        return slug;
    }
    let p: String = profile.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let p = p.to_ascii_lowercase();
    if p.is_empty() { "agent".into() } else { p }
}

/// `count` free names starting from `base`: `base` itself (count 1, if free), else `base-2`, …; for
/// several, `base-1` … `base-N` when free, skipping taken ones. `taken` says whether a name is used.
pub fn allocate(
    base: &str,
    count: usize,
    explicit: bool,
    taken: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    if count == 1 && (explicit || !taken(base)) {
        out.push(base.to_string());
        return out;
    }
    let mut i = if count == 1 { 2 } else { 1 };
    while out.len() < count {
        let cand = format!("{base}-{i}");
        if !taken(&cand) && !out.contains(&cand) {
            out.push(cand);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_or_break_git_are_refused() {
        for bad in
            ["", "../x", "a/b", "A", "é", "名前", "a b", "-x", "x-", ".hidden", "a..b", "x.lock"]
        {
            let err = validate(bad).unwrap_err();
            assert!(err.contains("agent name"), "{bad}: {err}");
        }
        assert!(validate(&"a".repeat(41)).unwrap_err().contains("longer than 40"));
        for good in ["a", "fix-login-2", "x9", &"a".repeat(40)] {
            validate(good).unwrap();
        }
    }

    #[test]
    fn prompt_names_are_valid_slugs() {
        assert_eq!(from_prompt(Some("Fix the login bug!"), "claude"), "fix-the-login");
        assert_eq!(from_prompt(Some("héllo wörld"), "claude"), "hllo-wrld");
        assert_eq!(from_prompt(Some("!!! ???"), "claude"), "claude");
        assert_eq!(from_prompt(None, "shell"), "shell");
        let long = from_prompt(Some("supercalifragilisticexpialidocious word"), "x");
        validate(&long).unwrap();
    }

    #[test]
    fn allocation_skips_taken_names() {
        let taken = |n: &str| n == "fix" || n == "fix-2";
        assert_eq!(allocate("fix", 1, false, taken), vec!["fix-3"]);
        assert_eq!(allocate("new", 1, false, taken), vec!["new"]);
        assert_eq!(allocate("fix", 3, false, taken), vec!["fix-1", "fix-3", "fix-4"]);
    }
}
