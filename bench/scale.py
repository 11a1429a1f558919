#!/usr/bin/env python3
"""The scale benchmarks on the 1,000-seed loopback stack (tests/stack/scale-up.sh).

  scale.py idle    --mailcanary BIN [--stack DIR] ...   benchmark 1: the daemon idle with N IMAP
                   seeds, each watched in INBOX and Junk (2N IDLE connections): RSS, CPU, fds,
                   threads over a 60 s window (or several)
  scale.py restart --mailcanary BIN [--stack DIR] ...   benchmark 2: Dovecot restarted under that
                   load: time until every watcher is back, reconnects per second (Dovecot's
                   logins and the daemon's own), logins refused by Dovecot's limits, and the fate
                   of the probes in flight around the restart
  scale.py rate    --mailcanary BIN [--stack DIR] ...   benchmark 3: sustained probing through the
                   Maildir path at increasing rates, 60 s each: daemon CPU ms per probe end to end,
                   detection and delivery percentiles, whether the rate was held, a perf profile

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
import urllib.request

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


def store(workdir, state="state"):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(workdir, state, "mailcanary.sqlite3"),
                           uri=True, timeout=10)


def count_runs(workdir, probe):
    try:
        with store(workdir) as c:
            return dict(c.execute("SELECT state, count(*) FROM probe_run WHERE probe = ? GROUP BY state",
                                  (probe,)).fetchall())
    except sqlite3.OperationalError:
        return {}


TEMPLATE = os.path.join(REPO, "probes", "templates", "verification-en.toml")


def config_head(stack, what, state_dir, relay_host, relay_port):
    """A generated config's daemon, HTTP and DNS settings and its sender `ok` (DKIM-signing with
    the stack's key) submitting to relay_host:relay_port."""
    env = stack.env
    return f"""# generated by bench/scale.py: {what}
[daemon]
state_dir = "{state_dir}"
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
"""


def probe_section(name, seeds, every, timeout):
    return f"""[probes.{name}]
sender = "ok"
seeds = [{", ".join('"%s"' % s for s in seeds)}]
every = "{every}"
timeout = "{timeout}"
template = "{TEMPLATE}"
"""


