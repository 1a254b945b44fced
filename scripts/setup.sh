#!/usr/bin/env bash
# Install what building and testing corral needs on a fresh Debian machine (idempotent).
# Rust itself comes from rustup; git and a C compiler build the vendored libgit2. tmux, vim, less,
# htop and vttest are the reference terminal and the programs tests/fidelity.rs compares in it;
# OpenSSH (client and server) is the transport tests/hosts.rs checks hosts over.
set -euo pipefail
need=()
for cmd in git cc make pkg-config tmux python3 npm vim less htop vttest ssh; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
# OpenSSH's server: tests/hosts.rs runs one on 127.0.0.1 (its own keys and config) as the
# transport to another host.
[ -x /usr/sbin/sshd ] || need+=(sshd)
if [ ${#need[@]} -gt 0 ]; then
  pkgs=()
  for c in "${need[@]}"; do
    case "$c" in
      cc|make) pkgs+=(build-essential) ;;
      ssh) pkgs+=(openssh-client) ;;
      sshd) pkgs+=(openssh-server) ;;
      *) pkgs+=("$c") ;;
    esac
  done
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
cargo fetch --locked

# The agent CLIs the end-to-end status tests run (tests/claude.rs, codex.rs, gemini.rs), pinned, into .ci/agents
# (ignored by git). Without them those tests say they are skipped; a failed install is not fatal.
root="$(cd "$(dirname "$0")/.." && pwd)"
agents="$root/.ci/agents"
if "$agents/node_modules/.bin/claude" --version 2>/dev/null | grep -q '^2\.1\.330 ' \
  && "$agents/node_modules/.bin/codex" --version 2>/dev/null | grep -q ' 0\.169\.0$' \
  && "$agents/node_modules/.bin/gemini" --version 2>/dev/null | grep -q '^0\.61\.0$' \
  && "$agents/node_modules/.bin/opencode" --version 2>/dev/null | grep -q '^1\.18\.33$'; then
  :
elif command -v npm >/dev/null 2>&1; then
  mkdir -p "$agents"
  npm install --no-audit --no-fund --silent --prefix "$agents" \
    @anthropic-ai/claude-code@2.1.330 @openai/codex@0.169.0 @google/gemini-cli@0.61.0 opencode-ai@1.18.33 \
    || echo "setup: could not install the agent CLIs; their end-to-end tests will be skipped" >&2
else
  echo "setup: npm not found; the agent CLIs' end-to-end tests will be skipped" >&2
fi

# The newest releases too, into .ci/agents-latest: agents reword their screens every few releases,
# and the status tests run against both, so a release that breaks a rule is named by a test.
latest="$root/.ci/agents-latest"
if command -v npm >/dev/null 2>&1; then
  want_claude=$(npm view @anthropic-ai/claude-code version 2>/dev/null || true)
  want_codex=$(npm view @openai/codex version 2>/dev/null || true)
  want_gemini=$(npm view @google/gemini-cli version 2>/dev/null || true)
  want_opencode=$(npm view opencode-ai version 2>/dev/null || true)
  if [ -n "$want_claude" ] && [ -n "$want_codex" ] && [ -n "$want_gemini" ] && [ -n "$want_opencode" ] \
    && ! { "$latest/node_modules/.bin/claude" --version 2>/dev/null | grep -q "^$want_claude " \
      && "$latest/node_modules/.bin/codex" --version 2>/dev/null | grep -q " $want_codex\$" \
      && "$latest/node_modules/.bin/gemini" --version 2>/dev/null | grep -q "^$want_gemini\$" \
      && "$latest/node_modules/.bin/opencode" --version 2>/dev/null | grep -q "^$want_opencode\$"; }; then
    mkdir -p "$latest"
    npm install --no-audit --no-fund --silent --prefix "$latest" \
      "@anthropic-ai/claude-code@$want_claude" "@openai/codex@$want_codex" \
      "@google/gemini-cli@$want_gemini" "opencode-ai@$want_opencode" \
      || echo "setup: could not install the newest agent CLIs; their status tests will be skipped" >&2
  fi
fi

# Aider is a Python program: pinned, into its own venv at .ci/aider (tests/aider.rs runs
# .ci/aider/bin/aider). Its PyPI releases are rare, so there is no "newest" copy beside it.
aider="$root/.ci/aider"
if ! "$aider/bin/aider" --version 2>/dev/null | grep -q ' 0\.86\.2$'; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv || true
  fi
  { python3 -m venv "$aider" && "$aider/bin/pip" install --quiet --disable-pip-version-check aider-chat==0.86.2; } \
    || echo "setup: could not install Aider; its end-to-end tests will be skipped" >&2
fi
