"""Users and roles over HTTP: admins manage them, the last admin stays, hashes never leave."""

import json

import sqlalchemy as sa

from api.models.tenant import AuditLog, User

NEW_USER = {"email": "Clerk@Acme.in", "password": "a long password", "role": "accountant",
            "full_name": "Ravi Kumar"}


def user_id(tenant, role):
    listed = tenant.get(f"/api/users?role={role}").json["data"]["users"]
    return listed[0]["id"]


def user_count(tenant):
    return tenant.get("/api/users").json["data"]["total"]


def login(tenant, email, password):
    return tenant.client.post("/api/auth/login", json={"email": email, "password": password},
                              headers={"X-Tenant-ID": tenant.subdomain})


def test_every_role_reads_users_and_no_hash_is_ever_shown(acme):
    listed = acme.get("/api/users?limit=2", role="viewer")
    assert listed.status_code == 200
    page = listed.json["data"]
    assert page["total"] == 3 and len(page["users"]) == 2
    assert [u["email"] for u in page["users"]] == ["accountant@acme.in", "admin@acme.in"]
    assert "password_hash" not in page["users"][0]
    viewers = acme.get("/api/users?role=viewer", role="accountant").json["data"]
    assert [u["role"] for u in viewers["users"]] == ["viewer"]
    one = acme.get(f"/api/users/{viewers['users'][0]['id']}", role="viewer")
    assert one.json["data"]["user"]["email"] == "viewer@acme.in"


def test_an_admin_adds_a_user_who_can_sign_in(acme):
    created = acme.post("/api/users", NEW_USER)
    assert created.status_code == 201, created.json
    user = created.json["data"]["user"]
    assert user["email"] == "clerk@acme.in" and user["role"] == "accountant"
    assert user["is_active"] is True and "password" not in json.dumps(created.json)
    with acme.session() as session:
        assert session.get(User, user["id"]).password_hash.startswith("scrypt:")
    assert login(acme, "clerk@acme.in", "a long password").status_code == 200
    again = acme.post("/api/users", {**NEW_USER, "email": "clerk@ACME.in"})
    assert again.status_code == 409 and "email" in again.json["error"]["fields"]
    assert user_count(acme) == 4


def test_user_rules_name_the_field_and_write_nothing(acme):
    for body, field in (({"email": "not an email"}, "email"),
                        ({"password": "too short"}, "password"),
                        ({"role": "owner"}, "role"),
                        ({"role": None}, "role"),
                        ({"full_name": " "}, "full_name"),
                        ({"password_hash": "x"}, "password_hash")):
        response = acme.post("/api/users", {**NEW_USER, **body})
        assert response.status_code == 400, body
        assert field in response.json["error"]["fields"], body
    assert user_count(acme) == 3


def test_an_admin_changes_role_name_password_and_activity(acme):
    viewer = user_id(acme, "viewer")
    changed = acme.patch(f"/api/users/{viewer}", {"role": "accountant", "full_name": "Asha",
                                                  "password": "another password"})
    assert changed.status_code == 200, changed.json
    user = changed.json["data"]["user"]
    assert (user["role"], user["full_name"]) == ("accountant", "Asha")
    assert login(acme, "viewer@acme.in", "another password").status_code == 200
    cleared = acme.patch(f"/api/users/{viewer}", {"full_name": None}).json["data"]["user"]
    assert (cleared["full_name"], cleared["role"]) == (None, "accountant")
    for body, field in (({"role": None}, "role"), ({"is_active": None}, "is_active"),
                        ({"password": "short"}, "password"), ({"email": "x@y.in"}, "email")):
        refused = acme.patch(f"/api/users/{viewer}", body)
        assert refused.status_code == 400 and field in refused.json["error"]["fields"]


