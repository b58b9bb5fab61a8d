"""Moving a tenant between servers (``finvera tenants move``): the copy is whole, the old copy is
fenced off, a failure at any step (or a process killed at any step, then repair) leaves the tenant
served from the old server, whole; refusals change nothing.

The second server is a throwaway mariadbd. Writers over real HTTP while tenants move back and
forth are in tests/reliability/test_moves.py.
"""

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.models.tenant import AccountGroup, Ledger, User
from api.tenancy import moves
from api.tenancy.moves import STEPS, MoveError, move_tenant, table_checksums
from api.tenancy.provisioning import PAUSE_VARIABLE, SignUp, provision_tenant
from api.tenancy.repair import repair
from api.tenancy.subdomains import quarantine_name
from api.tenancy.tokens import TENANT, Claims
from tests.conftest import SECOND, initialized_app, same_databases
from tests.reliability.conftest import subprocess_environment

pytestmark = pytest.mark.mysql
ROOT = Path(__file__).resolve().parents[2]
QUICK = 0.1  # cache_wait for in-process moves that do not test other processes' caches


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs, not even the undo."""


class Tenant:
    """A tenant with books (ledgers, a voucher) and its admin's request headers."""

    def __init__(self, app, subdomain: str) -> None:
        self.app, self.dbs, self.subdomain = app, app.extensions["finvera"], subdomain
        row = provision_tenant(self.dbs, SignUp(subdomain.title(), subdomain,
                                                f"o@{subdomain}.in", admin_password="move pw")
                               ).tenant
        self.id, self.db_name = row.id, row.db_name
        with self.session() as session:
            groups = dict(session.execute(sa.select(AccountGroup.code, AccountGroup.id)).all())
            session.add_all([Ledger(name=f"Ledger {n}", account_group_id=groups["cash_in_hand"])
                             for n in range(3)])
            admin = session.scalar(sa.select(User.id).where(User.role == "admin"))
            session.commit()
            self.ledgers = list(session.scalars(sa.select(Ledger.id)))
        token = app.extensions["finvera_tokens"].issue(Claims(
            scope=TENANT, user_id=admin, tenant_id=row.id, tenant_db=row.db_name))
        self.headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": subdomain}
        self.client = app.test_client()
        assert self.post_voucher().status_code == 201
        self.foreign_keys = self.foreign_keys_on("default")
        assert len(self.foreign_keys) >= 10

    def foreign_keys_on(self, server: str) -> set[tuple]:
        """(constraint, table, referenced table, referenced database) of the tenant's FKs."""
        engine = self.dbs.servers[server].create_engine(None, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            return set(map(tuple, connection.exec_driver_sql(
                "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, "
                "UNIQUE_CONSTRAINT_SCHEMA FROM information_schema.REFERENTIAL_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = %s", (self.db_name,))))

    def session(self) -> Session:
        return Session(self.dbs.connections.engine(self.dbs.directory.find(self.subdomain).target))

    def row(self) -> TenantMaster:
        with Session(self.dbs.master_engine) as session:
            return session.get(TenantMaster, self.id)

    def post_voucher(self, client=None):
        return (client or self.client).post("/api/vouchers", headers=self.headers, json={
            "voucher_type": "Journal", "date": "2026-11-25", "narration": "moved",
            "entries": [{"ledger_id": self.ledgers[0], "type": "Dr", "amount": "10.00"},
                        {"ledger_id": self.ledgers[1], "type": "Cr", "amount": "10.00"}]})

    def checksums(self, server: str | None = None, database: str | None = None):
        return table_checksums(self.dbs.servers[server or self.row().db_server],
                               database or self.db_name)

    def databases(self, server: str) -> list[str]:
        return self.dbs.servers[server].list_databases(self.dbs.settings.tenant_db_prefix)


@pytest.fixture
def acme(servers_app) -> Tenant:
    tenant = Tenant(servers_app, "acme")
    assert tenant.row().db_server == "default"
    return tenant


def assert_served_whole_from(tenant: Tenant, server: str, checksums: dict,
                             status: str = "active") -> None:
    """The tenant's row, its data (table by table) and its requests are where they were."""
    row = tenant.row()
    assert (row.db_server, row.status, row.moving_to, row.status_before_move) == (
        server, status, None, None)
    assert tenant.checksums(server) == checksums
    # Foreign keys came along (or back), still between the tenant's own tables, and hold.
    assert tenant.foreign_keys_on(server) == tenant.foreign_keys
    engine = tenant.dbs.servers[server].create_engine(tenant.db_name,
                                                      poolclass=sa.pool.NullPool)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO ledgers (name, account_group_id) "
                                   "VALUES ('Orphan', 999999)")
    others = [name for name in tenant.dbs.servers if name != server]
    for other in others:
        assert tenant.db_name not in tenant.databases(other)
    assert quarantine_name(tenant.dbs.settings.tenant_db_prefix, tenant.id) not in \
        tenant.databases(server)
    if status == "active":
        listed = tenant.client.get("/api/ledgers", headers=tenant.headers)
        assert listed.status_code == 200 and listed.json["data"]["total"] == 3


