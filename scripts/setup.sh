#!/usr/bin/env bash
# Install what building and testing corral needs on a fresh Debian machine (idempotent).
# Rust itself comes from rustup; git and a C compiler build the vendored libgit2.
set -euo pipefail
need=()
for cmd in git cc make pkg-config tmux; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=()
  for c in "${need[@]}"; do
    case "$c" in
      cc|make) pkgs+=(build-essential) ;;
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
