"""Instructions per invocation, counted by callgrind: the bare handler, the floor handler and
kv-notify each serve the same NewVersionCreated invocations under valgrind, and the count over
a fixed number of them (after a warm-up) is divided by that number.

Unlike throughput, the count does not move with the machine's load, so a change of a few
percent in the handler's own work shows. It counts user-space instructions only: not the
kernel's share, not cache misses.

Run through scripts/bench-instructions, which installs valgrind and builds the binaries.
"""

import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

INVOCATIONS = int(os.environ.get("BENCH_INVOCATIONS", "2000"))
CLIENTS = 4
HEADERS = {"Content-Type": "application/json",
           "X-Azure-Functions-InvocationId": "5b6a8a0e-2a1c-4f7e-9d61-0c2f4e1b7a90"}


def post_many(port, body, count):
    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(n):
            conn.request("POST", "/function-trigger", body, HEADERS)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"answer {response.status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(count // CLIENTS,)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def instructions(binary, env, body):
    work = tempfile.mkdtemp()
    out = os.path.join(work, "callgrind.out")
    handler = bench.Handler(binary, env, ready_within=120,
                            wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    try:
        post_many(handler.port, body, 400)  # warm-up: connections, buffers, allocator pages
        subprocess.run(["callgrind_control", "--zero", str(handler.proc.pid)], check=True, capture_output=True)
        post_many(handler.port, body, INVOCATIONS)
        subprocess.run(["callgrind_control", "--dump", str(handler.proc.pid)], check=True, capture_output=True)
    finally:
        handler.stop()
    dumps = sorted(f for f in os.listdir(work) if f.startswith("callgrind.out."))
    with open(os.path.join(work, dumps[0])) as f:
        total = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
    return total / (INVOCATIONS // CLIENTS * CLIENTS)


def main():
    work = tempfile.mkdtemp()
    kv_env = {"LEDGER_PATH": os.path.join(work, "ledger.redb"), "OUTBOX_DIR": os.path.join(work, "outbox")}
    body = bench.envelope(bench.event("SecretNewVersionCreated")).encode()
    bare = instructions(bench.BARE, {}, body)
    floor = instructions(bench.FLOOR, {}, body)
    kv = instructions(bench.KV, kv_env, body)
    print(f"instructions per NewVersionCreated invocation ({INVOCATIONS} invocations, user space):")
    print(f"  bare      {bare:8,.0f}")
    print(f"  floor     {floor:8,.0f} = bare + {floor - bare:,.0f}")
    print(f"  kv-notify {kv:8,.0f} = bare + {kv - bare:,.0f} = floor + {kv - floor:,.0f} ({kv / floor - 1:+.0%})")


if __name__ == "__main__":
    main()
