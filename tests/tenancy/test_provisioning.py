"""Provisioning: the whole flow, a fault at each step, repair after a crash, races, users."""

import threading

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.config import load_settings
from api.models.master import TenantMaster
from api.models.tenant import AccountGroup, User
from api.security import verify_password
from api.tenancy.backends import BackendError
from api.tenancy.databases import Databases
from api.tenancy.migrations import Tier, pending_ids
from api.tenancy.provisioning import (
    STEPS,
    ProvisioningError,
    SignUp,
    SignUpInvalid,
    TenantConflict,
    drop_tenant_database,
    provision_tenant,
    tenant_db_user,
)
from api.tenancy.repair import repair


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs, not even compensation."""


@pytest.fixture
def dbs(settings):
    dbs = Databases(settings)
    dbs.initialize()
    yield dbs
    dbs.dispose()


def signup(subdomain="acme", **extra):
    return SignUp(company_name="Acme Traders", subdomain=subdomain, email="owner@acme.in",
                  **extra)


def tenant_row(dbs, subdomain):
    with Session(dbs.master_engine) as session:
        return session.scalar(sa.select(TenantMaster).where(TenantMaster.subdomain == subdomain))


def tenant_databases(dbs):
    return dbs.backend.list_databases(dbs.settings.tenant_db_prefix)


def test_the_whole_flow(dbs):
    result = provision_tenant(dbs, signup(admin_password="given password 1"))
    tenant = result.tenant
    assert (tenant.status, tenant.subdomain) == ("active", "acme")
    assert tenant.db_name.startswith(f"{dbs.settings.tenant_db_prefix}acme_")
    assert result.generated_password is None
    assert tenant_databases(dbs) == [tenant.db_name]

    info = dbs.cipher.decrypt(tenant_row(dbs, "acme").db_connection_encrypted)
    assert info["database"] == tenant.db_name
    engine = dbs.backend.create_engine(tenant.db_name)
    assert pending_ids(engine, Tier.TENANT) == []
    with Session(engine) as session:
        [admin] = session.scalars(sa.select(User)).all()
        assert (admin.email, admin.role) == ("owner@acme.in", "admin")
        assert verify_password(admin.password_hash, "given password 1")
        assert session.scalar(sa.select(sa.func.count()).select_from(AccountGroup)) == 28
    engine.dispose()


def test_a_generated_password_is_returned_once(dbs):
    result = provision_tenant(dbs, signup("beta-co"))
    assert len(result.generated_password) >= 12


def test_a_taken_subdomain_is_a_conflict(dbs):
    provision_tenant(dbs, signup())
    with pytest.raises(TenantConflict):
        provision_tenant(dbs, signup())
    assert len(tenant_databases(dbs)) == 1


@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_any_step_leaves_nothing_behind(dbs, step):
    def fault(current):
        if current == step:
            raise RuntimeError(f"injected at {current}")

    with pytest.raises(ProvisioningError) as failure:
        provision_tenant(dbs, signup(), on_step=fault)
    assert failure.value.step == step
    assert tenant_databases(dbs) == []
    row = tenant_row(dbs, "acme")
    assert row.status == "failed" and f"injected at {step}" in row.status_reason
    # The same sign-up, tried again, succeeds on the failed tenant's row.
    assert provision_tenant(dbs, signup()).tenant.id == row.id
    assert tenant_row(dbs, "acme").status == "active"


@pytest.mark.parametrize("step", STEPS)
def test_repair_cleans_up_after_a_crash(dbs, step):
    def crash(current):
        if current == step:
            raise Crash

    with pytest.raises(Crash):
        provision_tenant(dbs, signup(), on_step=crash)
    assert tenant_row(dbs, "acme").status == "provisioning"

    report = repair(dbs)
    assert "acme" in report.cleaned and report.orphan_databases == []
    assert tenant_databases(dbs) == []
    assert tenant_row(dbs, "acme").status == "failed"
    assert provision_tenant(dbs, signup()).tenant.status == "active"


def test_repair_leaves_a_live_sign_up_alone(dbs):
    paused, resume = threading.Event(), threading.Event()

    def pause(current):
        if current == "migrate":
            paused.set()
            resume.wait(30)

    worker = threading.Thread(target=provision_tenant, args=(dbs, signup()),
                              kwargs={"on_step": pause})
    worker.start()
    try:
        assert paused.wait(30)
        report = repair(dbs, drop_orphans=True)
        assert report.in_progress == ["acme"] and report.dropped == []
        assert len(tenant_databases(dbs)) == 1
    finally:
        resume.set()
        worker.join()
    assert tenant_row(dbs, "acme").status == "active"


def test_orphans_are_listed_then_dropped_and_live_databases_never(dbs):
    live = provision_tenant(dbs, signup()).tenant.db_name
    orphan = f"{dbs.settings.tenant_db_prefix}orphan_1"
    dbs.backend.create_database(orphan)
    assert repair(dbs).orphan_databases == [("default", orphan)]
    assert repair(dbs, drop_orphans=True).dropped == [("default", orphan)]
    assert tenant_databases(dbs) == [live]
    with pytest.raises(BackendError, match="live tenant"):
        drop_tenant_database(dbs, live)


def test_twenty_concurrent_sign_ups_of_one_subdomain_make_one_tenant(dbs):
    outcomes, barrier = [], threading.Barrier(20)

    def attempt():
        barrier.wait()
        try:
            provision_tenant(dbs, signup("race"))
            outcomes.append("created")
        except TenantConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 19 + ["created"]
    assert len(tenant_databases(dbs)) == 1
    with Session(dbs.master_engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TenantMaster)) == 1


def test_unknown_plan_or_referral_code_is_refused_before_anything_is_made(dbs):
    for field in ("plan", "referral_code"):
        with pytest.raises(SignUpInvalid) as invalid:
            provision_tenant(dbs, signup(**{field: "NOPE"}))
        assert invalid.value.field == field
    assert tenant_row(dbs, "acme") is None and tenant_databases(dbs) == []


@pytest.mark.mysql
def test_separate_users_reach_their_own_database_only(mysql_server):
    from tests.conftest import mysql_environment

    dbs = Databases(load_settings(mysql_environment(mysql_server, USE_SEPARATE_DB_USERS="true")))
    dbs.initialize()
    try:
        first = provision_tenant(dbs, signup("first")).tenant
        second = provision_tenant(dbs, signup("second")).tenant
        info = dbs.cipher.decrypt(tenant_row(dbs, "first").db_connection_encrypted)
        assert info["user"] == tenant_db_user(dbs, first.id)
        conn = mysql_server.connect(first.db_name, user=info["user"], password=info["password"])
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM users")
            assert cur.fetchone() == (1,)
            for other in (second.db_name, dbs.settings.db_name, dbs.settings.master_db_name):
                with pytest.raises(pymysql.err.OperationalError):
                    cur.execute(f"SELECT COUNT(*) FROM `{other}`.users")
        conn.close()
        # A failed sign-up drops the DB user it made.
        with pytest.raises(ProvisioningError):
            provision_tenant(dbs, signup("third"), on_step=lambda s: s == "migrate" and 1 / 0)
        third = tenant_row(dbs, "third")
        assert dbs.backend.drop_user(tenant_db_user(dbs, third.id)) is False
    finally:
        for name in dbs.backend.list_databases(dbs.settings.tenant_db_prefix):
            dbs.backend.drop_database(name)
        dbs.dispose()


@pytest.mark.mysql
def test_repair_cleans_and_finds_orphans_on_every_server(servers_app):
    from tests.conftest import SECOND

    dbs = servers_app.extensions["finvera"]
    first = provision_tenant(dbs, signup("first")).tenant

    def crash(current):
        if current == "create_admin":
            raise Crash

    with pytest.raises(Crash):  # placed on the second server, killed after migrating there
        provision_tenant(dbs, signup("second"), on_step=crash)
    second = tenant_row(dbs, "second")
    assert (first.db_server, second.db_server) == ("default", SECOND)
    on_second = dbs.servers[SECOND]
    prefix = dbs.settings.tenant_db_prefix
    assert on_second.list_databases(prefix) == [second.db_name]
    orphan = f"{prefix}orphan_2"
    for name in (orphan, first.db_name):  # first's name, but not where first's row says
        on_second.create_database(name)

    report = repair(dbs, drop_orphans=True)
    assert report.cleaned == {"second": [second.db_name]}
    assert tenant_row(dbs, "second").status == "failed"
    assert sorted(report.orphan_databases) == sorted([(SECOND, orphan), (SECOND, first.db_name)])
    assert sorted(report.dropped) == sorted(report.orphan_databases)
    assert on_second.list_databases(prefix) == []
    assert tenant_databases(dbs) == [first.db_name]
    with pytest.raises(BackendError, match="live tenant"):
        drop_tenant_database(dbs, first.db_name, "default")
