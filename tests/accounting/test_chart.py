"""The chart of accounts over HTTP: groups and ledgers, rules, roles, audit, isolation."""

import json
from datetime import date

import pytest
import sqlalchemy as sa

from api.models.tenant import AuditLog, Voucher, VoucherLedgerEntry, VoucherType


def group_id(tenant, code):
    groups = tenant.get("/api/account-groups?limit=200").json["data"]["account_groups"]
    return next(g["id"] for g in groups if g["code"] == code)


def test_the_seeded_chart_is_listed_and_paginated(acme):
    page = acme.get("/api/account-groups?limit=10&offset=10", role="viewer").json["data"]
    assert page["total"] == 28 and len(page["account_groups"]) == 10
    assert page["account_groups"][0]["id"] == 11


def test_custom_groups_inherit_nature_and_standard_ones_are_fixed(acme):
    debtors = group_id(acme, "sundry_debtors")
    created = acme.post("/api/account-groups", {"name": "Debtors - North",
                                                "parent_id": debtors})
    assert created.status_code == 201
    group = created.json["data"]["account_group"]
    assert (group["nature"], group["is_system"]) == ("assets", False)

    nested = acme.post("/api/account-groups", {"name": "Debtors - Delhi",
                                               "parent_id": group["id"]}).json["data"]
    cycle = acme.patch(f"/api/account-groups/{group['id']}",
                       {"parent_id": nested["account_group"]["id"]})
    assert cycle.status_code == 400 and "parent_id" in cycle.json["error"]["fields"]
    moved = acme.patch(f"/api/account-groups/{nested['account_group']['id']}",
                       {"parent_id": group_id(acme, "sundry_creditors")})
    assert moved.json["data"]["account_group"]["nature"] == "liabilities"

    assert acme.post("/api/account-groups", {"name": "Debtors - North",
                                             "parent_id": debtors}).status_code == 409
    assert acme.delete(f"/api/account-groups/{debtors}").json["error"]["code"] == "system_group"
    assert acme.patch(f"/api/account-groups/{debtors}", {"name": "x"}).status_code == 409
    assert acme.delete(f"/api/account-groups/{group['id']}").status_code == 200


def test_ledger_lifecycle_with_exact_amounts(acme):
    cash = group_id(acme, "cash_in_hand")
    created = acme.post("/api/ledgers", {"name": "Cash", "account_group_id": cash,
                                         "opening_balance": "1250.5",
                                         "opening_balance_type": "Dr"}, role="accountant")
    assert created.status_code == 201, created.json
    ledger = created.json["data"]["ledger"]
    assert ledger["opening_balance"] == "1250.50"

    number = acme.client.post("/api/ledgers", headers=acme.headers["admin"],
                              data=f'{{"name": "Bank", "account_group_id": {cash}, '
                                   '"opening_balance": 0.10}',
                              content_type="application/json")
    assert number.json["data"]["ledger"]["opening_balance"] == "0.10"

    assert acme.post("/api/ledgers", {"name": "Cash", "account_group_id": cash}).status_code \
        == 409
    updated = acme.patch(f"/api/ledgers/{ledger['id']}", {"opening_balance": 99,
                                                          "state_code": "27"})
    assert updated.json["data"]["ledger"]["opening_balance"] == "99.00"
    listed = acme.get("/api/ledgers?search=as", role="viewer").json["data"]
    assert [entry["name"] for entry in listed["ledgers"]] == ["Cash"]
    assert acme.delete(f"/api/ledgers/{ledger['id']}").status_code == 200
    assert acme.get(f"/api/ledgers/{ledger['id']}").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"),
    ({"account_group_id": 9999}, "account_group_id"),
    ({"opening_balance": "12.345"}, "opening_balance"),
    ({"opening_balance": "-5"}, "opening_balance"),
    ({"opening_balance": "abc"}, "opening_balance"),
    ({"opening_balance_type": "DR"}, "opening_balance_type"),
    ({"gstin": "27AAPFU0939F1ZX"}, "gstin"),
    ({"pan": "ABCDE1234"}, "pan"),
    ({"state_code": "77"}, "state_code"),
    ({"extra": True}, "extra"),
])
def test_ledger_rules_name_the_field_and_write_nothing(acme, body, field):
    good = {"name": "Sales", "account_group_id": group_id(acme, "sales_accounts")}
    response = acme.post("/api/ledgers", {**good, **body})
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"]
    assert acme.get("/api/ledgers").json["data"]["total"] == 0


