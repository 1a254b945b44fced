//! Configuration: defaults compiled in from `assets/config.toml`, the user's file over them, the
//! repository's `.corral.toml` over that. Tables merge key by key; other values replace. Every layer
//! is checked on its own first, so an error names the file, the line and the key. Unknown keys are
//! errors. This module reads files; it runs nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub const DEFAULTS: &str = include_str!("../assets/config.toml");

/// Built-in profiles tried, in order, when no default agent is configured.
pub const AUTO_PROFILES: [&str; 5] = ["claude", "codex", "gemini", "aider", "opencode"];

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: line {line}: {message}")]
    Syntax { file: String, line: usize, message: String },
    #[error("{file}: line {line}: key '{key}': {message}")]
    Key { file: String, line: usize, key: String, message: String },
    #[error("cannot read {file}: {message}")]
    Read { file: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub default_agent: String,
    pub worktree: WorktreeConfig,
    pub ports: PortsConfig,
    pub terminal: TerminalConfig,
    pub status: StatusConfig,
    pub agents: BTreeMap<String, Profile>,
    pub merge: MergeConfig,
    pub keys: KeysConfig,
    /// Other machines whose corral servers this one shows (`--host NAME`, `ls --all`, `hosts`).
    pub hosts: BTreeMap<String, HostConfig>,
}

/// A machine reached over OpenSSH: `ssh` is the whole command that logs in (any options), and
/// `command` is how corral is run there; corral appends `proxy` to it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub ssh: Vec<String>,
    #[serde(default = "default_remote_command")]
    pub command: Vec<String>,
}

