"""The sales network under /api/admin: distributors, salesmen, subscription plans, referral codes.

Money arrives as rupees (a decimal string or number) and leaves as a string with two decimals
("1234.50"); commission and discount rates are percentages ("2.50" is 250 basis points). Any
admin may read; writes take a super_admin or admin and each lands in the main audit log.

Deleting: a row nothing points at is deleted for good (it was made by mistake). A row that other
rows point at is refused with 409 ``in_use`` naming them, and is retired with PATCH
``{"is_active": false}`` instead, so commissions and payouts keep their history:
a distributor with salesmen, referral codes, commissions, payouts, leads or targets; a salesman
with referral codes, commissions, payouts, leads or targets; a plan with commissions or tenants;
a referral code with rewards or commissions.

A plan's code and a referral code's text and owner never change once made: tenants and
commissions refer to them. Rate and price changes apply to commissions recorded afterwards.

The other sales modules (``leads``, ``commissions``) share this module's helpers.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from typing_extensions import TypedDict

from api.accounting.fields import GSTIN, PAN, BasisPoints, Paise, StateCode
from api.accounting.rules import format_basis_points, format_paise
from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.db import main_session, master_session
from api.errors import CONFLICT, ApiError, invalid_field
from api.filters import matching, where_given
from api.listing import PageQuery, paginate
from api.models.main import (
    Commission,
    Distributor,
    Lead,
    Payout,
    ReferralCode,
    ReferralReward,
    Salesman,
    SubscriptionPlan,
    Target,
)
from api.models.master import TenantMaster
from api.operations import IN_MAIN, ensure_unique, get_or_404, referenced
from api.responses import DELETED, Answers, iso, ok, shown
from api.schemas import Code, Email, IdPath, Name, RowId, refuse_null

WRITERS = ("super_admin", "admin")
REFERRAL_CODE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
# API field -> column, where the API speaks rupees and percentages and the table paise and bp.
COLUMNS = {"commission_rate": "commission_rate_bp", "price": "price_paise",
           "discount": "discount_bp", "target_revenue": "target_revenue_paise"}


bp = admin_blueprint("admin_sales", __name__, "sales network")


def _referral_code(value: str) -> str:
    """Referral codes are stored upper case: letters, digits and single inner hyphens."""
    value = value.upper()
    if not REFERRAL_CODE.fullmatch(value):
        raise ValueError("must be letters, digits and hyphens, like SALES-2026")
    return value


Phone = Annotated[str, StringConstraints(strip_whitespace=True,
                                         pattern=r"^\+?[0-9][0-9 -]{5,18}$")]
ReferralCodeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                                    max_length=32),
                             AfterValidator(_referral_code)]


def _as_stored(moment: datetime) -> datetime:
    """A client's datetime as the tables store it (see ``utc_now``); no zone is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


Moment = Annotated[datetime, AfterValidator(_as_stored)]
PlanName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


# ---- helpers the sales modules share ----

