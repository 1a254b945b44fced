#!/usr/bin/env bash
# How often the badge is right, measured with the status-truth instrument (benches/truth, our copy of
# ../shared/status-truth): the real Claude Code and Codex against scripted models whose own logs
# are the truth, corral's badge sampled every 100 ms beside ccmanager's rules and a footer-rules
# baseline scored on tmux's screens of the same scenarios.
#
#   benches/badge_truth.sh            # default scenarios x RUNS (3), pinned Claude Code, on corral
#                                     # and tmux; then the newest Claude Code; then our harder ones;
#                                     # then OpenCode and Aider (set "chat")
#   RUNS=1 SETS=default benches/badge_truth.sh
#   SETS=gemini benches/badge_truth.sh  # Gemini CLI's three scenarios (gemini_*.json) x RUNS
#
# The pinned CLIs come from .ci/agents and the newest from .ci/agents-latest (scripts/setup.sh).
# Prints bar_score's line per run; every table is kept under $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
TRUTH=${TRUTH:-benches/truth}
RUNS=${RUNS:-3}
SETS=${SETS:-"default newest harder gemini chat"}
OUT=${OUT:-$(mktemp -d /tmp/corral-badge-truth.XXXXXX)}
mkdir -p "$OUT"
cargo build --release --quiet --bin corral
LATEST=$PWD/.ci/agents-latest/node_modules/.bin
HARDER=$(ls "$PWD"/benches/status-truth/{claude,codex}_*.json | paste -sd, -)
# OpenCode and Aider: a reply, an approval, two turns each; scored on corral only (no other tool's
# detector is re-implemented for them). Their pinned CLIs: .ci/agents (OpenCode), .ci/aider (Aider).
CHAT=$(ls "$PWD"/benches/status-truth/{opencode,aider}_*.json | paste -sd, -)
run() { # name, then env assignments and run_all.py arguments
  local name=$1; shift
  env "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1 || echo "($name: a run reported a problem, see $OUT/$name.log)"
  printf "%-22s %s\n" "$name" "$(python3 "$TRUTH/bar_score.py" "$OUT/$name/scores.json" 2>&1 | tail -1)"
}
for set in $SETS; do
  case $set in
    default)
      for i in $(seq "$RUNS"); do
        run "pinned-$i" python3 "$TRUTH/run_all.py" --hosts tmux,corral
      done ;;
    newest)
      for i in $(seq "$RUNS"); do
        run "newest-$i" HARNESS_CLAUDE="$LATEST/claude" HARNESS_CODEX="$LATEST/codex" \
          python3 "$TRUTH/run_all.py" --hosts tmux,corral
      done ;;
    gemini)
      # Gemini CLI: a reply, an approval, two turns (benches/status-truth/gemini_*.json); pinned
      # and newest are one release at this writing, so the newest is run only when it differs.
      GEMINI=$(ls "$PWD"/benches/status-truth/gemini_*.json | paste -sd, -)
      for i in $(seq "$RUNS"); do
        run "gemini-pinned-$i" python3 "$TRUTH/run_all.py" --hosts tmux,corral --scenarios "$GEMINI"
      done
      if [ "$("$LATEST/gemini" --version 2>/dev/null)" != "$(.ci/agents/node_modules/.bin/gemini --version 2>/dev/null)" ]; then
        run "gemini-newest" HARNESS_GEMINI="$LATEST/gemini" \
          python3 "$TRUTH/run_all.py" --hosts tmux,corral --scenarios "$GEMINI"
      fi ;;
    harder)
      run "harder-pinned" python3 "$TRUTH/run_all.py" --hosts tmux,corral --scenarios "$HARDER"
      run "harder-newest" HARNESS_CLAUDE="$LATEST/claude" HARNESS_CODEX="$LATEST/codex" \
        python3 "$TRUTH/run_all.py" --hosts tmux,corral --scenarios "$HARDER" ;;
    chat)
      for i in $(seq "$RUNS"); do
        run "chat-$i" python3 "$TRUTH/run_all.py" --hosts corral --scenarios "$CHAT"
      done ;;
  esac
done
echo "tables: $OUT/*/report.txt"
