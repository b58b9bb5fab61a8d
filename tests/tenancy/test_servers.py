"""Tenant databases on two servers: placement, closed servers, routing through the app, the
per-process connection bound across servers, and the per-server report.

The second server is a throwaway mariadbd (tests/throwaway_mariadb.py) beside the test server.
"""

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.models.tenant import AccountGroup, Ledger, User
from api.tenancy.backups import read_manifest
from api.tenancy.connections import PoolExhausted
from api.tenancy.placement import choose_server, tenants_per_server
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.tokens import TENANT, Claims
from tests.conftest import SECOND, initialized_app, make_admin_headers, same_databases

pytestmark = pytest.mark.mysql


def sign_up(app, subdomain: str):
    """Provision a tenant; return its row and its admin's request headers."""
    dbs = app.extensions["finvera"]
    tenant = provision_tenant(dbs, SignUp(subdomain.title(), subdomain, f"o@{subdomain}.in",
                                          admin_password="servers test pw")).tenant
    with Session(dbs.connections.engine(dbs.directory.find(subdomain).target)) as session:
        admin_id = session.scalar(sa.select(User.id).where(User.role == "admin"))
    token = app.extensions["finvera_tokens"].issue(Claims(
        scope=TENANT, user_id=admin_id, tenant_id=tenant.id, tenant_db=tenant.db_name))
    return tenant, {"Authorization": f"Bearer {token}", "X-Tenant-ID": subdomain}


def ledger(app, subdomain: str, name: str) -> dict:
    """The body of a new cash ledger in ``subdomain``'s books."""
    dbs = app.extensions["finvera"]
    with Session(dbs.connections.engine(dbs.directory.find(subdomain).target)) as session:
        group = session.scalar(sa.select(AccountGroup.id).where(
            AccountGroup.code == "cash_in_hand"))
    return {"name": name, "account_group_id": group}


def databases_on(dbs, server: str) -> list[str]:
    return dbs.servers[server].list_databases(dbs.settings.tenant_db_prefix)


def test_new_tenants_go_to_the_open_server_with_the_fewest(servers_app):
    dbs = servers_app.extensions["finvera"]
    placed = {sub: sign_up(servers_app, sub)[0].db_server for sub in ("aaa", "bbb", "ccc", "ddd")}
    # Ties go by name ("default" < "tenants-2"), then the emptier server wins.
    assert placed == {"aaa": "default", "bbb": SECOND, "ccc": "default", "ddd": SECOND}
    with Session(dbs.master_engine) as session:
        rows = {row.subdomain: row for row in session.scalars(sa.select(TenantMaster))}
    for subdomain, server in placed.items():
        row = rows[subdomain]
        assert row.db_name in databases_on(dbs, server)
        assert row.db_name not in databases_on(dbs, "default" if server == SECOND else SECOND)
        info = dbs.cipher.decrypt(row.db_connection_encrypted)
        backend = dbs.servers[server]
        assert (info["server"], info["host"], info["port"], info["database"]) == (
            server, backend.host, backend.port, row.db_name)

    with Session(dbs.master_engine) as session:  # failed sign-ups hold no room
        session.get(TenantMaster, rows["aaa"].id).status = "failed"
        session.commit()
    assert tenants_per_server(dbs) == {"default": 1, SECOND: 2}
    assert choose_server(dbs) == "default"


def test_a_closed_server_gets_no_new_tenants_and_keeps_serving_its_own(servers_app,
                                                                     servers_environment):
    _, on_default = sign_up(servers_app, "alpha")
    zeta, on_second = sign_up(servers_app, "zeta")
    assert zeta.db_server == SECOND
    with same_databases({**servers_environment, "TENANT_DB_SERVERS_CLOSED": SECOND}) as closed:
        dbs = closed.extensions["finvera"]
        placed = [sign_up(closed, sub)[0].db_server for sub in ("beta", "gamma")]
        assert placed == ["default", "default"]  # though default holds more by now
        client = closed.test_client()
        for headers in (on_default, on_second):
            assert client.get("/api/ledgers", headers=headers).status_code == 200
        made = client.post("/api/ledgers", headers=on_second,
                           json=ledger(closed, "zeta", "Cash at Zeta"))
        assert made.status_code == 201, made.json
        assert tenants_per_server(dbs) == {"default": 3, SECOND: 1}


