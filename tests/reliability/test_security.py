"""Security checks: tokens, SQL-looking identifiers, paths in backups, oversized bodies, and
secrets (tenant DB passwords, the encrypted connection info) kept out of answers and logs.

What tests/test_tenant_routing.py already checks (a forged key, an expired token, an unsigned
admin token on a tenant endpoint, another tenant's token, admin vs tenant scope, a recreated
tenant's database name) and tests/tenancy/test_backups.py (names in a manifest that try to
escape) is not repeated; this adds tampered payloads, alg=none with valid tenant claims,
algorithm and key confusion, SQL in claims, a deleted tenant's token, SQL-looking input in
every identifier the API takes, paths given to the backup and restore commands, 413 on every
body-taking endpoint family, and the secrets checks.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from api.models.main import AdminUser
from api.models.master import TenantMaster
from api.models.tenant import AccountGroup, Ledger
from api.tenancy.backends import IDENTIFIER
from api.tenancy.backups import Manifest
from api.tenancy.provisioning import tenant_db_user
from tests.reliability.conftest import (
    Server,
    build_platform,
    environment_for,
    figures,
    scaled,
)

MIB = 1024 * 1024


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tampered(token: str, **changes) -> str:
    """The token with its payload changed and its original signature kept."""
    header, payload, signature = token.split(".")
    claims = {**json.loads(unb64(payload)), **changes}
    return ".".join((header, b64(json.dumps(claims).encode()), signature))


def hs512(claims: dict, key: bytes) -> str:
    with warnings.catch_warnings():  # PyJWT finds a 32-byte key short for SHA-512: it is
        warnings.simplefilter("ignore")  # the real key, used with the wrong algorithm
        return jwt.encode(claims, key, algorithm="HS512")


def bearer(token: str, **headers) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


# ---- tokens ----

def test_tampered_unsigned_confused_and_orphaned_tokens_open_nothing(platform):
    acme, zenith = platform.add_tenant("acme"), platform.add_tenant("zenith")
    client, key = platform.app.test_client(), platform.tokens._key
    acme_token = acme.headers["Authorization"].split()[1]
    admin_token = platform.admin["super_admin"]["Authorization"].split()[1]
    now = int(time.time())
    acme_claims = {"sub": "1", "scope": "tenant", "tid": acme.id, "tdb": acme.db_name,
                   "iat": now, "exp": now + 600}
    fernet_key = platform.settings.encryption_keys[0]
    cases = [  # (what, path, headers): each must be 401 unauthorized
        ("payload moved to zenith, acme's signature", "/api/auth/me",
         bearer(tampered(acme_token, tid=zenith.id, tdb=zenith.db_name), **{
             "X-Tenant-ID": "zenith"})),
        ("payload made admin, tenant signature", "/api/admin/auth/me",
         bearer(tampered(acme_token, scope="admin"))),
        ("payload given another user", "/api/auth/me",
         bearer(tampered(acme_token, sub="2"), **{"X-Tenant-ID": "acme"})),
        ("admin payload given a later expiry", "/api/admin/auth/me",
         bearer(tampered(admin_token, exp=now + 10**8))),
        ("alg=none with acme's valid claims", "/api/auth/me",
         bearer(jwt.encode(acme_claims, None, algorithm="none"), **{"X-Tenant-ID": "acme"})),
        ("alg=none admin claims on the platform", "/api/admin/auth/me",
         bearer(jwt.encode({"sub": "1", "scope": "admin", "iat": now, "exp": now + 600},
                           None, algorithm="none"))),
        ("HS512 with the real signing key", "/api/auth/me",
         bearer(hs512(acme_claims, key), **{"X-Tenant-ID": "acme"})),
        ("signed with the raw ENCRYPTION_KEY", "/api/auth/me",
         bearer(jwt.encode(acme_claims, fernet_key, algorithm="HS256"),
                **{"X-Tenant-ID": "acme"})),
        ("SQL in sub, real key", "/api/auth/me",
         bearer(jwt.encode({**acme_claims, "sub": "1 OR 1=1"}, key, algorithm="HS256"),
                **{"X-Tenant-ID": "acme"})),
        ("tenant id as a string, real key", "/api/auth/me",
         bearer(jwt.encode({**acme_claims, "tid": str(acme.id)}, key, algorithm="HS256"),
                **{"X-Tenant-ID": "acme"})),
        ("no exp, real key", "/api/auth/me",
         bearer(jwt.encode({k: v for k, v in acme_claims.items() if k != "exp"}, key,
                           algorithm="HS256"), **{"X-Tenant-ID": "acme"})),
        ("unknown scope, real key", "/api/admin/auth/me",
         bearer(jwt.encode({**acme_claims, "scope": "root"}, key, algorithm="HS256"))),
        ("two tokens in one header", "/api/auth/me",
         {"Authorization": f"Bearer {acme_token} {acme_token}", "X-Tenant-ID": "acme"}),
        ("Basic scheme", "/api/auth/me",
         {"Authorization": f"Basic {acme_token}", "X-Tenant-ID": "acme"}),
    ]
    refused = []
    for what, path, headers in cases:
        response = client.get(path, headers=headers)
        refused.append((what, response.status_code, response.get_json()["error"]["code"]
                        if response.status_code != 200 else "OPENED"))
    assert client.get("/api/auth/me", headers=acme.headers).status_code == 200  # the control

    # A deleted tenant: its token finds no tenant any more, by subdomain or by id.
    deleted = client.delete(f"/api/admin/tenants/{acme.id}", json={"confirm": "acme"},
                            headers=platform.admin["admin"])
    assert deleted.status_code == 200, deleted.get_json()
    after_delete = [client.get("/api/auth/me", headers={**acme.headers, "X-Tenant-ID": key_})
                    for key_ in ("acme", str(acme.id))]
    figures(f"tokens ({platform.dbs.backend.name})", forged_or_confused=len(cases),
            refused_401=sum(status == 401 for _, status, _ in refused),
            deleted_tenant_answers=[r.status_code for r in after_delete])
    assert [(what, status, code) for what, status, code in refused
            if (status, code) != (401, "unauthorized")] == []
    assert [(r.status_code, r.get_json()["error"]["code"]) for r in after_delete] == [
        (404, "tenant_not_found")] * 2
    assert client.get("/api/auth/me", headers=zenith.headers).status_code == 200
    assert acme.db_name not in platform.dbs.backend.list_databases(
        platform.settings.tenant_db_prefix)


# ---- SQL-looking input in every identifier ----

PAYLOADS = ["' OR '1'='1", "1; DROP TABLE ledgers; --", "`; DROP DATABASE x; --",
            "\\'; SELECT SLEEP(5); --", "1 UNION SELECT password_hash FROM users",
            "%", "_", "a%' --", "Robert'); DROP TABLE vouchers;--", "\" OR \"\"=\""]


def test_sql_looking_input_in_every_identifier_is_data_never_syntax(platform):
    tenant = platform.add_tenant("sqlco")
    client, admin = platform.app.test_client(), platform.admin["admin"]
    with platform.tenant_session(tenant.subdomain) as session:
        group = session.scalar(sa.select(AccountGroup.id).where(
            AccountGroup.code == "cash_in_hand"))
    tenants_before = client.get("/api/admin/tenants", headers=admin).get_json()["data"]["total"]
    answers: dict[str, set] = {}

    def seen(where, response):
        answers.setdefault(where, set()).add(response.status_code)
        assert response.status_code < 500, (where, response.get_json())
        return response

    started = time.monotonic()
    for payload in PAYLOADS:
        signup = seen("sign-up subdomain", client.post("/api/admin/tenants", headers=admin, json={
            "company_name": "X", "subdomain": payload, "email": "o@x.in"}))
        assert signup.status_code == 400 and "subdomain" in signup.get_json()["error"]["fields"]
        by_header = seen("X-Tenant-ID", client.get("/api/ledgers", headers={
            **tenant.headers, "X-Tenant-ID": payload}))
        assert by_header.status_code in (400, 404)
        by_host = seen("Host", client.get("/api/ledgers", headers={
            "Authorization": tenant.headers["Authorization"],
            "Host": f"{payload}.localhost".replace(" ", "")}))
        assert by_host.status_code in (400, 404)
        made = seen("ledger name", client.post("/api/ledgers", headers=tenant.headers, json={
            "name": f"L {payload}", "account_group_id": group}))
        assert made.status_code == 201 and made.get_json()["data"]["ledger"]["name"] == \
            f"L {payload}"
        found = seen("ledger search", client.get(
            f"/api/ledgers?search={quote(payload)}&limit=200", headers=tenant.headers))
        names = [ledger["name"] for ledger in found.get_json()["data"]["ledgers"]]
        assert names and all(payload in name for name in names), (payload, names)
        tenants = seen("admin tenant search", client.get(
            f"/api/admin/tenants?search={quote(payload)}", headers=admin)).get_json()
        assert tenants["data"]["total"] == 0, payload
        assert seen("id in path", client.get(f"/api/ledgers/{quote(payload, safe='')}",
                                             headers=tenant.headers)).status_code == 404
        assert seen("id in admin path", client.get(
            f"/api/admin/tenants/{quote(payload, safe='')}", headers=admin)).status_code == 404
        assert seen("integer query parameter", client.get(
            f"/api/ledgers?account_group_id={quote(payload)}",
            headers=tenant.headers)).status_code == 400
        assert seen("login email", client.post("/api/auth/login", headers={
            "X-Tenant-ID": "sqlco"}, json={"email": f"{payload}@sqlco.in",
                                          "password": payload})).status_code in (400, 401)
    with platform.tenant_session(tenant.subdomain) as session:
        stored = session.scalars(sa.select(Ledger.name).order_by(Ledger.id)).all()
    figures(f"SQL-looking identifiers ({platform.dbs.backend.name})", payloads=len(PAYLOADS),
            places=len(answers), answers={k: sorted(v) for k, v in answers.items()},
            seconds=round(time.monotonic() - started, 1))
    assert stored == [tenant.marker] + [f"L {payload}" for payload in PAYLOADS]
    assert client.get("/api/admin/tenants", headers=admin).get_json()["data"]["total"] == \
        tenants_before
    with Session(platform.dbs.main_engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AdminUser)) == 3


# ---- paths in backups and restores ----

def test_backup_and_restore_paths_given_to_the_cli_never_escape(platform, tmp_path):
    tenant = platform.add_tenant("pathco")
    runner, out = platform.app.test_cli_runner(), tmp_path / "out"
    before = set(platform.dbs.backend.list_databases(platform.settings.tenant_db_prefix))
    for subdomain in ("../../etc", "..", "pathco/../../x", "pathco; rm -rf /"):
        result = runner.invoke(args=["backup", "--tenant", subdomain, "--out", str(out)])
        assert result.exit_code != 0 and "no active or suspended tenant" in result.output
    assert not out.exists()
    made = runner.invoke(args=["backup", "--tenant", "pathco", "--out", str(out)])
    assert made.exit_code == 0, made.output
    files = sorted(out.iterdir())
    assert len(files) == 2 and all(f.resolve().parent == out.resolve() for f in files)
    dump = next(f for f in files if not f.name.endswith(".manifest.json"))
    for target in ("../../x", "/tmp/x", "x`; DROP DATABASE y; --", "..", "a/b", "x" * 65):
        result = runner.invoke(args=["restore", str(dump), "--as-database", target])
        assert result.exit_code != 0 and "invalid database name" in result.output, (
            target, result.output)
    assert set(platform.dbs.backend.list_databases(platform.settings.tenant_db_prefix)) == \
        before
    # The final backup of a deleted tenant lands in FINVERA_BACKUP_DIR, under its own name.
    deleted = platform.app.test_client().delete(
        f"/api/admin/tenants/{tenant.id}", json={"confirm": "pathco"},
        headers=platform.admin["admin"])
    assert deleted.status_code == 200
    final = Path(deleted.get_json()["data"]["backup"]["file"]).resolve()
    assert final.parent == platform.settings.backup_dir.resolve()
    assert final.name.startswith(tenant.db_name + "_")


MANIFEST = {"file": "x.sql.gz", "database": "finvera_tenant_x_1", "tier": "tenant",
            "tenant": "acme", "backend": "sqlite", "created_at": "2026-01-01T00:00:00Z",
            "schema_version": [], "row_counts": {}, "sha256": "0" * 64, "size_bytes": 1,
            "format_version": 1}


@settings(max_examples=scaled(400, 50), database=None, derandomize=True)
@given(name=st.text(max_size=30) | st.sampled_from(
           ["../x", "/etc/passwd", "..\\x", ".hidden", "a/../b", "x\x00y", "~/x", "."]),
       place=st.sampled_from(["file", "database", "tenant", "table"]))
def test_whatever_a_manifest_says_only_plain_names_get_through(name, place):
    """Names in a manifest, whatever they are, are either refused or plain: a file name with
    no directory part, an identifier, a subdomain. (Known escapes are tested in
    tests/tenancy/test_backups.py; this tries arbitrary text in every place.)"""
    data = dict(MANIFEST)
    if place == "table":
        data["row_counts"] = {name: 1}
    else:
        data[place] = name
    try:
        manifest = Manifest.from_json(json.dumps(data))
    except Exception as exc:
        assert isinstance(exc, ValueError | TypeError | KeyError) or \
            type(exc).__name__ == "BackendError", repr(exc)
        return
    assert "/" not in manifest.file and not manifest.file.startswith(".")
    assert "\\" not in manifest.file or Path(manifest.file).name == manifest.file
    assert IDENTIFIER.match(manifest.database)
    assert manifest.tenant is None or re.fullmatch(r"[a-z][a-z0-9-]+", manifest.tenant)
    assert all(IDENTIFIER.match(table) for table in manifest.row_counts)


# ---- oversized bodies ----

def test_every_kind_of_body_over_1_mib_is_413_and_changes_nothing(platform):
    tenant = platform.add_tenant("bigco")
    client = platform.app.test_client()
    big = {"name": "x" * (MIB + 1), "account_group_id": 1}
    targets = [("POST", "/api/ledgers", tenant.headers), ("PATCH", "/api/ledgers/1",
                                                           tenant.headers),
               ("POST", "/api/vouchers", tenant.headers), ("POST", "/api/users", tenant.headers),
               ("POST", "/api/auth/login", {"X-Tenant-ID": "bigco"}),
               ("POST", "/api/admin/auth/login", {}),
               ("POST", "/api/admin/users", platform.admin["super_admin"]),
               ("PATCH", f"/api/admin/tenants/{tenant.id}", platform.admin["admin"]),
               ("DELETE", f"/api/admin/tenants/{tenant.id}", platform.admin["admin"])]
    answers = []
    for method, path, headers in targets:
        response = client.open(path, method=method, json=big, headers=headers)
        answers.append((method, path, response.status_code,
                        response.get_json()["error"]["code"]))
    raw = client.post("/api/ledgers", data=b"{" + b" " * (2 * MIB) + b"}",
                      headers={**tenant.headers, "Content-Type": "application/json"})
    answers.append(("POST", "/api/ledgers (raw bytes)", raw.status_code,
                    raw.get_json()["error"]["code"]))
    just_under = client.post("/api/ledgers", headers=tenant.headers, json={
        "name": "x" * (MIB - 100), "account_group_id": 1})
    with platform.tenant_session(tenant.subdomain) as session:
        ledgers = session.scalars(sa.select(Ledger.name)).all()
    figures(f"oversized bodies ({platform.dbs.backend.name})", endpoints=len(answers),
            answered_413=sum(a[2] == 413 for a in answers),
            just_under_the_limit=just_under.status_code)
    assert [a for a in answers if a[2:] != (413, "payload_too_large")] == []
    assert just_under.status_code == 400  # read and validated (a name that long is refused)
    assert ledgers == [tenant.marker]
    assert client.get(f"/api/admin/tenants/{tenant.id}", headers=platform.admin[
        "support"]).get_json()["data"]["tenant"]["status"] == "active"


# ---- secrets: answers and logs ----

SECRET_VARIANTS = ["sqlite", pytest.param("mysql-separate-users", marks=pytest.mark.mysql)]


@pytest.fixture(params=SECRET_VARIANTS)
def guarded(request, tmp_path):
    kind = "sqlite" if request.param == "sqlite" else "mysql"
    extra = {} if kind == "sqlite" else {"USE_SEPARATE_DB_USERS": "true"}
    made = build_platform(environment_for(kind, request, tmp_path, **extra))
    yield made
    made.close()


def secrets_of(platform) -> dict[str, str]:
    """Every tenant's encrypted connection info and, decrypted with the app's cipher, its DB
    password (separate users only)."""
    found = {}
    with Session(platform.dbs.master_engine) as session:
        for tenant in session.scalars(sa.select(TenantMaster)):
            if tenant.db_connection_encrypted:
                found[f"{tenant.subdomain} connection info"] = tenant.db_connection_encrypted
                info = platform.dbs.cipher.decrypt(tenant.db_connection_encrypted)
                if info.get("password"):
                    found[f"{tenant.subdomain} DB password"] = info["password"]
    return found


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Which secrets show in ``text``, whole or as any 24-character piece (a log line may
    truncate a long value)."""
    shown = []
    for what, secret in secrets.items():
        pieces = {secret[i:i + 24] for i in range(0, max(1, len(secret) - 23), 8)}
        if any(piece in text for piece in pieces):
            shown.append(what)
    return shown


