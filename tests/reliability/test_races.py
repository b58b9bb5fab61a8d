"""Races: sign-ups of one subdomain, voucher numbering, payouts of one payee, and a suspension
while requests are in flight. Every request goes through HTTP (the Flask test client, one per
thread), on SQLite and on MariaDB.

tests/tenancy/test_provisioning.py races 20 sign-ups in-process and
tests/accounting/test_vouchers.py 6 threads posting one voucher type; here the sign-ups race
over HTTP, and vouchers race over several types and financial years at once (the first
postings of a year race to make its sequence row), with refused postings in between.
tests/platform/test_commissions.py races 6 payouts of one payee; here payouts of two payees
race over overlapping periods while commissions are being cancelled.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.models.tenant import AccountGroup, Ledger, Voucher, VoucherSequence, VoucherType
from tests.reliability.conftest import (
    BACKENDS,
    build_platform,
    environment_for,
    figures,
    scaled,
)

JOIN_TIMEOUT = 300  # seconds: a thread that has not finished by then is a hang, not slowness


def run_threads(count: int, target, *args) -> None:
    """Start ``count`` threads on ``target(number, *args)`` and join them, bounded; an
    exception in any of them fails the test."""
    raised = []

    def guarded(number):
        try:
            target(number, *args)
        except BaseException as exc:  # reported below, in the test's own thread
            raised.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "threads still running: a hang"
    assert raised == [], raised[:3]


# ---- 1. concurrent sign-ups of one subdomain ----

def test_concurrent_sign_ups_of_one_subdomain_over_http_make_one_tenant(platform):
    attempts = scaled(20, minimum=20)
    barrier, answers = threading.Barrier(attempts), []

    def sign_up(number):
        client = platform.app.test_client()
        barrier.wait(60)
        started = time.perf_counter()
        response = client.post("/api/admin/tenants", headers=platform.admin["admin"], json={
            "company_name": f"Racer {number}", "subdomain": "racer",
            "email": f"owner{number}@racer.in"})
        answers.append((response.status_code, response.get_json(),
                        time.perf_counter() - started))

    started = time.monotonic()
    run_threads(attempts, sign_up)
    statuses = Counter(status for status, _body, _seconds in answers)
    dbs = platform.dbs
    databases = dbs.backend.list_databases(dbs.settings.tenant_db_prefix)
    with Session(dbs.master_engine) as session:
        rows = session.execute(sa.select(TenantMaster.subdomain, TenantMaster.status)).all()
    figures(f"{attempts} concurrent sign-ups of one subdomain ({dbs.backend.name}, HTTP)",
            answers=dict(sorted(statuses.items())), databases=len(databases),
            tenant_rows=len(rows), slowest_answer_s=round(max(a[2] for a in answers), 2),
            seconds=round(time.monotonic() - started, 1))
    assert statuses == {201: 1, 409: attempts - 1}, answers
    assert {body["error"]["code"] for status, body, _ in answers if status == 409} == {
        "subdomain_taken"}
    assert [tuple(row) for row in rows] == [("racer", "active")]
    assert len(databases) == 1
    winner = next(body for status, body, _ in answers if status == 201)
    assert winner["data"]["tenant"]["db_name"] == databases[0]


# ---- 2. vouchers: unique numbers, no gaps, per type and financial year ----

VOUCHER_TYPES = ("Journal", "Contra", "Payment")
DATES = ("2026-11-25", "2027-05-02")  # two financial years: 2026-27 and 2027-28


def make_books(platform, tenant) -> dict[str, int]:
    with platform.tenant_session(tenant.subdomain) as session:
        groups = dict(session.execute(sa.select(AccountGroup.code, AccountGroup.id)).all())
        ledgers = [Ledger(name="Cash", account_group_id=groups["cash_in_hand"]),
                   Ledger(name="Bank", account_group_id=groups["bank_accounts"])]
        session.add_all(ledgers)
        session.commit()
        return {"cash": ledgers[0].id, "bank": ledgers[1].id}


def race_vouchers(platform, threads: int, postings: int) -> dict:
    """``threads`` clients each post ``postings`` vouchers over every type and both years,
    every fourth one unbalanced (refused before it takes a number)."""
    tenant = platform.add_tenant("ledgerco")
    books = make_books(platform, tenant)
    numbers, refused, errors, barrier = [], [], [], threading.Barrier(threads)

    def post(worker):
        client = platform.app.test_client()
        barrier.wait(60)
        for n in range(postings):
            vtype, day = VOUCHER_TYPES[(worker + n) % 3], DATES[(worker + n // 3) % 2]
            credit = "100.00" if n % 4 else "99.99"  # every fourth: unbalanced
            response = client.post("/api/vouchers", headers=tenant.headers, json={
                "voucher_type": vtype, "date": day, "narration": f"w{worker} n{n}",
                "entries": [{"ledger_id": books["cash"], "type": "Dr", "amount": "100.00"},
                            {"ledger_id": books["bank"], "type": "Cr", "amount": credit}]})
            body = response.get_json()
            if response.status_code == 201:
                voucher = body["data"]["voucher"]
                numbers.append((vtype, voucher["financial_year"], voucher["number"]))
            elif response.status_code == 400 and n % 4 == 0:
                refused.append(body["error"]["code"])
            else:
                errors.append((response.status_code, body))

    started = time.monotonic()
    run_threads(threads, post)
    seconds = time.monotonic() - started
    by_sequence: dict[tuple[str, str], list[int]] = {}
    for vtype, year, number in numbers:
        by_sequence.setdefault((vtype, year), []).append(number)
    with platform.tenant_session(tenant.subdomain) as session:
        stored = session.execute(sa.select(VoucherType.name, Voucher.financial_year,
                                           Voucher.number).join(VoucherType)).all()
        last = {(name, year): value for name, year, value in session.execute(
            sa.select(VoucherType.name, VoucherSequence.financial_year,
                      VoucherSequence.last_number).join(VoucherType)).all()}
    figures(f"concurrent vouchers ({platform.dbs.backend.name}, HTTP)", threads=threads,
            postings=threads * postings, posted=len(numbers), refused_unbalanced=len(refused),
            errors=len(errors), sequences=len(by_sequence),
            per_second=round(len(numbers) / seconds, 1), seconds=round(seconds, 1))
    assert errors == []
    assert set(refused) == {"validation_error"}
    assert len(refused) == threads * len(range(0, postings, 4))
    assert len(by_sequence) == len(VOUCHER_TYPES) * len(DATES)
    for sequence, taken in by_sequence.items():
        assert sorted(taken) == list(range(1, len(taken) + 1)), sequence  # unique, no gaps
        assert last[sequence] == len(taken), sequence  # no number was taken and lost
    assert sorted(tuple(row) for row in stored) == sorted(numbers)


def test_concurrent_vouchers_over_types_and_years_are_numbered_without_gaps(platform):
    race_vouchers(platform, threads=scaled(6, minimum=2), postings=scaled(8, minimum=4))


@pytest.mark.reliability
def test_many_concurrent_vouchers_are_numbered_without_gaps(platform):
    race_vouchers(platform, threads=scaled(16, minimum=2), postings=scaled(40, minimum=4))


# ---- 3. payouts of one payee ----

def race_payouts(platform, payers: int, commissions_each: int, cancellers: int) -> None:
    from api.models.main import Commission, Payout, Salesman

    with Session(platform.dbs.main_engine) as session:
        payees = [Salesman(name=f"Payee {n}", email=f"payee{n}@example.in",
                           commission_rate_bp=1000) for n in range(2)]
        session.add_all(payees)
        session.flush()
        rows = [Commission(tenant_id=1000 + n, salesman_id=payee.id, base_amount_paise=100_000,
                           rate_bp=1000, amount_paise=10_000 + n, status="approved",
                           earned_on=date(2026, 5, 1 + n % 31))
                for payee in payees for n in range(commissions_each)]
        session.add_all(rows)
        session.commit()
        payee_ids, commission_ids = [p.id for p in payees], [c.id for c in rows]
    periods = [("2026-05-01", "2026-05-31"), ("2026-05-01", "2026-05-15"),
               ("2026-05-16", "2026-05-31"), ("2026-05-10", "2026-05-20")]
    answers, cancels, barrier = Counter(), Counter(), threading.Barrier(payers + cancellers)
    unexpected = []

    def pay(number):
        client = platform.app.test_client()
        barrier.wait(60)
        start, end = periods[number % len(periods)]
        response = client.post("/api/admin/payouts", headers=platform.admin["admin"], json={
            "salesman_id": payee_ids[(number // len(periods)) % 2], "period_start": start,
            "period_end": end, "reference": f"race {number}"})
        code = response.get_json().get("error", {}).get("code") if response.status_code \
            != 201 else "created"
        answers[(response.status_code, code)] += 1
        if (response.status_code, code) not in ((201, "created"), (409, "nothing_to_pay"),
                                                (409, "payout_conflict")):
            unexpected.append(response.get_json())

    def cancel(number):
        client = platform.app.test_client()
        barrier.wait(60)
        for commission_id in commission_ids[number::max(1, cancellers) * 3]:
            response = client.post(f"/api/admin/commissions/{commission_id}/cancel",
                                   headers=platform.admin["admin"])
            cancels[response.status_code] += 1
            if response.status_code not in (200, 409):
                unexpected.append(response.get_json())

    def worker(number):
        if number < payers:
            pay(number)
        else:
            cancel(number - payers)

    started = time.monotonic()
    run_threads(payers + cancellers, worker)
    with Session(platform.dbs.main_engine) as session:
        payouts = session.execute(sa.select(Payout.id, Payout.salesman_id,
                                            Payout.amount_paise)).all()
        commissions = session.execute(sa.select(
            Commission.id, Commission.salesman_id, Commission.status, Commission.payout_id,
            Commission.amount_paise)).all()
    paid = [c for c in commissions if c.status == "paid"]
    figures(f"concurrent payouts ({platform.dbs.backend.name}, HTTP)", payout_requests=payers,
            cancel_requests=sum(cancels.values()),
            answers={f"{s} {c}": n for (s, c), n in sorted(answers.items())},
            payouts=len(payouts), commissions_paid=len(paid),
            cancelled=sum(c.status == "cancelled" for c in commissions),
            still_approved=sum(c.status == "approved" for c in commissions),
            seconds=round(time.monotonic() - started, 1))
    assert unexpected == []
    assert answers[(201, "created")] == len(payouts) >= 1
    owner = {payout.id: payout.salesman_id for payout in payouts}
    for commission in commissions:  # paid exactly when a payout of its own payee holds it
        assert (commission.status == "paid") == (commission.payout_id is not None)
        if commission.payout_id is not None:
            assert owner[commission.payout_id] == commission.salesman_id
    for payout in payouts:  # each payout is the sum of what it paid, and paid something
        its = [c.amount_paise for c in paid if c.payout_id == payout.id]
        assert its and sum(its) == payout.amount_paise


def test_concurrent_payouts_and_cancels_pay_each_commission_once(platform):
    race_payouts(platform, payers=scaled(10, minimum=4), commissions_each=scaled(20, 4),
                 cancellers=2)


@pytest.mark.reliability
def test_many_concurrent_payouts_and_cancels_pay_each_commission_once(platform):
    race_payouts(platform, payers=scaled(40, minimum=4), commissions_each=scaled(200, 4),
                 cancellers=4)


# ---- 4. a suspension while requests are in flight ----

@pytest.fixture(params=BACKENDS)
def steady_platform(request, tmp_path):
    """A platform whose tenant cache never expires during a test: what a suspension must do
    in this process is then the suspension's own doing (forget), not the TTL's. The race of a
    lookup with the suspension is tested on its own, deterministically, below."""
    built = build_platform(environment_for(request.param, request, tmp_path,
                                           TENANT_CACHE_TTL_SECONDS="3600"))
    yield built
    built.close()


def test_suspending_a_tenant_under_load_gives_200_or_403_and_then_only_403(steady_platform):
    platform = steady_platform
    tenant = platform.add_tenant("busyco")
    other = platform.add_tenant("calmco")
    threads = scaled(6, minimum=2)
    before, after = scaled(1.0, 1) * 0.6, scaled(1.0, 1) * 0.6  # seconds of load each side
    suspended_at, stop = [None], threading.Event()
    results, raised, barrier = [], [], threading.Barrier(threads + 1)

    def load(number):
        client = platform.app.test_client()
        who = tenant if number % 3 else other  # a third of the threads on a tenant left alone
        barrier.wait(60)
        while not stop.is_set():
            started = time.monotonic()
            response = client.get("/api/ledgers", headers=who.headers)
            body = response.get_json(silent=True) or {}
            results.append((who.subdomain, started, response.status_code,
                            body.get("error", {}).get("code"),
                            [ledger["name"] for ledger in body.get("data", {}).get(
                                "ledgers", [])]))

    def guarded(number):
        try:
            load(number)
        except BaseException as exc:  # reported in the test's own thread
            raised.append(exc)

    workers = [threading.Thread(target=guarded, args=(n,), daemon=True)
               for n in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait(60)
    time.sleep(before)  # load before the suspension (a duration, not a wait for anything)
    admin = platform.app.test_client()
    answer = admin.patch(f"/api/admin/tenants/{tenant.id}", headers=platform.admin["admin"],
                         json={"status": "suspended"})
    suspended_at[0] = time.monotonic()
    assert answer.status_code == 200 and answer.get_json()["data"]["tenant"]["status"] == \
        "suspended"
    time.sleep(after)
    stop.set()
    for worker in workers:
        worker.join(JOIN_TIMEOUT)
    assert not any(worker.is_alive() for worker in workers) and raised == [], raised[:3]

    mine = [r for r in results if r[0] == tenant.subdomain]
    theirs = [r for r in results if r[0] == other.subdomain]
    outcomes = Counter((status, code) for _, _, status, code, _ in mine)
    late = [r for r in mine if r[1] > suspended_at[0]]
    figures(f"suspension under load ({platform.dbs.backend.name}, HTTP)", threads=threads,
            requests=len(results), suspended_tenant={f"{s} {c or 'ok'}": n
                                                     for (s, c), n in outcomes.items()},
            started_after_suspension=len(late),
            succeeded_after_suspension=sum(r[2] == 200 for r in late),
            other_tenant_ok=f"{sum(r[2] == 200 for r in theirs)}/{len(theirs)}")
    assert set(outcomes) <= {(200, None), (403, "tenant_suspended")}, outcomes
    assert outcomes[(200, None)] > 0 and outcomes[(403, "tenant_suspended")] > 0
    assert late and all(r[2] == 403 for r in late)
    assert all(name == tenant.marker for r in mine for name in r[4])
    assert theirs and all(r[2] == 200 and r[4] == [other.marker] for r in theirs)


def test_a_lookup_racing_the_suspension_cannot_cache_the_old_status(platform):
    """A request that read the tenant as active just before an admin suspended it must not put
    that stale record into the cache after the suspension dropped it: if it did, the next
    requests would be served for the cache's TTL (TENANT_CACHE_TTL_SECONDS) after the
    suspension. The window is held open deterministically with a hook in the lookup."""
    tenant = platform.add_tenant("slowco")
    directory = platform.dbs.directory
    directory.forget(tenant.id)
    looked_up, go, racer = threading.Event(), threading.Event(), []
    real_record = directory._record

    def held_record(row):  # after the lookup read master, before it caches the answer
        record = real_record(row)
        if threading.current_thread() in racer:
            looked_up.set()
            assert go.wait(30)
        return record

    directory._record = held_record
    first = []
    thread = threading.Thread(target=lambda: first.append(platform.app.test_client().get(
        "/api/ledgers", headers=tenant.headers)), daemon=True)
    racer.append(thread)
    thread.start()
    try:
        assert looked_up.wait(30)
        answer = platform.app.test_client().patch(
            f"/api/admin/tenants/{tenant.id}", headers=platform.admin["admin"],
            json={"status": "suspended"})
        assert answer.status_code == 200
    finally:
        go.set()
        thread.join(30)
        directory._record = real_record
    assert first and first[0].status_code == 200  # it started before: either answer is fine
    after = [platform.app.test_client().get("/api/ledgers", headers=tenant.headers)
             for _ in range(3)]
    figures(f"lookup racing a suspension ({platform.dbs.backend.name})",
            racing_request=first[0].status_code,
            requests_after_suspension=[r.status_code for r in after],
            cache_ttl_s=platform.settings.tenant_cache_ttl_seconds)
    assert [r.status_code for r in after] == [403, 403, 403]
