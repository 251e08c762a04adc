"""A stand-in for Azure Key Vault's data plane over HTTPS, for the test suite and the benchmark.

Serves several vaults on one port, told apart by the Host header (kv-a.localhost, ...):
  GET /{secrets|keys|certificates}?api-version=&maxresults=N[&$skiptoken=K]  pages of items
      (id or kid, attributes with epoch-second enabled/exp/nbf/created/updated, tags, managed),
      never values; nextLink is absolute and null on the last page.
  GET /{kind}/{name}/versions?...   pages of an object's versions (ids with the version): the
      current one (`version`, default a digest of the name) and any `older` ones.
  GET /certificates/{name}/policy   the certificate's policy (AutoRenew or EmailContacts).
Like Key Vault, a request without a bearer token gets 401 with the challenge the official
clients start with; a token for another resource (its `aud`) gets 401 too. Any other path,
in particular a secret's value (/secrets/{name}[/{version}]), gets 403 and is logged as a
violation.

The vaults' contents are read from STATE (JSON, reloaded when it changes):
  {"vaults": {"kv-a": {"secrets": [{"name", "version", "older", "exp", "nbf", "enabled",
                                    "managed", "tags"}],
                        "keys": [...], "certificates": [{..., "autoRenew": true}]}},
   "deny": {"kv-b": "ForbiddenByRbac"},           # 403 with that inner error code
   "throttle": {"kv-a": {"count": 3, "retryAfter": 1}}}   # the next 3 requests get 429
Each request is appended to LOG as "HOST METHOD PATH STATUS".

usage: vault_server.py PORT CERT KEY STATE LOG RESOURCE [LATENCY_MS] [LIMIT_PER_10S]
"""

import base64
import hashlib
import json
import os
import ssl
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse, unquote

LOCK = threading.Lock()
STATE = {"mtime": None, "data": {}, "throttle": {}}
WINDOWS = {}
KINDS = {"secrets", "keys", "certificates"}


def load_state():
    mtime = os.stat(STATE_FILE).st_mtime_ns
    if STATE["mtime"] != mtime:
        with open(STATE_FILE) as f:
            data = json.load(f)
        STATE.update(mtime=mtime, data=data,
                     throttle={k: dict(v) for k, v in data.get("throttle", {}).items()})
    return STATE["data"]


def audience(header):
    if not header or not header.startswith("Bearer "):
        return None
    try:
        payload = header[7:].split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload)).get("aud")
    except (IndexError, ValueError):
        return None


def version_of(obj):
    return obj.get("version") or hashlib.md5(obj["name"].encode()).hexdigest()


def versions(obj):
    """The object's versions, oldest first: the older ones, then the current one."""
    older = [{"name": obj["name"], "version": v, "created": 1600000000 + n, "exp": None}
             for n, v in enumerate(obj.get("older", []))]
    return older + [dict(obj, version=version_of(obj))]


