"""A stand-in for Microsoft Graph's sendMail, for the test suite, over HTTPS.

POST /v1.0/users/{sender}/sendMail with `Authorization: Bearer <token>` and a base64 MIME body
(`Content-Type: text/plain`). A token whose audience is not this service's own URL (as a token
for https://graph.microsoft.com is for the real one) gets 401. The answer is the first line of ANSWER_FILE when it exists (`403`, `429`, `500`, `hang`),
else 202. Every accepted request's decoded MIME is written to OUT_DIR/<n>.eml, with an X-RcptTo header
naming whom Graph would deliver it to (the addresses in its To, Cc and Bcc headers, as for the
SMTP server's envelope), and the sender path segment in OUT_DIR/<n>.sender; every request, accepted or not, adds a line to
OUT_DIR/requests.log.

GET /v1.0/applications (and the @odata.nextLink it gives) lists the applications of
OUT_DIR/applications.json, two a page, with their passwordCredentials and keyCredentials, to a
token for this service; OUT_DIR/applications.answer (`403`) refuses instead.

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
        path, _, query = self.path.partition("?")
        if path != "/v1.0/applications":
            return self.answer(404, {"error": {"code": "Request_ResourceNotFound"}})
        if audience(self.headers.get("Authorization", "")) != f"https://127.0.0.1:{PORT}":
            return self.answer(401, {"error": {"code": "InvalidAuthenticationToken"}})
        if answer_mode(os.path.join(OUT_DIR, "applications.answer"), "200") == "403":
            return self.answer(403, {"error": {"code": "Authorization_RequestDenied",
                                               "message": "Insufficient privileges to complete the operation."}})
        apps_file = os.path.join(OUT_DIR, "applications.json")
        apps = json.load(open(apps_file)) if os.path.exists(apps_file) else []
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        start = int(params.get("$skiptoken", "0"))
        page = {"value": apps[start:start + 2]}
        if start + 2 < len(apps):
            page["@odata.nextLink"] = f"https://127.0.0.1:{PORT}/v1.0/applications?$skiptoken={start + 2}"
        self.answer(200, page)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
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


if __name__ == "__main__":
    port, cert, key, OUT_DIR, ANSWER_FILE = sys.argv[1:6]
    PORT = int(port)
    serve(Handler, PORT, cert, key)
