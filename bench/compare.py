#!/usr/bin/env python3
"""Compare `mailcanary check` with checkdmarc on generated zones.

Run through bench/checkdmarc-compare.sh, which makes the virtualenv with the
pinned checkdmarc and builds the release binary. This program:

1. generates N zones `dNNNN.test` (fixed RNG seed) mixing the SPF and DMARC
   cases of the finding catalogue, plus a few shared zones (the parent
   `test`, an SPF provider, report destinations);
2. serves them from a private knotd on 127.0.0.1 on a free port, stopped by
   PID at the end;
3. audits every domain with checkdmarc (library API, `check_spf` and
   `check_dmarc`, in a fresh process per run) and with `mailcanary check
   --format json --no-smtp` (one process for all domains) through that
   server;
4. maps both outputs to common verdicts, prints where they agree and
   differ, with example domains, and the wall times with their ratio.

`compare.py worker ...` is the checkdmarc side, run in its own process so its
DNS cache starts empty on every run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

SEED = 20261122
TTL = 60

# ------------------------------------------------------------ zone text ---


def quote_txt(value: str) -> str:
    """A TXT rdata in zone-file syntax: 255-octet character-strings, with
    `"` and `\\` escaped and bytes outside printable ASCII as \\DDD."""
    data = value.encode("utf-8")
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for chunk in chunks:
        s = []
        for b in chunk:
            if b in (0x22, 0x5C):
                s.append("\\" + chr(b))
            elif 0x20 <= b <= 0x7E:
                s.append(chr(b))
            else:
                s.append(f"\\{b:03d}")
        out.append('"' + "".join(s) + '"')
    return " ".join(out)


@dataclass
class Zone:
    apex: str
    lines: list[str] = field(default_factory=list)

    def rr(self, owner: str, rtype: str, data: str) -> None:
        self.lines.append(f"{owner}. {TTL} IN {rtype} {data}")

    def txt(self, owner: str, *values: str) -> None:
        for v in values:
            self.rr(owner, "TXT", quote_txt(v))

    def txt_strings(self, owner: str, *strings: str) -> None:
        """One TXT record made of several character-strings."""
        self.rr(owner, "TXT", " ".join(quote_txt(s) for s in strings))

    def text(self) -> str:
        head = (
            f"$ORIGIN {self.apex}.\n$TTL {TTL}\n"
            f"@ SOA ns.{self.apex}. hostmaster.{self.apex}. 1 60 60 600 60\n"
            f"@ NS ns.{self.apex}.\n"
        )
        head += "ns A 127.0.0.1\n"
        return head + "\n".join(self.lines) + "\n"


# ----------------------------------------------------------- generation ---

PROVIDER = "provider.test"  # include:_spf.provider.test costs 4 lookups
REPORTS_OK = "reports-ok.test"  # authorises each domain that names it
REPORTS_WILD = "reports-wild.test"  # authorises everyone with a wildcard
REPORTS_NO = "reports-no.test"  # authorises no one


def shared_zones() -> list[Zone]:
    parent = Zone("test")
    prov = Zone(PROVIDER)
    prov.txt(f"_spf.{PROVIDER}", f"v=spf1 include:_a.{PROVIDER} include:_b.{PROVIDER} -all")
    prov.txt(f"_a.{PROVIDER}", "v=spf1 ip4:198.51.100.0/24 -all")
    prov.txt(f"_b.{PROVIDER}", f"v=spf1 ip4:203.0.113.0/24 a:out.{PROVIDER} -all")
    prov.rr(f"out.{PROVIDER}", "A", "198.51.100.7")
    prov.txt(f"open.{PROVIDER}", "v=spf1 +all")
    zones = [parent, prov]
    for apex in (REPORTS_OK, REPORTS_WILD, REPORTS_NO):
        z = Zone(apex)
        z.rr(apex, "MX", f"10 mx.{apex}.")
        z.rr(f"mx.{apex}", "A", "192.0.2.26")
        if apex == REPORTS_WILD:
            z.txt(f"*._report._dmarc.{apex}", "v=DMARC1")
        zones.append(z)
    return zones


@dataclass
class Domain:
    """One generated domain: the zone, the name audited, and the intended cases."""

    idx: int
    apex: str
    name: str  # audited name: the apex, or mail.<apex> for org-only DMARC
    zone: Zone
    spf_case: str = ""
    dmarc_case: str = ""
    shared: dict = field(default_factory=dict)  # apex -> shared Zone


# Each SPF case writes the record(s) at d.name and helper names under d.apex.
def spf_cases():
    def simple(d, r):
        d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.{r.randrange(1, 250)} mx -all")

    def softfail_include(d, r):
        d.zone.txt(d.name, f"v=spf1 include:_spf.{d.apex} ~all")
        d.zone.txt(f"_spf.{d.apex}", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all")

    def provider(d, r):
        d.zone.txt(d.name, f"v=spf1 mx include:{'_spf.' + PROVIDER} -all")

    def multi_string(d, r):
        d.zone.txt_strings(d.name, "v=spf1 ip4:192.0.2.0/24 ", f"include:_spf.{PROVIDER} -all")

    def case_upper(d, r):
        d.zone.txt(d.name, "V=SPF1 IP4:192.0.2.1 MX -ALL")

    def exists_macro(d, r):
        d.zone.txt(d.name, f"v=spf1 exists:%{{i}}._ip.{d.apex} -all")

    def nested_lookups(n):
        """Direct terms stay at 3 includes; the tree holds n lookups in all."""

        def make(d, r):
            rest = n - 3
            parts = [rest // 3 + (1 if i < rest % 3 else 0) for i in range(3)]
            incs = []
            for i, k in enumerate(parts):
                host = f"s{i}.{d.apex}"
                incs.append(f"include:{host}")
                terms = " ".join(f"a:h{i}{j}.{d.apex}" for j in range(k))
                d.zone.txt(host, f"v=spf1 {terms} -all".replace("  ", " "))
                for j in range(k):
                    d.zone.rr(f"h{i}{j}.{d.apex}", "A", f"192.0.2.{10 * i + j + 1}")
            d.zone.txt(d.name, f"v=spf1 {' '.join(incs)} -all")

        return make

    def voids(n):
        def make(d, r):
            terms = " ".join(f"a:gone{i}.{d.apex}" for i in range(n))
            d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.1 {terms} -all")

        return make

    def void_mx(d, r):
        # A name with an address but no MX: an mx term there is a void lookup.
        d.zone.rr(f"nomx.{d.apex}", "A", "192.0.2.9")
        terms = " ".join(f"mx:nomx.{d.apex} a:gone{i}.{d.apex}" for i in range(2))
        d.zone.txt(d.name, f"v=spf1 {terms} -all")

    def include_loop(d, r):
        d.zone.txt(d.name, f"v=spf1 include:l1.{d.apex} -all")
        d.zone.txt(f"l1.{d.apex}", f"v=spf1 include:l2.{d.apex} -all")
        d.zone.txt(f"l2.{d.apex}", f"v=spf1 include:l1.{d.apex} -all")

    def self_include(d, r):
        d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.1 include:{d.name} -all")

    def redirect_loop(d, r):
        d.zone.txt(d.name, f"v=spf1 redirect=r1.{d.apex}")
        d.zone.txt(f"r1.{d.apex}", f"v=spf1 redirect=r2.{d.apex}")
        d.zone.txt(f"r2.{d.apex}", f"v=spf1 redirect=r1.{d.apex}")

    def redirect_ok(d, r):
        d.zone.txt(d.name, f"v=spf1 redirect=_spf.{d.apex}")
        d.zone.txt(f"_spf.{d.apex}", "v=spf1 ip4:192.0.2.0/24 -all")

    def missing(d, r):
        pass

    def other_txt_only(d, r):
        d.zone.txt(d.name, f"google-site-verification={r.getrandbits(64):016x}")

    def near_miss(d, r):
        d.zone.txt(d.name, "v=spf1\tip4:192.0.2.1 -all")

    def multiple(d, r):
        d.zone.txt(d.name, "v=spf1 ip4:192.0.2.1 -all", "v=spf1 mx -all")

    def plus_all(d, r):
        d.zone.txt(d.name, "v=spf1 ip4:192.0.2.1 +all")

    def neutral_all(d, r):
        d.zone.txt(d.name, "v=spf1 ip4:192.0.2.1 ?all")

    def bare_all(d, r):
        d.zone.txt(d.name, "v=spf1 mx all")

    def ptr(d, r):
        d.zone.txt(d.name, "v=spf1 ptr -all")

    def ptr_domain(d, r):
        d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.1 ptr:{d.apex} -all")

    def include_nxdomain(d, r):
        d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.1 include:gone.{d.apex} -all")

    def include_no_spf(d, r):
        d.zone.txt(f"nospf.{d.apex}", "just some text")
        d.zone.txt(d.name, f"v=spf1 include:nospf.{d.apex} -all")

    def redirect_missing(d, r):
        d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.1 redirect=gone.{d.apex}")

    def include_syntax(d, r):
        d.zone.txt(f"bad.{d.apex}", "v=spf1 ip4:192.0.2.300 -all")
        d.zone.txt(d.name, f"v=spf1 include:bad.{d.apex} -all")

    def include_plus_all(d, r):
        d.zone.txt(d.name, f"v=spf1 include:open.{PROVIDER} -all")

    def no_all(d, r):
        d.zone.txt(d.name, "v=spf1 ip4:192.0.2.1 mx")

    def redirect_with_all(d, r):
        d.zone.txt(f"_spf.{d.apex}", "v=spf1 ip4:192.0.2.0/24 -all")
        d.zone.txt(d.name, f"v=spf1 mx redirect=_spf.{d.apex} -all")

    def terms_after_all(d, r):
        d.zone.txt(d.name, "v=spf1 ip4:192.0.2.1 -all mx")

    def too_long(d, r):
        ips = " ".join(f"ip4:198.51.100.{i}" for i in range(1, 31))
        d.zone.txt(d.name, f"v=spf1 {ips} -all")

    def mx_many(d, r):
        for i in range(11):
            d.zone.rr(f"many.{d.apex}", "MX", f"{i} m{i}.{d.apex}.")
            d.zone.rr(f"m{i}.{d.apex}", "A", f"192.0.2.{100 + i}")
        d.zone.txt(d.name, f"v=spf1 mx:many.{d.apex} -all")

    def unknown_modifier(d, r):
        d.zone.txt(d.name, "v=spf1 ip4:192.0.2.1 foo=bar -all")

    def mechanism_with_equals(d, r):
        d.zone.txt(d.name, f"v=spf1 include={d.apex} -all")

    def exists_voids(d, r):
        terms = " ".join(f"exists:gone{i}.{d.apex}" for i in range(3))
        d.zone.txt(d.name, f"v=spf1 {terms} -all")

    def include_macro(d, r):
        d.zone.txt(f"_spf.{d.name}", "v=spf1 ip4:192.0.2.0/24 -all")
        d.zone.txt(d.name, "v=spf1 include:_spf.%{d} -all")

    def redirect_neutral(d, r):
        d.zone.txt(f"_spf.{d.apex}", "v=spf1 ip4:192.0.2.0/24 ?all")
        d.zone.txt(d.name, f"v=spf1 redirect=_spf.{d.apex}")

    def split_mid_term(d, r):
        d.zone.txt_strings(d.name, "v=spf1 ip4:192.0.", f"2.1 include:_spf.{PROVIDER} -all")

    def with_other_txt(d, r):
        d.zone.txt(d.name, "v=spf1 mx -all", f"google-site-verification={r.getrandbits(64):016x}")

    def include_cname(d, r):
        # Target in the same zone: an authoritative server (knot) follows a
        # CNAME only inside its zone, and checkdmarc's stub resolver does not
        # chase one itself, while a recursive resolver would.
        d.zone.rr(f"inc.{d.apex}", "CNAME", f"_spf.{d.apex}.")
        d.zone.txt(f"_spf.{d.apex}", f"v=spf1 ip4:192.0.2.0/24 include:_spf.{PROVIDER} -all")
        d.zone.txt(d.name, f"v=spf1 include:inc.{d.apex} -all")

    def mx_hosts_no_address(d, r):
        for i in range(3):
            d.zone.rr(f"noaddr.{d.apex}", "MX", f"{i} gone{i}.{d.apex}.")
        d.zone.rr(f"noaddr.{d.apex}", "A", "192.0.2.8")
        d.zone.txt(d.name, f"v=spf1 mx:noaddr.{d.apex} -all")

    def ptr_macro(d, r):
        d.zone.txt(d.name, f"v=spf1 ip4:192.0.2.1 exists:%{{p}}._p.{d.apex} -all")

    def ptr_and_two_voids(d, r):
        # ptr looks up the client's address, not the domain's: the domain
        # having no A record is no void lookup (RFC 7208 section 5.5).
        d.zone.txt(d.name, f"v=spf1 ptr a:gone0.{d.apex} a:gone1.{d.apex} -all")

    def duplicate_includes(d, r):
        d.zone.txt(d.name, "v=spf1 " + " ".join([f"include:_spf.{PROVIDER}"] * 3) + " -all")

    syntax_variants = {
        "syntax_ip6_cidr": "v=spf1 ip6:2001:db8::/129 -all",
        "syntax_a_cidr": "v=spf1 a/33 -all",
        "syntax_unknown_mechanism": "v=spf1 ip4:192.0.2.1 foo:bar.example -all",
        "syntax_bad_ip4": "v=spf1 ip4:192.0.2.300 -all",
        "syntax_cidr_33": "v=spf1 ip4:192.0.2.0/33 -all",
        "syntax_glued_all": "v=spf1 ip4:192.0.2.7~all",
        "syntax_include_empty": "v=spf1 include: -all",
        "syntax_bad_macro": "v=spf1 exists:%{z}.example.test -all",
        "syntax_numeric_tld": "v=spf1 a:192.0.2.1 -all",
        "syntax_ip4_leading_zero": "v=spf1 ip4:192.0.2.01 -all",
        "syntax_qualified_modifier": "v=spf1 mx -redirect=_spf.example.test",
        "syntax_double_redirect": "v=spf1 redirect=_spf.provider.test redirect=_a.provider.test",
    }

    cases = {
        "valid_simple": (simple, 6),
        "valid_include": (softfail_include, 4),
        "valid_provider": (provider, 4),
        "valid_multi_string": (multi_string, 3),
        "valid_uppercase": (case_upper, 2),
        "valid_exists_macro": (exists_macro, 2),
        "valid_redirect": (redirect_ok, 2),
        "lookups_nested_9": (nested_lookups(9), 2),
        "lookups_nested_10": (nested_lookups(10), 3),
        "lookups_nested_11": (nested_lookups(11), 3),
        "lookups_nested_14": (nested_lookups(14), 3),
        "void_2": (voids(2), 2),
        "void_3": (voids(3), 3),
        "void_mx_3": (void_mx, 2),
        "loop_include": (include_loop, 3),
        "loop_self": (self_include, 2),
        "loop_redirect": (redirect_loop, 3),
        "missing_nxdomain_txt": (missing, 3),
        "missing_other_txt": (other_txt_only, 2),
        "missing_near_miss": (near_miss, 2),
        "multiple_records": (multiple, 3),
        "all_plus": (plus_all, 3),
        "all_neutral": (neutral_all, 2),
        "all_bare": (bare_all, 2),
        "ptr": (ptr, 2),
        "ptr_domain": (ptr_domain, 2),
        "include_nxdomain": (include_nxdomain, 3),
        "include_no_spf": (include_no_spf, 2),
        "redirect_missing": (redirect_missing, 2),
        "include_syntax_error": (include_syntax, 2),
        "include_plus_all": (include_plus_all, 2),
        "no_all": (no_all, 2),
        "redirect_with_all": (redirect_with_all, 2),
        "terms_after_all": (terms_after_all, 2),
        "record_too_long": (too_long, 2),
        "mx_too_many_hosts": (mx_many, 2),
        "unknown_modifier": (unknown_modifier, 2),
        "mechanism_with_equals": (mechanism_with_equals, 1),
        "void_exists_3": (exists_voids, 2),
        "include_macro": (include_macro, 2),
        "redirect_neutral_all": (redirect_neutral, 2),
        "valid_split_mid_term": (split_mid_term, 2),
        "valid_with_other_txt": (with_other_txt, 3),
        "valid_include_cname": (include_cname, 2),
        "mx_hosts_without_address": (mx_hosts_no_address, 2),
        "ptr_macro": (ptr_macro, 1),
        "ptr_and_two_voids": (ptr_and_two_voids, 2),
        "duplicate_includes_12": (duplicate_includes, 2),
    }
    for name, text in syntax_variants.items():
        cases[name] = ((lambda t: lambda d, r: d.zone.txt(d.name, t))(text), 1)
    return cases


def dmarc_cases():
    def rec(d, r, body, at=None):
        d.zone.txt(f"_dmarc.{at or d.name}", f"v=DMARC1; {body}")

    def own_rua(d):
        return f"rua=mailto:dmarc@{d.apex}"

    def reject(d, r):
        rec(d, r, f"p=reject; {own_rua(d)}")

    def quarantine(d, r):
        rec(d, r, f"p=quarantine; {own_rua(d)}; adkim=s")

    def none(d, r):
        rec(d, r, f"p=none; {own_rua(d)}")

    def pct(d, r):
        rec(d, r, f"p=quarantine; pct={r.choice([10, 25, 50])}; {own_rua(d)}")

    def pct_none(d, r):
        rec(d, r, f"p=none; pct=50; {own_rua(d)}")

    def no_rua(d, r):
        rec(d, r, "p=reject")

    def ext_ok(d, r):
        rec(d, r, f"p=reject; rua=mailto:agg@{REPORTS_OK}")
        d.shared[REPORTS_OK].txt(f"{d.name}._report._dmarc.{REPORTS_OK}", "v=DMARC1")

    def ext_wild(d, r):
        rec(d, r, f"p=quarantine; rua=mailto:agg@{REPORTS_WILD}")

    def ext_no(d, r):
        rec(d, r, f"p=reject; rua=mailto:agg@{REPORTS_NO}")

    def ext_ruf_no(d, r):
        rec(d, r, f"p=reject; {own_rua(d)}; ruf=mailto:f@{REPORTS_NO}")

    def org_only(d, r):
        rec(d, r, f"p=reject; {own_rua(d)}", at=d.apex)

    def org_only_sp_none(d, r):
        rec(d, r, f"p=reject; sp=none; {own_rua(d)}", at=d.apex)

    def intermediate_only(d, r):
        # Audited a.b.<apex>; a record at b.<apex> only. RFC 7489 looks at the
        # name and the organizational domain (<apex>); RFC 9989's tree walk
        # also finds b.<apex>.
        rec(d, r, f"p=quarantine; {own_rua(d)}", at=f"b.{d.apex}")

    def sp_weaker(d, r):
        rec(d, r, f"p=reject; sp={r.choice(['none', 'quarantine'])}; {own_rua(d)}")

    def missing(d, r):
        pass

    def multiple(d, r):
        d.zone.txt(f"_dmarc.{d.name}", "v=DMARC1; p=reject", "v=DMARC1; p=none")

    def with_unrelated(d, r):
        d.zone.txt(f"_dmarc.{d.name}", f"v=DMARC1; p=reject; {own_rua(d)}", "some-verification=abc")

    def spf_at_dmarc(d, r):
        d.zone.txt(f"_dmarc.{d.name}", "v=spf1 -all")

    def bad_p(d, r):
        rec(d, r, f"p=bogus; {own_rua(d)}")

    def bad_pct(d, r):
        rec(d, r, f"p=reject; pct=150; {own_rua(d)}")

    def no_p_with_rua(d, r):
        rec(d, r, f"{own_rua(d)}")

    def rua_no_scheme(d, r):
        rec(d, r, f"p=reject; rua=dmarc@{d.apex}")

    def unknown_tag(d, r):
        rec(d, r, f"p=reject; {own_rua(d)}; foo=bar")

    def lower_version(d, r):
        d.zone.txt(f"_dmarc.{d.name}", f"v=dmarc1; p=reject; {own_rua(d)}")

    def size_limit(d, r):
        rec(d, r, f"p=reject; rua=mailto:dmarc@{d.apex}!10m")

    def duplicate_p(d, r):
        rec(d, r, f"p=none; p=reject; {own_rua(d)}")

    def bad_adkim(d, r):
        rec(d, r, f"p=reject; adkim=x; {own_rua(d)}")

    def org_only_ext_authorized(d, r):
        rec(d, r, f"p=reject; rua=mailto:agg@{REPORTS_OK}", at=d.apex)
        d.shared[REPORTS_OK].txt(f"{d.apex}._report._dmarc.{REPORTS_OK}", "v=DMARC1")

    def version_only(d, r):
        d.zone.txt(f"_dmarc.{d.name}", "v=DMARC1")

    def leading_space(d, r):
        d.zone.txt(f"_dmarc.{d.name}", f" v=DMARC1; p=reject; {own_rua(d)}")

    def sp_invalid(d, r):
        rec(d, r, f"p=reject; sp=bogus; {own_rua(d)}")

    def rua_one_unauth(d, r):
        rec(d, r, f"p=reject; rua=mailto:dmarc@{d.apex}, mailto:agg@{REPORTS_NO}")

    def rua_own_subdomain(d, r):
        d.zone.rr(f"reports.{d.apex}", "MX", f"10 mx.{d.apex}.")
        rec(d, r, f"p=reject; rua=mailto:agg@reports.{d.apex}")

    def testing_flag(d, r):
        rec(d, r, f"p=reject; t=y; {own_rua(d)}")

    def at_apex_only(d, r):
        d.zone.txt(d.name, f"v=DMARC1; p=reject; {own_rua(d)}")

    return {
        "reject": (reject, 8),
        "quarantine": (quarantine, 5),
        "none": (none, 5),
        "pct_partial": (pct, 4),
        "pct_with_none": (pct_none, 2),
        "no_rua": (no_rua, 4),
        "ext_authorized": (ext_ok, 3),
        "ext_wildcard": (ext_wild, 2),
        "ext_unauthorized": (ext_no, 4),
        "ext_ruf_unauthorized": (ext_ruf_no, 2),
        "org_only": (org_only, 4),
        "org_only_sp_none": (org_only_sp_none, 3),
        "intermediate_only": (intermediate_only, 2),
        "sp_weaker": (sp_weaker, 4),
        "missing": (missing, 5),
        "multiple_records": (multiple, 3),
        "unrelated_txt": (with_unrelated, 2),
        "spf_at_dmarc": (spf_at_dmarc, 1),
        "syntax_bad_p": (bad_p, 2),
        "syntax_bad_pct": (bad_pct, 2),
        "syntax_no_p": (no_p_with_rua, 2),
        "syntax_rua_no_scheme": (rua_no_scheme, 2),
        "unknown_tag": (unknown_tag, 2),
        "lowercase_version": (lower_version, 2),
        "rua_size_limit": (size_limit, 1),
        "syntax_duplicate_p": (duplicate_p, 1),
        "syntax_bad_adkim": (bad_adkim, 1),
        "record_at_apex": (at_apex_only, 1),
        "leading_space": (leading_space, 2),
        "org_only_ext_authorized": (org_only_ext_authorized, 2),
        "syntax_version_only": (version_only, 1),
        "syntax_sp_invalid": (sp_invalid, 2),
        "ext_one_of_two_unauthorized": (rua_one_unauth, 2),
        "rua_own_subdomain": (rua_own_subdomain, 2),
        "testing_t_y": (testing_flag, 1),
    }


# DMARC cases audited at a subdomain of the zone apex: label(s) prepended.
SUBDOMAIN_DMARC = {
    "org_only": "mail",
    "org_only_sp_none": "mail",
    "org_only_ext_authorized": "mail",
    "intermediate_only": "a.b",
}


def generate(n: int, seed: int) -> tuple[list[Domain], list[Zone]]:
    rng = random.Random(seed)
    spf = spf_cases()
    dmarc = dmarc_cases()
    spf_names, spf_w = zip(*[(k, w) for k, (_, w) in spf.items()])
    dm_names, dm_w = zip(*[(k, w) for k, (_, w) in dmarc.items()])
    shared = {z.apex: z for z in shared_zones()}
    domains = []
    for i in range(n):
        apex = f"d{i:04d}.test"
        # Every case at least once, then weighted draws.
        s = spf_names[i] if i < len(spf_names) else rng.choices(spf_names, spf_w)[0]
        m = dm_names[i] if i < len(dm_names) else rng.choices(dm_names, dm_w)[0]
        name = f"{SUBDOMAIN_DMARC[m]}.{apex}" if m in SUBDOMAIN_DMARC else apex
        zone = Zone(apex)
        zone.rr(apex, "MX", f"10 mx.{apex}.")
        zone.rr(f"mx.{apex}", "A", "192.0.2.25")
        if name != apex:
            zone.rr(name, "A", "192.0.2.30")
        d = Domain(i, apex, name, zone, s, m, shared)
        spf[s][0](d, rng)
        dmarc[m][0](d, rng)
        domains.append(d)
    return domains, list(shared.values()) + [d.zone for d in domains]


# ------------------------------------------------------------------ knot ---


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (knot needs both)."""
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()


