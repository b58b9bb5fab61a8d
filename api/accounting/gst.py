"""GST: the rate slabs in force, the tenant's GSTINs, e-invoices (IRNs) and GSTR returns.

GSTR summaries are computed from the period's posted vouchers' item lines. Vouchers carry no
GSTIN, so a return's figures cover the whole tenant, whichever of its GSTINs it is filed for.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from api.accounting.chart import BOOKKEEPERS
from api.accounting.fields import GSTIN
from api.accounting.rules import format_basis_points, format_paise
from api.accounting.vouchers import posted_voucher
from api.audit import audit
from api.auth import tenant_user_required
from api.errors import CONFLICT, ApiError
from api.filters import where_given
from api.listing import PageQuery, paginate
from api.models.tenant import GSTIN as GSTINRow
from api.models.tenant import (
    EInvoice,
    GSTRate,
    GSTRReturn,
    Voucher,
    VoucherItem,
    VoucherType,
)
from api.operations import IN_TENANT, get_or_404, referenced
from api.responses import Answers, iso, ok, shown
from api.schemas import IdPath, Name, RowId
from api.tenant_request import tenant_blueprint, tenant_session

bp = tenant_blueprint("gst", __name__, "GST")
IST = timezone(timedelta(hours=5, minutes=30), "IST")
TAX_HEADS = ("cgst", "sgst", "igst", "cess")
RegistrationType = Literal["regular", "composition", "sez", "casual"]
ReturnType = Literal["GSTR-1", "GSTR-3B"]
# The IRP's invoice reference number: SHA-256 in hex, kept in lower case.
IRN = Annotated[str, StringConstraints(pattern="^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]
Period = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


def _ist(moment: datetime) -> datetime:
    """The IRP's times are Indian Standard Time: keep a naive one, convert one with an offset
    (a 400 naming the field when the converted time falls outside the calendar, year 1-9999)."""
    if not moment.tzinfo:
        return moment
    try:
        return moment.astimezone(IST).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 in Indian Standard Time") from None


# ---- GST rates ----

class RateQuery(PageQuery):
    on: date | None = None


@shown
class GSTRateJson(TypedDict):
    id: int
    code: str
    description: str
    hsn_sac: str | None
    rate: str
    cess_rate: str
    effective_from: str
    effective_to: str | None


def rate_json(rate: GSTRate) -> GSTRateJson:
    return {"id": rate.id, "code": rate.code, "description": rate.description,
            "hsn_sac": rate.hsn_sac, "rate": format_basis_points(rate.rate_bp),
            "cess_rate": format_basis_points(rate.cess_bp),
            "effective_from": iso(rate.effective_from), "effective_to": iso(rate.effective_to)}


RATES = Answers("gst_rate", "gst_rates", rate_json)


@bp.get("/gst-rates", responses=RATES.page)
@tenant_user_required()
def list_rates(query: RateQuery):
    """The GST slabs (seeded by migrations), all of them or those in force ``on`` a day."""
    select = sa.select(GSTRate).order_by(GSTRate.rate_bp, GSTRate.effective_from, GSTRate.id)
    if query.on is not None:
        select = select.where(GSTRate.effective_from <= query.on, sa.or_(
            GSTRate.effective_to.is_(None), GSTRate.effective_to >= query.on))
    rates, total = paginate(tenant_session(), select, query)
    return ok(gst_rates=[rate_json(rate) for rate in rates], total=total)


# ---- GSTINs ----

class GSTINCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gstin: GSTIN
    legal_name: Name
    trade_name: Name | None = None
    registration_type: RegistrationType = "regular"
    is_default: bool = False


@shown
class GSTINJson(TypedDict):
    id: int
    gstin: str
    legal_name: str
    trade_name: str | None
    state_code: str
    registration_type: str
    is_default: bool


def gstin_json(row: GSTINRow) -> GSTINJson:
    return {"id": row.id, "gstin": row.gstin, "legal_name": row.legal_name,
            "trade_name": row.trade_name, "state_code": row.state_code,
            "registration_type": row.registration_type, "is_default": row.is_default}


GSTINS = Answers("gstin", "gstins", gstin_json)


@bp.get("/gstins", responses=GSTINS.page)
@tenant_user_required()
def list_gstins(query: PageQuery):
    """The tenant's GST registrations, one per state it is registered in."""
    rows, total = paginate(tenant_session(), sa.select(GSTINRow).order_by(GSTINRow.id), query)
    return ok(gstins=[gstin_json(row) for row in rows], total=total)