def utc_now() -> datetime:
    """Now, as the tables store moments: naive UTC, whole seconds (MariaDB's DATETIME)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def columns(values: dict) -> dict:
    """API field names to column names (``price`` -> ``price_paise``)."""
    return {COLUMNS.get(name, name): value for name, value in values.items()}


def set_fields(row: Any, changes: dict) -> None:
    for name, value in columns(changes).items():
        setattr(row, name, value)


def check_period(start: date, end: date) -> None:
    if end < start:
        raise invalid_field("period_end", "must not be before period_start")


def owner(salesman_id: int | None, distributor_id: int | None) -> dict:
    """Exactly one of a salesman and a distributor, existing: the owner columns of a code,
    target or payout. A 400 names the fields otherwise."""
    if (salesman_id is None) == (distributor_id is None):
        message = "give exactly one of salesman_id and distributor_id"
        raise ApiError(400, "validation_error", message,
                       {"salesman_id": message, "distributor_id": message})
    referenced(main_session(), Salesman, salesman_id, "salesman_id", "salesman")
    referenced(main_session(), Distributor, distributor_id, "distributor_id", "distributor")
    return {"salesman_id": salesman_id, "distributor_id": distributor_id}


def owned_by(model, salesman_id: int | None, distributor_id: int | None):
    """The criterion "``model`` belongs to this salesman or distributor"."""
    if salesman_id is not None:
        return model.salesman_id == salesman_id
    return model.distributor_id == distributor_id


def count(*criteria) -> int:
    return main_session().scalar(sa.select(sa.func.count()).where(*criteria))


def ensure_unused(what: str, uses: dict[str, int]) -> None:
    """409 naming what still refers to a row; such rows are deactivated, not deleted."""
    found = [f"{label} ({number})" for label, number in uses.items() if number]
    if found:
        raise ApiError(409, "in_use", f"The {what} is referred to by {', '.join(found)}; it "
                       "cannot be deleted. Deactivate it instead (PATCH is_active false).")


class ActiveQuery(PageQuery):
    is_active: bool | None = None


# ---- distributors ----

@shown
class DistributorJson(TypedDict):
    id: int
    name: str
    company_name: str | None
    email: str
    phone: str | None
    gstin: str | None
    pan: str | None
    state_code: str | None
    commission_rate: str
    is_active: bool


def distributor_json(distributor: Distributor) -> DistributorJson:
    return {"id": distributor.id, "name": distributor.name,
            "company_name": distributor.company_name, "email": distributor.email,
            "phone": distributor.phone, "gstin": distributor.gstin, "pan": distributor.pan,
            "state_code": distributor.state_code,
            "commission_rate": format_basis_points(distributor.commission_rate_bp),
            "is_active": distributor.is_active}


DISTRIBUTORS = Answers("distributor", "distributors", distributor_json)


class DistributorQuery(ActiveQuery):
    search: str | None = Field(None, max_length=100)


class DistributorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    company_name: Name | None = None
    email: Email
    phone: Phone | None = None
    gstin: GSTIN | None = None
    pan: PAN | None = None
    state_code: StateCode | None = None
    commission_rate: BasisPoints = 0
    is_active: bool = True


class DistributorUpdate(BaseModel):
    """Omitted fields stay as they are; the optional details may be set to null."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    company_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    gstin: GSTIN | None = None
    pan: PAN | None = None
    state_code: StateCode | None = None
    commission_rate: BasisPoints | None = None
    is_active: bool | None = None

    _not_null = field_validator("name", "email", "commission_rate", "is_active",
                                mode="before")(refuse_null)


def _check_tax_ids(distributor: Distributor) -> None:
    """A GSTIN starts with its state code and holds its PAN: the three must agree."""
    gstin = distributor.gstin
    if gstin and distributor.state_code and gstin[:2] != distributor.state_code:
        raise invalid_field("state_code", f"the GSTIN is registered in state {gstin[:2]}")
    if gstin and distributor.pan and gstin[2:12] != distributor.pan:
        raise invalid_field("pan", f"the GSTIN holds PAN {gstin[2:12]}")


@bp.get("/distributors", responses=DISTRIBUTORS.page)
@admin_required()
def list_distributors(query: DistributorQuery):
    """Distributors by name, filtered by is_active, searched by name, company or email."""
    select = where_given(sa.select(Distributor).order_by(Distributor.name, Distributor.id),
                         Distributor, query, "is_active")
    select = matching(select, query.search, Distributor.name, Distributor.company_name,
                      Distributor.email)
    distributors, total = paginate(main_session(), select, query)
    return ok(distributors=[distributor_json(d) for d in distributors], total=total)


@bp.post("/distributors", responses=DISTRIBUTORS.created | CONFLICT)
@admin_required(*WRITERS)
def create_distributor(body: DistributorCreate):
    """A distributor; the email is unique among distributors (409)."""
    ensure_unique(main_session(), Distributor, "email", body.email)
    distributor = Distributor(**columns(body.model_dump()))
    _check_tax_ids(distributor)
    return IN_MAIN.save(distributor, "distributor", distributor_json, unique_field="email")


@bp.get("/distributors/<int:id>", responses=DISTRIBUTORS.one)
@admin_required()
def get_distributor(path: IdPath):
    distributor = get_or_404(main_session(), Distributor, path.id, "distributor")
    return ok(distributor=distributor_json(distributor))