class Knot:
    def __init__(self, workdir: str, zones: list[Zone], pin: list[str] | None = None):
        self.dir = os.path.join(workdir, "knot")
        self.pin = pin or []  # e.g. ["taskset", "-c", "0"]
        self.zones = zones
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        os.makedirs(os.path.join(self.dir, "zones"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        for z in self.zones:
            with open(os.path.join(self.dir, "zones", f"{z.apex}.zone"), "w") as f:
                f.write(z.text())
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.dir, "knot.conf")
            with open(conf, "w") as f:
                f.write(self.config())
            self.proc = subprocess.Popen(
                [*self.pin, "knotd", "-c", conf],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self.wait_ready():
                return
            self.stop()
        log = open(os.path.join(self.dir, "knot.log")).read()[-3000:]
        raise SystemExit(f"knotd did not come up\n{log}")

    def config(self) -> str:
        c = f"""server:
    rundir: "{self.dir}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{self.dir}/db"
log:
  - target: "{self.dir}/knot.log"
    any: warning
control:
    listen: "{self.dir}/knot.sock"
mod-stats:
  - id: count
    request-protocol: on
template:
  - id: default
    global-module: mod-stats/count
    storage: "{self.dir}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
"""
        return c + "".join(f"  - domain: {z.apex}\n" for z in self.zones)

    def wait_ready(self) -> bool:
        import dns.message
        import dns.query
        import dns.rcode

        pending = [z.apex for z in self.zones]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            still = []
            for apex in pending:
                q = dns.message.make_query(apex + ".", "SOA")
                try:
                    r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.5)
                    if r.rcode() != dns.rcode.NOERROR or not r.answer:
                        still.append(apex)
                except Exception:
                    still.append(apex)
            pending = still
            if not pending:
                return True
            time.sleep(0.2)
        return False

    def queries(self) -> int:
        """Queries answered so far (mod-stats, UDP and TCP)."""
        conf = os.path.join(self.dir, "knot.conf")
        p = subprocess.run(["knotc", "-c", conf, "stats", "mod-stats"], capture_output=True, text=True)
        return sum(int(v) for k, v in re.findall(r"request-protocol\[(\w+)\] = (\d+)", p.stdout))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ------------------------------------------------------------- the tools ---


TOOLS = {
    "mc": ("mailcanary check --no-smtp (SPF, DMARC, MX, MTA-STS, TLS-RPT, BIMI, DNSSEC)", None),
    "cd": ("checkdmarc check_spf + check_dmarc", "spf-dmarc"),
    "cd-full": ("checkdmarc check_domains (also MX, MTA-STS, TLS-RPT, BIMI, DNSSEC, SOA, NS)", "full"),
}


def run_mailcanary(binary: str, port: int, names: list[str], pin: list[str]) -> tuple[float, dict]:
    cmd = [*pin, binary, "check", "--resolver", f"127.0.0.1:{port}", "--format", "json", "--no-smtp", *names]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"mailcanary check exited {p.returncode}: {p.stderr[-2000:]}")
    reports = json.loads(p.stdout)
    if isinstance(reports, dict):
        reports = [reports]
    return wall, {r["domain"]: r for r in reports}


