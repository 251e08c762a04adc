"""kv-notify benchmarks: start-up, throughput and latency against a bare warp handler (no work)
and a floor handler (only the JSON work of the job: examples/typed_handler.rs), memory,
binary size, a mail burst through a real SMTP server (pooled and not), and growth with event
size and batch size. Prints medians over repeated runs.

Run through scripts/bench, which installs wrk and aiosmtpd and builds the release binaries.
"""

import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KV = os.path.join(ROOT, "target/release/kv-notify")
BARE = os.path.join(ROOT, "target/release/examples/bare_handler")
FLOOR = os.path.join(ROOT, "target/release/examples/typed_handler")
SMTP = os.path.join(ROOT, "tests/support/smtp_server.py")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
DURATION = os.environ.get("BENCH_DURATION", "5s")
CONNECTIONS = 32
BURST = int(os.environ.get("BENCH_BURST", "2000"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
TOPIC = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/prod-kv"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event(event_type, name="db-password", exp=1900000000, padding=0):
    data = {
        "Id": f"https://prod-kv.vault.azure.net/secrets/{name}/5b2f0c1e8d9a4f7b",
        "VaultName": "prod-kv", "ObjectType": "Secret", "ObjectName": name,
        "Version": "5b2f0c1e8d9a4f7b", "NBF": 1700000000, "EXP": exp,
    }
    if padding:
        data["Padding"] = "x" * padding
    return {
        "id": str(uuid.uuid4()), "topic": TOPIC, "subject": name,
        "eventType": f"Microsoft.KeyVault.{event_type}", "data": data,
        "dataVersion": "1", "metadataVersion": "1", "eventTime": "2026-11-21T08:00:00Z",
    }


def envelope(value):
    return json.dumps({"Data": {"event": value}, "Metadata": {"sys": {"MethodName": "function-trigger"}}})


def sized_event(total):
    """A NewVersionCreated invocation body of about `total` bytes."""
    base = len(envelope(event("SecretNewVersionCreated")))
    return envelope(event("SecretNewVersionCreated", padding=max(0, total - base - 14)))


class Handler:
    """A handler process started the way the host starts it, ready once `GET /` answers.
    `wrapper` runs it under another program (e.g. valgrind), which needs more time to start."""

    def __init__(self, binary, env=None, wrapper=(), ready_within=30):
        self.port = free_port()
        full = {"PATH": os.environ["PATH"], "FUNCTIONS_CUSTOMHANDLER_PORT": str(self.port)}
        full.update(env or {})
        started = time.perf_counter()
        self.proc = subprocess.Popen([*wrapper, binary], env=full, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.startup_ms = self._wait_ready(started, ready_within)

    def _wait_ready(self, started, ready_within):
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        while time.perf_counter() - started < ready_within:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    c.sendall(request)
                    if c.recv(64):
                        return (time.perf_counter() - started) * 1000
            except OSError:
                time.sleep(0.0002)
        self.stop()
        raise RuntimeError(f"handler not ready in {ready_within} s")

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # MiB
        return float("nan")

    def cpu_seconds(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(port, body, duration=DURATION, connections=CONNECTIONS):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(body)
        body_path = f.name
    script = body_path + ".lua"
    with open(script, "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                # The host names every invocation; kv-notify tags its log lines with the id.
                f'wrk.headers["X-Azure-Functions-InvocationId"] = "{uuid.uuid4()}"\n'
                f'local f = io.open("{body_path}", "r")\nwrk.body = f:read("*a")\nf:close()\n')
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}/function-trigger"],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(body_path)
    os.unlink(script)
    if "Non-2xx" in out:
        raise RuntimeError("non-2xx answers under load:\n" + out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: to_ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    return rps, lat["50"], lat["99"]


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median(values):
    return statistics.median(values)


def startup(kv_env):
    """Median start-up of the bare handler and of kv-notify, started in turns."""
    bare, kv = [], []
    for _ in range(max(RUNS, 5) * 4):
        for binary, env, times in ((BARE, {}, bare), (KV, kv_env, kv)):
            handler = Handler(binary, env)
            times.append(handler.startup_ms)
            handler.stop()
    return median(bare), median(kv)


def load_once(binary, env, body):
    """One fresh handler under load: rps, p50, p99, handler CPU per invocation (us), idle and
    loaded peak RSS."""
    handler = Handler(binary, env)
    try:
        time.sleep(0.3)
        idle = handler.status("VmHWM")
        wrk(handler.port, body, duration="1s")  # warm-up
        cpu_before, started = handler.cpu_seconds(), time.perf_counter()
        rps, p50, p99 = wrk(handler.port, body)
        requests = rps * (time.perf_counter() - started)
        cpu = (handler.cpu_seconds() - cpu_before) / requests * 1e6
        return rps, p50, p99, cpu, idle, handler.status("VmHWM")
    finally:
        handler.stop()


def paired_load(kv_env, body):
    """RUNS rounds of the bare handler, the floor handler and kv-notify, taking turns so that
    all three see the same machine: a drift in its speed moves every figure of a round, not
    their ratios. Returns, per handler, the medians of each figure, and the medians of the
    per-round throughput ratios floor/bare, kv-notify/bare and kv-notify/floor."""
    handlers = ((BARE, {}), (FLOOR, {}), (KV, kv_env))
    runs = [[] for _ in handlers]
    for _ in range(RUNS):
        for (binary, env), results in zip(handlers, runs):
            results.append(load_once(binary, env, body))
    bare, floor, kv = runs

    def ratio(a, b):
        return median([x[0] / y[0] for x, y in zip(a, b)])

    figures = [[median(r[i] for r in results) for i in range(6)] for results in runs]
    return figures, (ratio(floor, bare), ratio(kv, bare), ratio(kv, floor))


def growth(binary, env, body):
    handler = Handler(binary, env)
    try:
        wrk(handler.port, body, duration="1s")
        return median([wrk(handler.port, body)[0] for _ in range(RUNS)])
    finally:
        handler.stop()


AZURITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "tools",
                       "node_modules", ".bin", "azurite-table")
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """Azurite's Table service on a free port, logging every request (to count round trips)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        self.log = os.path.join(self.dir, "debug.log")
        self.process = subprocess.Popen(
            [AZURITE, "--tableHost", "127.0.0.1", "--tablePort", str(self.port), "--location",
             self.dir, "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--debug", self.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Azurite did not start")

    def connection_string(self):
        return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
                f"TableEndpoint=http://127.0.0.1:{self.port}/devstoreaccount1;")

    def requests(self):
        with open(self.log, errors="replace") as f:
            return sum("TableStorageContextMiddleware: RequestMethod=" in line for line in f)

    def stop(self):
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def mail_burst(pooled, ledger_dir, azurite=None):
    """A burst of mails: rate, our CPU and the SMTP server's per mail, and storage requests per
    mail when the ledger is Azurite's table."""
    maildir = tempfile.mkdtemp()
    smtp_port = free_port()
    smtp = subprocess.Popen([sys.executable, SMTP, str(smtp_port), maildir],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    smtp.stdout.readline()
    env = {"SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "OWNER_EMAILS": "owner@contoso.com",
           "SMTP_POOL": "true" if pooled else "false",
           "LEDGER_PATH": os.path.join(ledger_dir, f"burst-{uuid.uuid4()}.redb")}
    if azurite:
        env.update({"LEDGER": "table", "AzureWebJobsStorage": azurite.connection_string(),
                    "LEDGER_TABLE": f"burst{uuid.uuid4().hex[:12]}"})
    handler = Handler(KV, env)
    requests_before = azurite.requests() if azurite else 0
    cpu_before, smtp_before = handler.cpu_seconds(), proc_cpu(smtp.pid)
    statuses, wall = post_burst(handler)
    cpu = handler.cpu_seconds() - cpu_before
    smtp_cpu = proc_cpu(smtp.pid) - smtp_before
    received = len(os.listdir(os.path.join(maildir, "new")))
    handler.stop()
    smtp.terminate()
    smtp.wait()
    shutil.rmtree(maildir)
    if statuses.count(200) != BURST or received != BURST:
        raise RuntimeError(f"burst lost mail: {statuses.count(200)} ok answers, {received} mails")
    requests = (azurite.requests() - requests_before) / BURST if azurite else 0
    return BURST / wall, cpu / BURST * 1e6, smtp_cpu / BURST * 1e6, requests


def post_burst(handler):
    """Posts BURST NearExpiry invocations, CONNECTIONS at a time: the answers' statuses and the
    wall time."""
    bodies = [envelope(event("SecretNearExpiry", name=f"s{i}")) for i in range(BURST)]
    local = threading.local()

    def post(body):
        # One keep-alive connection per client thread, as the host keeps its connections.
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", handler.port, timeout=60)
        local.conn.request("POST", "/function-trigger", body, {"Content-Type": "application/json"})
        response = local.conn.getresponse()
        response.read()
        return response.status

    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        statuses = list(pool.map(post, bodies))
    return statuses, time.perf_counter() - started


def test_certificates(folder):
    """A test CA (ca.pem) and a certificate for 127.0.0.1 it signs (cert.pem, key.pem)."""
    with open(os.path.join(folder, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bench CA",
         "-keyout", "ca.key", "-out", "ca.pem"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem",
         "-out", "server.csr"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "1", "-extfile", "server.ext", "-out", "cert.pem"],
    ):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def started(args):
    """A stand-in server from tests/support, once it says it is ready."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{args[0]} did not start")
    return process


ACS_KEY = "YmVuY2gtYWNjZXNzLWtleQ=="


def stand_in_burst(work, transport):
    """A burst of mails through the Microsoft Graph or ACS Email stand-in (HTTPS; tokens from
    the managed-identity stand-in, or for `acs-key` the access key's signature): rate, our CPU
    and the stand-in's per mail."""
    folder = tempfile.mkdtemp()
    test_certificates(folder)
    out = os.path.join(folder, "out")
    os.mkdir(out)
    port, identity_port = free_port(), free_port()
    support = os.path.join(ROOT, "tests", "support")
    tls = [str(port), os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem"), out,
           os.path.join(folder, "answer")]
    if transport == "graph":
        server = started([os.path.join(support, "graph_server.py"), *tls])
        env = {"GRAPH_SENDER": "alerts@contoso.com", "GRAPH_ENDPOINT": f"https://127.0.0.1:{port}"}
    else:
        server = started([os.path.join(support, "acs_server.py"), *tls, ACS_KEY])
        env = {"ACS_SENDER": "alerts@contoso.com"}
        if transport == "acs-key":
            env["ACS_CONNECTION_STRING"] = f"endpoint=https://127.0.0.1:{port}/;accesskey={ACS_KEY}"
        else:
            env["ACS_ENDPOINT"] = f"https://127.0.0.1:{port}"
    identity = started([os.path.join(support, "identity_server.py"), str(identity_port), "secret",
                        os.path.join(folder, "count")])
    if transport != "acs-key":
        env.update({"IDENTITY_ENDPOINT": f"http://127.0.0.1:{identity_port}/token",
                    "IDENTITY_HEADER": "secret"})
    env.update({"SSL_CERT_FILE": os.path.join(folder, "ca.pem"), "OWNER_EMAILS": "owner@contoso.com",
                "LEDGER_PATH": os.path.join(work, f"{transport}-{uuid.uuid4()}.redb")})
    handler = Handler(KV, env)
    try:
        cpu_before, server_before = handler.cpu_seconds(), proc_cpu(server.pid)
        statuses, wall = post_burst(handler)
        cpu = handler.cpu_seconds() - cpu_before
        server_cpu = proc_cpu(server.pid) - server_before
    finally:
        handler.stop()
        for process in (server, identity):
            process.terminate()
            process.wait()
    received = len([f for f in os.listdir(out) if f.endswith(".eml")])
    shutil.rmtree(folder)
    if statuses.count(200) != BURST or received != BURST:
        raise RuntimeError(f"{transport} burst lost mail: {statuses.count(200)} ok answers, {received} mails")
    return BURST / wall, cpu / BURST * 1e6, server_cpu / BURST * 1e6


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main():
    work = tempfile.mkdtemp()
    kv_env = {"LEDGER_PATH": os.path.join(work, "ledger.redb"),
              "OUTBOX_DIR": os.path.join(work, "outbox")}
    rows = []

    def row(name, value, target=""):
        rows.append((name, value, target))
        print(f"  {name}: {value}", file=sys.stderr, flush=True)

    print(f"machine: {os.cpu_count()} cores; {RUNS} runs per figure, medians", file=sys.stderr)
    bare_start, kv_start = startup(kv_env)
    row("start-up, exec to first GET / answer (bare)", f"{bare_start:.2f} ms")
    row("start-up, exec to first GET / answer (kv-notify)", f"{kv_start:.2f} ms", "< 10 ms")

    body = envelope(event("SecretNewVersionCreated"))
    (bare, floor, kv), (floor_bare, kv_bare, kv_floor) = paired_load(kv_env, body)
    (b_rps, b_p50, b_p99, b_cpu, _, _), (f_rps, f_p50, f_p99, f_cpu, _, _) = bare, floor
    k_rps, k_p50, k_p99, k_cpu, idle, loaded = kv
    row("throughput, NewVersionCreated, 32 conns (bare)", f"{b_rps:,.0f} req/s")
    row("throughput, NewVersionCreated, 32 conns (floor)", f"{f_rps:,.0f} req/s = {floor_bare:.0%} of bare")
    row("throughput, NewVersionCreated, 32 conns (kv-notify)",
        f"{k_rps:,.0f} req/s = {kv_bare:.0%} of bare = {kv_floor:.0%} of floor", ">= 75% of floor")
    row("handler CPU per invocation, user + kernel (bare)", f"{b_cpu:.1f} us")
    row("handler CPU per invocation, user + kernel (floor)", f"{f_cpu:.1f} us = bare + {f_cpu - b_cpu:.1f} us")
    row("handler CPU per invocation, user + kernel (kv-notify)",
        f"{k_cpu:.1f} us = bare + {k_cpu - b_cpu:.1f} us = floor + {k_cpu - f_cpu:.1f} us")
    row("latency p50 / p99 (bare)", f"{b_p50:.2f} / {b_p99:.2f} ms")
    row("latency p50 / p99 (floor)", f"{f_p50:.2f} / {f_p99:.2f} ms")
    row("latency p50 / p99 (kv-notify)", f"{k_p50:.2f} / {k_p99:.2f} ms", "p99 < 5 ms")
    row("peak RSS idle / after load (kv-notify)", f"{idle:.1f} / {loaded:.1f} MiB", "< 30 MiB")
    row("release binary size", f"{os.path.getsize(KV) / 1e6:.1f} MB", "< 15 MB")

    for pooled in (True, False):
        runs = [mail_burst(pooled, work) for _ in range(max(1, RUNS // 2 + 1))]
        rate, ours, theirs = (median(r[i] for r in runs) for i in range(3))
        label = "pooled" if pooled else "no pooling"
        row(f"mail burst, {BURST} NearExpiry, 32 concurrent ({label})",
            f"{rate:,.0f} mails/s; our CPU {ours:,.0f} us/mail; SMTP server CPU {theirs:,.0f} us/mail")

    azurite = Azurite()
    try:
        runs = [mail_burst(True, work, azurite) for _ in range(max(1, RUNS // 2 + 1))]
    finally:
        azurite.stop()
    rate, ours, theirs, requests = (median(r[i] for r in runs) for i in range(4))
    row(f"mail burst, {BURST} NearExpiry, 32 concurrent (pooled, table ledger on Azurite)",
        f"{rate:,.0f} mails/s; our CPU {ours:,.0f} us/mail; SMTP server CPU {theirs:,.0f} us/mail; "
        f"{requests:.2f} storage requests/mail", "<= 2 requests per recipient")

    for transport, name in (("graph", "Microsoft Graph stand-in"),
                            ("acs", "ACS Email stand-in, managed identity"),
                            ("acs-key", "ACS Email stand-in, access key")):
        runs = [stand_in_burst(work, transport) for _ in range(max(1, RUNS // 2 + 1))]
        rate, ours, theirs = (median(r[i] for r in runs) for i in range(3))
        row(f"mail burst, {BURST} NearExpiry, 32 concurrent ({name}, HTTPS)",
            f"{rate:,.0f} mails/s; our CPU {ours:,.0f} us/mail; stand-in CPU {theirs:,.0f} us/mail")

    one_kb = growth(KV, kv_env, sized_event(1024))
    sixty_four = growth(KV, kv_env, sized_event(64 * 1024))
    row("growth: 1 KB vs 64 KB event", f"{one_kb:,.0f} vs {sixty_four:,.0f} req/s ({sixty_four / one_kb:.0%})")
    for n in (10, 100):
        batch = json.dumps([event("SecretNewVersionCreated") for _ in range(n)])
        rps = growth(KV, kv_env, envelope(batch))
        row(f"growth: batch of {n} events", f"{rps:,.0f} req/s = {rps * n:,.0f} events/s")

    shutil.rmtree(work)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure'.ljust(width)} | median | target")
    print(f"{'-' * width}-|--------|-------")
    for name, value, target in rows:
        print(f"{name.ljust(width)} | {value} | {target}")


if __name__ == "__main__":
    main()
