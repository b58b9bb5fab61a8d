"""Routing overhead: a routed tenant read against the same read without tenancy, over HTTP.

    python -m bench.routing [--tenants 1,100] [--full] [--rounds 5] [--seconds 5] [--profile]

What is measured: GET /api/ledgers?limit=20 (20 ledgers per tenant), the platform's whole
request flow (tenant from X-Tenant-ID through the cached directory, bearer token checked, the
user's standing checked, query validated, the tenant's view of the shared pool, the page and its
count in one statement), served
by gunicorn with the options of ``finvera serve`` (2 gthread workers, 8 threads). Requests are
spread over the tenants by Zipf (s=1), and MAX_TENANT_CONNECTIONS (10) is well below the
tenant count.

Against what, in the same server, in the same run: ``api/bench_baseline.py``'s endpoints read
the same 20 rows of one fixed tenant database through a plain engine of their own with no
tenancy, no auth, no validation, and answer the same JSON:

- ``plain``: the same statement on a plain Core connection, the same serialisation (the floor
  of this read in Flask);
- ``orm``: the page as ORM entities and a separate count (the view without tenancy written
  the ORM way, as django-tenants' and fastapi-tenancy's figures compare).

Before the rounds of each tenant count above 1, every client connection asks for every
tenant's page in turn until every worker holds every tenant (``/bench/stats``): the rounds
measure the steady state of a server that has been up a while (a tenant's directory entry, its
users' standing and their tokens live minutes), not its first minute; that first pass, where
every tenant misses once per worker, is printed apart.

Why so: the machine is small and shared, so absolute figures drift; the phases (plain, orm,
routed) alternate, several rounds, order reversed every other round, and each figure is the
median over rounds of the per-round ratio. The load is closed-loop from client threads of this
process on keep-alive connections (http.client); the server's own CPU per request (its workers'
utime+stime from /proc) is reported too, as it does not depend on what the client costs.

``--profile`` then measures the three endpoints in-process (Flask's test client): their CPU
per request, each timed in pairs with the plain one (``bench.common.paired_cpu``; the steadiest
figure here: no HTTP, no client competing for the cores, no drift between the two of a pair),
where a request's time goes by package (cProfile), and the round trips to MariaDB per request.
``--syscalls`` counts the workers' system calls per request of each endpoint (``strace -c``):
under a threaded server every call that lets go of the GIL (a socket's poll, its send and
receive, a futex) is a chance of a thread switch, which CPU figures only blur.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench.common import (
    BenchRun,
    BenchServer,
    LoadResult,
    Zipf,
    create_tenants,
    get,
    paired_cpu,
    platform_databases,
    print_machine,
    run_load,
    table,
    tenant_headers,
)

ROUTED_PATH = "/api/ledgers?limit=20"
BASELINES = {"plain": "/bench/baseline/ledgers", "orm": "/bench/baseline/ledgers-orm"}
LEDGERS = 20
BOUND = 10
TARGET = 0.95
COMPETITORS = ("django-tenants 0.64x (routed vs the same view without tenancy); "
               "fastapi-tenancy 0.88x with its cache, 0.60x by default")


def check_page(body: dict) -> str | None:
    """A problem with an answer, or None: 20 ledgers, total 20, in the envelope."""
    data = body.get("data") or {}
    if not body.get("success") or data.get("total") != LEDGERS \
            or len(data.get("ledgers") or []) != LEDGERS:
        return f"unexpected answer: {str(body)[:200]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", default="1,100",
                        help="comma-separated tenant counts (default 1,100)")
    parser.add_argument("--full", action="store_true", help="add 1000 tenants")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--connections", type=int, default=8, help="client connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bound", type=int, default=BOUND, help="MAX_TENANT_CONNECTIONS")
    parser.add_argument("--profile", type=int, nargs="?", const=3000, default=0,
                        metavar="REQUESTS",
                        help="then profile each endpoint in-process over REQUESTS requests")
    parser.add_argument("--syscalls", type=float, nargs="?", const=4.0, default=0,
                        metavar="SECONDS",
                        help="then count the server's system calls per request with strace, "
                             "SECONDS of load per endpoint")
    args = parser.parse_args(argv)
    counts = sorted({int(n) for n in args.tenants.split(",")} | ({1000} if args.full else set()))

    with BenchRun(MAX_TENANT_CONNECTIONS=str(args.bound)) as run:
        print_machine(run)
        print(f"server: gunicorn, {args.workers} gthread workers x {args.threads} threads "
              f"(finvera serve's options); MAX_TENANT_CONNECTIONS={args.bound}; client: "
              f"{args.connections} keep-alive connections; {args.rounds} rounds of "
              f"{args.seconds:g} s per phase", flush=True)
        dbs = platform_databases(run)
        began = time.perf_counter()
        tenants = create_tenants(run, dbs, max(counts), ledgers=LEDGERS)
        print(f"{len(tenants)} tenants made in {time.perf_counter() - began:.1f} s "
              "(1 provisioned, the rest cloned)", flush=True)
        dbs.dispose()
        settings = run.settings()
        headers = [tenant_headers(settings, tenant) for tenant in tenants]
        server = BenchServer(run, workers=args.workers, threads=args.threads,
                             baseline_db=tenants[0].db_name).start()

        summary = []
        for count in counts:
            zipf = Zipf(count)

            def routed(rng: random.Random, zipf=zipf) -> tuple[str, dict]:
                return ROUTED_PATH, headers[zipf.pick(rng)]

            picks = {name: (lambda _rng, path=path: (path, {}))
                     for name, path in BASELINES.items()}
            picks["routed"] = routed
            print(f"\n{count} tenant(s): warming up", flush=True)
            if count > 1:
                warm_every_tenant(server, headers[:count], args.connections)
            for name, pick in picks.items():
                warm = run_load(server, pick, 2.0, args.connections, check_page)
                if warm.errors or warm.problems:
                    raise RuntimeError(f"{name} warm-up failed: {warm.statuses} "
                                       f"{warm.problems[:3]}")
            results: dict[str, list[LoadResult]] = defaultdict(list)
            for number in range(args.rounds):
                order = list(picks) if number % 2 == 0 else list(reversed(picks))
                for name in order:
                    result = run_load(server, picks[name], args.seconds, args.connections,
                                      check_page, seed=number)
                    results[name].append(result)
                    print(f"  round {number + 1} {name:6s} {result.rps:7.0f} req/s  "
                          f"p50 {result.percentile(0.5) * 1000:6.2f} ms  "
                          f"p99 {result.percentile(0.99) * 1000:6.2f} ms  "
                          f"cpu {result.cpu_ms_per_request:5.2f} ms/req  "
                          f"errors {result.errors}", flush=True)
                    if result.problems:
                        print(f"    problems: {result.problems[:3]}", flush=True)
            summary.append((count, results))
        if args.syscalls:
            syscalls(server, picks, args.syscalls, args.connections, max(counts))
        server.stop()
        report(summary, args)
        if args.profile:
            profile(run, tenants, headers, max(counts), args.profile, args.bound)
    return 0


def warm_every_tenant(server: BenchServer, headers: list[dict], connections: int) -> None:
    """Every client connection asks for every tenant's page in turn, until every worker holds
    every tenant (``/bench/stats``), as the workers of a server that has been up a while do:
    the rounds then measure that steady state, not the first pass's misses (a directory read,
    a token check and a standing read per tenant and worker), which this prints apart."""
    local = threading.local()  # each client thread's place in the walk

    def walk(_rng) -> tuple[str, dict]:
        local.next = getattr(local, "next", -1) + 1
        return ROUTED_PATH, headers[local.next % len(headers)]

    for attempt in range(1, 6):
        first = run_load(server, walk, 600.0, connections, check_page, each=len(headers))
        if first.errors or first.problems:
            raise RuntimeError(f"warm-up failed: {first.statuses} {first.problems[:3]}")
        if attempt == 1:
            print(f"  first pass, every tenant from each of {connections} connections: "
                  f"{first.rps:.0f} req/s, p50 {first.percentile(0.5) * 1000:.2f} ms, "
                  f"p99 {first.percentile(0.99) * 1000:.2f} ms", flush=True)
        held: dict[int, int] = {}
        for _ in range(20 * server.workers):  # fresh connections, until each worker answered
            stats = get(server.port, "/bench/stats")[1]
            held[stats["pid"]] = stats["directory_entries"]
            if len(held) == server.workers:
                break
        if len(held) == server.workers and min(held.values()) >= len(headers):
            return
    raise RuntimeError(f"after 5 passes some worker still lacks tenants: {held}")


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True) if d)


def report(summary, args) -> None:
    rows, ratios = [], []
    for count, results in summary:
        for name in ("plain", "orm", "routed"):
            phase = results[name]
            rows.append([count, name,
                         f"{statistics.median(r.rps for r in phase):.0f}",
                         f"{statistics.median(r.percentile(0.5) for r in phase) * 1000:.2f}",
                         f"{statistics.median(r.percentile(0.99) for r in phase) * 1000:.2f}",
                         f"{statistics.median(r.cpu_ms_per_request for r in phase):.2f}",
                         sum(r.errors for r in phase)])
        routed = results["routed"]
        for base in ("plain", "orm"):
            baseline = results[base]
            ratios.append([
                count, f"routed / {base}",
                f"{median_ratio([r.rps for r in routed], [b.rps for b in baseline]):.2f}x",
                f"{median_ratio([r.percentile(0.5) for r in routed], [b.percentile(0.5) for b in baseline]):.2f}x",  # noqa: E501
                f"{median_ratio([r.percentile(0.99) for r in routed], [b.percentile(0.99) for b in baseline]):.2f}x",  # noqa: E501
                f"{median_ratio([b.cpu_ms_per_request for b in baseline], [r.cpu_ms_per_request for r in routed]):.2f}x",  # noqa: E501
            ])
    table(["tenants", "endpoint", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "errors"],
          rows, f"Medians over {args.rounds} rounds of {args.seconds:g} s per phase:")
    table(["tenants", "ratio", "throughput", "p50 latency", "p99 latency",
           "CPU-bound throughput (baseline CPU/req ÷ routed)"], ratios,
          "Ratios (median over rounds of each round's ratio; throughput: higher is better, "
          "latency: lower is better):")
    headline = [row for row in ratios if row[1] == "routed / plain"]
    worst = min(float(row[2].rstrip("x")) for row in headline)
    print(f"\ntarget: routed throughput >= {TARGET:.2f}x of the plain baseline; worst "
          f"here {worst:.2f}x: {'met' if worst >= TARGET else 'NOT met'}")
    print(f"for comparison (from the issue): {COMPETITORS}")
    sys.stdout.flush()


def syscalls(server: BenchServer, picks, seconds: float, connections: int, count: int) -> None:
    """Count the workers' system calls per request of each endpoint (``strace -c -f`` on the
    workers while one endpoint is under load), the calls seen at least once per request."""
    strace = shutil.which("strace")
    if strace is None:
        print("\n--syscalls: strace is not installed; skipped", flush=True)
        return
    per_request: dict[str, dict[str, float]] = {}
    for name, pick in picks.items():
        with tempfile.NamedTemporaryFile(prefix="bench_strace_", suffix=".txt") as out:
            pids = [arg for pid in server.worker_pids() for arg in ("-p", str(pid))]
            tracer = subprocess.Popen([strace, "-c", "-f", "-o", out.name, *pids],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached to every thread
            result = run_load(server, pick, seconds, connections, check_page)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
            per_request[name] = {call: calls / result.requests
                                 for call, calls in strace_counts(Path(out.name)).items()}
    calls = sorted({call for counts in per_request.values() for call, n in counts.items()
                    if n >= 1 and call != "total"},
                   key=lambda call: -per_request["routed"].get(call, 0))
    table(["system call", *picks],
          [[call, *(f"{per_request[name].get(call, 0):.2f}" for name in picks)]
           for call in [*calls, "total"]],
          f"System calls per request ({seconds:g} s of load each, routed over {count} "
          "tenant(s); strace -c -f on the workers):")


def strace_counts(path: Path) -> dict[str, int]:
    """Calls by system call name from ``strace -c``'s table, and their "total"."""
    counts = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit():
            counts[fields[-1]] = int(fields[3])
    return counts