def run_checkdmarc(
    port: int, names: list[str], workdir: str, mode: str, pin: list[str]
) -> tuple[float, float, dict]:
    """Runs the worker in a fresh interpreter (so checkdmarc's in-process DNS
    cache starts empty); returns (process wall time, time of the audit loop
    alone, results)."""
    inp = os.path.join(workdir, "cd-domains.txt")
    out = os.path.join(workdir, f"cd-{mode}.json")
    with open(inp, "w") as f:
        f.write("\n".join(names))
    cmd = [*pin, sys.executable, os.path.abspath(__file__), "worker", mode, str(port), inp, out]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"checkdmarc worker failed: {p.stderr[-3000:]}")
    with open(out) as f:
        data = json.load(f)
    return wall, data["loop_seconds"], data["results"]


def worker(mode: str, port: int, inp: str, out: str) -> None:
    """checkdmarc's side, one domain after the other as checkdmarc works,
    through the private knot. A dnspython Nameserver object carries the
    non-53 port; checkdmarc hands such objects to dnspython unchanged.

    mode `spf-dmarc`: `check_spf` and `check_dmarc` only.
    mode `full`: `check_domains`, everything checkdmarc checks by default
    (DNSSEC, SOA, NS, MTA-STS, MX, SPF, DMARC, SMTP TLS reporting, BIMI; no
    STARTTLS, which it only does with check_mx_tls)."""
    import logging

    import dns.nameserver
    from checkdmarc import check_domains
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.spf import check_spf

    logging.disable(logging.CRITICAL)
    ns = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
    names = [n for n in open(inp).read().split("\n") if n]
    results = {}
    t0 = time.perf_counter()
    if mode == "full":
        for r in check_domains(names, nameservers=ns):
            results[r["domain"]] = {"spf": r["spf"], "dmarc": r["dmarc"]}
    else:
        for name in names:
            results[name] = {
                "spf": check_spf(name, nameservers=ns),
                "dmarc": check_dmarc(name, nameservers=ns),
            }
    loop = time.perf_counter() - t0
    with open(out, "w") as f:
        json.dump({"loop_seconds": loop, "results": results}, f, default=str)


