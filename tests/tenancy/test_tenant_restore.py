"""Restoring a tenant's backup as a tenant, on both backends, through the CLI and the app: a
deleted tenant comes back row for row, a live one is switched only when asked and keeps its
database, a clone is a tenant of its own, and refusals and failures leave nothing behind."""

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.config import load_settings
from api.models.master import TenantMaster
from api.tenancy import tenant_restore
from api.tenancy.backups import BackupError, backup_database, read_manifest
from api.tenancy.databases import Databases
from api.tenancy.migrations import Tier
from api.tenancy.provisioning import SignUp, provision_tenant, subdomain_lock, tenant_db_user
from api.tenancy.tenant_restore import restore_as_tenant
from tests.tenancy.test_backups import TRICKY, table_rows

PASSWORD = "acme's password"


@pytest.fixture
def environment(environment, tmp_path):
    """Final backups of deleted tenants go to this test's own directory."""
    return {**environment, "FINVERA_BACKUP_DIR": str(tmp_path / "final")}


def signed_up(app, client, subdomain):
    """A tenant made by the sign-up, its admin signed in through the API: (row, headers)."""
    tenant = provision_tenant(app.extensions["finvera"], SignUp(
        f"{subdomain.title()} Traders", subdomain, f"owner@{subdomain}.in",
        admin_password=PASSWORD)).tenant
    return tenant, sign_in(client, subdomain)


def sign_in(client, subdomain):
    response = client.post("/api/auth/login", headers={"X-Tenant-ID": subdomain},
                           json={"email": f"owner@{subdomain}.in", "password": PASSWORD})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['data']['token']}",
            "X-Tenant-ID": subdomain}


def add_books(client, headers, names):
    """Ledgers named ``names`` and a journal between the first two: rows in many tables."""
    groups = client.get("/api/account-groups?limit=200", headers=headers).json["data"]
    cash = next(g["id"] for g in groups["account_groups"] if g["code"] == "cash_in_hand")
    ids = []
    for name in names:
        made = client.post("/api/ledgers", headers=headers,
                           json={"name": name, "account_group_id": cash})
        assert made.status_code == 201, made.json
        ids.append(made.json["data"]["ledger"]["id"])
    voucher = client.post("/api/vouchers", headers=headers, json={
        "voucher_type": "Journal", "date": "2026-11-25", "narration": TRICKY[0],
        "entries": [{"ledger_id": ids[0], "type": "Dr", "amount": "1234.56"},
                    {"ledger_id": ids[1], "type": "Cr", "amount": "1234.56"}]})
    assert voucher.status_code == 201, voucher.json


def ledger_names(client, headers):
    response = client.get("/api/ledgers?limit=100", headers=headers)
    assert response.status_code == 200, response.json
    return sorted(ledger["name"] for ledger in response.json["data"]["ledgers"])


def row_of(app_or_dbs, subdomain):
    dbs = getattr(app_or_dbs, "extensions", {}).get("finvera", app_or_dbs)
    with Session(dbs.master_engine) as session:
        return session.scalar(sa.select(TenantMaster).where(TenantMaster.subdomain == subdomain))


def rows_of_master(app):
    with Session(app.extensions["finvera"].master_engine) as session:
        return [(t.id, t.subdomain, t.status, t.db_name, t.db_connection_encrypted)
                for t in session.scalars(sa.select(TenantMaster).order_by(TenantMaster.id))]


def tenant_databases(app):
    dbs = app.extensions["finvera"]
    return dbs.backend.list_databases(dbs.settings.tenant_db_prefix)


