#!/usr/bin/env python3
"""Writes one large DMARC aggregate report (RFC 7489 appendix C shape, as
Google writes it) for the parsing benchmark: N records (default 10,000) from
distinct source IPs, a fixed mix of passing, forwarded and spoofed mail, and
a fixed seed, so the file and its totals are the same on every run.

    bench/gen-aggregate.py [--records N] [--seed S] OUT.xml

Prints the totals it wrote (records, messages, dmarc_pass) as JSON on stdout,
which bench/reports_compare.py checks both tools against.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random

BEGIN, END = 1796083200, 1796169599


def generate(records: int, seed: int) -> tuple[str, dict]:
    rng = random.Random(seed)
    out = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        "<feedback>",
        "  <report_metadata>",
        "    <org_name>google.com</org_name>",
        "    <email>noreply-dmarc-support@google.com</email>",
        "    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>",
        f"    <report_id>bench-{seed}-{records}</report_id>",
        f"    <date_range><begin>{BEGIN}</begin><end>{END}</end></date_range>",
        "  </report_metadata>",
        "  <policy_published>",
        "    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf>",
        "    <p>reject</p><sp>reject</sp><pct>100</pct><np>reject</np>",
        "  </policy_published>",
    ]
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    messages = passed = 0
    for i in range(records):
        ip = str(ipaddress.IPv4Address(base + i)) if i % 10 else str(ipaddress.IPv6Address((0x20010DB8 << 96) + i))
        count = rng.randint(1, 500)
        kind = rng.random()
        if kind < 0.7:  # own mail
            dkim, spf, disp, efrom, dres, sres = "pass", "pass", "none", "bounce.example.com", "pass", "pass"
        elif kind < 0.85:  # forwarded: DKIM survives, SPF does not align
            dkim, spf, disp, efrom, dres, sres = "pass", "fail", "none", "forwarder.example.net", "pass", "pass"
        else:  # spoofed
            dkim, spf, disp, efrom, dres, sres = "fail", "fail", "reject", "spoof.example.org", "fail", "softfail"
        messages += count
        if dkim == "pass" or spf == "pass":
            passed += count
        out += [
            "  <record>",
            "    <row>",
            f"      <source_ip>{ip}</source_ip>",
            f"      <count>{count}</count>",
            "      <policy_evaluated>",
            f"        <disposition>{disp}</disposition>",
            f"        <dkim>{dkim}</dkim>",
            f"        <spf>{spf}</spf>",
            "      </policy_evaluated>",
            "    </row>",
            "    <identifiers>",
            "      <header_from>example.com</header_from>",
            f"      <envelope_from>{efrom}</envelope_from>",
            "    </identifiers>",
            "    <auth_results>",
            f"      <dkim><domain>example.com</domain><selector>mc2026</selector><result>{dres}</result></dkim>",
            f"      <spf><domain>{efrom}</domain><scope>mfrom</scope><result>{sres}</result></spf>",
            "    </auth_results>",
            "  </record>",
        ]
    out.append("</feedback>\n")
    totals = {"records": records, "messages": messages, "dmarc_pass": passed}
    return "\n".join(out), totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("out")
    args = ap.parse_args()
    xml, totals = generate(args.records, args.seed)
    with open(args.out, "w") as f:
        f.write(xml)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