# -------------------------------------------------------- common verdicts ---

SPF_INVALID_IDS = {
    "spf.multiple_records": "multiple",
    "spf.syntax_error": "syntax",
    "spf.too_many_lookups": "lookups",
    "spf.too_many_void_lookups": "void",
    "spf.loop": "loop",
    "spf.include_not_found": "include_missing",
    "spf.redirect_not_found": "include_missing",
    "spf.include_invalid": "include_invalid",
    "spf.mx_too_many_hosts": "mx_hosts",
}
# Problems that do not make the record invalid: mailcanary finding id and the
# pattern of checkdmarc's warning for the same thing.
SPF_MC_FLAGS = {
    "spf.ptr_mechanism": "ptr",
    "spf.record_too_long": "too_long",
    "spf.no_all": "no_all",
    "spf.redirect_ignored": "redirect_ignored",
    "spf.terms_after_all": "after_all",
    "spf.unknown_modifier": "unknown_mod",
}
SPF_CD_FLAGS = {
    "+all": r"(?!)",  # never reported
    "?all": r"(?!)",
    "ptr": r"ptr mechanism should not be used",
    "too_long": r"RFC 7208 section 3\.4",
    "no_all": r"(?!)",
    "redirect_ignored": r"redirect modifier was ignored",
    "after_all": r"Any text after the all mechanism",
    "unknown_mod": r"unknown modifier",
}
# Order of precedence when a tool reports several permerror causes.
SPF_REASON_ORDER = ["multiple", "syntax", "loop", "include_invalid", "include_missing", "mx_hosts", "lookups", "void"]


