#!/usr/bin/env python3
"""A busy pane for benches/frame.sh, the same on the corral and the tmux side.

Prints `ready-TAG`, waits for the file BUSY_GO, then writes BUSY_LINES coloured build-like lines
every 50 ms for BUSY_SECS seconds (on a fixed schedule, so every pane writes at the same rate
however loaded the machine is), then waits to be killed. Lines stay under 60 columns so they
do not wrap in a pane of a 200-column terminal split in three.
"""
import os
import sys
import time

tag = os.environ.get("BUSY_TAG", "0")
go = os.environ["BUSY_GO"]
secs = float(os.environ.get("BUSY_SECS", "10"))
lines = int(os.environ.get("BUSY_LINES", "5"))
out = sys.stdout
out.write(f"ready-{tag}\n")
out.flush()
while not os.path.exists(go):
    time.sleep(0.01)
start = time.monotonic()
tick = start
i = 0
while tick - start < secs:
    chunk = []
    for _ in range(lines):
        i += 1
        chunk.append(
            f"\x1b[1;32m   Compiling\x1b[0m crate-{tag}-{i} v0.{i % 7}.{i % 13} "
            f"\x1b[38;5;{i % 256}m(/src/m{i % 97})\x1b[0m \x1b[{31 + i % 7}mok\x1b[0m\n"
        )
    out.write("".join(chunk))
    out.flush()
    tick += 0.05
    time.sleep(max(0.0, tick - time.monotonic()))
while True:
    time.sleep(3600)
