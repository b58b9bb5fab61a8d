"""The users and grants the program declares, applied to the real MariaDB as the SQL they stand
for, then exercised over real connections: what the application and tenant users can do, and
what they are refused."""

from __future__ import annotations

from dataclasses import dataclass

import pymysql
import pytest

from infra.databases import SCHEMA_PRIVILEGES, literal_pattern
from tests.infra.program import run_program
from tests.infra.sql import statements
from tests.mysql_server import MySQLServer

pytestmark = pytest.mark.mysql

DB_ACCESS_DENIED = 1044
TABLE_ACCESS_DENIED = 1142
NEEDS_PRIVILEGE = 1227


@dataclass(frozen=True)
class Stack:
    """One stack deployed to the test server, its names under ``prefix``, and its outputs."""

    server: MySQLServer
    prefix: str
    outputs: dict

    def app(self, database: str | None = None) -> pymysql.Connection:
        """A connection as the application, with the credentials from the stack outputs."""
        return self.server.connect(database, user=self.outputs["DB_USER"],
                                   password=self.outputs["DB_PASSWORD"])

    def tenant_database(self, name: str) -> str:
        return self.outputs["TENANT_DB_PREFIX"] + name


def deploy(server: MySQLServer, name: str, separate_users: bool) -> Stack:
    """Run the program with every name under this run's prefix and apply what it declares."""
    prefix = f"{server.prefix}{name}_"
    endpoint = f"{server.host}:{server.port}"
    config = {"endpoint": endpoint, "adminUser": server.user, "adminPassword": server.password,
              "dbName": f"{prefix}db", "masterDbName": f"{prefix}master",
              "tenantDbPrefix": f"{prefix}tenant_", "appUser": f"{prefix}app",
              "userHost": "%", "useSeparateDbUsers": separate_users}
    if separate_users:
        config["tenantDatabases"] = [f"{prefix}tenant_acme_1"]
    deployment = run_program(config, ["adminPassword"])
    with server.connect() as admin, admin.cursor() as cursor:
        for sql in statements(deployment, endpoint):
            cursor.execute(sql)
    return Stack(server, prefix, deployment.outputs)


@pytest.fixture(scope="module")
def shared_user(mysql_server) -> Stack:
    """A stack where every tenant goes through the application's one DB user."""
    return deploy(mysql_server, "shared", separate_users=False)


@pytest.fixture(scope="module")
def separate_users(mysql_server) -> Stack:
    """A stack where every tenant gets a DB user of its own."""
    return deploy(mysql_server, "separate", separate_users=True)


@pytest.fixture(params=["shared_user", "separate_users"])
def stack(request) -> Stack:
    return request.getfixturevalue(request.param)


def run(connection: pymysql.Connection, *sqls: str) -> list[tuple]:
    """Run each statement; return the rows of the last."""
    with connection.cursor() as cursor:
        for sql in sqls:
            cursor.execute(sql)
        return list(cursor.fetchall())


def refusal(connection: pymysql.Connection, sql: str) -> int:
    """The error code the server refuses ``sql`` with."""
    with pytest.raises(pymysql.MySQLError) as failure:
        run(connection, sql)
    return failure.value.args[0]


def connect_refusal(server: MySQLServer, database: str, user: str, password: str) -> int:
    with pytest.raises(pymysql.MySQLError) as failure:
        server.connect(database, user=user, password=password).close()
    return failure.value.args[0]


def exercise_tables(connection: pymysql.Connection) -> list[tuple]:
    """The DDL and DML the application and its migrations run; return the rows read back."""
    return run(connection,
               "CREATE TABLE ledger (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB",
               "CREATE INDEX ledger_name ON ledger (name)",
               "ALTER TABLE ledger ADD COLUMN balance DECIMAL(12, 2) DEFAULT 0",
               "INSERT INTO ledger (id, name) VALUES (1, 'Cash')",
               "UPDATE ledger SET balance = 10 WHERE id = 1",
               "SELECT id, name, balance FROM ledger")


def test_the_app_connects_as_the_declared_account(stack):
    with stack.app() as app:
        assert run(app, "SELECT CURRENT_USER()") == [(f"{stack.outputs['DB_USER']}@%",)]


def test_the_app_builds_and_uses_tables_in_main_and_master(stack):
    for database in (stack.outputs["DB_NAME"], stack.outputs["MASTER_DB_NAME"]):
        with stack.app(database) as app:
            assert [row[:2] for row in exercise_tables(app)] == [(1, "Cash")]
            run(app, "DROP TABLE ledger")


def test_the_app_creates_and_drops_tenant_databases_under_the_prefix(stack):
    tenant = stack.tenant_database("initech_1700000000000")
    with stack.app() as app:
        run(app, f"CREATE DATABASE `{tenant}` CHARACTER SET utf8mb4")
        app.select_db(tenant)
        assert [row[:2] for row in exercise_tables(app)] == [(1, "Cash")]
        run(app, f"DROP DATABASE `{tenant}`")


