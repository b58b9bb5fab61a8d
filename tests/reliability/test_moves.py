"""A tenant moves back and forth between two servers while writers post ledgers and vouchers
to a real ``finvera serve`` (gunicorn, 2 worker processes, each caching tenant lookups): no write
answered 201 is lost, none is on an old copy only, and every table comes over row for row.

The second server is a throwaway mariadbd beside the test MariaDB. Every move runs as
``finvera tenants move --keep-source`` in a process of its own, so the old copies stay to be
checked: each must hold nothing the final copy lacks. A second tenant on the other server takes
writes throughout and must never see a 503. The default run moves twice under 3 writers per
tenant; ``-m reliability`` moves 6 times under 6 (FINVERA_RELIABILITY_SCALE multiplies both),
and also kills ``finvera tenants move`` with SIGKILL at each of its steps, one after another,
each followed by ``finvera tenants repair`` (the default suite does one step, in
tests/tenancy/test_moves.py, and every step in-process).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from api.models.tenant import Ledger, Voucher
from api.tenancy.moves import STEPS, table_checksums
from api.tenancy.provisioning import PAUSE_VARIABLE
from tests.conftest import SECOND, two_server_environment
from tests.reliability.conftest import (
    LineWatcher,
    Server,
    build_platform,
    figures,
    run_cli,
    scaled,
    start_cli,
)

pytestmark = pytest.mark.mysql
RETRY_PAUSE = 0.05  # writers retry a 503 tenant_moving this soon (not Retry-After: a test)


@dataclass
class Writes:
    """What the writers of one tenant sent and were told."""

    acknowledged: set[str] = field(default_factory=set)  # "ledger:<name>", "voucher:<narration>"
    statuses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(conn: http.client.HTTPConnection, path: str, headers: dict, body: dict):
    conn.request("POST", path, body=json.dumps(body),
                 headers={**headers, "Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    return response.status, json.loads(payload) if payload else None


def writer(port: int, tenant, books: dict, number: int, writes: Writes,
           stop: threading.Event) -> None:
    """Post a ledger, then a voucher, and so on until ``stop``; each is retried while the
    tenant is moving, and recorded once it is answered 201."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    serial = 0
    while not stop.is_set():
        serial += 1
        key = f"w{number} n{serial}"
        if serial % 2:
            kind, path, body = "ledger", "/api/ledgers", {"name": f"Moved {key}",
                                                          "account_group_id": books["group"]}
        else:
            kind, path, body = "voucher", "/api/vouchers", {
                "voucher_type": "Journal", "date": "2026-11-25", "narration": key,
                "entries": [{"ledger_id": books["cash"], "type": "Dr", "amount": "1.00"},
                            {"ledger_id": books["bank"], "type": "Cr", "amount": "1.00"}]}
        while not stop.is_set():
            try:
                status, answer = post(conn, path, tenant.headers, body)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, answer = "connection error", None
            code = (answer or {}).get("error", {}).get("code") if status != 201 else None
            with writes.lock:
                writes.statuses[f"{status} {code}" if code else str(status)] += 1
                if status == 201:
                    writes.acknowledged.add(
                        f"ledger:{body['name']}" if kind == "ledger" else f"voucher:{key}")
            if code != "tenant_moving":
                break  # answered (201, or an error: not acknowledged, so not owed)
            time.sleep(RETRY_PAUSE)
    conn.close()


def books_of(platform, tenant) -> dict:
    from api.models.tenant import AccountGroup

    with platform.tenant_session(tenant.subdomain) as session:
        group = session.scalar(sa.select(AccountGroup.id).where(
            AccountGroup.code == "cash_in_hand"))
        cash, bank = Ledger(name="Cash", account_group_id=group), \
            Ledger(name="Bank", account_group_id=group)
        session.add_all([cash, bank])
        session.commit()
        return {"group": group, "cash": cash.id, "bank": bank.id}


