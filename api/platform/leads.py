"""Leads with their activity log, and sales targets with what was achieved, under /api/admin.

A lead's status moves (``TRANSITIONS``) new -> contacted -> qualified -> converted, any open
status -> lost, and lost -> new (reopened); converted is final. Any other change is a 409
``invalid_transition``. Each change made through PATCH also writes a ``status_change``
activity ("new -> contacted"), so the activity log is the lead's history; POSTed activities are
calls, emails, meetings and notes. Deleting a lead deletes its activities, which belong to it
alone.

A target sets a number of tenants and a revenue for one salesman or one distributor over a
period. ``achieved`` is counted from the commissions table: the tenants whose sign-up in the
period earned the owner a commission (not cancelled), and the sum of those commissions' base
amounts (the plans' prices). A distributor earns one on sign-ups through its own codes and
through the codes of the salesmen it had at sign-up time (see ``record_referral``), so both
count for it; a salesman's target counts their own codes. Targets are deleted for good (nothing
refers to them).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from flask import g
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from typing_extensions import TypedDict

from api.accounting.fields import Paise
from api.accounting.rules import format_paise
from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.db import main_session, master_session
from api.errors import CONFLICT, ApiError, invalid_field
from api.filters import matching, where_given
from api.listing import PageQuery, paginate
from api.models.main import Commission, Distributor, Lead, LeadActivity, Salesman, Target
from api.models.master import TenantMaster
from api.operations import IN_MAIN, get_or_404, referenced
from api.platform.sales import (
    WRITERS,
    Moment,
    Phone,
    check_period,
    columns,
    owned_by,
    owner,
    set_fields,
    utc_now,
)
from api.responses import DELETED, Answers, iso, ok, shown
from api.schemas import Email, IdPath, Name, RowId, refuse_null

bp = admin_blueprint("admin_leads", __name__, "leads and targets")
LeadStatus = Literal["new", "contacted", "qualified", "converted", "lost"]
TRANSITIONS = {"new": ("contacted", "lost"), "contacted": ("qualified", "lost"),
               "qualified": ("converted", "lost"), "converted": (), "lost": ("new",)}
Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                         max_length=10_000)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


# ---- leads ----

@shown
class LeadJson(TypedDict):
    id: int
    name: str
    company_name: str | None
    email: str | None
    phone: str | None
    source: str | None
    status: str
    salesman_id: int | None
    distributor_id: int | None
    converted_tenant_id: int | None
    notes: str | None
    created_at: str | None


def lead_json(lead: Lead) -> LeadJson:
    return {"id": lead.id, "name": lead.name, "company_name": lead.company_name,
            "email": lead.email, "phone": lead.phone, "source": lead.source,
            "status": lead.status, "salesman_id": lead.salesman_id,
            "distributor_id": lead.distributor_id,
            "converted_tenant_id": lead.converted_tenant_id, "notes": lead.notes,
            "created_at": iso(lead.created_at)}


LEADS = Answers("lead", "leads", lead_json)


class LeadQuery(PageQuery):
    status: LeadStatus | None = None
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    search: str | None = Field(None, max_length=100)


class LeadCreate(BaseModel):
    """A new lead (status "new"), optionally assigned to a salesman and/or a distributor."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    company_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    source: Source | None = None
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    notes: Notes | None = None