@bp.patch("/distributors/<int:id>", responses=DISTRIBUTORS.one | CONFLICT)
@admin_required(*WRITERS)
def update_distributor(path: IdPath, body: DistributorUpdate):
    distributor = get_or_404(main_session(), Distributor, path.id, "distributor")
    before, changes = distributor_json(distributor), body.model_dump(exclude_unset=True)
    if "email" in changes:
        ensure_unique(main_session(), Distributor, "email", changes["email"], distributor.id)
    set_fields(distributor, changes)
    _check_tax_ids(distributor)
    return IN_MAIN.save(distributor, "distributor", distributor_json, before=before,
                        unique_field="email")


@bp.delete("/distributors/<int:id>", responses=DELETED | CONFLICT)
@admin_required(*WRITERS)
def delete_distributor(path: IdPath):
    """Delete a distributor nothing refers to (409 naming what does otherwise)."""
    distributor = get_or_404(main_session(), Distributor, path.id, "distributor")
    ensure_unused("distributor", {
        label: count(model.distributor_id == distributor.id) for label, model in (
            ("salesmen", Salesman), ("referral codes", ReferralCode),
            ("commissions", Commission), ("payouts", Payout), ("leads", Lead),
            ("targets", Target))})
    return IN_MAIN.delete(distributor, "distributor", distributor_json)


# ---- salesmen ----

@shown
class SalesmanJson(TypedDict):
    id: int
    name: str
    email: str
    phone: str | None
    pan: str | None
    distributor_id: int | None
    commission_rate: str
    is_active: bool


def salesman_json(salesman: Salesman) -> SalesmanJson:
    return {"id": salesman.id, "name": salesman.name, "email": salesman.email,
            "phone": salesman.phone, "pan": salesman.pan,
            "distributor_id": salesman.distributor_id,
            "commission_rate": format_basis_points(salesman.commission_rate_bp),
            "is_active": salesman.is_active}


SALESMEN = Answers("salesman", "salesmen", salesman_json)


class SalesmanQuery(ActiveQuery):
    distributor_id: RowId | None = None
    search: str | None = Field(None, max_length=100)


class SalesmanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    email: Email
    phone: Phone | None = None
    pan: PAN | None = None
    distributor_id: RowId | None = None
    commission_rate: BasisPoints = 0
    is_active: bool = True


