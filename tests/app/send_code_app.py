#!/usr/bin/env python3
"""Stand-in for an operator's app with a "send verification code" endpoint.

Usage: send_code_app.py PORT_FILE SMTP_HOST:PORT CODES_FILE MODE [DELAY]

POST /send-code with {"email": ADDRESS} and "Authorization: Bearer $APP_TOKEN"
sends a verification-code mail to ADDRESS through the real Postfix relay, with
envelope sender $APP_RETURN_PATH (default no-reply@sender.test).
It binds 127.0.0.1:0 and writes its port to PORT_FILE; every code it sends
is appended to CODES_FILE (so tests can check the full code never leaks).

MODE: ok | ratelimit (429 + Retry-After: 30) | quota (SendTokenQuotaExceeded)
      | error500 | notfound | slow (answers after DELAY s) | delay (answers at
      once, sends the mail DELAY s later) | reorder (the first request's mail
      is sent DELAY s late, later ones at once)
"""
import json
import os
import random
import smtplib
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, SMTP, CODES_FILE, MODE = sys.argv[1:5]
DELAY = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
TOKEN = os.environ.get("APP_TOKEN", "")
# The envelope sender, where bounces go.
RETURN_PATH = os.environ.get("APP_RETURN_PATH", "no-reply@sender.test")
LOCK = threading.Lock()
SEEN = {"requests": 0}


def send_mail(address, code, date, delay):
    time.sleep(delay)
    msg = EmailMessage()
    msg["From"] = "Example <no-reply@sender.test>"
    msg["To"] = address
    msg["Subject"] = "Your Example verification code"
    msg["Date"] = date  # when the app made the code, not when it was sent
    msg["Message-ID"] = make_msgid(domain="sender.test")
    msg.set_content(f"Your verification code is {code}. It expires in 10 minutes.\n")
    host, port = SMTP.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=10) as s:
        s.send_message(msg, from_addr=RETURN_PATH, to_addrs=[address])


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/send-code" or MODE == "notfound":
            return self.reply(404, {"error": "no such endpoint"})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(401, {"error": "unauthorized"})
        with LOCK:
            SEEN["requests"] += 1
            first = SEEN["requests"] == 1
        if MODE == "ratelimit":
            return self.reply(429, {"error": "too many requests"}, [("Retry-After", "30")])
        if MODE == "quota":
            return self.reply(400, {"error": {"code": "SendTokenQuotaExceeded", "message": "Daily quota reached"}})
        if MODE == "error500":
            return self.reply(500, {"error": "internal"})
        if MODE == "slow":
            time.sleep(DELAY)
        code = f"{random.randint(0, 999999):06d}"
        with LOCK, open(CODES_FILE, "a") as f:
            f.write(code + "\n")
        date = formatdate(usegmt=True)
        late = DELAY if MODE == "delay" or (MODE == "reorder" and first) else 0.0
        if late:
            threading.Thread(target=send_mail, args=(body["email"], code, date, late), daemon=True).start()
        else:
            send_mail(body["email"], code, date, 0.0)
        return self.reply(200, {"ok": True})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if os.environ.get("APP_TLS_CERT"):
    # HTTPS with the stack's server certificate (for localhost).
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["APP_TLS_CERT"], os.environ["APP_TLS_KEY"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