def restore(runner, *args):
    result = runner.invoke(args=["restore", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_a_deleted_tenant_comes_back_from_its_final_backup(app, client, runner,
                                                            admin_headers):
    tenant, headers = signed_up(app, client, "acme")
    add_books(client, headers, ["Cash", "Bank", *[text or "blank" for text in TRICKY]])
    original = table_rows(app.extensions["finvera"].backend, tenant.db_name)
    names = ledger_names(client, headers)
    assert len(names) == 2 + len(TRICKY)
    deleted = client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                            json={"confirm": "acme"})
    assert deleted.status_code == 200, deleted.json
    final = Path(deleted.json["data"]["backup"]["file"])
    assert client.get("/api/ledgers", headers=headers).status_code == 404

    result = restore(runner, final, "--as-tenant", "acme")
    assert result.exit_code == 0, result.output
    assert f"as tenant acme (id {tenant.id}, active again)" in result.output
    row = row_of(app, "acme")
    assert (row.id, row.status, row.deleted_at, row.company_name) == (
        tenant.id, "active", None, "Acme Traders")
    assert row.db_name != tenant.db_name and tenant_databases(app) == [row.db_name]
    assert table_rows(app.extensions["finvera"].backend, row.db_name) == original

    refused = client.get("/api/ledgers", headers=headers)  # bound to the dropped database
    assert (refused.status_code, refused.json["error"]["code"]) == (401, "unauthorized")
    again = sign_in(client, "acme")
    assert ledger_names(client, again) == names
    [voucher] = client.get("/api/vouchers", headers=again).json["data"]["vouchers"]
    assert (voucher["narration"], voucher["total"]) == (TRICKY[0], "1234.56")


def test_a_live_tenant_is_switched_only_when_asked_and_keeps_its_database(app, client, runner,
                                                                        tmp_path):
    dbs = app.extensions["finvera"]
    tenant, headers = signed_up(app, client, "acme")
    beta, beta_headers = signed_up(app, client, "beta")
    add_books(client, headers, ["Before 1", "Before 2"])
    backup = backup_database(dbs.backend, tenant.db_name, tmp_path, tier=Tier.TENANT,
                             tenant="acme")
    at_backup = table_rows(dbs.backend, tenant.db_name)
    add_books(client, headers, ["After 1", "After 2"])
    after = table_rows(dbs.backend, tenant.db_name)
    before_restore = (rows_of_master(app), tenant_databases(app))

    refused = restore(runner, backup, "--as-tenant", "acme")
    assert refused.exit_code == 1 and "tenant 'acme' is active: ask to replace it" in \
        refused.output, refused.output
    assert (rows_of_master(app), tenant_databases(app)) == before_restore

    result = restore(runner, backup, "--as-tenant", "acme", "--replace")
    assert result.exit_code == 0, result.output
    row = row_of(app, "acme")
    assert (row.id, row.status) == (tenant.id, "active") and row.db_name != tenant.db_name
    assert f"kept its previous database {tenant.db_name}" in result.output
    assert table_rows(dbs.backend, row.db_name) == at_backup
    assert table_rows(dbs.backend, tenant.db_name) == after  # nothing stored is lost

    assert client.get("/api/ledgers", headers=headers).status_code == 401
    assert ledger_names(client, sign_in(client, "acme")) == ["Before 1", "Before 2"]
    assert ledger_names(client, beta_headers) == []
    assert row_of(app, "beta").db_name == beta.db_name
    mixed = {**beta_headers, "X-Tenant-ID": "acme"}
    assert client.get("/api/ledgers", headers=mixed).status_code == 401

    repair = runner.invoke(args=["tenants", "repair", "--all"])
    assert f"orphan database {tenant.db_name}" in repair.output, repair.output
    assert row.db_name not in repair.output


def test_a_suspended_tenant_stays_suspended(app, client, runner, admin_headers, tmp_path):
    dbs = app.extensions["finvera"]
    tenant, _ = signed_up(app, client, "acme")
    backup = backup_database(dbs.backend, tenant.db_name, tmp_path, tier=Tier.TENANT,
                             tenant="acme")
    client.patch(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                 json={"status": "suspended"})
    assert restore(runner, backup, "--as-tenant", "acme", "--replace").exit_code == 0
    assert row_of(app, "acme").status == "suspended"
    blocked = client.get("/api/ledgers", headers={"X-Tenant-ID": "acme"})
    assert blocked.status_code == 403


def test_a_clone_under_a_free_subdomain_is_a_tenant_of_its_own(app, client, runner, tmp_path):
    dbs = app.extensions["finvera"]
    tenant, headers = signed_up(app, client, "acme")
    add_books(client, headers, ["Cash", "Bank"])
    with Session(dbs.master_engine) as session:
        session.get(TenantMaster, tenant.id).referral_code = "SAL-10"
        session.get(TenantMaster, tenant.id).gstin = "27AAPFU0939F1ZV"
        session.commit()
    backup = backup_database(dbs.backend, tenant.db_name, tmp_path, tier=Tier.TENANT,
                             tenant="acme")

    result = restore(runner, backup, "--as-tenant", "acme-copy")
    assert result.exit_code == 0, result.output
    assert "as new tenant acme-copy" in result.output
    clone = row_of(app, "acme-copy")
    assert clone.id != tenant.id and clone.status == "active"
    assert (clone.company_name, clone.email, clone.gstin, clone.referral_code) == (
        "Acme Traders", "owner@acme.in", "27AAPFU0939F1ZV", None)
    assert table_rows(dbs.backend, clone.db_name) == table_rows(dbs.backend, tenant.db_name)

    response = client.post("/api/auth/login", headers={"X-Tenant-ID": "acme-copy"},
                           json={"email": "owner@acme.in", "password": PASSWORD})
    clone_headers = {"Authorization": f"Bearer {response.json['data']['token']}",
                     "X-Tenant-ID": "acme-copy"}
    add_books(client, clone_headers, ["Only in the clone", "And this"])
    assert "Only in the clone" not in ledger_names(client, headers)
    assert client.get("/api/ledgers", headers={**headers, "X-Tenant-ID": "acme-copy"}
                      ).status_code == 401
    assert client.get("/api/ledgers", headers={**clone_headers, "X-Tenant-ID": "acme"}
                      ).status_code == 401


def test_a_tenant_without_a_row_takes_its_details_from_its_admin(app, client, tmp_path):
    dbs = app.extensions["finvera"]
    tenant, _ = signed_up(app, client, "acme")
    backup = backup_database(dbs.backend, tenant.db_name, tmp_path, tier=Tier.TENANT,
                             tenant="acme")
    with Session(dbs.master_engine) as session:  # as if master were rebuilt without it
        session.delete(session.get(TenantMaster, tenant.id))
        session.commit()
    report = restore_as_tenant(dbs, backup, "acme")
    assert report.outcome == "created"
    row = row_of(app, "acme")
    assert (row.company_name, row.email, row.status) == ("Acme Traders", "owner@acme.in",
                                                         "active")
    assert ledger_names(client, sign_in(client, "acme")) == []


def test_refusals_change_nothing(app, client, runner, tmp_path):
    dbs = app.extensions["finvera"]
    tenant, _ = signed_up(app, client, "acme")
    backup = backup_database(dbs.backend, tenant.db_name, tmp_path / "t", tier=Tier.TENANT,
                             tenant="acme")
    main = backup_database(dbs.backend, dbs.settings.db_name, tmp_path / "m", tier=Tier.MAIN)
    with Session(dbs.master_engine) as session:
        session.add(TenantMaster(subdomain="halfway", company_name="Half", email="h@h.in",
                                 status="provisioning"))
        session.commit()
    unchanged = (rows_of_master(app), tenant_databases(app))
    cases = [
        ((backup, "--as-tenant", "Bad_Name"), "lowercase letters, digits and hyphens"),
        ((backup, "--as-tenant", "admin"), "'admin' is reserved"),
        ((backup, "--as-tenant", "x"), "must be 3 to 30 characters"),
        ((main, "--as-tenant", "acme-two"), "is a backup of the main database"),
        ((backup, "--as-tenant", "halfway"), "repair it first"),
        ((backup, "--as-tenant", "acme"), "ask to replace it"),
        ((backup, "--as-tenant", "acme-two", "--as-database", "x"), "leave out --as-database"),
    ]
    for args, reason in cases:
        result = restore(runner, *args)
        assert result.exit_code != 0 and reason in result.output, (args, result.output)
        assert (rows_of_master(app), tenant_databases(app)) == unchanged, args

    manifest = read_manifest(backup)
    future = backup.with_name("future_" + backup.name)
    future.write_bytes(backup.read_bytes())
    future.with_name(future.name + ".manifest.json").write_text(manifest.__class__(**{
        **manifest.__dict__, "schema_version": [*manifest.schema_version, "9999.tenant-next"]
    }).to_json())
    with pytest.raises(BackupError, match="migrations this release does not know"):
        restore_as_tenant(dbs, future, "acme-two")
    with dbs.backend.lock(subdomain_lock(dbs, "acme-two"), timeout=0), \
            pytest.raises(BackupError, match="under way"):
        restore_as_tenant(dbs, backup, "acme-two")
    assert (rows_of_master(app), tenant_databases(app)) == unchanged


def test_a_failure_before_the_switch_drops_the_new_database(app, client, tmp_path,
                                                           monkeypatch):
    dbs = app.extensions["finvera"]
    tenant, headers = signed_up(app, client, "acme")
    backup = backup_database(dbs.backend, tenant.db_name, tmp_path, tier=Tier.TENANT,
                             tenant="acme")
    unchanged = (rows_of_master(app), tenant_databases(app))

    def broken(*_args):
        raise RuntimeError("migrations broke")

    monkeypatch.setattr(tenant_restore, "apply_pending", broken)
    for subdomain in ("acme", "acme-two"):
        with pytest.raises(RuntimeError, match="migrations broke"):
            restore_as_tenant(dbs, backup, subdomain, replace=True)
        assert (rows_of_master(app), tenant_databases(app)) == unchanged

    def suspended_meanwhile(*_args):  # another admin changes the row during the restore
        with Session(dbs.master_engine) as session:
            session.get(TenantMaster, tenant.id).status = "suspended"
            session.commit()
        return []

    monkeypatch.setattr(tenant_restore, "apply_pending", suspended_meanwhile)
    with pytest.raises(BackupError, match="changed while restoring"):
        restore_as_tenant(dbs, backup, "acme", replace=True)
    assert tenant_databases(app) == unchanged[1]
    assert row_of(app, "acme").db_name == tenant.db_name


@pytest.mark.mysql
def test_with_separate_db_users_only_the_tenant_user_reaches_the_restored_database(
        mysql_server, tmp_path):
    from tests.conftest import mysql_environment

    dbs = Databases(load_settings(mysql_environment(mysql_server, USE_SEPARATE_DB_USERS="true")))
    dbs.initialize()
    try:
        tenant = provision_tenant(dbs, SignUp("Acme", "acme", "o@acme.in")).tenant
        backup = backup_database(dbs.backend, tenant.db_name, tmp_path, tier=Tier.TENANT,
                                 tenant="acme")
        user = dbs.cipher.decrypt(row_of(dbs, "acme").db_connection_encrypted)
        replaced = restore_as_tenant(dbs, backup, "acme", replace=True)
        clone = restore_as_tenant(dbs, backup, "acme-copy")
        clone_user = dbs.cipher.decrypt(row_of(dbs, "acme-copy").db_connection_encrypted)
        assert clone_user["user"] == tenant_db_user(dbs, clone.tenant_id) != user["user"]

        def reaches(info, database):
            try:
                mysql_server.connect(database, user=info["user"],
                                     password=info["password"]).close()
                return True
            except Exception:
                return False

        assert reaches(user, replaced.database) and not reaches(user, tenant.db_name)
        assert reaches(clone_user, clone.database)
        assert not reaches(clone_user, replaced.database)
        assert not reaches(user, clone.database)
    finally:
        dbs.dispose()

