"""Backups and restores on both backends: every tier comes back row for row, files that do not
match their manifest are refused, failures leave nothing behind, and the CLI commands."""

import gzip
import json
import os
import re
import stat
import subprocess
from datetime import datetime

import pytest
import sqlalchemy as sa

from api.tenancy import backups
from api.tenancy.backends import MySQLBackend, backend_for
from api.tenancy.backups import (
    BackupError,
    backup_database,
    manifest_path,
    read_manifest,
    restore_database,
)
from api.tenancy.migrations import Tier, apply_migrations, migration_ids

TRICKY = ["O'Brien \"quoted\" back\\slash", "line\nbreak\ttab\r", "खाता ₹ 😀",
          "'),('injected', 1);", "-- not a comment; DROP TABLE x;", ""]
BIG = 2**63 - 1  # the largest BIGINT
BEYOND_DOUBLE = 2**53 + 1  # the first integer a float cannot hold
WHEN = datetime(2026, 11, 25, 15, 30, 0)


@pytest.fixture
def backend(settings):
    backend = backend_for(settings)
    yield backend
    backend.dispose()


def insert_rows(connection, tier):
    """Rows with quotes, backslashes, newlines, unicode, NULLs and big integers in each tier."""
    if tier == Tier.MAIN:
        connection.execute(sa.text(
            "INSERT INTO admin_users (email, password_hash, full_name, role, last_login_at) "
            "VALUES (:email, :hash, :name, 'support', :login)"),
            [{"email": f"a{i}@finvera.in", "hash": text, "name": None if i % 2 else text,
              "login": WHEN if i % 2 else None} for i, text in enumerate(TRICKY)])
        connection.execute(sa.text(
            "INSERT INTO subscription_plans (code, name, price_paise, billing_period, "
            "storage_limit_mb) VALUES ('max', :name, :price, 'yearly', 1)"),
            {"name": TRICKY[0], "price": BIG})
    elif tier == Tier.MASTER:
        connection.execute(sa.text(
            "INSERT INTO tenant_master (subdomain, company_name, contact_name, email, "
            "status_reason, db_name, subscription_ends_at) "
            "VALUES (:sub, :company, :contact, 'x@acme.in', :reason, :db, :ends)"),
            [{"sub": f"acme{i}", "company": text, "contact": None, "reason": text * 50,
              "db": f"finvera_tenant_acme{i}_1", "ends": WHEN} for i, text in enumerate(TRICKY)])
    else:
        group = connection.exec_driver_sql("SELECT MIN(id) FROM account_groups").scalar()
        connection.execute(sa.text(
            "INSERT INTO ledgers (name, account_group_id, opening_balance_paise, gstin) "
            "VALUES (:name, :group, :balance, NULL)"),
            [{"name": text or "blank", "group": group, "balance": BEYOND_DOUBLE + i}
             for i, text in enumerate(TRICKY)])


def populated(backend, settings, tier):
    """A new database of ``tier``, migrated and with tricky rows in it; returns its name."""
    name = f"{settings.tenant_db_prefix}{tier}"
    backend.create_database(name)
    apply_migrations(backend, name, tier)
    engine = backend.create_engine(name)
    with engine.begin() as connection:
        insert_rows(connection, tier)
    engine.dispose()
    return name


def table_rows(backend, database):
    """Every row of every table, sorted, by table name."""
    engine = backend.create_engine(database)
    try:
        with engine.connect() as connection:
            quote = connection.dialect.identifier_preparer.quote_identifier
            return {table: sorted(
                        (tuple(row) for row in connection.exec_driver_sql(
                            f"SELECT * FROM {quote(table)}")), key=repr)
                    for table in sa.inspect(connection).get_table_names()}
    finally:
        engine.dispose()


def forged(dump, directory, content=None, **manifest_changes):
    """A copy of a backup in ``directory``, with other content and/or manifest fields."""
    directory.mkdir(exist_ok=True)
    copy = directory / dump.name
    copy.write_bytes(dump.read_bytes() if content is None else content)
    manifest = json.loads(manifest_path(dump).read_text())
    manifest_path(copy).write_text(json.dumps({**manifest, **manifest_changes}))
    return copy


