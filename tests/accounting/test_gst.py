"""GST over HTTP: rates by date, GSTINs, e-invoices, and GSTR summaries computed exactly."""

import hashlib
import json
from datetime import date, datetime

import sqlalchemy as sa

from api.accounting.rules import financial_year, gstin_check_digit
from api.models.tenant import AuditLog, Voucher, VoucherItem, VoucherType
from tests.accounting.test_chart import group_id


def make_gstin(state="27", pan="AAPFU0939F", number="1"):
    """A valid GSTIN: state code, PAN, registration number, 'Z' and its check digit."""
    body = f"{state}{pan}{number}Z"
    return body + gstin_check_digit(body)


def irn(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


def add_voucher(tenant, base_type, day, items=((100000, 9000, 9000, 0, 0),),
                status="posted"):
    """Insert a voucher of the seeded ``base_type`` with item lines given as paise
    ``(taxable, cgst, sgst, igst, cess)``; returns its id. Stands in for /api/vouchers."""
    with tenant.session() as session:
        type_id = session.scalar(sa.select(VoucherType.id).where(
            VoucherType.base_type == base_type, VoucherType.is_system.is_(True)))
        number = session.scalar(sa.select(sa.func.count(Voucher.id))) + 1
        voucher = Voucher(voucher_type_id=type_id, financial_year=financial_year(day),
                          number=number, voucher_date=day, status=status,
                          total_paise=sum(sum(item) for item in items) or 1,
                          cancelled_at=datetime(2026, 6, 1) if status == "cancelled" else None)
        session.add(voucher)
        session.flush()
        for line_no, (taxable, cgst, sgst, igst, cess) in enumerate(items, start=1):
            session.add(VoucherItem(
                voucher_id=voucher.id, line_no=line_no, item_name=f"Item {line_no}",
                quantity_milli=1000, rate_paise=taxable, taxable_paise=taxable,
                cgst_paise=cgst, sgst_paise=sgst, igst_paise=igst, cess_paise=cess))
        session.commit()
        return voucher.id


def audit_actions(tenant, entity_type):
    with tenant.session() as session:
        rows = session.scalars(sa.select(AuditLog).where(AuditLog.entity_type == entity_type)
                               .order_by(AuditLog.id)).all()
        return [(row.action, row.entity_id, json.loads(row.after_data or "null")) for row in rows]


def e_invoice_body(voucher_id, seed="1"):
    return {"voucher_id": voucher_id, "irn": irn(seed), "ack_number": "112610000000001",
            "ack_date": "2026-05-01T12:00:00", "signed_qr": "eyJhbGciOiJSUzI1NiJ9.x.y"}


# ---- GST rates ----

def test_rates_in_force_on_a_day(acme):
    everything = acme.get("/api/gst-rates", role="viewer").json["data"]
    assert everything["total"] == 8
    before_reform = acme.get("/api/gst-rates?on=2025-09-21").json["data"]
    assert [r["code"] for r in before_reform["gst_rates"]] == [
        "GST0", "GST0_25", "GST3", "GST5", "GST12", "GST18", "GST28"]
    after = acme.get("/api/gst-rates?on=2025-09-22&limit=2&offset=4").json["data"]
    assert after["total"] == 6
    assert [(r["code"], r["rate"]) for r in after["gst_rates"]] == [
        ("GST18", "18.00"), ("GST40", "40.00")]
    stones = before_reform["gst_rates"][1]
    assert (stones["rate"], stones["cess_rate"], stones["effective_from"],
            stones["effective_to"]) == ("0.25", "0.00", "2017-07-01", None)
    assert before_reform["gst_rates"][4]["effective_to"] == "2025-09-21"
    assert acme.get("/api/gst-rates?on=2017-06-30").json["data"]["total"] == 0
    bad = acme.get("/api/gst-rates?on=2025-13-01")
    assert bad.status_code == 400 and "on" in bad.json["error"]["fields"]


# ---- GSTINs ----

def test_gstins_take_their_state_and_one_default(acme):
    first = acme.post("/api/gstins", {"gstin": make_gstin().lower(), "legal_name": "Acme LLP",
                                      "is_default": True}, role="accountant")
    assert first.status_code == 201, first.json
    row = first.json["data"]["gstin"]
    assert (row["gstin"], row["state_code"], row["registration_type"], row["is_default"]) == (
        make_gstin(), "27", "regular", True)
    second = acme.post("/api/gstins", {"gstin": make_gstin("29"), "legal_name": "Acme LLP",
                                       "trade_name": "Acme South", "registration_type": "sez",
                                       "is_default": True}).json["data"]["gstin"]
    assert second["state_code"] == "29"
    assert acme.get(f"/api/gstins/{row['id']}", role="viewer").json["data"]["gstin"][
        "is_default"] is False
    listed = acme.get("/api/gstins").json["data"]
    assert listed["total"] == 2
    assert [g["is_default"] for g in listed["gstins"]] == [False, True]
    again = acme.post("/api/gstins", {"gstin": make_gstin(), "legal_name": "Other"})
    assert again.status_code == 409 and "gstin" in again.json["error"]["fields"]

    actions = audit_actions(acme, "gstin")
    assert [(action, entity) for action, entity, _ in actions] == [
        ("create", str(row["id"])), ("update", str(row["id"])), ("create", str(second["id"]))]
    assert actions[1][2]["is_default"] is False


def test_gstin_rules_name_the_field_and_write_nothing(acme):
    good = {"gstin": make_gstin(), "legal_name": "Acme LLP"}
    wrong_check_digit = make_gstin()[:14] + ("A" if make_gstin()[14] != "A" else "B")
    for body, field in (({"gstin": wrong_check_digit}, "gstin"),
                        ({"gstin": "77" + make_gstin()[2:]}, "gstin"),
                        ({"gstin": make_gstin(pan="AAAXU0939F")}, "gstin"),
                        ({"legal_name": ""}, "legal_name"),
                        ({"registration_type": "unregistered"}, "registration_type"),
                        ({"state_code": "27"}, "state_code")):
        response = acme.post("/api/gstins", {**good, **body})
        assert response.status_code == 400, body
        assert field in response.json["error"]["fields"], body
    assert acme.get("/api/gstins").json["data"]["total"] == 0


# ---- e-invoices ----

def test_an_e_invoice_records_a_sales_vouchers_irn_and_its_cancellation(acme):
    sale = add_voucher(acme, "sales", date(2026, 5, 1))
    body = {**e_invoice_body(sale), "irn": irn("1").upper(),
            "ack_date": "2026-05-01T06:30:00+00:00"}
    created = acme.post("/api/e-invoices", body, role="accountant")
    assert created.status_code == 201, created.json
    invoice = created.json["data"]["e_invoice"]
    assert (invoice["irn"], invoice["ack_date"], invoice["status"]) == (
        irn("1"), "2026-05-01T12:00:00", "generated")  # lower case; converted to IST
    assert acme.get(f"/api/e-invoices/{invoice['id']}", role="viewer").json["data"][
        "e_invoice"] == invoice

    same_voucher = acme.post("/api/e-invoices", e_invoice_body(sale, seed="2"))
    assert same_voucher.status_code == 409 and "voucher_id" in same_voucher.json["error"]["fields"]
    same_irn = acme.post("/api/e-invoices", e_invoice_body(add_voucher(acme, "sales",
                                                                        date(2026, 5, 2))))
    assert same_irn.status_code == 409 and "irn" in same_irn.json["error"]["fields"]

    cancelled = acme.post(f"/api/e-invoices/{invoice['id']}/cancel",
                          {"reason": "Duplicate invoice"}, role="accountant")
    assert cancelled.status_code == 200, cancelled.json
    after = cancelled.json["data"]["e_invoice"]
    assert (after["status"], after["cancel_reason"]) == ("cancelled", "Duplicate invoice")
    assert after["cancelled_at"] is not None
    again = acme.post(f"/api/e-invoices/{invoice['id']}/cancel", {"reason": "again"})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_cancelled"
    listed = acme.get(f"/api/e-invoices?status=cancelled&voucher_id={sale}").json["data"]
    assert listed["total"] == 1 and listed["e_invoices"][0]["id"] == invoice["id"]
    assert acme.get("/api/e-invoices?status=generated").json["data"]["total"] == 0

    actions = audit_actions(acme, "e_invoice")
    assert [(action, entity) for action, entity, _ in actions] == [
        ("create", str(invoice["id"])), ("cancel", str(invoice["id"]))]
    assert actions[1][2]["status"] == "cancelled"


def test_e_invoice_rules_name_the_field_and_write_nothing(acme):
    sale = add_voucher(acme, "sales", date(2026, 5, 1))
    purchase = add_voucher(acme, "purchase", date(2026, 5, 1))
    cancelled = add_voucher(acme, "sales", date(2026, 5, 1), status="cancelled")
    for body, field in (({"voucher_id": 9999}, "voucher_id"),
                        ({"voucher_id": purchase}, "voucher_id"),
                        ({"voucher_id": cancelled}, "voucher_id"),
                        ({"irn": irn("1")[:63]}, "irn"),
                        ({"irn": "g" + irn("1")[1:]}, "irn"),
                        ({"ack_number": "ACK-1"}, "ack_number"),
                        ({"ack_date": "yesterday"}, "ack_date"),
                        ({"ack_date": "0001-01-01T00:00:00+01:09"}, "ack_date"),  # < year 1 in IST
                        ({"ack_date": "9999-12-31T23:00:00-01:00"}, "ack_date"),  # > year 9999
                        ({"signed_qr": ""}, "signed_qr"),
                        ({"status": "generated"}, "status")):
        response = acme.post("/api/e-invoices", {**e_invoice_body(sale), **body})
        assert response.status_code == 400, body
        assert field in response.json["error"]["fields"], body
    assert acme.get("/api/e-invoices").json["data"]["total"] == 0


# ---- GSTR returns ----

def may_2026_books(tenant):
    """Vouchers around May 2026 whose GST totals the tests below work out by hand."""
    may = date(2026, 5, 15)
    add_voucher(tenant, "sales", date(2026, 5, 1), [(1000000, 90000, 90000, 0, 0),
                                                    (250050, 6251, 6251, 0, 0)])
    add_voucher(tenant, "sales", date(2026, 5, 31), [(333333, 0, 0, 60000, 10000)])
    add_voucher(tenant, "sales", may, [(999900, 0, 0, 99990, 0)], status="cancelled")
    add_voucher(tenant, "sales", date(2026, 4, 30), [(100, 9, 9, 0, 0)])
    add_voucher(tenant, "sales", date(2026, 6, 1), [(100, 0, 0, 18, 0)])
    add_voucher(tenant, "credit_note", may, [(100000, 9000, 9000, 0, 0)])
    add_voucher(tenant, "purchase", may, [(500000, 0, 0, 90000, 0)])
    add_voucher(tenant, "purchase", may, [(200000, 5000, 5000, 0, 0)])
    add_voucher(tenant, "debit_note", may, [(50000, 0, 0, 9000, 0)])
    add_voucher(tenant, "purchase", date(2026, 6, 1), [(100000, 0, 0, 18000, 0)])


def gstin_id(tenant):
    return tenant.post("/api/gstins", {"gstin": make_gstin(), "legal_name": "Acme LLP"}) \
        .json["data"]["gstin"]["id"]


def test_gstr1_sums_the_months_sales_less_credit_notes(acme):
    may_2026_books(acme)
    created = acme.post("/api/gstr-returns", {"gstin_id": gstin_id(acme), "return_type":
                                              "GSTR-1", "period": "2026-05"}, role="accountant")
    assert created.status_code == 201, created.json
    gstr = created.json["data"]["gstr_return"]
    assert (gstr["status"], gstr["period"], gstr["arn"]) == ("draft", "2026-05", None)
    assert gstr["summary"] == {
        "sales": {"count": 2, "taxable_value": "15833.83", "cgst": "962.51",
                  "sgst": "962.51", "igst": "600.00", "cess": "100.00"},
        "credit_notes": {"count": 1, "taxable_value": "1000.00", "cgst": "90.00",
                         "sgst": "90.00", "igst": "0.00", "cess": "0.00"},
        "net_outward": {"taxable_value": "14833.83", "cgst": "872.51", "sgst": "872.51",
                        "igst": "600.00", "cess": "100.00", "total_tax": "2445.02"},
    }
    assert acme.get(f"/api/gstr-returns/{gstr['id']}", role="viewer").json["data"][
        "gstr_return"] == gstr
    assert audit_actions(acme, "gstr_return") == [("create", str(gstr["id"]), gstr)]


def test_gstr3b_nets_input_tax_credit_against_the_liability(acme):
    may_2026_books(acme)
    gstin = gstin_id(acme)
    created = acme.post("/api/gstr-returns", {"gstin_id": gstin, "return_type": "GSTR-3B",
                                              "period": "2026-05"})
    assert created.status_code == 201, created.json
    assert created.json["data"]["gstr_return"]["summary"] == {
        "outward_liability": {"taxable_value": "14833.83", "cgst": "872.51", "sgst": "872.51",
                              "igst": "600.00", "cess": "100.00", "total_tax": "2445.02"},
        "purchases": {"count": 2, "taxable_value": "7000.00", "cgst": "50.00", "sgst": "50.00",
                      "igst": "900.00", "cess": "0.00"},
        "debit_notes": {"count": 1, "taxable_value": "500.00", "cgst": "0.00", "sgst": "0.00",
                        "igst": "90.00", "cess": "0.00"},
        "input_tax_credit": {"taxable_value": "6500.00", "cgst": "50.00", "sgst": "50.00",
                             "igst": "810.00", "cess": "0.00", "total_tax": "910.00"},
        "net_payable": {"cgst": "822.51", "sgst": "822.51", "igst": "-210.00",
                        "cess": "100.00", "total_tax": "1535.02"},
    }
    empty = acme.post("/api/gstr-returns", {"gstin_id": gstin, "return_type": "GSTR-3B",
                                            "period": "2026-07"}).json["data"]["gstr_return"]
    assert empty["summary"]["net_payable"]["total_tax"] == "0.00"
    assert empty["summary"]["purchases"]["count"] == 0

    again = acme.post("/api/gstr-returns", {"gstin_id": gstin, "return_type": "GSTR-3B",
                                            "period": "2026-05"})
    assert again.status_code == 409 and "period" in again.json["error"]["fields"]
    listed = acme.get("/api/gstr-returns?return_type=GSTR-3B").json["data"]
    assert [r["period"] for r in listed["gstr_returns"]] == ["2026-07", "2026-05"]
    assert acme.get("/api/gstr-returns?period=2026-05").json["data"]["total"] == 1
    assert acme.get("/api/gstr-returns?return_type=GSTR-1").json["data"]["total"] == 0


def test_gstr_rules_name_the_field_and_write_nothing(acme):
    good = {"gstin_id": gstin_id(acme), "return_type": "GSTR-1", "period": "2026-05"}
    for body, field in (({"gstin_id": 9999}, "gstin_id"),
                        ({"return_type": "GSTR-2"}, "return_type"),
                        ({"period": "2026-13"}, "period"),
                        ({"period": "05-2026"}, "period"),
                        ({"summary": {}}, "summary")):
        response = acme.post("/api/gstr-returns", {**good, **body})
        assert response.status_code == 400, body
        assert field in response.json["error"]["fields"], body
    assert acme.get("/api/gstr-returns").json["data"]["total"] == 0


def test_returns_and_e_invoices_use_vouchers_posted_through_the_api(acme):
    """End to end with /api/vouchers: its GST split lands in the summary, cancelling drops out."""
    gstin = acme.post("/api/gstins", {"gstin": make_gstin("27"), "legal_name": "Acme LLP",
                                      "is_default": True}).json["data"]["gstin"]["id"]
    ledgers = {}
    for name, code, state in (("Kumar Stores", "sundry_debtors", "29"),
                              ("Local Stores", "sundry_debtors", "27"),
                              ("Sales", "sales_accounts", None),
                              ("Output GST", "duties_taxes", None)):
        ledgers[name] = acme.post("/api/ledgers", {"name": name, "state_code": state,
                                                   "account_group_id": group_id(acme, code)}
                                  ).json["data"]["ledger"]["id"]

    def sale(party, quantity, rate, gst_rate, taxable, tax, total):
        response = acme.post("/api/vouchers", {
            "voucher_type": "Sales", "date": "2026-05-10",
            "entries": [{"ledger_id": ledgers[party], "type": "Dr", "amount": total},
                        {"ledger_id": ledgers["Sales"], "type": "Cr", "amount": taxable},
                        {"ledger_id": ledgers["Output GST"], "type": "Cr", "amount": tax}],
            "items": [{"item_name": "Widget", "quantity": quantity, "rate": rate,
                       "gst_rate": gst_rate}]})
        assert response.status_code == 201, response.json
        return response.json["data"]["voucher"]["id"]

    inter = sale("Kumar Stores", "2", "500", "18", "1000", "180", "1180")
    sale("Local Stores", "1", "250", "5", "250", "12.50", "262.50")
    cancelled = sale("Local Stores", "3", "100", "18", "300", "54", "354")
    assert acme.post(f"/api/vouchers/{cancelled}/cancel", {}).status_code == 200

    summary = acme.post("/api/gstr-returns", {"gstin_id": gstin, "return_type": "GSTR-1",
                                              "period": "2026-05"}).json["data"]["gstr_return"]
    assert summary["summary"]["sales"] == {"count": 2, "taxable_value": "1250.00",
                                           "cgst": "6.25", "sgst": "6.25", "igst": "180.00",
                                           "cess": "0.00"}
    invoice = acme.post("/api/e-invoices", e_invoice_body(inter))
    assert invoice.status_code == 201
    refused = acme.post("/api/e-invoices", e_invoice_body(cancelled, "2"))
    assert refused.json["error"]["fields"] == {"voucher_id": "is cancelled"}
    # A voucher whose e-invoice stands cannot be cancelled; once the e-invoice is, it can.
    kept = acme.post(f"/api/vouchers/{inter}/cancel", {})
    assert (kept.status_code, kept.json["error"]["code"]) == (409, "e_invoice_generated")
    invoice_id = invoice.json["data"]["e_invoice"]["id"]
    acme.post(f"/api/e-invoices/{invoice_id}/cancel", {"reason": "wrong buyer"})
    assert acme.post(f"/api/vouchers/{inter}/cancel", {}).status_code == 200


# ---- roles, unknown ids and isolation ----

def test_viewers_write_nothing(acme):
    sale = add_voucher(acme, "sales", date(2026, 5, 1))
    gstin = gstin_id(acme)
    invoice = acme.post("/api/e-invoices", e_invoice_body(sale)).json["data"]["e_invoice"]
    for path, body in (("/api/gstins", {"gstin": make_gstin("29"), "legal_name": "X"}),
                       ("/api/e-invoices", e_invoice_body(add_voucher(acme, "sales",
                                                                      date(2026, 5, 2)), "2")),
                       (f"/api/e-invoices/{invoice['id']}/cancel", {"reason": "x"}),
                       ("/api/gstr-returns", {"gstin_id": gstin, "return_type": "GSTR-1",
                                              "period": "2026-05"})):
        assert acme.post(path, body, role="viewer").status_code == 403, path
    assert acme.get("/api/gstins").json["data"]["total"] == 1
    assert acme.get("/api/e-invoices?status=generated").json["data"]["total"] == 1
    assert acme.get("/api/gstr-returns").json["data"]["total"] == 0


def test_unknown_ids_are_404(acme):
    for path in ("/api/gstins/9999", "/api/e-invoices/9999", "/api/gstr-returns/9999"):
        assert acme.get(path).status_code == 404, path
    assert acme.post("/api/e-invoices/9999/cancel", {"reason": "x"}).status_code == 404


def test_ids_of_another_tenant_are_404(acme, zenith):
    for state in ("27", "29", "07"):  # ids 1-3 in zenith; acme has only id 1
        their_gstin = zenith.post("/api/gstins", {"gstin": make_gstin(state),
                                                  "legal_name": "Z"}).json["data"]["gstin"]
    for seed in "123":
        their_sale = add_voucher(zenith, "sales", date(2026, 5, 1))
        their_invoice = zenith.post("/api/e-invoices", e_invoice_body(their_sale, seed))
    their_invoice = their_invoice.json["data"]["e_invoice"]
    for period in ("2026-04", "2026-05", "2026-06"):
        their_return = zenith.post("/api/gstr-returns", {"gstin_id": their_gstin["id"],
                                                         "return_type": "GSTR-1",
                                                         "period": period})
    their_return = their_return.json["data"]["gstr_return"]

    gstin_id(acme)
    add_voucher(acme, "sales", date(2026, 5, 1))
    assert acme.get(f"/api/gstins/{their_gstin['id']}").status_code == 404
    assert acme.get(f"/api/e-invoices/{their_invoice['id']}").status_code == 404
    assert acme.post(f"/api/e-invoices/{their_invoice['id']}/cancel",
                     {"reason": "x"}).status_code == 404
    assert acme.get(f"/api/gstr-returns/{their_return['id']}").status_code == 404
    theirs_used = acme.post("/api/e-invoices", e_invoice_body(their_sale, "4"))
    assert theirs_used.status_code == 400 and "voucher_id" in theirs_used.json["error"]["fields"]
    their_gstin_used = acme.post("/api/gstr-returns", {"gstin_id": their_gstin["id"],
                                                       "return_type": "GSTR-1",
                                                       "period": "2026-05"})
    assert their_gstin_used.status_code == 400
    assert "gstin_id" in their_gstin_used.json["error"]["fields"]
    assert zenith.get(f"/api/e-invoices/{their_invoice['id']}").json["data"]["e_invoice"][
        "status"] == "generated"
    assert [acme.get(path).json["data"]["total"] for path in (
        "/api/gstins", "/api/e-invoices", "/api/gstr-returns")] == [1, 0, 0]
