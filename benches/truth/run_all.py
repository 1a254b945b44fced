#!/usr/bin/env python3
"""One command: run the scenarios with the real agent CLI on every available host, then score.

  python3 benches/truth/run_all.py [--hosts tmux,corral] [--repeat 1]
                                            [--scenarios a.json,b.json] [--out DIR]

Scenarios: scenarios/*.json (three Claude Code scenarios). Hosts: tmux (always; the re-implemented
detectors of other tools and a footer-rules baseline are scored on its screens), ccmanager (when bun
and ccmanager's dist are in the cache; see hosts.py), corral (when a corral binary is found: see
harness_paths.py). Runs go to --out (default <system temp dir>/corral-status-runs/<timestamp>); the
printed tables are also saved there as report.txt, with all numbers in scores.json. Exit status 1 when
any run failed its own checks.
"""
import argparse
import glob
import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import agents as agentmod  # noqa: E402
import harness_paths  # noqa: E402
import hosts as hostmod  # noqa: E402
import run_scenario  # noqa: E402
import score  # noqa: E402

DEFAULT_SCENARIOS = ["simple_text.json", "write_permission.json", "bash_two_turns.json"]
SETS = {"default": "scenarios"}


def set_scenarios(name):
    """Scenario files of a set, in a stable order (the default set keeps its historical order)."""
    if name == "default":
        return [os.path.join(HERE, "scenarios", s) for s in DEFAULT_SCENARIOS]
    return sorted(glob.glob(os.path.join(HERE, SETS[name], "*.json")))


def available_hosts():
    out = ["tmux"]
    if hostmod.CcmanagerHost.available():
        out.append("ccmanager")
    if hostmod.CorralHost.available():
        out.append("corral")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", help="comma-separated; default: all available")
    ap.add_argument("--set", default="default", choices=sorted(SETS),
                    help="scenario set (default: the three easy Claude Code scenarios in scenarios/)")
    ap.add_argument("--scenarios", help="comma-separated scenario files (relative ones are looked up in the "
                                        "set's folder); overrides the set's list")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--approve-delay", type=float, default=3.0)
    ap.add_argument("--typing-cps", type=float, default=30.0)
    ap.add_argument("--idle-before-prompt", type=float, default=4.0)
    ap.add_argument("--tail-idle", type=float, default=6.0)
    ap.add_argument("--score-only", help="skip running; score this existing runs directory")
    a = ap.parse_args()

    root = a.score_only or a.out or os.path.join(harness_paths.tmp_dir("corral-status-runs"),
                                                 time.strftime("%Y%m%d-%H%M%S"))
    failed = []
    if not a.score_only:
        hosts = a.hosts.split(",") if a.hosts else available_hosts()
        for h in hosts:
            if h not in hostmod.HOSTS:
                print(f"unknown host {h}", file=sys.stderr)
                return 2
        if a.scenarios:
            scen = [s if os.path.isabs(s) else os.path.join(HERE, SETS[a.set], s) for s in a.scenarios.split(",")]
        else:
            scen = set_scenarios(a.set)
        if not scen:
            print(f"no scenarios in set {a.set}", file=sys.stderr)
            return 2
        used = []
        for s in scen:
            with open(s) as f:
                ag = agentmod.for_scenario(json.load(f))
            if ag.name not in [u.name for u in used]:
                used.append(ag)
        for ag in used:
            if not os.path.exists(ag.binary()):
                print(f"{ag.name} not found at {ag.binary()} ({harness_paths.SETUP_HINT}, or set "
                      f"HARNESS_{ag.name.upper()})", file=sys.stderr)
                return 2
        versions = "  ".join(f"{ag.name}: {ag.version()}" for ag in used)
        print(f"set: {a.set}  {versions}  hosts: {', '.join(hosts)}  runs: {root}", flush=True)
        for h in hosts:
            for s in scen:
                name = os.path.splitext(os.path.basename(s))[0]
                for k in range(a.repeat):
                    out = os.path.join(root, h, name if a.repeat == 1 else f"{name}-{k + 1}")
                    print(f"- {h} / {name} #{k + 1}", flush=True)
                    meta = run_scenario.run(s, h, out, approve_delay=a.approve_delay, typing_cps=a.typing_cps,
                                            idle_before_prompt=a.idle_before_prompt, tail_idle=a.tail_idle,
                                            verbose=False)
                    status = "ok" if meta["ok"] else "FAILED: " + "; ".join(meta["warnings"])
                    if meta["warnings"] and meta["ok"]:
                        status += " (warnings: " + "; ".join(meta["warnings"]) + ")"
                    print(f"    {status}", flush=True)
                    if not meta["ok"]:
                        failed.append(out)
    buf = io.StringIO()
    argv = [root, "--json", os.path.join(root, "scores.json")]
    old = sys.argv
    try:
        sys.argv = ["score.py"] + argv
        with redirect_stdout(buf):
            score.main()
    finally:
        sys.argv = old
    report = buf.getvalue()
    print(report)
    with open(os.path.join(root, "report.txt"), "w") as f:
        f.write(report)
    print(f"runs, report.txt and scores.json in {root}")
    if failed:
        print("failed runs: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
