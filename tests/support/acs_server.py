"""A stand-in for Azure Communication Services Email, for the test suite, over HTTPS.

POST /emails:send?api-version=2023-03-31 with a JSON message, authorised either by an Entra ID
token whose audience is https://communication.azure.com, or by the access key's HMAC-SHA256
signature (recomputed here from the request's method, path, x-ms-date, Host and body hash).
Both repeatability headers are required, as by the real service: the request id a GUID, the
first-sent time an IMF-fixdate within the last 5 minutes (else 412). A repeat of an id already
answered within those 5 minutes gets the first answer again and sends nothing; one whose body
differs gets 400; one that arrives while the first is still being answered gets 409.

The answer is the first line of ANSWER_FILE when it exists: `202` (the default), `400` (a bad
recipient), `400-sender` (a sender not allowed), `403`, `429` (Retry-After: 2), `500`, `hang`,
`fail-later` (202, and the operation then fails) or `stall-operation` (202, and the operation
is never answered). A request to any address starting with `bad` gets 400
(InvalidEmailAddress) whatever the mode. 202 carries Operation-Location; GET on it answers Succeeded (or Failed).

Each accepted request's message is written to OUT_DIR/<n>.eml as MIME, as ACS would send it
(From the sender, To the recipients, a multipart/alternative of the two parts), with an
X-RcptTo header; its repeatability id to OUT_DIR/<n>.id. Every POST adds a line
`<status> <repeatability id> <auth scheme>` to OUT_DIR/requests.log.

usage: acs_server.py PORT CERT KEY OUT_DIR ANSWER_FILE ACCESS_KEY_BASE64
"""

import base64
import email.message
import email.policy
import email.utils
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from urllib.parse import urlparse

from stand_in import JsonHandler, answer_mode, audience, serve

RESOURCE = "https://communication.azure.com"
WINDOW = 300
LOCK = threading.Lock()
SEEN = {}  # repeatability id -> (first seen, body digest, status, body, headers) or None while running
OPERATIONS = {}  # operation id -> final status


