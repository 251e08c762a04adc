"""What a test does to a storage queue, through the Azure SDK's own client against Azurite:

  queue_tool.py CONNECTION_STRING put QUEUE TEXT   puts TEXT, base64-encoded as Event Grid does
  queue_tool.py CONNECTION_STRING peek QUEUE       prints the queue's messages (decoded), as JSON
  queue_tool.py CONNECTION_STRING put-blob CONTAINER NAME TEXT   writes a blob (the container made)
  queue_tool.py CONNECTION_STRING list-blobs CONTAINER           prints the blobs' names, as JSON
"""

import base64
import json
import sys

from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient


def main():
    connection, verb, name = sys.argv[1:4]
    if verb in ("put-blob", "list-blobs"):
        container = ContainerClient.from_connection_string(connection, name)
        if verb == "put-blob":
            try:
                container.create_container()
            except Exception:  # it exists
                pass
            container.upload_blob(sys.argv[4], sys.argv[5].encode(), overwrite=True)
        else:
            try:
                print(json.dumps([blob.name for blob in container.list_blobs()]))
            except Exception:  # no such container
                print("[]")
        return
    queue = QueueClient.from_connection_string(connection, name)
    if verb == "put":
        try:
            queue.create_queue()
        except Exception:  # it exists
            pass
        queue.send_message(base64.b64encode(sys.argv[4].encode()).decode())
    elif verb == "peek":
        try:
            messages = queue.peek_messages(max_messages=32)
        except Exception:  # no such queue
            messages = []
        out = []
        for message in messages:
            try:
                text = base64.b64decode(message.content, validate=True).decode()
            except Exception:
                text = message.content
            out.append({"id": message.id, "text": text, "dequeueCount": message.dequeue_count})
        print(json.dumps(out))
    else:
        raise SystemExit(f"unknown verb {verb}")


if __name__ == "__main__":
    main()
