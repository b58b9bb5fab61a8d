"""Tenants' lifecycle for admins: list, details, changes, suspend and resume, storage limits,
deletion after a final backup, and the monitoring report."""

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.tenancy.backups import read_manifest
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.tokens import TENANT, Claims


@pytest.fixture
def tenants(app):
    """Three tenants (acme, beta, gamma) and a tenant user's headers for each."""
    dbs, tokens = app.extensions["finvera"], app.extensions["finvera_tokens"]
    made = {}
    for subdomain, plan in (("acme", None), ("beta", None), ("gamma", None)):
        tenant = provision_tenant(dbs, SignUp(f"{subdomain.title()} Pvt Ltd", subdomain,
                                              f"o@{subdomain}.in", plan=plan)).tenant
        token = tokens.issue(Claims(scope=TENANT, user_id=1, tenant_id=tenant.id,
                                    tenant_db=tenant.db_name))
        made[subdomain] = (tenant, {"Authorization": f"Bearer {token}",
                                    "X-Tenant-ID": subdomain})
    return made


def test_list_filter_search_and_details(client, admin_headers, tenants):
    support = admin_headers["support"]
    listed = client.get("/api/admin/tenants?limit=2", headers=support).json["data"]
    assert listed["total"] == 3 and [t["subdomain"] for t in listed["tenants"]] == [
        "acme", "beta"]
    assert client.get("/api/admin/tenants?search=BETA", headers=support).json[
        "data"]["tenants"][0]["subdomain"] == "beta"
    assert client.get("/api/admin/tenants?status=suspended", headers=support).json[
        "data"]["total"] == 0
    tenant = tenants["acme"][0]
    details = client.get(f"/api/admin/tenants/{tenant.id}", headers=support).json["data"]
    assert details["tenant"]["db_name"] == tenant.db_name
    assert details["tenant"]["size_mb"] >= 0 and "db_connection_encrypted" not in details[
        "tenant"]
    assert client.get("/api/admin/tenants/9999", headers=support).status_code == 404


def test_suspend_takes_effect_on_the_next_request_and_resume_restores(client, admin_headers,
                                                                       tenants):
    tenant, headers = tenants["acme"]
    assert client.get("/api/ledgers", headers=headers).status_code == 200
    suspended = client.patch(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                             json={"status": "suspended"})
    assert suspended.json["data"]["tenant"]["status"] == "suspended"
    blocked = client.get("/api/ledgers", headers=headers)
    assert (blocked.status_code, blocked.json["error"]["code"]) == (403, "tenant_suspended")
    assert client.get("/api/ledgers", headers=tenants["beta"][1]).status_code == 200
    client.patch(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                 json={"status": "active"})
    assert client.get("/api/ledgers", headers=headers).status_code == 200
    assert client.patch(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["support"],
                        json={"status": "suspended"}).status_code == 403


@pytest.mark.parametrize("body, field", [
    ({"status": "deleted"}, "status"), ({"storage_limit_mb": 0}, "storage_limit_mb"),
    ({"email": "nope"}, "email"), ({"plan": "NOPLAN"}, "plan"), ({"status": None}, "status"),
    ({"subdomain": "other"}, "subdomain")])
def test_bad_changes_name_the_field(client, admin_headers, tenants, body, field):
    tenant = tenants["acme"][0]
    response = client.patch(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                            json=body)
    assert response.status_code == 400 and field in response.json["error"]["fields"]


def test_over_its_storage_limit_a_tenant_reads_but_cannot_write(app, client, admin_headers,
                                                                tenants):
    tenant, headers = tenants["acme"]
    body = {"name": "Cash", "account_group_id": 1}
    assert client.post("/api/ledgers", headers=headers, json=body).status_code == 201
    dbs = app.extensions["finvera"]
    with Session(dbs.master_engine) as session:  # a limit below what the books already take
        session.get(TenantMaster, tenant.id).storage_limit_mb = 1
        session.commit()
    dbs.directory.forget(tenant.id)
    measured = (float("inf"), 2 * 2**20)  # 2 MiB, for ever
    dbs.storage._sizes[(tenant.db_server, tenant.db_name)] = measured
    refused = client.post("/api/ledgers", headers=headers, json={**body, "name": "Bank"})
    assert (refused.status_code, refused.json["error"]["code"]) == (507,
                                                                   "storage_limit_exceeded")
    assert client.get("/api/ledgers", headers=headers).json["data"]["total"] == 1
    assert client.post("/api/ledgers", headers=tenants["beta"][1], json=body).status_code == 201


def test_delete_backs_up_first_then_drops(app, client, admin_headers, tenants, tmp_path):
    dbs = app.extensions["finvera"]
    dbs.settings.__dict__["backup_dir"] = tmp_path / "final"  # frozen dataclass: test only
    tenant, headers = tenants["acme"]
    wrong = client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                          json={"confirm": "beta"})
    assert wrong.status_code == 400 and "confirm" in wrong.json["error"]["fields"]
    deleted = client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                            json={"confirm": "acme"})
    assert deleted.status_code == 200, deleted.json
    backup = deleted.json["data"]["backup"]
    manifest = read_manifest(Path(backup["file"]))
    assert (manifest.database, manifest.tenant, manifest.sha256) == (
        tenant.db_name, "acme", backup["sha256"])
    assert tenant.db_name not in dbs.backend.list_databases(dbs.settings.tenant_db_prefix)
    assert client.get("/api/ledgers", headers=headers).status_code == 404
    assert client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                         json={"confirm": "acme"}).status_code == 409


def test_no_backup_no_drop(app, client, admin_headers, tenants, tmp_path):
    dbs = app.extensions["finvera"]
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the backup directory should be")
    dbs.settings.__dict__["backup_dir"] = blocked
    tenant, headers = tenants["acme"]
    refused = client.delete(f"/api/admin/tenants/{tenant.id}", headers=admin_headers["admin"],
                            json={"confirm": "acme"})
    assert (refused.status_code, refused.json["error"]["code"]) == (503, "backup_failed")
    assert tenant.db_name in dbs.backend.list_databases(dbs.settings.tenant_db_prefix)
    assert client.get("/api/ledgers", headers=headers).status_code == 200


def test_monitoring_matches_what_the_server_reports(app, client, admin_headers, tenants):
    dbs = app.extensions["finvera"]
    report = client.get("/api/admin/system/databases", headers=admin_headers["support"]).json[
        "data"]
    assert report["main_db"]["name"] == dbs.settings.db_name
    assert report["main_db"]["status"] == report["master_db"]["status"] == "healthy"
    assert report["master_db"]["tenants_count"] == report["tenant_dbs"]["total"] == 3
    expected = sum(dbs.backend.database_size(t.db_name) for t, _ in tenants.values())
    megabytes = round(expected / 2**20, 2)  # JSON numbers come back as Decimal here
    assert float(report["tenant_dbs"]["total_size_mb"]) == megabytes
    [server] = report["servers"]
    assert (server["name"], server["tenant_dbs"], float(server["size_mb"])) == (
        "default", 3, megabytes)
    with Session(dbs.master_engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TenantMaster)) == 3
