"""Entra ID's part of the sweep at scale: 10,000 applications with 3 credentials each (two client
secrets and a certificate), each with one owner, and their 10,000 enterprise applications, on the
Graph stand-in (tests/support/graph_server.py, over HTTPS, pages of 999, every call 10 ms late),
tokens from the managed-identity stand-in. Reports, as medians over the runs, for `kv-notify
sweep --dry-run` (every list read, the owners of every application with a credential due; no
mail) and for `kv-notify sweep` (the same, plus a ledger claim per credential due and one notice
per application and step, written by the outbox transport on a fresh file ledger): wall time,
requests and peak RSS. Target: under 10 s and 64 MiB.

usage: python3 bench/entra.py  (scripts/bench runs it; BENCH_RUNS sets the runs, default 5;
ENTRA_APPS the applications, default 10000)
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import KV, free_port, median  # noqa: E402
from sweep import certificates, started  # noqa: E402

APPS = int(os.environ.get("ENTRA_APPS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
LATENCY_MS = 10
SECRET = "bench-identity-secret"


def guid(n, kind):
    return f"{n:08x}-{kind:04x}-4000-8000-000000000000"


def directory(rng, now):
    """The applications, their enterprise applications and owners; how many credentials are due
    (on a step of the default ladder: from 60 days ahead to 7 days after the end, within the
    ledger's memory)."""
    at = lambda days: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + days * 86400))  # noqa: E731
    apps, principals, owners, due = [], [], {}, 0
    for n in range(APPS):
        days = [rng.uniform(-30, 730) for _ in range(3)]
        due += sum(1 for d in days if -14 <= d < 61)
        apps.append({
            "id": guid(n, 1), "appId": guid(n, 2), "displayName": f"app-{n}",
            "passwordCredentials": [
                {"keyId": guid(n, 3), "displayName": "ci", "endDateTime": at(days[0])},
                {"keyId": guid(n, 4), "displayName": "ops", "endDateTime": at(days[1])},
            ],
            "keyCredentials": [{"keyId": guid(n, 5), "displayName": "CN=app", "endDateTime": at(days[2]),
                                "type": "AsymmetricX509Cert", "usage": "Verify"}],
        })
        principals.append({"id": guid(n, 6), "appId": guid(n, 2), "displayName": f"app-{n}",
                           "servicePrincipalType": "Application", "keyCredentials": [],
                           "passwordCredentials": []})
        owners[guid(n, 1)] = [{"@odata.type": "#microsoft.graph.user", "id": guid(n, 7),
                               "displayName": f"owner {n}", "userPrincipalName": f"o{n}@contoso.com",
                               "mail": f"o{n}@contoso.com"}]
    return apps, principals, owners, due


def main():
    work = tempfile.mkdtemp(prefix="kv-notify-entra-")
    certificates(work, [])
    out = os.path.join(work, "graph")
    os.makedirs(out)
    apps, principals, owners, due = directory(random.Random(7), time.time())
    for name, value in [("applications.json", apps), ("servicePrincipals.json", principals),
                        ("owners.json", owners)]:
        with open(os.path.join(out, name), "w") as f:
            json.dump(value, f)
    for name, value in [("page_size", "999"), ("delay_ms", str(LATENCY_MS))]:
        with open(os.path.join(out, name), "w") as f:
            f.write(value)
    graph_port, identity_port = free_port(), free_port()
    servers = [
        started([os.path.join(ROOT, "tests/support/graph_server.py"), str(graph_port),
                 os.path.join(work, "cert.pem"), os.path.join(work, "key.pem"), out,
                 os.path.join(work, "answer")]),
        started([os.path.join(ROOT, "tests/support/identity_server.py"),
                 str(identity_port), SECRET, os.path.join(work, "identity.count")]),
    ]
    env = {
        "PATH": os.environ["PATH"],
        "ENTRA_CREDENTIALS": "true",
        "GRAPH_ENDPOINT": f"https://127.0.0.1:{graph_port}",
        "IDENTITY_ENDPOINT": f"http://127.0.0.1:{identity_port}/token",
        "IDENTITY_HEADER": SECRET,
        "SSL_CERT_FILE": os.path.join(work, "ca.pem"),
        "OWNER_EMAILS": "owners@contoso.com",
        "SWEEP_BUDGET_SECS": "600",
        "MAIL_TRANSPORT": "outbox",
        "MAIL_FROM": "kv-notify@contoso.com",
    }
    try:
        for label, args in [("dry run", ["sweep", "--dry-run"]), ("sweep", ["sweep"])]:
            walls, rss, requests, batched, summaries = [], [], [], [], []
            for _ in range(RUNS):
                run_dir = os.path.join(work, "run")
                shutil.rmtree(run_dir, ignore_errors=True)
                os.makedirs(run_dir)
                run_env = dict(env, LEDGER_PATH=os.path.join(run_dir, "ledger.redb"),
                               OUTBOX_DIR=os.path.join(run_dir, "outbox"))
                open(os.path.join(out, "requests.log"), "w").close()
                output = os.path.join(work, "sweep.out")
                with open(output, "w") as sink:
                    t0 = time.perf_counter()
                    proc = subprocess.Popen([KV, *args], env=run_env, cwd=run_dir, stdout=sink,
                                            stderr=subprocess.STDOUT)
                    _, status, usage = os.wait4(proc.pid, 0)
                    walls.append(time.perf_counter() - t0)
                with open(output) as f:
                    text = f.read()
                if status != 0:
                    raise RuntimeError(f"sweep failed: {text[-2000:]}")
                rss.append(usage.ru_maxrss / 1024)
                with open(os.path.join(out, "requests.log")) as f:
                    lines = f.read().splitlines()
                requests.append(sum(1 for line in lines if not line.startswith("BATCHED ")))
                batched.append(sum(1 for line in lines if line.startswith("BATCHED ")))
                summaries.append(next((line for line in text.splitlines() if "Entra ID:" in line), ""))
            print(f"\nentra {label}: {APPS} applications x 3 credentials, {APPS} enterprise "
                  f"applications, {LATENCY_MS} ms per call; {due} credentials due; {RUNS} runs, medians")
            print(f"  wall time              {median(walls):.2f} s (target < 10 s)")
            print(f"  HTTP requests          {median(requests):.0f} (of them batches of up to 20: "
                  f"{median(batched):.0f} owner reads)")
            print(f"  peak RSS               {median(rss):.1f} MiB (target < 64 MiB)")
            print(f"  {summaries[-1].strip()}")
    finally:
        for server in servers:
            server.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
