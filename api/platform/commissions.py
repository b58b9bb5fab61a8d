"""Commissions and payouts under /api/admin, and ``record_referral``, the sign-up's hook.

A sign-up through a referral code (``record_referral``) records:
- a ReferralReward of type "signup" for the code: the plan's price x the code's discount;
- a Commission for the code's owner at the owner's own rate on the plan's price;
- when the owner is a salesman under a distributor, a second Commission for that distributor,
  at the distributor's own rate on the same price.
Amounts are rounded half up to the paisa. A sign-up without a plan still records them, on a
base of 0: the commissions are the record of who brought the tenant (targets count them).

Commissions move pending -> approved -> paid, and pending or approved -> cancelled; nothing
else. A payout pays a payee's approved commissions earned in a period and marks them paid with
its id. Each commission is paid once, also when payouts race: the commissions are marked paid
with ``UPDATE ... WHERE status = 'approved'``, and a payout that marks fewer than it gathered
(another one took some meanwhile) rolls back and gathers again. Nothing approved: 409
``nothing_to_pay``. Payouts, like commissions, are never deleted.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Literal, NotRequired

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from api.accounting.rules import (
    BASIS_POINTS_PER_UNIT,
    divide_half_up,
    format_basis_points,
    format_paise,
)
from api.audit import admin_audit
from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.db import main_session
from api.errors import CONFLICT, ApiError
from api.filters import where_given
from api.listing import PageQuery, paginate
from api.models.main import (
    Commission,
    Distributor,
    Payout,
    ReferralCode,
    ReferralReward,
    Salesman,
    SubscriptionPlan,
)
from api.operations import get_or_404
from api.platform.sales import (
    WRITERS,
    check_period,
    owned_by,
    owner,
    utc_now,
)
from api.responses import Answers, iso, ok, shown
from api.schemas import IdPath, RowId

bp = admin_blueprint("admin_commissions", __name__, "commissions and payouts")
CommissionStatus = Literal["pending", "approved", "paid", "cancelled"]
PAYOUT_ATTEMPTS = 3


# ---- the sign-up's hook ----

log = logging.getLogger(__name__)


class UnknownReferralCode(ValueError):
    """The referral code does not exist, is inactive, has expired or is used up."""


class UnknownPlan(ValueError):
    """No subscription plan has the code a sign-up named."""


def share(base_paise: int, rate_bp: int) -> int:
    """``rate_bp`` of ``base_paise``, rounded half up to the paisa."""
    return divide_half_up(base_paise * rate_bp, BASIS_POINTS_PER_UNIT)


def _active_code(session: Session, code: str) -> ReferralCode:
    """The active, unexpired referral code ``code`` (in any case), its row locked on MariaDB
    until the transaction ends, so sign-ups with one code take turns."""
    referral = session.scalar(sa.select(ReferralCode).where(
        ReferralCode.code == code.strip().upper()).with_for_update())
    if referral is None or not referral.is_active:
        raise UnknownReferralCode(f"no active referral code {code!r}")
    if referral.expires_at is not None and referral.expires_at <= utc_now():
        raise UnknownReferralCode(f"referral code {code!r} has expired")
    return referral


def _refuse_used_up(session: Session, referral: ReferralCode, ours: int = 0) -> None:
    """UnknownReferralCode when other sign-ups used all of the code's ``max_uses``; ``ours``
    counts this sign-up's own reward when it is already written. The count is a locking read,
    so on MariaDB it sees the latest uses, not the transaction's snapshot."""
    if referral.max_uses is None:
        return
    uses = session.scalar(sa.select(sa.func.count()).select_from(ReferralReward).where(
        ReferralReward.referral_code_id == referral.id).with_for_update())
    if uses - ours >= referral.max_uses:
        raise UnknownReferralCode(f"referral code {referral.code!r} is used up")


def _owner_column(payee: Salesman | Distributor) -> dict:
    return {"salesman_id" if isinstance(payee, Salesman) else "distributor_id": payee.id}


def check_referral_code(session: Session, code: str) -> ReferralCode:
    """The code a sign-up may use: active, unexpired, not used up; UnknownReferralCode else."""
    referral = _active_code(session, code)
    _refuse_used_up(session, referral)
    return referral