class Handler(JsonHandler):
    def authorised(self, body):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return "token" if audience(auth) == RESOURCE else None
        if not auth.startswith("HMAC-SHA256 "):
            return None
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if self.headers.get("x-ms-content-sha256") != content_hash:
            return None
        date = self.headers.get("x-ms-date", "")
        to_sign = f"{self.command}\n{self.path}\n{date};{self.headers.get('Host')};{content_hash}"
        signature = base64.b64encode(
            hmac.new(ACCESS_KEY, to_sign.encode(), hashlib.sha256).digest()).decode()
        expected = ("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
                    f"&Signature={signature}")
        return "key" if hmac.compare_digest(auth, expected) else None

    def do_GET(self):
        scheme = self.authorised(b"")
        if not scheme:
            return self.answer(401, {"error": {"code": "Unauthorized", "message": "bad auth"}})
        parts = urlparse(self.path).path.split("/")
        if len(parts) != 4 or parts[1:3] != ["emails", "operations"]:
            return self.answer(404, {"error": {"code": "NotFound", "message": self.path}})
        with LOCK:
            status = OPERATIONS.get(parts[3])
        if status is None:
            return self.answer(404, {"error": {"code": "NotFound", "message": "no operation"}})
        if status == "stall":
            time.sleep(3600)
        body = {"id": parts[3], "status": status}
        if status == "Failed":
            body["error"] = {"code": "EmailDroppedAllRecipientsSuppressed",
                             "message": "every recipient is on the suppression list"}
        self.answer(200, body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request_id = self.headers.get("repeatability-request-id", "")
        scheme = self.authorised(body)
        status = self.send_mail(body, request_id, scheme)
        with open(os.path.join(OUT_DIR, "requests.log"), "a") as log:
            log.write(f"{status} {request_id or '-'} {scheme or '-'}\n")

    def send_mail(self, body, request_id, scheme):
        if urlparse(self.path).path != "/emails:send" or "api-version=2023-03-31" not in self.path:
            return self.answer(404, {"error": {"code": "NotFound", "message": self.path}})
        if not scheme:
            return self.answer(401, {"error": {"code": "Unauthorized", "message": "bad auth"}})
        try:
            uuid.UUID(request_id)
            first_sent = email.utils.parsedate_to_datetime(
                self.headers.get("repeatability-first-sent", "")).timestamp()
        except (TypeError, ValueError):
            return self.answer(400, {"error": {"code": "InvalidRepeatability", "message": "headers"}})
        if first_sent < time.time() - WINDOW:
            return self.answer(412, {"error": {"code": "PreconditionFailed",
                                               "message": "first-sent is not in the 5-minute window"}})
        digest = hashlib.sha256(body).hexdigest()
        with LOCK:
            if request_id in SEEN:
                seen = SEEN[request_id]
                if seen is None:
                    return self.answer(409, {"error": {"code": "Conflict", "message": "in progress"}})
                if seen[1] != digest:
                    return self.answer(400, {"error": {"code": "RepeatabilityMismatch", "message": "body"}})
                if seen[2] < 500:
                    return self.answer(seen[2], seen[3], seen[4])
            SEEN[request_id] = None
        status, answer, headers = self.decide(body, request_id)
        with LOCK:
            SEEN[request_id] = (time.time(), digest, status, answer, headers)
        return self.answer(status, answer, headers)

    def decide(self, body, request_id):
        mode = answer_mode(ANSWER_FILE)
        message = json.loads(body)
        if any(r["address"].startswith("bad") for r in message["recipients"]["to"]):
            return 400, {"error": {"code": "InvalidEmailAddress", "message": "no such mailbox"}}, {}
        if mode == "hang":
            time.sleep(3600)
        if mode == "400":
            return 400, {"error": {"code": "InvalidEmailAddress", "message": "bad recipient"}}, {}
        if mode == "400-sender":
            return 400, {"error": {"code": "DomainNotLinked", "message": "sender domain"}}, {}
        if mode not in ("202", "fail-later", "stall-operation"):
            code = int(mode)
            headers = {"Retry-After": "2"} if code == 429 else {}
            return code, {"error": {"code": f"Status{code}", "message": "refused"}}, headers
        operation = str(uuid.uuid4())
        with LOCK:
            OPERATIONS[operation] = {"fail-later": "Failed", "stall-operation": "stall"}.get(
                mode, "Succeeded")
            n = len([f for f in os.listdir(OUT_DIR) if f.endswith(".eml")])
            with open(os.path.join(OUT_DIR, f"{n}.eml"), "wb") as f:
                f.write(mime(message))
            with open(os.path.join(OUT_DIR, f"{n}.id"), "w") as f:
                f.write(request_id)
        location = f"https://127.0.0.1:{PORT}/emails/operations/{operation}?api-version=2023-03-31"
        return 202, {"id": operation, "status": "Running"}, {
            "Operation-Location": location, "Retry-After": "0"}


def mime(message):
    """The mail as ACS would send it, for the tests to read like any other."""
    to = [r["address"] for r in message["recipients"]["to"]]
    mail = email.message.EmailMessage(policy=email.policy.SMTP)
    mail["X-RcptTo"] = ", ".join(to)
    mail["From"] = message["senderAddress"]
    mail["To"] = ", ".join(to)
    mail["Subject"] = message["content"]["subject"]
    for name, value in message.get("headers", {}).items():
        mail[name] = value
    mail.set_content(message["content"]["plainText"])
    mail.add_alternative(message["content"]["html"], subtype="html")
    return mail.as_bytes()


if __name__ == "__main__":
    port, cert, key, OUT_DIR, ANSWER_FILE, access_key = sys.argv[1:7]
    PORT = int(port)
    ACCESS_KEY = base64.b64decode(access_key)
    serve(Handler, PORT, cert, key)
