#!/usr/bin/env bash
# Landing work: radar and merge time for several agents on a generated repository
# (examples/land_bench.rs), then the landing queue's agents landed per minute beside the same done
# by hand with the git CLI in the same run (benches/land_queue.sh: 10 agents, 1 s gate).
#
#   benches/land.sh                 # 20,000 files, 10 agents, median of 5; queue of 10, 1 s gate
#   FILES=2000 AGENTS=5 benches/land.sh
#   QUEUE=0 benches/land.sh         # without the queue part
#
# The repository goes under $TMPDIR; /dev/shm is used when it exists, so the numbers measure
# corral and libgit2 rather than the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-20000}
AGENTS=${AGENTS:-10}
ROUNDS=${ROUNDS:-5}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ]; then export TMPDIR=/dev/shm; fi
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
cargo build --release --quiet --example land_bench
./target/release/examples/land_bench "$FILES" "$AGENTS" "$ROUNDS"
if [ "${QUEUE:-1}" != 0 ]; then
  N=${QUEUE_AGENTS:-10} benches/land_queue.sh | head -1
fi
echo "Machine: $(nproc) cores, $(uname -sr); $(git --version); $(date -u +%Y-%m-%d)"