def test_a_move_copies_verifies_switches_and_drops_the_old_copy(acme, servers_app):
    before = acme.checksums()
    moved = move_tenant(acme.dbs, "acme", SECOND, cache_wait=QUICK)
    assert (moved.source, moved.target, moved.database, moved.kept) == (
        "default", SECOND, acme.db_name, None)
    assert moved.tables == len(before) and moved.rows == sum(r for r, _ in before.values())
    assert_served_whole_from(acme, SECOND, before)
    info = acme.dbs.cipher.decrypt(acme.row().db_connection_encrypted)
    target = acme.dbs.servers[SECOND]
    assert (info["server"], info["host"], info["port"], info["database"]) == (
        SECOND, target.host, target.port, acme.db_name)
    # The same token works (the database keeps its name), and writes land on the new server.
    assert acme.post_voucher().status_code == 201
    assert acme.checksums(SECOND)["vouchers"][0] == before["vouchers"][0] + 1

    back = move_tenant(acme.dbs, "acme", "default", keep_source=True, cache_wait=QUICK)
    assert back.kept and back.kept in acme.databases(SECOND)
    now = acme.checksums("default")
    assert acme.checksums(SECOND, back.kept) == now  # the kept copy is the one copied
    assert_served_whole_from(acme, "default", now)
    report = repair(acme.dbs)
    assert (SECOND, back.kept) in report.orphan_databases  # listed, dropped on request


def test_a_suspended_tenant_moves_suspended(acme):
    with Session(acme.dbs.master_engine) as session:
        session.get(TenantMaster, acme.id).status = "suspended"
        session.commit()
    before = acme.checksums()
    move_tenant(acme.dbs, "acme", SECOND, cache_wait=QUICK)
    assert_served_whole_from(acme, SECOND, before, status="suspended")


@pytest.mark.parametrize("step", STEPS[:-1])
def test_a_failure_at_any_step_leaves_the_tenant_on_the_old_server_whole(acme, step):
    before = acme.checksums()

    def fault(current):
        if current == step:
            raise RuntimeError(f"injected at {current}")

    with pytest.raises(MoveError, match=f"injected at {step}.*undone"):
        move_tenant(acme.dbs, "acme", SECOND, on_step=fault, cache_wait=QUICK)
    assert_served_whole_from(acme, "default", before)
    assert acme.post_voucher().status_code == 201


def test_a_copy_that_differs_is_caught_and_undone(acme, monkeypatch):
    before = acme.checksums()
    real_copy = moves.copy_database

    def lossy_copy(source, database, target, target_database):
        real_copy(source, database, target, target_database)
        with acme.dbs.servers[SECOND].create_engine(target_database).begin() as connection:
            connection.exec_driver_sql("DELETE FROM audit_logs ORDER BY id DESC LIMIT 1")

    monkeypatch.setattr(moves, "copy_database", lossy_copy)
    with pytest.raises(MoveError, match="audit_logs: .* rows, source .*undone"):
        move_tenant(acme.dbs, "acme", SECOND, cache_wait=QUICK)
    assert_served_whole_from(acme, "default", before)


def test_the_fence_waits_for_a_transaction_in_flight_and_keeps_its_write(acme):
    """A writer that began before the rename (an old route, in another process) finishes first:
    its write is copied. One that comes after fails: nothing lands in the old copy."""
    source = acme.dbs.servers["default"]
    writer = pymysql.connect(host=source.host, port=source.port, user=source.user,
                             password=source.password, database=acme.db_name, autocommit=False)
    renaming, results = threading.Event(), {}

    def on_step(step):
        if step == "copy":
            renaming.set()

    with writer.cursor() as cursor:
        cursor.execute("UPDATE ledgers SET name = 'Written in flight' WHERE id = %s",
                       (acme.ledgers[2],))
    mover = threading.Thread(target=lambda: results.update(
        moved=move_tenant(acme.dbs, "acme", SECOND, on_step=on_step, cache_wait=QUICK)))
    mover.start()
    try:
        assert not renaming.wait(1.5)  # RENAME TABLE waits on the open transaction
    finally:
        writer.commit()
    mover.join(60)
    assert renaming.is_set() and results["moved"].target == SECOND
    with pytest.raises(pymysql.err.MySQLError), writer.cursor() as cursor:
        # the old route now fails: no silent write
        cursor.execute("INSERT INTO ledgers (name, account_group_id) VALUES ('Late', 1)")
    writer.close()
    with acme.session() as session:
        names = set(session.scalars(sa.select(Ledger.name)))
    assert "Written in flight" in names and "Late" not in names


