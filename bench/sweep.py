"""The expiry sweep at scale: 1 and 20 vaults of 2,500 objects each on the Key Vault stand-in
(tests/vault-stand-in/src/main.rs, built as target/release/vault-stand-in), every call 10 ms late
and each vault held to Key Vault's published limit (4,000 requests per 10 s, answered 429 beyond
it), tokens from the managed-identity stand-in. Runs `kv-notify sweep --dry-run` (every list read, every due
object's version looked up, a certificate's with its policy in one read; no mail) and reports, as medians over the
runs: wall time against two floors, requests made, 429s received and peak RSS.

Floors: the issue's minimum is what the paging alone allows (the longest list's pages one after
another, all lists at once). The sweep also reads the current version of the objects due a
reminder (ledger keys name the version) and keeps at most REQUESTS_PER_VAULT requests in flight per vault
(the vault's request budget is shared with the apps that use it): the second floor adds those
requests at that concurrency.

Each vault: 500 certificates (each with its own managed key and secret), 500 secrets and 500
keys; expiries spread evenly from 30 days ago to two years ahead, one object in ten undated.

usage: python3 bench/sweep.py  (scripts/bench runs it; BENCH_RUNS sets the runs, default 5;
SWEEP_VAULTS the vault counts, default 1,20)
"""

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import KV, free_port, median  # noqa: E402

STAND_IN = os.path.join(ROOT, "target/release/vault-stand-in")


def started(args):
    """A stand-in server (a binary, or a Python script from tests/support), once it says it is
    ready."""
    command = [sys.executable, *args] if args[0].endswith(".py") else args
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{args[0]} did not start")
    return process

# The 20 vaults, and one alone: with one vault the CPU is idle and the wall time shows
# the scheduling of requests; with 20 on two cores it shows the CPU both sides need.
VAULT_COUNTS = [int(n) for n in os.environ.get("SWEEP_VAULTS", "1,20").split(",")]
PER_KIND = 500
LATENCY_MS = int(os.environ.get("SWEEP_LATENCY_MS", "10"))
LIMIT = 4000
PAGE = 25
REQUESTS_PER_VAULT = 6
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
RESOURCE = "https://vault.localhost"
SECRET = "bench-identity-secret"
LADDER = (-14, 60)  # days left of the objects due a reminder (default ladder, 7-day memory)


def names(vaults):
    return [f"kv-{n:02d}" for n in range(1, vaults + 1)]


