//! Agents' own hook systems, turned into status signals; and the settings that install corral's
//! hooks into one agent's process without touching the user's settings files.
//!
//! `corral hook EVENT` is called by: Claude Code's hooks (EVENT is the hook event name, JSON on
//! stdin), Codex's `notify` program (EVENT `codex`, the JSON as the last argument), corral's
//! OpenCode plugin (EVENT `opencode`, the JSON as the last argument: `assets/opencode-plugin.js`),
//! Aider's notifications command (EVENT `aider`), or anything else that wants to say a state
//! outright (EVENT `working`, `idle`, `needs-input`).

use serde_json::Value;

use super::Status;

/// What a hook event says about the agent, with a reason for `status_reason`; `None` for events
/// that say nothing about its state (session start and end, a subagent stopping).
pub fn interpret(event: &str, payload: &str) -> Option<(Status, String)> {
    let json: Value = serde_json::from_str(payload.trim()).unwrap_or(Value::Null);
    let field = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or("");
    let said = |s: Status, why: String| Some((s, why));
    match event {
        "working" | "idle" | "needs-input" | "stuck" => {
            let s = match event {
                "working" => Status::Working,
                "idle" => Status::Idle,
                "stuck" => Status::Stuck,
                _ => Status::NeedsInput,
            };
            said(s, event.to_string())
        }
        // Claude Code.
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure" | "PreCompact"
        | "SubagentStart" => {
            let tool = field("tool_name");
            let why = if tool.is_empty() { event.to_string() } else { format!("{event} ({tool})") };
            said(Status::Working, why)
        }
        "PermissionRequest" => {
            let tool = field("tool_name");
            said(Status::NeedsInput, format!("{event} ({tool})"))
        }
        "Notification" => {
            let kind = field("notification_type");
            let message = field("message");
            let status = match kind {
                "permission_prompt" | "elicitation_dialog" => Some(Status::NeedsInput),
                "idle_prompt" => Some(Status::Idle),
                "" if message.contains("permission") => Some(Status::NeedsInput),
                "" if message.contains("waiting for your input") => Some(Status::Idle),
                _ => None,
            }?;
            let what = if kind.is_empty() { message } else { kind };
            said(status, format!("{event} ({what})"))
        }
        "Stop" => said(Status::Idle, event.to_string()),
        // Codex's notify program.
        "codex" => match field("type") {
            "agent-turn-complete" => {
                said(Status::Idle, "codex notify (agent-turn-complete)".into())
            }
            "approval-requested" => {
                said(Status::NeedsInput, "codex notify (approval-requested)".into())
            }
            _ => None,
        },
        // corral's OpenCode plugin, forwarding OpenCode's own events (subagents' sessions left out).
        "opencode" => {
            let kind = field("type");
            let status = match kind {
                "session.status" => match field("status") {
                    "busy" | "retry" => Status::Working,
                    "idle" => Status::Idle,
                    _ => return None,
                },
                "permission.asked" | "question.asked" => Status::NeedsInput,
                // Answered: the tool runs, or (rejected) the turn ends with an idle of its own.
                "permission.replied" | "question.replied" | "question.rejected" => Status::Working,
                _ => return None,
            };
            let what = if kind == "session.status" {
                format!("{kind} {}", field("status"))
            } else {
                kind.to_string()
            };
            said(status, format!("opencode plugin ({what})"))
        }
        _ => None,
    }
}

/// Whether the event is sent exactly when the agent's own turn is over, so it is news even while
/// the screen still shows that turn's last working frame. Claude Code's `Stop` is, and so are
/// OpenCode's events (its plugin leaves subagents' sessions out; OpenCode keeps "esc interrupt" on
/// screen for a while after its idle, and draws its permission prompt after asking); Codex's
/// notify is not: it also reports side turns (a title, a summary) finishing while the real turn
/// runs on.
pub fn ends_the_turn(event: &str) -> bool {
    matches!(event, "Stop" | "opencode")
}

/// Claude Code's hook events corral listens to. Not `PreToolUse`: it says working, which the agent
/// already is while the model's answer calls a tool, and Claude Code runs the tool (or asks for
/// permission) only once every PreToolUse hook has finished, so it would only make the agent, and
/// its permission dialog, later.
pub const CLAUDE_EVENTS: [&str; 7] = [
    "UserPromptSubmit",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "PreCompact",
];

/// Claude Code waits for a hook to finish before it goes on (a hook may block a prompt, a tool or
/// the end of a turn); corral's only listen, so they run in the background where nothing comes
/// right after them that they could be overtaken by: the prompt's request to the model, the
/// permission dialog (and with it the screen rule that reads it) and the idle prompt then come as
/// soon as without corral. `PostToolUse` stays in line: the next tool's `PermissionRequest` may
/// follow it at once, and must not arrive before it.
fn claude_async(event: &str) -> bool {
    !matches!(event, "PostToolUse" | "PostToolUseFailure")
}

/// Which hook system an agent's command has, from its program name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Claude,
    Codex,
    OpenCode,
}