def test_the_app_is_refused_outside_its_databases(stack):
    elsewhere = f"{stack.prefix}elsewhere"
    with stack.server.connect() as admin:
        run(admin, f"CREATE DATABASE `{elsewhere}`")
    with stack.app() as app:
        assert refusal(app, "SELECT User FROM mysql.user") == TABLE_ACCESS_DENIED
        assert refusal(app, f"CREATE DATABASE `{stack.prefix}outside`") == DB_ACCESS_DENIED
        assert refusal(app, f"DROP DATABASE `{elsewhere}`") == DB_ACCESS_DENIED
        assert refusal(app, f"CREATE TABLE `{elsewhere}`.t (id INT)") == TABLE_ACCESS_DENIED


def test_with_one_shared_user_the_app_can_neither_create_users_nor_grant(shared_user):
    with shared_user.app() as app:
        grants = [row[0] for row in run(app, "SHOW GRANTS")]
        assert refusal(app, f"CREATE USER '{shared_user.prefix}x'@'%'") == NEEDS_PRIVILEGE
        tenant = shared_user.tenant_database("acme_1")
        run(app, f"CREATE DATABASE `{tenant}`")
        assert refusal(app, f"GRANT SELECT ON `{literal_pattern(tenant)}`.* "
                            f"TO '{shared_user.outputs['DB_USER']}'@'%'") == DB_ACCESS_DENIED
    assert [g for g in grants if " ON *.* " in g and not g.startswith("GRANT USAGE ")] == []
    assert not [g for g in grants if "WITH GRANT OPTION" in g]


def test_with_separate_users_the_app_provisions_a_tenant_user(separate_users):
    stack = separate_users
    tenant = stack.tenant_database("globex_2")
    account, password = f"'{tenant}'@'%'", "globex-password-1"
    privileges = ", ".join(SCHEMA_PRIVILEGES)
    with stack.app() as app:
        run(app, f"CREATE DATABASE `{tenant}` CHARACTER SET utf8mb4",
            f"CREATE USER {account} IDENTIFIED BY '{password}'",
            f"GRANT {privileges} ON `{literal_pattern(tenant)}`.* TO {account}")
        # GRANT OPTION reaches tenant databases only, never main.
        assert refusal(app, f"GRANT SELECT ON `{stack.outputs['DB_NAME']}`.* "
                            f"TO {account}") == DB_ACCESS_DENIED

    with stack.server.connect(tenant, user=tenant, password=password) as tenant_user:
        assert [row[:2] for row in exercise_tables(tenant_user)] == [(1, "Cash")]
    for other in (stack.outputs["DB_NAME"], stack.outputs["MASTER_DB_NAME"]):
        assert connect_refusal(stack.server, other, tenant, password) == DB_ACCESS_DENIED


def test_a_declared_tenant_user_reads_its_own_database_and_no_other(separate_users):
    stack = separate_users
    own, lookalike = stack.tenant_database("acme_1"), stack.tenant_database("acmeX1")
    credentials = stack.outputs["tenantUsers"][own]
    with stack.app() as app:
        for database in (own, lookalike):
            run(app, f"CREATE DATABASE `{database}`",
                f"CREATE TABLE `{database}`.ledger (id INT PRIMARY KEY)",
                f"INSERT INTO `{database}`.ledger VALUES (1)")

    user, password = credentials["user"], credentials["password"]
    with stack.server.connect(own, user=user, password=password) as tenant_user:
        assert run(tenant_user, "SELECT id FROM ledger") == [(1,)]
        assert refusal(tenant_user, "SELECT User FROM mysql.user") == TABLE_ACCESS_DENIED
    # `_` is escaped in the grant, so acme_1 does not reach acmeX1 either.
    for other in (lookalike, stack.outputs["DB_NAME"], stack.outputs["MASTER_DB_NAME"]):
        assert connect_refusal(stack.server, other, user, password) == DB_ACCESS_DENIED


@pytest.mark.parametrize("separate", [False, True], ids=["shared_user", "separate_users"])
def test_the_app_runs_init_and_signs_a_tenant_up_as_the_declared_user(mysql_server, separate):
    """The stack's outputs, as the API's environment: `finvera init` and `finvera tenants
    create` succeed as the least-privileged application user, on either setting."""
    import os
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    stack = deploy(mysql_server, "i2" if separate else "i1", separate_users=separate)
    env = {**os.environ, **{k: str(v) for k, v in stack.outputs.items() if k.isupper()},
           "DB_SSL": "disabled", "ENCRYPTION_KEY": Fernet.generate_key().decode()}

    def finvera(*args):
        result = subprocess.run([sys.executable, "-m", "api", *args], env=env, text=True,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "migrations applied" in finvera("init")
    created = finvera("tenants", "create", "--company-name", "Acme", "--subdomain", "acme",
                      "--email", "owner@acme.in")
    assert "created tenant acme" in created
    database = created.split("database ")[1].split(")")[0]
    assert database.startswith(stack.outputs["TENANT_DB_PREFIX"])
    rows = run(stack.app(database), "SELECT COUNT(*) FROM account_groups")
    assert rows == [(28,)]
