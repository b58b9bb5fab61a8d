"""The fleet run (`finvera migrate --tier tenant`): a new tenant migration reaches every live
tenant and only them, N at a time, once each; status and dry-run; failures, concurrent runs,
sign-ups during a run, and a run killed half-way."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api import create_app, migrate_command
from api.config import load_settings
from api.models.master import TenantMaster
from api.tenancy import fleet, migrations
from api.tenancy.fleet import FleetBusy, FleetMigrator, TenantResult
from api.tenancy.migrations import Tier, migration_ids, pending_ids
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.registry import live_tenants
from api.tenancy.yoyo_mysql import MULTI_STATEMENTS, migration_lock_name
from tests.conftest import SECOND, initialized_app, mysql_environment

COLUMN_MIGRATION = "0099.tenant-fleet-test"
INDEX_MIGRATION = "0100.tenant-fleet-test-index"
DATA_MIGRATION = "0101.tenant-fleet-test-data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dbs(app):
    return app.extensions["finvera"]


@pytest.fixture
def add_migration(monkeypatch, tmp_path):
    """Add a tenant migration to a copy of migrations/ that the code reads from then on."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, folder)
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", folder)

    def add(migration_id: str, sql: str, rollback: str) -> Path:
        (folder / "tenant" / f"{migration_id}.sql").write_text(sql)
        (folder / "tenant" / f"{migration_id}.rollback.sql").write_text(rollback)
        migrations.tier_migrations.cache_clear()
        return folder

    yield add
    migrations.tier_migrations.cache_clear()


def add_column_migration(add_migration) -> Path:
    return add_migration(COLUMN_MIGRATION, "ALTER TABLE users ADD COLUMN fleet_test INTEGER;\n",
                         "ALTER TABLE users DROP COLUMN fleet_test;\n")


def make_tenants(dbs, *subdomains: str) -> dict[str, str]:
    """Sign tenants up, several at once (as fast as it gets): {subdomain: database}."""
    def sign_up(subdomain):
        return provision_tenant(dbs, SignUp(company_name=subdomain.title(), subdomain=subdomain,
                                            email=f"owner@{subdomain}.in",
                                            admin_password="fleet test password")).tenant

    with ThreadPoolExecutor(4) as pool:
        return {tenant.subdomain: tenant.db_name for tenant in pool.map(sign_up, subdomains)}


def set_status(dbs, subdomain: str, status: str) -> None:
    with Session(dbs.master_engine) as session:
        session.execute(sa.update(TenantMaster).where(TenantMaster.subdomain == subdomain)
                        .values(status=status))
        session.commit()


