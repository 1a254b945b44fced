#!/usr/bin/env bash
# Keystroke-to-echo latency to an agent on another host, through a real sshd on 127.0.0.1 (its own
# keys and config; the "host" is this machine under another HOME): `corral --host box attach`
# against `ssh -t box tmux attach`, to the same kind of `cat` agent, in the same run.
#
#   benches/ssh_latency.sh          # 200 keystrokes each
#   ROUNDS=50 benches/ssh_latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-200}
for c in tmux ssh ssh-keygen; do
  command -v "$c" >/dev/null || { echo "$c is needed (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -x /usr/sbin/sshd ] || { echo "/usr/sbin/sshd is needed (scripts/setup.sh installs openssh-server)" >&2; exit 1; }
cargo build --release --quiet --bin corral --example echo_latency
BIN=$PWD/target/release/corral
PROBE=$PWD/target/release/examples/echo_latency
W=$(mktemp -d /tmp/corral-ssh-latency.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TMSOCK="corral-ssh-latency-$$"
# The far side's environment: its own HOME, config and runtime directory.
R=$W/remote
REMOTE_ENV=(HOME=$R/home XDG_CONFIG_HOME=$R/home/.config XDG_STATE_HOME=$R/home/.local/state
  XDG_DATA_HOME=$R/home/.local/share CORRAL_RUNTIME_DIR=$R/run SHELL=/bin/sh TERM=xterm-256color
  GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b)
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_STATE_HOME=$W/home/.local/state \
  XDG_DATA_HOME=$W/home/.local/share CORRAL_RUNTIME_DIR=$W/run SHELL=/bin/sh
cleanup() {
  env "${REMOTE_ENV[@]}" "$BIN" kill-server >/dev/null 2>&1 || true
  tmux -L "$TMSOCK" kill-server >/dev/null 2>&1 || true
  [ -f "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$HOME/.config/corral" "$R/home/.config/corral" "$R/repo" /run/sshd 2>/dev/null || mkdir -p "$HOME/.config/corral" "$R/home/.config/corral" "$R/repo"
ssh-keygen -q -t ed25519 -N "" -f "$W/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$W/id"
cp "$W/id.pub" "$W/authorized_keys"
cat > "$W/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/host_key
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PrintMotd no
PrintLastLog no
LogLevel ERROR
CFG
/usr/sbin/sshd -f "$W/sshd_config" -E "$W/sshd.log"
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null && break; sleep 0.05; done
SSH=(ssh -p "$PORT" -i "$W/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "$(id -un)@127.0.0.1")
toml_list() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@"; }
cat > "$HOME/.config/corral/config.toml" <<TOML
[hosts.box]
ssh = $(toml_list "${SSH[@]}")
command = $(toml_list env "${REMOTE_ENV[@]}" "$BIN")
TOML
printf '[agents.cat]\ncommand = ["cat"]\nprompt = "none"\n' > "$R/home/.config/corral/config.toml"
git -C "$R/repo" init -q -b main && echo x > "$R/repo/a" && git -C "$R/repo" add a \
  && GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b git -C "$R/repo" commit -qm a
"$BIN" --host box --repo "$R/repo" new --agent cat --name lat --detach --size 120x40 >/dev/null
read -r c_med c_p95 < <("$PROBE" "$ROUNDS" -- "$BIN" --host box --repo "$R/repo" attach lat)
env "${REMOTE_ENV[@]}" tmux -L "$TMSOCK" -f /dev/null new-session -d -x 120 -y 40 cat
read -r t_med t_p95 < <("$PROBE" "$ROUNDS" -- ssh -t "${SSH[@]:1}" env "${REMOTE_ENV[@]}" tmux -L "$TMSOCK" attach)
cat <<MD
| keystroke to echo, over ssh to 127.0.0.1 | median (µs) | p95 (µs) |
| --- | --- | --- |
| corral --host box attach | $c_med | $c_p95 |
| ssh -t box tmux attach | $t_med | $t_p95 |

Machine: $(nproc) cores, $(uname -sr); $(tmux -V); $(ssh -V 2>&1); $(date -u +%Y-%m-%d); $ROUNDS keystrokes each.
MD
