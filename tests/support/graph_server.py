"""A stand-in for Microsoft Graph's sendMail, for the test suite, over HTTPS.

POST /v1.0/users/{sender}/sendMail with `Authorization: Bearer <token>` and a base64 MIME body
(`Content-Type: text/plain`). A token whose audience is not this service's own URL (as a token
for https://graph.microsoft.com is for the real one) gets 401. The answer is the first line of ANSWER_FILE when it exists (`403`, `429`, `500`, `hang`),
else 202. Every accepted request's decoded MIME is written to OUT_DIR/<n>.eml, with an X-RcptTo header
naming whom Graph would deliver it to (the addresses in its To, Cc and Bcc headers, as for the
SMTP server's envelope), and the sender path segment in OUT_DIR/<n>.sender; every request, accepted or not, adds a line to
OUT_DIR/requests.log.

GET /v1.0/applications and /v1.0/servicePrincipals (and the @odata.nextLink they give) list
OUT_DIR/applications.json and OUT_DIR/servicePrincipals.json, two a page (OUT_DIR/page_size sets
another size), with their passwordCredentials and keyCredentials, to a token for this service
(as Graph, $select and $filter are not needed to get them, and the $filter is not applied: the
list holds managed identities and other tenants' principals). OUT_DIR/applications.answer
(`403`) refuses them with Authorization_RequestDenied. GET /v1.0/{applications|servicePrincipals}/{id}/owners
answers the list OUT_DIR/owners.json holds under that id; GET /v1.0/directoryObjects/{id} the
object OUT_DIR/directoryObjects.json holds under that id (404 when none); with OUT_DIR/owners.idonly present,
users come back as Graph gives them to an identity without User.Read.All: `@odata.type` and
`id` alone. OUT_DIR/throttle holding N answers the next N GETs 429 with `Retry-After: 1`
(OUT_DIR/throttle_batched: the next N requests in batches);
OUT_DIR/delay_ms delays every request by that many milliseconds. POST /v1.0/$batch answers up to
20 such GETs in one request, each as its own request would be (a throttled one 429 in its place).
Every request adds a line to OUT_DIR/requests.log (`GET …`, `POST /v1.0/$batch`, and `BATCHED GET
…` for each request of a batch).

usage: graph_server.py PORT CERT KEY OUT_DIR ANSWER_FILE
"""

import base64
import email
import email.utils
import json
import os
import sys
import threading
import time
from urllib.parse import unquote

from stand_in import JsonHandler, answer_mode, audience, serve


LOCK = threading.Lock()


class Handler(JsonHandler):
    def do_GET(self):
        with open(os.path.join(OUT_DIR, "requests.log"), "a") as log:
            log.write("GET " + self.path + "\n")
        delay = control("delay_ms")
        if delay:
            time.sleep(int(delay) / 1000)
        if audience(self.headers.get("Authorization", "")) != f"https://127.0.0.1:{PORT}":
            return self.answer(401, {"error": {"code": "InvalidAuthenticationToken"}})
        self.answer(*read(self.path))

    def batch(self, body):
        """POST /v1.0/$batch: up to 20 GETs, each answered as its own request would be."""
        with open(os.path.join(OUT_DIR, "requests.log"), "a") as log:
            log.write("POST /v1.0/$batch\n")
        delay = control("delay_ms")
        if delay:
            time.sleep(int(delay) / 1000)
        if audience(self.headers.get("Authorization", "")) != f"https://127.0.0.1:{PORT}":
            return self.answer(401, {"error": {"code": "InvalidAuthenticationToken"}})
        requests = json.loads(body).get("requests", [])
        if len(requests) > 20:
            return self.answer(400, {"error": {"code": "BadRequest", "message": "at most 20 requests"}})
        responses = []
        with open(os.path.join(OUT_DIR, "requests.log"), "a") as log:
            for request in requests:
                log.write("BATCHED " + request["method"] + " " + request["url"] + "\n")
                code, answer, headers = read(request["url"], batched=True)
                responses.append({"id": request["id"], "status": code, "headers": headers or {}, "body": answer})
        self.answer(200, {"responses": responses})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1.0/$batch":
            return self.batch(body)
        with open(os.path.join(OUT_DIR, "requests.log"), "a") as log:
            log.write(self.path + "\n")
        parts = self.path.split("/")
        if len(parts) != 5 or parts[1:3] != ["v1.0", "users"] or parts[4] != "sendMail":
            return self.answer(404, {"error": {"code": "NotFound"}})
        if audience(self.headers.get("Authorization", "")) != f"https://127.0.0.1:{PORT}":
            return self.answer(401, {"error": {"code": "InvalidAuthenticationToken"}})
        if self.headers.get("Content-Type") != "text/plain":
            return self.answer(400, {"error": {"code": "ErrorMimeContentInvalid"}})
        answer = answer_mode(ANSWER_FILE)
        if answer == "hang":
            time.sleep(3600)
        if answer != "202":
            code = int(answer)
            headers = {"Retry-After": "2"} if code == 429 else {}
            return self.answer(code, {"error": {"code": f"Status{code}", "message": "refused"}}, headers)
        try:
            mime = base64.b64decode(body, validate=True)
        except ValueError:
            return self.answer(400, {"error": {"code": "ErrorMimeContentInvalidBase64String"}})
        message = email.message_from_bytes(mime)
        headers = [v for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]
        recipients = ", ".join(address for _, address in email.utils.getaddresses(headers))
        mime = f"X-RcptTo: {recipients}\r\n".encode() + mime
        with LOCK:  # requests run on threads of their own: number the mails one at a time
            n = len([f for f in os.listdir(OUT_DIR) if f.endswith(".eml")])
            with open(os.path.join(OUT_DIR, f"{n}.sender"), "w") as f:
                f.write(unquote(parts[3]))
            with open(os.path.join(OUT_DIR, f"{n}.eml"), "wb") as f:
                f.write(mime)
        self.answer(202, None)