def test_viewers_read_but_never_write(acme):
    cash = group_id(acme, "cash_in_hand")
    assert acme.post("/api/ledgers", {"name": "Cash", "account_group_id": cash},
                     role="viewer").status_code == 403
    assert acme.post("/api/account-groups", {"name": "X", "parent_id": cash},
                     role="viewer").status_code == 403
    assert acme.get("/api/ledgers", role="viewer").status_code == 200


def test_a_ledger_a_voucher_uses_cannot_be_deleted(acme):
    cash = acme.post("/api/ledgers", {"name": "Cash", "account_group_id":
                                      group_id(acme, "cash_in_hand")}).json["data"]["ledger"]
    with acme.session() as session:
        journal = session.scalar(sa.select(VoucherType.id).where(VoucherType.name == "Journal"))
        voucher = Voucher(voucher_type_id=journal, financial_year="2026-27", number=1,
                          voucher_date=date(2026, 5, 1), total_paise=100)
        session.add(voucher)
        session.flush()
        session.add(VoucherLedgerEntry(voucher_id=voucher.id, line_no=1, ledger_id=cash["id"],
                                       entry_type="Dr", amount_paise=100))
        session.commit()
    refused = acme.delete(f"/api/ledgers/{cash['id']}")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "ledger_in_use"


def test_every_write_is_audited_with_before_and_after(acme):
    cash = group_id(acme, "cash_in_hand")
    ledger = acme.post("/api/ledgers", {"name": "Cash", "account_group_id": cash},
                       role="accountant").json["data"]["ledger"]
    acme.patch(f"/api/ledgers/{ledger['id']}", {"name": "Petty Cash"})
    acme.delete(f"/api/ledgers/{ledger['id']}")
    with acme.session() as session:
        rows = session.scalars(sa.select(AuditLog).where(AuditLog.entity_type == "ledger")
                               .order_by(AuditLog.id)).all()
    assert [row.action for row in rows] == ["create", "update", "delete"]
    assert json.loads(rows[1].before_data)["name"] == "Cash"
    assert json.loads(rows[1].after_data)["name"] == "Petty Cash"
    assert rows[0].user_id != rows[1].user_id  # accountant, then admin


def test_ids_of_another_tenant_are_404(acme, zenith):
    cash = group_id(zenith, "cash_in_hand")
    for name in ("One", "Two", "Three"):
        theirs = zenith.post("/api/ledgers", {"name": name, "account_group_id": cash})
    their_id = theirs.json["data"]["ledger"]["id"]  # exists in zenith, not in acme
    custom = zenith.post("/api/account-groups", {"name": "Z", "parent_id": cash})
    their_group = custom.json["data"]["account_group"]["id"]
    assert acme.get(f"/api/ledgers/{their_id}").status_code == 404
    assert acme.patch(f"/api/ledgers/{their_id}", {"name": "x"}).status_code == 404
    assert acme.delete(f"/api/ledgers/{their_id}").status_code == 404
    assert acme.get(f"/api/account-groups/{their_group}").status_code == 404
    assert acme.delete(f"/api/account-groups/{their_group}").status_code == 404
    assert zenith.get(f"/api/ledgers/{their_id}").status_code == 200
    assert acme.get("/api/ledgers").json["data"]["total"] == 0
