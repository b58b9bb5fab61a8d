"""Auth, sign-up over HTTP, routing by Host and X-Tenant-ID, and isolation between tenants."""

import time
from datetime import datetime

import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.main import AdminUser
from api.models.master import TenantMaster
from api.models.tenant import User
from api.security import hash_password
from api.tenancy.routing import TenantDirectory, TenantSuspended
from api.tenancy.tokens import ADMIN, TENANT, Claims
from api.tenant_request import close_tenant_session, load_tenant, tenant_connection, tenant_session
from tests.conftest import same_databases

ADMIN_PASSWORD = "platform admin pw"


def add_admin(app, email="root@finvera.in", role="super_admin"):
    with Session(app.extensions["finvera"].main_engine) as session:
        session.add(AdminUser(email=email, role=role, password_hash=hash_password(ADMIN_PASSWORD)))
        session.commit()


def login(client, path, email, password, **headers):
    return client.post(path, json={"email": email, "password": password}, headers=headers)


@pytest.fixture
def admin_headers(app, client):
    add_admin(app)
    token = login(client, "/api/admin/auth/login", "root@finvera.in", ADMIN_PASSWORD)
    return {"Authorization": f"Bearer {token.json['data']['token']}"}


def create_tenant(client, admin_headers, subdomain, **extra):
    body = {"company_name": f"{subdomain.title()} Traders", "subdomain": subdomain,
            "email": f"owner@{subdomain}.in", **extra}
    return client.post("/api/admin/tenants", json=body, headers=admin_headers)


@pytest.fixture
def two_tenants(client, admin_headers):
    """Tenants acme and zenith, each with its admin's token: {subdomain: headers}."""
    headers = {}
    for subdomain in ("acme", "zenith"):
        created = create_tenant(client, admin_headers, subdomain)
        assert created.status_code == 201, created.json
        password = created.json["data"]["admin"]["password"]
        token = login(client, "/api/auth/login", f"owner@{subdomain}.in", password,
                      **{"X-Tenant-ID": subdomain})
        assert token.status_code == 200, token.json
        headers[subdomain] = {"Authorization": f"Bearer {token.json['data']['token']}",
                              "X-Tenant-ID": subdomain}
    return headers


def counts(app):
    dbs = app.extensions["finvera"]
    with Session(dbs.master_engine) as session:
        rows = session.scalar(sa.select(sa.func.count()).select_from(TenantMaster))
    return rows, dbs.backend.list_databases(dbs.settings.tenant_db_prefix)


def test_admin_login_and_the_same_401_for_wrong_password_or_unknown_user(app, client):
    add_admin(app)
    good = login(client, "/api/admin/auth/login", "Root@Finvera.in", ADMIN_PASSWORD)
    assert good.status_code == 200 and good.json["data"]["token_type"] == "Bearer"
    wrong = login(client, "/api/admin/auth/login", "root@finvera.in", "nope nope nope")
    unknown = login(client, "/api/admin/auth/login", "who@finvera.in", ADMIN_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json


def test_failed_logins_are_throttled_per_account(app, client):
    add_admin(app)
    for _ in range(5):
        assert login(client, "/api/admin/auth/login", "root@finvera.in", "x").status_code == 401
    blocked = login(client, "/api/admin/auth/login", "root@finvera.in", ADMIN_PASSWORD)
    assert blocked.status_code == 429 and blocked.json["error"]["code"] == "too_many_attempts"
    assert int(blocked.headers["Retry-After"]) > 0
    add_admin(app, "other@finvera.in")  # another account is not affected
    assert login(client, "/api/admin/auth/login", "other@finvera.in",
                 ADMIN_PASSWORD).status_code == 200


def test_sign_up_then_the_tenant_answers_by_host_or_header(app, client, admin_headers):
    created = create_tenant(client, admin_headers, "acme")
    assert created.status_code == 201
    tenant = created.json["data"]["tenant"]
    assert (tenant["subdomain"], tenant["status"]) == ("acme", "active")
    password = created.json["data"]["admin"]["password"]

    by_host = login(client, "/api/auth/login", "owner@acme.in", password,
                    Host="ACME.LocalHost:8443")
    assert by_host.status_code == 200
    token = by_host.json["data"]["token"]
    for headers in ({"Host": "acme.localhost"}, {"X-Tenant-ID": "acme"},
                    {"X-Tenant-ID": str(tenant["id"])},
                    {"Host": "acme.localhost:80", "X-Tenant-ID": str(tenant["id"])}):
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}", **headers})
        assert me.status_code == 200, (headers, me.json)
        assert me.json["data"]["tenant"]["subdomain"] == "acme"
        assert me.json["data"]["user"] == {"id": 1, "email": "owner@acme.in", "role": "admin",
                                           "full_name": "Acme Traders"}

    given = create_tenant(client, admin_headers, "beta", admin_password="chosen password")
    assert "password" not in given.json["data"]["admin"]


