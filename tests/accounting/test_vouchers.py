"""Vouchers over HTTP: double entry, gapless numbering per type and year, items and GST,
bill allocations, cancelling, roles and isolation."""

import threading

import pytest
import sqlalchemy as sa

from api.models.tenant import GSTIN, Voucher, VoucherSequence


def group_id(tenant, code):
    groups = tenant.get("/api/account-groups?limit=200").json["data"]["account_groups"]
    return next(g["id"] for g in groups if g["code"] == code)


def ledger(tenant, name, code="cash_in_hand", **extra):
    response = tenant.post("/api/ledgers", {"name": name, "account_group_id":
                                            group_id(tenant, code), **extra})
    assert response.status_code == 201, response.json
    return response.json["data"]["ledger"]["id"]


@pytest.fixture
def books(acme):
    """Cash, Bank, Sales, a customer in another state, and output GST ledgers."""
    return {"cash": ledger(acme, "Cash"), "bank": ledger(acme, "Bank", "bank_accounts"),
            "sales": ledger(acme, "Sales", "sales_accounts"),
            "customer": ledger(acme, "Kumar Stores", "sundry_debtors", state_code="29",
                               bill_wise=True),
            "gst": ledger(acme, "Output GST", "duties_taxes")}


def journal(books, amount="100.00", date="2026-11-25", **extra):
    return {"voucher_type": "Journal", "date": date, "narration": "test",
            "entries": [{"ledger_id": books["cash"], "type": "Dr", "amount": amount},
                        {"ledger_id": books["bank"], "type": "Cr", "amount": amount}], **extra}


def test_vouchers_are_numbered_per_type_and_financial_year(acme, books):
    first = acme.post("/api/vouchers", journal(books), role="accountant")
    assert first.status_code == 201, first.json
    voucher = first.json["data"]["voucher"]
    assert (voucher["number"], voucher["voucher_number"], voucher["financial_year"]) == (
        1, "JRN/2026-27/0001", "2026-27")
    assert voucher["total"] == "100.00" and len(voucher["entries"]) == 2
    assert acme.post("/api/vouchers", journal(books, date="2027-03-31")).json[
        "data"]["voucher"]["number"] == 2
    assert acme.post("/api/vouchers", journal(books, date="2027-04-01")).json[
        "data"]["voucher"]["voucher_number"] == "JRN/2027-28/0001"
    contra = acme.post("/api/vouchers", {**journal(books), "voucher_type": "Contra"})
    assert contra.json["data"]["voucher"]["voucher_number"] == "CTR/2026-27/0001"


def test_amounts_are_exact_to_the_paisa(acme, books):
    body = journal(books)
    body["entries"] = [{"ledger_id": books["cash"], "type": "Dr", "amount": "0.1"},
                       {"ledger_id": books["cash"], "type": "Dr", "amount": "0.2"},
                       {"ledger_id": books["bank"], "type": "Cr", "amount": "0.3"}]
    assert acme.post("/api/vouchers", body).status_code == 201
    raw = ('{"voucher_type": "Journal", "date": "2026-11-25", "entries": ['
           f'{{"ledger_id": {books["cash"]}, "type": "Dr", "amount": 0.1}},'
           f'{{"ledger_id": {books["cash"]}, "type": "Dr", "amount": 0.2}},'
           f'{{"ledger_id": {books["bank"]}, "type": "Cr", "amount": 0.3}}]}}')
    numbers = acme.client.post("/api/vouchers", data=raw, content_type="application/json",
                               headers=acme.headers["admin"])
    assert numbers.status_code == 201, numbers.json  # 0.1 + 0.2 == 0.3, as JSON numbers too
    assert numbers.json["data"]["voucher"]["total"] == "0.30"


def broken(books, change):
    body = journal(books)
    change(body)
    return body


@pytest.mark.parametrize("change, field", [
    (lambda b: b["entries"].pop(), "entries"),
    (lambda b: b["entries"][1].update(amount="99.99"), "entries"),
    (lambda b: b["entries"][0].update(amount="0"), "entries.0.amount"),
    (lambda b: b["entries"][0].update(amount="-5"), "entries.0.amount"),
    (lambda b: b["entries"][0].update(amount="1.001"), "entries.0.amount"),
    (lambda b: b["entries"][0].update(type="Debit"), "entries.0.type"),
    (lambda b: b["entries"][0].update(ledger_id=99999), "entries.0.ledger_id"),
    (lambda b: b.update(voucher_type="Nope"), "voucher_type"),
    (lambda b: b.update(date="2026-02-30"), "date"),
    (lambda b: b.update(items=[{"item_name": "x", "quantity": 1, "rate": 1}]), "items"),
    (lambda b: b.update(bill_allocations=[{"ledger_id": 99999, "bill_reference": "B1",
                                           "amount": 1}]), "bill_allocations.0.ledger_id"),
    (lambda b: b.update(surprise=1), "surprise"),
])
def test_a_broken_rule_is_400_naming_it_and_nothing_is_written(acme, books, change, field):
    response = acme.post("/api/vouchers", broken(books, change))
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json
    with acme.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Voucher)) == 0
        assert not session.scalar(sa.select(sa.func.sum(VoucherSequence.last_number)))
    assert acme.post("/api/vouchers", journal(books)).json["data"]["voucher"]["number"] == 1


