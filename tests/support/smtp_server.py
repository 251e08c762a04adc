"""A real SMTP server for the test suite, built on aiosmtpd.

Messages are stored one file per message in DIR/new (Maildir), with X-MailFrom and X-RcptTo
headers, exactly like `python3 -m aiosmtpd -c aiosmtpd.handlers.Mailbox DIR`. Options make it
misbehave on purpose:

  --reject-rcpt ADDR   answer 550 to RCPT TO:<ADDR> (a permanent refusal)
  --tempfail-rcpt ADDR answer 451 to RCPT TO:<ADDR> (a temporary refusal)
  --tempfail-data      answer 451 to DATA (a temporary failure)
  --fail-data-code N   answer N to DATA (e.g. 554)
  --slow-first-data S  on each connection, store the first message but answer its end of data
                       only after S seconds (a server that stalls mid-transaction)
  --refuse-reused      on each connection, answer 550 to every message after the first without
                       storing it (so a client that reads a stale reply is caught)
  --slow-data S        store every message but answer its end of data only after S seconds
  --xoauth2 AUDIENCE   require AUTH XOAUTH2 (RFC 7628's Google/Microsoft form) before MAIL, with a
                       JWT-shaped bearer token whose audience is AUDIENCE; each login goes to
                       DIR/logins.log as "<user> <audience>"

Every accepted message also gets a line in DIR/accepted.log: the Unix time at which its 250
was sent, and its Subject (to tell how long before a crash a mail was accepted).
"""

import argparse
import asyncio
import base64
import binascii
import email
import json
import os
import signal
import time

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult


class Handler(Mailbox):
    def __init__(self, maildir, reject_rcpt, tempfail_rcpt, data_code, slow_first_data, refuse_reused, slow_data,
                 xoauth2=None):
        super().__init__(maildir)
        self.xoauth2 = xoauth2
        self.maildir_path = maildir
        self.reject_rcpt = {a.lower() for a in reject_rcpt}
        self.tempfail_rcpt = {a.lower() for a in tempfail_rcpt}
        self.data_code = data_code
        self.slow_first_data = slow_first_data
        self.refuse_reused = refuse_reused
        # Every message: store it, answer its end of data this late.
        self.slow_data = slow_data

    async def auth_XOAUTH2(self, server, args):
        # args: ["XOAUTH2", base64("user=U\x01auth=Bearer T\x01\x01")]
        try:
            fields = base64.b64decode(args[1]).decode().split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
            claims = token.split(".")[1]
            audience = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["aud"]
        except (IndexError, KeyError, ValueError, binascii.Error):
            return AuthResult(success=False, handled=False)
        with open(os.path.join(self.maildir_path, "logins.log"), "a") as log:
            log.write(f"{user} {audience}\n")
        return AuthResult(success=audience == self.xoauth2, handled=False, auth_data=user)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject_rcpt:
            return "550 5.1.1 mailbox unavailable"
        if address.lower() in self.tempfail_rcpt:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_code:
            return f"{self.data_code} refused by test server"
        # aiosmtpd keeps one session object per connection.
        session.messages = getattr(session, "messages", 0) + 1
        if session.messages > 1 and self.refuse_reused:
            return "550 5.7.0 refused: not the first message on this connection"
        answer = await super().handle_DATA(server, session, envelope)
        if session.messages == 1 and self.slow_first_data:
            await asyncio.sleep(self.slow_first_data)
        if self.slow_data:
            await asyncio.sleep(self.slow_data)
        if answer.startswith("250"):
            subject = email.message_from_bytes(envelope.original_content or b"").get("Subject", "")
            with open(os.path.join(self.maildir_path, "accepted.log"), "a") as log:
                log.write(f"{time.time():.6f} {' '.join(str(subject).split())}\n")
        return answer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("maildir")
    parser.add_argument("--reject-rcpt", action="append", default=[])
    parser.add_argument("--tempfail-rcpt", action="append", default=[])
    parser.add_argument("--tempfail-data", action="store_true")
    parser.add_argument("--fail-data-code", type=int, default=0)
    parser.add_argument("--slow-first-data", type=float, default=0)
    parser.add_argument("--refuse-reused", action="store_true")
    parser.add_argument("--slow-data", type=float, default=0)
    parser.add_argument("--xoauth2")
    args = parser.parse_args()
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
    code = 451 if args.tempfail_data else args.fail_data_code
    controller = Controller(
        Handler(
            args.maildir, args.reject_rcpt, args.tempfail_rcpt, code, args.slow_first_data, args.refuse_reused,
            args.slow_data, args.xoauth2,
        ), hostname="127.0.0.1", port=args.port,
        # Only XOAUTH2 is offered, and required, when asked for; over plain TCP, as on loopback.
        auth_required=bool(args.xoauth2), auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN", "PLAIN"] if args.xoauth2 else [],
    )
    controller.start()
    print("ready", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
