"""Reports: the trial balance and a ledger's account, checked against sums made here."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.accounting.test_vouchers import group_id, ledger


@pytest.fixture
def books(acme):
    return {"cash": ledger(acme, "Cash", opening_balance="500.00"),
            "bank": ledger(acme, "Bank", "bank_accounts", opening_balance="200.00",
                           opening_balance_type="Cr"),
            "capital": ledger(acme, "Capital", "capital_account")}


def post(tenant, debit, credit, amount, date="2026-06-01"):
    response = tenant.post("/api/vouchers", {
        "voucher_type": "Journal", "date": date,
        "entries": [{"ledger_id": debit, "type": "Dr", "amount": amount},
                    {"ledger_id": credit, "type": "Cr", "amount": amount}]})
    assert response.status_code == 201, response.json
    return response.json["data"]["voucher"]


def balances(report):
    return {row["ledger_name"]: (row["debit"], row["credit"]) for row in report["rows"]}


def test_trial_balance_includes_openings_and_shows_their_difference(acme, books):
    post(acme, books["cash"], books["capital"], "1000.00")
    cancelled = post(acme, books["cash"], books["capital"], "77.00")
    acme.post(f"/api/vouchers/{cancelled['id']}/cancel", {})
    post(acme, books["bank"], books["cash"], "50.00", date="2026-12-01")  # after as_of

    report = acme.get("/api/reports/trial-balance?as_of=2026-07-01", role="viewer").json["data"]
    assert balances(report) == {
        "Bank": ("0.00", "200.00"), "Capital": ("0.00", "1000.00"),
        "Cash": ("1500.00", "0.00"),
        "Difference in opening balances": ("0.00", "300.00")}
    assert report["total_debit"] == report["total_credit"] == "1500.00"
    assert acme.get("/api/reports/trial-balance").status_code == 400  # as_of is required


def test_ledger_account_has_running_balances_across_pages(acme, books):
    post(acme, books["cash"], books["capital"], "100.00", date="2026-04-10")
    for day in range(1, 6):
        post(acme, books["bank"], books["cash"], f"{day}.00", date=f"2026-05-0{day}")
    url = f"/api/reports/ledger/{books['cash']}?from=2026-05-01&to=2026-05-31"
    whole = acme.get(url).json["data"]
    assert whole["opening_balance"] == {"amount": "600.00", "type": "Dr"}
    assert [e["balance"]["amount"] for e in whole["entries"]] == [
        "599.00", "597.00", "594.00", "590.00", "585.00"]
    assert whole["closing_balance"] == {"amount": "585.00", "type": "Dr"} and whole["total"] == 5
    page = acme.get(url + "&limit=2&offset=2").json["data"]
    assert [e["balance"]["amount"] for e in page["entries"]] == ["594.00", "590.00"]
    assert acme.get("/api/reports/ledger/99999?from=2026-05-01&to=2026-05-31").status_code \
        == 404


def test_ledger_account_from_the_first_day_of_the_calendar(acme, books):
    """The opening balance sums what came before ``from``: from 0001-01-01 that is nothing
    (there is no day before it to end on), not a 500."""
    post(acme, books["cash"], books["capital"], "100.00", date="2026-04-10")
    report = acme.get(f"/api/reports/ledger/{books['cash']}?from=0001-01-01&to=2026-12-31")
    assert report.status_code == 200, report.json
    assert report.json["data"]["opening_balance"] == {"amount": "500.00", "type": "Dr"}
    assert report.json["data"]["closing_balance"] == {"amount": "600.00", "type": "Dr"}


@pytest.fixture
def six_ledgers(acme):
    """Six ledgers in assorted groups, and the balance each should have: {id: signed paise}."""
    groups = ["cash_in_hand", "sundry_debtors", "sales_accounts", "capital_account"]
    return {ledger(acme, f"L{n}", groups[n % 4]): 0 for n in range(6)}


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5),
                          st.integers(1, 10**11), st.integers(0, 364)),
                min_size=40, max_size=100))
def test_trial_balance_agrees_with_every_voucher_posted(acme, six_ledgers, vouchers):
    """Random balanced vouchers (a few hundred over the examples, which share the books):
    every ledger's closing balance is the sum of its entries, and total debits equal total
    credits."""
    expected, ids = six_ledgers, list(six_ledgers)
    for debit, credit, paise, day in vouchers:
        if debit == credit:
            continue
        amount = str(Decimal(paise) / 100)
        date = f"2026-{(day // 31) % 12 + 1:02d}-{day % 28 + 1:02d}"
        post(acme, ids[debit], ids[credit], amount, date=date)
        expected[ids[debit]] += paise
        expected[ids[credit]] -= paise
    report = acme.get("/api/reports/trial-balance?as_of=2027-03-31").json["data"]
    assert report["total_debit"] == report["total_credit"]
    assert len(report["rows"]) == 6
    for row in report["rows"]:
        signed = expected[row["ledger_id"]]
        assert (Decimal(row["debit"]) - Decimal(row["credit"])) * 100 == signed


def test_reports_are_per_tenant(acme, zenith, books):
    post(acme, books["cash"], books["capital"], "100.00")
    cash = ledger(zenith, "Z")
    assert zenith.get("/api/reports/trial-balance?as_of=2027-01-01").json["data"]["rows"] == [
        {"ledger_id": cash, "ledger_name": "Z", "debit": "0.00", "credit": "0.00"}]
    assert group_id(zenith, "cash_in_hand")
    for n in range(4):
        ledger(zenith, f"Z{n}")
    their = ledger(zenith, "Z-last")
    assert zenith.get(f"/api/reports/ledger/{their}?from=2026-01-01&to=2027-01-01"
                      ).status_code == 200
    assert acme.get(f"/api/reports/ledger/{their}?from=2026-01-01&to=2027-01-01"
                    ).status_code == 404
