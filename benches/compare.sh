#!/usr/bin/env bash
# corral against tmux and git, on this machine, in this run. Prints a Markdown table.
#
#   benches/compare.sh            # everything (a few minutes): the table below, then the
#                                 # keystroke-latency table (benches/latency.sh), the
#                                 # dashboard frame cost (examples/dashboard_frame.rs) and the
#                                 # CPU to keep 8 busy panes on screen, corral against tmux
#                                 # (benches/frame.sh)
#   QUICK=1 benches/compare.sh    # smaller inputs, for a smoke run
#
# Method (see docs/BENCHMARKS.md): release build; each side runs the same command in a 120x40
# terminal with 5,000 lines of scrollback; wall-clock times are medians of RUNS runs with the
# matching empty-input run subtracted (so worktree and session set-up are not counted as ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORIG_HOME=$HOME
RUNS=${RUNS:-3}
MB=${MB:-40}
FILES=${FILES:-20000}
AGENTS=${AGENTS:-20}
if [ -n "${QUICK:-}" ]; then RUNS=1; MB=8; FILES=2000; AGENTS=5; fi
SECTIONS=${SECTIONS:-"ingest memory cpu new latency frame"}
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)" >&2; exit 1; }
# BIN=PATH measures another corral binary (an A/B run against an older build); the examples
# the later sections drive still come from this checkout.
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; BIN=$PWD/target/release/corral; fi
W=$(mktemp -d /tmp/corral-bench.XXXXXX)
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
TM="tmux -L corral-bench-$$ -f $W/tmux.conf"
mkdir -p "$HOME/.config/corral"
printf 'set -g history-limit 5000\nset -g status off\n' > "$W/tmux.conf"
cleanup() { "$BIN" kill-server >/dev/null 2>&1 || true; $TM kill-server >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT

now() { date +%s.%N; }
TMUX_RUN=0
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# --- inputs -------------------------------------------------------------------------------------
python3 - "$W" "$MB" <<'PY'
import sys, random
w, mb = sys.argv[1], int(sys.argv[2])
random.seed(1)
words = ["agent", "worktree", "branch", "merge", "diff", "token", "stream", "render", "cell", "line"]
with open(f"{w}/plain.txt", "w") as f:
    n = 0
    while n < mb * 1024 * 1024:
        s = " ".join(random.choice(words) for _ in range(12)) + "\n"
        f.write(s); n += len(s)
with open(f"{w}/color.txt", "w") as f:
    n = 0
    while n < mb * 1024 * 1024:
        parts = []
        for _ in range(12):
            c = random.randrange(256)
            parts.append(f"\x1b[38;5;{c}m{random.choice(words)}\x1b[0m")
        s = " ".join(parts) + "\n"
        f.write(s); n += len(s)
# Full-screen redraws on the alternate screen, as vim, htop or less draw.
with open(f"{w}/alt.txt", "w") as f:
    f.write("\x1b[?1049h")
    n, frame = 0, 0
    while n < mb * 1024 * 1024:
        rows = [f"\x1b[{r + 1};1H\x1b[3{(r + frame) % 8}m{frame:06d} " + random.choice(words) * 11 + "\x1b[0m\x1b[K"
                for r in range(40)]
        s = "".join(rows)
        f.write(s); n += len(s); frame += 1
    f.write("\x1b[?1049l")
# Ink-style redraws (Claude Code, Codex): each frame inside a synchronized update (mode 2026)
# erases the previous 12 lines and writes them again.
with open(f"{w}/sync.txt", "w") as f:
    n, frame = 0, 0
    while n < mb * 1024 * 1024:
        erase = "" if frame == 0 else "\x1b[2K\x1b[1A" * 12 + "\x1b[2K\r"
        body = "\r\n".join(f"\x1b[1m{frame:06d}\x1b[0m " + " ".join(random.choice(words) for _ in range(10))
                             for _ in range(12))
        s = "\x1b[?2026h" + erase + body + "\x1b[?2026l"
        f.write(s); n += len(s); frame += 1
with open(f"{w}/scroll.txt", "w") as f:
    for i in range(6000):
        f.write(f"{i:06d} " + "x" * 92 + "\n")
PY
: > "$W/empty.txt"
cat > "$W/run-file.sh" <<'SH'
#!/bin/sh
cat "$BENCH_FILE"
[ -n "$BENCH_DONE" ] && touch "$BENCH_DONE"
[ -n "$BENCH_STAY" ] && exec sleep 100000
exit 0
SH
chmod +x "$W/run-file.sh"
cat > "$HOME/.config/corral/config.toml" <<EOF
[ports]
first = 20000
last = 29999
[agents.bench]
command = ["$W/run-file.sh"]
prompt = "none"
EOF
mkdir -p "$W/repo" && git -C "$W/repo" init -q -b main && echo x > "$W/repo/a" && git -C "$W/repo" add a && git -C "$W/repo" commit -qm a
cd "$W/repo"

# --- ingest ---------------------------------------------------------------------------------------
corral_ingest() { # file -> seconds until the agent's command wrote all of it (it marks the end
  # by a file, as on the tmux side) and a `tail` round trip through the pane has returned
  local t0 t1 name done=$W/cdone.$BASHPID.$(( ++TMUX_RUN ))
  t0=$(now)
  name=$(BENCH_FILE=$1 BENCH_DONE=$done "$BIN" new --agent bench --detach --size 120x40)
  local deadline=$(( $(date +%s) + 300 ))
  until [ -e "$done" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "corral run did not finish" >&2; exit 1; }
    sleep 0.005
  done
  "$BIN" tail -n 1 "$name" >/dev/null
  t1=$(now)
  "$BIN" rm --force "$name" >/dev/null 2>&1
  echo "$t1 - $t0" | bc -l
}
tmux_ingest() { # the pane's command marks the end by a file (tmux's wait-for can miss a signal
  # sent before the waiter connects); then one capture-pane round trip
  # A server of its own each run: a new session on a server still shutting down can fail.
  local t0 t1 n=$(( ++TMUX_RUN )) done tm
  done=$W/done.$BASHPID.$n
  tm="tmux -L corral-bench-$$-$BASHPID-$n -f $W/tmux.conf"
  t0=$(now)
  $tm new-session -d -x 120 -y 40 "cat '$1'; touch '$done'; exec sleep 100000"
  local deadline=$(( $(date +%s) + 300 ))
  until [ -e "$done" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "tmux run did not finish" >&2; exit 1; }
    sleep 0.005
  done
  $tm capture-pane -p >/dev/null
  t1=$(now)
  $tm kill-server 2>/dev/null || true
  echo "$t1 - $t0" | bc -l
}
rate() { # bytes seconds baseline
  echo "scale=1; $1 / 1048576 / ($2 - $3)" | bc -l
}
declare -A R
for k in plain color alt sync; do R[corral-$k]=-; R[tmux-$k]=-; done
corral_rss=-; tmux_rss=-; corral_cpu=-; tmux_cpu=-; corral_new_s=-; git_new_s=-
"$BIN" server >/dev/null
want ingest && for kind in plain color alt sync; do
  size=$(stat -c %s "$W/$kind.txt")
  for side in corral tmux; do
    base=$(for _ in $(seq "$RUNS"); do ${side}_ingest "$W/empty.txt"; done | median)
    t=$(for _ in $(seq "$RUNS"); do ${side}_ingest "$W/$kind.txt"; done | median)
    R[$side-$kind]=$(rate "$size" "$t" "$base")
  done
done

# --- memory per agent with a full scrollback --------------------------------------------------------
N=10
if want memory; then
"$BIN" kill-server >/dev/null 2>&1 || true
"$BIN" server >/dev/null
spid=$(cat "$CORRAL_RUNTIME_DIR/server.lock")
base_rss=$(rss_kb "$spid")
names=()
for i in $(seq $N); do
  names+=("$(BENCH_FILE=$W/scroll.txt BENCH_STAY=1 "$BIN" new --agent bench --detach --size 120x40 --name mem-$i)")
done
for n in "${names[@]}"; do
  until "$BIN" tail --plain -n 3 "$n" 2>/dev/null | grep -q '^005999'; do sleep 0.05; done
done
corral_rss=$(( ($(rss_kb "$spid") - base_rss) / N ))
"$BIN" kill-server >/dev/null

$TM new-session -d -x 120 -y 40 "sleep 100000"
tpid=$($TM display -p '#{pid}')
base_t=$(rss_kb "$tpid")
for i in $(seq $N); do $TM new-window -d "cat '$W/scroll.txt'; exec sleep 100000"; done
for i in $(seq $N); do
  until $TM capture-pane -p -t ":$i" 2>/dev/null | grep -q '^005999'; do sleep 0.05; done
done
tmux_rss=$(( ($(rss_kb "$tpid") - base_t) / N ))
$TM kill-server
fi

# --- CPU with idle agents ------------------------------------------------------------------------------
if want cpu; then
"$BIN" server >/dev/null
spid=$(cat "$CORRAL_RUNTIME_DIR/server.lock")
for i in $(seq "$AGENTS"); do BENCH_FILE=$W/empty.txt BENCH_STAY=1 "$BIN" new --agent bench --detach --name idle-$i >/dev/null; done
sleep 2
c0=$(cpu_ticks "$spid"); sleep 10; c1=$(cpu_ticks "$spid")
hz=$(getconf CLK_TCK)
corral_cpu=$(echo "scale=2; ($c1 - $c0) * 100 / $hz / 10" | bc -l)
"$BIN" kill-server >/dev/null
$TM new-session -d -x 120 -y 40 "sleep 100000"
tpid=$($TM display -p '#{pid}')
for i in $(seq $((AGENTS - 1))); do $TM new-window -d "sleep 100000"; done
sleep 2
c0=$(cpu_ticks "$tpid"); sleep 10; c1=$(cpu_ticks "$tpid")
tmux_cpu=$(echo "scale=2; ($c1 - $c0) * 100 / $hz / 10" | bc -l)
$TM kill-server
fi

# --- new on a large repository ------------------------------------------------------------------------
if want new; then
big=$W/big
mkdir -p "$big" && git -C "$big" init -q -b main
python3 - "$big" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 500:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(f"file {i}\n" * 4)
PY
git -C "$big" add -A && git -C "$big" commit -qm big
"$BIN" server >/dev/null
corral_new() {
  local t0 t1 n
  t0=$(now)
  n=$(BENCH_FILE=$W/empty.txt BENCH_STAY=1 "$BIN" --repo "$big" new --agent bench --detach)
  t1=$(now)
  "$BIN" --repo "$big" rm --force "$n" >/dev/null 2>&1
  echo "$t1 - $t0" | bc -l
}
git_new() {
  local t0 t1 p=$W/gw-$RANDOM
  t0=$(now)
  git -C "$big" worktree add -q -b "b-$RANDOM$RANDOM" "$p" >/dev/null 2>&1
  t1=$(now)
  git -C "$big" worktree remove --force "$p"
  echo "$t1 - $t0" | bc -l
}
corral_new_s=$(for _ in $(seq "$RUNS"); do corral_new; done | median)
git_new_s=$(for _ in $(seq "$RUNS"); do git_new; done | median)
fi

cat <<EOF
| what | corral | tmux / git | budget |
| --- | --- | --- | --- |
| ingest, plain text (MiB/s, higher is better) | ${R[corral-plain]} | ${R[tmux-plain]} | ≥ tmux |
| ingest, 256-colour SGR text (MiB/s) | ${R[corral-color]} | ${R[tmux-color]} | ≥ tmux |
| ingest, full-screen redraws on the alternate screen (MiB/s) | ${R[corral-alt]} | ${R[tmux-alt]} | ≥ tmux |
| ingest, Ink-style synchronized redraws (MiB/s) | ${R[corral-sync]} | ${R[tmux-sync]} | ≥ tmux |
| memory per agent, 5,000-line scrollback full (KiB) | $corral_rss | $tmux_rss | ≤ tmux |
| server CPU, $AGENTS idle agents over 10 s (% of one core) | $corral_cpu | $tmux_cpu | < 1% |
| \`new\` on a $FILES-file repository, worktree ready (s) | $corral_new_s | $git_new_s (git worktree add) | ≤ git |

Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(tmux -V); $(git --version); $(date -u +%Y-%m-%d); inputs ${MB} MiB, $RUNS run(s) each, median.
EOF

if want latency; then
  echo
  HOME=$ORIG_HOME ROUNDS=${ROUNDS:-200} "$ROOT/benches/latency.sh"
fi
if want frame; then
  echo
  echo "Dashboard frame, 8 busy panes (budget < 4 ms CPU), in process:"
  (cd "$ROOT" && HOME=$ORIG_HOME cargo run --release --quiet --example dashboard_frame)
  echo
  echo "8 busy panes on screen, end to end: corral dashboard (grid) and server against a tmux client and server:"
  HOME=$ORIG_HOME QUICK=${QUICK:-} RUNS=${FRAME_RUNS:-5} "$ROOT/benches/frame.sh"
fi
