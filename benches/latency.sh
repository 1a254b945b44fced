#!/usr/bin/env bash
# Keystroke-to-echo latency: through `corral attach`, through the dashboard's focus mode, and
# through `tmux attach`, to the same `cat` agent command, on this machine in this run.
#
#   benches/latency.sh            # 200 keystrokes each
#   ROUNDS=50 benches/latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-200}
command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)" >&2; exit 1; }
cargo build --release --quiet --bin corral --example echo_latency
BIN=$PWD/target/release/corral
PROBE=$PWD/target/release/examples/echo_latency
W=$(mktemp -d /tmp/corral-latency.XXXXXX)
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
TM="tmux -L corral-latency-$$ -f /dev/null"
cleanup() { "$BIN" kill-server >/dev/null 2>&1 || true; $TM kill-server >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$HOME/.config/corral" "$W/repo"
printf '[agents.cat]\ncommand = ["cat"]\nprompt = "none"\n' > "$HOME/.config/corral/config.toml"
git -C "$W/repo" init -q -b main && echo x > "$W/repo/a" && git -C "$W/repo" add a && git -C "$W/repo" commit -qm a
cd "$W/repo"
"$BIN" new --agent cat --name lat --detach --size 120x40 >/dev/null
read -r a_med a_p95 < <("$PROBE" "$ROUNDS" -- "$BIN" attach lat)
# The dashboard: Enter focuses the selected (only) agent; the probe's first keystroke comes after
# the dashboard has gone quiet, so send Enter first through a tiny wrapper.
cat > "$W/dash.sh" <<SH
#!/bin/sh
exec "$BIN" ui
SH
chmod +x "$W/dash.sh"
read -r d_med d_p95 < <(FOCUS_FIRST=1 "$PROBE" "$ROUNDS" -- "$W/dash.sh")
$TM new-session -d -x 120 -y 40 cat
read -r t_med t_p95 < <("$PROBE" "$ROUNDS" -- $TM attach)
cat <<MD
| keystroke to echo | median (µs) | p95 (µs) |
| --- | --- | --- |
| corral attach | $a_med | $a_p95 |
| corral dashboard, focus mode | $d_med | $d_p95 |
| tmux attach | $t_med | $t_p95 |

Machine: $(nproc) cores, $(uname -sr); $(tmux -V); $(date -u +%Y-%m-%d); $ROUNDS keystrokes each.
MD
