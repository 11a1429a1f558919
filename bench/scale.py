#!/usr/bin/env python3
"""The scale benchmarks on the 1,000-seed loopback stack (tests/stack/scale-up.sh).

  scale.py idle    --mailcanary BIN [--stack DIR] ...   benchmark 1: the daemon idle with N IMAP
                   seeds, each watched in INBOX and Junk (2N IDLE connections): RSS, CPU, fds,
                   threads over a 60 s window (or several)
  scale.py restart --mailcanary BIN [--stack DIR] ...   benchmark 2: Dovecot restarted under that
                   load: time until every watcher is back, reconnects per second (Dovecot's
                   logins and the daemon's own), logins refused by Dovecot's limits, and the fate
                   of the probes in flight around the restart

Run through bench/scale-idle.sh and bench/scale-restart.sh (which build the binary). Without
--stack a scale stack is brought up in a fresh directory and stopped afterwards (needs root, as
the stack does). Only the standard library is used.
"""

import argparse
import collections
import datetime
import json
import os
import re
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK_SCRIPTS = os.path.join(REPO, "tests", "stack")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def say(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------- the stack

def read_env(stack):
    env = {}
    with open(os.path.join(stack, "env")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            if k:
                env[k] = v
    return env


class Stack:
    """An existing stack (--stack) or one brought up here and stopped at the end."""

    def __init__(self, dir_, seeds):
        self.owned = dir_ is None
        if self.owned:
            dir_ = "/tmp/mcscale-%d" % os.getpid()
            say("bringing up a scale stack with %d seeds in %s (tests/stack/scale-up.sh)" % (seeds, dir_))
            t0 = time.time()
            env = dict(os.environ, SEEDS=str(seeds))
            subprocess.run([os.path.join(STACK_SCRIPTS, "scale-up.sh"), dir_], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            say("stack up in %.1f s" % (time.time() - t0))
        self.dir = dir_
        self.env = read_env(dir_)
        if self.env.get("SCALE") != "1":
            say("warning: %s is not a scale stack (SCALE=1): Dovecot keeps its small limits" % dir_)

    def addr(self, key):
        host, _, port = self.env[key].rpartition(":")
        return host, int(port)

    def dovecot_pid(self):
        with open(os.path.join(self.dir, "dovecot", "run", "master.pid")) as f:
            return int(f.read().strip())

    def ctl(self, *args):
        subprocess.run([os.path.join(STACK_SCRIPTS, "ctl.sh"), self.dir, *args], check=True)

    def down(self):
        if self.owned:
            say("stopping the stack (tests/stack/down.sh)")
            subprocess.run([os.path.join(STACK_SCRIPTS, "down.sh"), self.dir], stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- /proc

def proc_sample(pid):
    with open("/proc/%d/stat" % pid) as f:
        after = f.read().rsplit(") ", 1)[1].split()
    ticks = int(after[11]) + int(after[12])          # utime + stime
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.split()
    return {
        "ticks": ticks,
        "rss_kib": int(status["VmRSS"][0]),
        "hwm_kib": int(status["VmHWM"][0]),
        "anon_kib": int(status["RssAnon"][0]),
        "file_kib": int(status["RssFile"][0]),
        "threads": int(status["Threads"][0]),
        "fds": len(os.listdir("/proc/%d/fd" % pid)),
    }


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=,comm=,rss=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [(int(p), c, int(r)) for p, c, r in (l.split() for l in out.splitlines() if l.strip())]


def dovecot_processes(stack):
    """{command: (count, rss MiB)} of the Dovecot master's children."""
    by = collections.defaultdict(lambda: [0, 0])
    for _, comm, rss in children(stack.dovecot_pid()):
        by[comm][0] += 1
        by[comm][1] += rss
    return {c: (n, kib / 1024) for c, (n, kib) in sorted(by.items())}


# ---------------------------------------------------------------- the daemon

def ts(s):
    return datetime.datetime.fromisoformat(s).timestamp()


class Log:
    """The daemon's JSON log, read as it grows."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.partial = ""
        self.http = None
        self.connected = []      # (t, seed, folder)
        self.disconnected = []   # (t, seed, folder, retry_in, error)
        self.refused = []        # (t, seed, error)
        self.errors = []

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                chunk = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return
        chunk = self.partial + chunk
        lines = chunk.split("\n")
        self.partial = lines.pop()
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            msg = e.get("message", "")
            t = ts(e["timestamp"]) if "timestamp" in e else time.time()
            if msg.startswith("serving ") and self.http is None:
                m = re.search(r"https?://([^/]+)/metrics", msg)
                if m:
                    self.http = m.group(1)
            elif msg == "inbox watcher connected":
                self.connected.append((t, e.get("seed"), e.get("folder")))
            elif msg == "inbox watcher disconnected":
                err = e.get("error", "")
                self.disconnected.append((t, e.get("seed"), e.get("folder"), e.get("retry_in"), err))
                if "login refused" in err:
                    self.refused.append((t, e.get("seed"), err))
            elif e.get("level") == "ERROR":
                self.errors.append(line)

    def up_since(self, t0):
        return {(s, f) for t, s, f in self.connected if t >= t0}


class Daemon:
    def __init__(self, binary, config, workdir):
        self.log_path = os.path.join(workdir, "mailcanary.log")
        self.cmd = [binary, "run", "--config", config, "--log-format", "json"]
        say("daemon: " + " ".join(shlex.quote(c) for c in self.cmd))
        self.proc = subprocess.Popen(self.cmd, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        self.log = Log(self.log_path)
        self.t0 = time.time()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_up(self, want, since, timeout):
        """Until `want` distinct folders connected after `since`; returns the time of the last."""
        deadline = time.time() + timeout
        last_report = 0
        while time.time() < deadline:
            if not self.alive():
                sys.exit("the daemon exited; see " + self.log_path)
            self.log.poll()
            up = self.log.up_since(since)
            if len(up) >= want:
                return max(t for t, s, f in self.log.connected if t >= since)
            if time.time() - last_report > 10:
                say("  %d of %d watchers connected" % (len(up), want))
                last_report = time.time()
            time.sleep(0.2)
        return None


def store(workdir):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(workdir, "state", "mailcanary.sqlite3"),
                           uri=True, timeout=10)


def count_runs(workdir, probe):
    try:
        with store(workdir) as c:
            return dict(c.execute("SELECT state, count(*) FROM probe_run WHERE probe = ? GROUP BY state",
                                  (probe,)).fetchall())
    except sqlite3.OperationalError:
        return {}


def write_config(args, stack, workdir, inflight):
    env = stack.env
    n = args.seeds
    pw = os.path.join(workdir, "seed-password")
    with open(pw, "w") as f:
        f.write(env["SEED_PASS"] + "\n")
    imap_key = "IMAPS" if args.tls == "implicit" else "IMAP"
    host, port = stack.addr(imap_key)
    relay_host, relay_port = stack.addr("RELAY_OK")
    if args.no_mail:
        relay_port = 1   # nothing listens: every send fails at once, no mail is delivered
    template = os.path.join(REPO, "probes", "templates", "verification-en.toml")
    out = [f"""# generated by bench/scale.py: {n} IMAP seeds ({args.tls} TLS), INBOX + Junk each
[daemon]
state_dir = "{workdir}/state"
shutdown_grace = "5s"
[http]
listen = "127.0.0.1:0"
[dns]
resolver = "{env['DNS']}"
timeout = "2s"

[senders.ok]
kind = "smtp"
host = "{relay_host}"
port = {relay_port}
tls = "none"
from = "no-reply@sender.test"
dkim_selector = "{env['DKIM_SELECTOR']}"
dkim_key_file = "{env['DKIM_KEY']}"
timeout = "60s"
"""]
    names = []
    for i in range(1, n + 1):
        name = "s%04d" % i
        names.append(name)
        tls = f'tls = "implicit"\nca_file = "{env["CA_CERT"]}"' if args.tls == "implicit" else 'tls = "none"'
        out.append(f"""[seeds.{name}]
provider = "scale"
address = "seed{i}@seed.test"
authserv_id = "{env['AUTHSERV_ID']}"
kind = "imap"
host = "{host}"
port = {port}
{tls}
username = "seed{i}@seed.test"
password_file = "{pw}"
""")
    # Every seed must be in a probe to be watched; this one's round fires once at start.
    out.append(f"""[probes.scale]
sender = "ok"
seeds = [{", ".join('"%s"' % s for s in names)}]
every = "24h"
timeout = "10m"
template = "{template}"
""")
    if inflight:
        step = max(1, n // inflight)
        some = names[step - 1::step][:inflight]
        out.append(f"""# probes in flight around the restart
[probes.inflight]
sender = "ok"
seeds = [{", ".join('"%s"' % s for s in some)}]
every = "{args.inflight_every}"
timeout = "3m"
template = "{template}"
""")
    path = os.path.join(workdir, "mailcanary.toml")
    with open(path, "w") as f:
        f.write("\n".join(out))
    subprocess.run([args.mailcanary, "config", "check", path], check=True, stdout=subprocess.DEVNULL)
    return path


def start(args, stack, workdir, inflight=0):
    config = write_config(args, stack, workdir, inflight)
    d = Daemon(args.mailcanary, config, workdir)
    want = 2 * args.seeds
    t = d.wait_up(want, 0, args.up_timeout)
    if t is None:
        d.stop()
        sys.exit("not every watcher connected within %d s; see %s" % (args.up_timeout, d.log_path))
    say("all %d watchers connected %.1f s after the daemon started" % (want, t - d.t0))
    # The first round (one probe per seed) must be done before the daemon counts as idle.
    deadline = time.time() + args.up_timeout
    while time.time() < deadline:
        runs = count_runs(workdir, "scale")
        if runs.get("final", 0) >= args.seeds:
            break
        time.sleep(1)
    with store(workdir) as c:
        outcomes = dict(c.execute(
            "SELECT coalesce(outcome, state), count(*) FROM probe_run WHERE probe = 'scale' GROUP BY 1"
        ).fetchall())
    say("first round (one probe per seed): %s, done %.1f s after start" % (outcomes, time.time() - d.t0))
    return d


# ---------------------------------------------------------------- benchmark 1

def bench_idle(args, stack, workdir):
    d = start(args, stack, workdir)
    try:
        say("settling %d s (Dovecot hibernates idle clients after imap_hibernate_timeout)" % args.settle)
        time.sleep(args.settle)
        results = []
        for w in range(args.windows):
            s0 = proc_sample(d.pid)
            t0 = time.monotonic()
            rss = [s0["rss_kib"]]
            fds = [s0["fds"]]
            while time.monotonic() - t0 < args.window:
                time.sleep(1)
                s = proc_sample(d.pid)
                rss.append(s["rss_kib"])
                fds.append(s["fds"])
            s1 = proc_sample(d.pid)
            secs = time.monotonic() - t0
            cpu = (s1["ticks"] - s0["ticks"]) / CLK_TCK / secs * 100
            r = {"cpu": cpu, "rss": statistics.median(rss) / 1024, "rss_max": max(rss) / 1024,
                 "hwm": s1["hwm_kib"] / 1024, "fds": max(fds), "threads": s1["threads"], "secs": secs,
                 "anon": s1["anon_kib"] / 1024, "file": s1["file_kib"] / 1024}
            results.append(r)
            say("window %d: CPU %.2f %% of a core over %.0f s, RSS median %.1f MiB (max %.1f), VmHWM %.1f MiB, "
                "%d fds, %d threads" % (w + 1, r["cpu"], secs, r["rss"], r["rss_max"], r["hwm"], r["fds"],
                                        r["threads"]))
        d.log.poll()
        drops = [x for x in d.log.disconnected if x[0] > d.t0]
        dov = dovecot_processes(stack)
        load = open("/proc/loadavg").read().split()[:3]
        med = lambda k: statistics.median(r[k] for r in results)
        print()
        print("benchmark 1: idle with %d IMAP seeds (%d IDLE connections, %s TLS%s)" % (
            args.seeds, 2 * args.seeds, args.tls, "; no mail sent" if args.no_mail else ""))
        print("  command: %s" % args.command)
        print("  machine: %d cores, %.0f GiB, load average %s" % (
            os.cpu_count(), os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30, " ".join(load)))
        print("  | measure | median of %d window(s) of %.0f s | target |" % (len(results), args.window))
        print("  |---|---|---|")
        print("  | RSS (VmRSS) | %.1f MiB | < 64 MiB |" % med("rss"))
        print("  | of which anonymous (RssAnon: heap, stacks) / file (RssFile: the binary's pages) | %.1f / %.1f MiB | |"
              % (med("anon"), med("file")))
        print("  | peak RSS (VmHWM, since start) | %.1f MiB | |" % max(r["hwm"] for r in results))
        print("  | CPU (utime+stime) | %.2f %% of a core | < 2 %% |" % med("cpu"))
        print("  | open fds | %d | |" % max(r["fds"] for r in results))
        print("  | threads | %d | |" % max(r["threads"] for r in results))
        print("  watcher disconnects since start: %d" % len(drops))
        print("  Dovecot processes: %s" % ", ".join("%s %d (%.0f MiB)" % (c, n, m) for c, (n, m) in dov.items()))
        if args.profile:
            profile(args, d, workdir)
    finally:
        d.stop()


def profile(args, d, workdir):
    data = os.path.join(workdir, "perf.data")
    say("perf record -g -p %d for %d s" % (d.pid, args.profile))
    subprocess.run(["perf", "record", "-F", "499", "-g", "-o", data, "-p", str(d.pid), "--", "sleep",
                    str(args.profile)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "2",
                          "-g", "none", "--sort", "dso,symbol"], capture_output=True, text=True).stdout
    print("  profile (perf report --no-children, >= 2 %%; %s):" % data)
    for line in rep.splitlines():
        if line.strip() and not line.startswith("#"):
            print("   " + line)


# ---------------------------------------------------------------- benchmark 2

DOVECOT_TS = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d) ")
# Dovecot's words when one of its own limits turns a client away (master: "process_limit (N)
# reached", "client_limit ... reached"; anvil: "Maximum number of connections from user+IP
# exceeded"; login: "Too many"), or when it runs out of descriptors or memory.
LIMIT_PATTERNS = re.compile(
    r"Maximum number of connections|process_limit|client_limit|reached|Too many|queue full|"
    r"fd limit|file descriptors|Out of memory", re.I)


def dovecot_lines(path, offset):
    with open(path, errors="replace") as f:
        f.seek(offset)
        return f.read().splitlines()


def dovecot_time(line, year):
    m = DOVECOT_TS.match(line)
    if not m:
        return None
    return time.mktime(time.strptime("%d %s" % (year, m.group(1)), "%Y %b %d %H:%M:%S"))


def debug_duration(v):
    """Seconds from a Rust Duration's Debug form: 1.5s, 250ms, 12µs."""
    m = re.match(r"^([0-9.]+)(s|ms|µs|us|ns)$", str(v or ""))
    if not m:
        return None
    return float(m.group(1)) / {"s": 1, "ms": 1e3, "µs": 1e6, "us": 1e6, "ns": 1e9}[m.group(2)]


def histogram(title, times, t0, width=50):
    per = collections.Counter(int(t - t0) for t in times)
    if not per:
        print("  %s: none" % title)
        return 0
    peak = max(per.values())
    print("  %s (second after the restart began: count):" % title)
    for s in range(min(per), max(per) + 1):
        n = per.get(s, 0)
        print("    %3d s %5d %s" % (s, n, "#" * max(1 if n else 0, round(n * width / peak))))
    return peak


def bench_restart(args, stack, workdir):
    d = start(args, stack, workdir, inflight=args.inflight)
    want = 2 * args.seeds
    log_path = stack.env["DOVECOT_LOG"]
    try:
        say("settling %d s" % args.settle)
        time.sleep(args.settle)
        before = count_runs(workdir, "inflight")
        dov_before = dovecot_processes(stack)
        offset = os.path.getsize(log_path)
        d.log.poll()
        t_restart = time.time()
        say("restarting Dovecot: tests/stack/ctl.sh %s stop dovecot, then start dovecot" % stack.dir)
        stack.ctl("stop", "dovecot")
        t_stopped = time.time()
        stack.ctl("start", "dovecot")
        t_listening = time.time()
        say("Dovecot stopped in %.1f s, listening again %.1f s after the restart began" % (
            t_stopped - t_restart, t_listening - t_restart))
        t_last = d.wait_up(want, t_restart, args.back_timeout)
        d.log.poll()
        back = len(d.log.up_since(t_restart))
        if t_last is None:
            say("only %d of %d watchers back after %d s" % (back, want, args.back_timeout))
        else:
            say("all %d watchers back %.1f s after the restart began" % (want, t_last - t_restart))
        # Probes: every run created from 10 s before the restart until 10 s after the last watcher
        # came back must end delivered.
        w0 = t_restart - 10
        w1 = (t_last or time.time()) + 10
        time.sleep(max(0, w1 - time.time()))
        deadline = time.time() + 240
        while time.time() < deadline:
            with store(workdir) as c:
                open_ = c.execute("SELECT count(*) FROM probe_run WHERE probe = 'inflight' AND state != 'final' "
                                  "AND created_ms BETWEEN ? AND ?", (w0 * 1000, w1 * 1000)).fetchone()[0]
            if open_ == 0:
                break
            time.sleep(2)
        with store(workdir) as c:
            outcomes = dict(c.execute(
                "SELECT coalesce(outcome, 'open: ' || state), count(*) FROM probe_run WHERE probe = 'inflight' "
                "AND created_ms BETWEEN ? AND ? GROUP BY 1", (w0 * 1000, w1 * 1000)).fetchall())
            latest = c.execute(
                "SELECT max((seen_ms - submitted_ms) / 1000.0) FROM probe_run WHERE probe = 'inflight' "
                "AND created_ms BETWEEN ? AND ? AND seen_ms IS NOT NULL", (w0 * 1000, w1 * 1000)).fetchone()[0]
        d.log.poll()
        lines = dovecot_lines(log_path, offset)
        year = time.localtime().tm_year
        logins = [t for t in (dovecot_time(l, year) for l in lines if "imap-login: Info: Login: " in l) if t]
        limits = [l for l in lines if LIMIT_PATTERNS.search(l)]
        # Every error Dovecot logged from the restart on, by kind (the text after "Error:").
        errors = collections.Counter(
            re.sub(r"\d+", "N", l.split(": ", 2)[-1])[:120] for l in lines
            if re.search(r" (Error|Fatal|Panic): ", l) and "Killed with signal" not in l)
        connects = [t for t, s, f in d.log.connected if t >= t_restart]
        drops = [x for x in d.log.disconnected if x[0] >= t_restart]
        failed = len(drops) - want if len(drops) >= want else 0
        delays = sorted(d for d in (debug_duration(x[3]) for x in drops) if d is not None)
        load = open("/proc/loadavg").read().split()[:3]
        print()
        print("benchmark 2: Dovecot restarted under %d IDLE connections (%d seeds, %s TLS)" % (
            want, args.seeds, args.tls))
        print("  command: %s" % args.command)
        print("  machine: %d cores, %.0f GiB, load average %s" % (
            os.cpu_count(), os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30, " ".join(load)))
        print("  Dovecot before: %s" % ", ".join("%s %d" % (c, n) for c, (n, m) in dov_before.items()))
        peak_dov = histogram("Dovecot logins per second (its log, 1 s resolution)", logins, int(t_restart))
        peak_d = histogram("watchers connected per second (the daemon's log)", connects, t_restart)
        # the busiest second by the daemon's millisecond timestamps
        connects.sort()
        sliding, j = 0, 0
        for i, t in enumerate(connects):
            while connects[j] < t - 1:
                j += 1
            sliding = max(sliding, i - j + 1)
        print("  | measure | measured | target |")
        print("  |---|---|---|")
        print("  | Dovecot stop (ctl.sh: SIGTERM by PID, wait for every process) | %.1f s | |" % (
            t_stopped - t_restart))
        print("  | Dovecot start (ctl.sh: start, wait until it listens) | %.1f s | |" % (t_listening - t_stopped))
        print("  | all %d watchers back, after Dovecot listens again | %s | < 60 s |" % (
            want, "%.1f s" % (t_last - t_listening) if t_last else "not all (%d) in %d s" % (back, args.back_timeout)))
        if t_last:
            print("  | all %d watchers back, after the restart began | %.1f s | |" % (want, t_last - t_restart))
        print("  | peak connect rate | %d logins/s (Dovecot), %d/s in any 1 s window (daemon) | spread, not one second |"
              % (peak_dov, sliding))
        print("  | logins refused by Dovecot's limits | %d log lines | 0 |" % len(limits))
        print("  | logins refused (the daemon's log) | %d | 0 |" % len(d.log.refused))
        print("  | reconnect attempts that failed | %d | |" % failed)
        print("  | errors in Dovecot's log from the restart on | %d | |" % sum(errors.values()))
        if delays:
            print("  | reconnect delays drawn (retry_in) | min %.2f s, median %.2f s, max %.2f s | jittered |" % (
                delays[0], statistics.median(delays), delays[-1]))
        print("  | probes in flight (created %d s before to 10 s after) | %s | all delivered |" % (
            10, ", ".join("%s %d" % kv for kv in sorted(outcomes.items())) or "none"))
        if latest is not None:
            print("  | slowest of those, submit to seen | %.1f s | |" % latest)
        print("  inflight probe before the restart: %s" % before)
        for l in limits[:10]:
            print("  limit: " + l)
        for e, n in errors.most_common(5):
            print("  dovecot error x%d: %s" % (n, e))
        if d.log.errors:
            print("  daemon errors: %d, first: %s" % (len(d.log.errors), d.log.errors[0][:300]))
    finally:
        d.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", choices=["idle", "restart"])
    p.add_argument("--mailcanary", required=True, help="the binary")
    p.add_argument("--stack", help="a running scale stack (tests/stack/scale-up.sh DIR); default: bring one up")
    p.add_argument("--seeds", type=int, help="seeds to watch (default: the stack's SEED_COUNT, or 1000)")
    p.add_argument("--tls", choices=["implicit", "none"], default="implicit",
                   help="IMAPS (default) or plain IMAP")
    p.add_argument("--settle", type=int, default=20, help="seconds between the first round and measuring")
    p.add_argument("--window", type=float, default=60, help="measuring window, seconds (idle)")
    p.add_argument("--windows", type=int, default=1, help="windows to measure, median printed (idle)")
    p.add_argument("--profile", type=int, default=0, help="perf record the idle daemon this long (idle)")
    p.add_argument("--no-mail", action="store_true",
                   help="send the first round to a closed port: watchers only, no mail (idle)")
    p.add_argument("--inflight", type=int, default=10, help="seeds of the probe sent around the restart")
    p.add_argument("--inflight-every", default="2s", help="its interval")
    p.add_argument("--up-timeout", type=int, default=300)
    p.add_argument("--back-timeout", type=int, default=300)
    p.add_argument("--workdir", help="default: a new directory under /tmp")
    p.add_argument("--keep", action="store_true", help="keep the workdir (and an owned stack running)")
    p.add_argument("--command", default=" ".join(shlex.quote(a) for a in sys.argv))
    args = p.parse_args()
    if args.stack and args.seeds is None:
        args.seeds = int(read_env(args.stack).get("SEED_COUNT", "4"))
    args.seeds = args.seeds or 1000
    workdir = args.workdir or "/tmp/mcscale-bench-%d" % os.getpid()
    os.makedirs(os.path.join(workdir, "state"), exist_ok=True)
    stack = Stack(args.stack, args.seeds)
    if int(stack.env.get("SEED_COUNT", "4")) < args.seeds:
        sys.exit("the stack has %s seed users, fewer than --seeds %d" % (stack.env.get("SEED_COUNT"), args.seeds))
    try:
        (bench_idle if args.bench == "idle" else bench_restart)(args, stack, workdir)
    finally:
        if not args.keep:
            stack.down()
            subprocess.run(["rm", "-rf", workdir])
        else:
            say("kept %s%s" % (workdir, " and the stack in " + stack.dir if stack.owned else ""))


if __name__ == "__main__":
    main()