def exercise(platform, client) -> list[str]:
    """Sign tenants up over HTTP, then use every admin tenant endpoint and the tenant API,
    errors included; return every answer's body."""
    admin, bodies = platform.admin["admin"], []

    def keep(response):
        bodies.append(response.get_data(as_text=True))
        return response

    for subdomain in ("keepco", "dropco"):
        keep(client.post("/api/admin/tenants", headers=admin, json={
            "company_name": f"{subdomain} Ltd", "subdomain": subdomain,
            "email": f"owner@{subdomain}.in", "admin_password": "a good password"}))
    ids = {t["subdomain"]: t["id"] for t in keep(client.get(
        "/api/admin/tenants", headers=admin)).get_json()["data"]["tenants"]}
    keep(client.get(f"/api/admin/tenants/{ids['keepco']}", headers=admin))
    keep(client.get("/api/admin/tenants?search=co&status=active", headers=admin))
    keep(client.patch(f"/api/admin/tenants/{ids['keepco']}", headers=admin,
                      json={"status": "suspended"}))
    keep(client.patch(f"/api/admin/tenants/{ids['keepco']}", headers=admin,
                      json={"status": "active", "company_name": "Keep Co"}))
    keep(client.get("/api/admin/system/databases", headers=admin))
    keep(client.post("/api/admin/tenants", headers=admin, json={
        "company_name": "again", "subdomain": "keepco", "email": "o@keepco.in"}))  # 409
    login = keep(client.post("/api/auth/login", headers={"X-Tenant-ID": "keepco"}, json={
        "email": "owner@keepco.in", "password": "a good password"}))
    token = {"Authorization": f"Bearer {login.get_json()['data']['token']}",
             "X-Tenant-ID": "keepco"}
    keep(client.get("/api/auth/me", headers=token))
    keep(client.get("/api/ledgers", headers=token))
    keep(client.get("/api/ledgers/999", headers=token))
    keep(client.post("/api/ledgers", headers=token, json={"name": ""}))
    keep(client.delete(f"/api/admin/tenants/{ids['dropco']}", headers=admin,
                       json={"confirm": "dropco"}))
    keep(client.get(f"/api/admin/tenants/{ids['dropco']}", headers=admin))
    return bodies


