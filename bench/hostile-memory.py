#!/usr/bin/env python3
"""Memory peak of the mailcanary daemon under one hostile server at a time.

For each case a fresh `mailcanary run` watches one seed (its INBOX and Junk
watchers: two connections) on a hostile IMAP server, or sends through a
hostile SMTP relay, for DURATION seconds; the script prints the daemon's
peak resident memory (VmHWM from /proc/PID/status), whether it was still
alive, and the log lines that name the bound.

    python3 bench/hostile-memory.py                 # release build
    MAILCANARY_BIN=target/debug/mailcanary python3 bench/hostile-memory.py
    python3 bench/hostile-memory.py promise deep400 # some cases only

Loopback only. The baseline case is a well-behaved server, for comparison.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time

DURATION = float(os.environ.get("HOSTILE_SECONDS", "8"))
MIB = 1 << 20
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "probes", "templates")


def nested(depth):
    leaf = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 1)'
    return b"(" * (depth - 1) + leaf + b' "mixed")' * (depth - 1)


TOKEN = b"mc-" + b"a" * 26


def imap_answer(case, command):
    """Bytes to answer `command` with; None holds the connection silent."""
    up = command.upper()
    verb = up.split(b" ")[0]
    if case == "endless-line" and verb == b"LOGIN":
        return b"a" * (16 * MIB)
    if case == "promise" and up.startswith(b"UID SEARCH"):
        return b"* 1 FETCH (UID 5 BODY[] {500000000}\r\n"
    if verb == b"LOGIN":
        return b"{tag} OK logged in\r\n"
    if verb == b"LIST":
        return b'* LIST (\\Junk) "/" Junk\r\n{tag} OK\r\n'
    if verb == b"SELECT":
        return b"* 1 EXISTS\r\n{tag} OK [READ-WRITE] selected\r\n"
    if verb == b"CAPABILITY":
        return b"* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n"
    if up.startswith(b"UID SEARCH"):
        return b"* SEARCH 5\r\n{tag} OK\r\n"
    if b"ENVELOPE" in up:
        if case == "deep400":
            return b"* 1 FETCH (UID 5 BODYSTRUCTURE " + nested(400) + b")\r\n{tag} OK\r\n"
        return (b'* 1 FETCH (UID 5 ENVELOPE (NIL "code" NIL NIL NIL NIL NIL NIL NIL "<'
                + TOKEN + b'@sender.test>"))\r\n{tag} OK\r\n')
    if b"BODY.PEEK[]" in up:
        head = b"Message-ID: <" + TOKEN + b"@sender.test>\r\nFrom: a@sender.test\r\n\r\n"
        if case == "big-whole":
            size = 50 * MIB  # ignores the partial fetch
        elif case == "big-partial":
            size = int(up.split(b"<0.")[1].split(b">")[0])  # honours it
        else:
            size = 200
        body = head + b"x" * (size - len(head))
        return (b"* 1 FETCH (UID 5 BODY[] {" + str(len(body)).encode() + b"}\r\n"
                + body + b")\r\n{tag} OK\r\n")
    if verb == b"LOGOUT":
        return b"* BYE\r\n{tag} OK\r\n"
    return b"{tag} OK\r\n"


async def imap_session(case, reader, writer):
    writer.write(b"* OK hostile ready\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            tag, _, command = line.rstrip(b"\r\n").partition(b" ")
            answer = imap_answer(case, command)
            if answer is None:
                await asyncio.sleep(3600)
            writer.write(answer.replace(b"{tag}", tag))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return


async def smtp_session(case, reader, writer):
    if case == "smtp-long-line":
        writer.write(b"220 " + b"x" * (8 * MIB) + b"\r\n")
    else:
        writer.write(b"220 relay.test ESMTP\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            up = line.strip().upper()
            if up.startswith(b"EHLO") and case == "smtp-endless":
                while True:  # 250- lines for ever
                    writer.write(b"250-more\r\n" * 10000)
                    await writer.drain()
            if up.startswith(b"EHLO"):
                writer.write(b"250-relay.test\r\n250 8BITMIME\r\n")
            elif up == b"DATA":
                writer.write(b"354 go\r\n")
                while (await reader.readline()).rstrip(b"\r\n") != b".":
                    pass
                if case == "smtp-silent":
                    await asyncio.sleep(3600)
                writer.write(b"250 ok queued as X1\r\n")
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return


def serve(case, loop_ready):
    loop = asyncio.new_event_loop()

    async def main():
        imap = await asyncio.start_server(lambda r, w: imap_session(case, r, w), "127.0.0.1", 0)
        smtp = await asyncio.start_server(lambda r, w: smtp_session(case, r, w), "127.0.0.1", 0)
        loop_ready.append((imap.sockets[0].getsockname()[1], smtp.sockets[0].getsockname()[1]))
        await asyncio.sleep(3600)

    loop.run_until_complete(main())


CONFIG = """
[daemon]
state_dir = "{dir}/state"
shutdown_grace = "2s"
[http]
listen = "127.0.0.1:0"
[senders.relay]
kind = "smtp"
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "no-reply@sender.test"
timeout = "5s"
[seeds.s1]
provider = "selfhosted"
address = "s1@seed.test"
kind = "imap"
host = "127.0.0.1"
port = {imap}
tls = "none"
username = "s1@seed.test"
password_file = "{dir}/pw"
imap_id = false
[probes.p]
sender = "relay"
seeds = ["s1"]
every = "1m"
timeout = "30s"
template = "{templates}/verification-en.toml"
product = "Bench"
"""


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_case(binary, case):
    ports = []
    threading.Thread(target=serve, args=(case, ports), daemon=True).start()
    while not ports:
        time.sleep(0.01)
    imap, smtp = ports[0]
    with tempfile.TemporaryDirectory() as d:
        with open(f"{d}/pw", "w") as f:
            f.write("hostile-bench-password\n")
        with open(f"{d}/mailcanary.toml", "w") as f:
            f.write(CONFIG.format(dir=d, imap=imap, smtp=smtp, templates=TEMPLATES))
        log = open(f"{d}/log", "w+")
        p = subprocess.Popen([binary, "run", "--config", f"{d}/mailcanary.toml"],
                             stdout=log, stderr=subprocess.STDOUT)
        peak = 0
        start = time.time()
        while time.time() - start < DURATION and p.poll() is None:
            peak = max(peak, vm_hwm(p.pid) or 0)
            time.sleep(0.05)
        alive = p.poll() is None
        peak = max(peak, vm_hwm(p.pid) or 0)
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        log.seek(0)
        lines = [l.strip() for l in log if "refused" in l or "disconnected" in l
                 or "fail" in l or "overflow" in l or "panicked" in l]
    return peak, alive, lines


CASES = ["baseline", "deep400", "promise", "endless-line", "big-whole", "big-partial",
         "smtp-silent", "smtp-long-line", "smtp-endless"]


def main():
    binary = os.environ.get("MAILCANARY_BIN")
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--bin", "mailcanary"], check=True)
        target = os.environ.get("CARGO_TARGET_DIR", "target")
        binary = f"{target}/release/mailcanary"
    cases = sys.argv[1:] or CASES
    print(f"binary: {binary}; {DURATION:.0f} s per case; peak = VmHWM of the daemon")
    print(f"{'case':<16} {'peak MiB':>9}  alive  first matching log line")
    worst = 0
    for case in cases:
        peak, alive, lines = run_case(binary, case)
        worst = max(worst, peak)
        first = lines[0][:150] if lines else "-"
        print(f"{case:<16} {peak / MIB:>9.1f}  {'yes' if alive else 'NO ':<5}  {first}")
    print(f"worst peak: {worst / MIB:.1f} MiB (bound: 100 MiB)")
    sys.exit(0 if worst < 100 * MIB else 1)


if __name__ == "__main__":
    main()