def test_requests_reach_each_tenant_on_its_own_server(servers_app, second_mariadb):
    client = servers_app.test_client()
    tenants = {sub: sign_up(servers_app, sub) for sub in ("acme", "zenith")}
    assert [tenant.db_server for tenant, _ in tenants.values()] == ["default", SECOND]
    for subdomain, (_, headers) in tenants.items():
        made = client.post("/api/ledgers", headers=headers,
                           json=ledger(servers_app, subdomain, f"Bank of {subdomain}"))
        assert made.status_code == 201, made.json
    for subdomain, (_, headers) in tenants.items():
        names = [ledger["name"] for ledger in
                 client.get("/api/ledgers", headers=headers).json["data"]["ledgers"]]
        assert names == [f"Bank of {subdomain}"]

    zenith = tenants["zenith"][0]
    with second_mariadb.connect(zenith.db_name) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT name FROM ledgers")  # behind the app's back, on the server
        assert cursor.fetchall() == (("Bank of zenith",),)
    acme_on_zenith = {**tenants["acme"][1], "X-Tenant-ID": "zenith"}
    assert client.get("/api/ledgers", headers=acme_on_zenith).status_code == 401


def test_the_connection_bound_holds_across_servers(mysql_server, second_mariadb):
    from tests.conftest import two_server_environment

    env = two_server_environment(mysql_server, second_mariadb, MAX_TENANT_CONNECTIONS="2",
                                 TENANT_CHECKOUT_TIMEOUT_MS="300")
    with initialized_app(env) as app:
        dbs = app.extensions["finvera"]
        targets = {sub: (sign_up(app, sub), dbs.directory.find(sub).target)[1]
                   for sub in ("one", "two")}
        assert [target.server for target in targets.values()] == ["default", SECOND]
        dbs.servers[SECOND].dispose()  # sign-up's admin connections: not the ones counted

        def use(subdomain):
            connection = dbs.connections.engine(targets[subdomain]).connect()
            assert connection.scalar(sa.select(sa.func.count()).select_from(
                AccountGroup)) == 28
            return connection

        held = [use("one"), use("two")]
        assert dbs.connections.open_connections == 2
        with pytest.raises(PoolExhausted):
            use("one")  # both slots are taken, one on each server
        held.pop(0).close()  # back into default's pool, idle: the slot is still taken
        assert dbs.connections.open_connections == 2
        held.append(use("two"))  # default's idle connection closes to make room
        assert dbs.connections.open_connections == 2
        assert app_connections(second_mariadb) == 2
        for connection in held:
            connection.close()


def app_connections(server) -> int:
    """Connections on the throwaway server other than this one and the server's own."""
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                       "ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' "
                       "AND USER <> 'system user'")
        return cursor.fetchone()[0]


def test_the_database_report_is_per_server(servers_app, servers_environment):
    signed_up = [sign_up(servers_app, sub) for sub in ("pone", "ptwo")]
    tenants = [tenant for tenant, _ in signed_up]
    support = make_admin_headers(servers_app)["support"]  # tokens good in every app below
    with same_databases({**servers_environment, "TENANT_DB_SERVERS_CLOSED": "default"}) as app:
        dbs = app.extensions["finvera"]
        report = app.test_client().get("/api/admin/system/databases",
                                       headers=support).json["data"]
        by_name = {server["name"]: server for server in report["servers"]}
        assert list(by_name) == ["default", SECOND]
        assert (by_name["default"]["open"], by_name[SECOND]["open"]) == (False, True)
        assert (by_name[SECOND]["host"], by_name[SECOND]["port"]) == (
            dbs.servers[SECOND].host, dbs.servers[SECOND].port)
        total = 0
        for server, tenant in zip(("default", SECOND), tenants, strict=True):
            assert tenant.db_server == server
            size = dbs.servers[server].database_size(tenant.db_name)
            total += size
            assert (by_name[server]["tenant_dbs"], float(by_name[server]["size_mb"]),
                    by_name[server]["status"]) == (1, round(size / 2**20, 2), "healthy")
        assert report["tenant_dbs"]["total"] == 2
        assert float(report["tenant_dbs"]["total_size_mb"]) == round(total / 2**20, 2)

    without = {key: value for key, value in servers_environment.items()
               if key != "TENANT_DB_SERVERS"}
    with same_databases(without) as app:  # the configuration lost tenants-2
        report = app.test_client().get("/api/admin/system/databases",
                                       headers=support).json["data"]
        lost = report["servers"][-1]
        assert (lost["name"], lost["status"], lost["tenant_dbs"], lost["open"]) == (
            SECOND, "not_configured", 1, False)
        refused = app.test_client().get("/api/ledgers", headers=signed_up[1][1])
        assert (refused.status_code, refused.json["error"]["code"]) == (
            503, "database_unavailable")