def test_answers_never_show_connection_info_or_db_passwords(guarded):
    client = guarded.app.test_client()
    bodies = exercise(guarded, client)
    secrets = secrets_of(guarded)
    everything = "\n".join(bodies)
    figures(f"secrets in answers ({guarded.dbs.backend.name}, separate DB users "
            f"{guarded.settings.use_separate_db_users})", answers=len(bodies),
            secrets_checked=len(secrets), leaked=leaks(everything, secrets))
    assert len(secrets) >= (2 if guarded.settings.use_separate_db_users else 1)
    assert "db_connection_encrypted" not in everything
    assert "gAAAAA" not in everything  # no Fernet token of any kind
    assert leaks(everything, secrets) == []


def test_the_apps_logs_at_debug_never_show_connection_info_or_db_passwords(guarded, caplog):
    """Root at DEBUG (the app's own loggers, yoyo, gunicorn's would be there too), while
    signing up, serving, failing (a tenant whose DB user is gone: 503) and deleting."""
    caplog.set_level(logging.DEBUG)
    client = guarded.app.test_client()
    bodies = exercise(guarded, client)
    secrets = secrets_of(guarded)
    dbs = guarded.dbs
    if guarded.settings.use_separate_db_users:  # a failing tenant database: the error path
        keepco = dbs.directory.find("keepco")
        dbs.backend.drop_user(tenant_db_user(dbs, keepco.id))
        dbs.connections.evict(keepco.id)
        token = guarded.tenant_headers(keepco.id, keepco.db_name, "keepco")
        failed = client.get("/api/ledgers", headers=token)
        bodies.append(failed.get_data(as_text=True))
        assert failed.status_code == 503
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}"
                       for r in caplog.records)
    logged += "\n" + caplog.text
    figures(f"secrets in DEBUG logs ({dbs.backend.name}, separate DB users "
            f"{guarded.settings.use_separate_db_users})", log_records=len(caplog.records),
            secrets_checked=len(secrets), leaked_in_logs=leaks(logged, secrets),
            leaked_in_answers=leaks("\n".join(bodies), secrets))
    assert caplog.records  # the capture did see the app's logs
    assert leaks(logged, secrets) == []
    assert leaks("\n".join(bodies), secrets) == []


