#!/usr/bin/env bash
# CPU to keep 8 busy panes on screen: the corral dashboard (grid view) against a tmux client on a
# window tiled into 8 panes, same terminal size, same busy script in every pane, same run.
#
#   benches/frame.sh                       # 240x67, 10 s windows, 3 runs per side, median
#   RUNS=5 SECS=20 SIZE=200x60 benches/frame.sh
#   QUICK=1 benches/frame.sh               # one 3 s run per side
#
# Each pane runs benches/busy.py: it prints `ready-N`, waits for a go file, then writes LINES
# coloured build-like lines every 50 ms. A probe (examples/frame_e2e.rs) runs the client in a PTY
# of SIZE, drains its output continuously, checks on its own copy of the screen that all 8 panes
# are visible, creates the go file, skips 1 s, then reads utime+stime of the client and of the
# server from /proc over SECS seconds and counts what the client wrote to the terminal. corral's
# agents are created at the size of a grid cell's inside, which is about a tmux pane's size.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
SECS=${SECS:-10}
SIZE=${SIZE:-240x67}
LINES=${LINES:-5}
PANES=8
if [ -n "${QUICK:-}" ]; then RUNS=1; SECS=3; fi
command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
cargo build --release --quiet --bin corral --example frame_e2e
# BIN=PATH measures another corral binary (an A/B run against an older build).
BIN=${BIN:-$ROOT/target/release/corral}
PROBE=$ROOT/target/release/examples/frame_e2e
BUSY=$ROOT/benches/busy.py
W=$(mktemp -d /tmp/corral-frame.XXXXXX)
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
TM="tmux -L corral-frame-$$ -f $W/tmux.conf"
printf 'set -g status off\nset -g history-limit 5000\n' > "$W/tmux.conf"
cleanup() { "$BIN" kill-server >/dev/null 2>&1 || true; $TM kill-server >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$HOME/.config/corral" "$W/repo"
cat > "$HOME/.config/corral/config.toml" <<EOF
[agents.busy]
command = ["python3", "$BUSY"]
prompt = "none"
EOF
git -C "$W/repo" init -q -b main && echo x > "$W/repo/a" && git -C "$W/repo" add a && git -C "$W/repo" commit -qm a
cd "$W/repo"
cols=${SIZE%x*}
rows=${SIZE#*x}
# The grid: 3x3 cells over everything but the footer line; an agent gets a cell's inside.
cell="$(( cols / 3 - 2 ))x$(( (rows - 1) / 3 - 2 ))"
run_secs=$(echo "$SECS + 4" | bc -l)

corral_run() { # -> "client_ms server_ms secs bytes frames writes"
  local go=$W/go.$1
  "$BIN" server >/dev/null
  local spid
  spid=$(cat "$CORRAL_RUNTIME_DIR/server.lock")
  for i in $(seq $PANES); do
    BUSY_TAG=$i BUSY_GO=$go BUSY_SECS=$run_secs BUSY_LINES=$LINES \
      "$BIN" new --agent busy --detach --size "$cell" --name "busy-$i" >/dev/null
  done
  printf '#!/bin/sh\nexec "%s" ui\n' "$BIN" > "$W/dash.sh" && chmod +x "$W/dash.sh"
  "$PROBE" --size "$SIZE" --secs "$SECS" --server "$spid" --go "$go" --tags $PANES --keys g -- "$W/dash.sh"
  # Agents outlive their server in its state: remove them so the next run starts empty.
  for i in $(seq $PANES); do "$BIN" rm --force "busy-$i" >/dev/null 2>&1; done
  "$BIN" kill-server >/dev/null
}
tmux_run() {
  local go=$W/go.$1 env
  env="BUSY_GO=$go BUSY_SECS=$run_secs BUSY_LINES=$LINES"
  $TM new-session -d -x "$cols" -y "$rows" "BUSY_TAG=1 $env exec python3 $BUSY"
  for i in $(seq 2 $PANES); do
    $TM split-window -d "BUSY_TAG=$i $env exec python3 $BUSY"
    $TM select-layout tiled >/dev/null
  done
  local tpid
  tpid=$($TM display -p '#{pid}')
  "$PROBE" --size "$SIZE" --secs "$SECS" --server "$tpid" --go "$go" --tags $PANES -- $TM attach
  $TM kill-server >/dev/null 2>&1 || true
}

declare -a C T
for r in $(seq "$RUNS"); do
  c=$(corral_run "c$r") && [ -n "$c" ] || { echo "corral run $r failed" >&2; exit 1; }
  t=$(tmux_run "t$r") && [ -n "$t" ] || { echo "tmux run $r failed" >&2; exit 1; }
  C+=("$c")
  T+=("$t")
done
# Per run: total ms/s, client ms/s, server ms/s, KiB/s, frames/s, writes/s; then the medians.
python3 - "$RUNS" "${C[@]}" "${T[@]}" <<'PY'
import sys, statistics as st
n = int(sys.argv[1])
runs = [list(map(float, a.split())) for a in sys.argv[2:]]
def per_s(r):
    c, s, secs, b, f, w = r
    # A frame: a synchronized-output frame where the client marks them (corral), else a burst of
    # output (tmux, which does not).
    frames = f if f else w
    return {"total": (c + s) / secs / 10, "client": c / secs / 10, "server": s / secs / 10,
            "kib": b / secs / 1024, "fps": frames / secs,
            "cpu_per_frame": (c + s) / frames if frames else 0.0,
            "client_per_frame": c / frames if frames else 0.0}
def med(rs, k):
    return st.median(per_s(r)[k] for r in rs)
cor, tmx = runs[:n], runs[n:]
def fmt(x, d=1):
    return f"{x:.{d}f}"
print(f"| 8 busy panes on screen (% of one core, median of {n}) | corral | tmux |")
print("| --- | --- | --- |")
print(f"| client + server (the headline) | {fmt(med(cor,'total'))} | {fmt(med(tmx,'total'))} |")
print(f"| client | {fmt(med(cor,'client'))} | {fmt(med(tmx,'client'))} |")
print(f"| server | {fmt(med(cor,'server'))} | {fmt(med(tmx,'server'))} |")
print(f"| written to the terminal (KiB/s) | {fmt(med(cor,'kib'),0)} | {fmt(med(tmx,'kib'),0)} |")
print(f"| frames a second (corral: synchronized-output frames; tmux: bursts of output) | {fmt(med(cor,'fps'))} | {fmt(med(tmx,'fps'))} |")
print(f"| CPU per frame, client (ms) | {fmt(med(cor,'client_per_frame'),2)} | {fmt(med(tmx,'client_per_frame'),2)} |")
print(f"| CPU per frame, client + server (ms) | {fmt(med(cor,'cpu_per_frame'),2)} | {fmt(med(tmx,'cpu_per_frame'),2)} |")
print()
print("Per run (client ms, server ms, s, bytes, synchronized frames, bursts): corral " +
      "; ".join(" ".join(str(int(x)) if i != 2 else str(x) for i, x in enumerate(r)) for r in cor) +
      " — tmux " + "; ".join(" ".join(str(int(x)) if i != 2 else str(x) for i, x in enumerate(r)) for r in tmx))
PY
echo
echo "Machine: $(nproc) cores, $(uname -sr); $(tmux -V); $(date -u +%Y-%m-%d); terminal $SIZE, corral agents $cell; $PANES panes × $LINES lines every 50 ms; ${SECS} s windows."
