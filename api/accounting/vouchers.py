"""Vouchers: double entry, posted in one transaction, numbered without gaps.

A voucher is numbered per voucher type and financial year (April to March). The number comes
from ``voucher_sequences``, incremented inside the voucher's own transaction: concurrent
postings wait on that row, and a posting that fails gives its number back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

import sqlalchemy as sa
from flask import g
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from api.accounting import rules
from api.accounting.chart import BOOKKEEPERS
from api.accounting.fields import HSNSAC, BasisPoints, PositiveMilli, PositivePaise
from api.accounting.rules import format_basis_points, format_milli, format_paise
from api.audit import audit
from api.auth import tenant_user_required
from api.errors import CONFLICT, ApiError, invalid_field
from api.listing import PageQuery, paginate
from api.models.tenant import (
    GSTIN,
    BillWiseDetail,
    EInvoice,
    Ledger,
    Voucher,
    VoucherItem,
    VoucherLedgerEntry,
    VoucherSequence,
    VoucherType,
)
from api.operations import IN_TENANT, ensure_unique, get_or_404
from api.responses import Answers, ok, shown
from api.schemas import IdPath, Name, RowId
from api.tenant_request import tenant_blueprint, tenant_session

bp = tenant_blueprint("vouchers", __name__, "vouchers")
BASE_TYPES = ("contra", "payment", "receipt", "journal", "sales", "purchase", "credit_note",
              "debit_note")
WITH_ITEMS = ("sales", "purchase", "credit_note", "debit_note")
# Whose state decides CGST+SGST (same state) or IGST: the party is debited on a sale, credited
# on a purchase.
PARTY_SIDE = {"sales": "Dr", "debit_note": "Dr", "purchase": "Cr", "credit_note": "Cr"}


# ---- voucher types ----

class VoucherTypeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    base_type: Literal[BASE_TYPES]  # type: ignore[valid-type]
    abbreviation: str = Field(pattern=r"^[A-Z0-9]{1,8}$")


@shown
class VoucherTypeJson(TypedDict):
    id: int
    name: str
    base_type: str
    abbreviation: str
    is_system: bool


def voucher_type_json(vtype: VoucherType) -> VoucherTypeJson:
    return {"id": vtype.id, "name": vtype.name, "base_type": vtype.base_type,
            "abbreviation": vtype.abbreviation, "is_system": vtype.is_system}


VOUCHER_TYPES = Answers("voucher_type", "voucher_types", voucher_type_json)


@bp.get("/voucher-types", responses=VOUCHER_TYPES.page)
@tenant_user_required()
def list_voucher_types(query: PageQuery):
    """The eight seeded accounting voucher types and any custom ones."""
    types, total = paginate(tenant_session(), sa.select(VoucherType).order_by(VoucherType.id),
                            query)
    return ok(voucher_types=[voucher_type_json(t) for t in types], total=total)


@bp.post("/voucher-types", responses=VOUCHER_TYPES.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_voucher_type(body: VoucherTypeCreate):
    """A custom voucher type under a base type (numbered on its own)."""
    ensure_unique(tenant_session(), VoucherType, "name", body.name)
    return IN_TENANT.save(VoucherType(**body.model_dump(), is_system=False), "voucher_type",
                          voucher_type_json, unique_field="name")


# ---- vouchers ----

class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ledger_id: RowId
    type: Literal["Dr", "Cr"]
    amount: PositivePaise


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_name: Name
    hsn_sac: HSNSAC | None = None
    quantity: PositiveMilli
    unit: str | None = Field(None, max_length=16)
    rate: PositivePaise
    gst_rate: BasisPoints = 0
    cess: BasisPoints = 0


class BillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ledger_id: RowId
    reference_type: Literal["new_ref", "against_ref", "advance", "on_account"] = "new_ref"
    bill_reference: str = Field(min_length=1, max_length=64)
    amount: PositivePaise
    due_date: date | None = None


class VoucherCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    voucher_type: str = Field(min_length=1, max_length=64)
    date: date
    narration: str | None = Field(None, max_length=4000)
    reference: str | None = Field(None, max_length=64)
    entries: list[EntryIn] = Field(max_length=500)
    items: list[ItemIn] = Field(default_factory=list, max_length=500)
    bill_allocations: list[BillIn] = Field(default_factory=list, max_length=500)


class VoucherQuery(PageQuery):
    from_: date | None = Field(None, alias="from")
    to: date | None = None
    voucher_type: str | None = Field(None, max_length=64)
    ledger_id: RowId | None = None
    status: Literal["posted", "cancelled"] | None = None


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=255)


@shown
class EntryJson(TypedDict):
    ledger_id: int
    type: str
    amount: str


@shown
class ItemJson(TypedDict):
    item_name: str
    hsn_sac: str | None
    quantity: str
    unit: str | None
    rate: str
    taxable: str
    gst_rate: str
    cgst: str
    sgst: str
    igst: str
    cess: str


@shown
class BillJson(TypedDict):
    ledger_id: int
    reference_type: str
    bill_reference: str
    type: str
    amount: str
    due_date: str | None


@shown
class VoucherJson(TypedDict):
    id: int
    voucher_type: str
    base_type: str
    number: int
    financial_year: str
    voucher_number: str
    date: str
    narration: str | None
    reference: str | None
    total: str
    status: str
    cancelled_at: str | None
    entries: list[EntryJson]
    items: list[ItemJson]
    bill_allocations: list[BillJson]


def voucher_json(session: Session, voucher: Voucher, vtype: VoucherType) -> VoucherJson:
    entries = session.scalars(sa.select(VoucherLedgerEntry).where(
        VoucherLedgerEntry.voucher_id == voucher.id).order_by(VoucherLedgerEntry.line_no))
    items = session.scalars(sa.select(VoucherItem).where(
        VoucherItem.voucher_id == voucher.id).order_by(VoucherItem.line_no))
    bills = session.scalars(sa.select(BillWiseDetail).where(
        BillWiseDetail.voucher_id == voucher.id).order_by(BillWiseDetail.id))
    return {
        "id": voucher.id, "voucher_type": vtype.name, "base_type": vtype.base_type,
        "number": voucher.number, "financial_year": voucher.financial_year,
        "voucher_number": f"{vtype.abbreviation}/{voucher.financial_year}/{voucher.number:04d}",
        "date": voucher.voucher_date.isoformat(), "narration": voucher.narration,
        "reference": voucher.reference, "total": format_paise(voucher.total_paise),
        "status": voucher.status,
        "cancelled_at": voucher.cancelled_at.isoformat() if voucher.cancelled_at else None,
        "entries": [{"ledger_id": e.ledger_id, "type": e.entry_type,
                     "amount": format_paise(e.amount_paise)} for e in entries],
        "items": [{"item_name": i.item_name, "hsn_sac": i.hsn_sac,
                   "quantity": format_milli(i.quantity_milli), "unit": i.unit,
                   "rate": format_paise(i.rate_paise), "taxable": format_paise(i.taxable_paise),
                   "gst_rate": format_basis_points(i.gst_rate_bp),
                   "cgst": format_paise(i.cgst_paise), "sgst": format_paise(i.sgst_paise),
                   "igst": format_paise(i.igst_paise), "cess": format_paise(i.cess_paise)}
                  for i in items],
        "bill_allocations": [{"ledger_id": b.ledger_id, "reference_type": b.reference_type,
                              "bill_reference": b.bill_reference, "type": b.entry_type,
                              "amount": format_paise(b.amount_paise),
                              "due_date": b.due_date.isoformat() if b.due_date else None}
                             for b in bills],
    }


VOUCHERS = Answers("voucher", "vouchers", voucher_json)


def posted_voucher(voucher_id: int, field: str = "voucher_id") -> Voucher:
    """The tenant's voucher ``voucher_id`` if it is posted; else a 400 on ``field`` saying why."""
    voucher = tenant_session().get(Voucher, voucher_id)
    if voucher is None or voucher.status != "posted":
        raise invalid_field(field, "is cancelled" if voucher else f"no voucher with id "
                                                                 f"{voucher_id}")
    return voucher