def save_config(args, path, parts):
    """Write the config and have the daemon check it; returns the path."""
    with open(path, "w") as f:
        f.write("\n".join(parts))
    subprocess.run([args.mailcanary, "config", "check", path], check=True, stdout=subprocess.DEVNULL)
    return path


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
    out = [config_head(stack, "%d IMAP seeds (%s TLS), INBOX + Junk each" % (n, args.tls),
                       os.path.join(workdir, "state"), relay_host, relay_port)]
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
    out.append(probe_section("scale", names, "24h", "10m"))
    if inflight:
        step = max(1, n // inflight)
        some = names[step - 1::step][:inflight]
        out.append("# probes in flight around the restart\n"
                   + probe_section("inflight", some, args.inflight_every, "3m"))
    return save_config(args, os.path.join(workdir, "mailcanary.toml"), out)


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


# ---------------------------------------------------------------- benchmark 3

# --via: where the daemon submits (a DIR/env key) and the path the mail takes from there.
VIA = {
    "relay": ("RELAY_OK", "relay -> MX with the rspamd milter -> Dovecot LMTP (Sieve) -> Maildir"),
    "direct": ("DIRECT", "a Postfix listener -> virtual(8) -> Maildir (no relay hop, no milter, no Dovecot)"),
}


def write_rate_config(args, stack, workdir, rate):
    """`rate` Maildir seeds (seed1..seedR) in one probe firing every second: R probes a second,
    each composed, DKIM-signed, submitted where --via says (VIA), delivered into the seed's
    Maildir, seen by inotify, evaluated and recorded."""
    env = stack.env
    relay_host, relay_port = stack.addr(VIA[args.via][0])
    out = [config_head(stack, "%d Maildir seeds, one probe a second each, via %s" % (rate, args.via),
                       os.path.join(workdir, "state-%d" % rate), relay_host, relay_port)]
    names = []
    for i in range(1, rate + 1):
        name = "m%04d" % i
        names.append(name)
        out.append(f"""[seeds.{name}]
provider = "rate"
address = "seed{i}@seed.test"
authserv_id = "{env['AUTHSERV_ID']}"
kind = "maildir"
path = "{env['MAILDIR_PATTERN'].replace('{user}', 'seed%d' % i)}"
""")
    out.append(probe_section("rate", names, "1s", "2m"))
    return save_config(args, os.path.join(workdir, "rate-%d.toml" % rate), out)


def machine_ticks():
    """Busy jiffies of the whole machine (all CPUs: user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def ticks_by_command():
    """{pid: (command, utime+stime)} of every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                head, _, after = f.read().rpartition(") ")
        except OSError:
            continue
        v = after.split()
        out[int(pid)] = (head.partition(" (")[2], int(v[11]) + int(v[12]))
    return out


def by_command(before, after, exclude):
    """CPU ms per command name between two ticks_by_command() samples, for processes alive at
    both (a process that exited in between is not counted; Postfix and rspamd keep theirs)."""
    ms = collections.Counter()
    for pid, (comm, t1) in after.items():
        if pid in before and pid != exclude and before[pid][0] == comm:
            ms[comm] += (t1 - before[pid][1]) * 1000 / CLK_TCK
    return ms


def pct(v, q):
    return v[min(len(v) - 1, int(round((len(v) - 1) * q)))] if v else float("nan")


def scrape(d):
    """GET /metrics as Prometheus would (the export stage); returns the series count."""
    if d.log.http is None:
        d.log.poll()
    if d.log.http is None:
        return 0
    with urllib.request.urlopen("http://%s/metrics" % d.log.http, timeout=5) as r:
        return sum(1 for l in r.read().splitlines() if l and not l.startswith(b"#"))


def postfix_queue(stack):
    """Messages in the stack's Postfix queues (incoming, active, deferred, maildrop)."""
    q = subprocess.run(["postconf", "-c", stack.env["POSTFIX_CONFIG"], "-h", "queue_directory"],
                       capture_output=True, text=True, check=True).stdout.strip()
    return sum(len(files) for sub in ("incoming", "active", "deferred", "maildrop")
               for _, _, files in os.walk(os.path.join(q, sub)))


def wait_queue_empty(stack, timeout):
    """A step starts with the mail stack idle, not delivering the previous step's backlog."""
    deadline = time.time() + timeout
    n = postfix_queue(stack)
    if n:
        say("waiting for Postfix to deliver the %d messages queued by the previous step" % n)
    while n and time.time() < deadline:
        time.sleep(2)
        n = postfix_queue(stack)
    if n:
        sys.exit("Postfix still holds %d messages after %d s" % (n, timeout))


def empty_maildirs(stack, seeds):
    """Remove what earlier steps left in seed1..seedN's folders (late arrivals nobody watched)."""
    removed = 0
    for i in range(1, seeds + 1):
        root = stack.env["MAILDIR_PATTERN"].replace("{user}", "seed%d" % i)
        for folder in (root, os.path.join(root, "." + stack.env.get("JUNK_FOLDER", "Junk"))):
            for sub in ("new", "cur"):
                d = os.path.join(folder, sub)
                for name in os.listdir(d) if os.path.isdir(d) else []:
                    os.unlink(os.path.join(d, name))
                    removed += 1
    if removed:
        say("removed %d messages left in the seeds' Maildirs" % removed)


def rate_step(args, stack, workdir, rate, profile=False):
    wait_queue_empty(stack, args.up_timeout)
    empty_maildirs(stack, rate)
    config = write_rate_config(args, stack, workdir, rate)
    d = Daemon(args.mailcanary, config, workdir)
    perf_data = os.path.join(workdir, "perf-%d.data" % rate)
    try:
        time.sleep(args.warmup)
        if not d.alive():
            sys.exit("the daemon exited; see " + d.log_path)
        perf = None
        if profile:
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", perf_data, "-p", str(d.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s0, m0, c0 = proc_sample(d.pid), machine_ticks(), ticks_by_command()
        t0 = time.time()
        series = 0
        while time.time() - t0 < args.step:
            time.sleep(min(args.scrape, args.step - (time.time() - t0)))
            series = scrape(d)
        s1, m1, c1 = proc_sample(d.pid), machine_ticks(), ticks_by_command()
        t1 = time.time()
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        # Let the runs created in the window finish (or time out in the MTA's queue).
        lo, hi = int(t0 * 1000), int(t1 * 1000)
        deadline = time.time() + args.drain
        while time.time() < deadline:
            with store(workdir, "state-%d" % rate) as c:
                open_ = c.execute("SELECT count(*) FROM probe_run WHERE created_ms BETWEEN ? AND ? "
                                  "AND (seen_ms IS NULL AND state != 'final')", (lo, hi)).fetchone()[0]
            if open_ == 0:
                break
            time.sleep(1)
        rss = proc_sample(d.pid)["rss_kib"] / 1024
    finally:
        d.stop()
    db = store(workdir, "state-%d" % rate)
    rows = db.execute("SELECT created_ms, submitted_ms, seen_ms, internal_ms, coalesce(outcome, state), folder "
                      "FROM probe_run WHERE created_ms BETWEEN ? AND ?", (lo, hi)).fetchall()
    done_in_window = db.execute("SELECT count(*) FROM probe_run WHERE seen_ms BETWEEN ? AND ?",
                                (lo, hi)).fetchone()[0]
    db.close()
    secs = t1 - t0
    outcomes = collections.Counter(r[4] for r in rows)
    seen = [r for r in rows if r[2] is not None]
    detect = sorted(r[2] - r[3] for r in seen if r[3] is not None)
    deliver = sorted(r[2] - r[1] for r in seen if r[1] is not None)
    wait = sorted(r[1] - r[0] for r in rows if r[1] is not None)
    cpu_ms = (s1["ticks"] - s0["ticks"]) * 1000 / CLK_TCK
    rest_ms = (m1 - m0) * 1000 / CLK_TCK - cpu_ms
    per = done_in_window or 1
    r = {
        "rate": rate, "secs": secs, "created": len(rows), "seen": len(seen), "done": done_in_window,
        "achieved": done_in_window / secs, "outcomes": dict(outcomes),
        "cpu_per_probe": cpu_ms / per, "cpu_pct": cpu_ms / 10 / secs, "rest_per_probe": rest_ms / per,
        "detect": detect, "deliver": deliver, "wait": wait, "rss": rss, "series": series,
        "perf": perf_data if profile else None,
        "others": {c: ms / per for c, ms in by_command(c0, c1, d.pid).most_common(8) if ms / per >= 0.1},
    }
    # Held: the daemon kept up (it saw at least 95 % of the target rate in the window and every
    # run created in it arrived) with detection p99 under 50 ms.
    r["held"] = (r["achieved"] >= 0.95 * rate and len(seen) == len(rows) and bool(detect)
                 and pct(detect, 0.99) < 50)
    say("rate %d/s: %d created, %d seen in the window (%.1f/s), daemon CPU %.2f ms/probe (%.1f %% of a core), "
        "rest of the machine %.2f ms/probe, detection p50 %s p99 %s ms, delivery p50 %s p99 %s ms, %s" % (
            rate, len(rows), done_in_window, r["achieved"], r["cpu_per_probe"], r["cpu_pct"], r["rest_per_probe"],
            pct(detect, 0.5), pct(detect, 0.99), pct(deliver, 0.5), pct(deliver, 0.99),
            "held" if r["held"] else "NOT held"))
    return r


def bench_rate(args, stack, workdir):
    rates = [int(x) for x in args.rates.split(",")]
    if max(rates) > int(stack.env.get("SEED_COUNT", "4")):
        sys.exit("rate %d needs as many seed users; the stack has %s" % (max(rates), stack.env.get("SEED_COUNT")))
    results = []
    misses = 0
    for rate in rates:
        results.append(rate_step(args, stack, workdir, rate))
        misses = 0 if results[-1]["held"] else misses + 1
        if misses >= 2:
            say("two rates in a row not held; stopping")
            break
    load = open("/proc/loadavg").read().split()[:3]
    print()
    print("benchmark 3: sustained probing through the Maildir path: compose, DKIM-sign, submit; %s;" % VIA[args.via][1])
    print("  inotify, read, evaluate, record; /metrics scraped every %g s" % args.scrape)
    print("  command: %s" % args.command)
    print("  machine: %d cores, %.0f GiB, load average %s" % (
        os.cpu_count(), os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30, " ".join(load)))
    print("  | target rate | seen in %g s window | daemon CPU per probe | daemon CPU | rest of machine per probe "
          "| detection p50 / p99 | delivery p50 / p99 | send wait p99 | outcomes | RSS | held |" % args.step)
    print("  |---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print("  | %d/s | %.1f/s | %.2f ms | %.1f %% | %.2f ms | %s / %s ms | %s / %s ms | %s ms | %s | %.0f MiB | %s |" % (
            r["rate"], r["achieved"], r["cpu_per_probe"], r["cpu_pct"], r["rest_per_probe"],
            pct(r["detect"], 0.5), pct(r["detect"], 0.99), pct(r["deliver"], 0.5), pct(r["deliver"], 0.99),
            pct(r["wait"], 0.99), ", ".join("%s %d" % kv for kv in sorted(r["outcomes"].items())), r["rss"],
            "yes" if r["held"] else "no"))
    for r in results:
        print("  rest of the machine at %d/s, CPU ms per probe by command: %s" % (
            r["rate"], ", ".join("%s %.2f" % kv for kv in r["others"].items())))
    held = [r for r in results if r["held"]]
    print("  highest rate held (detection p99 < 50 ms, every probe seen): %s" % (
        "%d/s" % held[-1]["rate"] if held else "none"))
    if results:
        best = min(r["cpu_per_probe"] for r in results)
        print("  daemon CPU per probe, best step: %.2f ms (target < 5 ms = 200 probes/s on one core)" % best)
    top = held[-1] if held else (results[0] if results else None)
    if args.profile and top:
        # A window of its own: perf's post-processing (addr2line) must not
        # land in a measured window.
        say("profiling %d/s in a window of its own" % top["rate"])
        top = rate_step(args, stack, workdir, top["rate"], profile=True)
        rep = subprocess.run(["perf", "report", "-i", top["perf"], "--stdio", "--no-children", "--percent-limit",
                              "1.5", "-g", "none", "--sort", "dso,symbol"], capture_output=True, text=True).stdout
        print("  profile at %d/s (perf report --no-children, >= 1.5 %%; %s):" % (top["rate"], top["perf"]))
        for line in rep.splitlines():
            if line.strip() and not line.startswith("#"):
                print("   " + line)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", choices=["idle", "restart", "rate"])
    p.add_argument("--mailcanary", required=True, help="the binary")
    p.add_argument("--stack", help="a running scale stack (tests/stack/scale-up.sh DIR); default: bring one up")
    p.add_argument("--seeds", type=int, help="seeds to watch (default: the stack's SEED_COUNT, or 1000)")
    p.add_argument("--tls", choices=["implicit", "none"], default="implicit",
                   help="IMAPS (default) or plain IMAP")
    p.add_argument("--settle", type=int, default=20, help="seconds between the first round and measuring")
    p.add_argument("--window", type=float, default=60, help="measuring window, seconds (idle)")
    p.add_argument("--windows", type=int, default=1, help="windows to measure, median printed (idle)")
    p.add_argument("--profile", type=int, default=0,
                   help="perf record the idle daemon this long (idle); rate: any value > 0 profiles the highest "
                        "rate held in an extra window")
    p.add_argument("--no-mail", action="store_true",
                   help="send the first round to a closed port: watchers only, no mail (idle)")
    p.add_argument("--inflight", type=int, default=10, help="seeds of the probe sent around the restart")
    p.add_argument("--inflight-every", default="2s", help="its interval")
    p.add_argument("--rates", default="25,50,100,200,300,400",
                   help="probes per second to try in turn, 60 s each (rate); stops after two misses")
    p.add_argument("--via", choices=sorted(VIA), default="relay",
                   help="relay: the full path through rspamd and Dovecot; direct: Postfix's virtual(8) (rate)")
    p.add_argument("--step", type=float, default=60, help="measuring window per rate, seconds (rate)")
    p.add_argument("--warmup", type=float, default=10, help="seconds at a rate before measuring (rate)")
    p.add_argument("--drain", type=float, default=60, help="seconds to wait for a window's runs (rate)")
    p.add_argument("--scrape", type=float, default=5, help="GET /metrics this often, seconds (rate)")
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
        {"idle": bench_idle, "restart": bench_restart, "rate": bench_rate}[args.bench](args, stack, workdir)
    finally:
        if not args.keep:
            stack.down()
            subprocess.run(["rm", "-rf", workdir])
        else:
            say("kept %s%s" % (workdir, " and the stack in " + stack.dir if stack.owned else ""))


if __name__ == "__main__":
    main()