def mc_check(report: dict, name: str) -> dict:
    for c in report["checks"]:
        if c["check"] == name:
            return c
    raise KeyError(name)


def mc_spf(report: dict) -> tuple[str, set[str]]:
    c = mc_check(report, "spf")
    ids = [f["id"] for f in c["findings"]]
    flags = set()
    for f in c["findings"]:
        if f["id"] == "spf.permissive_all":
            flags.add("+all" if f["severity"] == "error" else "?all")
        elif f["id"] in SPF_MC_FLAGS:
            flags.add(SPF_MC_FLAGS[f["id"]])
    if "spf.dns_error" in ids:
        return "unknown", flags
    if "spf.missing" in ids:
        return "missing", flags
    reasons = set()
    for f in c["findings"]:
        reason = SPF_INVALID_IDS.get(f["id"])
        if f["id"] == "spf.include_invalid":
            # An include/redirect target that is itself broken: name the cause.
            reason = "syntax" if "syntax error" in f["message"] else "multiple"
        if reason:
            reasons.add(reason)
    if reasons:
        return "invalid/" + min(reasons, key=SPF_REASON_ORDER.index), flags
    return "valid", flags


def cd_spf(res: dict) -> tuple[str, set[str]]:
    # Only what checkdmarc reports as a warning or error counts: it shows the
    # all qualifier as data ("all": "pass") but never warns about +all/?all.
    rec = res.get("record") or ""
    warnings = "\n".join(res.get("warnings") or [])
    flags = {flag for flag, pattern in SPF_CD_FLAGS.items() if re.search(pattern, warnings)}
    if res.get("valid"):
        return "valid", flags
    err = res.get("error", "")
    if err in ("An SPF record does not exist.", "The domain does not exist."):
        # The same messages come back when a redirect= target has no record;
        # then the domain's own record was found.
        return ("invalid/include_missing" if rec else "missing"), flags
    if "more than 10 MX records" in err:
        return "invalid/mx_hosts", flags
    if "multiple SPF TXT records" in err:
        return "invalid/multiple", flags
    if "maximum void DNS lookups" in err:
        return "invalid/void", flags
    if "maximum DNS lookups" in err or "DNS lookups" in err and "10" in err:
        return "invalid/lookups", flags
    if "loop" in err.lower():
        return "invalid/loop", flags
    if err.startswith("The include target") or "redirect" in err.lower() and "no SPF record" in err:
        return "invalid/include_missing", flags
    if "timed out" in err or "All nameservers failed" in err or "SERVFAIL" in err:
        return "unknown", flags
    return "invalid/syntax", flags