def on_tenant_database(dbs, database: str, sql: str):
    engine = dbs.backend.create_engine(database, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            result = connection.exec_driver_sql(sql)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def applies(dbs, database: str, migration_id: str) -> int:
    """How many times yoyo's log says ``migration_id`` was applied to ``database``."""
    [(count,)] = on_tenant_database(
        dbs, database, "SELECT COUNT(*) FROM _yoyo_log "
        f"WHERE migration_id = '{migration_id}' AND operation = 'apply'")
    return count


def lines(result) -> list[str]:
    return result.output.splitlines()


class ConnectionSampler:
    """The most connections to tenant databases MariaDB listed at once, sampled every 5 ms."""

    def __init__(self, dbs) -> None:
        self.dbs, self.most, self.done = dbs, 0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        like = self.dbs.settings.tenant_db_prefix.replace("_", r"\_") + "%"
        with self.dbs.master_engine.connect() as connection:
            while not self.done.wait(0.005):
                count = connection.exec_driver_sql(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB LIKE %s",
                    (like,)).scalar()
                self.most = max(self.most, count)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.most


def test_a_new_migration_reaches_every_live_tenant_n_at_a_time(dbs, runner, add_migration,
                                                                monkeypatch):
    live = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
    databases = make_tenants(dbs, *live, "golf", "hotel")
    set_status(dbs, "echo", "suspended")
    set_status(dbs, "golf", "failed")
    set_status(dbs, "hotel", "deleted")
    busy, peak, guard = [0], [0], threading.Lock()
    real_apply = fleet.apply_migrations

    def counted_apply(*args, **kwargs):
        with guard:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        try:
            time.sleep(0.05)  # long enough for the workers to overlap
            return real_apply(*args, **kwargs)
        finally:
            with guard:
                busy[0] -= 1

    monkeypatch.setattr(fleet, "apply_migrations", counted_apply)

    add_column_migration(add_migration)
    result = runner.invoke(args=["migrate", "--tier", "tenant", "--all", "--parallel", "1"])
    assert result.exit_code == 0, result.output
    assert peak[0] == 1
    # Not a terminal: one line per tenant as it finishes, then the summary.
    assert sorted(lines(result)[:6]) == [f"tenant {name}: applied {COLUMN_MIGRATION}"
                                         for name in live]
    assert lines(result)[6:] == ["summary: 6 applied (6 migrations), 0 current, 0 failed "
                                 "(6 tenants)", "applied: " + ", ".join(live)]

    add_migration(INDEX_MIGRATION, "CREATE INDEX ix_users_fleet_test ON users (fleet_test);\n",
                  "DROP INDEX ix_users_fleet_test ON users;\n")
    peak[0] = 0
    sampler = ConnectionSampler(dbs) if dbs.backend.name == "mysql" else None
    try:
        result = runner.invoke(args=["migrate", "--tier", "tenant", "--all", "--parallel", "3"])
    finally:
        most_connections = sampler.stop() if sampler else None
    assert result.exit_code == 0, result.output
    assert peak[0] == 3
    if sampler:  # each worker migrates its tenants on one connection of the run's
        assert 0 < most_connections <= 3
    for name, database in databases.items():
        assert applies(dbs, database, COLUMN_MIGRATION) == (name in live)
        assert applies(dbs, database, INDEX_MIGRATION) == (name in live)

    # A second run finds every tenant current with one read each, without opening yoyo.
    monkeypatch.setattr(fleet, "apply_migrations", None)
    result = runner.invoke(args=["migrate", "--tier", "tenant", "--all", "--parallel", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(lines(result)[:6]) == [f"tenant {name}: up to date" for name in live]
    assert lines(result)[6:] == ["summary: 6 current, 0 failed (6 tenants)"]


def test_status_and_dry_run_show_each_tenant_and_change_nothing(dbs, runner, add_migration):
    databases = make_tenants(dbs, "alpha", "bravo", "charlie")
    add_column_migration(add_migration)
    assert runner.invoke(args=["migrate", "--tier", "tenant", "--tenant", "alpha"]).exit_code == 0

    status = runner.invoke(args=["migrate", "--status"])
    assert status.exit_code == 0, status.output
    assert lines(status) == [
        f"master ({dbs.settings.master_db_name}): up to date",
        f"main ({dbs.settings.db_name}): up to date",
        "tenant alpha: up to date",
        f"tenant bravo: {COLUMN_MIGRATION}",
        f"tenant charlie: {COLUMN_MIGRATION}",
        "summary: 2 pending (2 migrations), 1 current, 0 failed (3 tenants)",
    ]
    dry_run = runner.invoke(args=["migrate", "--tier", "tenant", "--all", "--dry-run"])
    assert dry_run.exit_code == 0, dry_run.output
    assert lines(dry_run)[:3] == ["tenant alpha: up to date",
                                  f"tenant bravo: would apply {COLUMN_MIGRATION}",
                                  f"tenant charlie: would apply {COLUMN_MIGRATION}"]
    assert runner.invoke(args=["migrate", "--status"]).output == status.output
    one = runner.invoke(args=["migrate", "--status", "--tier", "tenant", "--tenant", "bravo"])
    assert lines(one)[0] == f"tenant bravo: {COLUMN_MIGRATION}"

    # Read in batches (of two here), a batch with an unreadable database is read one by one.
    on_tenant_database(dbs, databases["charlie"], "DROP TABLE _yoyo_migration")
    with batch_reads() as statements:
        report = FleetMigrator(dbs, batch_size=2).check()
    assert [result.pending for result in report.results] == [
        (), (COLUMN_MIGRATION,), tuple(migration_ids(Tier.TENANT))]
    if dbs.backend.name == "mysql":  # one statement per batch: [alpha, bravo], [charlie]
        assert len(statements) == 2


@contextlib.contextmanager
def batch_reads():
    """The fleet's batch reads (``SELECT '<db>', migration_id FROM ...``) that any engine runs
    in the block, as (server port, statement)."""
    seen = []

    def note(connection, _cursor, statement, *_rest):
        if statement.startswith("SELECT '"):
            seen.append((connection.engine.url.port, statement))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)


def test_one_failing_tenant_does_not_stop_the_others_and_a_rerun_finishes(dbs, runner,
                                                                          add_migration):
    databases = make_tenants(dbs, "alpha", "bravo", "charlie", "delta")
    on_tenant_database(dbs, databases["bravo"],
                       "ALTER TABLE users ADD COLUMN fleet_test INTEGER")  # ADD COLUMN will fail
    dbs.backend.drop_database(databases["delta"])
    add_column_migration(add_migration)

    result = runner.invoke(args=["migrate", "--tier", "tenant", "--all", "--parallel", "2"])
    assert result.exit_code == 1
    assert f"tenant alpha: applied {COLUMN_MIGRATION}" in lines(result)
    assert f"tenant charlie: applied {COLUMN_MIGRATION}" in lines(result)
    assert "summary: 2 applied (2 migrations), 0 current, 2 failed (4 tenants)" in lines(result)
    assert any(line.startswith("failed: bravo: ") and "fleet_test" in line.lower()
               for line in lines(result))
    assert f"failed: delta: database {databases['delta']} does not exist" in lines(result)
    assert lines(result)[-1] == ("Error: 2 of 4 tenants failed; fix the cause and run the "
                                 "same command again: it applies only what is left")

    on_tenant_database(dbs, databases["bravo"], "ALTER TABLE users DROP COLUMN fleet_test")
    set_status(dbs, "delta", "deleted")
    rerun = runner.invoke(args=["migrate", "--tier", "tenant", "--all"])
    assert rerun.exit_code == 0, rerun.output
    assert lines(rerun)[-2:] == ["summary: 1 applied (1 migration), 2 current, 0 failed "
                                 "(3 tenants)", "applied: bravo"]
    for name in ("alpha", "bravo", "charlie"):
        assert applies(dbs, databases[name], COLUMN_MIGRATION) == 1


def paused_run(dbs, **run_options):
    """A fleet run in a thread that stops before its first tenant until ``resume`` is set."""
    paused, resume, outcome = threading.Event(), threading.Event(), {}

    def pause(_result):
        paused.set()
        assert resume.wait(30)

    def run():
        outcome["report"] = FleetMigrator(dbs, before_tenant=pause).run(**run_options)

    worker = threading.Thread(target=run)
    worker.start()
    assert paused.wait(30)
    return worker, resume, outcome


def test_a_second_run_fails_at_once_and_each_migration_is_applied_once(dbs, runner,
                                                                       add_migration):
    databases = make_tenants(dbs, "alpha", "bravo", "charlie")
    add_column_migration(add_migration)
    worker, resume, outcome = paused_run(dbs)
    try:
        started = time.monotonic()
        second = runner.invoke(args=["migrate", "--tier", "tenant", "--all"])
        assert second.exit_code == 1
        assert lines(second) == [f"Error: another tenant migration run holds lock "
                                 f"{dbs.settings.tenant_db_prefix}fleet: let it finish, then "
                                 "run again"]
        with pytest.raises(FleetBusy):
            FleetMigrator(dbs).run()
        assert time.monotonic() - started < 5
        # Looking is allowed while a run holds the lock.
        assert runner.invoke(args=["migrate", "--status", "--tier", "tenant"]).exit_code == 0
    finally:
        resume.set()
        worker.join()
    assert [result.state for result in outcome["report"].results] == ["applied"] * 3
    for database in databases.values():
        assert applies(dbs, database, COLUMN_MIGRATION) == 1


def test_a_tenant_signed_up_during_a_run_ends_current(dbs, add_migration):
    make_tenants(dbs, "alpha", "bravo")
    add_column_migration(add_migration)
    worker, resume, outcome = paused_run(dbs)
    try:
        late = make_tenants(dbs, "latecomer")["latecomer"]
    finally:
        resume.set()
        worker.join()
    assert [result.subdomain for result in outcome["report"].of("applied")] == ["alpha", "bravo"]
    engine = dbs.backend.create_engine(late, poolclass=sa.pool.NullPool)
    assert pending_ids(engine, Tier.TENANT) == []
    engine.dispose()
    assert [result.state for result in FleetMigrator(dbs).check().results] == ["current"] * 3


KILLED_RUN = """
import json, sys, time
from pathlib import Path
from yoyo.migrations import Migration
from api.config import load_settings
from api.tenancy import migrations
from api.tenancy.databases import Databases
from api.tenancy.fleet import FleetMigrator, ThreadedExecutor

migrations.MIGRATIONS_DIR = Path(sys.argv[2])
started, real_steps = [], Migration.process_steps

def process_steps(migration, backend, direction, force=False):
    started.append(migration.id)
    if len(started) > 2:  # the first two tenants are migrated, then two stop half-way
        sys.stdout.write("paused\\n")  # one write: two threads' print()s can interleave
        sys.stdout.flush()
        time.sleep(600)
    return real_steps(migration, backend, direction, force)

Migration.process_steps = process_steps
FleetMigrator(Databases(load_settings(json.loads(sys.argv[1]))), ThreadedExecutor(2)).run()
"""


def test_a_run_killed_half_way_is_finished_by_the_next(dbs, runner, add_migration, environment):
    databases = make_tenants(dbs, "alpha", "bravo", "charlie", "delta")
    folder = add_column_migration(add_migration)
    killed = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, json.dumps(environment), str(folder)], cwd=ROOT,
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert [killed.stdout.readline() for _ in range(2)] == ["paused\n"] * 2
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert [applies(dbs, databases[name], COLUMN_MIGRATION)
            for name in ("alpha", "bravo", "charlie", "delta")] == [1, 1, 0, 0]
    with dbs.backend.lock(f"{dbs.settings.tenant_db_prefix}fleet", timeout=10):
        pass  # the killed run's fleet lock went with its process

    rerun = runner.invoke(args=["migrate", "--tier", "tenant", "--all", "--parallel", "2"])
    assert rerun.exit_code == 0, rerun.output
    # MySQL's named lock went with the killed process; SQLite's yoyo lock rows stayed behind.
    cleared = "" if dbs.backend.shares_connections else \
        " (cleared a yoyo lock left by a killed run)"
    assert sorted(lines(rerun)[:4]) == [
        "tenant alpha: up to date", "tenant bravo: up to date",
        *(f"tenant {name}: applied {COLUMN_MIGRATION}{cleared}" for name in ("charlie", "delta"))]
    assert lines(rerun)[4:] == ["summary: 2 applied (2 migrations), 2 current, 0 failed "
                                "(4 tenants)", "applied: charlie, delta"]
    for database in databases.values():
        assert applies(dbs, database, COLUMN_MIGRATION) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--tier", "tenant"], "--tier tenant needs --all or at least one --tenant"),
    (["--tier", "tenant", "--all", "--tenant", "acme"], "give --tenant or --all, not both"),
    (["--tier", "main", "--all"], "--tenant, --all and --parallel go with --tier tenant"),
    (["--status", "--dry-run"], "--dry-run goes with --tier, not with --status"),
    (["--status", "--parallel", "2"], "--parallel goes with a run"),
    (["--tier", "tenant", "--all", "--parallel", "0"], "--parallel"),
])
def test_options_that_mean_nothing_are_refused(tmp_path, args, message):
    app = create_app(load_settings({"FINVERA_DATA_DIR": str(tmp_path)}))  # no database needed
    result = app.test_cli_runner().invoke(args=["migrate", *args])
    assert result.exit_code == 2 and message in result.output