@pytest.mark.parametrize("body, field", [
    ({"company_name": ""}, "company_name"),
    ({"subdomain": "ab"}, "subdomain"),
    ({"subdomain": "a" * 31}, "subdomain"),
    ({"subdomain": "Acme"}, "subdomain"),
    ({"subdomain": "1acme"}, "subdomain"),
    ({"subdomain": "acme-"}, "subdomain"),
    ({"subdomain": "ac_me"}, "subdomain"),
    ({"subdomain": "admin"}, "subdomain"),
    ({"subdomain": "a'; DROP DATABASE finvera_master; --"}, "subdomain"),
    ({"subdomain": "acme.evil"}, "subdomain"),
    ({"email": "not-an-email"}, "email"),
    ({"admin_password": "short"}, "admin_password"),
    ({"plan": "no-such-plan"}, "plan"),
    ({"referral_code": "NOPE"}, "referral_code"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_sign_ups_name_the_field_and_change_nothing(app, client, admin_headers, body, field):
    before = counts(app)
    good = {"company_name": "Acme", "subdomain": "acme", "email": "owner@acme.in"}
    response = client.post("/api/admin/tenants", json={**good, **body}, headers=admin_headers)
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"]
    assert counts(app) == before


def test_a_taken_subdomain_is_409(client, admin_headers):
    assert create_tenant(client, admin_headers, "acme").status_code == 201
    again = create_tenant(client, admin_headers, "acme")
    assert again.status_code == 409 and again.json["error"]["code"] == "subdomain_taken"


def test_only_admins_with_the_right_role_create_tenants(app, client):
    add_admin(app, "help@finvera.in", role="support")
    token = login(client, "/api/admin/auth/login", "help@finvera.in", ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {token.json['data']['token']}"}
    assert create_tenant(client, headers, "acme").status_code == 403
    assert create_tenant(client, {}, "acme").status_code == 401


def test_tokens_never_cross_tenants_or_tiers(app, client, admin_headers, two_tenants):
    acme, zenith = two_tenants["acme"], two_tenants["zenith"]
    assert client.get("/api/auth/me", headers=acme).status_code == 200
    assert client.get("/api/auth/me", headers=zenith).status_code == 200
    # acme's token on zenith, by header and by host
    assert client.get("/api/auth/me", headers={**acme, "X-Tenant-ID": "zenith"}).status_code \
        == 401
    assert client.get("/api/auth/me", headers={"Authorization": acme["Authorization"],
                                               "Host": "zenith.localhost"}).status_code == 401
    # a tenant token on the platform, an admin token on a tenant
    assert client.get("/api/admin/auth/me", headers=acme).status_code == 401
    assert client.get("/api/auth/me", headers={**admin_headers,
                                               "X-Tenant-ID": "acme"}).status_code == 401
    assert client.get("/api/admin/auth/me", headers=admin_headers).status_code == 200


def test_forged_expired_and_malformed_tokens_are_refused(app, client, two_tenants):
    service = app.extensions["finvera_tokens"]
    claims = service.verify(two_tenants["acme"]["Authorization"].split()[1])
    forged = jwt.encode({"sub": "1", "scope": TENANT, "tid": claims.tenant_id,
                         "tdb": claims.tenant_db, "iat": int(time.time()),
                         "exp": int(time.time()) + 60}, b"k" * 32, algorithm="HS256")
    expired = jwt.encode({"sub": "1", "scope": TENANT, "tid": claims.tenant_id,
                          "tdb": claims.tenant_db, "iat": 1, "exp": 2},
                         service._key, algorithm="HS256")
    unsigned = jwt.encode({"sub": "1", "scope": ADMIN, "iat": 1, "exp": 2**40}, None,
                          algorithm="none")
    for token in (forged, expired, unsigned, "garbage", ""):
        response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}",
                                                        "X-Tenant-ID": "acme"})
        assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    # A token for the same tenant id but another database (a recreated tenant) is refused.
    other_db = service.issue(Claims(scope=TENANT, user_id=1, tenant_id=claims.tenant_id,
                                    tenant_db=claims.tenant_db + "x"))
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {other_db}",
                                               "X-Tenant-ID": "acme"}).status_code == 401


