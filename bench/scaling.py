"""How far one MariaDB server goes with a database per tenant, measured as it fills.

    python -m bench.scaling [--tenants 400] [--seconds 4] [--threads 4]

It runs on a MariaDB server of its own, a throwaway ``mariadbd`` (tests/throwaway_mariadb.py:
own datadir, port and socket; ended and deleted afterwards) started with MariaDB's defaults for
every setting measured here and with production durability (flush at every commit,
doublewrite on). It has to be its own: the benchmark changes global settings, restarts the
server, and reads the server's global counters, memory and open files, none of which may be
done to a shared server. Everything it makes carries the run's prefix and is dropped at the end,
also on an error, Ctrl-C or SIGTERM (bench.common.BenchRun), before the server is deleted.

Tenants (a database each, 19 tables) are made as in the other benchmarks (one provisioned, the
rest cloned: bench.common), in steps: 10, N/4, N/2, N. At each step it measures

- the tenant read: six statements on six tables of one tenant (its user, a count and a page
  of ledgers, the account groups, the voucher types, a trial-balance sum over vouchers and
  entries), through the app's TenantConnectionManager (the shared pool,
  MAX_TENANT_CONNECTIONS=10) from ``--threads`` threads for ``--seconds``, every tenant in
  turn, each once untimed first; its latency and, per read, the server's Opened_tables,
  Table_open_cache_misses, Opened_table_definitions and buffer pool reads from disk;
- a sign-up's work on the server: CREATE DATABASE and the tenant migrations, 7 times (then
  DROP DATABASE of each, timed too); the disk a new tenant takes;
- information_schema: the storage sizes of all tenants (GET /api/admin/system/databases),
  the list of tenant databases (repair, the fleet), one tenant's size (the storage limit),
  the fleet check (``finvera migrate --status``);
- ``finvera backup``'s dump of 3 tenants;
- the server: resident memory, buffer pool, open files, Open_tables, Open_table_definitions,
  Innodb_num_open_files, and the disk of all tenant databases.

Then, with N tenants: rounds that alternate MariaDB's default table caches with caches sized
for every table (SET GLOBAL table_open_cache, table_definition_cache), and the read of 10 of
the N tenants. Then a restart with innodb_open_files and open_files_limit sized as well: the
read of 10 tenants, then of all N (the difference in memory is what an active tenant costs once
the server is past the churn of creating them), and information_schema again. Last, the
server's memory per idle connection (100 opened), and its start after a kill -9. Each read
also reports the server's own CPU time per read (mariadbd's utime + stime), which the Python
client's cost does not enter. Figures are compared with the 10-tenant step of the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from api.models.tenant import AccountGroup, Ledger, User, Voucher, VoucherLedgerEntry, VoucherType
from api.tenancy.backups import backup_database
from api.tenancy.fleet import FleetMigrator
from api.tenancy.migrations import Tier, apply_pending
from bench.common import (
    CLOCK_TICKS,
    BenchRun,
    check_stop,
    clone_tenants,
    create_tenants,
    ms,
    percentile,
    platform_databases,
    print_machine,
    table,
)
from tests.throwaway_mariadb import ThrowawayMariaDB

BOUND = "10"  # MAX_TENANT_CONNECTIONS of the app the reads go through
FIRST = 10  # the baseline: tenants on the server at the first step
DDL_SAMPLES, BACKUP_SAMPLES, CONNECTION_PROBE = 7, 3, 100
# MariaDB 10.11's defaults for what is measured (innodb_open_files and open_files_limit are
# left to the server, which sizes them from these), and durability as in production.
DEFAULT_CACHES = {"table_open_cache": 2000, "table_definition_cache": 400}
SERVER_OPTIONS = ("--innodb-buffer-pool-size=128M", "--innodb-log-file-size=96M",
                  "--innodb-doublewrite=1", "--innodb-flush-log-at-trx-commit=1",
                  "--max-connections=151",
                  *(f"--{name.replace('_', '-')}={value}"
                    for name, value in DEFAULT_CACHES.items()))
SETTINGS = ("table_open_cache", "table_definition_cache", "table_open_cache_instances",
            "innodb_open_files", "open_files_limit", "max_connections",
            "innodb_buffer_pool_size", "innodb_page_size", "innodb_file_per_table",
            "innodb_flush_log_at_trx_commit", "thread_stack", "sort_buffer_size",
            "join_buffer_size", "read_buffer_size", "net_buffer_length")
COUNTERS = ("Opened_tables", "Table_open_cache_misses", "Table_open_cache_hits",
            "Table_open_cache_overflows", "Opened_table_definitions", "Innodb_buffer_pool_reads")
GAUGES = ("Open_tables", "Open_table_definitions", "Innodb_num_open_files", "Open_files",
          "Innodb_buffer_pool_pages_data", "Max_used_connections", "Threads_connected")


def sized_caches(tables: int) -> dict[str, int]:
    """Caches that hold every table, with room to grow: a fifth more, in thousands."""
    size = -(-int(tables * 1.2 + 1000) // 1000) * 1000
    return {"table_open_cache": size, "table_definition_cache": size}


def sized_options(tables: int, files: int) -> tuple[str, ...]:
    """The restart's options: the caches, innodb_open_files, and ``files`` open files (what
    this process may give the server: RLIMIT_NOFILE's hard limit). The server lowers
    table_open_cache to fit them (it counts two files per cached table), without a word in
    its log: the report shows what was asked and what it took."""
    size = sized_caches(tables)["table_open_cache"]
    return (*SERVER_OPTIONS, f"--table-open-cache={size}", f"--table-definition-cache={size}",
            f"--innodb-open-files={min(size, files // 2)}", f"--open-files-limit={files}")


# ---- the server, from outside and inside ----

class Server:
    """The private mariadbd: its variables and counters, and its process's memory and files."""

    def __init__(self, mariadb: ThrowawayMariaDB, run: BenchRun) -> None:
        self.mariadb, self.run = mariadb, run

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.run.admin() as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())

    def variables(self) -> dict[str, str]:
        names = ", ".join(f"'{name}'" for name in SETTINGS)
        return dict(self.query(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"))

    def status(self) -> dict[str, int]:
        names = ", ".join(f"'{name}'" for name in (*COUNTERS, *GAUGES))
        return {name: int(value) for name, value in self.query(
            f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")}

    def set_caches(self, caches: dict[str, int]) -> None:
        with self.run.admin() as conn, conn.cursor() as cur:
            for name, value in caches.items():
                cur.execute(f"SET GLOBAL {name} = {int(value)}")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.mariadb.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used (its own, not the client's)."""
        with open(f"/proc/{self.mariadb.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.mariadb.pid}/fd"))

    def disk_bytes(self, database: str) -> tuple[int, int]:
        """(allocated, apparent) bytes of a database's directory in the datadir."""
        allocated = apparent = 0
        for path in (self.mariadb.datadir / database).iterdir():
            stat = path.stat()
            allocated += stat.st_blocks * 512
            apparent += stat.st_size
        return allocated, apparent

    def restart(self, options: tuple[str, ...]) -> None:
        self.mariadb.stop()
        self.mariadb.options = options
        self.mariadb.start()


# ---- what is measured ----

def tenant_read(dbs, target, user_id: int) -> None:
    """Six statements on six tables of one tenant, as its pages would send them."""
    with dbs.connections.session(target) as session:
        session.get(User, user_id)
        session.scalar(sa.select(sa.func.count()).select_from(Ledger))
        session.scalars(sa.select(Ledger).order_by(Ledger.name).limit(20)).all()
        session.scalars(sa.select(AccountGroup).order_by(AccountGroup.id)).all()
        session.scalars(sa.select(VoucherType)).all()
        session.execute(sa.select(VoucherLedgerEntry.ledger_id,
                                  sa.func.sum(VoucherLedgerEntry.amount_paise))
                        .join(Voucher).where(Voucher.status == "posted")
                        .group_by(VoucherLedgerEntry.ledger_id)).all()


def read_phase(server: Server, dbs, tenants: list, seconds: float, threads: int,
               label: str, tenants_on_server: int, caches: str) -> dict:
    """Read ``tenants`` in turn from ``threads`` threads: once each untimed (a warm pass),
    then for ``seconds``; latencies and the server's counters per read."""
    targets = [(dbs.directory.find(tenant.subdomain).target, tenant.admin_user_id)
               for tenant in tenants]

    def reader(start: int, step: int, deadline: float | None, out: list[float]) -> None:
        index = start
        while True:
            if deadline is None and index >= len(targets):
                return
            began = time.perf_counter()
            if deadline is not None and began >= deadline:
                return
            tenant_read(dbs, *targets[index % len(targets)])
            out.append(time.perf_counter() - began)
            index += step

    def run_threads(deadline: float | None) -> list[float]:
        outs = [[] for _ in range(threads)]
        workers = [threading.Thread(target=reader, args=(n, threads, deadline, outs[n]))
                   for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return [latency for out in outs for latency in out]

    run_threads(None)  # every tenant once
    check_stop()
    server.query("FLUSH STATUS")  # Max_used_connections from here
    before, cpu = server.status(), server.cpu_seconds()
    began = time.perf_counter()
    latencies = run_threads(time.perf_counter() + seconds)
    elapsed = time.perf_counter() - began
    cpu, after = server.cpu_seconds() - cpu, server.status()
    reads = len(latencies)
    per_read = {name: (after[name] - before[name]) / reads for name in COUNTERS}
    return {"label": label, "on_server": tenants_on_server, "read": len(tenants),
            "caches": caches, "reads": reads, "rps": reads / elapsed,
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "server_cpu": cpu / reads, "per_read": per_read,
            "max_used": after["Max_used_connections"]}


def median_seconds(action, times: int = 3) -> float:
    values = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        values.append(time.perf_counter() - began)
    return statistics.median(values)


def step_figures(server: Server, run: BenchRun, dbs, tenants: list, backup_dir: Path) -> dict:
    """Sign-up DDL, information_schema, backups, memory, files and disk with ``tenants``."""
    backend, prefix = dbs.backend, dbs.settings.tenant_db_prefix
    count = len(tenants)
    created, dropped, new_disk = [], [], None
    for number in range(DDL_SAMPLES):
        name = f"{prefix}ddl_{count}_{number}"
        began = time.perf_counter()
        backend.create_database(name)
        apply_pending(backend, name, Tier.TENANT)
        created.append(time.perf_counter() - began)
        if new_disk is None:
            new_disk = (*server.disk_bytes(name), backend.database_size(name))
    for number in range(DDL_SAMPLES):
        began = time.perf_counter()
        backend.drop_database(f"{prefix}ddl_{count}_{number}")
        dropped.append(time.perf_counter() - began)
    check_stop()

    figures = {"tenants": count, "create_migrate": statistics.median(created),
               "drop": statistics.median(dropped), "new_disk": new_disk,
               **catalog_timings(dbs, tenants[-1].db_name)}
    backups = []
    for tenant in tenants[-BACKUP_SAMPLES:]:
        began = time.perf_counter()
        path = backup_database(backend, tenant.db_name, backup_dir, tier=Tier.TENANT,
                               tenant=tenant.subdomain)
        backups.append(time.perf_counter() - began)
        figures["backup_bytes"] = path.stat().st_size
        for leftover in backup_dir.iterdir():
            leftover.unlink()
    figures["backup"] = statistics.median(backups)
    check_stop()
    figures.update(memory_state(server),
                   tables=server.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                       "TABLE_SCHEMA LIKE %s",
                                       (prefix.replace("_", r"\_") + "%",))[0][0],
                   disk=sum(server.disk_bytes(name)[0]
                            for name in backend.list_databases(prefix)))
    return figures


def catalog_timings(dbs, one_database: str) -> dict[str, float]:
    """What the platform asks information_schema (medians of 3, seconds): every tenant's size
    (the monitoring report), the tenant databases (repair, the fleet), one tenant's size
    (the storage limit), and the fleet check (finvera migrate --status)."""
    backend, prefix = dbs.backend, dbs.settings.tenant_db_prefix
    return {"sizes": median_seconds(lambda: backend.database_sizes(prefix)),
            "list": median_seconds(lambda: backend.list_databases(prefix)),
            "one_size": median_seconds(lambda: backend.database_size(one_database)),
            "fleet_check": median_seconds(lambda: FleetMigrator(dbs).check())}


def memory_state(server: Server) -> dict[str, int]:
    """The server's resident memory, buffer pool data, open files and gauges, now."""
    status = server.status()
    page = int(server.variables()["innodb_page_size"])
    return {"rss": server.rss_bytes(), "fds": server.open_fds(),
            "buffer_pool": status["Innodb_buffer_pool_pages_data"] * page, **status}


def connection_memory(server: Server, run: BenchRun) -> tuple[int, float]:
    """Server memory per idle connection: RSS before and with CONNECTION_PROBE more open."""
    before = server.rss_bytes()
    opened = []
    try:
        for _ in range(CONNECTION_PROBE):
            conn = run.admin()
            opened.append(conn)
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        time.sleep(0.5)
        return CONNECTION_PROBE, (server.rss_bytes() - before) / CONNECTION_PROBE
    finally:
        for conn in opened:
            conn.close()


# ---- the run ----

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=400,
                        help="tenants at the last step (default 400; the doc's figures: 1000)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="length of each timed read phase (default 4)")
    parser.add_argument("--threads", type=int, default=4,
                        help="reader threads (default 4)")
    args = parser.parse_args(argv)
    if args.tenants < 4 * FIRST:
        parser.error(f"--tenants must be at least {4 * FIRST}")
    steps = sorted({FIRST, args.tenants // 4, args.tenants // 2, args.tenants})

    mariadb = ThrowawayMariaDB(startup_timeout=120, shutdown_timeout=300)
    # Its temporary tables (information_schema's, on disk once large) in its own directory,
    # out of the shared /tmp.
    own_tmp = (f"--tmpdir={mariadb.root}",)
    mariadb.options = (*SERVER_OPTIONS, *own_tmp)
    with mariadb, \
            BenchRun(f"mysql://root@{mariadb.host}:{mariadb.port}",
                     MAX_TENANT_CONNECTIONS=BOUND) as run, \
            tempfile.TemporaryDirectory(prefix=f"{run.prefix}backups_") as backup_dir:
        server = Server(mariadb, run)
        print_machine(run)
        print("server: a private mariadbd, " + " ".join(SERVER_OPTIONS))
        print("  " + ", ".join(f"{k}={v}" for k, v in server.variables().items()), flush=True)
        dbs = platform_databases(run)
        began = time.perf_counter()
        tenants = create_tenants(run, dbs, FIRST)
        made = [f"{FIRST} in {time.perf_counter() - began:.1f} s"]
        steps_out, reads = [], []
        for count in steps:
            if count > len(tenants):
                began = time.perf_counter()
                tenants += clone_tenants(run, dbs, tenants[0], range(len(tenants) + 1,
                                                                   count + 1))
                made.append(f"to {count} in {time.perf_counter() - began:.1f} s")
            print(f"step {count} tenants (made {made[-1]}): reading, DDL, "
                  "information_schema, backups", flush=True)
            reads.append(read_phase(server, dbs, tenants, args.seconds, args.threads,
                                    "all", count, "default"))
            steps_out.append(step_figures(server, run, dbs, tenants, Path(backup_dir)))

        tables = steps_out[-1]["tables"]
        sized = sized_caches(tables)
        print(f"{len(tenants)} tenants, {tables} tables: rounds of default and sized "
              f"({sized['table_open_cache']}) table caches", flush=True)
        for number in range(2):
            order = ("default", "sized") if number == 0 else ("sized", "default")
            for caches in order:
                server.set_caches(DEFAULT_CACHES if caches == "default" else sized)
                reads.append(read_phase(server, dbs, tenants, args.seconds, args.threads,
                                        f"round {number + 1}", len(tenants), caches))
        server.set_caches(DEFAULT_CACHES)
        reads.append(read_phase(server, dbs, tenants[:FIRST], args.seconds, args.threads,
                                f"{FIRST} of them", len(tenants), "default"))

        print("restart with innodb_open_files and open_files_limit sized too", flush=True)
        dbs.dispose()
        began = time.perf_counter()
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        asked = sized_options(tables, files)
        server.restart((*asked, *own_tmp))
        restart_seconds = time.perf_counter() - began
        dbs = platform_databases(run)
        restarted = server.variables()
        reads.append(read_phase(server, dbs, tenants[:FIRST], args.seconds, args.threads,
                                f"restarted, {FIRST} of them", len(tenants), "all sized"))
        few = memory_state(server)
        reads.append(read_phase(server, dbs, tenants, args.seconds, args.threads,
                                "restarted", len(tenants), "all sized"))
        every = memory_state(server)
        catalog = catalog_timings(dbs, tenants[-1].db_name)
        probe = connection_memory(server, run)
        dbs.dispose()
        print("kill -9 and start again: crash recovery", flush=True)
        mariadb.kill()
        began = time.perf_counter()
        mariadb.start()
        recovery_seconds = time.perf_counter() - began
        report(steps_out, reads, restarted, (restart_seconds, recovery_seconds),
               (few, every, catalog), probe, made, files, asked)
    return 0


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def report(steps, reads, restarted, restarts, sized, probe, made, files, asked) -> None:
    mib, kib = 2**20, 1024
    base = steps[0]
    print(f"\ntenants made: {', '.join(made)} (one provisioned, the rest cloned)")
    rows = []
    for step in steps:
        extra = step["tenants"] - base["tenants"]
        grown = step["rss"] - base["rss"]
        beside = grown - (step["buffer_pool"] - base["buffer_pool"])
        rows.append([step["tenants"], step["tables"], f"{step['rss'] / mib:.0f}",
                     f"{step['buffer_pool'] / mib:.0f}",
                     f"{grown / extra / kib:.0f}" if extra else "-",
                     f"{beside / extra / kib:.0f}" if extra else "-",
                     step["fds"], step["Open_tables"], step["Open_table_definitions"],
                     step["Innodb_num_open_files"], f"{step['disk'] / mib:.0f}",
                     f"{step['disk'] / step['tenants'] / kib:.0f}"])
    table(["tenants", "tables", "server RSS MiB", "buffer pool data MiB",
           "RSS per added tenant KiB", "of it outside the buffer pool KiB", "open fds",
           "Open_tables", "Open_table_definitions",
           "Innodb_num_open_files", "tenant disk MiB", "disk per tenant KiB"], rows,
          "The server as it fills (MariaDB's default caches, after each step's reads):")

    def against(key: str, shown) -> str:
        return f"{shown(step[key])} ({ratio(step[key], base[key])})"

    rows = []
    for step in steps:
        rows.append([step["tenants"], against("create_migrate", lambda v: f"{v:.2f}"),
                     against("drop", lambda v: f"{v:.3f}"), against("sizes", ms),
                     against("list", ms), against("one_size", ms), against("fleet_check", ms),
                     against("backup", lambda v: f"{v:.2f}")])
    table(["tenants", "CREATE DATABASE + migrate, s", "DROP DATABASE, s",
           "all sizes (information_schema)", "list tenant databases", "one tenant's size",
           "fleet check (migrate --status)", "backup of one tenant, s"], rows,
          f"Operations as it fills (medians; in brackets against {base['tenants']} tenants):")
    allocated, apparent, reported = steps[0]["new_disk"]
    print(f"\na new tenant (created and migrated, seeded, no books): {allocated / kib:.0f} KiB "
          f"on disk ({apparent / kib:.0f} KiB apparent), information_schema says "
          f"{reported / kib:.0f} KiB (data + indexes); its compressed backup "
          f"{steps[0]['backup_bytes'] / kib:.1f} KiB")
    last = steps[-1]
    print(f"a backup of every tenant, one after another as `finvera backup --tier tenant` "
          f"does: about {last['backup'] * last['tenants']:.0f} s for "
          f"{last['tenants']} tenants ({last['backup']:.2f} s each)")

    baseline = reads[0]
    rows = []
    for read in reads:
        per = read["per_read"]
        rows.append([read["label"], read["on_server"], read["read"], read["caches"],
                     f"{read['rps']:.0f}", ms(read["p50"]), ms(read["p99"]),
                     ratio(read["p50"], baseline["p50"]),
                     f"{read['server_cpu'] * 1000:.2f}",
                     ratio(read["server_cpu"], baseline["server_cpu"]),
                     f"{per['Opened_tables']:.2f}", f"{per['Table_open_cache_misses']:.2f}",
                     f"{per['Table_open_cache_overflows']:.2f}",
                     f"{per['Opened_table_definitions']:.2f}",
                     f"{per['Innodb_buffer_pool_reads']:.2f}", read["max_used"]])
    table(["phase", "tenants on server", "tenants read", "table caches", "reads/s", "p50",
           "p99", "p50 vs first", "server CPU ms/read", "vs first", "Opened_tables /read",
           "cache misses /read",
           "cache overflows /read", "Opened_table_definitions /read",
           "buffer pool disk reads /read", "Max_used_connections"], rows,
          "The tenant read (6 statements, 6 tables), every tenant in turn:")
    restart_seconds, recovery_seconds = restarts
    print(f"\nclean restart in {restart_seconds:.1f} s (shutdown and start), after kill -9 "
          f"ready again in {recovery_seconds:.1f} s (crash recovery)")
    requested = dict(option.removeprefix("--").split("=", 1) for option in asked)
    print(f"after the restart, open files allowed {files} (RLIMIT_NOFILE's hard limit): "
          + ", ".join(f"{name}={restarted[name]} (asked {requested[name.replace('_', '-')]})"
                      for name in ("table_open_cache", "table_definition_cache",
                                   "innodb_open_files", "open_files_limit")))
    few, every, catalog = sized
    extra = last["tenants"] - FIRST
    print(f"after reading {FIRST} of them: server RSS {few['rss'] / mib:.0f} MiB "
          f"(buffer pool data {few['buffer_pool'] / mib:.0f} MiB); after reading all "
          f"{last['tenants']}: {every['rss'] / mib:.0f} MiB ({every['buffer_pool'] / mib:.0f} "
          f"MiB), {every['fds']} open fds, Open_tables {every['Open_tables']}, "
          f"Open_table_definitions {every['Open_table_definitions']}, Innodb_num_open_files "
          f"{every['Innodb_num_open_files']}")
    print(f"server memory per active tenant, caches holding it: "
          f"{(every['rss'] - few['rss']) / extra / kib:.0f} KiB, of it buffer pool "
          f"{(every['buffer_pool'] - few['buffer_pool']) / extra / kib:.0f} KiB")
    print(f"information_schema with the caches sized, {last['tenants']} tenants: " + ", ".join(
        f"{name} {ms(catalog[name])} ({ratio(catalog[name], base[name])} of {FIRST} tenants, "
        f"{ratio(catalog[name], last[name])} of the default caches)"
        for name in ("sizes", "list", "one_size", "fleet_check")))
    count, per_connection = probe
    print(f"server memory per idle connection: {per_connection / kib:.0f} KiB ({count} "
          f"opened); max_connections {restarted['max_connections']}, thread_stack "
          f"{int(restarted['thread_stack']) // kib} KiB, sort_buffer_size "
          f"{int(restarted['sort_buffer_size']) // kib} KiB (allocated when a sort needs it)")
    print(f"connections: the reads of up to {last['tenants']} tenants used at most "
          f"{max(read['max_used'] for read in reads)} server connections at once "
          f"(MAX_TENANT_CONNECTIONS={BOUND}, plus master and the benchmark's own)")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
