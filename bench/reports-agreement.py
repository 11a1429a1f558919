#!/usr/bin/env python3
"""Does mailcanary read real reports the way parsedmarc reads them?

    bench/reports-agreement.sh DIR_OR_FILE...

(the wrapper makes or reuses the pinned parsedmarc virtualenv of
bench/reports-compare.sh and builds a debug binary). For every file it runs
`mailcanary reports parse --format json` and parsedmarc's
`parse_report_file(offline=True)` and compares, per file:

- kind (dmarc_aggregate, tls_rpt or invalid),
- reporter (organization name; compared case-insensitively and without
  surrounding white space, because parsedmarc rewrites some names),
- report id, policy domain,
- messages (the sum of the records' counts) and dmarc_pass (messages whose
  evaluated DKIM or SPF result passed; parsedmarc's `alignment.dmarc`),
- for TLS reports, per policy: type, domain, successful and failed sessions.

It prints one line per file (which fields differ, never the report's
contents beyond the compared fields, and with the local part of anything
that looks like an address cut off) and the totals. The evaluation set
lives outside the repository (see docs/reports.md); this program is not part
of `cargo test`.

`reports-agreement.py worker FILE...` is the parsedmarc side (run with the
virtualenv's python): one JSON summary per line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

FIELDS = ("kind", "reporter", "report_id", "policy_domain", "messages", "dmarc_pass", "policies")
ADDRESS = re.compile(r"[^\s\"'<>(),;:]+@")


def redact(value: object) -> object:
    """Cut the local part off anything that looks like an address."""
    if isinstance(value, str):
        return ADDRESS.sub("…@", value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def parsedmarc_summary(path: str) -> dict:
    """What parsedmarc read from one file, in the comparison's terms."""
    import parsedmarc  # noqa: PLC0415 (only in the virtualenv)

    try:
        parsed = parsedmarc.parse_report_file(path, offline=True)
    except Exception as e:  # parsedmarc raises its own and library errors
        return {"kind": "invalid", "error": f"{type(e).__name__}: {e}"[:160]}
    kind = parsed.get("report_type")
    report = parsed.get("report", {})
    if kind == "aggregate":
        meta = report["report_metadata"]
        records = report["records"]
        return {
            "kind": "dmarc_aggregate",
            "reporter": meta["org_name"],
            "report_id": meta["report_id"],
            "policy_domain": report["policy_published"]["domain"],
            "messages": sum(int(r["count"]) for r in records),
            "dmarc_pass": sum(int(r["count"]) for r in records if r["alignment"]["dmarc"]),
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
    out = subprocess.run([binary, "reports", "parse", "--format", "json", *paths], capture_output=True,
                         check=False)
    if out.returncode not in (0, 1):
        sys.exit(f"mailcanary reports parse exited {out.returncode}: {out.stderr.decode()[:300]}")
    result = []
    for v in json.loads(out.stdout):
        if v["kind"] == "dmarc_aggregate":
            result.append({"kind": v["kind"], "reporter": v["org_name"], "report_id": v["report_id"],
                           "policy_domain": v["policy_domain"], "messages": v["messages"],
                           "dmarc_pass": v["dmarc_pass"]})
        elif v["kind"] == "tls_rpt":
            result.append({"kind": "tls_rpt", "reporter": v["org_name"], "report_id": v["report_id"],
                           "policies": [[p["policy_type"], p["policy_domain"], p["successful"], p["failed"]]
                                        for p in v["policies"]]})
        else:
            result.append({"kind": "invalid", "error": v["error"]})
    return result


def normalise(v: dict) -> dict:
    v = dict(v)
    if isinstance(v.get("reporter"), str):
        v["reporter"] = v["reporter"].strip().lower()
    return v


def collect(args: list[str]) -> list[str]:
    paths = []
    for a in args:
        if os.path.isdir(a):
            paths += sorted(os.path.join(a, n) for n in os.listdir(a) if not n.startswith("."))
        else:
            paths.append(a)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailcanary", required=True)
    ap.add_argument("--venv-python", required=True)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()

    paths = collect(args.paths)
    mine = mailcanary_summaries(args.mailcanary, paths)
    out = subprocess.run([args.venv_python, os.path.abspath(__file__), "worker", *paths], capture_output=True,
                         text=True, check=True)
    theirs = [json.loads(line) for line in out.stdout.splitlines()]

    agree = 0
    kinds: dict[str, int] = {}
    print("per file (kind, reporter, report id, policy domain, messages, pass, TLS sessions):")
    for path, a, b in zip(paths, mine, theirs):
        name = os.path.basename(path)
        a, b = normalise(a), normalise(b)
        kinds[b["kind"]] = kinds.get(b["kind"], 0) + 1
        if a["kind"] == "invalid" and b["kind"] == "invalid":
            agree += 1
            print(f"  agree   {name}: both invalid")
            continue
        diff = {k: (redact(a.get(k)), redact(b.get(k))) for k in FIELDS if a.get(k) != b.get(k)}
        if not diff:
            agree += 1
            print(f"  agree   {name}: {a['kind']}")
        else:
            if a["kind"] == "invalid" or b["kind"] == "invalid":
                diff["error"] = (redact(a.get("error")), redact(b.get("error")))
            print(f"  DIFFER  {name} (mailcanary, parsedmarc): {json.dumps(diff, ensure_ascii=False)}")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{len(paths)} files ({summary} as parsedmarc reads them); "
          f"{agree} agree on every field, {len(paths) - agree} differ")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        for p in sys.argv[2:]:
            print(json.dumps(parsedmarc_summary(p)))
    else:
        main()
