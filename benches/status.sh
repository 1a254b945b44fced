#!/usr/bin/env bash
# The status engine under load: AGENTS fake agents whose screens change every 100 ms and that
# switch between a working screen and a needs-input screen every 2 s. Prints the server's CPU
# while nobody asks it anything, and the detection delay (state change on screen -> badge).
#
#   benches/status.sh                 # 20 agents, 20 s per phase
#   AGENTS=5 SECS=5 benches/status.sh
#   IDLE=1 benches/status.sh          # agents that print once and wait: the idle server's CPU
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-20}
SECS=${SECS:-20}
cargo build --release --quiet --bin corral --example status_bench
BIN=$PWD/target/release/corral
EXAMPLE=$PWD/target/release/examples/status_bench
W=$(mktemp -d /tmp/corral-status-bench.XXXXXX)
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
cleanup() { "$BIN" kill-server >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$HOME/.config/corral" "$W/repo"

# The fake agent: a line every 100 ms; every 2 s it notes the time and switches its bottom line
# between "BUSY n" and "ASK: continue? [y/n]". Bash builtins only in the loop (no forks), so the
# agents themselves cost the machine little.
cat > "$W/agent.sh" <<'SH'
#!/bin/bash
mode=BUSY; n=0
next=${EPOCHREALTIME/./}; next=$((next + 2000000))
while :; do
  n=$((n+1))
  now=${EPOCHREALTIME/./}
  if [ "$now" -ge "$next" ]; then
    if [ $mode = BUSY ]; then mode=ASK; else mode=BUSY; fi
    echo "$mode $EPOCHREALTIME" >> switches.log
    next=$((now + 2000000))
  fi
  if [ $mode = ASK ]; then printf '\ntick %d\nASK: continue? [y/n]' "$n"; else printf '\ntick %d\nBUSY %d' "$n" "$n"; fi
  read -r -t 0.1 _ || true
done
SH
if [ -n "${IDLE:-}" ]; then
  printf '#!/bin/sh\nprintf "ready\\n> "\nexec sleep 100000\n' > "$W/agent.sh"
fi
chmod +x "$W/agent.sh"

cat > "$HOME/.config/corral/config.toml" <<TOML
[ports]
first = 30000
last = 30999
[agents.bench]
command = ["$W/agent.sh"]
prompt = "none"
[[agents.bench.rules]]
name = "ask"
status = "needs-input"
lines = 1
match = ['^ASK: .*\[y/n\]']
[[agents.bench.rules]]
name = "busy"
status = "working"
lines = 1
match = ['^BUSY \d+']
TOML

git -C "$W/repo" init -q -b main
echo x > "$W/repo/a"
git -C "$W/repo" add a
git -C "$W/repo" commit -qm a
cd "$W/repo"
echo "machine: $(nproc) cores; $("$BIN" --version)"
if [ -n "${IDLE:-}" ]; then echo "agents print once and wait"; else
  echo "agents' screens change every 100 ms; each switches working <-> needs-input every 2 s"; fi
# The example connects to this server (started by the real binary, not by the example).
"$BIN" server >/dev/null
"$EXAMPLE" "$W/repo" bench "$AGENTS" "$SECS"
