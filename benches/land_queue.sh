#!/usr/bin/env bash
# The landing queue against landing by hand (issue 12): N agents, each with a commit of its own,
# landed one after the other with a gate of GATE seconds, as agents landed per minute.
#  - corral: `corral land a1 ... aN` (sync, gate, compare-and-swap land, removal of each agent);
#  - by hand, with the git CLI in the same run: for each branch, `git rebase main` in its
#    worktree, the same gate there, then `git merge --ff-only` in the main worktree.
#
#   benches/land_queue.sh            # 10 agents, 1 s gate, release build (benches/land.sh runs it)
#   N=4 GATE=0.2 BIN=target/debug/corral benches/land_queue.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
GATE=${GATE:-1}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/corral
fi
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ]; then export TMPDIR=/dev/shm; fi
T=$(mktemp -d)
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_STATE_HOME=$T/home/.local/state
export XDG_DATA_HOME=$T/home/.local/share CORRAL_RUNTIME_DIR=$T/run
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
mkdir -p "$HOME/.config/corral"
trap '"$BIN" kill-server >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
cat > "$HOME/.config/corral/config.toml" <<TOML
default_agent = "cat"
[agents.cat]
command = ["sh", "-c", "echo ready; exec cat"]
[merge]
gate = ["sleep", "$GATE"]
auto_sync = "off"
TOML

repo() {
  git init -q -b main "$1"
  for i in $(seq 1 50); do echo "line $i" > "$1/f$i.txt"; done
  git -C "$1" add -A && git -C "$1" commit -qm first
}
now() { date +%s.%N; }
rate() { awk -v n="$N" -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", n * 60 / (e - s) }'; }

# corral
repo "$T/a"
names=()
for i in $(seq 1 "$N"); do
  (cd "$T/a" && "$BIN" new --name "a$i" --detach --size 80x24 >/dev/null)
  names+=("a$i")
done
for i in $(seq 1 "$N"); do
  wt=$(cd "$T/a" && "$BIN" ls --json | python3 -c "import json,sys; print([a['worktree'] for a in json.load(sys.stdin)['agents'] if a['name']=='a$i'][0])")
  echo "agent $i" > "$wt/own$i.txt"
  git -C "$wt" add -A && git -C "$wt" commit -qm "agent $i"
done
start=$(now)
(cd "$T/a" && "$BIN" land "${names[@]}" >/dev/null)
end=$(now)
test "$(git -C "$T/a" log --oneline main | wc -l)" -gt "$N"
corral_rate=$(rate "$start" "$end")

# by hand
repo "$T/b"
for i in $(seq 1 "$N"); do
  git -C "$T/b" worktree add -q -b "b$i" "$T/wt/b$i"
  echo "agent $i" > "$T/wt/b$i/own$i.txt"
  git -C "$T/wt/b$i" add -A && git -C "$T/wt/b$i" commit -qm "agent $i"
done
start=$(now)
for i in $(seq 1 "$N"); do
  git -C "$T/wt/b$i" rebase -q main
  (cd "$T/wt/b$i" && sleep "$GATE")
  git -C "$T/b" merge -q --ff-only "b$i"
done
end=$(now)
hand_rate=$(rate "$start" "$end")

echo "landed per minute, $N agents, ${GATE}s gate: corral land $corral_rate, by hand (git rebase, gate, merge --ff-only) $hand_rate"
echo "Machine: $(nproc) cores, $(uname -sr); $(git --version); $(date -u +%Y-%m-%d)"