def test_with_no_tenants_or_unknown_ones(dbs, runner):
    result = runner.invoke(args=["migrate", "--tier", "tenant", "--all"])
    assert (result.exit_code, result.output) == (0, "tenant: no active or suspended tenants\n")
    unknown = runner.invoke(args=["migrate", "--tier", "tenant", "--tenant", "nobody"])
    assert unknown.exit_code == 1
    assert lines(unknown) == ["Error: no active or suspended tenant nobody"]
    assert runner.invoke(args=["migrate", "--tier", "main", "--dry-run"]).output == (
        f"main ({dbs.settings.db_name}): up to date\n")


def test_on_a_terminal_progress_is_a_bar(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    progress = migrate_command._Progress()
    for name in ("alpha", "bravo", "charlie"):
        progress(TenantResult(name, f"db_{name}"), 3)
    progress.close()
    output = capsys.readouterr().out
    assert "3/3" in output and "tenant alpha" not in output


@pytest.mark.mysql
def test_the_fleet_reads_and_migrates_each_tenant_on_its_own_server(servers_app, add_migration,
                                                                    monkeypatch):
    dbs = servers_app.extensions["finvera"]
    databases = {}  # one after another: at once, all four could land on one server
    for name in ("alpha", "bravo", "charlie", "delta"):
        databases.update(make_tenants(dbs, name))
    servers = {row.subdomain: row.db_server for row in live_tenants(dbs)}
    assert sorted(servers.values()) == ["default", "default", SECOND, SECOND]
    add_column_migration(add_migration)
    reads_each = []
    monkeypatch.setattr(FleetMigrator, "_read_each",
                        lambda self, backend, names, existing=None:
                        reads_each.append(names) or ({}, {}))

    with batch_reads() as statements:
        report = FleetMigrator(dbs).check()
    assert [result.pending for result in report.results] == [(COLUMN_MIGRATION,)] * 4
    assert reads_each == []  # no batch failed: each was read on the server that holds it
    ports = {server: backend.port for server, backend in dbs.servers.items()}
    assert sorted(port for port, _ in statements) == sorted(ports.values())
    for port, statement in statements:
        on_it = [name for name, server in servers.items() if ports[server] == port]
        assert sorted(re.findall(r"SELECT '(\w+)'", statement)) == sorted(
            databases[name] for name in on_it)

    result = servers_app.test_cli_runner().invoke(
        args=["migrate", "--tier", "tenant", "--all", "--parallel", "2"])
    assert result.exit_code == 0, result.output
    for name, server in servers.items():
        where = "" if server == "default" else f" ({server})"
        assert f"tenant {name}{where}: applied {COLUMN_MIGRATION}" in lines(result)
        engine = dbs.servers[server].create_engine(databases[name], poolclass=sa.pool.NullPool)
        assert pending_ids(engine, Tier.TENANT) == []
        engine.dispose()


@pytest.mark.mysql
def test_a_server_that_cannot_be_read_fails_its_tenants_only(mysql_server, second_mariadb,
                                                             add_migration):
    nowhere = socket.socket()
    nowhere.bind(("127.0.0.1", 0))  # a port with nothing listening: connections are refused
    servers = {SECOND: {"host": second_mariadb.host, "port": second_mariadb.port,
                        "user": "root", "password": ""},
               "tenants-3": {"host": "127.0.0.1", "port": nowhere.getsockname()[1]}}
    env = mysql_environment(mysql_server, TENANT_DB_SERVERS=json.dumps(servers),
                            TENANT_DB_SERVERS_CLOSED="tenants-3", DB_CONNECT_TIMEOUT="1")
    try:
        with initialized_app(env) as app:
            dbs = app.extensions["finvera"]
            make_tenants(dbs, "alpha", "bravo")
            with Session(dbs.master_engine) as session:  # a tenant on the missing server
                session.add(TenantMaster(subdomain="lost", company_name="Lost", email="o@l.in",
                                         status="active", db_server="tenants-3",
                                         db_name=f"{dbs.settings.tenant_db_prefix}lost_1"))
                session.commit()
            add_column_migration(add_migration)
            result = app.test_cli_runner().invoke(args=["migrate", "--tier", "tenant", "--all"])
    finally:
        nowhere.close()
    assert result.exit_code == 1
    assert "summary: 2 applied (2 migrations), 0 current, 1 failed (3 tenants)" in lines(result)
    assert any(line.startswith("failed: lost: server tenants-3: ") and "refused" in line
               for line in lines(result)), result.output


@pytest.mark.mysql
def test_a_tenant_another_process_is_migrating_fails_and_the_next_run_finishes_it(
        mysql_server, add_migration):
    with initialized_app(mysql_environment(mysql_server)) as app:
        dbs = app.extensions["finvera"]
        databases = make_tenants(dbs, "alpha", "bravo")
        add_column_migration(add_migration)
        holder = dbs.backend.create_engine(None, poolclass=sa.pool.NullPool)
        with holder.connect() as other:  # another process, in the middle of migrating bravo
            assert other.exec_driver_sql("SELECT GET_LOCK(%s, 0)", (
                migration_lock_name(databases["bravo"]),)).scalar() == 1
            report = FleetMigrator(dbs).run()
        holder.dispose()
        assert [result.subdomain for result in report.of("applied")] == ["alpha"]
        [failed] = report.of("failed")
        assert failed.subdomain == "bravo"
        assert f"another process is migrating {databases['bravo']}" in failed.error
        assert applies(dbs, databases["bravo"], COLUMN_MIGRATION) == 0

        rerun = FleetMigrator(dbs).run()  # the lock went with the other connection
        assert [result.subdomain for result in rerun.of("applied")] == ["bravo"]
        assert [applies(dbs, database, COLUMN_MIGRATION)
                for database in databases.values()] == [1, 1]


@pytest.mark.mysql
def test_a_migration_whose_record_fails_leaves_its_data_step_undone(mysql_server, add_migration):
    with initialized_app(mysql_environment(mysql_server)) as app:
        dbs = app.extensions["finvera"]
        database = make_tenants(dbs, "alpha")["alpha"]
        add_migration(DATA_MIGRATION, "UPDATE users SET full_name = 'Renamed';\n",
                      "UPDATE users SET full_name = NULL;\n")
        # The server refuses the migration's log row, written after its data step.
        on_tenant_database(dbs, database, "ALTER TABLE _yoyo_log ADD CONSTRAINT refuse_test "
                                          f"CHECK (migration_id <> '{DATA_MIGRATION}')")
        [failed] = FleetMigrator(dbs).run().of("failed")
        assert "refuse_test" in failed.error
        assert on_tenant_database(dbs, database, "SELECT full_name FROM users") != [("Renamed",)]
        assert applies(dbs, database, DATA_MIGRATION) == 0

        on_tenant_database(dbs, database, "ALTER TABLE _yoyo_log DROP CONSTRAINT refuse_test")
        assert FleetMigrator(dbs).run().ok
        assert on_tenant_database(dbs, database, "SELECT full_name FROM users") == [("Renamed",)]
        assert applies(dbs, database, DATA_MIGRATION) == 1


@pytest.mark.mysql
def test_every_migration_of_a_tenant_runs_under_its_lock_and_the_lock_is_given_back(
        mysql_server, add_migration):
    with initialized_app(mysql_environment(mysql_server)) as app:
        dbs = app.extensions["finvera"]
        database = make_tenants(dbs, "alpha")["alpha"]
        lock = migration_lock_name(database)
        add_column_migration(add_migration)
        # The second of the two migrations notes whether its connection holds the lock.
        add_migration(INDEX_MIGRATION, "CREATE TABLE fleet_lock_seen AS SELECT "
                                       f"IS_USED_LOCK('{lock}') = CONNECTION_ID() AS held;\n",
                      "DROP TABLE fleet_lock_seen;\n")
        [result] = FleetMigrator(dbs).run().of("applied")
        assert result.applied == (COLUMN_MIGRATION, INDEX_MIGRATION)
        assert on_tenant_database(dbs, database, "SELECT held FROM fleet_lock_seen") == [(1,)]
        assert on_tenant_database(dbs, database, f"SELECT IS_FREE_LOCK('{lock}')") == [(1,)]


@pytest.mark.mysql
def test_a_tenant_costs_two_round_trips_besides_its_migrations_statements(mysql_server,
                                                                          add_migration):
    with initialized_app(mysql_environment(mysql_server)) as app:
        dbs = app.extensions["finvera"]
        databases = make_tenants(dbs, "alpha", "bravo")
        add_column_migration(add_migration)  # one statement
        engine = dbs.backend.create_engine(None, poolclass=sa.pool.NullPool,
                                           connect_args=MULTI_STATEMENTS)
        connection = engine.raw_connection()
        sent: list[str] = []
        query = connection.dbapi_connection.query
        connection.dbapi_connection.query = lambda sql, *args: sent.append(sql) or query(
            sql, *args)
        try:
            for database in databases.values():  # the first also reads the connection's sql_mode
                sent.clear()
                assert migrations.apply_migrations(dbs.backend, database, Tier.TENANT,
                                                   connection=connection) == [COLUMN_MIGRATION]
        finally:
            connection.close()
            engine.dispose()
        assert len(sent) == 3, sent
        assert sent[0].startswith(f"USE `{databases['bravo']}`")
        assert "RELEASE_LOCK" in sent[-1] and "COMMIT" in sent[-1]
        assert on_tenant_database(dbs, databases["bravo"],
                                  "SELECT COUNT(fleet_test) FROM users") == [(0,)]
