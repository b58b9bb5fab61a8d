"""Tenants' lifecycle for platform admins under /api/admin/tenants: sign-up (provisioning),
listing, details, changes, suspension, and deletion after a final backup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NotRequired

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict

from api.accounting.fields import GSTIN
from api.audit import admin_audit
from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.db import databases, main_session, master_session
from api.errors import CONFLICT, ApiError
from api.filters import matching, where_given
from api.listing import PageQuery, paginate
from api.metrics import metrics
from api.models.main import SubscriptionPlan
from api.models.master import TenantMaster
from api.operations import get_or_404
from api.platform.commissions import record_signup_referral
from api.responses import Answers, envelope, iso, ok, shown
from api.schemas import Code, Email, IdPath, Name, Password, Subdomain, refuse_null
from api.tenancy.backends import BackendError
from api.tenancy.backups import BackupError, backup_database, read_manifest
from api.tenancy.migrations import Tier
from api.tenancy.provisioning import (
    ProvisioningError,
    SignUp,
    SignUpInvalid,
    TenantConflict,
    drop_tenant_database,
    provision_tenant,
    tenant_db_user,
)
from api.tenancy.registry import LIVE_STATUSES

bp = admin_blueprint("admin_tenants", __name__, "tenants", url_prefix="/api/admin/tenants")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_name: Name
    subdomain: Subdomain
    email: Email
    admin_password: Password | None = None
    referral_code: Code | None = None
    plan: Code | None = None


COLUMNS = {"plan": "subscription_plan"}


@shown
class TenantJson(TypedDict):
    id: int
    subdomain: str
    company_name: str
    contact_name: str | None
    email: str
    phone: str | None
    gstin: str | None
    status: str
    status_reason: str | None
    db_name: str | None
    db_server: str
    moving_to: str | None  # the server a move under way copies it to
    plan: str | None
    referral_code: str | None
    storage_limit_mb: int
    created_at: str | None
    deleted_at: str | None
    size_mb: NotRequired[float]  # GET /tenants/{id} of a live tenant


@shown
class SignedUpAdmin(TypedDict):
    email: str
    password: NotRequired[str]  # when the sign-up gave none, the one generated


@shown
class FinalBackup(TypedDict):
    file: str
    sha256: str


def tenant_json(tenant: TenantMaster) -> TenantJson:
    """A tenant as admins see it; never its connection info."""
    return {"id": tenant.id, "subdomain": tenant.subdomain,
            "company_name": tenant.company_name, "contact_name": tenant.contact_name,
            "email": tenant.email, "phone": tenant.phone, "gstin": tenant.gstin,
            "status": tenant.status, "status_reason": tenant.status_reason,
            "db_name": tenant.db_name, "db_server": tenant.db_server,
            "moving_to": tenant.moving_to,
            "plan": tenant.subscription_plan, "referral_code": tenant.referral_code,
            "storage_limit_mb": tenant.storage_limit_mb,
            "created_at": iso(tenant.created_at), "deleted_at": iso(tenant.deleted_at)}


TENANTS = Answers("tenant", "tenants", tenant_json)
SIGNED_UP = {201: envelope("SignedUpTenant", tenant=TenantJson, admin=SignedUpAdmin)}
DELETED_TENANT = {200: envelope("DeletedTenant", tenant=TenantJson, backup=FinalBackup)}


@bp.post("", responses=SIGNED_UP | CONFLICT)
@admin_required("super_admin", "admin")
def create_tenant(body: TenantCreate):
    """Create a tenant: its row, database, migrations, admin user; 201 when it is active."""
    signup, outcomes = SignUp(**body.model_dump()), metrics().provisioning
    try:
        result = provision_tenant(databases(), signup)
    except SignUpInvalid as exc:
        outcomes.labels("invalid").inc()
        raise ApiError(400, "validation_error", str(exc), {exc.field: str(exc)}) from None
    except TenantConflict as exc:
        outcomes.labels("conflict").inc()
        raise ApiError(409, "subdomain_taken", str(exc), {"subdomain": str(exc)}) from None
    except ProvisioningError as exc:
        outcomes.labels("failed").inc()
        raise ApiError(503, "provisioning_failed",
                       f"Creating the tenant failed at step {exc.step}; nothing was left "
                       "behind and the same sign-up can be retried.",
                       headers={"Retry-After": "5"}) from None
    outcomes.labels("created").inc()
    if signup.referral_code:
        record_signup_referral(main_session(), result.tenant.id, signup.referral_code,
                               signup.plan)
    admin = {"email": result.admin_email}
    if result.generated_password:
        admin["password"] = result.generated_password
    return ok(201, tenant=tenant_json(result.tenant), admin=admin)


class TenantQuery(PageQuery):
    status: Literal["provisioning", "active", "suspended", "moving", "failed",
                    "deleted"] | None = None
    plan: str | None = Field(None, max_length=32)
    search: str | None = Field(None, max_length=100)


class TenantUpdate(BaseModel):
    """Company details, plan, storage limit, or {"status": "suspended" | "active"}."""

    model_config = ConfigDict(extra="forbid")
    company_name: Name | None = None
    contact_name: Name | None = None
    email: Email | None = None
    phone: str | None = Field(None, max_length=20)
    gstin: GSTIN | None = None
    plan: Code | None = None
    storage_limit_mb: int | None = Field(None, ge=1, le=10**7)
    status: Literal["active", "suspended"] | None = None

    _not_null = field_validator("company_name", "email", "storage_limit_mb", "status",
                                mode="before")(refuse_null)


class DeleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(max_length=30)


@bp.get("", responses=TENANTS.page)
@admin_required()
def list_tenants(query: TenantQuery):
    """Tenants by subdomain, filtered by status or plan, searched by name or subdomain."""
    select = where_given(sa.select(TenantMaster).order_by(TenantMaster.subdomain), TenantMaster,
                         query, "status")
    if query.plan:
        select = select.where(TenantMaster.subscription_plan == query.plan)
    select = matching(select, query.search, TenantMaster.company_name, TenantMaster.subdomain)
    tenants, total = paginate(master_session(), select, query)
    return ok(tenants=[tenant_json(tenant) for tenant in tenants], total=total)


@bp.get("/<int:id>", responses=TENANTS.one)
@admin_required()
def get_tenant(path: IdPath):
    """One tenant with its database's name, server and size."""
    tenant = get_or_404(master_session(), TenantMaster, path.id, "tenant")
    details = tenant_json(tenant)
    if tenant.db_name and tenant.status in LIVE_STATUSES:
        details["size_mb"] = round(
            databases().storage.size(tenant.db_server, tenant.db_name) / 2**20, 2)
    return ok(tenant=details)