def stored(platform, server: str, database: str) -> set[str]:
    """The writers' ledgers and vouchers found in ``database`` on ``server``."""
    engine = platform.dbs.servers[server].create_engine(database, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            names = connection.scalars(sa.select(Ledger.name).where(
                Ledger.name.like("Moved %")))
            found = {f"ledger:{name}" for name in names}
            return found | {f"voucher:{narration}" for narration in connection.scalars(
                sa.select(Voucher.narration).where(Voucher.narration.is_not(None)))}
    finally:
        engine.dispose()


def every_row(platform, server: str, database: str) -> dict[str, list]:
    """Every row of every table, sorted: an independent check beside the move's checksums."""
    engine = platform.dbs.servers[server].create_engine(database, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return {table: sorted(map(tuple, connection.exec_driver_sql(
                f"SELECT * FROM `{table}`")), key=repr)
                for table in sa.inspect(connection).get_table_names()}
    finally:
        engine.dispose()


def move(platform, env, subdomain: str, target: str) -> str:
    """``finvera tenants move SUB --to TARGET --keep-source``; returns the kept copy's name."""
    done = run_cli(env, "tenants", "move", subdomain, "--to", target, "--keep-source")
    assert done.returncode == 0, done.stdout + done.stderr
    kept = done.stdout.strip().splitlines()[-1]
    assert kept.startswith("the old copy is kept as "), done.stdout
    return kept.removeprefix("the old copy is kept as ").split(" on ")[0]


def moves_under_writes(platform, env, tmp_path, moves: int, writers: int) -> None:
    mover, steady = platform.add_tenant("mover"), platform.add_tenant("steady")
    server_of = {"mover": "default", "steady": SECOND}
    assert {t.subdomain: platform.dbs.directory.find(t.subdomain).db_server
            for t in (mover, steady)} == server_of
    books = {t.subdomain: books_of(platform, t) for t in (mover, steady)}
    app = Server(env, tmp_path / "serve.log", workers=2, threads=8)
    writes = {"mover": Writes(), "steady": Writes()}
    stop, kept = threading.Event(), []
    try:
        app.wait_ready()
        threads = [threading.Thread(target=writer, daemon=True, args=(
            app.port, tenant, books[tenant.subdomain], number, writes[tenant.subdomain], stop))
            for tenant in (mover, steady) for number in range(writers)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        for _ in range(moves):
            time.sleep(0.5)  # writes land on each server between the moves
            before = len(writes["mover"].acknowledged)
            target = SECOND if server_of["mover"] == "default" else "default"
            kept.append((server_of["mover"], move(platform, env, "mover", target)))
            server_of["mover"] = target
            time.sleep(0.5)
            deadline = time.monotonic() + 30
            while len(writes["mover"].acknowledged) <= before:  # writes resume on the new one
                assert time.monotonic() < deadline, writes["mover"].statuses
                time.sleep(0.05)
        seconds = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(60)
        report = platform_report(platform, app.port)
    finally:
        stop.set()
        app.stop()

    final = stored(platform, server_of["mover"], mover.db_name)
    lost = writes["mover"].acknowledged - final
    only_on_old = set().union(*(stored(platform, server, name) for server, name in kept)) - final
    figures("moves under writes (HTTP, 2 workers)", moves=moves, writers_per_tenant=writers,
            acknowledged=len(writes["mover"].acknowledged), lost=len(lost),
            only_on_an_old_copy=len(only_on_old), answers=dict(writes["mover"].statuses),
            steady_answers=dict(writes["steady"].statuses), seconds=round(seconds, 1))
    assert lost == set()
    assert only_on_old == set()
    assert writes["mover"].statuses["503 tenant_moving"] > 0  # the window was there
    assert set(writes["steady"].statuses) == {"201"}  # the other tenant never noticed
    assert writes["steady"].acknowledged <= stored(platform, SECOND, steady.db_name)
    servers = {server["name"]: server["tenant_dbs"] for server in report["servers"]}
    assert servers == {"default": int(server_of["mover"] == "default"),
                       SECOND: 1 + int(server_of["mover"] == SECOND)}

    # Writers stopped: one more move, and its kept copy equals the new one row for row.
    source = server_of["mover"]
    target = SECOND if source == "default" else "default"
    last_kept = move(platform, env, "mover", target)
    assert every_row(platform, source, last_kept) == every_row(platform, target, mover.db_name)


def platform_report(platform, port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/admin/system/databases", headers=platform.admin["support"])
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body["data"]


@pytest.fixture
def two_servers(request, tmp_path, mysql_server, second_mariadb):
    env = two_server_environment(mysql_server, second_mariadb, TENANT_CACHE_TTL_SECONDS="1",
                                 FINVERA_BACKUP_DIR=str(tmp_path / "backups"))
    platform = build_platform(env)
    yield platform, env
    platform.close()
    second = platform.dbs.servers[SECOND]
    for name in second.list_databases(platform.settings.tenant_db_prefix):
        second.drop_database(name)
    second.dispose()


def test_a_tenant_moved_back_and_forth_under_writes_loses_nothing(two_servers, tmp_path):
    platform, env = two_servers
    moves_under_writes(platform, env, tmp_path, moves=scaled(2, 2), writers=scaled(3))


@pytest.mark.reliability
def test_many_moves_under_many_writers_lose_nothing(two_servers, tmp_path):
    platform, env = two_servers
    moves_under_writes(platform, env, tmp_path, moves=scaled(6, 2), writers=scaled(6))


@pytest.mark.reliability
def test_kill_9_at_every_step_of_a_move_then_repair(two_servers):
    platform, env = two_servers
    tenant = platform.add_tenant("mover", ledgers=20)
    server, started, outcomes = "default", time.monotonic(), {}
    for step in STEPS:
        before = table_checksums(platform.dbs.servers[server], tenant.db_name)
        target = SECOND if server == "default" else "default"
        mover = start_cli({**env, PAUSE_VARIABLE: step}, "tenants", "move", "mover", "--to",
                          target)
        errors = LineWatcher(mover.stderr)
        errors.start()
        try:
            assert errors.wait_for(f"paused before {step}", 60), errors.text
        finally:
            mover.kill()  # SIGKILL, to this child's pid
            mover.wait(30)
        repaired = run_cli(env, "tenants", "repair", "mover")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        if step == "drop_source":  # killed after the switch: the move stands
            server = target
        outcomes[step] = repaired.stdout.strip() or "nothing to repair"
        platform.dbs.forget_tenant(tenant.id, tenant.db_name)
        row = platform.dbs.directory.find("mover")
        assert (row.db_server, row.status) == (server, "active"), step
        assert table_checksums(platform.dbs.servers[server], tenant.db_name) == before, step
    leftovers = run_cli(env, "tenants", "repair", "--all", "--drop-orphans")
    assert leftovers.returncode == 0, leftovers.stderr
    figures("kill -9 at every step of a move", steps=len(STEPS),
            undone=sum("undid" in text for text in outcomes.values()),
            left_after_the_switch=leftovers.stdout.count("orphan database"),
            seconds=round(time.monotonic() - started, 1))
    assert sum("undid the interrupted move" in text for text in outcomes.values()) == \
        len(STEPS) - 2  # not before the mark (nothing done), nor after the switch
    assert leftovers.stdout.count("dropped") == 1  # the quarantine the last kill left