class LeadUpdate(BaseModel):
    """Omitted fields stay; converted_tenant_id (a tenant's id) only on a converted lead."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    company_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    source: Source | None = None
    status: LeadStatus | None = None
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    converted_tenant_id: RowId | None = None
    notes: Notes | None = None

    _not_null = field_validator("name", "status", mode="before")(refuse_null)


def _check_assignees(values: dict) -> None:
    session = main_session()
    referenced(session, Salesman, values.get("salesman_id"), "salesman_id", "salesman")
    referenced(session, Distributor, values.get("distributor_id"), "distributor_id",
               "distributor")


def _activity(lead_id: int, activity_type: str, notes: str | None,
              occurred_at: datetime | None = None) -> LeadActivity:
    """An activity of ``lead_id`` by the signed-in admin, by default happening now."""
    return LeadActivity(lead_id=lead_id, admin_user_id=g.admin.id, activity_type=activity_type,
                        notes=notes, occurred_at=occurred_at or utc_now())


@bp.get("/leads", responses=LEADS.page)
@admin_required()
def list_leads(query: LeadQuery):
    """Leads, newest first, filtered by status or assignee, searched by name, company, email."""
    select = where_given(sa.select(Lead).order_by(Lead.id.desc()), Lead, query, "status",
                         "salesman_id", "distributor_id")
    select = matching(select, query.search, Lead.name, Lead.company_name, Lead.email)
    leads, total = paginate(main_session(), select, query)
    return ok(leads=[lead_json(lead) for lead in leads], total=total)


@bp.post("/leads", responses=LEADS.created)
@admin_required(*WRITERS)
def create_lead(body: LeadCreate):
    values = body.model_dump()
    _check_assignees(values)
    return IN_MAIN.save(Lead(**values, status="new"), "lead", lead_json)


@bp.get("/leads/<int:id>", responses=LEADS.one)
@admin_required()
def get_lead(path: IdPath):
    return ok(lead=lead_json(get_or_404(main_session(), Lead, path.id, "lead")))


@bp.patch("/leads/<int:id>", responses=LEADS.one | CONFLICT)
@admin_required(*WRITERS)
def update_lead(path: IdPath, body: LeadUpdate):
    """Change a lead; a status change must follow TRANSITIONS and is logged as an activity."""
    lead = get_or_404(main_session(), Lead, path.id, "lead")
    before, changes = lead_json(lead), body.model_dump(exclude_unset=True)
    _check_assignees(changes)
    status = changes.get("status", lead.status)
    allowed = TRANSITIONS[lead.status]
    if status != lead.status and status not in allowed:
        rule = f"can become {' or '.join(allowed)}" if allowed else "is final"
        raise ApiError(409, "invalid_transition",
                       f"A {lead.status} lead cannot become {status}: it {rule}.",
                       {"status": f"a {lead.status} lead {rule}"})
    tenant_id = changes.get("converted_tenant_id")
    if tenant_id is not None:
        if status != "converted":
            raise invalid_field("converted_tenant_id", "only a converted lead has a tenant")
        if master_session().get(TenantMaster, tenant_id) is None:
            raise invalid_field("converted_tenant_id", f"no tenant with id {tenant_id}")
    if status != lead.status:
        main_session().add(_activity(lead.id, "status_change", f"{lead.status} -> {status}"))
    set_fields(lead, changes)
    return IN_MAIN.save(lead, "lead", lead_json, before=before)


@bp.delete("/leads/<int:id>", responses=DELETED | CONFLICT)
@admin_required(*WRITERS)
def delete_lead(path: IdPath):
    """Delete a lead and its activities."""
    lead = get_or_404(main_session(), Lead, path.id, "lead")
    main_session().execute(sa.delete(LeadActivity).where(LeadActivity.lead_id == lead.id))
    return IN_MAIN.delete(lead, "lead", lead_json)


# ---- lead activities ----

@shown
class LeadActivityJson(TypedDict):
    id: int
    lead_id: int
    admin_user_id: int | None
    activity_type: str
    notes: str | None
    occurred_at: str | None


def activity_json(activity: LeadActivity) -> LeadActivityJson:
    return {"id": activity.id, "lead_id": activity.lead_id,
            "admin_user_id": activity.admin_user_id, "activity_type": activity.activity_type,
            "notes": activity.notes, "occurred_at": iso(activity.occurred_at)}


ACTIVITIES = Answers("lead_activity", "lead_activities", activity_json)


class ActivityQuery(PageQuery):
    activity_type: Literal["call", "email", "meeting", "note", "status_change"] | None = None


class ActivityCreate(BaseModel):
    """A call, email, meeting or note; status changes are logged by PATCH on the lead."""

    model_config = ConfigDict(extra="forbid")
    activity_type: Literal["call", "email", "meeting", "note"]
    notes: Notes | None = None
    occurred_at: Moment | None = None


@bp.get("/leads/<int:id>/activities", responses=ACTIVITIES.page)
@admin_required()
def list_activities(path: IdPath, query: ActivityQuery):
    """A lead's activities, latest first, filtered by type."""
    get_or_404(main_session(), Lead, path.id, "lead")
    select = where_given(sa.select(LeadActivity).where(LeadActivity.lead_id == path.id)
                         .order_by(LeadActivity.occurred_at.desc(), LeadActivity.id.desc()),
                         LeadActivity, query, "activity_type")
    activities, total = paginate(main_session(), select, query)
    return ok(lead_activities=[activity_json(a) for a in activities], total=total)