def certificates(folder, hosts):
    with open(os.path.join(folder, "server.ext"), "w") as f:
        alt = ",".join(["IP:127.0.0.1"] + [f"DNS:{h}" for h in hosts])
        f.write(f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run = lambda *args: subprocess.run(["openssl", *args], cwd=folder, check=True,  # noqa: E731
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # P-256 keys: the stand-in's handshakes cost it little CPU, as Key Vault's cost us nothing.
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
    run("req", "-x509", *ec, "-nodes", "-days", "1", "-subj", "/CN=bench CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", *ec, "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "server.csr")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "server.ext", "-out", "cert.pem")


def contents(rng, now):
    """One vault's objects, and how many are due a reminder."""
    due = 0

    def obj(name, managed=False):
        nonlocal due
        o = {"name": name, "managed": managed}
        if rng.random() >= 0.1:
            days = rng.uniform(-30, 730)
            o["exp"] = int(now + days * 86400)
            if not managed and LADDER[0] <= days < LADDER[1] + 1:
                due += 1
        return o

    certs = [dict(obj(f"cert-{i}"), autoRenew=rng.random() < 0.5) for i in range(PER_KIND)]
    secrets = [obj(f"secret-{i}") for i in range(PER_KIND)]
    keys = [obj(f"key-{i}") for i in range(PER_KIND)]
    for c in certs:
        backing = {"name": c["name"], "managed": True, "exp": c.get("exp")}
        secrets.append(dict(backing))
        keys.append(dict(backing))
    rng.shuffle(secrets)
    rng.shuffle(keys)
    due_certs = sum(1 for c in certs if "exp" in c and
                    LADDER[0] * 86400 <= c["exp"] - now < (LADDER[1] + 1) * 86400)
    return {"secrets": secrets, "keys": keys, "certificates": certs}, due, due_certs


def main():
    for vaults in VAULT_COUNTS:
        sweep(vaults)


def sweep(vaults_swept):
    work = tempfile.mkdtemp(prefix="kv-notify-sweep-")
    hosts = [f"{n}.vault.localhost" for n in names(vaults_swept)]
    certificates(work, hosts)
    rng = random.Random(7)
    now = time.time()
    vaults, due, due_certs = {}, 0, 0
    for name in names(vaults_swept):
        vaults[name], d, c = contents(rng, now)
        due, due_certs = due + d, due_certs + c
    with open(os.path.join(work, "state.json"), "w") as f:
        json.dump({"vaults": vaults}, f)
    vault_port, identity_port = free_port(), free_port()
    servers = [
        started([STAND_IN, str(vault_port),
                 os.path.join(work, "cert.pem"), os.path.join(work, "key.pem"),
                 os.path.join(work, "state.json"), os.path.join(work, "requests.log"), RESOURCE,
                 str(LATENCY_MS), str(LIMIT)]),
        started([os.path.join(ROOT, "tests/support/identity_server.py"),
                 str(identity_port), SECRET, os.path.join(work, "identity.count")]),
    ]
    env = {
        "PATH": os.environ["PATH"],
        "VAULTS": ",".join(f"https://{h}:{vault_port}" for h in hosts),
        "KEY_VAULT_RESOURCE": RESOURCE,
        "IDENTITY_ENDPOINT": f"http://127.0.0.1:{identity_port}/token",
        "IDENTITY_HEADER": SECRET,
        "SSL_CERT_FILE": os.path.join(work, "ca.pem"),
        "OWNER_EMAILS": "owners@contoso.com",
        "LEDGER_PATH": os.path.join(work, "ledger.redb"),
        "SWEEP_BUDGET_SECS": "600",
    }
    pages = max(len(v[k]) for v in vaults.values() for k in v) // PAGE + 1
    list_pages = sum(-(-len(v[k]) // PAGE) for v in vaults.values() for k in v)
    literal_floor = pages * LATENCY_MS / 1000
    # A certificate's version and policy come from one read of it.
    per_vault = (list_pages + due) / vaults_swept
    budget_floor = max(literal_floor, per_vault / REQUESTS_PER_VAULT * LATENCY_MS / 1000)
    walls, requests, throttled, rss, cpu, connections = [], [], [], [], [], []
    try:
        for _ in range(RUNS):
            log = os.path.join(work, "requests.log")
            open(log, "w").close()
            output = os.path.join(work, "sweep.out")
            with open(output, "w") as out:
                t0 = time.perf_counter()
                proc = subprocess.Popen([KV, "sweep", "--dry-run"], env=env, cwd=work,
                                        stdout=out, stderr=subprocess.STDOUT)
                _, status, usage = os.wait4(proc.pid, 0)
                walls.append(time.perf_counter() - t0)
            if status != 0:
                with open(output) as f:
                    raise RuntimeError(f"sweep failed: {f.read()}")
            rss.append(usage.ru_maxrss / 1024)
            cpu.append(usage.ru_utime + usage.ru_stime)
            with open(log) as f:
                lines = f.read().splitlines()
            requests.append(len(lines))
            throttled.append(sum(1 for line in lines if line.endswith(" 429")))
            with open(log + ".connections") as f:
                opened = int(f.read())
            connections.append(opened - sum(connections))
        with open(f"/proc/{servers[0].pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            stand_in_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") / RUNS
    finally:
        for server in servers:
            server.terminate()
    wall = median(walls)
    literal_floor = max(literal_floor, 1e-9)
    budget_floor = max(budget_floor, 1e-9)
    print(f"\nsweep: {vaults_swept} vaults x {3 * PER_KIND + 2 * PER_KIND} objects, {LATENCY_MS} ms per "
          f"call, {LIMIT} requests per 10 s per vault; {due} reminders due, {due_certs} of them "
          f"certificates; {RUNS} runs, medians")
    print(f"  wall time              {wall:.2f} s")
    print(f"  paging floor           {literal_floor:.2f} s (longest list {pages} pages)  -> "
          f"{wall / literal_floor:.2f}x (target 1.5x)")
    print(f"  floor with lookups     {budget_floor:.2f} s ({per_vault:.0f} requests per vault, "
          f"{REQUESTS_PER_VAULT} at once) -> {wall / budget_floor:.2f}x")
    req = median(requests)
    print(f"  requests               {req:.0f} ({list_pages} list pages, {due} version lookups, "
          f"{due_certs} of them certificates with their policy)")
    print(f"  TLS connections        {median(connections):.0f} ({REQUESTS_PER_VAULT * vaults_swept} would do)")
    print(f"  throttled (429)        {median(throttled):.0f} ({median(throttled) / req:.2%}; target < 1%)")
    print(f"  kv-notify CPU          {median(cpu):.2f} s (the stand-in's: {stand_in_cpu:.2f} s a run)")
    print(f"  peak RSS               {median(rss):.1f} MiB (target < 40 MiB)")


if __name__ == "__main__":
    main()
