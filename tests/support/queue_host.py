"""The Functions host's queue listener, for the test suite: what the host does for a
`queueTrigger` function, against Azurite's Queue service, with the retry timings scaled down.

It polls QUEUE, and for each message POSTs the invocation a custom handler gets,
`{"Data": {"message": <the text, base64-decoded as host.json's messageEncoding says>},
"Metadata": {"DequeueCount", "Id", "InsertionTime", "ExpirationTime", "PopReceipt", "sys"}}`, to
HANDLER_URL/event-queue. A 2xx answer deletes the message. Any other answer (or none) leaves it
to become visible again after host.json's `visibilityTimeout` (divided by SCALE); after
`maxDequeueCount` tries the message is moved to QUEUE-poison, as the host does. Each invocation
adds a line `<id> <dequeue count> <status>` to LOG.

usage: queue_host.py CONNECTION_STRING HANDLER_URL HOST_JSON SCALE LOG
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request

from azure.storage.queue import QueueClient

QUEUE = "kv-notify-events"


def main():
    connection, handler, host_json, scale, log = sys.argv[1:6]
    with open(host_json) as f:
        settings = json.load(f)["extensions"]["queues"]
    h, m, s = (int(x) for x in settings["visibilityTimeout"].split(":"))
    hidden = max(1, round((h * 3600 + m * 60 + s) / float(scale)))
    tries = int(settings["maxDequeueCount"])
    base64_messages = settings.get("messageEncoding", "base64") == "base64"
    queue = QueueClient.from_connection_string(connection, QUEUE)
    poison = QueueClient.from_connection_string(connection, QUEUE + "-poison")
    for client in (queue, poison):
        try:
            client.create_queue()
        except Exception:  # it exists
            pass
    print("ready", flush=True)
    while True:
        got = False
        for message in queue.receive_messages(messages_per_page=16, visibility_timeout=hidden):
            got = True
            text = message.content
            if base64_messages:
                text = base64.b64decode(text).decode("utf-8", "replace")
            body = json.dumps({
                "Data": {"message": text},
                "Metadata": {
                    "DequeueCount": message.dequeue_count,
                    "Id": message.id,
                    "InsertionTime": message.inserted_on.isoformat() if message.inserted_on else None,
                    "ExpirationTime": message.expires_on.isoformat() if message.expires_on else None,
                    "PopReceipt": message.pop_receipt,
                    "sys": {"MethodName": "event-queue"},
                },
            }).encode()
            request = urllib.request.Request(handler + "/event-queue", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            except Exception:
                status = 0
            with open(log, "a") as f:
                f.write(f"{message.id} {message.dequeue_count} {status}\n")
            if 200 <= status < 300:
                queue.delete_message(message)
            elif message.dequeue_count >= tries:
                poison.send_message(message.content)
                queue.delete_message(message)
        if not got:
            time.sleep(0.2)


if __name__ == "__main__":
    main()