def test_every_tier_restores_row_for_row(backend, settings, tmp_path):
    out = tmp_path / "backups"
    files = []
    for tier in Tier:
        source = populated(backend, settings, tier)
        tenant = "acme-books" if tier == Tier.TENANT else None
        dump = backup_database(backend, source, out, tier=tier, tenant=tenant)
        files += [dump.name, manifest_path(dump).name]
        assert re.fullmatch(rf"{source}_\d{{8}}T\d{{6}}Z\.(sql|sqlite3)\.gz", dump.name)
        assert stat.S_IMODE(dump.stat().st_mode) == 0o600
        gzip.decompress(dump.read_bytes())  # a whole gzip file

        original = table_rows(backend, source)
        assert any(TRICKY[2] in repr(rows) for rows in original.values())
        manifest = read_manifest(dump)
        assert (manifest.file, manifest.database, manifest.tier, manifest.tenant,
                manifest.backend) == (dump.name, source, tier, tenant, backend.name)
        assert manifest.schema_version == migration_ids(tier)
        assert manifest.row_counts == {table: len(rows) for table, rows in original.items()}
        assert manifest.sha256 == backups.file_sha256(dump)
        assert manifest.size_bytes == dump.stat().st_size

        target = f"{settings.tenant_db_prefix}restored_{tier}"
        report = restore_database(backend, dump, target)
        assert (report.database, report.manifest, report.replaced) == (target, manifest, False)
        assert table_rows(backend, target) == original
    assert sorted(path.name for path in out.iterdir()) == sorted(files)  # nothing partial
    if backend.name == "sqlite":
        assert not list(backend.data_dir.glob(".*"))  # no snapshot left behind


def test_an_existing_database_is_replaced_only_when_asked(backend, settings, tmp_path):
    source = populated(backend, settings, Tier.MASTER)
    before = table_rows(backend, source)
    dump = backup_database(backend, source, tmp_path, tier=Tier.MASTER)
    with pytest.raises(BackupError, match="already exists"):
        restore_database(backend, dump, source)

    engine = backend.create_engine(source)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM tenant_master")
    engine.dispose()
    assert restore_database(backend, dump, source, replace=True).replaced
    assert table_rows(backend, source) == before