fn default_remote_command() -> Vec<String> {
    vec!["corral".to_string()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MergeConfig {
    /// How `corral sync` (and the landing queue's sync) brings the base's new commits into an agent.
    pub sync: SyncMode,
    /// The landing queue's gate: a command and its arguments run in the agent's worktree on the
    /// commit about to land; empty means no gate.
    pub gate: Vec<String>,
    /// A gate still running after this long is killed and counts as failed.
    pub gate_timeout_secs: u64,
    /// What happens to an agent the queue blocks.
    pub on_failure: OnFailure,
    /// How many of the gate's last lines the agent is told.
    pub tell_lines: usize,
    /// How many times a told agent is queued again.
    pub retries: u32,
    /// Sync other idle agents after each landing.
    pub auto_sync: AutoSync,
}

impl Default for MergeConfig {
    fn default() -> MergeConfig {
        MergeConfig {
            sync: SyncMode::Merge,
            gate: Vec::new(),
            gate_timeout_secs: 1800,
            on_failure: OnFailure::Tell,
            tell_lines: 40,
            retries: 2,
            auto_sync: AutoSync::Idle,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Tell the agent what failed (as a queued message) and queue it again once it worked on it.
    #[default]
    Tell,
    /// Only mark it blocked.
    Stop,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoSync {
    /// Idle agents whose changes are predicted not to conflict are synced after each landing.
    #[default]
    Idle,
    Off,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    #[default]
    Merge,
    Rebase,
}

/// Status detection and notifications (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// How long an agent must stay quiet (or its idle screen hold) before it counts as idle.
    pub idle_after_ms: u64,
    /// How long an agent may be `working` with no screen or file change before it is `stuck`.
    pub stuck_after_secs: u64,
    /// Run when an agent needs attention, with CORRAL_AGENT, CORRAL_STATUS, CORRAL_WORKTREE, … set.
    pub notify_command: Vec<String>,
    /// The same notification for the same agent is not repeated within this time.
    pub notify_debounce_secs: u64,
    /// Ring the bell and send an OSC 9 desktop notification to attached clients.
    pub bell: bool,
    /// A dialog no profile's rule knows (a selection cursor with a confirm/cancel hint): tried
    /// before each profile's `idle` rules, so an agent that asks something new is `needs-input`.
    pub dialog: Option<crate::status::RuleSpec>,
    /// How long a key rule's state is shown without the agent's hook or screen confirming it.
    pub key_confirm_ms: u64,
}

impl Default for StatusConfig {
    fn default() -> StatusConfig {
        StatusConfig {
            idle_after_ms: 1500,
            stuck_after_secs: 300,
            notify_command: Vec::new(),
            notify_debounce_secs: 30,
            bell: true,
            dialog: None,
            key_confirm_ms: 2000,
        }
    }
}

impl StatusConfig {
    pub fn timing(&self) -> crate::status::Timing {
        crate::status::Timing {
            idle_after: std::time::Duration::from_millis(self.idle_after_ms),
            stuck_after: std::time::Duration::from_secs(self.stuck_after_secs),
            key_confirm: std::time::Duration::from_millis(self.key_confirm_ms),
            ..crate::status::Timing::default()
        }
    }
}

/// The dashboard's keys, per mode: key name → action name (`"none"` takes a default away).
/// Names are checked as the file is read, so a typo is reported with its file and line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub normal: BTreeMap<crate::tui::keymap::KeySpec, crate::tui::action::Action>,
    pub focus: BTreeMap<crate::tui::keymap::KeySpec, crate::tui::action::Action>,
    pub dialog: BTreeMap<crate::tui::keymap::KeySpec, crate::tui::action::Action>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorktreeConfig {
    pub dir: String,
    pub branch_prefix: String,
    pub copy: Vec<String>,
    pub setup: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortsConfig {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalConfig {
    pub scrollback: usize,
    pub detach_key: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    #[default]
    Arg,
    Stdin,
    Type,
    None,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    pub command: Vec<String>,
    pub resume: Vec<String>,
    /// How to start a copy of another agent's conversation (`corral fork`): `{parent_session}`
    /// is the forked agent's session, `{session}` the new one's. Empty: the fork starts fresh.
    pub fork: Vec<String>,
    pub prompt: PromptMode,
    pub prompt_flag: String,
    pub env: BTreeMap<String, String>,
    /// Install corral's hooks into the agent (Claude Code, Codex, OpenCode), for exact status.
    pub hooks: bool,
    /// Screen rules for the status badge, tried in order (see `status::rules`).
    pub rules: Vec<crate::status::RuleSpec>,
    /// What keys the user sends the agent do, read from the screen (see `status::keys`).
    pub key_rules: Vec<crate::status::KeyRuleSpec>,
}

impl Profile {
    /// The rules the badge reads this profile's screens with: its own, with `[status] dialog`
    /// before the first rule that says `idle` (an unknown dialog must not read as the idle prompt
    /// it is drawn over). A profile without rules goes by activity alone and gets none.
    pub fn status_rules(&self, status: &StatusConfig) -> Vec<crate::status::RuleSpec> {
        let mut rules = self.rules.clone();
        if let Some(dialog) = &status.dialog
            && !rules.is_empty()
        {
            let at = rules
                .iter()
                .position(|r| r.status == crate::status::Status::Idle)
                .unwrap_or(rules.len());
            rules.insert(at, dialog.clone());
        }
        rules
    }
}

impl Default for WorktreeConfig {
    fn default() -> WorktreeConfig {
        WorktreeConfig {
            dir: String::new(),
            branch_prefix: "corral/".into(),
            copy: Vec::new(),
            setup: Vec::new(),
        }
    }
}

impl Default for PortsConfig {
    fn default() -> PortsConfig {
        PortsConfig { first: 4100, last: 4999 }
    }
}

impl Default for TerminalConfig {
    fn default() -> TerminalConfig {
        TerminalConfig { scrollback: 5000, detach_key: "ctrl-]".into() }
    }
}

/// The configuration in force for one repository, and which keys its own file set that run
/// commands (they need the user's approval, SPEC §10).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub repo_file: Option<RepoFile>,
}

#[derive(Debug, Clone)]
pub struct RepoFile {
    pub path: PathBuf,
    pub content: String,
    /// Dotted keys in the repository's file that define commands, e.g. `worktree.setup`.
    pub command_keys: Vec<String>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Parse one layer, checking it alone against the schema so errors point into this file.
fn parse_layer(file: &str, src: &str) -> Result<toml::Table, ConfigError> {
    let table: toml::Table = toml::from_str(src).map_err(|e| ConfigError::Syntax {
        file: file.into(),
        line: e.span().map(|s| line_of(src, s.start)).unwrap_or(1),
        message: e.message().trim().to_string(),
    })?;
    let de = toml::de::Deserializer::parse(src).map_err(|e| ConfigError::Syntax {
        file: file.into(),
        line: e.span().map(|s| line_of(src, s.start)).unwrap_or(1),
        message: e.message().trim().to_string(),
    })?;
    if let Err(e) = serde_path_to_error::deserialize::<_, Config>(de) {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().trim().to_string();
        let line = inner.span().map(|s| line_of(src, s.start)).unwrap_or(1);
        // For an unknown key the path names the table; the message names the key itself.
        let key = match unknown_field(&message) {
            Some(field) if key == "." || key.is_empty() => field,
            Some(field) if !key.ends_with(&field) => format!("{key}.{field}"),
            Some(_) => key,
            None => key,
        };
        return Err(ConfigError::Key { file: file.into(), line, key, message });
    }
    Ok(table)
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn command_keys(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(toml::Value::Table(w)) = table.get("worktree")
        && w.get("setup").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty())
    {
        keys.push("worktree.setup".to_string());
    }
    if let Some(toml::Value::Table(st)) = table.get("status")
        && st.get("notify_command").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty())
    {
        keys.push("status.notify_command".to_string());
    }
    if let Some(toml::Value::Table(m)) = table.get("merge")
        && m.get("gate").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty())
    {
        keys.push("merge.gate".to_string());
    }
    if let Some(toml::Value::Table(hosts)) = table.get("hosts") {
        keys.extend(hosts.keys().map(|h| format!("hosts.{h}")));
    }
    if let Some(toml::Value::Table(agents)) = table.get("agents") {
        for (name, p) in agents {
            if let toml::Value::Table(p) = p {
                for k in ["command", "resume", "fork"] {
                    if p.contains_key(k) {
                        keys.push(format!("agents.{name}.{k}"));
                    }
                }
            }
        }
    }
    keys
}

/// Load defaults, then `user` (if it exists), then the repository's `.corral.toml` (if it exists).
pub fn load(user: &Path, repo_root: Option<&Path>) -> Result<Loaded, ConfigError> {
    let mut merged = parse_layer("built-in config", DEFAULTS)?;
    if let Some(src) = read_optional(user)? {
        merge(&mut merged, parse_layer(&user.display().to_string(), &src)?);
    }
    let mut repo_file = None;
    if let Some(root) = repo_root {
        let path = root.join(".corral.toml");
        if let Some(src) = read_optional(&path)? {
            let layer = parse_layer(&path.display().to_string(), &src)?;
            let keys = command_keys(&layer);
            merge(&mut merged, layer);
            repo_file = Some(RepoFile { path, content: src, command_keys: keys });
        }
    }
    let config: Config = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().trim().to_string()))?;
    if config.ports.first == 0 || config.ports.first > config.ports.last {
        return Err(ConfigError::Invalid(format!(
            "ports: first ({}) must be between 1 and last ({})",
            config.ports.first, config.ports.last
        )));
    }
    if !config.default_agent.is_empty() && !config.agents.contains_key(&config.default_agent) {
        return Err(ConfigError::Invalid(format!(
            "default_agent '{}' is not a profile under [agents]",
            config.default_agent
        )));
    }
    for (name, p) in &config.agents {
        if p.command.is_empty() || p.command[0].is_empty() {
            return Err(ConfigError::Invalid(format!("profile '{name}' has no command")));
        }
        if let Err(e) = crate::status::RuleSet::compile(&p.status_rules(&config.status)) {
            return Err(ConfigError::Invalid(format!("profile '{name}': {e}")));
        }
        if let Err(e) = crate::status::KeyRules::compile(&p.key_rules) {
            return Err(ConfigError::Invalid(format!("profile '{name}': {e}")));
        }
    }
    Ok(Loaded { config, repo_file })
}

/// For what can go on without the user's settings (`ls`, the dashboard): the config, or, when a
/// file is broken, the layers under it that are not (the user's file without the repository's,
/// else the built-in defaults), with the error to report.
pub fn load_or_fallback(user: &Path, repo_root: Option<&Path>) -> (Loaded, Option<ConfigError>) {
    let error = match load(user, repo_root) {
        Ok(l) => return (l, None),
        Err(e) => e,
    };
    let fallback = repo_root
        .and_then(|_| load(user, None).ok())
        .or_else(|| load(Path::new(""), None).ok())
        .unwrap_or_else(|| Loaded { config: Config::default(), repo_file: None });
    (fallback, Some(error))
}

/// When each file a config is read from last changed (`None`: absent), so that a long-running
/// client reloads it only when it did.
pub fn file_stamps(
    user: &Path,
    repo_root: Option<&Path>,
) -> Vec<Option<(std::time::SystemTime, u64)>> {
    let stamp = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    let mut v = vec![stamp(user)];
    if let Some(root) = repo_root {
        v.push(stamp(&root.join(".corral.toml")));
    }
    v
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            Err(ConfigError::Read { file: path.display().to_string(), message: e.to_string() })
        }
    }
}