def read(path_and_query, batched=False):
    """The answer to a GET of Graph's lists or an application's owners: (code, body, headers).
    The throttle of requests in a batch is OUT_DIR/throttle_batched."""
    path, _, query = path_and_query.partition("?")
    parts = path.split("/")
    throttle_file = "throttle_batched" if batched else "throttle"
    with LOCK:
        throttle = int(control(throttle_file) or 0)
        if throttle > 0:
            with open(os.path.join(OUT_DIR, throttle_file), "w") as f:
                f.write(str(throttle - 1))
    if throttle > 0:
        return 429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "1"}
    if answer_mode(os.path.join(OUT_DIR, "applications.answer"), "200") == "403":
        return 403, {"error": {"code": "Authorization_RequestDenied",
                               "message": "Insufficient privileges to complete the operation."}}, None
    if len(parts) == 4 and parts[1] == "v1.0" and parts[2] == "directoryObjects":
        found = load("directoryObjects.json", {}).get(parts[3])
        if found is None:
            return 404, {"error": {"code": "Request_ResourceNotFound"}}, None
        return 200, found, None
    if len(parts) == 5 and parts[1] == "v1.0" and parts[4] == "owners":
        owners = load("owners.json", {}).get(parts[3], [])
        if os.path.exists(os.path.join(OUT_DIR, "owners.idonly")):
            owners = [{"@odata.type": o["@odata.type"], "id": o["id"]}
                      if o.get("@odata.type") == "#microsoft.graph.user" else o for o in owners]
        return 200, {"value": owners}, None
    if len(parts) != 3 or parts[2] not in ("applications", "servicePrincipals"):
        return 404, {"error": {"code": "Request_ResourceNotFound"}}, None
    listed = load(f"{parts[2]}.json", [])
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    start = int(params.get("$skiptoken", "0"))
    size = int(control("page_size") or 2)
    page = {"value": listed[start:start + size]}
    if start + size < len(listed):
        page["@odata.nextLink"] = f"https://127.0.0.1:{PORT}/v1.0/{parts[2]}?$skiptoken={start + size}"
    return 200, page, None


def control(name):
    """The first line of the control file `name` in OUT_DIR, or None."""
    path = os.path.join(OUT_DIR, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.readline().strip() or None


def load(name, default):
    """The JSON in OUT_DIR's file `name` (read once and kept while it is unchanged)."""
    path = os.path.join(OUT_DIR, name)
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return default
    with LOCK:
        cached = CACHE.get(name)
        if cached and cached[0] == stamp:
            return cached[1]
    with open(path) as f:
        value = json.load(f)
    with LOCK:
        CACHE[name] = (stamp, value)
    return value


CACHE = {}


if __name__ == "__main__":
    port, cert, key, OUT_DIR, ANSWER_FILE = sys.argv[1:6]
    PORT = int(port)
    serve(Handler, PORT, cert, key)
