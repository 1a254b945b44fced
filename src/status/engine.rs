//! The status engine of one agent: signals in (each with the instant it happened), transitions out.
//!
//! Trust, strongest first: a hook the agent fired, the screen rule that matches, then activity. A
//! hook moves the agent into a state, but agents do not fire hooks for everything (Claude Code fires
//! none when a permission is granted or a turn is interrupted), so a hook holds only until the
//! screen rules show a *different* state than before; then the screen decides again. What a hook or
//! a rule says is taken at once, `idle` included: they describe the agent, and waiting would only
//! show the end of a turn late (SPEC §7). Only an agent that neither describes goes by activity,
//! and its `idle` is a quiet period. `stuck` is `working` with no progress (a screen change that is
//! more than a spinner, or a file change) for the stuck period. No clock is read here: callers pass
//! `now`, so tests run on made-up time.

use std::time::{Duration, Instant};

use super::Status;
use super::keys::KeyMatch;
use super::rules::Evaluation;

/// How long the screen's words must be still before a hook that may be about a side turn ends
/// `working` (see `Engine::settle_for`): longer than the gaps between words of a streamed answer.
const HOOK_SETTLE: Duration = Duration::from_millis(300);
/// How long after a hook that ends the turn (`Stop`) the screen may still show that turn's work
/// before the hook wins; new words within it are a queued prompt starting the next turn.
const TURN_END_GRACE: Duration = Duration::from_millis(200);
/// How long a rule's `idle` must hold when it comes straight from `needs-input`: answering a
/// dialog draws the idle prompt before the work it approved shows (Claude Code: ~0.3 s after a
/// question is answered, so 200 ms read one idle frame each time).
const DIALOG_SETTLE: Duration = Duration::from_millis(400);
/// How long after a character the user typed into an idle agent a change of its screen is the
/// echo of that key (the input box redrawn), not work: the program has to be scheduled, read the
/// key and redraw; a redraw in two frames (erase, then draw) takes two of those.
const TYPING_ECHO: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long `idle` must hold (or the screen be quiet) before the badge says so.
    pub idle_after: Duration,
    /// How long `working` may go without progress before it is `stuck`.
    pub stuck_after: Duration,
    /// With screen rules, how long activity alone may not end `starting`: an agent that loads for
    /// a while before drawing its prompt is not idle, and its rules will say when it is ready.
    pub startup_grace: Duration,
    /// How long the state a key implied (`Engine::on_key`) is shown without the agent's hook or
    /// screen confirming it.
    pub key_confirm: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            idle_after: Duration::from_millis(1500),
            stuck_after: Duration::from_secs(300),
            startup_grace: Duration::from_secs(20),
            key_confirm: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub reason: String,
    pub at: Instant,
    /// Counts transitions, so a consumer can tell "idle again" from "still idle".
    pub seq: u64,
    /// Back from a key's state nobody confirmed (the key did nothing): no news to notify.
    pub key_undone: bool,
}

#[derive(Debug, Clone)]
struct Hold {
    status: Status,
    reason: String,
    at: Instant,
    /// Sent exactly when the agent's turn ended (`hooks::ends_the_turn`).
    ends_turn: bool,
}

/// What a key the user pressed implies, until the agent confirms it (see `Engine::on_key`).
#[derive(Debug, Clone)]
struct KeyHold {
    status: Status,
    reason: String,
    at: Instant,
    /// Any state a rule reads once the screen moves on decides (`KeyRuleSpec::screen_decides`).
    screen_decides: bool,
    /// Pressed while the badge showed a question: the key answers it.
    answers_dialog: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Process,
    Key,
    Hook,
    Rule,
    Activity,
}

#[derive(Debug)]
pub struct Engine {
    timing: Timing,
    status: Status,
    since: Instant,
    reason: String,
    seq: u64,
    hook: Option<Hold>,
    key: Option<KeyHold>,
    /// The user typing into the agent (`Engine::on_typed`): when the burst of keys began, and
    /// its last key.
    typing: Option<(Instant, Instant)>,
    /// The last screen change was the echo of typed keys on an idle agent.
    echo: bool,
    /// The status shown is a key's, and the key was not confirmed in time.
    key_lapsed: bool,
    screen: Option<(Status, String)>,
    /// The deciding rule's `settle_ms`, and when the screen's words last changed.
    settle: Duration,
    last_text_change: Option<Instant>,
    /// When the screen last showed something new: another decided state or other letters (what a
    /// hook is newer or older than).
    screen_news: Option<Instant>,
    /// When the screen's decided state last changed.
    screen_since: Option<Instant>,
    /// The last state a rule said (frames no rule matches left out).
    last_decided: Option<Status>,
    last_change: Option<Instant>,
    first_change: Option<Instant>,
    fingerprint: Option<u64>,
    last_progress: Instant,
    working_since: Option<Instant>,
    exited: Option<String>,
    /// Whether the profile has screen rules (then activity alone does not end `starting` soon).
    has_rules: bool,
    started: Instant,
    /// Resumed from another server: the first screen seen is the one it already showed, not news.
    baseline: bool,
}

impl Engine {
    pub fn new(now: Instant, timing: Timing) -> Engine {
        Engine {
            timing,
            status: Status::Starting,
            since: now,
            reason: "process: started, no output yet".into(),
            seq: 0,
            hook: None,
            key: None,
            typing: None,
            echo: false,
            key_lapsed: false,
            screen: None,
            settle: Duration::ZERO,
            last_text_change: None,
            screen_news: None,
            screen_since: None,
            last_decided: None,
            last_change: None,
            first_change: None,
            fingerprint: None,
            last_progress: now,
            working_since: None,
            exited: None,
            has_rules: false,
            started: now,
            baseline: false,
        }
    }

    /// Go on from the badge a previous server showed (`server --upgrade`): its state and count,
    /// past the start, so the screen and hooks change it from there like any other.
    pub fn resume(&mut self, now: Instant, status: Status, reason: String, seq: u64) {
        let long_ago = now.checked_sub(self.timing.idle_after).unwrap_or(now);
        self.status = status;
        self.reason = reason;
        self.seq = seq;
        self.started = long_ago;
        self.first_change = Some(long_ago);
        self.baseline = true;
        if status == Status::Working {
            self.working_since = Some(now);
        }
    }

