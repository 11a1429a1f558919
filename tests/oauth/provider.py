#!/usr/bin/env python3
"""A small OAuth 2.0 provider for the test stack, standing in for Google's or
Microsoft's token endpoint and for the token check behind Dovecot's oauth2
passdb.

  POST /token        RFC 6749 §6 refresh-token grant (form). Answers like the
                     big providers: 400 invalid_grant for an unknown, expired
                     or revoked refresh token, 401 invalid_client for a wrong
                     client id/secret, 200 with access_token/expires_in (and a
                     new refresh_token when the client rotates).
  POST /introspect   RFC 7662 introspection (form `token=`), for Dovecot's
                     `introspection_mode = post`: {"active": true, "username": …}
                     while the access token is live, {"active": false} after.

Tests drive it through /admin (JSON, loopback only like everything else):
  POST /admin/clients           {"user", "ttl"?, "rotate"?} -> {"client_id",
                                "client_secret", "refresh_token"}
  POST /admin/revoke            {"client_id", "what": "refresh" (all refresh tokens) |
                                "original" (the first one only) | "access"}
  GET  /admin/stats?client_id=  {"refreshes", "refused" (token requests turned
                                down), "introspections", "inactive" (tokens Dovecot
                                asked about that were dead), "last_access_token_expires"}

Every client is independent, so tests running in parallel do not meet.
Usage: provider.py HOST PORT [STACK_DIR]  (STACK_DIR only marks the process as the
stack's, for tests/stack/ctl.sh, which stops only processes that name it)
"""

import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
CLIENTS = {}  # client_id -> dict
ACCESS = {}  # access token -> (client_id, expires)


def new_client(user, ttl, rotate):
    cid = "client-" + secrets.token_hex(6)
    first = secrets.token_urlsafe(24)
    c = {
        "user": user,
        "secret": secrets.token_urlsafe(18),
        "original": first,
        "refresh": {first},
        "ttl": ttl,
        "rotate": rotate,
        "refreshes": 0,
        "refused": 0,
        "introspections": 0,
        "inactive": 0,
        "last_expires": 0,
    }
    CLIENTS[cid] = c
    return cid, c


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tokens would show in URLs of GETs
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def form(self):
        return {k: v[0] for k, v in parse_qs(self.body().decode()).items()}

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/admin/stats":
            cid = parse_qs(u.query).get("client_id", [""])[0]
            with LOCK:
                c = CLIENTS.get(cid)
                if not c:
                    return self.reply(404, {"error": "no such client"})
                return self.reply(200, {
                    "refreshes": c["refreshes"],
                    "refused": c["refused"],
                    "introspections": c["introspections"],
                    "inactive": c["inactive"],
                    "last_access_token_expires": c["last_expires"],
                })
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        path = urlparse(self.path).path
        if path == "/token":
            return self.token(self.form())
        if path == "/introspect":
            return self.introspect(self.form())
        if path == "/admin/clients":
            req = json.loads(self.body() or b"{}")
            with LOCK:
                cid, c = new_client(req["user"], int(req.get("ttl", 3600)), bool(req.get("rotate", False)))
                return self.reply(200, {"client_id": cid, "client_secret": c["secret"],
                                        "refresh_token": c["original"]})
        if path == "/admin/revoke":
            req = json.loads(self.body() or b"{}")
            with LOCK:
                c = CLIENTS.get(req.get("client_id"))
                if not c:
                    return self.reply(404, {"error": "no such client"})
                if req.get("what") == "refresh":
                    c["refresh"].clear()
                elif req.get("what") == "original":
                    c["refresh"].discard(c["original"])
                else:
                    for tok, (cid, _) in list(ACCESS.items()):
                        if cid == req["client_id"]:
                            ACCESS[tok] = (cid, 0)
                return self.reply(200, {})
        self.reply(404, {"error": "not found"})

    def token(self, f):
        with LOCK:
            c = CLIENTS.get(f.get("client_id", ""))
            if f.get("grant_type") != "refresh_token":
                return self.reply(400, {"error": "unsupported_grant_type"})
            if not c or f.get("client_secret") != c["secret"]:
                if c:
                    c["refused"] += 1
                return self.reply(401, {"error": "invalid_client", "error_description": "Unauthorized"})
            rt = f.get("refresh_token", "")
            if rt not in c["refresh"]:
                c["refused"] += 1
                return self.reply(400, {"error": "invalid_grant",
                                        "error_description": "Token has been expired or revoked."})
            c["refreshes"] += 1
            tok = "at-" + secrets.token_urlsafe(24)
            expires = time.time() + c["ttl"]
            ACCESS[tok] = (f["client_id"], expires)
            c["last_expires"] = int(expires)
            out = {"access_token": tok, "token_type": "Bearer", "expires_in": c["ttl"],
                   "scope": f.get("scope", "")}
            if c["rotate"]:
                new = secrets.token_urlsafe(24)
                c["refresh"].add(new)  # the old one stays valid, as at Microsoft
                out["refresh_token"] = new
            return self.reply(200, out)

    def introspect(self, f):
        with LOCK:
            cid, expires = ACCESS.get(f.get("token", ""), (None, 0))
            c = CLIENTS.get(cid)
            if c:
                c["introspections"] += 1
            if not c or expires < time.time():
                if c:
                    c["inactive"] += 1
                return self.reply(200, {"active": False})
            return self.reply(200, {"active": True, "username": c["user"], "client_id": cid,
                                    "exp": int(expires)})


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
