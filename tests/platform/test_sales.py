"""The sales network over HTTP: distributors, salesmen, plans and referral codes; rules, roles,
deletion of what is referred to, and the audit log."""

from openapi_spec_validator import validate

from api.models.main import AuditLog, Distributor, ReferralCode, Salesman, SubscriptionPlan

GSTIN = "27AAPFU0939F1ZV"  # Maharashtra, PAN AAPFU0939F


def test_distributors_lifecycle_is_audited(api):
    created = api.create("/distributors", {
        "name": "Deccan Distribution", "company_name": "Deccan Pvt Ltd",
        "email": "Sales@Deccan.in", "phone": "+91 98200 12345", "gstin": GSTIN.lower(),
        "state_code": "27", "pan": "AAPFU0939F", "commission_rate": "2.5"}, "distributor")
    assert (created["email"], created["gstin"], created["commission_rate"]) == (
        "sales@deccan.in", GSTIN, "2.50")
    api.create("/distributors", {"name": "Konkan Agencies", "email": "k@konkan.in",
                                 "is_active": False}, "distributor")
    assert api.get(f"/distributors/{created['id']}").json["data"]["distributor"] == created

    listed = api.get("/distributors?search=DECCAN").json["data"]
    assert listed["total"] == 1 and listed["distributors"][0]["id"] == created["id"]
    assert api.get("/distributors?is_active=false").json["data"]["total"] == 1
    assert api.get("/distributors?limit=1&offset=1").json["data"]["total"] == 2

    changed = api.patch(f"/distributors/{created['id']}", {"commission_rate": 3,
                                                           "phone": None})
    assert changed.json["data"]["distributor"]["commission_rate"] == "3.00"
    assert changed.json["data"]["distributor"]["phone"] is None
    assert api.delete(f"/distributors/{created['id']}").status_code == 200
    assert api.get(f"/distributors/{created['id']}").status_code == 404

    actions = api.audit("distributor")
    assert [(action, entity) for action, entity, *_ in actions] == [
        ("create", created["id"]), ("create", created["id"] + 1), ("update", created["id"]),
        ("delete", created["id"])]
    _, _, before, after = actions[2]
    assert (before["commission_rate"], after["commission_rate"]) == ("2.50", "3.00")
    assert actions[3][2]["email"] == "sales@deccan.in" and actions[3][3] is None


def test_salesmen_belong_to_existing_distributors_and_emails_are_unique(api, network):
    distributor, salesman = network["distributor"], network["salesman"]
    assert salesman["distributor_id"] == distributor["id"]
    assert salesman["commission_rate"] == "10.00"
    by_distributor = api.get(f"/salesmen?distributor_id={distributor['id']}").json["data"]
    assert [s["id"] for s in by_distributor["salesmen"]] == [salesman["id"]]
    assert api.get("/salesmen?search=ravi").json["data"]["salesmen"][0]["name"] == "Ravi Kumar"

    unknown = api.post("/salesmen", {"name": "X", "email": "x@example.in",
                                     "distributor_id": 999})
    assert unknown.status_code == 400 and "distributor_id" in unknown.json["error"]["fields"]
    taken = api.post("/salesmen", {"name": "Asha Again", "email": "ASHA@example.in"})
    assert taken.status_code == 409 and taken.json["error"]["fields"] == {"email": "is taken"}
    renamed = api.patch(f"/salesmen/{network['solo']['id']}", {"email": "asha@example.in"})
    assert renamed.status_code == 409
    detached = api.patch(f"/salesmen/{salesman['id']}", {"distributor_id": None})
    assert detached.json["data"]["salesman"]["distributor_id"] is None
    assert api.patch(f"/salesmen/{salesman['id']}",
                     {"distributor_id": 999}).status_code == 400
    assert api.patch(f"/salesmen/{salesman['id']}", {"name": None}).status_code == 400