def test_a_request_has_one_tenant_connection_for_its_core_reads_and_its_session(app,
                                                                              two_tenants):
    def full_name():
        with app.test_request_context(headers={"X-Tenant-ID": "acme"}):
            load_tenant()
            return tenant_connection().scalar(sa.select(User.full_name).where(User.id == 1))

    with app.test_request_context(headers={"X-Tenant-ID": "acme"}):
        load_tenant()
        connection = tenant_connection()
        assert connection.scalar(sa.select(User.role).where(User.id == 1)) is not None
        session = tenant_session()  # after a Core read: the same connection, its own transaction
        session.execute(sa.update(User).where(User.id == 1).values(full_name="Both Ways"))
        assert session.connection() is connection and tenant_connection() is connection
        session.commit()
        close_tenant_session()
    assert full_name() == "Both Ways"


def set_status(app, subdomain, status):
    dbs = app.extensions["finvera"]
    with Session(dbs.master_engine) as session:
        tenant = session.scalar(sa.select(TenantMaster).where(TenantMaster.subdomain == subdomain))
        tenant.status = status
        session.commit()
        dbs.directory.forget(tenant.id)


def test_another_process_sees_a_change_within_the_ttl_and_keeps_unchanged_tenants_longer(
        app, two_tenants):
    """A process's directory checks master for changed rows once per TTL: a suspension made
    elsewhere is seen after the TTL, while an unchanged tenant stays cached past it."""
    dbs = app.extensions["finvera"]
    elsewhere = TenantDirectory(dbs.master_engine, dbs.cipher, ttl_seconds=1)
    assert elsewhere.resolve("acme", None).status == "active"
    assert elsewhere.resolve("zenith", None).company_name == "Zenith Traders"
    with dbs.master_engine.begin() as conn:  # a change no check can see: updated_at in the past
        conn.execute(sa.update(TenantMaster).where(TenantMaster.subdomain == "zenith").values(
            company_name="Unseen", updated_at=datetime(2000, 1, 1)))
    set_status(app, "acme", "suspended")
    time.sleep(1.1)
    with pytest.raises(TenantSuspended):
        elsewhere.resolve("acme", None)
    assert elsewhere.resolve("zenith", None).company_name == "Zenith Traders"
    set_status(app, "acme", "active")
    time.sleep(1.1)
    assert elsewhere.resolve("acme", None).status == "active"  # the next check: active again
    fresh = TenantDirectory(dbs.master_engine, dbs.cipher, ttl_seconds=1)
    assert fresh.resolve("zenith", None).company_name == "Unseen"


def test_another_process_drops_a_users_standing_when_the_change_is_announced(
        app, client, environment, two_tenants):
    """Standing lives as long as the tenant's lookup: past the TTL when nothing says it
    changed (a change by hand in the tenant's database is not seen), and dropped at the next
    check once the API changes the user (it announces the change on the tenant's row)."""
    dbs = app.extensions["finvera"]
    created = client.post("/api/users", json={"email": "clerk@acme.in", "role": "viewer",
                                              "password": "a long password"},
                          headers=two_tenants["acme"])
    assert created.status_code == 201, created.json
    clerk_id = created.json["data"]["user"]["id"]
    token = login(client, "/api/auth/login", "clerk@acme.in", "a long password",
                  **{"X-Tenant-ID": "acme"}).json["data"]["token"]
    clerk = {"Authorization": f"Bearer {token}", "X-Tenant-ID": "acme"}
    with dbs.master_engine.begin() as conn:  # no change of the sign-ups left to be seen
        conn.execute(sa.update(TenantMaster).values(updated_at=datetime(2000, 1, 1)))

    def clerk_active(active: bool) -> None:  # by hand, in acme's database
        with dbs.connections.session(dbs.directory.find("acme").target) as session:
            session.execute(sa.update(User).where(User.id == clerk_id)
                            .values(is_active=active))
            session.commit()

    with same_databases({**environment, "TENANT_CACHE_TTL_SECONDS": "1"}) as other:
        elsewhere = other.test_client()
        assert elsewhere.get("/api/users", headers=clerk).status_code == 200
        clerk_active(False)
        time.sleep(1.1)
        assert elsewhere.get("/api/users", headers=clerk).status_code == 200  # not announced
        clerk_active(True)
        deactivated = client.delete(f"/api/users/{clerk_id}", headers=two_tenants["acme"])
        assert deactivated.status_code == 200
        assert client.get("/api/users", headers=clerk).status_code == 401  # here: at once
        time.sleep(1.1)
        assert elsewhere.get("/api/users", headers=clerk).status_code == 401  # the next check
        assert elsewhere.get("/api/users", headers=two_tenants["zenith"]).status_code == 200