def test_the_last_active_admin_cannot_be_demoted_deactivated_or_removed(acme):
    admin = user_id(acme, "admin")
    for refused in (acme.patch(f"/api/users/{admin}", {"role": "viewer"}),
                    acme.patch(f"/api/users/{admin}", {"is_active": False}),
                    acme.delete(f"/api/users/{admin}")):
        assert refused.status_code == 409 and refused.json["error"]["code"] == "last_admin"
    assert acme.patch(f"/api/users/{admin}", {"full_name": "Boss"}).status_code == 200

    accountant = user_id(acme, "accountant")
    acme.patch(f"/api/users/{accountant}", {"role": "admin"})
    demoted = acme.patch(f"/api/users/{admin}", {"role": "viewer"})
    assert demoted.json["data"]["user"]["role"] == "viewer"
    # The accountant, now the only admin, is the last one in turn.
    last = acme.delete(f"/api/users/{accountant}", role="accountant")
    assert last.status_code == 409 and last.json["error"]["code"] == "last_admin"


def test_delete_deactivates_and_the_users_tokens_stop_working(acme):
    viewer = user_id(acme, "viewer")
    assert acme.get("/api/users", role="viewer").status_code == 200
    deleted = acme.delete(f"/api/users/{viewer}")
    assert deleted.status_code == 200
    assert deleted.json["data"]["user"]["is_active"] is False
    assert acme.get("/api/users", role="viewer").status_code == 401
    assert acme.get(f"/api/users/{viewer}").json["data"]["user"]["is_active"] is False
    assert acme.get("/api/users?is_active=false").json["data"]["total"] == 1
    reactivated = acme.patch(f"/api/users/{viewer}", {"is_active": True})
    assert reactivated.json["data"]["user"]["is_active"] is True
    assert acme.get("/api/users", role="viewer").status_code == 200


def test_only_admins_manage_users(acme):
    viewer = user_id(acme, "viewer")
    for role in ("accountant", "viewer"):
        assert acme.post("/api/users", NEW_USER, role=role).status_code == 403
        assert acme.patch(f"/api/users/{viewer}", {"role": "admin"}, role=role).status_code \
            == 403
        assert acme.delete(f"/api/users/{viewer}", role=role).status_code == 403
    assert user_count(acme) == 3
    assert acme.get(f"/api/users/{viewer}").json["data"]["user"]["role"] == "viewer"


def test_unknown_ids_are_404(acme):
    assert acme.get("/api/users/9999").status_code == 404
    assert acme.patch("/api/users/9999", {"full_name": "x"}).status_code == 404
    assert acme.delete("/api/users/9999").status_code == 404


def test_ids_of_another_tenant_are_404(acme, zenith):
    for name in ("one", "two"):
        theirs = zenith.post("/api/users", {**NEW_USER, "email": f"{name}@zenith.in"})
    their_id = theirs.json["data"]["user"]["id"]  # exists in zenith, not in acme
    assert acme.get(f"/api/users/{their_id}").status_code == 404
    assert acme.patch(f"/api/users/{their_id}", {"full_name": "x"}).status_code == 404
    assert acme.delete(f"/api/users/{their_id}").status_code == 404
    assert zenith.get(f"/api/users/{their_id}").json["data"]["user"]["is_active"] is True
    assert user_count(acme) == 3


def test_user_changes_are_audited_without_the_hash(acme):
    created = acme.post("/api/users", NEW_USER).json["data"]["user"]
    acme.patch(f"/api/users/{created['id']}", {"role": "viewer", "password": "a new password"})
    acme.delete(f"/api/users/{created['id']}")
    with acme.session() as session:
        rows = session.scalars(sa.select(AuditLog).where(AuditLog.entity_type == "user")
                               .order_by(AuditLog.id)).all()
    assert [row.action for row in rows] == ["create", "update", "deactivate"]
    assert {row.entity_id for row in rows} == {str(created["id"])}
    assert json.loads(rows[1].before_data)["role"] == "accountant"
    assert json.loads(rows[1].after_data)["role"] == "viewer"
    assert json.loads(rows[1].after_data)["password_changed"] is True
    assert json.loads(rows[2].after_data)["is_active"] is False
    assert not any("scrypt" in (row.after_data or "") for row in rows)
