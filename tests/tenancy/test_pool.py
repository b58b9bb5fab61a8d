"""The pool of ready databases: filled ahead of time, claimed at sign-up, refilled, and never
taken for an orphan."""

import threading
import time

import pytest

from api import create_app
from api.config import load_settings
from api.tenancy.migrations import Tier, pending_ids
from api.tenancy.pool import fill, pool_prefix, pooled
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.repair import repair


@pytest.fixture
def pooled_app(environment, settings):
    app = create_app(load_settings({**environment, "TENANT_POOL_SIZE": "2"}))
    dbs = app.extensions["finvera"]
    dbs.initialize()
    yield app
    join_refills()
    dbs.dispose()


def join_refills() -> None:
    """Let background refills finish before their databases are dropped (a DROP DATABASE
    would otherwise wait on a migration that waits on it)."""
    for thread in threading.enumerate():
        if thread.name == "tenant-pool-refill":
            thread.join(60)


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_sign_up_claims_a_ready_database_and_the_pool_refills(pooled_app):
    dbs = pooled_app.extensions["finvera"]
    runner = pooled_app.test_cli_runner()
    assert "made 2 ready databases" in runner.invoke(args=["tenants", "pool", "fill"]).output
    ready = pooled(dbs)
    assert len(ready) == 2 and all(name.startswith(pool_prefix(dbs)) for name in ready)

    tenant = provision_tenant(dbs, SignUp("Acme", "acme", "o@acme.in",
                                          admin_password="long enough")).tenant
    assert tenant.db_name == ready[0] and tenant.status == "active"
    engine = dbs.backend.create_engine(tenant.db_name)
    assert pending_ids(engine, Tier.TENANT) == []
    engine.dispose()
    token = pooled_app.test_client().post(
        "/api/auth/login", json={"email": "o@acme.in", "password": "long enough"},
        headers={"X-Tenant-ID": "acme"})
    assert token.status_code == 200

    wait_for(lambda: len(pooled(dbs)) == 2)  # refilled in the background
    assert tenant.db_name not in pooled(dbs)
    assert repair(dbs).orphan_databases == []  # ready databases are not orphans
    assert "2 ready databases" in runner.invoke(args=["tenants", "pool", "status"]).output


def test_an_empty_pool_falls_back_to_creating_the_database(pooled_app):
    dbs = pooled_app.extensions["finvera"]
    tenant = provision_tenant(dbs, SignUp("Beta", "beta", "o@beta.in")).tenant
    assert tenant.db_name.startswith(f"{dbs.settings.tenant_db_prefix}beta_")
    wait_for(lambda: len(pooled(dbs)) == 2)


def test_two_sign_ups_never_claim_the_same_database(pooled_app):
    dbs = pooled_app.extensions["finvera"]
    fill(dbs, 3)
    names, barrier = [], threading.Barrier(3)

    def sign_up(subdomain):
        barrier.wait()
        names.append(provision_tenant(dbs, SignUp(subdomain, subdomain, f"o@{subdomain}.in",
                                                  admin_password="long enough")).tenant.db_name)

    threads = [threading.Thread(target=sign_up, args=(s,)) for s in ("aaa", "bbb", "ccc")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 3


@pytest.mark.mysql
def test_each_open_server_keeps_a_pool_and_a_sign_up_claims_on_its_own(servers_environment):
    from tests.conftest import SECOND, initialized_app

    env = {**servers_environment, "TENANT_POOL_SIZE": "1"}
    with initialized_app(env) as app:
        dbs = app.extensions["finvera"]
        assert len(fill(dbs)) == 2
        ready = {server: pooled(dbs, server) for server in ("default", SECOND)}
        assert [len(names) for names in ready.values()] == [1, 1]
        first = provision_tenant(dbs, SignUp("A", "aaa", "o@a.in", admin_password="x" * 12))
        second = provision_tenant(dbs, SignUp("B", "bbb", "o@b.in", admin_password="x" * 12))
        for tenant, server in ((first.tenant, "default"), (second.tenant, SECOND)):
            assert (tenant.db_server, tenant.db_name) == (server, ready[server][0])
        join_refills()
        assert all(len(pooled(dbs, server)) == 1 for server in ready)  # refilled on each
    closed_env = {**env, "TENANT_DB_SERVERS_CLOSED": SECOND}
    with initialized_app(closed_env) as app:
        dbs = app.extensions["finvera"]
        assert len(fill(dbs)) == 1 and pooled(dbs, SECOND) == []  # a closed server: no refill