def test_a_file_that_does_not_match_its_manifest_is_refused(backend, settings, tmp_path):
    source = populated(backend, settings, Tier.MASTER)
    dump = backup_database(backend, source, tmp_path / "good", tier=Tier.MASTER)
    target = f"{settings.tenant_db_prefix}never"
    flipped = bytearray(dump.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    other = "sqlite" if backend.name == "mysql" else "mysql"
    cases = [
        (forged(dump, tmp_path / "flipped", bytes(flipped)), "checksum"),
        (forged(dump, tmp_path / "other", backend=other), f"is a {other} backup"),
        (forged(dump, tmp_path / "db", database="../../etc/passwd"), "invalid database name"),
        (forged(dump, tmp_path / "file", file="../../x.sql.gz"), "not a plain file name"),
        (forged(dump, tmp_path / "table", row_counts={"../t": 1}), "invalid table name"),
        (forged(dump, tmp_path / "tenant", tenant="../x"), "not a subdomain"),
        (forged(dump, tmp_path / "tier", tier="galaxy"), "not a valid manifest"),
        (forged(dump, tmp_path / "extra", extra=1), "fields must be"),
    ]
    manifest_path(lonely := forged(dump, tmp_path / "lonely")).unlink()
    cases.append((lonely, "is missing"))
    for path, reason in cases:
        with pytest.raises(BackupError, match=re.escape(reason)):
            restore_database(backend, path, target)
        assert not backend.database_exists(target), reason


def test_a_failed_restore_leaves_no_target(backend, settings, tmp_path):
    source = populated(backend, settings, Tier.MASTER)
    dump = backup_database(backend, source, tmp_path / "good", tier=Tier.MASTER)
    target = f"{settings.tenant_db_prefix}half_made"
    garbage = gzip.compress(b"this is neither SQL nor SQLite;\n" * 200)
    counts = read_manifest(dump).row_counts
    cases = [
        (forged(dump, tmp_path / "garbage", garbage, sha256=backups.hashlib.sha256(
            garbage).hexdigest(), size_bytes=len(garbage)), "failed"),
        (forged(dump, tmp_path / "counts", row_counts={**counts, "tenant_master": 7}),
         "tenant_master: 6 rows, manifest says 7"),
        (forged(dump, tmp_path / "tables", row_counts={**counts, "ghosts": 0}),
         "ghosts: missing rows"),
        (forged(dump, tmp_path / "schema", schema_version=[]), "applied migrations"),
    ]
    for path, reason in cases:
        with pytest.raises(BackupError, match=re.escape(reason)):
            restore_database(backend, path, target)
        assert not backend.database_exists(target), reason


def test_a_failed_backup_leaves_no_file(backend, settings, tmp_path, monkeypatch):
    out = tmp_path / "backups"
    with pytest.raises(BackupError, match="does not exist"):
        backup_database(backend, f"{settings.tenant_db_prefix}nothing", out, tier=Tier.MAIN)
    source = populated(backend, settings, Tier.MASTER)

    def interrupted(_connection):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(backups, "_schema_version", interrupted)  # after the data is written
    with pytest.raises(RuntimeError, match="interrupted"):
        backup_database(backend, source, out, tier=Tier.MASTER)
    assert list(out.iterdir()) == []


@pytest.mark.mysql
@pytest.mark.parametrize("environment", ["mysql"], indirect=True)
def test_a_failing_dump_tool_is_one_clear_error(backend, settings, tmp_path, monkeypatch):
    source = populated(backend, settings, Tier.MASTER)
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "mariadb-dump"
    fake.write_text("#!/bin/sh\necho 'CREATE TABLE `t` ('\n"
                    "echo 'mariadb-dump: Got error: 1044: Access denied' >&2\nexit 2\n")
    fake.chmod(0o700)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    out = tmp_path / "backups"
    with pytest.raises(BackupError, match=f"mariadb-dump of {source} failed: .*1044"):
        backup_database(backend, source, out, tier=Tier.MASTER)
    assert list(out.iterdir()) == []


@pytest.mark.mysql
@pytest.mark.parametrize("environment", ["mysql"], indirect=True)
def test_the_password_never_reaches_a_command_line(backend, settings, tmp_path, monkeypatch):
    source = populated(backend, settings, Tier.MASTER)
    user, password = f"{settings.tenant_db_prefix}bk", 'p"a\'ss #w\\o\\\\rd $x ;`y` \\n end'
    backend.create_user(user, password, source)
    commands = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen",
                        lambda args, **kw: commands.append(args) or real_popen(args, **kw))
    as_tenant = MySQLBackend(backend.host, backend.port, user, password)
    try:
        dump = backup_database(as_tenant, source, tmp_path, tier=Tier.MASTER)
        assert restore_database(as_tenant, dump, source, replace=True).replaced
    finally:
        as_tenant.dispose()
        backend.drop_user(user)
    assert len(commands) == 2 and not any(password in " ".join(c) for c in commands)


def test_the_dump_row_counter_reads_both_insert_layouts():
    counter = backups._DumpRowCounter()
    for line in [b"CREATE TABLE `empty` (\n", b"CREATE TABLE `t` (\n",
                 b"INSERT INTO `t` VALUES (1,'a\\'),(\\'b',0x00),(2,NULL,'(');\n",  # MySQL
                 b"INSERT INTO `t` VALUES\n", b"(3,'x\\\\'),\n", b"(4,'),(');\n",  # MariaDB
                 b"/*!40000 ALTER TABLE `t` ENABLE KEYS */;\n"]:
        counter.feed(line)
    assert counter.counts == {"empty": 0, "t": 4}