    pub fn set_has_rules(&mut self, has_rules: bool) {
        self.has_rules = has_rules;
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn since(&self) -> Instant {
        self.since
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// The screen was evaluated after a change that happened at `changed_at`.
    pub fn on_screen(&mut self, changed_at: Instant, eval: Evaluation) {
        // After a hand-over the first screen is the old server's, redrawn: it changed long ago.
        let changed_at = if std::mem::take(&mut self.baseline) { self.started } else { changed_at };
        let state_changed =
            self.screen.as_ref().map(|(s, _)| *s) != eval.decided.as_ref().map(|(s, _)| *s);
        if state_changed {
            self.screen_since = Some(changed_at);
        }
        if state_changed || self.fingerprint != Some(eval.fingerprint) {
            self.screen_news = Some(changed_at);
        }
        // An idle agent's screen changing just after the user typed a character is the input box
        // drawing it: Gemini CLI erases and redraws the box on every key, Aider's completion
        // list covers its prompt. A frame of that no rule reads is not output that means work.
        // Against the whole burst of keys: the echo of one key may be read after the next key.
        let echo = self.status == Status::Idle
            && self.typing.is_some_and(|(first, last)| {
                changed_at >= first && changed_at < last + TYPING_ECHO
            });
        self.echo = echo;
        if !echo {
            self.last_change = Some(self.last_change.map_or(changed_at, |t| t.max(changed_at)));
        }
        self.first_change.get_or_insert(changed_at);
        if self.fingerprint != Some(eval.fingerprint) {
            self.fingerprint = Some(eval.fingerprint);
            self.last_progress = self.last_progress.max(changed_at);
            self.last_text_change = Some(changed_at);
        }
        self.rules_changed(eval);
    }

    /// The screen was evaluated again without having changed (the rules changed).
    pub fn on_rules(&mut self, eval: Evaluation) {
        self.rules_changed(eval);
    }

    fn rules_changed(&mut self, eval: Evaluation) {
        let old = self.screen.as_ref().map(|(s, _)| *s);
        let new = eval.decided.as_ref().map(|(s, _)| *s);
        // Against the last state a rule said: a frame no rule matches (a redraw) and the same
        // state again is not the screen moving on.
        if new.is_some()
            && new != self.last_decided
            && let (Some(h), Some(n)) = (&self.hook, new)
            && n != h.status
        {
            // The screen moved on to something the hook did not say: the hook is spent.
            self.hook = None;
        }
        if new != old
            && self
                .key
                .as_ref()
                .is_some_and(|k| new == Some(k.status) || (k.screen_decides && new.is_some()))
        {
            // The screen now shows what the key implied (or, for a key whose outcome the screen
            // plainly shows, whatever came of it): it speaks for itself from here.
            self.key = None;
        }
        if new.is_some() {
            self.last_decided = new;
        }
        self.screen = eval.decided;
        self.settle = eval.settle;
    }

    /// The agent's hook said it is in `status`; `ends_turn`: the hook is sent exactly when the
    /// agent's turn is over (not also for side turns).
    pub fn on_hook(&mut self, now: Instant, status: Status, reason: String, ends_turn: bool) {
        if self.exited.is_some() {
            return;
        }
        // A question reported while a key that answered one is held is that question, told late
        // (Claude Code's hooks run in the background and can arrive after the user answered):
        // not news. A new question comes after the agent confirmed the key (its screen or report
        // shows the work), which ends the hold first.
        if self.key.as_ref().is_some_and(|k| {
            now >= k.at
                && (status == k.status
                    || (status == Status::NeedsInput && !k.answers_dialog)
                    || ends_turn)
        }) {
            // The agent's own word on what the key did (or on what came of it): it decides.
            self.key = None;
        }
        self.hook = Some(Hold { status, reason, at: now, ends_turn });
        if status == Status::Working {
            // Activity the hook reports is progress too (a tool ran).
            self.last_progress = self.last_progress.max(now);
        }
    }

    /// Files in the worktree changed at `at`.
    pub fn on_files_changed(&mut self, at: Instant) {
        self.last_progress = self.last_progress.max(at);
    }

    pub fn on_exit(&mut self, reason: String) {
        self.exited = Some(reason);
        self.hook = None;
        self.key = None;
    }

    /// The user typed a character (or Backspace) into the agent: what its screen does in the
    /// next moment is the echo (see `on_screen`).
    pub fn on_typed(&mut self, at: Instant) {
        let first = match self.typing {
            Some((first, last)) if at < last + TYPING_ECHO => first,
            _ => at,
        };
        self.typing = Some((first, at));
    }

    /// The user pressed a key that puts the agent in `status` (`keys::KeyRules` read the screen
    /// it was pressed on: Enter on a prompt with text, a key that approves a dialog). The agent
    /// says so itself only a moment later (its hook, its screen), so the badge shows it at once,
    /// provisionally: a hook or screen that then shows the same state confirms it, a hook that
    /// asks a question or ends the turn overrides it, and if neither comes within `key_confirm`
    /// the badge goes back to what hooks and rules say. Screens that merely have not caught up
    /// yet (the prompt still drawn) do not undo it, unless the rule says the screen decides
    /// (`KeyMatch::screen_decides`): then any state a rule reads once the screen moves on does.
    pub fn on_key(&mut self, now: Instant, key: KeyMatch) {
        if self.exited.is_some() {
            return;
        }
        // Already shown, and what the agent's rules or hooks say now: nothing to hold. Shown only
        // by activity (the echo of text pasted into the prompt), or about to end (a rule's idle
        // waiting for the words to settle), it would go by itself while the agent takes the
        // prompt: the key holds it.
        let (said, _, source) = self.candidate(now);
        if self.status == key.status && said == key.status && source != Source::Activity {
            return;
        }
        self.key = Some(KeyHold {
            status: key.status,
            reason: key.name,
            at: now,
            screen_decides: key.screen_decides,
            answers_dialog: self.status == Status::NeedsInput,
        });
    }

    fn key_due(&self) -> Option<Instant> {
        self.key.as_ref().map(|k| k.at + self.timing.key_confirm)
    }

    fn candidate(&self, now: Instant) -> (Status, String, Source) {
        if let Some(r) = &self.exited {
            return (Status::Exited, r.clone(), Source::Process);
        }
        if let Some(k) = &self.key
            && self.key_due().is_some_and(|due| now < due)
        {
            return (k.status, format!("key: {}", k.reason), Source::Key);
        }
        if let Some(h) = &self.hook {
            // What the screen plainly shows beats a hook that says less: hooks can be stale or
            // about another turn (Codex notifies a finished side turn while its approval prompt
            // waits), so a question on screen is never read as anything else, nor work as idle.
            // Only a hook sent exactly at the end of the agent's own turn is news over work on
            // screen: then a working screen that shows nothing new for a moment is the last frame
            // of that turn, redrawn a moment later; new words are a turn going on (a queued prompt
            // starting).
            let newer_than_hook = !h.ends_turn
                || self.screen_news.is_some_and(|t| t > h.at)
                || now < h.at + TURN_END_GRACE;
            if let Some((shown, name)) = &self.screen
                && ((*shown == Status::NeedsInput && h.status != Status::NeedsInput)
                    || (*shown == Status::Working && h.status == Status::Idle && newer_than_hook))
            {
                return (*shown, format!("rule: {name} (over hook: {})", h.reason), Source::Rule);
            }
            return (h.status, format!("hook: {}", h.reason), Source::Hook);
        }
        if let Some((s, name)) = &self.screen {
            return (*s, format!("rule: {name}"), Source::Rule);
        }
        if self.echo && self.status == Status::Idle {
            // Output a moment ago (the agent's last words) does not make the echo of a key work.
            return (
                Status::Idle,
                "typing: the screen drew the keys typed".into(),
                Source::Activity,
            );
        }
        let ms = self.timing.idle_after.as_millis();
        match self.last_change {
            None => (Status::Starting, "process: started, no output yet".into(), Source::Activity),
            Some(t) if now.saturating_duration_since(t) < self.timing.idle_after => {
                (Status::Working, format!("activity: output within {ms} ms"), Source::Activity)
            }
            Some(_) => (Status::Idle, format!("activity: quiet for {ms} ms"), Source::Activity),
        }
    }

    /// How long the screen's words must have been still before leaving `working` on this signal
    /// (zero: at once). A rule's `settle_ms`, for agents that stream their answer under a screen
    /// that looks done; a hook that may be about a side turn (Codex notifies one finishing while
    /// the real turn streams its answer) waits too, but only long enough to see that no words are
    /// still arriving: it does say a turn ended. Claude's `Stop` and activity never wait.
    fn settle_for(&self, source: Source) -> Duration {
        match source {
            Source::Rule => self.settle,
            Source::Hook if self.hook.as_ref().is_some_and(|h| !h.ends_turn) => {
                self.settle.min(HOOK_SETTLE)
            }
            _ => Duration::ZERO,
        }
    }

    /// When a rule's idle straight after a dialog may be taken.
    fn dialog_due(&self) -> Option<Instant> {
        Some(self.screen_since? + DIALOG_SETTLE)
    }

    /// When the settle period for `source` ends, if it has one.
    fn settle_due(&self, source: Source) -> Option<Instant> {
        let settle = self.settle_for(source);
        if settle.is_zero() {
            return None;
        }
        Some(self.last_text_change? + settle)
    }

    fn in_grace(&self, now: Instant) -> bool {
        self.has_rules && now.saturating_duration_since(self.started) < self.timing.startup_grace
    }

    fn still_starting(&self, now: Instant) -> bool {
        self.first_change.is_none_or(|t| now.saturating_duration_since(t) < self.timing.idle_after)
    }

    /// When working began or last made progress, whichever is later.
    fn progress_base(&self) -> Instant {
        self.working_since.map_or(self.last_progress, |w| w.max(self.last_progress))
    }

    /// Bring the status up to date; returns the transition if it changed.
    pub fn decide(&mut self, now: Instant) -> Option<Transition> {
        if self.key_due().is_some_and(|due| now >= due) {
            // Not confirmed in time: the key did not do what it seemed to.
            self.key = None;
            self.key_lapsed = true;
        }
        let (mut to, mut reason, source) = self.candidate(now);
        if self.status == Status::Starting && source == Source::Activity && self.in_grace(now) {
            return None;
        }
        match to {
            Status::Starting => return None,
            Status::Working
                if self.status == Status::Starting
                    && source == Source::Activity
                    && self.still_starting(now) =>
            {
                // Drawing a banner is not work; a rule, a hook, going quiet or output that goes on
                // past the quiet period ends `starting`.
                return None;
            }
            Status::Idle
                if source == Source::Rule
                    && self.status == Status::NeedsInput
                    && self.dialog_due().is_some_and(|due| now < due) =>
            {
                return None;
            }
            _ if to != Status::Working
                && matches!(self.status, Status::Working | Status::Stuck)
                && self.settle_due(source).is_some_and(|due| now < due) =>
            {
                // The turn looks over, but words are still arriving under it.
                return None;
            }
            Status::Working if matches!(self.status, Status::Working | Status::Stuck) => {
                let quiet = now.saturating_duration_since(self.progress_base());
                if quiet >= self.timing.stuck_after {
                    to = Status::Stuck;
                    reason = format!(
                        "activity: no screen or file change for {} s while working ({reason})",
                        quiet.as_secs()
                    );
                }
            }
            _ => {}
        }
        if to == self.status {
            self.key_lapsed = false;
            if self.reason != reason && to != Status::Stuck {
                self.reason = reason;
            }
            return None;
        }
        if to == Status::Working && self.status != Status::Stuck {
            self.working_since = Some(now);
        }
        let from = self.status;
        let key_undone = std::mem::take(&mut self.key_lapsed);
        self.status = to;
        self.since = now;
        self.reason = reason.clone();
        self.seq += 1;
        Some(Transition { from, to, reason, at: now, seq: self.seq, key_undone })
    }

    /// The next instant at which time alone may change the status: the end of a quiet period, or
    /// the stuck deadline.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.exited.is_some() {
            return None;
        }
        let mut at: Option<Instant> = None;
        let mut consider = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        let (cand, _, source) = self.candidate(now);
        if self.status == Status::Starting && source == Source::Activity && self.in_grace(now) {
            // Only a rule, a hook or the end of the grace can end `starting` now.
            return Some(self.started + self.timing.startup_grace);
        }
        if source == Source::Activity
            && let Some(t) = self.last_change
            && cand == Status::Working
        {
            consider(t + self.timing.idle_after);
            if self.status == Status::Starting
                && let Some(first) = self.first_change
            {
                consider(first + self.timing.idle_after);
            }
        }
        if self.status == Status::Working {
            consider(self.stuck_deadline());
        }
        if let Some(due) = self.key_due()
            && due > now
        {
            consider(due);
        }
        if let Some(h) = &self.hook
            && h.ends_turn
            && h.at + TURN_END_GRACE > now
        {
            consider(h.at + TURN_END_GRACE);
        }
        if cand == Status::Idle
            && source == Source::Rule
            && self.status == Status::NeedsInput
            && let Some(due) = self.dialog_due()
            && due > now
        {
            consider(due);
        }
        if cand != Status::Working
            && matches!(self.status, Status::Working | Status::Stuck)
            && let Some(due) = self.settle_due(source)
            && due > now
        {
            consider(due);
        }
        at
    }