def record_referral(session: Session, *, tenant_id: int, referral_code: str,
                    plan_code: str | None, on: date) -> list[Commission]:
    """Record a tenant's sign-up through ``referral_code``: the code's reward and the
    commissions (see the module's docstring), earned ``on`` that day; returns the commissions.

    Rows are added to ``session`` (on the main database) and flushed; the caller commits, or
    rolls back on an error: UnknownReferralCode, UnknownPlan. A tenant is recorded once per
    code (the reward's unique key refuses a second time).
    """
    referral = _active_code(session, referral_code)
    plan = None
    if plan_code is not None:
        plan = session.scalar(sa.select(SubscriptionPlan).where(
            SubscriptionPlan.code == plan_code))
        if plan is None:
            raise UnknownPlan(f"no subscription plan {plan_code!r}")
    price = plan.price_paise if plan else 0
    session.add(ReferralReward(referral_code_id=referral.id, tenant_id=tenant_id,
                               reward_type="signup",
                               amount_paise=share(price, referral.discount_bp)))
    # Our use is written before uses are counted: on SQLite this write takes the database's
    # write lock, so two sign-ups cannot both take a code's last use.
    session.flush()
    _refuse_used_up(session, referral, ours=1)
    if referral.salesman_id is not None:
        salesman = session.get(Salesman, referral.salesman_id)
        payees = [salesman]
        if salesman.distributor_id is not None:
            payees.append(session.get(Distributor, salesman.distributor_id))
    else:
        payees = [session.get(Distributor, referral.distributor_id)]
    commissions = [
        Commission(tenant_id=tenant_id, referral_code_id=referral.id,
                   subscription_plan_id=plan.id if plan else None, base_amount_paise=price,
                   rate_bp=payee.commission_rate_bp,
                   amount_paise=share(price, payee.commission_rate_bp), earned_on=on,
                   **_owner_column(payee))
        for payee in payees]
    session.add_all(commissions)
    session.flush()
    return commissions


# ---- commissions ----

def record_signup_referral(session: Session, tenant_id: int, referral_code: str,
                           plan_code: str | None) -> None:
    """After a sign-up through a referral code: its reward and commissions, committed. A code
    that ran out between the sign-up's check and now costs the commission, not the tenant."""
    try:
        record_referral(session, tenant_id=tenant_id, referral_code=referral_code,
                        plan_code=plan_code, on=utc_now().date())
        session.commit()
    except (UnknownReferralCode, UnknownPlan) as exc:
        session.rollback()
        log.warning("tenant %s: referral not recorded: %s", tenant_id, exc)


@shown
class CommissionJson(TypedDict):
    id: int
    tenant_id: int
    salesman_id: int | None
    distributor_id: int | None
    referral_code_id: int | None
    subscription_plan_id: int | None
    base_amount: str
    rate: str
    amount: str
    status: str
    payout_id: int | None
    earned_on: str | None


def commission_json(commission: Commission) -> CommissionJson:
    return {"id": commission.id, "tenant_id": commission.tenant_id,
            "salesman_id": commission.salesman_id,
            "distributor_id": commission.distributor_id,
            "referral_code_id": commission.referral_code_id,
            "subscription_plan_id": commission.subscription_plan_id,
            "base_amount": format_paise(commission.base_amount_paise),
            "rate": format_basis_points(commission.rate_bp),
            "amount": format_paise(commission.amount_paise), "status": commission.status,
            "payout_id": commission.payout_id, "earned_on": iso(commission.earned_on)}


COMMISSIONS = Answers("commission", "commissions", commission_json)


class CommissionQuery(PageQuery):
    status: CommissionStatus | None = None
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    tenant_id: RowId | None = None
    from_: date | None = Field(None, alias="from")
    to: date | None = None


@bp.get("/commissions", responses=COMMISSIONS.page)
@admin_required()
def list_commissions(query: CommissionQuery):
    """Commissions, latest earned first, filtered by status, payee, tenant and earned_on
    (``from`` and ``to`` inclusive)."""
    select = where_given(
        sa.select(Commission).order_by(Commission.earned_on.desc(), Commission.id.desc()),
        Commission, query, "status", "salesman_id", "distributor_id", "tenant_id")
    if query.from_ is not None:
        select = select.where(Commission.earned_on >= query.from_)
    if query.to is not None:
        select = select.where(Commission.earned_on <= query.to)
    commissions, total = paginate(main_session(), select, query)
    return ok(commissions=[commission_json(c) for c in commissions], total=total)


@bp.get("/commissions/<int:id>", responses=COMMISSIONS.one)
@admin_required()
def get_commission(path: IdPath):
    commission = get_or_404(main_session(), Commission, path.id, "commission")
    return ok(commission=commission_json(commission))


def _move(commission_id: int, allowed: tuple[str, ...], status: str, action: str):
    """Move a commission from one of ``allowed`` to ``status``, atomically (a payout or
    another admin moving it at the same time cannot both win); 409 from any other status."""
    session = main_session()
    commission = get_or_404(main_session(), Commission, commission_id, "commission")
    before = commission_json(commission)
    moved = session.execute(sa.update(Commission).where(
        Commission.id == commission.id, Commission.status.in_(allowed)).values(status=status))
    if not moved.rowcount:
        raise ApiError(409, "invalid_status",
                       f"Only {' or '.join(allowed)} commissions can be {status}; this one "
                       f"is {before['status']}.")
    after = commission_json(commission)
    admin_audit(session, action, "commission", commission.id, before, after)
    session.commit()
    return ok(commission=after)


