"""TDS over HTTP: deductions against vouchers, amounts computed half-up, filters and isolation."""

import json
from datetime import date

import sqlalchemy as sa

from api.models.tenant import AuditLog
from tests.accounting.test_chart import group_id
from tests.accounting.test_gst import add_voucher


def deduction(voucher_id, **changes):
    return {"voucher_id": voucher_id, "section": "194C", "rate": "1", "base_amount": "50000",
            "deductee_pan": "AAPFU0939F", "deducted_on": "2026-05-10", **changes}


def add_ledger(tenant, name="Builders", pan=None):
    body = {"name": name, "account_group_id": group_id(tenant, "sundry_creditors"), "pan": pan}
    return tenant.post("/api/ledgers", body).json["data"]["ledger"]["id"]


def payment(tenant):
    return add_voucher(tenant, "payment", date(2026, 5, 10), items=())


def test_tds_is_computed_half_up_to_the_paisa_unless_given(acme):
    voucher = payment(acme)
    ledger = add_ledger(acme, pan="AAPFU0939F")
    created = acme.post("/api/tds-details", deduction(
        voucher, section="194j", rate="2", base_amount="10.25", deductee_ledger_id=ledger),
        role="accountant")
    assert created.status_code == 201, created.json
    row = created.json["data"]["tds_detail"]
    assert row == {"id": row["id"], "voucher_id": voucher, "section": "194J",
                   "section_name": "Professional and technical fees", "rate": "2.00",
                   "base_amount": "10.25", "tds_amount": "0.21",  # 0.205 rounds up
                   "deductee_pan": "AAPFU0939F", "deductee_ledger_id": ledger,
                   "deducted_on": "2026-05-10"}
    for rate, base, expected in (("1", "123456.78", "1234.57"), ("0.1", "4.99", "0.00"),
                                 ("0.1", "5", "0.01"), ("10", "99999999.99", "10000000.00"),
                                 ("0", "100", "0.00")):
        answer = acme.post("/api/tds-details", deduction(voucher, rate=rate, base_amount=base))
        assert answer.json["data"]["tds_detail"]["tds_amount"] == expected, (rate, base)
    given = acme.post("/api/tds-details", deduction(voucher, tds_amount="499"))
    assert given.json["data"]["tds_detail"]["tds_amount"] == "499.00"
    assert acme.get(f"/api/tds-details/{row['id']}", role="viewer").json["data"][
        "tds_detail"] == row

    with acme.session() as session:
        audits = session.scalars(sa.select(AuditLog).where(
            AuditLog.entity_type == "tds_detail").order_by(AuditLog.id)).all()
    assert [a.action for a in audits] == ["create"] * 7
    assert json.loads(audits[0].after_data) == row


def test_tds_rules_name_the_field_and_write_nothing(acme):
    voucher = payment(acme)
    cancelled = add_voucher(acme, "payment", date(2026, 5, 10), items=(), status="cancelled")
    ledger = add_ledger(acme, pan="AAPFU0939F")
    for changes, field in (({"voucher_id": 9999}, "voucher_id"),
                           ({"voucher_id": cancelled}, "voucher_id"),
                           ({"section": "194Z"}, "section"),
                           ({"section": "C"}, "section"),
                           ({"rate": "101"}, "rate"),
                           ({"rate": "-1"}, "rate"),
                           ({"rate": "1.005"}, "rate"),
                           ({"base_amount": "0"}, "base_amount"),
                           ({"base_amount": "10.001"}, "base_amount"),
                           ({"tds_amount": "-1"}, "tds_amount"),
                           ({"tds_amount": "50000.01"}, "tds_amount"),
                           ({"deductee_pan": "AAPFU0939"}, "deductee_pan"),
                           ({"deductee_ledger_id": 9999}, "deductee_ledger_id"),
                           ({"deductee_ledger_id": ledger, "deductee_pan": "AAACB1234C"},
                            "deductee_pan"),
                           ({"deducted_on": "2026-02-30"}, "deducted_on"),
                           ({"tds_amount_paise": 1}, "tds_amount_paise")):
        response = acme.post("/api/tds-details", {**deduction(voucher), **changes})
        assert response.status_code == 400, changes
        assert field in response.json["error"]["fields"], changes
    assert acme.get("/api/tds-details").json["data"]["total"] == 0


def test_deductions_are_listed_by_voucher_section_and_dates(acme):
    first, second = payment(acme), payment(acme)
    for voucher, section, day in ((first, "194C", "2026-04-30"), (first, "194J", "2026-05-01"),
                                  (second, "194C", "2026-05-31"), (second, "194H", "2026-06-01")):
        acme.post("/api/tds-details", deduction(voucher, section=section, deducted_on=day))

    def listed(query):
        page = acme.get(f"/api/tds-details?{query}", role="viewer").json["data"]
        return page["total"], [(d["section"], d["deducted_on"]) for d in page["tds_details"]]

    assert listed(f"voucher_id={second}") == (2, [("194C", "2026-05-31"), ("194H", "2026-06-01")])
    assert listed("section=194c")[0] == 2
    assert listed("from=2026-05-01&to=2026-05-31") == (
        2, [("194J", "2026-05-01"), ("194C", "2026-05-31")])
    assert listed("limit=1&offset=3") == (4, [("194H", "2026-06-01")])
    bad = acme.get("/api/tds-details?from=May")
    assert bad.status_code == 400 and "from" in bad.json["error"]["fields"]


def test_viewers_write_nothing_and_unknown_ids_are_404(acme):
    response = acme.post("/api/tds-details", deduction(payment(acme)), role="viewer")
    assert response.status_code == 403
    assert acme.get("/api/tds-details").json["data"]["total"] == 0
    assert acme.get("/api/tds-details/9999").status_code == 404


def test_ids_of_another_tenant_are_404(acme, zenith):
    for name in ("One", "Two", "Three"):
        their_voucher, their_ledger = payment(zenith), add_ledger(zenith, name)
        theirs = zenith.post("/api/tds-details", deduction(their_voucher))
    their_id = theirs.json["data"]["tds_detail"]["id"]  # ids 1-3 in zenith, 1 in acme
    mine = payment(acme)
    acme.post("/api/tds-details", deduction(mine))
    assert acme.get(f"/api/tds-details/{their_id}").status_code == 404
    assert acme.post("/api/tds-details", deduction(their_voucher)).json["error"]["fields"] == {
        "voucher_id": f"no voucher with id {their_voucher}"}
    their_ledger_used = acme.post("/api/tds-details", deduction(
        mine, deductee_ledger_id=their_ledger))
    assert "deductee_ledger_id" in their_ledger_used.json["error"]["fields"]
    assert acme.get("/api/tds-details").json["data"]["total"] == 1
    assert zenith.get(f"/api/tds-details/{their_id}").status_code == 200