# ---- in-process profile ----

CATEGORIES = (  # (substring of the file path, category), first match wins
    ("pymysql", "PyMySQL (driver)"),
    ("sqlalchemy/orm", "SQLAlchemy ORM"),
    ("sqlalchemy", "SQLAlchemy Core, pool, dialect"),
    ("flask_openapi3", "flask-openapi3 (validation)"),
    ("pydantic", "pydantic (validation)"),
    ("werkzeug", "Werkzeug"),
    ("flask", "Flask"),
    ("jwt", "PyJWT (token)"),
    ("cryptography", "cryptography"),
    ("/api/", "platform code (api/)"),
    ("json", "json"),
)


def _category(filename: str, function: str) -> str:
    if filename == "~":
        if "recv_into" in function or "sendall" in function:
            return "socket I/O (waiting for MariaDB)"
        return "other builtins"
    for needle, name in CATEGORIES:
        if needle in filename:
            return name
    return "other Python (stdlib)"


def profile(run, tenants, headers, count, requests, bound) -> None:
    """Profile each endpoint in-process (no HTTP, no gunicorn), every tenant seen once first:
    time per request by package, and MariaDB round trips per request (statements and pings;
    above 1.00 for the routed read, the users' standing read again)."""
    from api import bench_baseline, create_app

    app = create_app(run.settings(MAX_TENANT_CONNECTIONS=str(bound)))
    bench_baseline.register(app, tenants[0].db_name)
    client = app.test_client()
    zipf, rng = Zipf(count), random.Random(7)
    endpoints = {
        "plain": lambda: client.get(BASELINES["plain"]),
        "orm": lambda: client.get(BASELINES["orm"]),
        "routed": lambda: client.get(ROUTED_PATH, headers=headers[zipf.pick(rng)]),
    }
    print(f"\nIn-process profile (Flask test client, cProfile, {requests} requests each, "
          f"routed over {count} tenant(s) by Zipf):")
    rows, breakdowns = [], {}
    for header in headers[:count]:  # every tenant seen once, as the HTTP phases' warm-up does
        assert client.get(ROUTED_PATH, headers=header).status_code == 200
    for call in endpoints.values():
        for _ in range(300):  # warm: caches, pools, compiled statements
            assert call().status_code == 200
    pairs = {name: paired_cpu(endpoints["plain"], call, requests)  # (plain µs, its µs)
             for name, call in endpoints.items() if name != "plain"}
    pairs["plain"] = [(plain, plain) for plain, _ in pairs["routed"]]
    for name, call in endpoints.items():
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler)
        by_category: dict[str, float] = defaultdict(float)
        calls = defaultdict(int)
        for (filename, _line, function), (_cc, ncalls, tottime, _ct, _callers) \
                in stats.stats.items():
            by_category[_category(filename, function)] += tottime
            if "pymysql" in filename and function in ("execute", "ping"):
                calls[function] += ncalls
        breakdowns[name] = {k: v / requests * 1e6 for k, v in by_category.items()}
        rows.append([name, f"{statistics.median(this for _, this in pairs[name]):.0f}",
                     f"{statistics.median(plain / this for plain, this in pairs[name]):.2f}x",
                     f"{calls['execute'] / requests:.2f}", f"{calls['ping'] / requests:.2f}"])
        if name == "routed":
            print("\nrouted: the 25 functions with the most own time")
            stats.sort_stats("tottime").print_stats(25)
    table(["endpoint", "CPU µs/request (unprofiled)", "plain CPU ÷ this", "statements/request",
           "pings/request"], rows,
          f"CPU per request in-process ({requests} pairs of each endpoint with plain, which "
          "goes first alternating; each ratio the median of the pairs' ratios), and round "
          "trips to MariaDB:")
    names = sorted({c for b in breakdowns.values() for c in b},
                   key=lambda c: -breakdowns["routed"].get(c, 0))
    table(["where (own time, profiled)", "plain µs", "orm µs", "routed µs", "routed - orm µs"],
          [[c, *(f"{breakdowns[n].get(c, 0):.0f}" for n in ("plain", "orm", "routed")),
            f"{breakdowns['routed'].get(c, 0) - breakdowns['orm'].get(c, 0):+.0f}"]
           for c in names], "Own time per request by package (profiler overhead included):")
    app.extensions["finvera"].dispose()


if __name__ == "__main__":
    sys.exit(main())