@bp.post("/leads/<int:id>/activities", responses=ACTIVITIES.created)
@admin_required(*WRITERS)
def create_activity(path: IdPath, body: ActivityCreate):
    """Log a call, email, meeting or note on a lead (by default as happening now)."""
    get_or_404(main_session(), Lead, path.id, "lead")
    return IN_MAIN.save(_activity(path.id, body.activity_type, body.notes, body.occurred_at),
                        "lead_activity", activity_json)


# ---- targets ----

@shown
class AchievedJson(TypedDict):
    tenants: int
    revenue: str


@shown
class TargetJson(TypedDict):
    id: int
    salesman_id: int | None
    distributor_id: int | None
    period_start: str | None
    period_end: str | None
    target_tenants: int
    target_revenue: str
    achieved: AchievedJson


def achieved(target: Target) -> AchievedJson:
    """Tenants signed in the target's period through its owner, and their plans' prices."""
    tenants, revenue = main_session().execute(sa.select(
        sa.func.count(sa.distinct(Commission.tenant_id)),
        sa.func.coalesce(sa.func.sum(Commission.base_amount_paise), 0)).where(
        owned_by(Commission, target.salesman_id, target.distributor_id),
        Commission.status != "cancelled",
        Commission.earned_on.between(target.period_start, target.period_end))).one()
    return {"tenants": tenants, "revenue": format_paise(int(revenue))}


def target_json(target: Target) -> TargetJson:
    """A target with what its owner achieved in the period."""
    return {"id": target.id, "salesman_id": target.salesman_id,
            "distributor_id": target.distributor_id,
            "period_start": iso(target.period_start), "period_end": iso(target.period_end),
            "target_tenants": target.target_tenants,
            "target_revenue": format_paise(target.target_revenue_paise),
            "achieved": achieved(target)}


TARGETS = Answers("target", "targets", target_json)


class TargetQuery(PageQuery):
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    on: date | None = None


class TargetCreate(BaseModel):
    """For exactly one of a salesman and a distributor; the period's days are inclusive."""

    model_config = ConfigDict(extra="forbid")
    salesman_id: RowId | None = None
    distributor_id: RowId | None = None
    period_start: date
    period_end: date
    target_tenants: int = Field(0, ge=0, le=10**6)
    target_revenue: Paise = 0


class TargetUpdate(BaseModel):
    """The period and the goals; the owner stays."""

    model_config = ConfigDict(extra="forbid")
    period_start: date | None = None
    period_end: date | None = None
    target_tenants: int | None = Field(None, ge=0, le=10**6)
    target_revenue: Paise | None = None

    _not_null = field_validator("period_start", "period_end", "target_tenants",
                                "target_revenue", mode="before")(refuse_null)


@bp.get("/targets", responses=TARGETS.page)
@admin_required()
def list_targets(query: TargetQuery):
    """Targets, latest period first, filtered by owner or by a day (``on``) in the period."""
    select = where_given(sa.select(Target).order_by(Target.period_start.desc(),
                                                    Target.id.desc()),
                         Target, query, "salesman_id", "distributor_id")
    if query.on is not None:
        select = select.where(Target.period_start <= query.on, Target.period_end >= query.on)
    targets, total = paginate(main_session(), select, query)
    return ok(targets=[target_json(target) for target in targets], total=total)


@bp.post("/targets", responses=TARGETS.created)
@admin_required(*WRITERS)
def create_target(body: TargetCreate):
    values = {**body.model_dump(), **owner(body.salesman_id, body.distributor_id)}
    check_period(body.period_start, body.period_end)
    return IN_MAIN.save(Target(**columns(values)), "target", target_json)


@bp.get("/targets/<int:id>", responses=TARGETS.one)
@admin_required()
def get_target(path: IdPath):
    return ok(target=target_json(get_or_404(main_session(), Target, path.id, "target")))


@bp.patch("/targets/<int:id>", responses=TARGETS.one)
@admin_required(*WRITERS)
def update_target(path: IdPath, body: TargetUpdate):
    target = get_or_404(main_session(), Target, path.id, "target")
    before, changes = target_json(target), body.model_dump(exclude_unset=True)
    check_period(changes.get("period_start", target.period_start),
                 changes.get("period_end", target.period_end))
    set_fields(target, changes)
    return IN_MAIN.save(target, "target", target_json, before=before)


@bp.delete("/targets/<int:id>", responses=DELETED)
@admin_required(*WRITERS)
def delete_target(path: IdPath):
    target = get_or_404(main_session(), Target, path.id, "target")
    return IN_MAIN.delete(target, "target", target_json)
