#!/usr/bin/env bash
# 50 agents each printing 20 lines a second, the dashboard open in a PTY (200x50): keystroke to
# frame latency (a key that moves the selection, timed until the screen shows it), the dashboard's
# and the server's CPU and memory over the run; against tmux with 50 panes in 50 windows (the key
# switches window) in the same run. Then checks that nothing was lost: every agent's last line
# reaches `corral tail` (tmux: capture-pane).
#
#   benches/scale.sh               # 50 agents, 60 s
#   AGENTS=20 SECS=20 benches/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-50}
SECS=${SECS:-60}
command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)" >&2; exit 1; }
cargo build --release --quiet --bin corral --example key_frame
BIN=$PWD/target/release/corral
PROBE=$PWD/target/release/examples/key_frame
W=$(mktemp -d /tmp/corral-scale.XXXXXX)
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
TM="tmux -L corral-scale-$$ -f /dev/null"
cleanup() { "$BIN" kill-server >/dev/null 2>&1 || true; $TM kill-server >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
# Lines each agent prints: enough to keep printing through the whole measurement.
LINES=$(( (SECS + 15) * 20 ))
cat > "$W/busy.py" <<PY
import os, sys, time
name = os.environ.get("CORRAL_AGENT") or os.environ.get("NAME", "x")
for i in range(1, $LINES + 1):
    print(f"\x1b[32m{name}\x1b[0m line {i} of $LINES: building target {i % 97} ...", flush=True)
    time.sleep(0.05)
print(f"{name} DONE", flush=True)
time.sleep(1e9)
PY
mkdir -p "$HOME/.config/corral" "$W/repo"
printf '[agents.busy]\ncommand = ["python3", "-u", "%s"]\nprompt = "none"\n' "$W/busy.py" > "$HOME/.config/corral/config.toml"
git -C "$W/repo" init -q -b main && echo x > "$W/repo/a" && git -C "$W/repo" add a && git -C "$W/repo" commit -qm a
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
cpu() { echo "scale=1; ($2 - $1) * 100 / 100 / ($4 - $3)" | bc -l; }

# corral
cd "$W/repo"
for i in $(seq "$AGENTS"); do "$BIN" new --agent busy --name "a$i" --detach --size 100x30 >/dev/null; done
SRV=$(cat "$CORRAL_RUNTIME_DIR/server.lock")
s0=$(ticks "$SRV"); t0=$(now)
read -r c_med c_p99 c_n c_cpu c_rss < <("$PROBE" "$SECS" 'j,k' '▸2 ,▸1 ' -- "$BIN" ui)
s1=$(ticks "$SRV"); t1=$(now)
c_srv_cpu=$(cpu "$s0" "$s1" "$t0" "$t1"); c_srv_rss=$(rss "$SRV")
lost=0
deadline=$(( $(date +%s) + 60 ))
for i in $(seq "$AGENTS"); do
  until "$BIN" tail "a$i" --plain -n 5 | grep -q "a$i DONE"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then lost=$((lost + 1)); break; fi
    sleep 0.5
  done
done
"$BIN" kill-server >/dev/null

# tmux
$TM new-session -d -s s -x 200 -y 50 -n w1 "NAME=a1 python3 -u $W/busy.py"
for i in $(seq 2 "$AGENTS"); do $TM new-window -d -t s -n "w$i" "NAME=a$i python3 -u $W/busy.py"; done
$TM select-window -t s:0
TSRV=$($TM display -p '#{pid}')
s0=$(ticks "$TSRV"); t0=$(now)
read -r t_med t_p99 t_n t_cpu t_rss < <("$PROBE" "$SECS" '\x02n,\x02p' '1:w2*,0:w1*' -- $TM attach -t s)
s1=$(ticks "$TSRV"); t1=$(now)
t_srv_cpu=$(cpu "$s0" "$s1" "$t0" "$t1"); t_srv_rss=$(rss "$TSRV")
tlost=0
deadline=$(( $(date +%s) + 60 ))
for i in $(seq 0 $((AGENTS - 1))); do
  until $TM capture-pane -p -t "s:$i" | grep -q " DONE"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then tlost=$((tlost + 1)); break; fi
    sleep 0.5
  done
done

cat <<MD
| $AGENTS agents x 20 lines/s, ${SECS} s, 200x50 client | corral | tmux |
| --- | --- | --- |
| key to frame, median (µs) | $c_med | $t_med |
| key to frame, p99 (µs) | $c_p99 | $t_p99 |
| keys timed | $c_n | $t_n |
| client CPU (% of a core) | $c_cpu | $t_cpu |
| server CPU (% of a core) | $c_srv_cpu | $t_srv_cpu |
| client RSS (MiB) | $((c_rss / 1024)) | $((t_rss / 1024)) |
| server RSS (MiB) | $((c_srv_rss / 1024)) | $((t_srv_rss / 1024)) |
| agents whose last line never arrived | $lost | $tlost |

Machine: $(nproc) cores, $(uname -sr); $(tmux -V); $(date -u +%Y-%m-%d).
MD
