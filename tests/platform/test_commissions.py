"""The referral hook and the money: commissions at each payee's own rate, their approval and
cancellation, and payouts that pay each commission once, also when requests race."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.models.main import AuditLog, Commission, Payout, ReferralReward
from api.platform.commissions import UnknownPlan, UnknownReferralCode, check_referral_code

MAY = {"period_start": "2026-05-01", "period_end": "2026-05-31"}


def commissions(api, query=""):
    return api.get(f"/commissions{query}").json["data"]["commissions"]


def approve_all(api, query=""):
    for commission in commissions(api, query):
        assert api.post(f"/commissions/{commission['id']}/approve").status_code == 200


def test_a_salesman_code_pays_the_salesman_and_the_distributor_at_their_own_rates(
        api, network):
    made = api.signup(7, "sal-10", on=date(2026, 5, 10))
    assert [(c.salesman_id, c.distributor_id, c.rate_bp, c.amount_paise) for c in made] == [
        (network["salesman"]["id"], None, 1000, 10000),
        (None, network["distributor"]["id"], 500, 5000)]
    shown = commissions(api, "?tenant_id=7")
    assert {(c["rate"], c["amount"], c["base_amount"], c["status"], c["earned_on"])
            for c in shown} == {("10.00", "100.00", "1000.00", "pending", "2026-05-10"),
                                ("5.00", "50.00", "1000.00", "pending", "2026-05-10")}
    assert {c["referral_code_id"] for c in shown} == {network["salesman_code"]["id"]}
    assert {c["subscription_plan_id"] for c in shown} == {network["plan"]["id"]}
    with api.session() as session:
        reward = session.scalars(sa.select(ReferralReward)).one()
    assert (reward.tenant_id, reward.reward_type, reward.amount_paise, reward.status) == (
        7, "signup", 10000, "pending")

    assert [(c.distributor_id, c.amount_paise) for c in api.signup(8, "DIST")] == [
        (network["distributor"]["id"], 5000)]
    assert [(c.salesman_id, c.amount_paise) for c in api.signup(9, "SOLO")] == [
        (network["solo"]["id"], 8000)]
    assert api.count(Commission) == 4


def test_amounts_round_half_up_and_a_sign_up_without_a_plan_earns_nothing(api, network):
    api.create("/subscription-plans", {"code": "tiny", "name": "Tiny", "price": "1.50",
                                       "billing_period": "monthly", "storage_limit_mb": 1},
               "subscription_plan")
    api.patch(f"/salesmen/{network['solo']['id']}", {"commission_rate": "1"})
    api.patch(f"/referral-codes/{network['solo_code']['id']}", {"discount": "3"})
    assert [c.amount_paise for c in api.signup(1, "SOLO", plan="tiny")] == [2]  # 1.5 -> 2
    assert [c.amount_paise for c in api.signup(2, "SAL-10", plan=None)] == [0, 0]
    with api.session() as session:
        rewards = session.scalars(sa.select(ReferralReward.amount_paise).order_by(
            ReferralReward.tenant_id)).all()
    assert rewards == [5, 0]  # 3% of 150 paise is 4.5 -> 5


def test_unusable_codes_and_plans_are_refused_and_nothing_is_kept(api, network):
    code_id = network["solo_code"]["id"]
    with pytest.raises(UnknownReferralCode, match="no active"):
        api.signup(1, "NOPE")
    with pytest.raises(UnknownPlan):
        api.signup(1, "SOLO", plan="platinum")
    api.patch(f"/referral-codes/{code_id}", {"is_active": False})
    with pytest.raises(UnknownReferralCode, match="no active"):
        api.signup(1, "SOLO")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    api.patch(f"/referral-codes/{code_id}", {"is_active": True, "expires_at": past})
    with pytest.raises(UnknownReferralCode, match="expired"):
        api.signup(1, "SOLO")
    api.patch(f"/referral-codes/{code_id}", {"expires_at": None, "max_uses": 1})
    api.signup(1, "SOLO")
    with pytest.raises(UnknownReferralCode, match="used up"):
        api.signup(2, "SOLO")
    assert api.count(ReferralReward) == api.count(Commission) == 1
    with api.session() as session:  # the sign-up's early check applies the same rules
        assert check_referral_code(session, " dist ").id == network["distributor_code"]["id"]
        with pytest.raises(UnknownReferralCode, match="used up"):
            check_referral_code(session, "SOLO")


def test_commissions_are_approved_or_cancelled_once_and_filtered(api, network):
    api.signup(1, "SAL-10", on=date(2026, 4, 30))
    api.signup(2, "DIST", on=date(2026, 5, 15))
    first, second, third = sorted(commissions(api), key=lambda c: c["id"])

    approved = api.post(f"/commissions/{first['id']}/approve")
    assert approved.json["data"]["commission"]["status"] == "approved"
    again = api.post(f"/commissions/{first['id']}/approve")
    assert again.status_code == 409 and again.json["error"]["code"] == "invalid_status"
    assert api.post(f"/commissions/{first['id']}/cancel").json["data"]["commission"][
        "status"] == "cancelled"
    assert api.post(f"/commissions/{first['id']}/cancel").status_code == 409
    assert api.post(f"/commissions/{first['id']}/approve").status_code == 409
    assert api.post(f"/commissions/{second['id']}/cancel").status_code == 200

    salesman, distributor = network["salesman"]["id"], network["distributor"]["id"]
    assert [c["id"] for c in commissions(api, f"?salesman_id={salesman}")] == [first["id"]]
    assert [c["id"] for c in commissions(api, f"?distributor_id={distributor}")] == [
        third["id"], second["id"]]
    assert [c["id"] for c in commissions(api, "?status=pending")] == [third["id"]]
    assert [c["id"] for c in commissions(api, "?from=2026-05-01")] == [third["id"]]
    assert len(commissions(api, "?to=2026-04-30")) == 2
    assert api.get("/commissions?status=lost").status_code == 400
    assert api.get(f"/commissions/{third['id']}").json["data"]["commission"] == third
    assert api.get("/commissions/4242").status_code == 404
    assert api.post("/commissions/4242/approve").status_code == 404

    audited = api.audit("commission")
    assert [(action, entity) for action, entity, *_ in audited] == [
        ("approve", first["id"]), ("cancel", first["id"]), ("cancel", second["id"])]
    assert (audited[0][2]["status"], audited[0][3]["status"]) == ("pending", "approved")


def test_a_payout_pays_the_period_s_approved_commissions_once(api, network):
    salesman = network["salesman"]["id"]
    api.signup(1, "SAL-10", on=date(2026, 5, 1))
    api.signup(2, "SAL-10", on=date(2026, 5, 31))
    api.signup(3, "SAL-10", on=date(2026, 6, 1))  # the next period
    api.signup(4, "SAL-10", on=date(2026, 5, 20))  # cancelled below
    approve_all(api, f"?salesman_id={salesman}")
    api.post(f"/commissions/{commissions(api, f'?salesman_id={salesman}&tenant_id=4')[0]['id']}"
             "/cancel")
    api.signup(5, "SAL-10", on=date(2026, 5, 21))  # still pending

    paid = api.post("/payouts", {"salesman_id": salesman, **MAY, "reference": "NEFT-1"})
    assert paid.status_code == 201, paid.json
    payout = paid.json["data"]["payout"]
    assert (payout["amount"], payout["reference"], payout["salesman_id"]) == (
        "200.00", "NEFT-1", salesman)
    assert {c["tenant_id"] for c in payout["commissions"]} == {1, 2}
    assert {c["status"] for c in payout["commissions"]} == {"paid"}

    again = api.post("/payouts", {"salesman_id": salesman, **MAY})
    assert again.status_code == 409 and again.json["error"]["code"] == "nothing_to_pay"
    pending = api.post("/payouts", {"distributor_id": network["distributor"]["id"], **MAY})
    assert pending.json["error"]["code"] == "nothing_to_pay"  # the distributor's: not approved

    shown = api.get(f"/payouts/{payout['id']}").json["data"]["payout"]
    assert shown == payout
    assert [c["status"] for c in commissions(api, f"?salesman_id={salesman}")] == [
        "approved", "paid", "pending", "cancelled", "paid"]  # tenants 3, 2, 5, 4, 1
    assert api.post(f"/commissions/{payout['commissions'][0]['id']}/cancel").status_code == 409
    listed = api.get(f"/payouts?salesman_id={salesman}").json["data"]
    assert listed["total"] == 1 and "commissions" not in listed["payouts"][0]
    assert api.get("/payouts/4242").status_code == 404
    audited = api.audit("payout")
    assert [(action, entity) for action, entity, *_ in audited] == [("create", payout["id"])]
    assert {c["id"] for c in audited[0][3]["commissions"]} == {
        c["id"] for c in payout["commissions"]}


def test_invalid_payouts_name_the_field_and_write_nothing(api, network):
    salesman = network["salesman"]["id"]
    cases = [({**MAY}, "salesman_id"),
             ({**MAY, "salesman_id": salesman, "distributor_id": 1}, "distributor_id"),
             ({**MAY, "salesman_id": 999}, "salesman_id"),
             ({**MAY, "salesman_id": salesman, "period_end": "2026-04-30"}, "period_end"),
             ({"salesman_id": salesman, "period_start": "2026-05-01"}, "period_end"),
             ({**MAY, "salesman_id": salesman, "reference": "x" * 65}, "reference")]
    audited = api.count(AuditLog)
    for body, field in cases:
        response = api.post("/payouts", body)
        assert response.status_code == 400 and field in response.json["error"]["fields"], body
    assert (api.count(Payout), api.count(AuditLog)) == (0, audited)


def test_concurrent_payouts_pay_each_commission_once(api, network):
    salesman = network["salesman"]["id"]
    for tenant_id in range(1, 5):
        api.signup(tenant_id, "SAL-10", on=date(2026, 5, tenant_id))
    approve_all(api, f"?salesman_id={salesman}")
    start, answers = threading.Barrier(6), []

    def pay():
        client = api.app.test_client()
        start.wait()
        answers.append(client.post("/api/admin/payouts", json={"salesman_id": salesman, **MAY},
                                   headers=api.headers["admin"]))

    threads = [threading.Thread(target=pay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [201] + [409] * 5
    assert {answer.json["error"]["code"] for answer in answers
            if answer.status_code == 409} == {"nothing_to_pay"}
    payout = next(a.json["data"]["payout"] for a in answers if a.status_code == 201)
    assert payout["amount"] == "400.00"
    with api.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Payout)) == 1
        paid = session.execute(sa.select(Commission.status, Commission.payout_id).where(
            Commission.salesman_id == salesman)).all()
    assert set(paid) == {("paid", payout["id"])} and len(paid) == 4


def test_concurrent_sign_ups_cannot_use_a_code_more_than_allowed(api, network):
    api.patch(f"/referral-codes/{network['solo_code']['id']}", {"max_uses": 2})
    start, outcomes = threading.Barrier(6), []

    def sign_up(tenant_id):
        start.wait()
        try:
            api.signup(tenant_id, "SOLO")
            outcomes.append("used")
        except UnknownReferralCode:
            outcomes.append("refused")

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 4 + ["used"] * 2
    assert api.count(ReferralReward) == api.count(Commission) == 2


def test_support_cannot_move_money_and_tenant_tokens_are_refused(api, network):
    api.signup(1, "DIST")
    commission_id = commissions(api)[0]["id"]
    writes = [("POST", f"/commissions/{commission_id}/approve", None),
              ("POST", f"/commissions/{commission_id}/cancel", None),
              ("POST", "/payouts", {"distributor_id": network["distributor"]["id"], **MAY})]
    for method, path, body in writes:
        assert api.call(method, path, body, role="support").status_code == 403, path
        assert api.call(method, path, body, role="tenant").status_code == 401, path
    for path in ("/commissions", f"/commissions/{commission_id}", "/payouts"):
        assert api.get(path, role="support").status_code == 200
        assert api.get(path, role="tenant").status_code == 401
    assert commissions(api)[0]["status"] == "pending"
    assert api.count(Payout) == 0


def test_a_sign_up_through_the_api_with_a_code_pays_the_chain(api, network):
    """POST /api/admin/tenants with a referral code (any case) and a plan records the reward
    and the commissions: the salesman's and his distributor's, each at its own rate."""
    created = api.client.post("/api/admin/tenants", headers=api.headers["admin"], json={
        "company_name": "Referred Co", "subdomain": "referred", "email": "o@referred.in",
        "plan": "pro", "referral_code": "sal-10"})
    assert created.status_code == 201, created.json
    tenant_id = created.json["data"]["tenant"]["id"]
    listed = api.get(f"/commissions?tenant_id={tenant_id}").json["data"]
    amounts = sorted((c["rate"], c["amount"]) for c in listed["commissions"])
    assert amounts == [("10.00", "100.00"), ("5.00", "50.00")]
    unknown = api.client.post("/api/admin/tenants", headers=api.headers["admin"], json={
        "company_name": "X", "subdomain": "unknown-code", "email": "o@x.in",
        "referral_code": "NOPE"})
    assert unknown.status_code == 400 and "referral_code" in unknown.json["error"]["fields"]