def item(vault, kind, obj, with_version=False):
    url = f"https://{vault}.localhost:{PORT}/{kind}/{obj['name']}"
    if with_version:
        url += "/" + version_of(obj)
    created = obj.get("created", 1700000000)
    attributes = {"enabled": obj.get("enabled", True), "created": created,
                  "updated": created, "recoveryLevel": "Recoverable+Purgeable"}
    for field in ("exp", "nbf"):
        if obj.get(field) is not None:
            attributes[field] = obj[field]
    out = {"attributes": attributes, "tags": obj.get("tags", {})}
    out["kid" if kind == "keys" else "id"] = url
    if obj.get("managed"):
        out["managed"] = True
    if kind == "certificates":
        out["x5t"] = "fLi3U52HunIVNXubkEnf8tP6Wbo"
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        vault = host.removesuffix(".localhost")
        status, body, headers = self.answer(vault)
        if LATENCY:
            time.sleep(LATENCY)
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with LOCK, open(LOG_FILE, "a") as log:
            log.write(f"{vault} GET {self.path} {status}\n")

    def answer(self, vault):
        if audience(self.headers.get("Authorization")) != RESOURCE:
            challenge = (f'Bearer authorization="https://login.microsoftonline.com/tenant", '
                         f'resource="{RESOURCE}"')
            return 401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is "
                                   "missing a Bearer or PoP token."}}, {"WWW-Authenticate": challenge}
        with LOCK:
            state = load_state()
            if LIMIT and self.over_limit(vault):
                return 429, {"error": {"code": "Throttled", "message": "Rate limit exceeded"}}, {}
            throttle = STATE["throttle"].get(vault)
            if throttle and throttle.get("count", 0) > 0:
                throttle["count"] -= 1
                headers = {}
                if throttle.get("retryAfter") is not None:
                    headers["Retry-After"] = str(throttle["retryAfter"])
                return 429, {"error": {"code": "Throttled", "message": "Too many requests"}}, headers
        if vault in state.get("deny", {}):
            code = state["deny"][vault]
            return 403, {"error": {"code": "Forbidden", "message": f"Caller is not authorized ({code})",
                                   "innererror": {"code": code}}}, {}
        contents = state.get("vaults", {}).get(vault)
        if contents is None:
            return 404, {"error": {"code": "VaultNotFound", "message": "no such vault"}}, {}
        url = urlparse(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        query = parse_qs(url.query)
        if len(parts) == 1 and parts[0] in KINDS:
            return 200, self.page(vault, parts[0], contents.get(parts[0], []), query), {}
        if len(parts) == 3 and parts[0] in KINDS and parts[2] == "versions":
            obj = next((o for o in contents.get(parts[0], []) if o["name"] == parts[1]), None)
            if obj is None:
                return 404, {"error": {"code": "NotFound", "message": "no such object"}}, {}
            return 200, self.page(vault, parts[0], versions(obj), query,
                                  f"{parts[0]}/{parts[1]}/versions", True), {}
        if len(parts) == 3 and parts[0] == "certificates" and parts[2] == "policy":
            cert = next((c for c in contents.get("certificates", []) if c["name"] == parts[1]), None)
            if cert is None:
                return 404, {"error": {"code": "CertificateNotFound", "message": "no such certificate"}}, {}
            action = "AutoRenew" if cert.get("autoRenew") else "EmailContacts"
            return 200, {"id": f"https://{vault}.localhost/certificates/{parts[1]}/policy",
                         "issuer": {"name": "Self"},
                         "lifetime_actions": [{"trigger": {"lifetime_percentage": 80},
                                               "action": {"action_type": action}}]}, {}
        with LOCK, open(LOG_FILE + ".violations", "a") as log:
            log.write(f"{vault} GET {self.path}\n")
        return 403, {"error": {"code": "Forbidden", "message": "not served by the test vault"}}, {}

    def page(self, vault, kind, objects, query, path=None, with_version=False):
        size = min(int(query.get("maxresults", ["25"])[0]), 25)
        start = int(query.get("$skiptoken", ["0"])[0])
        items = [item(vault, kind, o, with_version) for o in objects[start:start + size]]
        following = start + size
        link = None
        if following < len(objects):
            link = (f"https://{vault}.localhost:{PORT}/{path or kind}?api-version=7.5"
                    f"&$skiptoken={following}&maxresults={size}")
        return {"value": items, "nextLink": link}

    def over_limit(self, vault):
        now = time.monotonic()
        window = WINDOWS.setdefault(vault, deque())
        while window and now - window[0] > 10:
            window.popleft()
        if len(window) >= LIMIT:
            return True
        window.append(now)
        return False

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    PORT = int(sys.argv[1])
    CERT, KEY, STATE_FILE, LOG_FILE, RESOURCE = sys.argv[2:7]
    LATENCY = float(sys.argv[7]) / 1000 if len(sys.argv) > 7 else 0
    LIMIT = int(sys.argv[8]) if len(sys.argv) > 8 else 0
    open(LOG_FILE, "a").close()
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()