def test_sql_logging_never_shows_connection_info_or_db_passwords(guarded, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    exercise(guarded, guarded.app.test_client())
    secrets = secrets_of(guarded)
    shown = leaks(caplog.text, secrets)
    figures(f"secrets in SQL logs ({guarded.dbs.backend.name})", secrets_checked=len(secrets),
            leaked=shown)
    assert shown == []


def test_a_failed_sign_up_never_shows_connection_info_in_its_reason(guarded):
    dbs = guarded.dbs
    if dbs.backend.name == "sqlite":
        trigger = ("CREATE TRIGGER refuse_connection BEFORE UPDATE OF db_connection_encrypted "
                   "ON tenant_master WHEN NEW.db_connection_encrypted IS NOT NULL "
                   "BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
    else:
        trigger = ("CREATE TRIGGER refuse_connection BEFORE UPDATE ON tenant_master FOR EACH "
                   "ROW BEGIN IF NEW.db_connection_encrypted IS NOT NULL THEN SIGNAL SQLSTATE "
                   "'45000' SET MESSAGE_TEXT = 'injected fault'; END IF; END")
    with dbs.master_engine.begin() as connection:
        connection.exec_driver_sql(trigger)
    captured = []
    real_encrypt = dbs.cipher.encrypt
    dbs.cipher.encrypt = lambda info: captured.append(real_encrypt(info)) or captured[-1]
    try:
        client, admin = guarded.app.test_client(), guarded.admin["admin"]
        failed = client.post("/api/admin/tenants", headers=admin, json={
            "company_name": "Faulty", "subdomain": "faulty", "email": "o@faulty.in"})
        listed = client.get("/api/admin/tenants?status=failed", headers=admin)
    finally:
        dbs.cipher.encrypt = real_encrypt
    secrets = {"the encrypted connection info": captured[0]}
    secrets.update({"its DB password": dbs.cipher.decrypt(captured[0])["password"]}
                   if "password" in dbs.cipher.decrypt(captured[0]) else {})
    reason = listed.get_json()["data"]["tenants"][0]["status_reason"]
    figures(f"secrets in a failed sign-up's reason ({dbs.backend.name})",
            answer=failed.status_code, reason_chars=len(reason),
            leaked=leaks(listed.get_data(as_text=True), secrets))
    assert failed.status_code == 503
    assert leaks(listed.get_data(as_text=True) + failed.get_data(as_text=True), secrets) == []


# ---- chunked bodies ----



def send_chunked(client, path, headers, body: bytes):
    """What a WSGI server hands the app for a chunked request: no Content-Length, and
    wsgi.input_terminated set (gunicorn does, and Werkzeug then enforces the limit)."""
    import io

    return client.post(path, input_stream=io.BytesIO(body), environ_overrides={
        "wsgi.input_terminated": True}, headers={**headers, "Transfer-Encoding": "chunked",
                                                  "Content-Type": "application/json"})


def test_a_chunked_body_over_1_mib_is_413(platform):
    tenant = platform.add_tenant("chunkco")
    client = platform.app.test_client()
    body = json.dumps({"name": "x" * (2 * MIB), "account_group_id": 1}).encode()
    response = send_chunked(client, "/api/ledgers", tenant.headers, body)
    small = send_chunked(client, "/api/ledgers", tenant.headers, json.dumps(
        {"name": "Chunked", "account_group_id": 1}).encode())
    figures(f"chunked bodies ({platform.dbs.backend.name})", small=small.status_code,
            over_1_mib=f"{response.status_code} {response.get_json()['error']['code']}")
    assert small.status_code in (201, 400)  # a small chunked body is read as it is
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        413, "payload_too_large")


# ---- the real server ----

def post_over_http(port: int, headers: dict, body: bytes, chunked: bool):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {**headers, "Content-Type": "application/json"}
    try:
        if chunked:
            conn.putrequest("POST", "/api/ledgers")
            for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                conn.putheader(name, value)
            conn.endheaders()
            try:
                for start in range(0, len(body), 65536):
                    piece = body[start:start + 65536]
                    conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except OSError:
                pass  # the server may answer and close before reading it all
        else:
            conn.request("POST", "/api/ledgers", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def against_a_real_server(request, tmp_path, kind: str, chunked: bool):
    """A 2 MiB body to a real ``finvera serve``; returns its answer, the tenant's ledgers
    after, the server's log and the secrets."""
    import http.client

    extra = {"USE_SEPARATE_DB_USERS": "true"} if kind == "mysql" else {}
    platform = build_platform(environment_for(kind, request, tmp_path, **extra))
    server = Server(platform.env, tmp_path / "serve.log")
    try:
        tenant = platform.add_tenant("wireco")
        server.wait_ready()
        body = json.dumps({"name": "x" * (2 * MIB), "account_group_id": 1}).encode()
        status, answer = post_over_http(server.port, tenant.headers, body, chunked)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/api/ledgers", headers=tenant.headers)
        names = [ledger["name"] for ledger in json.loads(conn.getresponse().read())[
            "data"]["ledgers"]]
        conn.close()
        secrets = secrets_of(platform)
    finally:
        server.stop()
        platform.close()
    log = server.log
    figures(f"real server ({kind}, {'chunked' if chunked else 'Content-Length'})",
            over_1_mib=f"{status} {answer['error']['code']}", ledgers_after=names,
            log_bytes=len(log), leaked_in_log=leaks(log, secrets))
    return (status, answer["error"]["code"]), names, log, secrets, tenant


REAL_SERVER_KINDS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]


@pytest.mark.reliability
@pytest.mark.parametrize("kind", REAL_SERVER_KINDS)
def test_the_real_server_refuses_a_body_over_1_mib_and_logs_no_secret(request, tmp_path, kind):
    answer, names, log, secrets, tenant = against_a_real_server(request, tmp_path, kind, False)
    assert answer == (413, "payload_too_large")
    assert names == [tenant.marker]
    assert leaks(log, secrets) == [] and "Traceback" not in log


@pytest.mark.reliability
@pytest.mark.parametrize("kind", REAL_SERVER_KINDS)
def test_the_real_server_refuses_a_chunked_body_over_1_mib(request, tmp_path, kind):
    answer, names, _log, _secrets, tenant = against_a_real_server(request, tmp_path, kind, True)
    assert names == [tenant.marker]
    assert answer == (413, "payload_too_large")