def test_a_transaction_that_holds_the_tables_too_long_fails_the_move_not_the_write(acme,
                                                                                   monkeypatch):
    monkeypatch.setattr(moves, "MOVE_LOCK_WAIT_SECONDS", 1)
    source = acme.dbs.servers["default"]
    writer = pymysql.connect(host=source.host, port=source.port, user=source.user,
                             password=source.password, database=acme.db_name, autocommit=False)
    with writer.cursor() as cursor:
        cursor.execute("UPDATE ledgers SET name = 'Held' WHERE id = %s", (acme.ledgers[2],))
    with pytest.raises(MoveError, match="undone"):
        move_tenant(acme.dbs, "acme", SECOND, cache_wait=QUICK)
    writer.commit()
    writer.close()
    with acme.session() as session:
        assert "Held" in set(session.scalars(sa.select(Ledger.name)))
    assert acme.row().db_server == "default"


def test_a_stale_route_in_another_process_cannot_write_to_the_old_copy(acme, servers_app,
                                                                       servers_environment):
    with same_databases({**servers_environment, "TENANT_CACHE_TTL_SECONDS": "3600"}) as stale:
        client = stale.test_client()
        assert acme.post_voucher(client).status_code == 201  # it now trusts its lookup
        before = acme.checksums()
        move_tenant(acme.dbs, "acme", SECOND, cache_wait=QUICK)  # (no waiting it out)
        refused = acme.post_voucher(client)
        assert refused.status_code >= 500, refused.json  # failed, not written to the old copy
    assert_served_whole_from(acme, SECOND, before)


def test_requests_during_a_move_get_503_tenant_moving(acme, servers_environment):
    paused, resume = threading.Event(), threading.Event()

    def pause(step):
        if step == "quarantine":
            paused.set()
            assert resume.wait(30)

    mover = threading.Thread(target=move_tenant, args=(acme.dbs, "acme", SECOND),
                             kwargs={"on_step": pause, "cache_wait": QUICK})
    mover.start()
    try:
        assert paused.wait(30)
        with same_databases({**servers_environment, "TENANT_CACHE_TTL_SECONDS": "0"}) as other:
            for response in (other.test_client().get("/api/ledgers", headers=acme.headers),
                             acme.post_voucher(other.test_client())):
                assert (response.status_code, response.json["error"]["code"],
                        response.headers["Retry-After"]) == (503, "tenant_moving", "5")
        assert "a sign-up, move or repair" in str(pytest.raises(
            MoveError, move_tenant, acme.dbs, "acme", SECOND).value)
        assert repair(acme.dbs, ["acme"]).in_progress == ["acme"]  # a live move: left alone
    finally:
        resume.set()
        mover.join(60)
    assert acme.row().db_server == SECOND


@pytest.mark.parametrize("step", STEPS[1:])  # killed before the mark: nothing happened
def test_a_move_killed_at_any_step_is_undone_by_repair(acme, step):
    before = acme.checksums()

    def crash(current):
        if current == step:
            raise Crash

    with pytest.raises(Crash):
        move_tenant(acme.dbs, "acme", SECOND, on_step=crash, cache_wait=QUICK)
    switched = step == "drop_source"  # killed after the switch: the move stands
    assert acme.row().status == ("active" if switched else "moving")

    report = repair(acme.dbs, drop_orphans=True)
    if switched:
        assert report.moves_undone == {}
        quarantine = quarantine_name(acme.dbs.settings.tenant_db_prefix, acme.id)
        assert report.dropped == [("default", quarantine)]  # the old copy, left behind
        assert_served_whole_from(acme, SECOND, before)
    else:
        assert list(report.moves_undone) == ["acme"] and report.dropped == []
        assert_served_whole_from(acme, "default", before)
    assert repair(acme.dbs, drop_orphans=True).orphan_databases == []