def test_what_is_referred_to_cannot_be_deleted(api, network):
    refused = api.delete(f"/distributors/{network['distributor']['id']}")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "in_use"
    assert "salesmen (1), referral codes (1)" in refused.json["error"]["message"]
    assert "deactivate" in refused.json["error"]["message"].lower()
    assert api.delete(f"/salesmen/{network['salesman']['id']}").status_code == 409

    api.signup(1, "SAL-10")
    plan = api.delete(f"/subscription-plans/{network['plan']['id']}")
    assert plan.status_code == 409 and "commissions (2)" in plan.json["error"]["message"]
    code = api.delete(f"/referral-codes/{network['salesman_code']['id']}")
    assert code.status_code == 409 and "rewards (1), commissions (2)" in code.json["error"][
        "message"]

    spare = api.create("/subscription-plans", {
        "code": "spare", "name": "Spare", "price": 0, "billing_period": "yearly",
        "storage_limit_mb": 10}, "subscription_plan")
    api.add_tenant("acme", plan="spare")
    in_use = api.delete(f"/subscription-plans/{spare['id']}")
    assert in_use.status_code == 409 and "tenants (1)" in in_use.json["error"]["message"]

    # Deactivating is always possible; unreferenced rows are deleted for good.
    assert api.patch(f"/salesmen/{network['salesman']['id']}",
                     {"is_active": False}).json["data"]["salesman"]["is_active"] is False
    assert api.delete(f"/referral-codes/{network['solo_code']['id']}").status_code == 200
    assert api.delete(f"/salesmen/{network['solo']['id']}").status_code == 200
    assert api.count(Salesman) == 1


def test_plans_take_rupees_and_keep_their_code(api):
    plan = api.create("/subscription-plans", {
        "code": "basic", "name": "Basic", "price": "1234.5", "billing_period": "quarterly",
        "max_users": 3, "storage_limit_mb": 512}, "subscription_plan")
    assert (plan["price"], plan["max_users"], plan["is_active"]) == ("1234.50", 3, True)
    with api.session() as session:
        assert session.get(SubscriptionPlan, plan["id"]).price_paise == 123450
    clash = api.post("/subscription-plans", {**{k: plan[k] for k in (
        "code", "name", "price", "billing_period", "storage_limit_mb")}})
    assert clash.status_code == 409 and "code" in clash.json["error"]["fields"]

    changed = api.patch(f"/subscription-plans/{plan['id']}", {"price": 999, "max_users": None})
    assert changed.json["data"]["subscription_plan"]["price"] == "999.00"
    assert changed.json["data"]["subscription_plan"]["max_users"] is None
    assert api.patch(f"/subscription-plans/{plan['id']}", {"code": "x"}).status_code == 400
    assert api.get("/subscription-plans?billing_period=quarterly").json["data"]["total"] == 1
    assert api.get("/subscription-plans?billing_period=monthly").json["data"]["total"] == 0
    assert api.delete(f"/subscription-plans/{plan['id']}").status_code == 200
    assert [action for action, *_ in api.audit("subscription_plan")] == [
        "create", "update", "delete"]


def test_referral_codes_have_one_owner_and_a_canonical_code(api, network):
    salesman_id = network["salesman"]["id"]
    code = api.create("/referral-codes", {
        "code": " spring-2026 ", "salesman_id": salesman_id, "discount": "12.5",
        "max_uses": 10, "expires_at": "2026-12-31T23:30:00+05:30"}, "referral_code")
    assert (code["code"], code["discount"], code["expires_at"]) == (
        "SPRING-2026", "12.50", "2026-12-31T18:00:00")
    assert api.post("/referral-codes", {"code": "Spring-2026",
                                        "distributor_id": network["distributor"]["id"]}
                    ).status_code == 409
    listed = api.get(f"/referral-codes?salesman_id={salesman_id}").json["data"]
    assert [c["code"] for c in listed["referral_codes"]] == ["SAL-10", "SPRING-2026"]

    changed = api.patch(f"/referral-codes/{code['id']}", {"expires_at": None,
                                                          "is_active": False})
    assert changed.json["data"]["referral_code"]["expires_at"] is None
    assert api.get("/referral-codes?is_active=false").json["data"]["total"] == 1
    for frozen in ({"code": "OTHER"}, {"salesman_id": network["solo"]["id"]}):
        assert api.patch(f"/referral-codes/{code['id']}", frozen).status_code == 400


