"""Leads over HTTP: status transitions with their automatic activity, the activity log, and
targets with what was achieved, counted from commissions."""

from datetime import date

import sqlalchemy as sa

from api.models.main import AuditLog, Commission, Lead, LeadActivity, Target


def lead(api, **fields):
    return api.create("/leads", {"name": "Meera Shah", "company_name": "Shah Textiles",
                                 **fields}, "lead")


def move(api, lead_id, status, **fields):
    return api.patch(f"/leads/{lead_id}", {"status": status, **fields})


def test_leads_follow_the_pipeline_and_log_each_status_change(api, network):
    made = lead(api, email="Meera@Shah.in", source="expo",
                salesman_id=network["salesman"]["id"])
    assert (made["status"], made["email"]) == ("new", "meera@shah.in")

    skipped = move(api, made["id"], "qualified")
    assert skipped.status_code == 409 and skipped.json["error"]["code"] == "invalid_transition"
    assert "contacted or lost" in skipped.json["error"]["fields"]["status"]
    for status in ("contacted", "qualified"):
        assert move(api, made["id"], status).json["data"]["lead"]["status"] == status
    early = api.patch(f"/leads/{made['id']}", {"converted_tenant_id": 1})
    assert early.status_code == 400 and "converted_tenant_id" in early.json["error"]["fields"]
    unknown = move(api, made["id"], "converted", converted_tenant_id=4242)
    assert unknown.status_code == 400 and "converted_tenant_id" in unknown.json["error"][
        "fields"]
    tenant_id = api.add_tenant("shah")
    converted = move(api, made["id"], "converted", converted_tenant_id=tenant_id)
    assert converted.json["data"]["lead"]["converted_tenant_id"] == tenant_id
    final = move(api, made["id"], "lost")
    assert final.status_code == 409 and "is final" in final.json["error"]["message"]
    assert move(api, made["id"], "converted").status_code == 200  # unchanged: no transition

    log = api.get(f"/leads/{made['id']}/activities").json["data"]
    assert log["total"] == 3
    assert [a["notes"] for a in log["lead_activities"]] == [
        "qualified -> converted", "contacted -> qualified", "new -> contacted"]
    assert {a["activity_type"] for a in log["lead_activities"]} == {"status_change"}
    me = api.get("/auth/me", role="admin").json["data"]["admin"]["id"]
    assert {a["admin_user_id"] for a in log["lead_activities"]} == {me}

    audited = api.audit("lead")
    assert [action for action, *_ in audited] == ["create"] + ["update"] * 4
    assert (audited[3][2]["status"], audited[3][3]["status"]) == ("qualified", "converted")


def test_lost_leads_can_be_reopened_and_leads_are_filtered(api, network):
    first = lead(api, distributor_id=network["distributor"]["id"])
    lead(api, name="Vikram Iyer", company_name="Iyer Foods", email="v@iyer.in")
    assert move(api, first["id"], "lost").status_code == 200
    assert move(api, first["id"], "new").json["data"]["lead"]["status"] == "new"
    move(api, first["id"], "contacted")
    assert api.get("/leads?status=contacted").json["data"]["total"] == 1
    assert api.get(f"/leads?distributor_id={network['distributor']['id']}").json["data"][
        "leads"][0]["id"] == first["id"]
    assert [lead_["name"] for lead_ in api.get("/leads?search=iyer").json["data"]["leads"]] \
        == ["Vikram Iyer"]
    assert api.get("/leads?limit=1").json["data"]["total"] == 2


def test_activities_are_logged_and_leads_go_with_theirs(api):
    made = lead(api)
    call = api.post(f"/leads/{made['id']}/activities", {
        "activity_type": "call", "notes": "Wants GST filing", "occurred_at":
        "2026-05-04T10:00:00+05:30"})
    assert call.status_code == 201
    assert call.json["data"]["lead_activity"]["occurred_at"] == "2026-05-04T04:30:00"
    api.post(f"/leads/{made['id']}/activities", {"activity_type": "note"})
    assert api.post(f"/leads/{made['id']}/activities",
                    {"activity_type": "status_change"}).status_code == 400
    assert api.post("/leads/4242/activities", {"activity_type": "call"}).status_code == 404
    assert api.get("/leads/4242/activities").status_code == 404
    calls = api.get(f"/leads/{made['id']}/activities?activity_type=call").json["data"]
    assert calls["total"] == 1 and calls["lead_activities"][0]["notes"] == "Wants GST filing"
    assert [action for action, *_ in api.audit("lead_activity")] == ["create", "create"]

    assert api.delete(f"/leads/{made['id']}").status_code == 200
    assert api.count(Lead) == api.count(LeadActivity) == 0
    assert api.get(f"/leads/{made['id']}").status_code == 404


