#!/usr/bin/env python3
"""Compare `mailcanary bounce` with Sisimai (Debian's libsisimai-perl).

Run through bench/bounce-compare.sh. For the message files given it:

1. times both tools classifying every file, ROUNDS rounds in one process
   each (`mailcanary bounce --format json FILE...` repeated through its
   own loop of process starts would measure process start-up, so the
   binary is given the file list ROUNDS times over; Sisimai loops inside
   one perl process), repeated RUNS times; prints the median messages per
   second of each and the ratio, in wall-clock time and in CPU time (user +
   system of the child process, from getrusage), the latter being steadier
   on a shared machine;
2. compares the verdicts per message: the reason of the first recipient
   (both tools report nothing = agreement), and the status code where
   Sisimai has a real one (not its internal 5.0.9xx / 4.0.9xx codes).
   Disagreements are listed, with those where mailcanary names a reason
   Sisimai 4.25 does not have (authfailure, badreputation, requireptr,
   notcompliantrfc, speeding) counted apart.
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

NEWER_REASONS = {"authfailure", "badreputation", "requireptr", "notcompliantrfc", "speeding"}


def run_mailcanary(binary: str, files: list[str], rounds: int) -> list[dict]:
    out = subprocess.run(
        # --vacation: Sisimai reports auto-replies too, so both see the same.
        [binary, "bounce", "--format", "json", "--vacation", *(files * rounds)],
        check=False, capture_output=True, text=True,
    )
    if out.returncode not in (0, 1):
        sys.exit(f"mailcanary failed: {out.stderr}")
    return json.loads(out.stdout)[-len(files):]


def run_sisimai(script: str, files: list[str], rounds: int) -> dict[str, list[tuple[str, str]]]:
    out = subprocess.run(
        ["perl", script, "--rounds", str(rounds), *files],
        check=True, capture_output=True, text=True,
    )
    verdicts: dict[str, list[tuple[str, str]]] = {f: [] for f in files}
    for line in out.stdout.splitlines():
        f, reason, status, _action = line.split("\t")
        if reason != "-":
            verdicts[f].append((reason, status))
    return verdicts


def cpu_of_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(fn) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of the child `fn` runs."""
    c = cpu_of_children()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t, cpu_of_children() - c


def main() -> None:
    binary, script = sys.argv[1], sys.argv[2]
    files = sys.argv[3:]
    rounds = int(os.environ.get("ROUNDS", "20"))
    runs = int(os.environ.get("RUNS", "5"))
    n = len(files) * rounds

    mc = [timed(lambda: run_mailcanary(binary, files, rounds)) for _ in range(runs)]
    ss = [timed(lambda: run_sisimai(script, files, rounds)) for _ in range(runs)]
    mc_wall = statistics.median(w for w, _ in mc)
    ss_wall = statistics.median(w for w, _ in ss)
    mc_cpu = statistics.median(c for _, c in mc)
    ss_cpu = statistics.median(c for _, c in ss)
    print(f"messages: {len(files)} files x {rounds} rounds = {n} per run, {runs} runs, median")
    print(f"mailcanary: {n / mc_wall:10.0f} messages/s  ({mc_wall:.3f} s wall, {mc_cpu:.3f} s CPU)")
    print(f"sisimai:    {n / ss_wall:10.0f} messages/s  ({ss_wall:.3f} s wall, {ss_cpu:.3f} s CPU)")
    print(f"ratio:      {ss_wall / mc_wall:10.1f}x wall-clock, "
          f"{ss_cpu / mc_cpu if mc_cpu > 0 else float('inf'):.1f}x CPU (user + system)")
    print()

    ours = {r["file"]: r.get("bounces", []) for r in run_mailcanary(binary, files, 1)}
    theirs = run_sisimai(script, files, 1)
    same_reason = 0
    newer = 0
    status_total = 0
    same_status = 0
    diffs = []
    for f in files:
        o = ours.get(f, [])
        t = theirs[f]
        o_reason = o[0]["reason"] if o else "-"
        t_reason = t[0][0] if t else "-"
        if o_reason == t_reason:
            same_reason += 1
        elif o_reason in NEWER_REASONS:
            newer += 1
            diffs.append(f"  reason {os.path.basename(f)}: mailcanary {o_reason} (newer than Sisimai 4.25), sisimai {t_reason}")
        else:
            diffs.append(f"  reason {os.path.basename(f)}: mailcanary {o_reason}, sisimai {t_reason}")
        if t:
            t_status = t[0][1]
            # Sisimai's own codes for a reason without one: 5.0.911 and the like.
            if t_status != "-" and not re.fullmatch(r"[245]\.0\.9\d\d", t_status):
                status_total += 1
                o_status = (o[0].get("status") or "-") if o else "-"
                if o_status == t_status:
                    same_status += 1
                else:
                    diffs.append(f"  status {os.path.basename(f)}: mailcanary {o_status}, sisimai {t_status}")
    total = len(files)
    print(f"same reason: {same_reason}/{total} ({100 * same_reason / total:.0f}%); "
          f"with the reasons Sisimai 4.25 lacks counted as agreeing: "
          f"{same_reason + newer}/{total} ({100 * (same_reason + newer) / total:.0f}%)")
    if status_total:
        print(f"same status (where Sisimai has a real one): {same_status}/{status_total} "
              f"({100 * same_status / status_total:.0f}%)")
    if diffs:
        print("differences:")
        print("\n".join(diffs))


if __name__ == "__main__":
    main()