class SalesmanUpdate(BaseModel):
    """Omitted fields stay; distributor_id null takes the salesman out of their distributor."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    pan: PAN | None = None
    distributor_id: RowId | None = None
    commission_rate: BasisPoints | None = None
    is_active: bool | None = None

    _not_null = field_validator("name", "email", "commission_rate", "is_active",
                                mode="before")(refuse_null)


@bp.get("/salesmen", responses=SALESMEN.page)
@admin_required()
def list_salesmen(query: SalesmanQuery):
    """Salesmen by name, filtered by distributor or is_active, searched by name or email."""
    select = where_given(sa.select(Salesman).order_by(Salesman.name, Salesman.id), Salesman,
                         query, "distributor_id", "is_active")
    select = matching(select, query.search, Salesman.name, Salesman.email)
    salesmen, total = paginate(main_session(), select, query)
    return ok(salesmen=[salesman_json(s) for s in salesmen], total=total)


@bp.post("/salesmen", responses=SALESMEN.created | CONFLICT)
@admin_required(*WRITERS)
def create_salesman(body: SalesmanCreate):
    """A salesman, on their own or under a distributor; the email is unique (409)."""
    referenced(main_session(), Distributor, body.distributor_id, "distributor_id",
               "distributor")
    ensure_unique(main_session(), Salesman, "email", body.email)
    return IN_MAIN.save(Salesman(**columns(body.model_dump())), "salesman", salesman_json,
                        unique_field="email")


@bp.get("/salesmen/<int:id>", responses=SALESMEN.one)
@admin_required()
def get_salesman(path: IdPath):
    return ok(salesman=salesman_json(get_or_404(main_session(), Salesman, path.id, "salesman")))


@bp.patch("/salesmen/<int:id>", responses=SALESMEN.one | CONFLICT)
@admin_required(*WRITERS)
def update_salesman(path: IdPath, body: SalesmanUpdate):
    salesman = get_or_404(main_session(), Salesman, path.id, "salesman")
    before, changes = salesman_json(salesman), body.model_dump(exclude_unset=True)
    referenced(main_session(), Distributor, changes.get("distributor_id"), "distributor_id",
               "distributor")
    if "email" in changes:
        ensure_unique(main_session(), Salesman, "email", changes["email"], salesman.id)
    set_fields(salesman, changes)
    return IN_MAIN.save(salesman, "salesman", salesman_json, before=before,
                        unique_field="email")


@bp.delete("/salesmen/<int:id>", responses=DELETED | CONFLICT)
@admin_required(*WRITERS)
def delete_salesman(path: IdPath):
    """Delete a salesman nothing refers to (409 naming what does otherwise)."""
    salesman = get_or_404(main_session(), Salesman, path.id, "salesman")
    ensure_unused("salesman", {
        label: count(model.salesman_id == salesman.id) for label, model in (
            ("referral codes", ReferralCode), ("commissions", Commission),
            ("payouts", Payout), ("leads", Lead), ("targets", Target))})
    return IN_MAIN.delete(salesman, "salesman", salesman_json)


# ---- subscription plans ----

BillingPeriod = Literal["monthly", "quarterly", "yearly"]


@shown
class PlanJson(TypedDict):
    id: int
    code: str
    name: str
    price: str
    billing_period: str
    max_users: int | None
    storage_limit_mb: int
    is_active: bool


def plan_json(plan: SubscriptionPlan) -> PlanJson:
    return {"id": plan.id, "code": plan.code, "name": plan.name,
            "price": format_paise(plan.price_paise), "billing_period": plan.billing_period,
            "max_users": plan.max_users, "storage_limit_mb": plan.storage_limit_mb,
            "is_active": plan.is_active}


PLANS = Answers("subscription_plan", "subscription_plans", plan_json)


class PlanQuery(ActiveQuery):
    billing_period: BillingPeriod | None = None


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: PlanName
    price: Paise
    billing_period: BillingPeriod
    max_users: int | None = Field(None, ge=1, le=10**6)
    storage_limit_mb: int = Field(ge=1, le=10**7)
    is_active: bool = True


class PlanUpdate(BaseModel):
    """Everything but the code (tenants refer to it); max_users null means unlimited."""

    model_config = ConfigDict(extra="forbid")
    name: PlanName | None = None
    price: Paise | None = None
    billing_period: BillingPeriod | None = None
    max_users: int | None = Field(None, ge=1, le=10**6)
    storage_limit_mb: int | None = Field(None, ge=1, le=10**7)
    is_active: bool | None = None

    _not_null = field_validator("name", "price", "billing_period", "storage_limit_mb",
                                "is_active", mode="before")(refuse_null)


@bp.get("/subscription-plans", responses=PLANS.page)
@admin_required()
def list_plans(query: PlanQuery):
    """Plans by price, filtered by is_active or billing period."""
    select = where_given(sa.select(SubscriptionPlan).order_by(SubscriptionPlan.price_paise,
                                                              SubscriptionPlan.id),
                         SubscriptionPlan, query, "is_active", "billing_period")
    plans, total = paginate(main_session(), select, query)
    return ok(subscription_plans=[plan_json(plan) for plan in plans], total=total)


@bp.post("/subscription-plans", responses=PLANS.created | CONFLICT)
@admin_required(*WRITERS)
def create_plan(body: PlanCreate):
    """A plan with a unique code (409), its price in rupees, billing period and limits."""
    ensure_unique(main_session(), SubscriptionPlan, "code", body.code)
    return IN_MAIN.save(SubscriptionPlan(**columns(body.model_dump())), "subscription_plan",
                        plan_json, unique_field="code")


@bp.get("/subscription-plans/<int:id>", responses=PLANS.one)
@admin_required()
def get_plan(path: IdPath):
    plan = get_or_404(main_session(), SubscriptionPlan, path.id, "plan")
    return ok(subscription_plan=plan_json(plan))


@bp.patch("/subscription-plans/<int:id>", responses=PLANS.one)
@admin_required(*WRITERS)
def update_plan(path: IdPath, body: PlanUpdate):
    plan = get_or_404(main_session(), SubscriptionPlan, path.id, "plan")
    before = plan_json(plan)
    set_fields(plan, body.model_dump(exclude_unset=True))
    return IN_MAIN.save(plan, "subscription_plan", plan_json, before=before)


@bp.delete("/subscription-plans/<int:id>", responses=DELETED | CONFLICT)
@admin_required(*WRITERS)
def delete_plan(path: IdPath):
    """Delete a plan no commission and no tenant (master database) refers to."""
    plan = get_or_404(main_session(), SubscriptionPlan, path.id, "plan")
    tenants = master_session().scalar(sa.select(sa.func.count()).where(
        TenantMaster.subscription_plan == plan.code))
    ensure_unused("plan", {"commissions": count(Commission.subscription_plan_id == plan.id),
                           "tenants": tenants})
    return IN_MAIN.delete(plan, "subscription_plan", plan_json)


# ---- referral codes ----

@shown
class ReferralCodeJson(TypedDict):
    id: int
    code: str
    salesman_id: int | None
    distributor_id: int | None
    discount: str
    max_uses: int | None
    expires_at: str | None
    is_active: bool


def referral_code_json(code: ReferralCode) -> ReferralCodeJson:
    return {"id": code.id, "code": code.code, "salesman_id": code.salesman_id,
            "distributor_id": code.distributor_id,
            "discount": format_basis_points(code.discount_bp), "max_uses": code.max_uses,
            "expires_at": iso(code.expires_at), "is_active": code.is_active}


REFERRAL_CODES = Answers("referral_code", "referral_codes", referral_code_json)


class ReferralCodeQuery(ActiveQuery):
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None


class ReferralCodeCreate(BaseModel):
    """Owned by exactly one of a salesman and a distributor; the code is stored upper case."""

    model_config = ConfigDict(extra="forbid")
    code: ReferralCodeText
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    discount: BasisPoints = 0
    max_uses: int | None = Field(None, ge=1, le=10**9)
    expires_at: Moment | None = None
    is_active: bool = True


class ReferralCodeUpdate(BaseModel):
    """Discount, limits and state; max_uses or expires_at null lifts that limit."""

    model_config = ConfigDict(extra="forbid")
    discount: BasisPoints | None = None
    max_uses: int | None = Field(None, ge=1, le=10**9)
    expires_at: Moment | None = None
    is_active: bool | None = None

    _not_null = field_validator("discount", "is_active", mode="before")(refuse_null)


@bp.get("/referral-codes", responses=REFERRAL_CODES.page)
@admin_required()
def list_referral_codes(query: ReferralCodeQuery):
    """Referral codes by code, filtered by owner or is_active."""
    select = where_given(sa.select(ReferralCode).order_by(ReferralCode.code), ReferralCode,
                         query, "salesman_id", "distributor_id", "is_active")
    codes, total = paginate(main_session(), select, query)
    return ok(referral_codes=[referral_code_json(code) for code in codes], total=total)


@bp.post("/referral-codes", responses=REFERRAL_CODES.created | CONFLICT)
@admin_required(*WRITERS)
def create_referral_code(body: ReferralCodeCreate):
    """A code for a salesman or a distributor; codes are unique (409)."""
    values = {**body.model_dump(), **owner(body.salesman_id, body.distributor_id)}
    ensure_unique(main_session(), ReferralCode, "code", body.code)
    return IN_MAIN.save(ReferralCode(**columns(values)), "referral_code", referral_code_json,
                        unique_field="code")


@bp.get("/referral-codes/<int:id>", responses=REFERRAL_CODES.one)
@admin_required()
def get_referral_code(path: IdPath):
    return ok(referral_code=referral_code_json(get_or_404(main_session(), ReferralCode, path.id,
                                                          "referral code")))


@bp.patch("/referral-codes/<int:id>", responses=REFERRAL_CODES.one)
@admin_required(*WRITERS)
def update_referral_code(path: IdPath, body: ReferralCodeUpdate):
    code = get_or_404(main_session(), ReferralCode, path.id, "referral code")
    before = referral_code_json(code)
    set_fields(code, body.model_dump(exclude_unset=True))
    return IN_MAIN.save(code, "referral_code", referral_code_json, before=before)


@bp.delete("/referral-codes/<int:id>", responses=DELETED | CONFLICT)
@admin_required(*WRITERS)
def delete_referral_code(path: IdPath):
    """Delete a code no sign-up used (409 otherwise: deactivate it)."""
    code = get_or_404(main_session(), ReferralCode, path.id, "referral code")
    ensure_unused("referral code", {
        "rewards": count(ReferralReward.referral_code_id == code.id),
        "commissions": count(Commission.referral_code_id == code.id)})
    return IN_MAIN.delete(code, "referral_code", referral_code_json)
