"""60 tenants (six times the bound) behind a bound of 10 connections, on the real MariaDB:
MariaDB's own count of this process's tenant connections never passes the bound, and every
answer comes from the tenant asked. Both ways of connecting are tested: the shared pool (the
default) and a DB user per tenant (per-tenant engines, least recently used connections closed
to make room)."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from api import create_app
from api.config import load_settings
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.tokens import TENANT, Claims
from tests.conftest import mysql_environment

TENANTS, BOUND, THREADS, REQUESTS = 60, 10, 8, 1200


class ProcesslistSampler(threading.Thread):
    """Counts, as MariaDB sees them, the app's connections to tenant databases: those of the
    app's own DB user that are on no database (the shared pool) or on a tenant's, and those
    of tenants' own DB users.

    A connection the app has begun to close can stay listed a moment longer while its server
    thread finishes (PROCESSLIST is not read as one snapshot either), so a sample leaves out
    the ids of connections whose close had begun by the time the sample's answer came back:
    what is left are connections the app holds open, and those must never pass the bound.
    """

    # A connection still logging in (Command 'Connect': a master pool's too) has no database
    # for that moment; it is not a tenant connection.
    QUERY = ("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Connect' "
             "AND ((USER = %s AND (DB IS NULL OR DB LIKE %s)) OR USER LIKE %s)")

    def __init__(self, server, settings):
        super().__init__(daemon=True)
        self.conn = server.connect()
        like = settings.tenant_db_prefix.replace("_", r"\_") + "%"
        self.params = (settings.db_user, like, like)
        self.peak, self.peak_listed, self.samples = 0, 0, 0
        self.closing: set[int] = set()  # server thread ids of connections the app closed
        self.stop = threading.Event()
        sa.event.listen(sa.pool.Pool, "close", self._closing)

    def _closing(self, dbapi_connection, _record) -> None:
        """Pool event, before the app closes a DBAPI connection."""
        if hasattr(dbapi_connection, "thread_id"):
            self.closing.add(dbapi_connection.thread_id())

    def count(self, cur) -> int:
        """Connections listed and not being closed by the app (peak_listed: all listed)."""
        cur.execute(self.QUERY, self.params)
        listed = [connection_id for (connection_id,) in cur.fetchall()]
        self.peak_listed = max(self.peak_listed, len(listed))
        return len([connection_id for connection_id in listed
                    if connection_id not in self.closing])

    def run(self):
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                self.peak = max(self.peak, self.count(cur))
                self.samples += 1
        self.conn.close()
        sa.event.remove(sa.pool.Pool, "close", self._closing)


@pytest.fixture(scope="module", params=["shared", "separate_users"])
def crowded_app(request, mysql_server):
    """An app under a DB user of its own (so MariaDB's processlist can tell its connections
    apart) with 60 tenants."""
    user, password = f"{mysql_server.prefix}bound_{request.param[:3]}", "bound-test-pw"
    with mysql_server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))
    separate = "true" if request.param == "separate_users" else "false"
    env = mysql_environment(mysql_server, MAX_TENANT_CONNECTIONS=str(BOUND),
                            USE_SEPARATE_DB_USERS=separate, DB_USER=user, DB_PASSWORD=password)
    app = create_app(load_settings(env))
    dbs = app.extensions["finvera"]
    dbs.initialize()

    def sign_up(number):
        subdomain = f"t{number:03d}"
        return provision_tenant(dbs, SignUp(f"Company {number}", subdomain,
                                            f"owner@{subdomain}.in",
                                            admin_password="not used here")).tenant

    with ThreadPoolExecutor(4) as pool:
        tenants = list(pool.map(sign_up, range(TENANTS)))
    yield app, tenants
    dbs.dispose()


@pytest.mark.mysql
def test_connections_stay_under_the_bound_and_answers_stay_with_their_tenant(
        mysql_server, crowded_app):
    app, tenants = crowded_app
    dbs, tokens = app.extensions["finvera"], app.extensions["finvera_tokens"]
    headers = {t.id: {"Authorization": "Bearer " + tokens.issue(
        Claims(scope=TENANT, user_id=1, tenant_id=t.id, tenant_db=t.db_name)),
        "X-Tenant-ID": t.subdomain} for t in tenants}
    dbs.backend.dispose()  # the admin pool's idle connections (from sign-ups) are not counted
    sampler = ProcesslistSampler(mysql_server, dbs.settings)
    sampler.start()
    wrong, errors, peak_seen_by_manager = [], [], [0]

    def client_thread(seed):
        client, rng = app.test_client(), random.Random(seed)
        for _ in range(REQUESTS // THREADS):
            tenant = tenants[min(int(rng.paretovariate(1.2)) - 1, TENANTS - 1)
                             if rng.random() < 0.5 else rng.randrange(TENANTS)]
            response = client.get("/api/auth/me", headers=headers[tenant.id])
            peak_seen_by_manager[0] = max(peak_seen_by_manager[0],
                                          dbs.connections.open_connections)
            if response.status_code != 200:
                errors.append((response.status_code, response.json))
            elif (response.json["data"]["tenant"]["subdomain"] != tenant.subdomain
                  or response.json["data"]["user"]["email"] != f"owner@{tenant.subdomain}.in"):
                wrong.append((tenant.subdomain, response.json["data"]))

    threads = [threading.Thread(target=client_thread, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sampler.stop.set()
    sampler.join()

    print(f"\n{REQUESTS} requests over {TENANTS} tenants, bound {BOUND}: "
          f"peak {sampler.peak} connections seen by MariaDB over {sampler.samples} samples "
          f"({sampler.peak_listed} listed, counting those the app was closing), "
          f"peak {peak_seen_by_manager[0]} counted by the manager, "
          f"{dbs.connections.evictions} evictions, {len(errors)} errors, {len(wrong)} wrong")
    assert wrong == []
    assert errors == []
    assert sampler.samples > 10
    assert peak_seen_by_manager[0] <= BOUND
    assert sampler.peak <= BOUND
    if dbs.settings.use_separate_db_users:  # the bound was really exercised
        assert dbs.connections.evictions > 0
    else:  # one pool serves every tenant: nothing is ever closed to make room
        assert dbs.connections.evictions == 0
    with mysql_server.connect() as conn, conn.cursor() as cur:  # no slot was leaked
        assert sampler.count(cur) == dbs.connections.open_connections
    assert len({t.db_name for t in tenants}) == TENANTS


@pytest.mark.mysql
def test_when_every_connection_is_busy_a_request_gets_503_soon(crowded_app):
    app, tenants = crowded_app
    dbs = app.extensions["finvera"]
    held = []
    try:
        for tenant in tenants[:BOUND]:  # hold every allowed connection
            connection = dbs.connections.engine(dbs.directory.find(tenant.subdomain).target)
            held.append(connection.connect())
        assert dbs.connections.open_connections == BOUND
        tokens = app.extensions["finvera_tokens"]
        last = tenants[-1]
        token = tokens.issue(Claims(scope=TENANT, user_id=1, tenant_id=last.id,
                                    tenant_db=last.db_name))
        response = app.test_client().get("/api/auth/me", headers={
            "Authorization": f"Bearer {token}", "X-Tenant-ID": last.subdomain})
        assert response.status_code == 503, response.json
        assert response.json["error"]["code"] == "database_busy"
        assert response.headers["Retry-After"] == "1"
    finally:
        for connection in held:
            connection.close()
    assert dbs.connections.open_connections <= BOUND


@pytest.mark.mysql
def test_idle_connections_close_after_the_idle_timeout(mysql_server):
    env = mysql_environment(mysql_server, TENANT_IDLE_SECONDS="1")
    app = create_app(load_settings(env))
    dbs = app.extensions["finvera"]
    dbs.initialize()
    try:
        provision_tenant(dbs, SignUp("Idle", "idle", "o@idle.in"))
        with dbs.connections.session(dbs.directory.find("idle").target) as session:
            assert session.execute(sa.text("SELECT 1")).scalar() == 1
        assert dbs.connections.open_connections == 1
        for _ in range(100):  # the reaper looks every half idle period
            if dbs.connections.open_connections == 0:
                break
            threading.Event().wait(0.05)
        assert dbs.connections.open_connections == 0
    finally:
        dbs.dispose()
