"""Fleet migration: ``finvera migrate --tier tenant --all`` over N tenants, against raw DDL.

    python -m bench.fleet [--tenants 200] [--full] [--rounds 2]

What is measured, as whole processes (``python -m api migrate --tier tenant --all
--parallel P``, the command a deploy runs, start-up included):

- one new migration over N tenants, with --parallel 1 and 4. The "new" migration is the
  newest tenant migration, 0005.tenant-voucher-sequences (CREATE TABLE and an INSERT ...
  SELECT): before each run every tenant is put back to before it (its table dropped, its row
  in ``_yoyo_migration`` deleted), which is exactly the state of a fleet on the previous
  release, with no file added to migrations/;
- a no-op run, nothing pending.

Against what (the floors), in the same rounds, order reversed every other round:

- the same statements (yoyo's reading of the file) sent raw to every tenant database: over one
  PyMySQL connection for --parallel 1, over 4 connections in 4 threads for --parallel 4;
- the same again with the least bookkeeping a migrator can do that records each tenant's
  migration when it commits and keeps two migrators apart (``bookkeeping``): in one round
  trip the switch, a rollback, the named lock and the read under it of yoyo's version and
  records; then the statements; then yoyo's log row, its record, the commit and the lock's
  release in one round trip. What ``migrate`` costs above this is the migrator itself;
  what this costs above the raw floor is the price of per-tenant records;
- for the no-op run: a process that imports the ``finvera`` command and exits (``import
  api.cli``), i.e. the start-up every command pays before it does anything (``migrate`` does
  not build the app).

Tenants are made fast (see ``bench.common.create_tenants``: one provisioned, the rest cloned).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from pymysql.constants import CLIENT
from yoyo import read_migrations
from yoyo.migrations import read_sql_migration

from api.tenancy.yoyo_mysql import migration_lock_name
from bench.common import (
    ROOT,
    BenchRun,
    check_stop,
    create_tenants,
    platform_databases,
    print_machine,
    subprocess_environment,
    table,
)

NEWEST = "0005.tenant-voucher-sequences"
UNDO = ("DROP TABLE IF EXISTS voucher_sequences",)


def in_each(run: BenchRun, databases: list[str], statements, threads: int) -> float:
    """Send ``statements`` to every database, over ``threads`` connections that take several
    statements at once (``;``-separated); seconds taken. A list is sent after a ``USE`` on
    autocommitting connections; a function of the database gives statements that do it all
    themselves, the ``USE`` and the ``COMMIT`` (its connections do not autocommit)."""
    local, opened, lock = threading.local(), [], threading.Lock()

    def one(database: str) -> None:
        if not hasattr(local, "conn"):
            local.conn = run.admin(autocommit=not callable(statements),
                                   client_flag=CLIENT.MULTI_STATEMENTS)
            with lock:
                opened.append(local.conn)
        with local.conn.cursor() as cur:
            if not callable(statements):
                cur.execute(f"USE `{database}`")
            for statement in (statements(database) if callable(statements) else statements):
                cur.execute(statement)
                while cur.nextset():
                    pass

    began = time.perf_counter()
    try:
        if threads == 1:
            for database in databases:
                one(database)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, databases))
    finally:
        for conn in opened:
            conn.close()
    return time.perf_counter() - began


def with_bookkeeping(statements: list[str], migration_hash: str):
    """The bookkeeping floor's statements for one database (see the module's docstring)."""
    def for_database(database: str) -> list[str]:
        lock = migration_lock_name(database)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return [
            f"USE `{database}`; ROLLBACK; SELECT GET_LOCK('{lock}', 1); "
            "SELECT MAX(version) FROM _yoyo_version; "
            "SELECT migration_hash FROM _yoyo_migration ORDER BY applied_at_utc",
            *statements,
            "INSERT INTO _yoyo_log (id, migration_hash, migration_id, operation, username, "
            f"hostname, created_at_utc) VALUES ('{uuid.uuid1()}', '{migration_hash}', "
            f"'{NEWEST}', 'apply', 'bench', 'bench', '{now}'); "
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) "
            f"VALUES ('{migration_hash}', '{NEWEST}', '{now}'); "
            f"COMMIT; SELECT RELEASE_LOCK('{lock}')",
        ]
    return for_database


def undo_newest(run: BenchRun, databases: list[str]) -> None:
    """Put every tenant back to before the newest migration."""
    in_each(run, databases, [*UNDO, f"DELETE FROM _yoyo_migration WHERE migration_id = "
                                    f"'{NEWEST}'"], 4)


def command(run: BenchRun, *args: str) -> float:
    """Run ``python -m api <args>`` (or ``python -c`` code) with the run's environment; its
    seconds, from start to exit. A failure stops the benchmark with its output."""
    argv = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "api", *args]
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=subprocess_environment(run.env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=1800, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summary = [line for line in done.stdout.splitlines() if line.startswith("summary:")]
    command.last_summary = summary[-1] if summary else ""
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--full", action="store_true", help="1000 tenants")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    count = 1000 if args.full else args.tenants
    newest = str(next((ROOT / "migrations" / "tenant").glob(f"{NEWEST}.sql")))
    statements = read_sql_migration(newest)[2]
    [migration] = [m for m in read_migrations(str(ROOT / "migrations" / "tenant"))
                   if m.id == NEWEST]
    bookkeeping = with_bookkeeping(statements, migration.hash)

    with BenchRun() as run:
        print_machine(run)
        dbs = platform_databases(run)
        began = time.perf_counter()
        databases = [tenant.db_name for tenant in create_tenants(run, dbs, count, ledgers=0)]
        dbs.dispose()
        print(f"{count} tenants made in {time.perf_counter() - began:.1f} s (1 provisioned, "
              f"the rest cloned); the new migration: {NEWEST} ({len(statements)} statements)",
              flush=True)

        cases = {
            "floor, 1 connection": lambda: in_each(run, databases, statements, 1),
            "bookkeeping, 1 connection": lambda: in_each(run, databases, bookkeeping, 1),
            "migrate --parallel 1": lambda: command(
                run, "migrate", "--tier", "tenant", "--all", "--parallel", "1"),
            "floor, 4 connections": lambda: in_each(run, databases, statements, 4),
            "bookkeeping, 4 connections": lambda: in_each(run, databases, bookkeeping, 4),
            "migrate --parallel 4": lambda: command(
                run, "migrate", "--tier", "tenant", "--all", "--parallel", "4"),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for number in range(args.rounds):
            order = list(cases) if number % 2 == 0 else list(reversed(cases))
            for name in order:
                check_stop()
                undo_newest(run, databases)
                seconds = cases[name]()
                times[name].append(seconds)
                note = f"  ({command.last_summary})" if name.startswith("migrate") else ""
                print(f"  round {number + 1} {name:26s} {seconds:7.2f} s{note}", flush=True)
                if name.startswith("migrate") and f"{count} applied" not in command.last_summary:
                    raise RuntimeError(f"expected {count} tenants applied: "
                                       f"{command.last_summary}")

        # A floor leaves the table made but not recorded: bring the fleet current, untimed.
        undo_newest(run, databases)
        command(run, "migrate", "--tier", "tenant", "--all", "--parallel", "4")
        noop: dict[str, list[float]] = {"migrate, nothing pending": [],
                                        "start-up floor (import api.cli)": []}
        for number in range(3):
            for name in (list(noop) if number % 2 == 0 else list(reversed(noop))):
                if name.startswith("migrate"):
                    noop[name].append(command(run, "migrate", "--tier", "tenant", "--all"))
                    if f"{count} current" not in command.last_summary:
                        raise RuntimeError(f"expected all current: {command.last_summary}")
                else:
                    noop[name].append(command(
                        run, "-c", "import api.cli"))
        report(times, noop, count, args.rounds)
    return 0


def report(times, noop, count, rounds) -> None:
    median = {name: statistics.median(values) for name, values in {**times, **noop}.items()}
    startup = median["start-up floor (import api.cli)"]
    rows = []
    for name in times:
        rows.append([name, f"{median[name]:.2f}", f"{median[name] / count * 1000:.1f}"])
        if name.startswith("migrate"):
            rest = median[name] - startup
            rows.append([f"  {name}, less start-up", f"{rest:.2f}",
                         f"{rest / count * 1000:.1f}"])
    rows += [[name, f"{median[name]:.2f}", "-"] for name in noop]
    table(["run (migrate: the whole process)", "median s", "ms per tenant"], rows,
          f"{count} tenants, medians of {rounds} rounds (no-op and start-up: of 3):")
    print()
    for parallel in (1, 4):
        app = median[f"migrate --parallel {parallel}"]
        connections = f"{parallel} connection{'s' if parallel > 1 else ''}"
        floor, kept = median[f"floor, {connections}"], median[f"bookkeeping, {connections}"]
        print(f"ratio to the floor, --parallel {parallel}: {app / floor:.1f}x "
              f"({(app - startup) / floor:.1f}x less the start-up); to the bookkeeping "
              f"floor: {app / kept:.1f}x ({(app - startup) / kept:.1f}x less the start-up); "
              f"the bookkeeping floor is {kept / floor:.2f}x the floor")
    speedup = median["migrate --parallel 1"] / median["migrate --parallel 4"]
    print(f"--parallel 4 is {speedup:.2f}x as fast as --parallel 1 (whole process)")
    work = median["migrate, nothing pending"] - startup
    print(f"no-op: {median['migrate, nothing pending']:.2f} s, of which start-up "
          f"{startup:.2f} s; the rest, {work * 1000:.0f} ms, is the run itself "
          f"({work / count * 1000:.2f} ms per tenant)")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
