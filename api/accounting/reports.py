"""Reports computed from posted vouchers: the trial balance and a ledger's account.

Each runs a fixed number of grouped queries, whatever the number of vouchers. Cancelled
vouchers do not count. Reports are not paginated lists: a trial balance is only meaningful
whole, and a ledger account pages its entries but keeps the running balance exact.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from pydantic import Field
from typing_extensions import TypedDict

from api.accounting.rules import CREDIT, DEBIT, closing_balance, format_paise
from api.auth import tenant_user_required
from api.listing import PageQuery
from api.models.tenant import Ledger, Voucher, VoucherLedgerEntry, VoucherType
from api.operations import get_or_404
from api.responses import envelope, ok, shown
from api.schemas import IdPath, QueryModel
from api.tenant_request import tenant_blueprint, tenant_session

bp = tenant_blueprint("reports", __name__, "reports")
DIFFERENCE = "Difference in opening balances"


class TrialBalanceQuery(QueryModel):
    as_of: date


class LedgerReportQuery(PageQuery):
    from_: date = Field(alias="from")
    to: date


def _movements(until: date | None = None, since: date | None = None,
               before: date | None = None,
               ledger_id: int | None = None) -> dict[tuple[int, str], int]:
    """Sum of posted entries per (ledger, Dr/Cr), in a date range: ``since`` and ``until``
    included, ``before`` not (the day before 0001-01-01 is no date)."""
    query = (sa.select(VoucherLedgerEntry.ledger_id, VoucherLedgerEntry.entry_type,
                       sa.func.sum(VoucherLedgerEntry.amount_paise))
             .join(Voucher, Voucher.id == VoucherLedgerEntry.voucher_id)
             .where(Voucher.status == "posted")
             .group_by(VoucherLedgerEntry.ledger_id, VoucherLedgerEntry.entry_type))
    if until is not None:
        query = query.where(Voucher.voucher_date <= until)
    if since is not None:
        query = query.where(Voucher.voucher_date >= since)
    if before is not None:
        query = query.where(Voucher.voucher_date < before)
    if ledger_id is not None:
        query = query.where(VoucherLedgerEntry.ledger_id == ledger_id)
    return {(ledger, side): int(total) for ledger, side, total in tenant_session().execute(query)}


def _signed(paise: int, side: str) -> int:
    return paise if side == DEBIT else -paise


@shown
class BalanceJson(TypedDict):
    amount: str
    type: str


@shown
class TrialBalanceRow(TypedDict):
    ledger_id: int | None
    ledger_name: str
    debit: str
    credit: str


@shown
class LedgerAccountEntry(TypedDict):
    voucher_id: int
    date: str
    voucher_number: str
    narration: str | None
    debit: str
    credit: str
    balance: BalanceJson


@shown
class LedgerName(TypedDict):
    id: int
    name: str


TRIAL_BALANCE = {200: envelope("TrialBalance", as_of=str, rows=list[TrialBalanceRow],
                               total_debit=str, total_credit=str)}
LEDGER_ACCOUNT = {200: envelope(
    "LedgerAccount", ledger=LedgerName, from_=(str, Field(alias="from")), to=str,
    opening_balance=BalanceJson, entries=list[LedgerAccountEntry], total=int,
    closing_balance=BalanceJson)}


def _balance_json(signed: int) -> BalanceJson:
    return {"amount": format_paise(abs(signed)), "type": DEBIT if signed >= 0 else CREDIT}


@bp.get("/reports/trial-balance", responses=TRIAL_BALANCE)
@tenant_user_required()
def trial_balance(query: TrialBalanceQuery):
    """Every ledger's closing debit or credit on a day, opening balances included.

    When the opening balances themselves do not balance, the difference is shown on a row of
    its own (as Tally does), so total debits always equal total credits.
    """
    moved = _movements(until=query.as_of)
    rows, total_debit, total_credit = [], 0, 0
    for ledger in tenant_session().scalars(sa.select(Ledger).order_by(Ledger.name, Ledger.id)):
        paise, side = closing_balance(ledger.opening_balance_paise, ledger.opening_balance_type,
                                      moved.get((ledger.id, DEBIT), 0),
                                      moved.get((ledger.id, CREDIT), 0))
        debit, credit = (paise, 0) if side == DEBIT else (0, paise)
        total_debit, total_credit = total_debit + debit, total_credit + credit
        rows.append({"ledger_id": ledger.id, "ledger_name": ledger.name,
                     "debit": format_paise(debit), "credit": format_paise(credit)})
    if total_debit != total_credit:
        gap = total_debit - total_credit
        debit, credit = (0, gap) if gap > 0 else (-gap, 0)
        rows.append({"ledger_id": None, "ledger_name": DIFFERENCE,
                     "debit": format_paise(debit), "credit": format_paise(credit)})
        total_debit, total_credit = total_debit + debit, total_credit + credit
    return ok(as_of=query.as_of.isoformat(), rows=rows, total_debit=format_paise(total_debit),
              total_credit=format_paise(total_credit))


@bp.get("/reports/ledger/<int:id>", responses=LEDGER_ACCOUNT)
@tenant_user_required()
def ledger_account(path: IdPath, query: LedgerReportQuery):
    """A ledger's opening balance on ``from``, its entries to ``to`` with a running balance,
    and its closing balance; entries come a page at a time."""
    session = tenant_session()
    ledger = get_or_404(tenant_session(), Ledger, path.id, "ledger")
    before = {side: total for (_, side), total in _movements(
        before=query.from_, ledger_id=ledger.id).items()}
    opening = (_signed(ledger.opening_balance_paise, ledger.opening_balance_type)
               + before.get(DEBIT, 0) - before.get(CREDIT, 0))
    in_range = (sa.select(VoucherLedgerEntry, Voucher, VoucherType)
                .join(Voucher, Voucher.id == VoucherLedgerEntry.voucher_id)
                .join(VoucherType, VoucherType.id == Voucher.voucher_type_id)
                .where(VoucherLedgerEntry.ledger_id == ledger.id, Voucher.status == "posted",
                       Voucher.voucher_date >= query.from_, Voucher.voucher_date <= query.to)
                .order_by(Voucher.voucher_date, Voucher.id, VoucherLedgerEntry.line_no))
    moved = _movements(since=query.from_, until=query.to, ledger_id=ledger.id)
    closing = opening + moved.get((ledger.id, DEBIT), 0) - moved.get((ledger.id, CREDIT), 0)
    total = session.scalar(sa.select(sa.func.count()).select_from(in_range.subquery()))
    earlier = in_range.with_only_columns(
        VoucherLedgerEntry.entry_type, VoucherLedgerEntry.amount_paise).limit(query.offset)
    running = opening + sum(_signed(amount, side) for side, amount in session.execute(earlier))
    entries = []
    for entry, voucher, vtype in session.execute(
            in_range.limit(query.limit).offset(query.offset)):
        running += _signed(entry.amount_paise, entry.entry_type)
        entries.append({
            "voucher_id": voucher.id, "date": voucher.voucher_date.isoformat(),
            "voucher_number": f"{vtype.abbreviation}/{voucher.financial_year}/"
                              f"{voucher.number:04d}",
            "narration": voucher.narration,
            "debit": format_paise(entry.amount_paise if entry.entry_type == DEBIT else 0),
            "credit": format_paise(entry.amount_paise if entry.entry_type == CREDIT else 0),
            "balance": _balance_json(running)})
    return ok(ledger={"id": ledger.id, "name": ledger.name}, **{"from": query.from_.isoformat()},
              to=query.to.isoformat(), opening_balance=_balance_json(opening), entries=entries,
              total=total, closing_balance=_balance_json(closing))
