"""TDS (tax deducted at source) recorded against vouchers: section, rate, base and tax amounts."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from api.accounting.chart import BOOKKEEPERS
from api.accounting.fields import PAN, BasisPoints, Paise, PositivePaise
from api.accounting.rules import (
    BASIS_POINTS_PER_UNIT,
    divide_half_up,
    format_basis_points,
    format_paise,
)
from api.accounting.vouchers import posted_voucher
from api.auth import tenant_user_required
from api.errors import invalid_field
from api.filters import where_given
from api.listing import PageQuery, paginate
from api.models.tenant import Ledger, TDSDetail
from api.operations import IN_TENANT, get_or_404, referenced
from api.responses import Answers, ok, shown
from api.schemas import IdPath, RowId
from api.tenant_request import tenant_blueprint, tenant_session

bp = tenant_blueprint("tds", __name__, "TDS")

# The TDS sections of the Income-tax Act, 1961 a deduction may cite.
SECTIONS = {
    "192": "Salary", "192A": "Provident fund withdrawals", "193": "Interest on securities",
    "194": "Dividends", "194A": "Interest other than on securities",
    "194B": "Lottery and crossword winnings", "194BA": "Online game winnings",
    "194BB": "Horse race winnings", "194C": "Contractors", "194D": "Insurance commission",
    "194DA": "Life insurance payouts", "194E": "Non-resident sportsmen and associations",
    "194EE": "National Savings Scheme deposits", "194G": "Lottery ticket commission",
    "194H": "Commission and brokerage", "194I": "Rent", "194IA": "Immovable property purchase",
    "194IB": "Rent paid by individuals and HUFs", "194IC": "Joint development agreements",
    "194J": "Professional and technical fees", "194K": "Mutual fund units",
    "194LA": "Compensation on compulsory acquisition", "194LB": "Infrastructure debt fund interest",
    "194LBA": "Business trust income", "194LBB": "Investment fund units",
    "194LBC": "Securitisation trust income", "194LC": "Interest on foreign borrowings",
    "194M": "Contract work, commission and fees paid by individuals and HUFs",
    "194N": "Cash withdrawals", "194O": "E-commerce operators", "194P": "Senior citizens",
    "194Q": "Purchase of goods", "194R": "Business perquisites",
    "194S": "Virtual digital assets", "194T": "Partners' remuneration and interest",
    "195": "Other payments to non-residents", "196A": "Non-residents' mutual fund income",
    "196B": "Offshore fund units", "196C": "Foreign currency bonds and GDRs",
    "196D": "Foreign institutional investors' securities income",
}


def _section(text: str) -> str:
    """A section from ``SECTIONS``, in upper case ("194c" is 194C)."""
    section = text.strip().upper()
    if section not in SECTIONS:
        raise ValueError("is not a TDS section (192 to 196D, like 194C or 194J)")
    return section


Section = Annotated[str, Field(max_length=8), AfterValidator(_section)]


class TDSQuery(PageQuery):
    voucher_id: RowId | None = None
    section: Section | None = None
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to")


class TDSCreate(BaseModel):
    """A deduction; ``tds_amount`` defaults to ``base_amount * rate``, half-up to the paisa."""

    model_config = ConfigDict(extra="forbid")
    voucher_id: RowId
    section: Section
    rate: BasisPoints
    base_amount: PositivePaise
    tds_amount: Paise | None = None
    deductee_pan: PAN
    deductee_ledger_id: RowId | None = None
    deducted_on: date


@shown
class TDSDetailJson(TypedDict):
    id: int
    voucher_id: int
    section: str
    section_name: str | None
    rate: str
    base_amount: str
    tds_amount: str
    deductee_pan: str
    deductee_ledger_id: int | None
    deducted_on: str


def tds_json(row: TDSDetail) -> TDSDetailJson:
    return {"id": row.id, "voucher_id": row.voucher_id, "section": row.section,
            "section_name": SECTIONS.get(row.section), "rate": format_basis_points(row.rate_bp),
            "base_amount": format_paise(row.base_amount_paise),
            "tds_amount": format_paise(row.tds_amount_paise), "deductee_pan": row.deductee_pan,
            "deductee_ledger_id": row.deductee_ledger_id,
            "deducted_on": row.deducted_on.isoformat()}


TDS_DETAILS = Answers("tds_detail", "tds_details", tds_json)


@bp.get("/tds-details", responses=TDS_DETAILS.page)
@tenant_user_required()
def list_tds(query: TDSQuery):
    """Deductions by date, filtered by voucher, section or a date range (both ends included)."""
    select = where_given(sa.select(TDSDetail).order_by(TDSDetail.deducted_on, TDSDetail.id),
                         TDSDetail, query, "voucher_id", "section")
    if query.date_from is not None:
        select = select.where(TDSDetail.deducted_on >= query.date_from)
    if query.date_to is not None:
        select = select.where(TDSDetail.deducted_on <= query.date_to)
    rows, total = paginate(tenant_session(), select, query)
    return ok(tds_details=[tds_json(row) for row in rows], total=total)


@bp.post("/tds-details", responses=TDS_DETAILS.created)
@tenant_user_required(*BOOKKEEPERS)
def create_tds(body: TDSCreate):
    """A deduction against a posted voucher, and the deductee's ledger when given."""
    session = tenant_session()
    posted_voucher(body.voucher_id)
    ledger = referenced(session, Ledger, body.deductee_ledger_id, "deductee_ledger_id", "ledger")
    if ledger and ledger.pan and ledger.pan != body.deductee_pan:
        raise invalid_field("deductee_pan", f"does not match the ledger's PAN ({ledger.pan})")
    tds_paise = body.tds_amount
    if tds_paise is None:
        tds_paise = divide_half_up(body.base_amount * body.rate, BASIS_POINTS_PER_UNIT)
    elif tds_paise > body.base_amount:
        raise invalid_field("tds_amount", "must not be more than base_amount")
    row = TDSDetail(voucher_id=body.voucher_id, section=body.section,
                    deductee_ledger_id=body.deductee_ledger_id, deductee_pan=body.deductee_pan,
                    rate_bp=body.rate, base_amount_paise=body.base_amount,
                    tds_amount_paise=tds_paise, deducted_on=body.deducted_on)
    return IN_TENANT.save(row, "tds_detail", tds_json)


@bp.get("/tds-details/<int:id>", responses=TDS_DETAILS.one)
@tenant_user_required()
def get_tds(path: IdPath):
    row = get_or_404(tenant_session(), TDSDetail, path.id, "TDS detail")
    return ok(tds_detail=tds_json(row))