def _check(session: Session, body: VoucherCreate) -> tuple[VoucherType, int, dict[int, Ledger]]:
    """Every rule a voucher must meet, before anything is written: 400 naming the rule."""
    vtype = session.scalar(sa.select(VoucherType).where(VoucherType.name == body.voucher_type))
    if vtype is None:
        raise invalid_field("voucher_type", f"no voucher type named {body.voucher_type!r}")
    try:
        total = rules.check_balanced((e.type, e.amount) for e in body.entries)
    except rules.RuleError as exc:
        raise invalid_field(exc.field, exc.message) from None
    ids = {entry.ledger_id for entry in body.entries} | {b.ledger_id for b in body.bill_allocations}
    ledgers = {ledger.id: ledger for ledger in session.scalars(
        sa.select(Ledger).where(Ledger.id.in_(ids)))}
    for position, entry in enumerate(body.entries):
        if entry.ledger_id not in ledgers:
            raise invalid_field(f"entries.{position}.ledger_id",
                           f"no ledger with id {entry.ledger_id} in this company")
    if body.items and vtype.base_type not in WITH_ITEMS:
        raise invalid_field("items", f"{vtype.base_type} vouchers carry no items")
    entry_sides = {}
    for entry in body.entries:
        entry_sides.setdefault(entry.ledger_id, [entry.type, 0])[1] += entry.amount
    allocated: dict[int, int] = {}
    for position, bill in enumerate(body.bill_allocations):
        if bill.ledger_id not in entry_sides:
            raise invalid_field(f"bill_allocations.{position}.ledger_id",
                           "the ledger has no entry in this voucher")
        allocated[bill.ledger_id] = allocated.get(bill.ledger_id, 0) + bill.amount
        if allocated[bill.ledger_id] > entry_sides[bill.ledger_id][1]:
            raise invalid_field(f"bill_allocations.{position}.amount",
                           "allocations exceed the ledger's amount in this voucher")
    return vtype, total, ledgers