def dmarc_tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags.setdefault(k.strip().lower(), v.strip())
    return tags


def mc_dmarc(report: dict, name: str) -> tuple[str, str, set[str]]:
    """(status, policy in force, flags)."""
    c = mc_check(report, "dmarc")
    ids = {f["id"] for f in c["findings"]}
    errors = {f["id"] for f in c["findings"] if f["severity"] == "error"}
    flags = set()
    for i, flag in (
        ("dmarc.pct_partial", "pct<100"),
        ("dmarc.no_rua", "no_rua"),
        ("dmarc.external_rua_unauthorized", "ext_unauth"),
        ("dmarc.subdomain_policy_weaker", "sp_weaker"),
        ("dmarc.org_domain_policy", "org"),
        ("dmarc.policy_none", "policy_none"),
        ("dmarc.unknown_tag", "unknown_tag"),
    ):
        if i in ids:
            flags.add(flag)
    if "dmarc.dns_error" in ids:
        return "unknown", "-", flags
    if "dmarc.missing" in ids:
        return "missing", "-", flags
    if "dmarc.multiple_records" in ids:
        return "invalid/multiple", "-", flags
    tags = dmarc_tags(c["record"] or "")
    policy = (tags.get("sp") or tags.get("p")) if "org" in flags else tags.get("p")
    if "dmarc.syntax_error" in errors:
        return "invalid/syntax", "-", flags
    return "valid", (policy or "-").lower(), flags