def test_kill_9_of_the_move_command_then_repair(acme, servers_environment):
    """The real thing once: `finvera tenants move` paused before the copy (tables in
    quarantine), killed with SIGKILL, then `finvera tenants repair acme`."""
    before = acme.checksums()
    env = subprocess_environment({**servers_environment, PAUSE_VARIABLE: "copy"})
    mover = subprocess.Popen([sys.executable, "-m", "api", "tenants", "move", "acme", "--to",
                              SECOND], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert mover.stderr.readline().strip() == "paused before copy"
        assert acme.row().status == "moving"
        quarantine = quarantine_name(acme.dbs.settings.tenant_db_prefix, acme.id)
        assert quarantine in acme.databases("default")
    finally:
        mover.send_signal(signal.SIGKILL)
        mover.communicate(timeout=30)
    repaired = subprocess.run([sys.executable, "-m", "api", "tenants", "repair", "acme"],
                              cwd=ROOT, env={**env, PAUSE_VARIABLE: ""}, capture_output=True,
                              text=True, timeout=60)
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.startswith(f"acme: undid the interrupted move to {SECOND}: served "
                                      "from default again")
    acme.dbs.forget_tenant(acme.id, acme.db_name)
    assert_served_whole_from(acme, "default", before)


def test_moves_that_cannot_be_are_refused_and_change_nothing(acme, servers_environment):
    runner = acme.app.test_cli_runner()
    before = acme.checksums()
    acme.dbs.servers[SECOND].create_database(acme.db_name)  # as if a copy were left there
    for args, reason in (
            (["ghost", "--to", SECOND], "no active or suspended tenant 'ghost'"),
            (["acme", "--to", "default"], "already on server 'default'"),
            (["acme", "--to", "tenants-9"], "database server 'tenants-9' is not configured"),
            (["acme", "--to", SECOND], f"a database {acme.db_name} already exists on")):
        result = runner.invoke(args=["tenants", "move", *args])
        assert result.exit_code == 1 and reason in result.output, result.output
        assert "Traceback" not in result.output
    acme.dbs.servers[SECOND].drop_database(acme.db_name)
    assert_served_whole_from(acme, "default", before)
    assert runner.invoke(args=["tenants", "move", "acme"]).exit_code == 2  # --to is required

    with same_databases({**servers_environment, "TENANT_DB_SERVERS_CLOSED": SECOND}) as closed:
        result = closed.test_cli_runner().invoke(args=["tenants", "move", "acme", "--to",
                                                       SECOND])
        assert result.exit_code == 1 and "closed to new tenants" in result.output


def test_moves_need_mysql(tmp_path):
    with initialized_app({"FINVERA_DATA_DIR": str(tmp_path)}) as app:
        result = app.test_cli_runner().invoke(args=["tenants", "move", "acme", "--to", "x"])
        assert result.exit_code == 1 and "moves need MySQL/MariaDB" in result.output


def test_the_move_command_says_each_step(acme):
    result = acme.app.test_cli_runner().invoke(
        args=["tenants", "move", "acme", "--to", SECOND, "--keep-source"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "marking acme moving (its requests get 503 tenant_moving)"
    assert lines[-2].startswith(f"moved acme from default to {SECOND}: ")
    assert lines[-1].startswith("the old copy is kept as ")


def test_with_separate_db_users_the_tenant_user_moves_too(mysql_server, second_mariadb,
                                                          tmp_path):
    from tests.conftest import two_server_environment

    env = two_server_environment(mysql_server, second_mariadb, USE_SEPARATE_DB_USERS="true",
                                 FINVERA_BACKUP_DIR=str(tmp_path))
    with initialized_app(env) as app:
        acme = Tenant(app, "acme")
        user = f"{acme.dbs.settings.tenant_db_prefix}u{acme.id}"
        before = acme.checksums()
        move_tenant(acme.dbs, "acme", SECOND, cache_wait=QUICK)
        info = acme.dbs.cipher.decrypt(acme.row().db_connection_encrypted)
        assert info["user"] == user and info["server"] == SECOND
        assert_served_whole_from(acme, SECOND, before)  # requests connect as that user
        for server, present in (("default", False), (SECOND, True)):
            engine = acme.dbs.servers[server].create_engine(None, poolclass=sa.pool.NullPool)
            with engine.connect() as connection:
                assert connection.exec_driver_sql(
                    "SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,)).scalar() == \
                    int(present)
        with pytest.raises(sa.exc.OperationalError):  # its grant covers its database alone
            engine = acme.dbs.servers[SECOND].create_engine(
                None, user=user, password=info["password"], poolclass=sa.pool.NullPool)
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT COUNT(*) FROM mysql.user")