def _ensure_sequence(session: Session, voucher_type_id: int, year: str) -> None:
    """Make the sequence row of a type and year exist, committed on its own.

    Creating it inside the voucher's transaction would let two first postings of a year
    deadlock on MySQL's gap locks; once it exists, postings only ever lock that one row.
    """
    key = (VoucherSequence.voucher_type_id == voucher_type_id,
           VoucherSequence.financial_year == year)
    if session.scalar(sa.select(VoucherSequence.last_number).where(*key)) is not None:
        return
    with Session(session.get_bind()) as own:
        own.add(VoucherSequence(voucher_type_id=voucher_type_id, financial_year=year,
                                last_number=0))
        try:
            own.commit()
        except IntegrityError:  # another posting made it first: just as good
            own.rollback()


def _next_number(session: Session, voucher_type_id: int, year: str) -> int:
    """Take the next number of a type and year; the row stays locked until commit."""
    key = (VoucherSequence.voucher_type_id == voucher_type_id,
           VoucherSequence.financial_year == year)
    session.execute(sa.update(VoucherSequence).where(*key).values(
        last_number=VoucherSequence.last_number + 1))
    return session.scalar(sa.select(VoucherSequence.last_number).where(*key))


def _intra_state(session: Session, vtype: VoucherType, body: VoucherCreate,
                 ledgers: dict[int, Ledger]) -> bool:
    """Same state (CGST+SGST) unless the party's state and our GSTIN's state differ (IGST)."""
    ours = session.scalar(sa.select(GSTIN.state_code).order_by(GSTIN.is_default.desc(),
                                                               GSTIN.id))
    side = PARTY_SIDE.get(vtype.base_type)
    party_states = {ledgers[e.ledger_id].state_code for e in body.entries
                    if e.type == side and ledgers[e.ledger_id].state_code}
    return not (ours and party_states and ours not in party_states)


