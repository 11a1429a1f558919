#!/usr/bin/env python3
"""Compare `mailcanary reports parse` with parsedmarc.

Run through bench/reports-compare.sh, which makes the virtualenv with the
pinned parsedmarc and builds the release binary. This program:

1. generates one aggregate report with N records (bench/gen-aggregate.py)
   and checks that both tools read its totals;
2. times both on it, R runs each, every run in a fresh process: mailcanary
   as a whole process (start, read, parse, print JSON), parsedmarc's
   `parse_report_file(offline=True)` measured inside its process (the
   interpreter's start and imports are not counted against it);
3. prints both medians and the ratio;
4. reads every file in tests/fixtures/reports with both tools and prints,
   per file, whether they agree on kind, reporter (org_name), report id,
   policy domain, message and pass counts, and TLS session counts. The
   reporter is compared as the organization name, case-insensitively
   (parsedmarc has no table of receivers; it normalizes some names).

`reports_compare.py worker FILE...` is the parsedmarc side (run with the
virtualenv's python): it prints one JSON summary per file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "tests", "fixtures", "reports")


def parsedmarc_summary(path: str) -> dict:
    """What parsedmarc read from one file, in the comparison's terms."""
    import parsedmarc  # noqa: PLC0415 (only in the virtualenv)

    try:
        parsed = parsedmarc.parse_report_file(path, offline=True)
    except Exception as e:  # parsedmarc raises its own and library errors
        return {"kind": "invalid", "error": f"{type(e).__name__}: {e}"[:200]}
    kind = parsed.get("report_type")
    report = parsed.get("report", {})
    if kind == "aggregate":
        meta = report["report_metadata"]
        records = report["records"]
        messages = sum(int(r["count"]) for r in records)
        passed = sum(int(r["count"]) for r in records if r["alignment"]["dmarc"])
        return {
            "kind": "dmarc_aggregate",
            "reporter": meta["org_name"],
            "report_id": meta["report_id"],
            "policy_domain": report["policy_published"]["domain"],
            "records": len(records),
            "messages": messages,
            "dmarc_pass": passed,
        }
    if kind == "smtp_tls":
        return {
            "kind": "tls_rpt",
            "reporter": report["organization_name"],
            "report_id": report["report_id"],
            "policies": [
                [p["policy_type"], p["policy_domain"], p["successful_session_count"], p["failed_session_count"]]
                for p in report["policies"]
            ],
        }
    return {"kind": f"other:{kind}"}


def mailcanary_summaries(binary: str, paths: list[str]) -> list[dict]:
    out = subprocess.run([binary, "reports", "parse", "--format", "json", *paths],
                         capture_output=True, check=False)
    result = []
    for v in json.loads(out.stdout):
        if v["kind"] == "dmarc_aggregate":
            result.append({k: v[k] for k in ("kind", "report_id", "policy_domain", "records", "messages", "dmarc_pass")}
                          | {"reporter": v["org_name"]})
        elif v["kind"] == "tls_rpt":
            result.append({"kind": "tls_rpt", "reporter": v["org_name"], "report_id": v["report_id"],
                           "policies": [[p["policy_type"], p["policy_domain"], p["successful"], p["failed"]]
                                        for p in v["policies"]]})
        else:
            result.append({"kind": "invalid", "error": v["error"]})
    return result


def worker(paths: list[str]) -> None:
    for p in paths:
        print(json.dumps(parsedmarc_summary(p)))


def time_worker(path: str) -> None:
    import parsedmarc  # noqa: PLC0415

    start, cpu = time.perf_counter(), time.process_time()
    parsed = parsedmarc.parse_report_file(path, offline=True)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "records": len(parsed["report"]["records"])}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailcanary", required=True)
    ap.add_argument("--venv-python", required=True)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir")
    args = ap.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="mailcanary-reports-bench-")
    os.makedirs(workdir, exist_ok=True)
    big = os.path.join(workdir, f"aggregate-{args.records}.xml")
    gen = subprocess.run([sys.executable, os.path.join(HERE, "gen-aggregate.py"), "--records",
                          str(args.records), big], capture_output=True, text=True, check=True)
    totals = json.loads(gen.stdout)
    size = os.path.getsize(big)
    print(f"report: {big} ({size / 1e6:.1f} MB, {totals['records']} records, "
          f"{totals['messages']} messages, {totals['dmarc_pass']} pass)")

    # Both read the generated totals.
    mc = mailcanary_summaries(args.mailcanary, [big])[0]
    pm = json.loads(subprocess.run([args.venv_python, __file__, "worker", big], capture_output=True,
                                   text=True, check=True).stdout)
    for name, got in (("mailcanary", mc), ("parsedmarc", pm)):
        read = {k: got.get(k) for k in totals}
        status = "ok" if read == totals else f"DIFFERS: {read}"
        print(f"  {name:<10} reads the totals: {status}")

    # Wall time, and CPU time (user + system), which a busy shared machine
    # disturbs less.
    mc_times, pm_times, mc_cpu, pm_cpu = [], [], [], []
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([args.mailcanary, "reports", "parse", "--format", "json", big],
                       stdout=subprocess.DEVNULL, check=True)
        mc_times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        mc_cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out = json.loads(subprocess.run([args.venv_python, __file__, "time-worker", big],
                                        capture_output=True, text=True, check=True).stdout)
        pm_times.append(out["seconds"])
        pm_cpu.append(out["cpu"])
    med = statistics.median
    for name, wall, cpu in (("mailcanary reports parse (whole process)", mc_times, mc_cpu),
                            ("parsedmarc parse_report_file(offline=True)", pm_times, pm_cpu)):
        print(f"{name}: median {med(wall) * 1000:.1f} ms wall (min {min(wall) * 1000:.1f}, "
              f"max {max(wall) * 1000:.1f}), {med(cpu) * 1000:.1f} ms CPU, {args.runs} runs")
    print(f"ratio: mailcanary is {med(pm_times) / med(mc_times):.0f}x faster by wall time, "
          f"{med(pm_cpu) / max(med(mc_cpu), 1e-6):.0f}x by CPU time "
          f"({totals['records'] / med(mc_times):,.0f} vs {totals['records'] / med(pm_times):,.0f} records/s)")

    # What both read from every fixture.
    names = sorted(n for n in os.listdir(FIXTURES) if n not in ("make.py", "expected.json"))
    paths = [os.path.join(FIXTURES, n) for n in names]
    mine = mailcanary_summaries(args.mailcanary, paths)
    out = subprocess.run([args.venv_python, __file__, "worker", *paths], capture_output=True, text=True,
                         check=True)
    theirs = [json.loads(line) for line in out.stdout.splitlines()]
    agree = 0
    print("\nfixture comparison (kind, reporter, report id, policy domain, messages, pass, TLS sessions):")
    for name, a, b in zip(names, mine, theirs):
        # parsedmarc lower-cases some organization names (Mail.Ru -> mail.ru).
        for v in (a, b):
            if "reporter" in v:
                v["reporter"] = v["reporter"].lower()
        if a["kind"] == "invalid" and b["kind"] == "invalid":
            print(f"  {name:<28} agree: both invalid (mailcanary: {a['error']})")
            agree += 1
        elif a == b:
            print(f"  {name:<28} agree: {a['kind']} {a['reporter']} {a['report_id']}")
            agree += 1
        else:
            keys = sorted(set(a) | set(b))
            diff = {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}
            print(f"  {name:<28} DIFFER (mailcanary, parsedmarc): {json.dumps(diff)}")
    print(f"{agree} of {len(names)} fixtures read the same")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "time-worker":
        time_worker(sys.argv[2])
    else:
        main()