def cd_dmarc(res: dict, name: str) -> tuple[str, str, set[str]]:
    flags = set()
    warnings = "\n".join(res.get("warnings") or [])
    if "does not indicate that it accepts" in warnings:
        flags.add("ext_unauth")
    if "rua tag (destination for aggregate reports) not found" in warnings:
        flags.add("no_rua")
    if "Unknown DMARC tag" in warnings:
        flags.add("unknown_tag")
    p_none = "A p tag value of none" in warnings
    sp_none = "An sp tag value of none" in warnings
    loc = res.get("location")
    if loc and loc != name:
        flags.add("org")
    if p_none and "org" not in flags or "org" in flags and sp_none:
        flags.add("policy_none")
    if sp_none and not p_none:
        flags.add("sp_weaker")
    if not res.get("valid"):
        err = res.get("error", "")
        if err.startswith("A DMARC record does not exist") or "does not exist" in err:
            return "missing", "-", flags
        if err.startswith("Multiple DMARC policy records"):
            return "invalid/multiple", "-", flags
        if "Unrelated TXT records" in err:
            return "invalid/unrelated_txt", "-", flags
        if "Found an SPF record where a DMARC record" in err:
            return "invalid/unrelated_txt", "-", flags
        if "must be located at" in err:
            return "missing", "-", flags
        return "invalid/syntax", "-", flags
    tags = res.get("tags") or {}
    p = tags.get("p", {}).get("value", "-")
    sp = tags.get("sp", {}).get("value", p)
    pct = tags.get("pct", {}).get("value")
    if pct is not None and str(pct) != "100":  # never: checkdmarc drops pct
        flags.add("pct<100")
    return "valid", (sp if "org" in flags else p), flags



# ---------------------------------------------------------------- report ---


def agreement_table(title, rows, domains_by_name, out, examples=4):
    """rows: name -> (mailcanary verdict, checkdmarc verdict)."""
    pairs = collections.Counter(rows.values())
    agree = sum(n for (a, b), n in pairs.items() if a == b)
    total = sum(pairs.values())
    out.append(f"\n{title}: agree on {agree} of {total} domains ({100 * agree / total:.1f} %)\n")
    out.append(f"| {'mailcanary':<28} | {'checkdmarc':<28} | {'domains':>7} | cases (generator) / examples")
    out.append(f"|{'-' * 30}|{'-' * 30}|{'-' * 9}|{'-' * 40}")
    for (a, b), n in sorted(pairs.items(), key=lambda kv: (kv[0][0] != kv[0][1], -kv[1])):
        names = [d for d, v in rows.items() if v == (a, b)]
        mark = "" if a == b else " ≠"
        detail = ""
        if a != b:
            cases = collections.Counter(domains_by_name[d] for d in names)
            detail = ", ".join(f"{c} ({k})" for c, k in cases.most_common(6))
            detail += "; e.g. " + ", ".join(sorted(names)[:examples])
        out.append(f"| {a:<28} | {b:<28} | {n:>7} |{mark} {detail}")