@bp.patch("/<int:id>", responses=TENANTS.one | CONFLICT)
@admin_required("super_admin", "admin")
def update_tenant(path: IdPath, body: TenantUpdate):
    """Change company details, plan or storage limit, or suspend and resume the tenant.

    A status change takes effect on this process's next request and within the tenant cache's
    TTL (TENANT_CACHE_TTL_SECONDS) in others.
    """
    session = master_session()
    tenant = get_or_404(session, TenantMaster, path.id, "tenant")
    before, changes = tenant_json(tenant), body.model_dump(exclude_unset=True)
    if "status" in changes and tenant.status not in LIVE_STATUSES:
        raise ApiError(409, "not_live", f"A {tenant.status} tenant cannot be "
                       f"{'suspended' if changes['status'] == 'suspended' else 'resumed'}.")
    if changes.get("plan") and not main_session().scalar(sa.select(SubscriptionPlan.id).where(
            SubscriptionPlan.code == changes["plan"])):
        raise ApiError(400, "validation_error", "No such plan.", {"plan": "no such plan"})
    for name, value in changes.items():
        setattr(tenant, COLUMNS.get(name, name), value)
    admin_audit(main_session(), "update", "tenant", tenant.id, before, tenant_json(tenant))
    session.commit()
    main_session().commit()
    _forget(tenant.id)
    return ok(tenant=tenant_json(tenant))


@bp.delete("/<int:id>", responses=DELETED_TENANT | CONFLICT)
@admin_required("super_admin", "admin")
def delete_tenant(path: IdPath, body: DeleteBody):
    """Back the tenant's database up, then drop it (and its DB user) and mark the tenant
    deleted. No backup, no drop: a failed backup changes nothing."""
    session = master_session()
    tenant = get_or_404(session, TenantMaster, path.id, "tenant")
    if body.confirm != tenant.subdomain:
        raise ApiError(400, "validation_error", "Confirm with the tenant's subdomain.",
                       {"confirm": "must equal the tenant's subdomain"})
    if tenant.status not in LIVE_STATUSES:
        raise ApiError(409, "not_live", f"The tenant is {tenant.status}; nothing to delete.")
    dbs, before = databases(), tenant_json(tenant)
    try:
        backend = dbs.backend_of(tenant.db_server)
        backup = backup_database(backend, tenant.db_name, dbs.settings.backup_dir,
                                 tier=Tier.TENANT, tenant=tenant.subdomain)
    except (BackupError, BackendError, OSError) as exc:
        raise ApiError(503, "backup_failed", f"The final backup failed, so nothing was "
                       f"dropped: {exc}") from None
    tenant.status, tenant.deleted_at = "deleted", datetime.now(UTC).replace(tzinfo=None)
    session.commit()  # from here on no request is routed to it, and its database may go
    _forget(tenant.id)
    drop_tenant_database(dbs, tenant.db_name, tenant.db_server)
    if backend.name == "mysql":
        backend.drop_user(tenant_db_user(dbs, tenant.id))
    admin_audit(main_session(), "delete", "tenant", tenant.id, before, tenant_json(tenant))
    main_session().commit()
    return ok(tenant=tenant_json(tenant), backup={"file": str(backup),
                                                  "sha256": read_manifest(backup).sha256})


def _forget(tenant_id: int) -> None:
    """Make this process see a tenant's change at once: cache entry and connections go."""
    databases().forget_tenant(tenant_id, master_session().get(TenantMaster, tenant_id).db_name)