def test_a_tenant_on_the_second_server_is_backed_up_then_dropped_there(servers_app, tmp_path):
    dbs = servers_app.extensions["finvera"]
    sign_up(servers_app, "first")
    tenant, headers = sign_up(servers_app, "second")
    assert tenant.db_server == SECOND
    client, admin = servers_app.test_client(), make_admin_headers(servers_app)["admin"]
    details = client.get(f"/api/admin/tenants/{tenant.id}", headers=admin).json["data"]["tenant"]
    size = dbs.servers[SECOND].database_size(tenant.db_name)
    assert (details["db_server"], float(details["size_mb"])) == (SECOND, round(size / 2**20, 2))

    deleted = client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin,
                            json={"confirm": "second"})
    assert deleted.status_code == 200, deleted.json
    backup = deleted.json["data"]["backup"]["file"]
    assert read_manifest(backup).database == tenant.db_name
    assert databases_on(dbs, SECOND) == []
    assert client.get("/api/ledgers", headers=headers).status_code == 404


def test_a_backup_restores_as_a_tenant_on_the_server_asked_and_a_live_one_on_its_own(
        servers_app, tmp_path):
    """restore --as-tenant: a deleted tenant's final backup comes back on the server named (or
    where placement puts it); a live tenant's backup is restored on the tenant's own server."""
    dbs = servers_app.extensions["finvera"]
    runner, client = servers_app.test_cli_runner(), servers_app.test_client()
    admin = make_admin_headers(servers_app)["admin"]
    sign_up(servers_app, "first")
    tenant, headers = sign_up(servers_app, "second")
    assert tenant.db_server == SECOND
    assert client.post("/api/ledgers", headers=headers,
                       json=ledger(servers_app, "second", "Kept Cash")).status_code == 201
    deleted = client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin,
                            json={"confirm": "second"})
    backup = deleted.json["data"]["backup"]["file"]

    revived = runner.invoke(args=["restore", backup, "--as-tenant", "second",
                                  "--server", "default"])
    assert revived.exit_code == 0, revived.output
    row = dbs.directory.find("second")
    assert (row.status, row.target.server) == ("active", "default")
    assert row.db_name in databases_on(dbs, "default")
    assert databases_on(dbs, SECOND) == []
    with Session(dbs.connections.engine(row.target)) as session:
        assert "Kept Cash" in session.scalars(sa.select(Ledger.name)).all()

    again = runner.invoke(args=["restore", backup, "--as-tenant", "second", "--replace",
                                "--server", SECOND])
    assert again.exit_code != 0 and "lives on server 'default'" in again.output
    assert dbs.directory.find("second").db_name == row.db_name  # nothing changed
    assert databases_on(dbs, SECOND) == []

    replaced = runner.invoke(args=["restore", backup, "--as-tenant", "second", "--replace"])
    assert replaced.exit_code == 0, replaced.output
    now = dbs.directory.find("second")
    assert now.db_name != row.db_name and now.target.server == "default"
    assert {now.db_name, row.db_name} <= set(databases_on(dbs, "default"))  # the old one kept