@bp.post("/vouchers", responses=VOUCHERS.created)
@tenant_user_required(*BOOKKEEPERS)
def post_voucher(body: VoucherCreate):
    """Post a balanced voucher with its entries, items and bill allocations, all or nothing."""
    session = tenant_session()
    vtype, total, ledgers = _check(session, body)
    year = rules.financial_year(body.date)
    intra = _intra_state(session, vtype, body, ledgers) if body.items else True
    _ensure_sequence(session, vtype.id, year)
    number = _next_number(session, vtype.id, year)  # first write: it opens the transaction
    voucher = Voucher(voucher_type_id=vtype.id, financial_year=year, number=number,
                      voucher_date=body.date, narration=body.narration,
                      reference=body.reference, total_paise=total, created_by=g.user.id)
    session.add(voucher)
    session.flush()
    for line, entry in enumerate(body.entries, start=1):
        session.add(VoucherLedgerEntry(voucher_id=voucher.id, line_no=line,
                                       ledger_id=entry.ledger_id, entry_type=entry.type,
                                       amount_paise=entry.amount))
    for line, item in enumerate(body.items, start=1):
        taxable = rules.divide_half_up(item.quantity * item.rate, 1000)
        cgst, sgst, igst = rules.gst_split(taxable, item.gst_rate, intra)
        session.add(VoucherItem(
            voucher_id=voucher.id, line_no=line, item_name=item.item_name, hsn_sac=item.hsn_sac,
            quantity_milli=item.quantity, unit=item.unit, rate_paise=item.rate,
            taxable_paise=taxable, gst_rate_bp=item.gst_rate, cgst_paise=cgst, sgst_paise=sgst,
            igst_paise=igst, cess_paise=rules.divide_half_up(taxable * item.cess, 10_000)))
    sides = {entry.ledger_id: entry.type for entry in body.entries}
    for bill in body.bill_allocations:
        session.add(BillWiseDetail(voucher_id=voucher.id, ledger_id=bill.ledger_id,
                                   reference_type=bill.reference_type,
                                   bill_reference=bill.bill_reference,
                                   entry_type=sides[bill.ledger_id], amount_paise=bill.amount,
                                   due_date=bill.due_date))
    session.flush()
    created = voucher_json(session, voucher, vtype)
    audit(session, "create", "voucher", voucher.id, after=created)
    session.commit()
    return ok(201, voucher=created)


@bp.get("/vouchers", responses=VOUCHERS.page)
@tenant_user_required()
def list_vouchers(query: VoucherQuery):
    """Vouchers by date, filtered by period, type, ledger or status."""
    session = tenant_session()
    select = sa.select(Voucher).order_by(Voucher.voucher_date, Voucher.id)
    if query.from_:
        select = select.where(Voucher.voucher_date >= query.from_)
    if query.to:
        select = select.where(Voucher.voucher_date <= query.to)
    if query.status:
        select = select.where(Voucher.status == query.status)
    if query.voucher_type:
        select = select.join(VoucherType).where(VoucherType.name == query.voucher_type)
    if query.ledger_id:
        select = select.where(Voucher.id.in_(sa.select(VoucherLedgerEntry.voucher_id).where(
            VoucherLedgerEntry.ledger_id == query.ledger_id)))
    vouchers, total = paginate(session, select, query)
    types = {t.id: t for t in session.scalars(sa.select(VoucherType))}
    return ok(vouchers=[voucher_json(session, v, types[v.voucher_type_id]) for v in vouchers],
              total=total)


@bp.get("/vouchers/<int:id>", responses=VOUCHERS.one)
@tenant_user_required()
def get_voucher(path: IdPath):
    session = tenant_session()
    voucher = get_or_404(session, Voucher, path.id, "voucher")
    return ok(voucher=voucher_json(session, voucher,
                                   session.get(VoucherType, voucher.voucher_type_id)))


@bp.post("/vouchers/<int:id>/cancel", responses=VOUCHERS.one | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def cancel_voucher(path: IdPath, body: CancelBody):
    """Mark a voucher cancelled: it stays, keeps its number, and stops counting."""
    session = tenant_session()
    voucher = get_or_404(session, Voucher, path.id, "voucher")
    vtype = session.get(VoucherType, voucher.voucher_type_id)
    if voucher.status == "cancelled":
        raise ApiError(409, "already_cancelled", "The voucher is already cancelled.")
    if session.scalar(sa.select(EInvoice.id).where(EInvoice.voucher_id == voucher.id,
                                                    EInvoice.status == "generated")):
        raise ApiError(409, "e_invoice_generated", "Cancel the voucher's e-invoice first: "
                       "an invoice reported to the IRP cannot silently stop counting.")
    before = voucher_json(session, voucher, vtype)
    voucher.status = "cancelled"
    voucher.cancelled_at = datetime.now(UTC).replace(tzinfo=None)
    if body.reason:
        voucher.narration = f"{voucher.narration or ''}\n[cancelled: {body.reason}]".strip()
    return IN_TENANT.save(voucher, "voucher", lambda row: voucher_json(session, row, vtype),
                          before=before, action="cancel")