def test_backup_and_restore_commands(app, settings, tmp_path):
    runner = app.test_cli_runner()
    out = tmp_path / "backups"
    result = runner.invoke(args=["backup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count(" tables, ") == 2
    dumps = {read_manifest(path).tier: path for path in out.glob("*.gz")}
    assert set(dumps) == {Tier.MAIN, Tier.MASTER}
    main, master = str(dumps[Tier.MAIN]), str(dumps[Tier.MASTER])

    def refused(args, reason):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and reason in result.output, result.output
        assert "Traceback" not in result.output and result.output.count("\n") == 1

    refused(["restore", main], "already exists")
    result = runner.invoke(args=["restore", main, "--replace"])
    assert result.exit_code == 0 and "(replaced)" in result.output, result.output
    copy = f"{settings.tenant_db_prefix}cli_master"
    result = runner.invoke(args=["restore", master, "--as-database", copy])
    assert result.exit_code == 0, result.output
    backend = app.extensions["finvera"].backend
    assert table_rows(backend, copy) == table_rows(backend, settings.master_db_name)

    refused(["restore", master, "--as-database", settings.db_name, "--replace"],
            "is the main database")
    refused(["restore", master, "--as-database", "no-such/name"], "invalid database name")
    refused(["backup", "--tenant", "acme"], "no active or suspended tenant 'acme'")
    refused(["restore", main, "--as-tenant", "acme"], "is a backup of the main database")
    result = runner.invoke(args=["backup", "--tier", "master", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0 and result.output.startswith("master ("), result.output


def test_tenant_databases_are_backed_up_by_tier_or_by_subdomain(app, settings, tmp_path):
    from api.tenancy.provisioning import SignUp, provision_tenant

    dbs = app.extensions["finvera"]
    db_name = provision_tenant(dbs, SignUp("Acme", "acme", "owner@acme.in",
                                           admin_password="long enough")).tenant.db_name
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    tiers = sorted(read_manifest(p).tier for p in (tmp_path / "all").glob("*.gz"))
    assert tiers == sorted([Tier.MAIN, Tier.MASTER, Tier.TENANT])

    result = runner.invoke(args=["backup", "--tenant", "acme", "--out", str(tmp_path / "one")])
    assert result.exit_code == 0 and result.output.startswith("tenant (acme): ")
    [dump] = (tmp_path / "one").glob("*.gz")
    manifest = read_manifest(dump)
    assert (manifest.tier, manifest.tenant, manifest.database) == (Tier.TENANT, "acme", db_name)
    copy = f"{settings.tenant_db_prefix}acme_copy"
    assert runner.invoke(args=["restore", str(dump), "--as-database", copy]).exit_code == 0
    assert table_rows(dbs.backend, copy) == table_rows(dbs.backend, db_name)


@pytest.mark.mysql
def test_tenants_on_two_servers_are_backed_up_and_restored_on_their_own(servers_app, tmp_path):
    from api.tenancy.provisioning import SignUp, provision_tenant
    from tests.conftest import SECOND

    dbs = servers_app.extensions["finvera"]
    tenants = {sub: provision_tenant(dbs, SignUp(sub.title(), sub, f"owner@{sub}.in",
                                                 admin_password="long enough")).tenant
               for sub in ("acme", "zenith")}
    assert [tenant.db_server for tenant in tenants.values()] == ["default", SECOND]
    zenith = tenants["zenith"]
    engine = dbs.servers[SECOND].create_engine(zenith.db_name)
    with engine.begin() as connection:
        insert_rows(connection, Tier.TENANT)
    engine.dispose()

    runner = servers_app.test_cli_runner()
    result = runner.invoke(args=["backup", "--tier", "all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    dumps = {read_manifest(path).tenant or read_manifest(path).tier: path
             for path in tmp_path.glob("*.gz")}
    assert set(dumps) == {Tier.MAIN, Tier.MASTER, "acme", "zenith"}
    for subdomain, tenant in tenants.items():
        rows = table_rows(dbs.servers[tenant.db_server], tenant.db_name)
        assert read_manifest(dumps[subdomain]).row_counts == {
            table: len(content) for table, content in rows.items()}

    copy = f"{dbs.settings.tenant_db_prefix}zenith_copy"
    result = runner.invoke(args=["restore", str(dumps["zenith"]), "--as-database", copy,
                                 "--server", SECOND])
    assert result.exit_code == 0 and f"into {copy} on server {SECOND}:" in result.output
    assert table_rows(dbs.servers[SECOND], copy) == table_rows(dbs.servers[SECOND],
                                                                zenith.db_name)
    assert copy not in dbs.backend.list_databases(dbs.settings.tenant_db_prefix)
    for args, reason in (
            (["restore", str(dumps[Tier.MAIN]), "--as-database", "x_main", "--server", SECOND],
             "lives on the default server only"),
            (["restore", str(dumps["acme"]), "--as-database", copy + "2", "--server", "nowhere"],
             "database server 'nowhere' is not configured")):
        refused = runner.invoke(args=args)
        assert refused.exit_code == 1 and reason in refused.output, refused.output
