"""A stand-in for the App Service managed-identity endpoint, for the test suite.

GET /token?resource=R&api-version=2019-08-01 with header X-IDENTITY-HEADER: SECRET answers
{"access_token", "expires_on", "resource", "token_type"} like the platform. The token is shaped
like an Entra ID JWT (issuer, audience, times) but not signed: Azurite's `--oauth basic` checks
those claims, not the signature. A wrong header gets 401. Each request is counted in COUNT_FILE,
and the resource of each token given is added as a line to the file `resources` beside it.
Beside COUNT_FILE, a file `lifetime` sets the tokens' lifetime in seconds (default 3600), and a
file `hang-until` holding a Unix time makes every request wait until then before it answers.
Requests are served each on a thread of their own, so hung ones do not hold up the others.

usage: identity_server.py PORT SECRET COUNT_FILE
"""

import base64
import json
import sys
import time
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with open(COUNT_FILE, "a") as count:
            count.write("x")
        query = parse_qs(urlparse(self.path).query)
        if self.headers.get("X-IDENTITY-HEADER") != SECRET or "resource" not in query:
            self.send_response(401)
            self.end_headers()
            return
        hang_until = control("hang-until")
        while hang_until is not None and time.time() < hang_until:
            time.sleep(0.1)
        lifetime = int(control("lifetime") or 3600)
        now = int(time.time())
        resource = query["resource"][0]
        with open(os.path.join(os.path.dirname(COUNT_FILE), "resources"), "a") as resources:
            resources.write(resource + "\n")
        claims = {"aud": resource.rstrip("/"), "iss": f"https://sts.windows.net/{TENANT}/",
                  "iat": now - 60, "nbf": now - 60, "exp": now + lifetime, "oid": "kv-notify-test"}
        token = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2lnbmF0dXJl"
        body = json.dumps({"access_token": token, "expires_on": str(now + lifetime),
                           "resource": resource, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def control(name):
    """A number from the control file `name` beside COUNT_FILE, or None."""
    try:
        with open(os.path.join(os.path.dirname(COUNT_FILE), name)) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    PORT, SECRET, COUNT_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("ready", flush=True)
    server.serve_forever()
