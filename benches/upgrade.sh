#!/usr/bin/env bash
# How long `corral server --upgrade` takes (issue 17): from asking until the new binary's server
# answers `ls`, with 1 and with 50 agents, each with a full scrollback (5,000 lines) and a
# coloured screen. Checks every agent kept its pid and its last line. Three runs each; the
# binary alternates between two copies so every run is a real change of file.
#
#   benches/upgrade.sh
#   COUNTS="1 10 50" RUNS=5 benches/upgrade.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-"1 50"}
RUNS=${RUNS:-3}
cargo build --release --quiet --bin corral
W=$(mktemp -d /tmp/corral-upgrade.XXXXXX)
T=${CARGO_TARGET_DIR:-target}
cp "$T/release/corral" "$W/corral-a"
cp "$T/release/corral" "$W/corral-b"
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
BIN=$W/corral-a
cleanup() { "$BIN" kill-server >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$HOME/.config/corral"
cat > "$HOME/.config/corral/config.toml" <<'TOML'
[agents.full]
command = ["sh", "-c", "i=0; while [ $i -lt 5000 ]; do i=$((i+1)); printf '\\033[3%dmline %d\\033[0m of a full scrollback\\n' $((i % 8)) $i; done; exec sleep 1000000"]
prompt = "none"
TOML
ms() { echo $(( $(date +%s%N) / 1000000 )); }
for n in $COUNTS; do
  "$BIN" kill-server >/dev/null 2>&1 || true
  BIN=$W/corral-a
  # A repository of its own for each count: the last one's agents stay listed after kill-server.
  R=$W/repo-$n
  git init -q -b main "$R" && echo x > "$R/a" && git -C "$R" add a && git -C "$R" commit -qm a
  cd "$R"
  "$BIN" new -a full -n "$n" --detach --size 120x40 >/dev/null
  names=$("$BIN" ls --json | python3 -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)["agents"]))')
  for a in $names; do
    until "$BIN" tail "$a" --plain -n 3 | grep -q "line 5000 "; do
      if ! "$BIN" tail "$a" --plain -n 1 >/dev/null 2>&1; then
        echo "agent $a is not running; the server log says:" >&2
        tail -20 "$XDG_STATE_HOME/corral/server.log" >&2
        exit 1
      fi
      sleep 0.1
    done
  done
  pids_before=$("$BIN" ls --json | python3 -c 'import json,sys; print(sorted(a["pid"] for a in json.load(sys.stdin)["agents"]))')
  for run in $(seq 1 "$RUNS"); do
    next=$W/corral-b; [ "$BIN" = "$W/corral-b" ] && next=$W/corral-a
    t0=$(ms)
    said=$("$next" server --upgrade)
    t1=$(ms)
    BIN=$next
    pids_after=$("$BIN" ls --json | python3 -c 'import json,sys; print(sorted(a["pid"] for a in json.load(sys.stdin)["agents"]))')
    [ "$pids_before" = "$pids_after" ] || { echo "pids changed: $pids_before -> $pids_after" >&2; exit 1; }
    for a in $names; do
      "$BIN" tail "$a" --plain -n 3 | grep -q "line 5000 " || { echo "$a lost its last line" >&2; exit 1; }
    done
    echo "agents=$n run=$run wall_ms=$((t1 - t0)) ($said)"
  done
done