    /// When `working` turns `stuck` if nothing happens first.
    pub fn stuck_deadline(&self) -> Instant {
        self.progress_base() + self.timing.stuck_after
    }

    /// Progress is measured from here (for the file scan that looks for changes since then).
    pub fn last_progress(&self) -> Instant {
        self.progress_base()
    }

    /// One line per signal, for `--explain`.
    pub fn signals(&self, now: Instant) -> Vec<String> {
        let ago =
            |t: Instant| format!("{:.1} s ago", now.saturating_duration_since(t).as_secs_f32());
        let mut out = Vec::new();
        out.push(match &self.exited {
            Some(r) => r.clone(),
            None => "process: running".into(),
        });
        out.push(match &self.hook {
            Some(h) => {
                format!(
                    "hook: {} ({}), holds until the screen shows another state",
                    h.status, h.reason
                ) + &format!(", {}", ago(h.at))
            }
            None => "hook: none in force".into(),
        });
        if let Some(k) = &self.key {
            out.push(format!(
                "key: {} says {} until the agent confirms it, {}",
                k.reason,
                k.status,
                ago(k.at)
            ));
        }
        out.push(match &self.screen {
            Some((s, n)) => format!("screen: rule '{n}' says {s}"),
            None => "screen: no rule matches".into(),
        });
        out.push(match self.last_change {
            Some(t) => format!("activity: last screen change {}", ago(t)),
            None => "activity: no output yet".into(),
        });
        out.push(format!(
            "activity: last progress (screen text or files) {}; stuck after {} s of none while working",
            ago(self.progress_base()),
            self.timing.stuck_after.as_secs()
        ));
        out.push(format!("timing: idle after {} ms quiet", self.timing.idle_after.as_millis()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        idle_after: Duration::from_millis(1500),
        stuck_after: Duration::from_secs(60),
        startup_grace: Duration::from_secs(20),
        key_confirm: Duration::from_secs(2),
    };

    fn ev(status: Option<Status>, fp: u64) -> Evaluation {
        Evaluation {
            decided: status.map(|s| (s, format!("{s}-rule"))),
            settle: Duration::ZERO,
            fingerprint: fp,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn activity_alone_starting_then_idle_then_working_then_idle() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        assert_eq!(e.decide(t0), None);
        e.on_screen(t0 + ms(10), ev(None, 1));
        assert_eq!(e.decide(t0 + ms(20)), None, "banner output keeps starting");
        assert_eq!(e.next_deadline(t0 + ms(20)), Some(t0 + ms(1510)));
        let d = e.next_deadline(t0 + ms(20)).unwrap();
        assert_eq!(d, t0 + ms(1510));
        assert_eq!(e.decide(d).unwrap().to, Status::Idle);
        e.on_screen(t0 + ms(3000), ev(None, 2));
        let tr = e.decide(t0 + ms(3000)).unwrap();
        assert_eq!((tr.from, tr.to), (Status::Idle, Status::Working));
        assert!(tr.reason.starts_with("activity"), "{}", tr.reason);
        assert_eq!(e.decide(t0 + ms(4000)), None);
        assert_eq!(e.decide(t0 + ms(4500)).unwrap().to, Status::Idle);
    }

    #[test]
    fn output_that_goes_on_past_the_quiet_period_is_work() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        for i in 0..15u64 {
            e.on_screen(t0 + ms(i * 100), ev(None, 1));
            assert_eq!(e.decide(t0 + ms(i * 100)), None);
        }
        e.on_screen(t0 + ms(1500), ev(None, 1));
        assert_eq!(e.decide(t0 + ms(1500)).unwrap().to, Status::Working);
    }

    #[test]
    fn with_rules_a_slow_start_stays_starting_until_a_rule_speaks_or_the_grace_ends() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.set_has_rules(true);
        e.on_screen(t0 + ms(100), ev(None, 1));
        assert_eq!(e.decide(t0 + ms(5000)), None, "quiet while loading is not idle");
        e.on_screen(t0 + ms(6000), ev(None, 2));
        assert_eq!(e.decide(t0 + ms(9000)), None, "drawing the banner is not work");
        e.on_screen(t0 + ms(9500), ev(Some(Status::Working), 3));
        assert_eq!(e.decide(t0 + ms(9500)).unwrap().to, Status::Working);
        let mut slow = Engine::new(t0, T);
        slow.set_has_rules(true);
        slow.on_screen(t0 + ms(100), ev(None, 1));
        assert_eq!(slow.next_deadline(t0 + ms(5000)), Some(t0 + ms(20_000)));
        assert_eq!(slow.decide(t0 + ms(20_000)).unwrap().to, Status::Idle);
    }

    #[test]
    fn what_a_rule_says_is_taken_at_once_idle_included() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 1));
        assert_eq!(e.decide(t0).unwrap().to, Status::Working);
        e.on_screen(t0 + ms(100), ev(Some(Status::NeedsInput), 2));
        assert_eq!(e.decide(t0 + ms(100)).unwrap().to, Status::NeedsInput);
        e.on_screen(t0 + ms(150), ev(Some(Status::Working), 3));
        assert_eq!(e.decide(t0 + ms(150)).unwrap().to, Status::Working);
        e.on_screen(t0 + ms(200), ev(Some(Status::Idle), 4));
        let tr = e.decide(t0 + ms(200)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Idle, "rule: idle-rule"));
        assert_eq!(e.next_deadline(t0 + ms(200)), None, "nothing left to wait for");
    }

    #[test]
    fn a_rule_with_settle_leaves_working_only_once_the_words_stop() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 1));
        e.decide(t0);
        // Codex streams its answer above a composer that looks idle.
        let settled = |fp| Evaluation {
            decided: Some((Status::Idle, "composer".into())),
            settle: ms(800),
            fingerprint: fp,
        };
        for i in 1..10u64 {
            e.on_screen(t0 + ms(i * 150), settled(100 + i));
            assert_eq!(e.decide(t0 + ms(i * 150)), None, "at {} ms", i * 150);
        }
        assert_eq!(e.next_deadline(t0 + ms(1350)), Some(t0 + ms(2150)));
        assert_eq!(e.decide(t0 + ms(2100)), None);
        assert_eq!(e.decide(t0 + ms(2150)).unwrap().to, Status::Idle);
        // Codex's notify may be about a side turn that finished while the answer streams: it
        // waits for the words to settle too. A hook sent exactly at the turn's end does not.
        let mut h = Engine::new(t0, T);
        h.on_screen(t0, ev(Some(Status::Working), 1));
        h.decide(t0);
        h.on_screen(t0 + ms(100), settled(2));
        h.on_hook(t0 + ms(120), Status::Idle, "codex notify (agent-turn-complete)".into(), false);
        assert_eq!(h.decide(t0 + ms(120)), None);
        h.on_screen(t0 + ms(400), settled(3));
        assert_eq!(h.decide(t0 + ms(650)), None, "words arrived at 400 ms");
        assert_eq!(h.decide(t0 + ms(700)).unwrap().to, Status::Idle, "a hook settles sooner");
        let mut stop = Engine::new(t0, T);
        stop.on_screen(t0, ev(Some(Status::Working), 1));
        stop.decide(t0);
        stop.on_screen(t0 + ms(100), settled(2));
        stop.on_hook(t0 + ms(120), Status::Idle, "Stop".into(), true);
        assert_eq!(stop.decide(t0 + ms(120)).unwrap().to, Status::Idle);
    }

    #[test]
    fn answering_a_dialog_is_not_idle_for_the_frame_before_the_work_shows() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::NeedsInput), 1));
        e.decide(t0);
        e.on_screen(t0 + ms(1000), ev(Some(Status::Idle), 2));
        assert_eq!(e.decide(t0 + ms(1000)), None);
        // The idle prompt Claude Code draws for ~0.3 s after a question is answered.
        assert_eq!(e.decide(t0 + ms(1330)), None);
        e.on_screen(t0 + ms(1340), ev(Some(Status::Working), 3));
        assert_eq!(e.decide(t0 + ms(1340)).unwrap().to, Status::Working);
        // A dialog declined for good: idle once it held.
        e.on_screen(t0 + ms(2000), ev(Some(Status::NeedsInput), 4));
        e.decide(t0 + ms(2000));
        e.on_screen(t0 + ms(3000), ev(Some(Status::Idle), 5));
        assert_eq!(e.next_deadline(t0 + ms(3000)), Some(t0 + ms(3400)));
        assert_eq!(e.decide(t0 + ms(3399)), None);
        assert_eq!(e.decide(t0 + ms(3400)).unwrap().to, Status::Idle);
    }

    #[test]
    fn starting_ends_the_moment_a_rule_speaks() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.set_has_rules(true);
        e.on_screen(t0 + ms(100), ev(None, 1));
        assert_eq!(e.decide(t0 + ms(100)), None, "a banner is still starting");
        e.on_screen(t0 + ms(400), ev(Some(Status::Idle), 2));
        let tr = e.decide(t0 + ms(400)).unwrap();
        assert_eq!((tr.from, tr.to), (Status::Starting, Status::Idle));
        let mut dialog = Engine::new(t0, T);
        dialog.set_has_rules(true);
        dialog.on_screen(t0 + ms(300), ev(Some(Status::NeedsInput), 1));
        assert_eq!(dialog.decide(t0 + ms(300)).unwrap().to, Status::NeedsInput);
    }

    #[test]
    fn a_hook_holds_until_the_screen_shows_another_state() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 1));
        e.decide(t0);
        // The permission hook arrives before the prompt is drawn.
        e.on_hook(t0 + ms(10), Status::NeedsInput, "Notification".into(), false);
        assert_eq!(e.decide(t0 + ms(10)).unwrap().to, Status::NeedsInput);
        // The prompt is drawn: agreement, the hook stays.
        e.on_screen(t0 + ms(50), ev(Some(Status::NeedsInput), 2));
        assert_eq!(e.decide(t0 + ms(50)), None);
        // Granted: no hook fires, the screen shows work again.
        e.on_screen(t0 + ms(900), ev(Some(Status::Working), 3));
        let tr = e.decide(t0 + ms(900)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Working, "rule: working-rule"));
    }

    #[test]
    fn a_hook_wins_over_a_screen_that_did_not_move() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(None, 1));
        e.on_hook(t0, Status::Working, "UserPromptSubmit".into(), false);
        assert_eq!(e.decide(t0).unwrap().to, Status::Working);
        e.on_screen(t0 + ms(5000), ev(None, 1));
        assert_eq!(e.decide(t0 + ms(5000)), None, "quiet screen, but the hook says working");
        e.on_hook(t0 + ms(6000), Status::Idle, "Stop".into(), true);
        assert_eq!(
            e.decide(t0 + ms(6000)).unwrap().reason,
            "hook: Stop",
            "the hook's idle at once"
        );
    }

    #[test]
    fn a_redraw_of_the_same_screen_does_not_spend_a_hook() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.set_has_rules(true);
        e.on_screen(t0, ev(Some(Status::Idle), 1));
        e.decide(t0);
        // OpenCode's busy arrives while its input box still shows; the box is redrawn through a
        // frame no rule matches before "esc interrupt" shows.
        e.on_hook(t0 + ms(100), Status::Working, "opencode plugin (busy)".into(), true);
        assert_eq!(e.decide(t0 + ms(100)).unwrap().to, Status::Working);
        e.on_screen(t0 + ms(200), ev(None, 2));
        e.on_screen(t0 + ms(230), ev(Some(Status::Idle), 3));
        assert_eq!(e.decide(t0 + ms(230)), None, "still the hook's working");
        e.on_screen(t0 + ms(900), ev(Some(Status::Working), 4));
        assert_eq!(e.decide(t0 + ms(900)), None);
        // The turn ends without the idle event (an interrupt): the screen moved on, the hook is
        // spent.
        e.on_screen(t0 + ms(2000), ev(Some(Status::Idle), 5));
        assert_eq!(e.decide(t0 + ms(2000)).unwrap().reason, "rule: idle-rule");
    }

    #[test]
    fn visible_work_is_not_idle_because_a_hook_said_so() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 1));
        e.decide(t0);
        e.on_hook(t0 + ms(10), Status::Idle, "Stop".into(), true);
        e.on_screen(t0 + ms(20), ev(Some(Status::Working), 2));
        assert_eq!(e.decide(t0 + ms(5000)), None, "words still arrive under the spinner");
        // The screen shows the idle prompt: the hook agrees, and the badge says so at once.
        e.on_screen(t0 + ms(5100), ev(Some(Status::Idle), 3));
        assert_eq!(e.decide(t0 + ms(5100)).unwrap().reason, "hook: Stop");
    }

    #[test]
    fn a_stop_hook_beats_the_last_working_frame_of_its_turn() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 1));
        e.decide(t0);
        // Only the spinner moves (same letters) when the turn ends: after a moment's grace for
        // the next turn's words (a queued prompt), the hook is the news.
        e.on_hook(t0 + ms(100), Status::Idle, "Stop".into(), true);
        e.on_screen(t0 + ms(120), ev(Some(Status::Working), 1));
        assert_eq!(e.decide(t0 + ms(120)), None);
        assert_eq!(e.next_deadline(t0 + ms(120)), Some(t0 + ms(300)));
        let tr = e.decide(t0 + ms(300)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Idle, "hook: Stop"));
        // A queued prompt starts a new turn by itself: new words under the spinner.
        e.on_screen(t0 + ms(400), ev(Some(Status::Working), 2));
        assert_eq!(e.decide(t0 + ms(400)).unwrap().to, Status::Working);
        // ... and within the grace, no idle shows at all.
        let mut q = Engine::new(t0, T);
        q.on_screen(t0, ev(Some(Status::Working), 1));
        q.decide(t0);
        q.on_hook(t0 + ms(100), Status::Idle, "Stop".into(), true);
        q.on_screen(t0 + ms(200), ev(Some(Status::Working), 2));
        assert_eq!(q.decide(t0 + ms(400)), None, "the queued prompt's turn goes on");
    }

    #[test]
    fn a_question_on_screen_beats_a_hook_that_says_idle() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::NeedsInput), 1));
        assert_eq!(e.decide(t0).unwrap().to, Status::NeedsInput);
        e.on_hook(t0 + ms(100), Status::Idle, "codex notify (agent-turn-complete)".into(), false);
        assert_eq!(e.decide(t0 + ms(5000)), None);
        assert!(e.reason().contains("over hook"), "{}", e.reason());
        // Approved: the screen moves on, and the stale hook is spent with it.
        e.on_screen(t0 + ms(6000), ev(Some(Status::Working), 2));
        let tr = e.decide(t0 + ms(6000)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Working, "rule: working-rule"));
    }

    #[test]
    fn working_without_progress_is_stuck_and_progress_ends_it() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 7));
        e.decide(t0);
        // A spinner animates: the screen changes, the fingerprint does not.
        for i in 1..60u64 {
            e.on_screen(t0 + ms(i * 1000), ev(Some(Status::Working), 7));
            assert_eq!(e.decide(t0 + ms(i * 1000)), None);
        }
        assert_eq!(e.next_deadline(t0 + ms(59_000)), Some(t0 + ms(60_000)));
        let tr = e.decide(t0 + ms(60_000)).unwrap();
        assert_eq!(tr.to, Status::Stuck);
        assert!(tr.reason.contains("no screen or file change for 60 s"), "{}", tr.reason);
        e.on_files_changed(t0 + ms(61_000));
        assert_eq!(e.decide(t0 + ms(61_000)).unwrap().to, Status::Working);
        assert_eq!(e.stuck_deadline(), t0 + ms(121_000));
    }

    #[test]
    fn a_resumed_badge_keeps_its_state_and_the_redrawn_screen_is_not_activity() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, Timing::default());
        e.resume(t0, Status::Idle, "activity: quiet".into(), 7);
        assert_eq!((e.status(), e.seq()), (Status::Idle, 7));
        // The restored screen, seen for the first time: no rule decides, nothing is news.
        e.on_screen(t0 + ms(30), ev(None, 1));
        assert_eq!(e.decide(t0 + ms(40)), None, "the redraw is not work");
        assert_eq!(e.status(), Status::Idle);
        // Real output after it is.
        e.on_screen(t0 + ms(100), ev(None, 2));
        e.on_screen(t0 + ms(2000), ev(None, 3));
        let tr = e.decide(t0 + ms(2000)).expect("output after the hand-over is work");
        assert_eq!(tr.to, Status::Working);
    }

    #[test]
    fn exit_beats_everything_and_ends_deadlines() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_hook(t0, Status::Working, "PreToolUse".into(), false);
        e.decide(t0);
        e.on_exit("process: exited with code 3".into());
        let tr = e.decide(t0 + ms(1)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Exited, "process: exited with code 3"));
        assert_eq!(e.next_deadline(t0 + ms(1)), None);
        e.on_hook(t0 + ms(2), Status::Working, "late".into(), false);
        assert_eq!(e.decide(t0 + ms(2)), None);
    }

    fn km(status: Status, name: &str, screen_decides: bool) -> KeyMatch {
        KeyMatch { status, name: name.into(), screen_decides }
    }

    fn key(e: &mut Engine, at: Instant) {
        e.on_key(at, km(Status::Working, "prompt submitted", false));
    }

    #[test]
    fn enter_on_a_prompt_shows_working_at_once_and_the_hook_confirms_it() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Idle), 1));
        e.on_hook(t0, Status::Idle, "Stop".into(), true);
        e.decide(t0 + ms(300));
        assert_eq!(e.status(), Status::Idle);
        key(&mut e, t0 + ms(1000));
        let tr = e.decide(t0 + ms(1000)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Working, "key: prompt submitted"));
        // The prompt is still drawn while the agent takes it: no change.
        e.on_screen(t0 + ms(1020), ev(Some(Status::Idle), 2));
        assert_eq!(e.decide(t0 + ms(1020)), None);
        e.on_hook(t0 + ms(1150), Status::Working, "UserPromptSubmit".into(), false);
        assert_eq!(e.decide(t0 + ms(1150)), None);
        assert_eq!(e.reason(), "hook: UserPromptSubmit");
        // Well past the key's window, the hook holds working; the turn ends with the next Stop.
        assert_eq!(e.decide(t0 + ms(5000)), None);
        e.on_hook(t0 + ms(6000), Status::Idle, "Stop".into(), true);
        assert_eq!(e.decide(t0 + ms(6000)).unwrap().to, Status::Idle);
    }

    #[test]
    fn enter_while_pasted_text_still_reads_as_activity_holds_working() {
        // Text pasted into an idle prompt (one write, not typed keys): its echo is output no rule
        // reads, so the badge says working by activity; Enter right after, with the agent slow
        // to draw its working line, must not leave the badge to go idle when the quiet period
        // or the prompt rule's settle ends.
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Idle), 1));
        e.decide(t0);
        e.on_screen(t0 + ms(3000), ev(None, 2));
        assert_eq!(e.decide(t0 + ms(3000)).unwrap().to, Status::Working);
        key(&mut e, t0 + ms(3100));
        e.on_screen(t0 + ms(3110), ev(Some(Status::Idle), 3));
        assert_eq!(e.decide(t0 + ms(3110)), None);
        assert_eq!(e.reason(), "key: prompt submitted");
        assert_eq!(e.decide(t0 + ms(4900)), None, "past the quiet period: the key holds");
        // Working by a rule already: the key adds nothing, and the rule's idle is taken at once.
        let mut w = Engine::new(t0, T);
        w.on_screen(t0, ev(Some(Status::Working), 1));
        w.decide(t0);
        key(&mut w, t0 + ms(100));
        w.on_screen(t0 + ms(200), ev(Some(Status::Idle), 2));
        assert_eq!(w.decide(t0 + ms(200)).unwrap().to, Status::Idle);
    }

    #[test]
    fn a_question_told_late_after_the_key_that_answered_it_is_not_news() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::NeedsInput), 1));
        e.decide(t0);
        e.on_key(t0 + ms(3000), km(Status::Working, "approved", false));
        assert_eq!(e.decide(t0 + ms(3000)).unwrap().to, Status::Working);
        // The dialog's hook, run in the background, arrives after the answer.
        e.on_hook(t0 + ms(3100), Status::NeedsInput, "PermissionRequest (Write)".into(), false);
        assert_eq!(e.decide(t0 + ms(3100)), None, "no flicker back to needs-input");
        e.on_screen(t0 + ms(3300), ev(Some(Status::Working), 2));
        assert_eq!(e.decide(t0 + ms(3300)), None);
        assert_eq!(e.decide(t0 + ms(9000)), None, "the stale question is spent");
        assert_eq!(e.status(), Status::Working);
        // A question right after a typed prompt is news at once.
        let mut q = Engine::new(t0, T);
        q.on_screen(t0, ev(Some(Status::Idle), 1));
        q.decide(t0);
        key(&mut q, t0 + ms(1000));
        q.decide(t0 + ms(1000));
        q.on_hook(t0 + ms(1200), Status::NeedsInput, "PermissionRequest (Bash)".into(), false);
        assert_eq!(q.decide(t0 + ms(1200)).unwrap().to, Status::NeedsInput);
    }

    #[test]
    fn a_key_nobody_confirms_gives_way_to_the_rules_after_the_window() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Idle), 1));
        e.decide(t0);
        key(&mut e, t0 + ms(100));
        assert_eq!(e.decide(t0 + ms(100)).unwrap().to, Status::Working);
        // A Codex notify about a side turn is not the agent's word on this key.
        e.on_hook(t0 + ms(300), Status::Idle, "codex notify (agent-turn-complete)".into(), false);
        assert_eq!(e.decide(t0 + ms(2099)), None);
        assert_eq!(e.next_deadline(t0 + ms(2099)), Some(t0 + ms(2100)));
        let tr = e.decide(t0 + ms(2100)).unwrap();
        assert_eq!(tr.to, Status::Idle);
        assert!(!tr.reason.contains("key"), "{}", tr.reason);
        assert!(tr.key_undone, "not a finished turn to tell anyone about");
        key(&mut e, t0 + ms(3000));
        let tr = e.decide(t0 + ms(3000)).unwrap();
        assert!(!tr.key_undone);
    }

    #[test]
    fn the_screen_confirms_a_key_and_a_question_overrides_it() {
        let t0 = Instant::now();
        // Approving a dialog: the dialog's last frames and the idle prompt drawn for a moment do
        // not undo the key; the work on screen confirms it, and the dialog's hook is spent.
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::NeedsInput), 1));
        e.on_hook(t0, Status::NeedsInput, "PermissionRequest (Bash)".into(), false);
        e.decide(t0);
        e.on_key(t0 + ms(3000), km(Status::Working, "approved", false));
        assert_eq!(e.decide(t0 + ms(3000)).unwrap().to, Status::Working);
        e.on_screen(t0 + ms(3010), ev(Some(Status::NeedsInput), 1));
        e.on_screen(t0 + ms(3040), ev(Some(Status::Idle), 2));
        assert_eq!(e.decide(t0 + ms(3040)), None);
        e.on_screen(t0 + ms(3100), ev(Some(Status::Working), 3));
        assert_eq!(e.decide(t0 + ms(3100)), None);
        assert_eq!(e.reason(), "rule: working-rule");
        assert_eq!(e.decide(t0 + ms(9000)), None, "confirmed: the window no longer matters");
        // A question right after Enter: the agent's hook says so, and it shows at once.
        let mut q = Engine::new(t0, T);
        q.on_screen(t0, ev(Some(Status::Idle), 1));
        q.decide(t0);
        key(&mut q, t0 + ms(100));
        q.decide(t0 + ms(100));
        q.on_hook(t0 + ms(200), Status::NeedsInput, "PermissionRequest (Write)".into(), false);
        assert_eq!(q.decide(t0 + ms(200)).unwrap().to, Status::NeedsInput);
        // A key that says what the badge already shows changes nothing.
        let mut w = Engine::new(t0, T);
        w.on_screen(t0, ev(Some(Status::Working), 1));
        w.decide(t0);
        key(&mut w, t0 + ms(100));
        w.on_screen(t0 + ms(500), ev(Some(Status::Idle), 2));
        assert_eq!(w.decide(t0 + ms(500)).unwrap().to, Status::Idle);
    }

    #[test]
    fn esc_on_a_running_turn_is_idle_at_once_and_a_late_working_hook_does_not_undo_it() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Working), 1));
        e.on_hook(t0, Status::Working, "UserPromptSubmit".into(), false);
        e.decide(t0);
        e.on_key(t0 + ms(1000), km(Status::Idle, "interrupted", false));
        let tr = e.decide(t0 + ms(1000)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Idle, "key: interrupted"));
        e.on_hook(t0 + ms(1050), Status::Working, "PostToolUse (Bash)".into(), false);
        assert_eq!(e.decide(t0 + ms(1050)), None);
        e.on_screen(t0 + ms(1200), ev(Some(Status::Idle), 2));
        assert_eq!(e.decide(t0 + ms(1200)), None);
        assert_eq!(e.decide(t0 + ms(9000)), None, "the screen confirmed it");
    }

    #[test]
    fn a_key_the_screen_decides_gives_way_to_the_first_state_a_rule_reads_after_it() {
        let t0 = Instant::now();
        let answered = km(Status::Working, "answered", true);
        // Aider's question answered and the edit applied: back at its prompt at once.
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::NeedsInput), 1));
        e.decide(t0);
        e.on_key(t0 + ms(3000), answered.clone());
        let tr = e.decide(t0 + ms(3000)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Working, "key: answered"));
        // The question redrawn with the answer, then a line under it no rule reads: no news.
        e.on_screen(t0 + ms(3010), ev(Some(Status::NeedsInput), 2));
        e.on_screen(t0 + ms(3020), ev(None, 3));
        assert_eq!(e.decide(t0 + ms(3020)), None);
        e.on_screen(t0 + ms(3050), ev(Some(Status::Idle), 4));
        let tr = e.decide(t0 + ms(3050)).unwrap();
        assert_eq!((tr.to, tr.reason.as_str()), (Status::Idle, "rule: idle-rule"));
        assert!(!tr.key_undone, "the screen decided, the window did not lapse");
        // Answered and working on: the key holds until the screen says so itself.
        let mut w = Engine::new(t0, T);
        w.on_screen(t0, ev(Some(Status::NeedsInput), 1));
        w.decide(t0);
        w.on_key(t0 + ms(3000), answered);
        w.decide(t0 + ms(3000));
        w.on_screen(t0 + ms(3500), ev(Some(Status::Working), 2));
        assert_eq!(w.decide(t0 + ms(3500)), None);
        assert_eq!(w.decide(t0 + ms(9000)), None, "confirmed by the screen");
    }

    #[test]
    fn the_echo_of_typed_keys_on_an_idle_prompt_is_not_work_but_other_output_is() {
        let t0 = Instant::now();
        let mut e = Engine::new(t0, T);
        e.on_screen(t0, ev(Some(Status::Idle), 1));
        e.decide(t0 + ms(2000));
        assert_eq!(e.status(), Status::Idle);
        // Output a moment before (the agent's last words), then a key, and the box redrawn
        // through a frame no rule reads.
        e.on_screen(t0 + ms(2500), ev(Some(Status::Idle), 7));
        e.on_typed(t0 + ms(3000));
        e.on_screen(t0 + ms(3010), ev(None, 2));
        assert_eq!(e.decide(t0 + ms(3010)), None, "the echo of a key is not work");
        // The next key comes before the redraw of the first is read: still the echo.
        e.on_typed(t0 + ms(3040));
        e.on_screen(t0 + ms(3030), ev(Some(Status::Idle), 3));
        e.on_screen(t0 + ms(3050), ev(None, 4));
        assert_eq!(e.decide(t0 + ms(3050)), None);
        e.on_screen(t0 + ms(3100), ev(Some(Status::Idle), 5));
        assert_eq!(e.decide(t0 + ms(3100)), None);
        // Output well after the last key, under no rule, is work as before.
        e.on_screen(t0 + ms(4000), ev(None, 6));
        assert_eq!(e.decide(t0 + ms(4000)).unwrap().to, Status::Working);
    }
}