impl Config {
    /// The profile `name`, or the default one: `default_agent`, else the first auto profile whose
    /// command is on `path`, else `shell`.
    pub fn profile(
        &self,
        name: Option<&str>,
        path: Option<&str>,
    ) -> Result<(String, Profile), String> {
        let chosen = match name {
            Some(n) => n.to_string(),
            None if !self.default_agent.is_empty() => self.default_agent.clone(),
            None => AUTO_PROFILES
                .iter()
                .find(|p| {
                    self.agents
                        .get(**p)
                        .and_then(|prof| prof.command.first())
                        .is_some_and(|cmd| find_in_path(cmd, path).is_some())
                })
                .map(|p| p.to_string())
                .unwrap_or_else(|| "shell".to_string()),
        };
        match self.agents.get(&chosen) {
            Some(p) => Ok((chosen, p.clone())),
            None => {
                let known: Vec<&str> = self.agents.keys().map(String::as_str).collect();
                Err(format!("no agent profile '{chosen}' (profiles: {})", known.join(", ")))
            }
        }
    }
}

/// Find an executable the way a shell would, in the given `PATH` value.
pub fn find_in_path(cmd: &str, path: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return is_exec(&p).then_some(p);
    }
    path?.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(cmd)).find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(user: &str, repo: Option<&str>) -> Result<Loaded, ConfigError> {
        let tmp = tempfile::tempdir().unwrap();
        let user_path = tmp.path().join("config.toml");
        std::fs::write(&user_path, user).unwrap();
        if let Some(r) = repo {
            std::fs::write(tmp.path().join(".corral.toml"), r).unwrap();
        }
        load(&user_path, Some(tmp.path()))
    }

    #[test]
    fn defaults_parse_and_have_every_builtin_profile() {
        let l = load(Path::new("/nonexistent/corral.toml"), None).unwrap();
        for p in ["claude", "codex", "gemini", "aider", "opencode", "shell"] {
            assert!(l.config.agents.contains_key(p), "{p}");
        }
        assert_eq!(l.config.terminal.scrollback, 5000);
        assert_eq!(l.config.worktree.branch_prefix, "corral/");
        assert_eq!(l.config.merge.sync, SyncMode::Merge);
    }

    #[test]
    fn queue_keys_have_defaults_and_a_repo_gate_needs_approval() {
        let l = load_with("", None).unwrap();
        assert!(l.config.merge.gate.is_empty());
        assert_eq!(l.config.merge.on_failure, OnFailure::Tell);
        assert_eq!(l.config.merge.retries, 2);
        assert_eq!(l.config.merge.auto_sync, AutoSync::Idle);
        let l = load_with("", Some("[merge]\ngate = [\"make\", \"test\"]\n")).unwrap();
        assert_eq!(l.config.merge.gate, ["make", "test"]);
        assert_eq!(l.repo_file.unwrap().command_keys, ["merge.gate"]);
        let err = load_with("[merge]\non_failure = \"shout\"\n", None).unwrap_err().to_string();
        assert!(err.contains("merge.on_failure"), "{err}");
    }

    #[test]
    fn merge_sync_mode_is_merge_or_rebase() {
        let l = load_with("[merge]\nsync = \"rebase\"\n", None).unwrap();
        assert_eq!(l.config.merge.sync, SyncMode::Rebase);
        let err = load_with("[merge]\nsync = \"squash\"\n", None).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("merge.sync"), "{err}");
    }

    #[test]
    fn layers_merge_tables_and_replace_values() {
        let l = load_with(
            "[ports]\nfirst = 5000\nlast = 5010\n[agents.claude.env]\nX = \"1\"\n",
            Some("[worktree]\ncopy = [\".env.test\"]\n"),
        )
        .unwrap();
        assert_eq!((l.config.ports.first, l.config.ports.last), (5000, 5010));
        let claude = &l.config.agents["claude"];
        assert_eq!(claude.command[0], "claude", "merge keeps the default command");
        assert_eq!(claude.env["X"], "1");
        assert_eq!(l.config.worktree.copy, vec![".env.test"]);
        assert!(l.repo_file.unwrap().command_keys.is_empty());
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = load_with("a = 1\n[ports\n", None).unwrap_err().to_string();
        assert!(err.contains("config.toml: line 2"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = load_with("[worktree]\n\nbranch_prefx = \"x/\"\n", None).unwrap_err().to_string();
        assert!(err.contains("config.toml: line 3"), "{err}");
        assert!(err.contains("key 'worktree.branch_prefx'"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let err = load_with("[ports]\nfirst = 1\nlast = \"many\"\n", None).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("key 'ports.last'"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn repo_file_errors_name_the_repo_file() {
        let err = load_with("", Some("[agents.x]\nprompt = \"loud\"\n")).unwrap_err().to_string();
        assert!(err.contains(".corral.toml: line 2"), "{err}");
        assert!(err.contains("agents.x.prompt"), "{err}");
    }

    #[test]
    fn repo_commands_are_flagged_for_approval() {
        let l = load_with(
            "",
            Some("[worktree]\nsetup = [\"npm ci\"]\n[agents.mine]\ncommand = [\"./run.sh\"]\n"),
        )
        .unwrap();
        let keys = l.repo_file.unwrap().command_keys;
        assert_eq!(keys, vec!["worktree.setup", "agents.mine.command"]);
    }

    #[test]
    fn a_broken_file_falls_back_to_the_layers_under_it() {
        let tmp = tempfile::tempdir().unwrap();
        let user = tmp.path().join("config.toml");
        std::fs::write(&user, "default_agent = \"shell\"\n").unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        std::fs::write(repo.join(".corral.toml"), "[worktrees]\ndir = \"x\"\n").unwrap();
        let (l, e) = load_or_fallback(&user, Some(&repo));
        let e = e.unwrap().to_string();
        assert!(e.contains(".corral.toml: line 1: key 'worktrees'"), "{e}");
        assert_eq!(l.config.default_agent, "shell", "the user's file still applies");
        std::fs::write(&user, "default_agent = 3\n").unwrap();
        let (l, e) = load_or_fallback(&user, None);
        assert!(e.unwrap().to_string().contains("key 'default_agent'"));
        assert!(l.config.agents.contains_key("shell"), "the built-in defaults");
    }

    #[test]
    fn profile_without_command_is_refused() {
        let err = load_with("[agents.bare]\nprompt = \"type\"\n", None).unwrap_err().to_string();
        assert!(err.contains("profile 'bare' has no command"), "{err}");
    }

    #[test]
    fn default_profile_is_first_on_path_else_shell() {
        let tmp = tempfile::tempdir().unwrap();
        let l = load(Path::new("/nonexistent"), None).unwrap();
        let empty = tmp.path().to_str().unwrap();
        assert_eq!(l.config.profile(None, Some(empty)).unwrap().0, "shell");
        let bin = tmp.path().join("codex");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(l.config.profile(None, Some(empty)).unwrap().0, "codex");
        let err = l.config.profile(Some("nope"), None).unwrap_err();
        assert!(err.contains("no agent profile 'nope'"), "{err}");
    }
}