def test_invalid_leads_and_targets_name_the_field_and_write_nothing(api, network):
    salesman_id = network["salesman"]["id"]
    target = {"salesman_id": salesman_id, "period_start": "2026-04-01",
              "period_end": "2026-06-30"}
    cases = [
        ("/leads", {"name": ""}, "name"),
        ("/leads", {"name": "L", "email": "nope"}, "email"),
        ("/leads", {"name": "L", "salesman_id": 999}, "salesman_id"),
        ("/leads", {"name": "L", "distributor_id": 999}, "distributor_id"),
        ("/leads", {"name": "L", "status": "qualified"}, "status"),
        ("/leads", {"name": "L", "source": "x" * 65}, "source"),
        ("/targets", {**target, "period_end": "2026-03-31"}, "period_end"),
        ("/targets", {**target, "distributor_id": network["distributor"]["id"]}, "salesman_id"),
        ("/targets", {**target, "salesman_id": None}, "distributor_id"),
        ("/targets", {**target, "salesman_id": 999}, "salesman_id"),
        ("/targets", {**target, "target_tenants": -1}, "target_tenants"),
        ("/targets", {**target, "target_revenue": "1.001"}, "target_revenue"),
        ("/targets", {**target, "period_start": "April"}, "period_start"),
    ]
    tables = (Lead, LeadActivity, Target, AuditLog)
    counts = [api.count(table) for table in tables]
    for path, body, field in cases:
        response = api.post(path, body)
        assert response.status_code == 400, (path, body, response.json)
        assert field in response.json["error"]["fields"], (path, body, response.json)
    made = lead(api)
    assert api.patch(f"/leads/{made['id']}", {"status": None}).status_code == 400
    assert api.patch(f"/leads/{made['id']}", {"salesman_id": 999}).status_code == 400
    assert [api.count(table) for table in tables] == [counts[0] + 1, counts[1], counts[2],
                                                       counts[3] + 1]


def test_targets_report_tenants_and_revenue_achieved(api, network):
    quarter = {"period_start": "2026-04-01", "period_end": "2026-06-30"}
    mine = api.create("/targets", {"salesman_id": network["salesman"]["id"], **quarter,
                                   "target_tenants": 5, "target_revenue": "10000"}, "target")
    theirs = api.create("/targets", {"distributor_id": network["distributor"]["id"],
                                     **quarter, "target_tenants": 10}, "target")
    assert mine["achieved"] == {"tenants": 0, "revenue": "0.00"}
    assert mine["target_revenue"] == "10000.00"

    api.signup(1, "SAL-10", on=date(2026, 4, 1))
    api.signup(2, "SAL-10", on=date(2026, 6, 30))
    api.signup(3, "SAL-10", on=date(2026, 7, 1))  # after the period
    api.signup(4, "DIST", on=date(2026, 5, 5))  # the distributor's own code
    api.signup(5, "SOLO", on=date(2026, 5, 5))  # a salesman of no distributor
    api.signup(6, "SAL-10", plan=None, on=date(2026, 5, 6))  # no plan: counted, no revenue
    cancelled = api.signup(7, "SAL-10", on=date(2026, 5, 7))
    with api.session() as session:
        session.execute(sa.update(Commission).where(
            Commission.id.in_([c.id for c in cancelled])).values(status="cancelled"))
        session.commit()

    achieved = api.get(f"/targets/{mine['id']}").json["data"]["target"]["achieved"]
    assert achieved == {"tenants": 3, "revenue": "2000.00"}
    achieved = api.get(f"/targets/{theirs['id']}").json["data"]["target"]["achieved"]
    assert achieved == {"tenants": 4, "revenue": "3000.00"}

    listed = api.get(f"/targets?on=2026-05-01&salesman_id={network['salesman']['id']}")
    assert [t["achieved"]["tenants"] for t in listed.json["data"]["targets"]] == [3]
    assert api.get("/targets?on=2026-07-01").json["data"]["total"] == 0

    moved = api.patch(f"/targets/{mine['id']}", {"period_end": "2026-07-31"})
    assert moved.json["data"]["target"]["achieved"]["tenants"] == 4
    assert api.patch(f"/targets/{mine['id']}", {"period_start": "2026-08-01"}).status_code \
        == 400
    assert api.patch(f"/targets/{mine['id']}",
                     {"salesman_id": network["solo"]["id"]}).status_code == 400
    assert api.delete(f"/targets/{mine['id']}").status_code == 200
    assert [action for action, *_ in api.audit("target")] == [
        "create", "create", "update", "delete"]


def test_roles_and_unknown_ids(api, network):
    made = lead(api)
    target = api.create("/targets", {"distributor_id": network["distributor"]["id"],
                                     "period_start": "2026-04-01",
                                     "period_end": "2026-04-30"}, "target")
    writes = [("POST", "/leads", {"name": "L"}), ("PATCH", f"/leads/{made['id']}", {}),
              ("DELETE", f"/leads/{made['id']}", None),
              ("POST", f"/leads/{made['id']}/activities", {"activity_type": "call"}),
              ("POST", "/targets", {"distributor_id": network["distributor"]["id"],
                                    "period_start": "2026-04-01",
                                    "period_end": "2026-04-30"}),
              ("PATCH", f"/targets/{target['id']}", {}),
              ("DELETE", f"/targets/{target['id']}", None)]
    audited = api.count(AuditLog)
    for method, path, body in writes:
        assert api.call(method, path, body, role="support").status_code == 403, (method, path)
        assert api.call(method, path, body, role="tenant").status_code == 401, (method, path)
    assert api.count(AuditLog) == audited
    for path in ("/leads", "/targets", f"/leads/{made['id']}/activities"):
        assert api.get(path, role="support").status_code == 200
        assert api.get(path, role="tenant").status_code == 401
    for path in ("/leads/4242", "/targets/4242"):
        for method in ("GET", "PATCH", "DELETE"):
            response = api.call(method, path, {} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path)