def test_sales_items_split_gst_by_the_parties_states(acme, books):
    with acme.session() as session:
        session.add(GSTIN(gstin="27AAPFU0939F1ZV", legal_name="Acme", state_code="27",
                          is_default=True))
        session.commit()
    sale = {"voucher_type": "Sales", "date": "2026-11-25",
            "entries": [{"ledger_id": books["customer"], "type": "Dr", "amount": "1180.00"},
                        {"ledger_id": books["sales"], "type": "Cr", "amount": "1000.00"},
                        {"ledger_id": books["gst"], "type": "Cr", "amount": "180.00"}],
            "items": [{"item_name": "Rice 25kg", "hsn_sac": "1006", "quantity": "2.5",
                       "unit": "bag", "rate": "400", "gst_rate": "18"}],
            "bill_allocations": [{"ledger_id": books["customer"], "bill_reference": "INV-1",
                                  "amount": "1180.00", "due_date": "2026-12-25"}]}
    created = acme.post("/api/vouchers", sale)
    assert created.status_code == 201, created.json
    [item] = created.json["data"]["voucher"]["items"]
    assert (item["taxable"], item["igst"], item["cgst"]) == ("1000.00", "180.00", "0.00")
    [bill] = created.json["data"]["voucher"]["bill_allocations"]
    assert (bill["type"], bill["amount"]) == ("Dr", "1180.00")

    too_much = {**sale, "bill_allocations": [
        {"ledger_id": books["customer"], "bill_reference": "INV-2", "amount": "1000"},
        {"ledger_id": books["customer"], "bill_reference": "INV-3", "amount": "180.01"}]}
    refused = acme.post("/api/vouchers", too_much)
    assert "bill_allocations.1.amount" in refused.json["error"]["fields"]


def test_cancelled_vouchers_stay_keep_their_number_and_numbering_goes_on(acme, books):
    first = acme.post("/api/vouchers", journal(books)).json["data"]["voucher"]
    cancelled = acme.post(f"/api/vouchers/{first['id']}/cancel", {"reason": "duplicate"})
    assert cancelled.json["data"]["voucher"]["status"] == "cancelled"
    assert acme.post(f"/api/vouchers/{first['id']}/cancel", {}).status_code == 409
    assert acme.post("/api/vouchers", journal(books)).json["data"]["voucher"]["number"] == 2
    listed = acme.get("/api/vouchers?status=cancelled").json["data"]
    assert [v["number"] for v in listed["vouchers"]] == [1] and listed["total"] == 1


def test_filters(acme, books):
    acme.post("/api/vouchers", journal(books, date="2026-04-01"))
    acme.post("/api/vouchers", journal(books, date="2026-06-01"))
    acme.post("/api/vouchers", {**journal(books, date="2026-08-01"), "voucher_type": "Contra"})
    assert acme.get("/api/vouchers?from=2026-05-01").json["data"]["total"] == 2
    assert acme.get("/api/vouchers?to=2026-05-01").json["data"]["total"] == 1
    assert acme.get("/api/vouchers?voucher_type=Contra").json["data"]["total"] == 1
    assert acme.get(f"/api/vouchers?ledger_id={books['cash']}").json["data"]["total"] == 3
    assert acme.get(f"/api/vouchers?ledger_id={books['sales']}").json["data"]["total"] == 0
    assert acme.get("/api/vouchers?from=yesterday").status_code == 400


def test_concurrent_postings_get_unique_numbers_without_gaps(acme, books):
    numbers, errors = [], []

    def post(count):
        client = acme.app.test_client()
        for _ in range(count):
            response = client.post("/api/vouchers", json=journal(books),
                                   headers=acme.headers["accountant"])
            if response.status_code == 201:
                numbers.append(response.json["data"]["voucher"]["number"])
            else:
                errors.append(response.json)

    threads = [threading.Thread(target=post, args=(5,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 31))


def test_custom_voucher_types_number_on_their_own(acme, books):
    created = acme.post("/api/voucher-types", {"name": "Cash Sales", "base_type": "sales",
                                               "abbreviation": "CSL"})
    assert created.status_code == 201
    assert acme.get("/api/voucher-types").json["data"]["total"] == 9
    posted = acme.post("/api/vouchers", {**journal(books), "voucher_type": "Cash Sales"})
    assert posted.json["data"]["voucher"]["voucher_number"] == "CSL/2026-27/0001"
    assert acme.post("/api/voucher-types", {"name": "Cash Sales", "base_type": "sales",
                                            "abbreviation": "X"}).status_code == 409


def test_viewers_cannot_post_and_other_tenants_cannot_see(acme, zenith, books):
    assert acme.post("/api/vouchers", journal(books), role="viewer").status_code == 403
    for filler in range(5):  # zenith's ledger ids run past acme's
        ledger(zenith, f"Filler {filler}")
    cash, bank = ledger(zenith, "Z Cash"), ledger(zenith, "Z Bank")
    for _ in range(3):
        theirs = zenith.post("/api/vouchers", {"voucher_type": "Journal", "date": "2026-11-25",
                                               "entries": [
                                                   {"ledger_id": cash, "type": "Dr",
                                                    "amount": "5"},
                                                   {"ledger_id": bank, "type": "Cr",
                                                    "amount": "5"}]})
    their_id = theirs.json["data"]["voucher"]["id"]
    assert acme.get(f"/api/vouchers/{their_id}").status_code == 404
    assert acme.post(f"/api/vouchers/{their_id}/cancel", {}).status_code == 404
    assert acme.get("/api/vouchers").json["data"]["total"] == 0
    # zenith's ledger ids do not exist in acme: posting with them is refused
    body = journal(books)
    body["entries"][0]["ledger_id"] = bank
    assert bank not in books.values()
    assert acme.post("/api/vouchers", body).status_code == 400