@bp.post("/commissions/<int:id>/approve", responses=COMMISSIONS.one | CONFLICT)
@admin_required(*WRITERS)
def approve_commission(path: IdPath):
    """pending -> approved: the commission may now be paid out."""
    return _move(path.id, ("pending",), "approved", "approve")


@bp.post("/commissions/<int:id>/cancel", responses=COMMISSIONS.one | CONFLICT)
@admin_required(*WRITERS)
def cancel_commission(path: IdPath):
    """pending or approved -> cancelled: it will never be paid; paid ones stay paid."""
    return _move(path.id, ("pending", "approved"), "cancelled", "cancel")


# ---- payouts ----

@shown
class PayoutJson(TypedDict):
    id: int
    salesman_id: int | None
    distributor_id: int | None
    period_start: str | None
    period_end: str | None
    amount: str
    reference: str | None
    paid_at: str | None
    commissions: NotRequired[list[CommissionJson]]  # a payout on its own: the ones it paid


def payout_json(payout: Payout, commissions: list[Commission] | None = None) -> PayoutJson:
    """A payout; with ``commissions``, the ones it paid too."""
    paid: PayoutJson = {
        "id": payout.id, "salesman_id": payout.salesman_id,
        "distributor_id": payout.distributor_id, "period_start": iso(payout.period_start),
        "period_end": iso(payout.period_end), "amount": format_paise(payout.amount_paise),
        "reference": payout.reference, "paid_at": iso(payout.paid_at)}
    if commissions is not None:
        paid["commissions"] = [commission_json(c) for c in commissions]
    return paid


PAYOUTS = Answers("payout", "payouts", payout_json)


class PayoutQuery(PageQuery):
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None


class PayoutCreate(BaseModel):
    """Pay one payee (a salesman or a distributor) their approved commissions of a period."""

    model_config = ConfigDict(extra="forbid")
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    period_start: date
    period_end: date
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=64)] | None = None


def _pay(payee: dict, body: PayoutCreate) -> tuple[Payout, list[Commission]]:
    """Make the payout of ``payee``'s approved commissions earned in the body's period and mark
    them paid; gather again when a concurrent payout (or a cancel) took some meanwhile."""
    session = main_session()
    for _attempt in range(PAYOUT_ATTEMPTS):
        due = session.scalars(sa.select(Commission).where(
            owned_by(Commission, payee["salesman_id"], payee["distributor_id"]),
            Commission.status == "approved",
            Commission.earned_on.between(body.period_start, body.period_end))
            .order_by(Commission.id)).all()
        if not due:
            raise ApiError(409, "nothing_to_pay", "The payee has no approved, unpaid "
                           "commissions earned in this period.")
        payout = Payout(**payee, period_start=body.period_start, period_end=body.period_end,
                        amount_paise=sum(c.amount_paise for c in due),
                        reference=body.reference, paid_at=utc_now())
        session.add(payout)
        session.flush()
        marked = session.execute(sa.update(Commission).where(
            Commission.id.in_([c.id for c in due]), Commission.status == "approved")
            .values(status="paid", payout_id=payout.id))
        if marked.rowcount == len(due):
            return payout, due
        session.rollback()
    raise ApiError(409, "payout_conflict", "The commissions kept changing while paying; "
                   "nothing was paid. Try again.")


@bp.get("/payouts", responses=PAYOUTS.page)
@admin_required()
def list_payouts(query: PayoutQuery):
    """Payouts, latest first, filtered by payee."""
    select = where_given(sa.select(Payout).order_by(Payout.id.desc()), Payout, query,
                         "salesman_id", "distributor_id")
    payouts, total = paginate(main_session(), select, query)
    return ok(payouts=[payout_json(payout) for payout in payouts], total=total)


@bp.post("/payouts", responses=PAYOUTS.created | CONFLICT)
@admin_required(*WRITERS)
def create_payout(body: PayoutCreate):
    """Pay a payee's approved commissions earned from period_start to period_end, once."""
    payee = owner(body.salesman_id, body.distributor_id)
    check_period(body.period_start, body.period_end)
    payout, commissions = _pay(payee, body)
    paid = payout_json(payout, commissions)
    admin_audit(main_session(), "create", "payout", payout.id, after=paid)
    main_session().commit()
    return ok(201, payout=paid)


@bp.get("/payouts/<int:id>", responses=PAYOUTS.one)
@admin_required()
def get_payout(path: IdPath):
    """A payout with the commissions it paid."""
    payout = get_or_404(main_session(), Payout, path.id, "payout")
    commissions = main_session().scalars(sa.select(Commission).where(
        Commission.payout_id == payout.id).order_by(Commission.id)).all()
    return ok(payout=payout_json(payout, commissions))
