//! Agents' own hook systems, turned into status signals; and the settings that install corral's
//! hooks into one agent's process without touching the user's settings files.
//!
//! `corral hook EVENT` is called by: Claude Code's hooks (EVENT is the hook event name, JSON on
//! stdin), Codex's `notify` program (EVENT `codex`, the JSON as the last argument), or anything else
//! that wants to say a state outright (EVENT `working`, `idle`, `needs-input`).

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
        _ => None,
    }
}

/// Whether the event is sent exactly when the agent's own turn is over, so it is news even while
/// the screen still shows that turn's last working frame. Claude Code's `Stop` is; Codex's notify
/// is not: it also reports side turns (a title, a summary) finishing while the real turn runs on.
pub fn ends_the_turn(event: &str) -> bool {
    event == "Stop"
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
}

pub fn flavor_of(program: &str) -> Option<Flavor> {
    let base = std::path::Path::new(program).file_name()?.to_str()?;
    if base.starts_with("claude") {
        Some(Flavor::Claude)
    } else if base.starts_with("codex") {
        Some(Flavor::Codex)
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
    }
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
        assert_eq!(flavor_of("aider"), None);
    }
}