@bp.post("/gstins", responses=GSTINS.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_gstin(body: GSTINCreate):
    """A registration, its state taken from the GSTIN; a new default unsets the old one."""
    session = tenant_session()
    taken = f"GSTIN {body.gstin} is already registered"
    if session.scalar(sa.select(GSTINRow.id).where(GSTINRow.gstin == body.gstin)) is not None:
        raise ApiError(409, "conflict", taken, {"gstin": "is already registered"})
    if body.is_default:
        for old in session.scalars(sa.select(GSTINRow).where(GSTINRow.is_default.is_(True))):
            before = gstin_json(old)
            old.is_default = False
            audit(session, "update", "gstin", old.id, before, gstin_json(old))
    row = GSTINRow(**body.model_dump(), state_code=body.gstin[:2])
    return IN_TENANT.save(row, "gstin", gstin_json, unique_field="gstin", conflict=taken)


@bp.get("/gstins/<int:id>", responses=GSTINS.one)
@tenant_user_required()
def get_gstin(path: IdPath):
    return ok(gstin=gstin_json(get_or_404(tenant_session(), GSTINRow, path.id, "GSTIN")))


# ---- e-invoices ----

class EInvoiceQuery(PageQuery):
    voucher_id: RowId | None = None
    status: Literal["generated", "cancelled"] | None = None


class EInvoiceCreate(BaseModel):
    """The IRP's answer for a sales voucher, recorded as it was issued."""

    model_config = ConfigDict(extra="forbid")
    voucher_id: RowId
    irn: IRN
    ack_number: str = Field(pattern="^[0-9]{1,20}$")
    ack_date: Annotated[datetime, AfterValidator(_ist)] = Field(
        description="IST; a time with an offset is converted to IST")
    signed_qr: str = Field(min_length=1, max_length=10_000)


class EInvoiceCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Name


def _sales_voucher(voucher_id: int) -> Voucher:
    """The posted sales voucher ``voucher_id``, or a 400 on ``voucher_id`` saying why not."""
    voucher = posted_voucher(voucher_id)
    base_type = tenant_session().get(VoucherType, voucher.voucher_type_id).base_type
    if base_type != "sales":
        raise ApiError(400, "validation_error", "E-invoices are for sales vouchers.",
                       {"voucher_id": f"is a {base_type} voucher, not a sales one"})
    return voucher


@shown
class EInvoiceJson(TypedDict):
    id: int
    voucher_id: int
    irn: str
    ack_number: str
    ack_date: str
    signed_qr: str
    status: str
    cancelled_at: str | None
    cancel_reason: str | None


def einvoice_json(invoice: EInvoice) -> EInvoiceJson:
    return {"id": invoice.id, "voucher_id": invoice.voucher_id, "irn": invoice.irn,
            "ack_number": invoice.ack_number, "ack_date": iso(invoice.ack_date),
            "signed_qr": invoice.signed_qr, "status": invoice.status,
            "cancelled_at": iso(invoice.cancelled_at), "cancel_reason": invoice.cancel_reason}


EINVOICES = Answers("e_invoice", "e_invoices", einvoice_json)


@bp.get("/e-invoices", responses=EINVOICES.page)
@tenant_user_required()
def list_einvoices(query: EInvoiceQuery):
    """E-invoices, newest first, filtered by voucher or status."""
    select = where_given(sa.select(EInvoice).order_by(EInvoice.id.desc()), EInvoice, query,
                         "voucher_id", "status")
    invoices, total = paginate(tenant_session(), select, query)
    return ok(e_invoices=[einvoice_json(invoice) for invoice in invoices], total=total)


@bp.post("/e-invoices", responses=EINVOICES.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_einvoice(body: EInvoiceCreate):
    """Record the IRN of a posted sales voucher: one per voucher, IRNs unique (409)."""
    session = tenant_session()
    voucher = _sales_voucher(body.voucher_id)
    for field, clash in (("voucher_id", EInvoice.voucher_id == voucher.id),
                         ("irn", EInvoice.irn == body.irn)):
        if session.scalar(sa.select(EInvoice.id).where(clash)) is not None:
            raise ApiError(409, "conflict", f"An e-invoice with this {field} exists.",
                           {field: "already has an e-invoice"})
    return IN_TENANT.save(EInvoice(**body.model_dump(), status="generated"), "e_invoice",
                          einvoice_json, unique_field="irn",
                          conflict="the voucher or the IRN already has an e-invoice")


@bp.get("/e-invoices/<int:id>", responses=EINVOICES.one)
@tenant_user_required()
def get_einvoice(path: IdPath):
    invoice = get_or_404(tenant_session(), EInvoice, path.id, "e-invoice")
    return ok(e_invoice=einvoice_json(invoice))


@bp.post("/e-invoices/<int:id>/cancel", responses=EINVOICES.one | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def cancel_einvoice(path: IdPath, body: EInvoiceCancel):
    """Record that the IRN was cancelled on the IRP, and why; a cancelled IRN stays cancelled."""
    invoice = get_or_404(tenant_session(), EInvoice, path.id, "e-invoice")
    if invoice.status == "cancelled":
        raise ApiError(409, "already_cancelled", "The e-invoice is already cancelled.")
    before = einvoice_json(invoice)
    invoice.status, invoice.cancel_reason = "cancelled", body.reason
    invoice.cancelled_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return IN_TENANT.save(invoice, "e_invoice", einvoice_json, before=before, action="cancel")


# ---- GSTR returns ----

class ReturnQuery(PageQuery):
    gstin_id: RowId | None = None
    return_type: ReturnType | None = None
    period: Period | None = None


class ReturnCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gstin_id: RowId
    return_type: ReturnType
    period: Period = Field(description="the calendar month, YYYY-MM")


@shown
class GSTRReturnJson(TypedDict):
    id: int
    gstin_id: int
    return_type: str
    period: str
    status: str
    summary: dict[str, dict[str, str | int]] | None
    arn: str | None
    filed_at: str | None


def return_json(row: GSTRReturn) -> GSTRReturnJson:
    return {"id": row.id, "gstin_id": row.gstin_id, "return_type": row.return_type,
            "period": row.period, "status": row.status,
            "summary": json.loads(row.summary) if row.summary else None, "arn": row.arn,
            "filed_at": iso(row.filed_at)}


RETURNS = Answers("gstr_return", "gstr_returns", return_json)


def _month(period: str) -> tuple[date, date]:
    """The first and last day of a "YYYY-MM" period."""
    year, month = map(int, period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _item_totals(base_type: str, first: date, last: date) -> dict[str, int]:
    """Voucher count and summed item paise of the posted ``base_type`` vouchers in the dates."""
    columns = {"taxable_value": VoucherItem.taxable_paise, "cgst": VoucherItem.cgst_paise,
               "sgst": VoucherItem.sgst_paise, "igst": VoucherItem.igst_paise,
               "cess": VoucherItem.cess_paise}
    row = tenant_session().execute(
        sa.select(sa.func.count(sa.distinct(Voucher.id)),
                  *(sa.func.coalesce(sa.func.sum(column), 0) for column in columns.values()))
        .join(Voucher, Voucher.id == VoucherItem.voucher_id)
        .join(VoucherType, VoucherType.id == Voucher.voucher_type_id)
        .where(VoucherType.base_type == base_type, Voucher.status == "posted",
               Voucher.voucher_date.between(first, last))).one()
    return dict(zip(("count", *columns), map(int, row), strict=True))


def _net(gross: dict[str, int], less: dict[str, int]) -> dict[str, int]:
    """``gross`` minus ``less`` for the taxable value and every tax head, with the tax total."""
    net = {key: gross[key] - less[key] for key in ("taxable_value", *TAX_HEADS)}
    return {**net, "total_tax": sum(net[head] for head in TAX_HEADS)}


def _money(totals: dict[str, int]) -> dict:
    """Amounts as rupee strings; counts stay numbers."""
    return {key: value if key == "count" else format_paise(value)
            for key, value in totals.items()}


def gstr_summary(return_type: str, period: str) -> dict:
    """A return's figures: GSTR-1 the outward supplies, GSTR-3B the liability, ITC and net.

    Credit notes reduce outward supplies and debit notes reduce input tax credit. The net
    payable is liability minus credit per tax head (negative: credit to carry forward); the
    order in which credit of one head may pay another (section 49) is left to the filing.
    """
    first, last = _month(period)
    sales, credit_notes = _item_totals("sales", first, last), _item_totals("credit_note",
                                                                           first, last)
    outward = _net(sales, credit_notes)
    if return_type == "GSTR-1":
        return {"sales": _money(sales), "credit_notes": _money(credit_notes),
                "net_outward": _money(outward)}
    purchases = _item_totals("purchase", first, last)
    debit_notes = _item_totals("debit_note", first, last)
    itc = _net(purchases, debit_notes)
    payable = {head: outward[head] - itc[head] for head in (*TAX_HEADS, "total_tax")}
    return {"outward_liability": _money(outward), "purchases": _money(purchases),
            "debit_notes": _money(debit_notes), "input_tax_credit": _money(itc),
            "net_payable": _money(payable)}


@bp.get("/gstr-returns", responses=RETURNS.page)
@tenant_user_required()
def list_returns(query: ReturnQuery):
    """Returns, latest period first, filtered by GSTIN, type or period."""
    select = where_given(sa.select(GSTRReturn).order_by(GSTRReturn.period.desc(), GSTRReturn.id),
                         GSTRReturn, query, "gstin_id", "return_type", "period")
    rows, total = paginate(tenant_session(), select, query)
    return ok(gstr_returns=[return_json(row) for row in rows], total=total)


@bp.post("/gstr-returns", responses=RETURNS.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_return(body: ReturnCreate):
    """A draft return with its summary computed from the period's vouchers; one per period."""
    session = tenant_session()
    referenced(session, GSTINRow, body.gstin_id, "gstin_id", "GSTIN")
    taken = f"a {body.return_type} for {body.period} exists for this GSTIN"
    if session.scalar(sa.select(GSTRReturn.id).filter_by(**body.model_dump())) is not None:
        raise ApiError(409, "conflict", taken, {"period": "already has this return"})
    row = GSTRReturn(**body.model_dump(), status="draft",
                     summary=json.dumps(gstr_summary(body.return_type, body.period)))
    return IN_TENANT.save(row, "gstr_return", return_json, unique_field="period",
                          conflict=taken)


@bp.get("/gstr-returns/<int:id>", responses=RETURNS.one)
@tenant_user_required()
def get_return(path: IdPath):
    row = get_or_404(tenant_session(), GSTRReturn, path.id, "GSTR return")
    return ok(gstr_return=return_json(row))