def flag_table(title, flags_mc, flags_cd, cases_by_name, out, names, examples=3):
    allflags = sorted(set().union(*flags_mc.values(), *flags_cd.values()))
    out.append(f"\n{title}\n")
    out.append(f"| {'problem':<12} | {'both':>5} | {'only mailcanary':>15} | {'only checkdmarc':>15} | {'neither':>7} | where they differ (generator cases; e.g.)")
    out.append(f"|{'-' * 14}|{'-' * 7}|{'-' * 17}|{'-' * 17}|{'-' * 9}|{'-' * 40}")
    for fl in allflags:
        both = [d for d in names if fl in flags_mc[d] and fl in flags_cd[d]]
        omc = [d for d in names if fl in flags_mc[d] and fl not in flags_cd[d]]
        ocd = [d for d in names if fl not in flags_mc[d] and fl in flags_cd[d]]
        neither = len(names) - len(both) - len(omc) - len(ocd)
        detail = []
        for label, lst in (("mc only", omc), ("cd only", ocd)):
            if lst:
                cases = collections.Counter(cases_by_name[d] for d in lst)
                detail.append(
                    f"{label}: "
                    + ", ".join(f"{c} ({k})" for c, k in cases.most_common(5))
                    + "; e.g. "
                    + ", ".join(sorted(lst)[:examples])
                )
        out.append(f"| {fl:<12} | {len(both):>5} | {len(omc):>15} | {len(ocd):>15} | {neither:>7} | {' / '.join(detail)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailcanary", required=True, help="path of the release binary")
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each tool (median reported)")
    ap.add_argument("--workdir", help="keep zones and raw outputs here (default: a temporary directory, removed)")
    ap.add_argument("--no-full", action="store_true", help="skip timing checkdmarc's full check_domains")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin knotd to CPU 0 and each audited tool to CPU 1 (taskset), so the server and "
        "the tool do not compete for a core; needs 2 CPUs",
    )
    args = ap.parse_args()

    import checkdmarc

    workdir = args.workdir or tempfile.mkdtemp(prefix="mc-bench-")
    os.makedirs(workdir, exist_ok=True)
    domains, zones = generate(args.domains, args.seed)
    names = [d.name for d in domains]
    if args.pin and (os.cpu_count() or 1) < 2 or args.pin and not shutil.which("taskset"):
        raise SystemExit("--pin needs 2 CPUs and taskset (util-linux)")
    knot_pin, tool_pin = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if args.pin else ([], [])
    knot = Knot(workdir, zones, knot_pin)

    def on_signal(signum, frame):
        knot.stop()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out: list[str] = []
    try:
        t0 = time.perf_counter()
        knot.start()
        print(
            f"knotd pid {knot.proc.pid} on 127.0.0.1:{knot.port}: {len(zones)} zones "
            f"({len(domains)} audited domains) loaded in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        timed = {k: {"wall": [], "loop": [], "queries": []} for k in TOOLS}
        if args.no_full:
            del timed["cd-full"]
        results = {}
        verdicts = {}  # tool -> list of per-run verdict maps
        load_before = open("/proc/loadavg").read().split()[:3]
        for run in range(args.runs):
            for tool in timed:
                q0 = knot.queries()
                if tool == "mc":
                    wall, res = run_mailcanary(args.mailcanary, knot.port, names, tool_pin)
                    loop = wall
                else:
                    wall, loop, res = run_checkdmarc(knot.port, names, workdir, TOOLS[tool][1], tool_pin)
                queries = knot.queries() - q0
                timed[tool]["wall"].append(wall)
                timed[tool]["loop"].append(loop)
                timed[tool]["queries"].append(queries)
                results.setdefault(tool, res)
                if tool == "mc":
                    v = {n: (mc_spf(res[n]), mc_dmarc(res[n], n)) for n in names}
                elif tool == "cd":
                    v = {n: (cd_spf(res[n]["spf"]), cd_dmarc(res[n]["dmarc"], n)) for n in names}
                else:
                    v = None
                if v is not None:
                    verdicts.setdefault(tool, []).append(v)
                print(
                    f"run {run + 1}: {TOOLS[tool][0]}: {wall:.2f} s, {queries} queries",
                    file=sys.stderr,
                )
        load_after = open("/proc/loadavg").read().split()[:3]
        mc_res, cd_res = results["mc"], results["cd"]
        if args.workdir:
            with open(os.path.join(workdir, "mailcanary.json"), "w") as f:
                json.dump(mc_res, f, indent=1)
            with open(os.path.join(workdir, "checkdmarc.json"), "w") as f:
                json.dump(cd_res, f, indent=1, default=str)
    finally:
        knot.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    spf_case = {d.name: d.spf_case for d in domains}
    dm_case = {d.name: d.dmarc_case for d in domains}
    spf_rows, dm_rows, pol_rows = {}, {}, {}
    spf_fl_mc, spf_fl_cd, dm_fl_mc, dm_fl_cd = {}, {}, {}, {}
    for n in names:
        a, fa = mc_spf(mc_res[n])
        b, fb = cd_spf(cd_res[n]["spf"])
        spf_rows[n] = (a, b)
        spf_fl_mc[n], spf_fl_cd[n] = fa, fb
        sa, pa, ga = mc_dmarc(mc_res[n], n)
        sb, pb, gb = cd_dmarc(cd_res[n]["dmarc"], n)
        dm_rows[n] = (sa, sb)
        pol_rows[n] = (pa, pb)
        dm_fl_mc[n], dm_fl_cd[n] = ga, gb

    out.append(
        f"mailcanary {subprocess.run([args.mailcanary, '--version'], capture_output=True, text=True).stdout.strip()}"
        f" vs checkdmarc {checkdmarc.__version__}; {len(domains)} domains, seed {args.seed}"
    )
    agreement_table("SPF verdict", spf_rows, spf_case, out)
    flag_table("SPF problems reported", spf_fl_mc, spf_fl_cd, spf_case, out, names)
    agreement_table("DMARC verdict", dm_rows, dm_case, out)
    both_valid = {n: v for n, v in pol_rows.items() if dm_rows[n] == ("valid", "valid")}
    agreement_table("DMARC policy in force (where both found a valid record)", both_valid, dm_case, out)
    flag_table("DMARC problems reported", dm_fl_mc, dm_fl_cd, dm_case, out, names)

    for t, runs in verdicts.items():
        changed = sum(1 for n in names if any(r[n] != runs[0][n] for r in runs[1:]))
        out.append(f"\n{TOOLS[t][0]}: verdicts of {changed} domain(s) differ between the {len(runs)} runs")
    med = {t: {k: statistics.median(v) for k, v in d.items()} for t, d in timed.items()}
    out.append(
        f"\nWall time through the same knotd, {len(names)} domains, median of {args.runs} run(s), "
        + ("knotd pinned to CPU 0 and each tool to CPU 1, " if args.pin else "not pinned, ")
        + f"runs interleaved; {os.cpu_count()} CPUs, load average {' '.join(load_before)} before, "
        f"{' '.join(load_after)} after\n"
    )
    out.append("| tool (scope) | DNS queries | runs (s) | median (s) | per domain (ms) |")
    out.append("|---|---|---|---|---|")
    for t, d in timed.items():
        out.append(
            f"| {TOOLS[t][0]} | {int(med[t]['queries'])} | {', '.join(f'{x:.2f}' for x in d['wall'])} "
            f"| {med[t]['wall']:.2f} | {1000 * med[t]['wall'] / len(names):.2f} |"
        )
    mc = med["mc"]["wall"]
    out.append("\nRatio checkdmarc / mailcanary (target >= 50x):")
    for t in timed:
        if t == "mc":
            continue
        out.append(
            f"- {TOOLS[t][0]}: {med[t]['wall'] / mc:.1f}x by process wall time, "
            f"{med[t]['loop'] / mc:.1f}x counting only checkdmarc's audit loop "
            f"({med[t]['loop']:.2f} s, without interpreter start and imports)"
        )
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