# One pair of tenants for every case (a sign-up is the slow part): each case sets acme's status,
# checks the answer and that zenith is untouched, then puts acme back.
STATUS_ANSWERS = [
    ("suspended", "tenant_suspended", 403), ("provisioning", "tenant_provisioning", 503),
    ("failed", "tenant_not_found", 404), ("deleted", "tenant_not_found", 404),
]


def test_tenant_status_decides_the_answer(app, client, two_tenants):
    for status, code, http in STATUS_ANSWERS:
        set_status(app, "acme", status)
        response = client.get("/api/auth/me", headers=two_tenants["acme"])
        assert (response.status_code, response.json["error"]["code"]) == (http, code), status
        assert client.get("/api/auth/me", headers=two_tenants["zenith"]).status_code == 200
        set_status(app, "acme", "active")
        assert client.get("/api/auth/me", headers=two_tenants["acme"]).status_code == 200


NO_VALID_TENANT = [
    ({}, "tenant_required"),
    ({"X-Tenant-ID": "nobody"}, "tenant_not_found"),
    ({"X-Tenant-ID": "999999"}, "tenant_not_found"),
    ({"X-Tenant-ID": "x' OR '1'='1"}, "tenant_not_found"),
    ({"X-Tenant-ID": "zenith", "Host": "acme.localhost"}, "tenant_mismatch"),
    ({"Host": "acme.evil.localhost"}, "tenant_required"),
    ({"Host": "acme.otherdomain.in"}, "tenant_required"),
]


def test_requests_that_name_no_valid_tenant_fail_closed(client, two_tenants):
    for headers, code in NO_VALID_TENANT:
        response = client.post("/api/auth/login",
                               json={"email": "owner@acme.in", "password": "x"}, headers=headers)
        assert response.json["error"]["code"] == code, headers
        assert response.status_code in (400, 404), headers


def test_platform_endpoints_never_open_a_tenant_database(app, client, admin_headers):
    assert create_tenant(client, admin_headers, "acme").status_code == 201
    assert client.get("/api/admin/auth/me", headers=admin_headers).status_code == 200
    connections = app.extensions["finvera"].connections
    assert (connections.cached_engines, connections.open_connections) == (0, 0)


def test_an_oversized_sign_up_is_413_and_changes_nothing(app, client, admin_headers):
    before = counts(app)
    response = client.post("/api/admin/tenants", headers=admin_headers, json={
        "company_name": "x" * (2 * 1024 * 1024), "subdomain": "acme", "email": "o@acme.in"})
    assert response.status_code == 413 and response.json["error"]["code"] == "payload_too_large"
    assert counts(app) == before


@pytest.mark.mysql
def test_with_separate_users_requests_run_as_the_tenants_own_user(mysql_server):
    from api import create_app
    from api.config import load_settings
    from tests.conftest import mysql_environment

    app = create_app(load_settings(mysql_environment(mysql_server,
                                                     USE_SEPARATE_DB_USERS="true")))
    dbs = app.extensions["finvera"]
    dbs.initialize()
    try:
        add_admin(app)
        client = app.test_client()
        token = login(client, "/api/admin/auth/login", "root@finvera.in", ADMIN_PASSWORD)
        headers = {"Authorization": f"Bearer {token.json['data']['token']}"}
        tenant = create_tenant(client, headers, "acme", admin_password="tenant password")
        assert tenant.status_code == 201
        signed_in = login(client, "/api/auth/login", "owner@acme.in", "tenant password",
                          **{"X-Tenant-ID": "acme"})
        assert signed_in.status_code == 200
        target = dbs.directory.find("acme").target
        assert target.user and target.user != dbs.settings.db_user
        with dbs.connections.session(target) as session:
            current = session.execute(sa.text("SELECT CURRENT_USER()")).scalar()
        assert current.split("@")[0] == target.user
    finally:
        for name in dbs.backend.list_databases(dbs.settings.tenant_db_prefix):
            dbs.backend.drop_database(name)
        dbs.dispose()
