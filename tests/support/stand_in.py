"""What the HTTPS mail stand-ins (graph_server.py, acs_server.py) share: reading a token's
audience, the answer chosen by the test, a JSON reply, and serving over TLS."""

import base64
import json
import os
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def audience(header):
    """The `aud` claim of the bearer token in an Authorization header (not verified: the
    stand-in identity does not sign), or None."""
    try:
        payload = header.split(" ", 1)[1].split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload))["aud"]
    except (IndexError, KeyError, ValueError):
        return None


def answer_mode(answer_file, default="202"):
    """The first line of the test's answer file, or the default."""
    if os.path.exists(answer_file):
        with open(answer_file) as f:
            return f.readline().strip() or default
    return default


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, code, body, headers=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if data:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)
        return code

    def log_message(self, *args):
        pass


def serve(handler, port, cert, key):
    """Serves `handler` on 127.0.0.1:port over TLS, after saying `ready`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()
