"""Platform admin users: super admins manage them, the last super admin stays."""

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.main import AuditLog


def test_super_admins_manage_admins_and_others_only_read(client, admin_headers):
    created = client.post("/api/admin/users", headers=admin_headers["super_admin"],
                          json={"email": "New@Finvera.in", "password": "long password",
                                "role": "support"})
    assert created.status_code == 201, created.json
    new = created.json["data"]["admin_user"]
    assert new["email"] == "new@finvera.in" and "password_hash" not in new
    for role in ("admin", "support"):
        assert client.post("/api/admin/users", headers=admin_headers[role], json={
            "email": "x@finvera.in", "password": "long password", "role": "admin"}
        ).status_code == 403
        assert client.get("/api/admin/users", headers=admin_headers[role]).json[
            "data"]["total"] == 4
    changed = client.patch(f"/api/admin/users/{new['id']}", headers=admin_headers["super_admin"],
                           json={"role": "admin", "password": "another password"})
    assert changed.json["data"]["admin_user"]["role"] == "admin"
    gone = client.delete(f"/api/admin/users/{new['id']}", headers=admin_headers["super_admin"])
    assert gone.json["data"]["admin_user"]["is_active"] is False
    assert client.post("/api/admin/users", headers=admin_headers["super_admin"], json={
        "email": "new@finvera.in", "password": "long password", "role": "admin"}
    ).status_code == 409


def test_the_last_super_admin_stays(app, client, admin_headers):
    me = client.get("/api/admin/auth/me", headers=admin_headers["super_admin"]).json
    my_id = me["data"]["admin"]["id"]
    for change in ({"role": "admin"}, {"is_active": False}):
        refused = client.patch(f"/api/admin/users/{my_id}", json=change,
                               headers=admin_headers["super_admin"])
        assert refused.status_code == 409 and refused.json["error"]["code"] == "last_super_admin"
    assert client.delete(f"/api/admin/users/{my_id}",
                         headers=admin_headers["super_admin"]).status_code == 409
    with Session(app.extensions["finvera"].main_engine) as session:
        actions = session.scalars(sa.select(AuditLog.action).where(
            AuditLog.entity_type == "admin_user")).all()
    assert actions == []  # refused changes leave no trace but the 409


@pytest.mark.parametrize("body, field", [
    ({"email": "nope"}, "email"), ({"password": "short"}, "password"),
    ({"role": "owner"}, "role"), ({"extra": 1}, "extra")])
def test_bad_admin_bodies_name_the_field(client, admin_headers, body, field):
    good = {"email": "a@finvera.in", "password": "long password", "role": "admin"}
    response = client.post("/api/admin/users", headers=admin_headers["super_admin"],
                           json={**good, **body})
    assert response.status_code == 400 and field in response.json["error"]["fields"]


def test_admin_writes_are_audited(app, client, admin_headers):
    created = client.post("/api/admin/users", headers=admin_headers["super_admin"], json={
        "email": "a@finvera.in", "password": "long password", "role": "admin"}).json
    client.patch(f"/api/admin/users/{created['data']['admin_user']['id']}",
                 headers=admin_headers["super_admin"], json={"password": "changed password"})
    with Session(app.extensions["finvera"].main_engine) as session:
        rows = session.scalars(sa.select(AuditLog).order_by(AuditLog.id)).all()
    assert [row.action for row in rows] == ["create", "update"]
    after = json.loads(rows[1].after_data)
    assert after["password_changed"] is True and "changed password" not in rows[1].after_data