def test_invalid_bodies_name_the_field_and_write_nothing(api, network):
    distributor = {"name": "D", "email": "d@example.in"}
    salesman = {"name": "S", "email": "s@example.in"}
    plan = {"code": "gold", "name": "Gold", "price": "10", "billing_period": "monthly",
            "storage_limit_mb": 10}
    code = {"code": "NEW-CODE", "salesman_id": network["solo"]["id"]}
    cases = [
        ("/distributors", {**distributor, "email": "not-an-email"}, "email"),
        ("/distributors", {**distributor, "name": " "}, "name"),
        ("/distributors", {**distributor, "gstin": "27AAPFU0939F1ZX"}, "gstin"),
        ("/distributors", {**distributor, "gstin": GSTIN, "state_code": "29"}, "state_code"),
        ("/distributors", {**distributor, "gstin": GSTIN, "pan": "AAAPA1234A"}, "pan"),
        ("/distributors", {**distributor, "state_code": "00"}, "state_code"),
        ("/distributors", {**distributor, "commission_rate": "100.01"}, "commission_rate"),
        ("/distributors", {**distributor, "commission_rate": "1.234"}, "commission_rate"),
        ("/distributors", {**distributor, "owner": "me"}, "owner"),
        ("/salesmen", {**salesman, "pan": "ABCDE1234"}, "pan"),
        ("/salesmen", {**salesman, "phone": "call me"}, "phone"),
        ("/salesmen", {**salesman, "distributor_id": 0}, "distributor_id"),
        ("/salesmen", {**salesman, "commission_rate": -1}, "commission_rate"),
        ("/subscription-plans", {**plan, "price": "-1"}, "price"),
        ("/subscription-plans", {**plan, "price": "10.005"}, "price"),
        ("/subscription-plans", {**plan, "price": "ten"}, "price"),
        ("/subscription-plans", {**plan, "billing_period": "weekly"}, "billing_period"),
        ("/subscription-plans", {**plan, "storage_limit_mb": 0}, "storage_limit_mb"),
        ("/subscription-plans", {**plan, "code": ""}, "code"),
        ("/referral-codes", {**code, "code": "NO SPACES"}, "code"),
        ("/referral-codes", {**code, "code": "-EDGE-"}, "code"),
        ("/referral-codes", {**code, "distributor_id": network["distributor"]["id"]},
         "distributor_id"),
        ("/referral-codes", {"code": "ORPHAN"}, "salesman_id"),
        ("/referral-codes", {**code, "salesman_id": 999}, "salesman_id"),
        ("/referral-codes", {**code, "discount": "150"}, "discount"),
        ("/referral-codes", {**code, "max_uses": 0}, "max_uses"),
        ("/referral-codes", {**code, "expires_at": "soon"}, "expires_at"),
    ]
    tables = (Distributor, Salesman, SubscriptionPlan, ReferralCode, AuditLog)
    counts = [api.count(table) for table in tables]
    for path, body, field in cases:
        response = api.post(path, body)
        assert response.status_code == 400, (path, body, response.json)
        assert field in response.json["error"]["fields"], (path, body, response.json)
    assert [api.count(table) for table in tables] == counts


def test_support_reads_but_never_writes_and_tenant_tokens_are_refused(api, network):
    writes = [("POST", "/distributors", {"name": "D", "email": "d@example.in"}),
              ("POST", "/salesmen", {"name": "S", "email": "s@example.in"}),
              ("POST", "/subscription-plans", {"code": "gold", "name": "Gold", "price": 1,
                                               "billing_period": "yearly",
                                               "storage_limit_mb": 1}),
              ("POST", "/referral-codes", {"code": "NEW", "distributor_id": 1})]
    for path, key in (("/distributors", "distributor"), ("/salesmen", "salesman"),
                      ("/subscription-plans", "plan"), ("/referral-codes", "solo_code")):
        writes += [("PATCH", f"{path}/{network[key]['id']}", {}),
                   ("DELETE", f"{path}/{network[key]['id']}", None)]
        assert api.get(f"{path}/{network[key]['id']}", role="support").status_code == 200
        assert api.get(path, role="tenant").status_code == 401
    audited = api.count(AuditLog)
    for method, path, body in writes:
        assert api.call(method, path, body, role="support").status_code == 403, (method, path)
        assert api.call(method, path, body, role="tenant").status_code == 401, (method, path)
    assert api.client.get("/api/admin/salesmen").status_code == 401
    assert api.count(AuditLog) == audited
    assert api.post("/salesmen", {"name": "By Super", "email": "super@example.in"},
                    role="super_admin").status_code == 201


def test_unknown_ids_are_404(api):
    for path in ("/distributors", "/salesmen", "/subscription-plans", "/referral-codes"):
        for method in ("GET", "PATCH", "DELETE"):
            response = api.call(method, f"{path}/4242", {} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path)
            assert response.json["error"]["code"] == "not_found"


def test_the_openapi_document_stays_valid(api):
    document = api.client.get("/api/openapi.json").json
    validate(document)
    assert "/api/admin/payouts" in document["paths"]
    assert "/api/admin/leads/{id}/activities" in document["paths"]
