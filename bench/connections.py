"""Connections and memory: many tenants behind the API, bound 50, against 10 tenants.

    python -m bench.connections [--tenants 200] [--full] [--bound 50]

What is measured: the API (gunicorn, ``finvera serve``'s options but 1 worker of 64 threads,
so that one process holds the bound, which is per process, and can try to pass it: 64
requests at once against MAX_TENANT_CONNECTIONS=50) runs under a DB user made for this run,
so MariaDB's processlist tells its connections apart; a sampler thread counts them all the
time. 64 client connections read GET /api/ledgers of N tenants:

1. fill: the tenants in 10 slices of N/10, each slice read in turn for 2 s, the worker's
   VmRSS and its caches (``/bench/stats``: tenant directory entries, views of the shared pool)
   read after each slice: memory against tenants cached;
2. then two 5 s passes over all N tenants at random: does memory stay flat once every tenant
   is cached (and, with more tenants than the views cache keeps, while it churns)?

Against what: the same schedule on a fresh server whose load goes to 10 tenants only.

Reported: peak connections seen by MariaDB (to tenant databases; and all of the app's),
against the bound; the worker's peak (VmHWM) and final (VmRSS) memory in both runs; memory
per cached tenant (the slope over the fill, and the difference to the 10-tenant run); growth
after the cache is full.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time

from bench.common import (
    BenchRun,
    BenchServer,
    create_tenants,
    get,
    platform_databases,
    print_machine,
    run_load,
    table,
    tenant_headers,
)

READ = "/api/ledgers?limit=20"
THREADS = 64  # gunicorn threads and client connections: more than the bound
FILL_SLICES, FILL_SECONDS, PASSES, PASS_SECONDS = 10, 2.0, 2, 5.0
COMPETITOR = "fastapi-tenancy holds ~1.9 DB connections per tenant"


class ProcesslistSampler(threading.Thread):
    """Counts the app user's connections as MariaDB lists them, as often as it can.

    Tenant connections are the shared pool's (on no database) and any on a tenant database.
    A master or main connection that is still logging in is listed on no database for a
    moment too, so connections are told apart by their id: one ever seen on another database
    is not a tenant connection, and is taken out of every sample once the run is over.
    ``peak_raw`` is the count before that, ``peak_tenant`` after, ``peak_all`` every
    connection of the user.
    """

    QUERY = "SELECT ID, DB FROM information_schema.PROCESSLIST WHERE USER = %s"

    def __init__(self, run: BenchRun, user: str, tenant_prefix: str) -> None:
        super().__init__(daemon=True)
        self.conn = run.admin()
        self.user, self.tenant_prefix = user, tenant_prefix
        self.samples: list[list[int]] = []  # per sample: ids on no database or a tenant's
        self.elsewhere: set[int] = set()  # ids seen on another database (master, main)
        self.peak_all = 0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                while not self.stop.is_set():
                    cur.execute(self.QUERY, (self.user,))
                    rows = cur.fetchall()
                    self.peak_all = max(self.peak_all, len(rows))
                    tenant = []
                    for connection_id, database in rows:
                        if database is None or database.startswith(self.tenant_prefix):
                            tenant.append(connection_id)
                        else:
                            self.elsewhere.add(connection_id)
                    self.samples.append(tenant)
                    self.stop.wait(0.002)
        finally:
            self.conn.close()

    @property
    def peak_raw(self) -> int:
        return max(map(len, self.samples), default=0)

    @property
    def peak_tenant(self) -> int:
        return max((sum(1 for i in ids if i not in self.elsewhere) for ids in self.samples),
                   default=0)


def check_page(body: dict) -> str | None:
    data = body.get("data") or {}
    return None if data.get("total") == 20 else f"unexpected answer: {str(body)[:200]}"


def measure(run, env, user, headers: list[dict], label: str) -> dict:
    """One server, one sampler, the fill and the passes over ``headers``' tenants."""
    server = BenchServer(run, env=env, workers=1, threads=THREADS).start()
    sampler = ProcesslistSampler(run, user, env["TENANT_DB_PREFIX"])
    sampler.start()
    curve, statuses, problems = [], {}, []

    def checkpoint(phase: str) -> None:
        _, stats = get(server.port, "/bench/stats")
        rss = sum(m.get("VmRSS", 0) for m in server.memory_kib().values())
        curve.append({"phase": phase, "rss": rss, **stats})

    def load(pick, seconds):
        result = run_load(server, pick, seconds, THREADS, check_page)
        for status, count in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
        problems.extend(result.problems[:3])

    try:
        checkpoint("start")
        count = len(headers)
        for number in range(FILL_SLICES):
            part = headers[number * count // FILL_SLICES:(number + 1) * count // FILL_SLICES]
            turn = iter(range(10**9))
            load(lambda _rng, part=part, turn=turn: (READ, part[next(turn) % len(part)]),
                 FILL_SECONDS)
            checkpoint(f"fill {number + 1}/{FILL_SLICES}")
        for number in range(PASSES):
            load(lambda rng: (READ, headers[rng.randrange(count)]), PASS_SECONDS)
            checkpoint(f"random pass {number + 1}")
        memory = server.memory_kib()
    finally:
        sampler.stop.set()
        sampler.join()
        server.stop()
    (worker,) = memory.values()
    print(f"  {label}: {sum(statuses.values())} requests {statuses}; peak connections "
          f"{sampler.peak_tenant} to tenants ({sampler.peak_raw} before taking out "
          f"connections later seen on master or main), {sampler.peak_all} of the app's in "
          f"all; {len(sampler.samples)} samples", flush=True)
    if problems:
        print(f"    problems: {problems[:5]}", flush=True)
    return {"label": label, "tenants": count, "statuses": statuses, "curve": curve,
            "peak_tenant": sampler.peak_tenant, "peak_all": sampler.peak_all,
            "peak_raw": sampler.peak_raw,
            "samples": len(sampler.samples), "hwm": worker["VmHWM"], "rss": worker["VmRSS"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--full", action="store_true", help="1000 tenants")
    parser.add_argument("--bound", type=int, default=50, help="MAX_TENANT_CONNECTIONS")
    parser.add_argument("--reference", type=int, default=10, help="tenants of the reference")
    args = parser.parse_args(argv)
    count = 1000 if args.full else args.tenants

    with BenchRun() as run:
        print_machine(run)
        dbs = platform_databases(run)
        began = time.perf_counter()
        tenants = create_tenants(run, dbs, count)
        print(f"{count} tenants made in {time.perf_counter() - began:.1f} s (1 provisioned, "
              f"the rest cloned); server: 1 gunicorn gthread worker x {THREADS} threads, "
              f"{THREADS} client connections, MAX_TENANT_CONNECTIONS={args.bound}",
              flush=True)
        dbs.dispose()
        user, password = run.create_user("app")
        env = {**run.env, "DB_USER": user, "DB_PASSWORD": password,
               "MAX_TENANT_CONNECTIONS": str(args.bound)}
        settings = run.settings()
        headers = [tenant_headers(settings, tenant) for tenant in tenants]
        random.Random(1).shuffle(headers)
        runs = [measure(run, env, user, headers[:args.reference],
                        f"{args.reference} tenants"),
                measure(run, env, user, headers, f"{count} tenants")]
        report(runs, args.bound)
    return 0


def report(runs: list[dict], bound: int) -> None:
    small, big = runs
    table(["checkpoint", "tenant directory entries", "pool views", "worker VmRSS MiB"],
          [[point["phase"], point["directory_entries"], point["tenant_views"],
            f"{point['rss'] / 1024:.1f}"] for point in big["curve"]],
          f"Memory of the worker as tenants are cached ({big['tenants']} tenants; the views "
          f"cache keeps at most {big['curve'][-1]['max_views']}):")
    rows = []
    for result in runs:
        errors = sum(v for k, v in result["statuses"].items() if k != 200)
        rows.append([result["label"], sum(result["statuses"].values()), errors,
                     f"{result['peak_tenant']} ({result['peak_raw']})", result["peak_all"],
                     f"{result['peak_tenant'] / result['tenants']:.2f}",
                     f"{result['hwm'] / 1024:.1f}", f"{result['rss'] / 1024:.1f}"])
    table(["run", "requests", "non-200", f"peak tenant connections, bound {bound} "
           "(before telling logins apart)", "peak app connections (all)", "connections per tenant",
           "worker VmHWM MiB", "worker VmRSS MiB"], rows, "Connections and memory:")
    fill = [point for point in big["curve"] if point["phase"].startswith("fill")]
    middle, filled = fill[len(fill) // 2 - 1], fill[-1]
    slope = (filled["rss"] - middle["rss"]) / max(
        1, filled["directory_entries"] - middle["directory_entries"])
    versus_small = (big["rss"] - small["rss"]) / max(1, big["tenants"] - small["tenants"])
    growth = big["curve"][-1]["rss"] - filled["rss"]
    print(f"\nconnections: peak {big['peak_tenant']} to tenant databases with "
          f"{big['tenants']} tenants and {small['peak_tenant']} with {small['tenants']}, "
          f"bound {bound}: {'never above' if big['peak_tenant'] <= bound else 'ABOVE'} the "
          f"bound; {big['peak_tenant'] / big['tenants']:.2f} connections per tenant "
          f"({COMPETITOR})")
    print(f"memory per cached tenant: {versus_small:.1f} KiB against the {small['tenants']}"
          f"-tenant run (final VmRSS), {slope:.1f} KiB over the second half of the fill "
          f"(VmRSS slope against directory entries); worker VmHWM {big['hwm'] / 1024:.1f} MiB "
          f"vs {small['hwm'] / 1024:.1f} MiB ({big['hwm'] / small['hwm']:.2f}x)")
    print(f"once every tenant is cached: VmRSS {growth / 1024:+.1f} MiB over "
          f"{PASSES} more passes ({growth / filled['rss']:+.1%}): "
          f"{'flat' if abs(growth) <= 0.02 * filled['rss'] else 'NOT flat'} (within 2%)")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