pub fn flavor_of(program: &str) -> Option<Flavor> {
    let base = std::path::Path::new(program).file_name()?.to_str()?;
    if base.starts_with("claude") {
        Some(Flavor::Claude)
    } else if base.starts_with("codex") {
        Some(Flavor::Codex)
    } else if base.starts_with("opencode") {
        Some(Flavor::OpenCode)
    } else {
        None
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Arguments that install corral's hooks for one run of the agent, calling `exe` (corral itself):
/// Claude Code takes extra settings as JSON with `--settings` (layered over the user's own), Codex
/// a config override with `-c`. Nothing is written to the user's files.
pub fn install_args(flavor: Flavor, exe: &str) -> Vec<String> {
    match flavor {
        Flavor::Claude => {
            let mut hooks = serde_json::Map::new();
            for event in CLAUDE_EVENTS {
                let command = format!("{} hook {event}", shell_quote(exe));
                let mut hook =
                    serde_json::json!({"type": "command", "command": command, "timeout": 10});
                if claude_async(event)
                    && let Some(m) = hook.as_object_mut()
                {
                    m.insert("async".into(), Value::Bool(true));
                }
                let mut entry = serde_json::json!({ "hooks": [hook] });
                if matches!(event, "PostToolUse" | "PostToolUseFailure" | "PermissionRequest")
                    && let Some(m) = entry.as_object_mut()
                {
                    m.insert("matcher".into(), Value::String("*".into()));
                }
                hooks.insert(event.to_string(), Value::Array(vec![entry]));
            }
            let settings = serde_json::json!({ "hooks": hooks });
            vec!["--settings".into(), settings.to_string()]
        }
        Flavor::Codex => {
            // A TOML array of strings; JSON string syntax is valid TOML for these.
            let arr = serde_json::json!([exe, "hook", "codex"]);
            vec!["-c".into(), format!("notify={arr}")]
        }
        // Its hooks come in through the environment (`install_env`).
        Flavor::OpenCode => Vec::new(),
    }
}

/// corral's OpenCode plugin; `__CORRAL_EXE__` becomes the path of corral as a JS string.
const OPENCODE_PLUGIN: &str = include_str!("../../assets/opencode-plugin.js");

/// The plugin file for corral at `exe`, under `dir`, written if it is missing or differs (one
/// file per corral binary, so two builds side by side do not call each other's).
fn opencode_plugin(dir: &std::path::Path, exe: &str) -> anyhow::Result<std::path::PathBuf> {
    let text = OPENCODE_PLUGIN.replace("__CORRAL_EXE__", &Value::String(exe.into()).to_string());
    let path = dir.join(format!("opencode-{}.js", crate::paths::short_hash(exe)));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        crate::paths::write_atomic(&path, text.as_bytes())?;
    }
    Ok(path)
}

/// Environment variables that install corral's hooks for one run of the agent, given the
/// environment it would get (`env`): for OpenCode, its plugin named in `OPENCODE_CONFIG_CONTENT`
/// (added to the user's own, when they set one), which OpenCode layers over its config files.
/// Nothing is written to the user's files; the plugin lives in `plugin_dir` (corral's data).
pub fn install_env(
    flavor: Flavor,
    exe: &str,
    plugin_dir: &std::path::Path,
    env: &[(String, String)],
) -> anyhow::Result<Vec<(String, String)>> {
    if flavor != Flavor::OpenCode {
        return Ok(Vec::new());
    }
    const VAR: &str = "OPENCODE_CONFIG_CONTENT";
    let mut config = match env.iter().find(|(k, _)| k == VAR) {
        Some((_, v)) if !v.trim().is_empty() => match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(m)) => m,
            _ => {
                anyhow::bail!("{VAR} is set and is not a JSON object: corral cannot add its plugin")
            }
        },
        _ => serde_json::Map::new(),
    };
    let plugin = opencode_plugin(plugin_dir, exe)?;
    let spec = Value::String(plugin.to_string_lossy().into_owned());
    match config.get_mut("plugin") {
        Some(Value::Array(list)) => list.push(spec),
        _ => {
            config.insert("plugin".into(), Value::Array(vec![spec]));
        }
    }
    Ok(vec![(VAR.into(), Value::Object(config).to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_events_map_to_states() {
        let p = r#"{"tool_name":"Write"}"#;
        assert_eq!(
            interpret("PreToolUse", p),
            Some((Status::Working, "PreToolUse (Write)".into()))
        );
        assert_eq!(interpret("PermissionRequest", p).unwrap().0, Status::NeedsInput);
        assert_eq!(
            interpret("Notification", r#"{"notification_type":"permission_prompt"}"#).unwrap().0,
            Status::NeedsInput
        );
        assert_eq!(
            interpret("Notification", r#"{"message":"Claude needs your permission to use Write"}"#)
                .unwrap()
                .0,
            Status::NeedsInput
        );
        assert_eq!(
            interpret("Notification", r#"{"notification_type":"idle_prompt"}"#).unwrap().0,
            Status::Idle
        );
        assert_eq!(interpret("Notification", r#"{"notification_type":"auth_success"}"#), None);
        assert_eq!(interpret("Stop", "{}").unwrap().0, Status::Idle);
        assert_eq!(interpret("SessionStart", "{}"), None);
        assert_eq!(interpret("PreToolUse", "not json").unwrap().0, Status::Working);
    }

    #[test]
    fn codex_notify_maps_turn_complete_and_approval() {
        let done = r#"{"type":"agent-turn-complete","turn-id":"1","last-assistant-message":"ok"}"#;
        assert_eq!(interpret("codex", done).unwrap().0, Status::Idle);
        assert_eq!(
            interpret("codex", r#"{"type":"approval-requested"}"#).unwrap().0,
            Status::NeedsInput
        );
        assert_eq!(interpret("codex", r#"{"type":"other"}"#), None);
    }

    #[test]
    fn install_args_quote_the_executable() {
        let a = install_args(Flavor::Claude, "/opt/it's here/corral");
        assert_eq!(a[0], "--settings");
        let v: Value = serde_json::from_str(&a[1]).unwrap();
        let cmd = v["hooks"]["Stop"][0]["hooks"][0]["command"].as_str().unwrap();
        assert_eq!(cmd, r"'/opt/it'\''s here/corral' hook Stop");
        assert_eq!(v["hooks"]["PostToolUse"][0]["matcher"], "*");
        assert_eq!(v["hooks"]["Stop"][0]["hooks"][0]["async"], true);
        assert_eq!(v["hooks"]["PostToolUse"][0]["hooks"][0].get("async"), None);
        assert_eq!(v["hooks"].get("PreToolUse"), None, "it only delays the agent");
        let c = install_args(Flavor::Codex, "/bin/corral");
        assert_eq!(c, vec!["-c", r#"notify=["/bin/corral","hook","codex"]"#]);
        assert_eq!(flavor_of("/x/node_modules/.bin/claude"), Some(Flavor::Claude));
        assert_eq!(flavor_of("/x/.bin/opencode"), Some(Flavor::OpenCode));
        assert_eq!(flavor_of("aider"), None);
        assert!(install_args(Flavor::OpenCode, "/bin/corral").is_empty());
    }

    #[test]
    fn opencode_plugin_events_map_to_states() {
        let ev = |p: &str| interpret("opencode", p);
        assert_eq!(
            ev(r#"{"type":"session.status","status":"busy"}"#),
            Some((Status::Working, "opencode plugin (session.status busy)".into()))
        );
        assert_eq!(ev(r#"{"type":"session.status","status":"retry"}"#).unwrap().0, Status::Working);
        assert_eq!(ev(r#"{"type":"session.status","status":"idle"}"#).unwrap().0, Status::Idle);
        assert_eq!(ev(r#"{"type":"permission.asked"}"#).unwrap().0, Status::NeedsInput);
        assert_eq!(ev(r#"{"type":"question.asked"}"#).unwrap().0, Status::NeedsInput);
        assert_eq!(ev(r#"{"type":"permission.replied"}"#).unwrap().0, Status::Working);
        assert_eq!(ev(r#"{"type":"session.status","status":"new"}"#), None);
        assert_eq!(ev(r#"{"type":"session.diff"}"#), None);
        assert!(ends_the_turn("opencode") && ends_the_turn("Stop") && !ends_the_turn("codex"));
    }

    #[test]
    fn opencode_plugin_is_named_in_its_config_content_beside_the_users() {
        let dir = tempfile::tempdir().unwrap();
        let exe = "/opt/it's \"here\"/corral";
        let env = install_env(Flavor::OpenCode, exe, dir.path(), &[]).unwrap();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].0, "OPENCODE_CONFIG_CONTENT");
        let v: Value = serde_json::from_str(&env[0].1).unwrap();
        let path = v["plugin"][0].as_str().unwrap();
        let js = std::fs::read_to_string(path).unwrap();
        assert!(js.contains(r#"const CORRAL = "/opt/it's \"here\"/corral";"#), "{js}");
        // The user's own content is kept, their plugins too.
        let users = [(
            "OPENCODE_CONFIG_CONTENT".to_string(),
            r#"{"model":"x/y","plugin":["their-plugin"]}"#.to_string(),
        )];
        let env = install_env(Flavor::OpenCode, exe, dir.path(), &users).unwrap();
        let v: Value = serde_json::from_str(&env[0].1).unwrap();
        assert_eq!(v["model"], "x/y");
        assert_eq!(v["plugin"][0], "their-plugin");
        assert_eq!(v["plugin"][1], path);
        let bad = [("OPENCODE_CONFIG_CONTENT".to_string(), "not json".to_string())];
        let e = install_env(Flavor::OpenCode, exe, dir.path(), &bad).unwrap_err();
        assert!(e.to_string().contains("OPENCODE_CONFIG_CONTENT"), "{e}");
        assert!(install_env(Flavor::Claude, exe, dir.path(), &[]).unwrap().is_empty());
    }
}
