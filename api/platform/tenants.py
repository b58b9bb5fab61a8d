"""Tenants' lifecycle for platform admins: sign-up (provisioning) under /api/admin/tenants."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict

from api.auth import admin_required
from api.db import databases
from api.errors import COMMON_RESPONSES, ApiError, ErrorEnvelope
from api.models.master import TenantMaster
from api.responses import ok
from api.schemas import Code, Email, Name, Password, Subdomain
from api.tenancy.provisioning import (
    ProvisioningError,
    SignUp,
    SignUpInvalid,
    TenantConflict,
    provision_tenant,
)

bp = APIBlueprint("admin_tenants", __name__, url_prefix="/api/admin/tenants",
                  abp_tags=[Tag(name="tenants")], abp_responses=COMMON_RESPONSES,
                  abp_security=[{"bearer": []}])


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_name: Name
    subdomain: Subdomain
    email: Email
    admin_password: Password | None = None
    referral_code: Code | None = None
    plan: Code | None = None


def tenant_json(tenant: TenantMaster) -> dict:
    """A tenant as admins see it; never its connection info."""
    return {"id": tenant.id, "subdomain": tenant.subdomain,
            "company_name": tenant.company_name, "email": tenant.email,
            "status": tenant.status, "db_name": tenant.db_name, "db_server": tenant.db_server,
            "plan": tenant.subscription_plan, "referral_code": tenant.referral_code,
            "storage_limit_mb": tenant.storage_limit_mb,
            "created_at": tenant.created_at.isoformat() if tenant.created_at else None}


@bp.post("", responses={201: None, 409: ErrorEnvelope, 503: ErrorEnvelope})
@admin_required("super_admin", "admin")
def create_tenant(body: TenantCreate):
    """Create a tenant: its row, database, migrations, admin user; 201 when it is active."""
    signup = SignUp(**body.model_dump())
    try:
        result = provision_tenant(databases(), signup)
    except SignUpInvalid as exc:
        raise ApiError(400, "validation_error", str(exc), {exc.field: str(exc)}) from None
    except TenantConflict as exc:
        raise ApiError(409, "subdomain_taken", str(exc), {"subdomain": str(exc)}) from None
    except ProvisioningError as exc:
        raise ApiError(503, "provisioning_failed",
                       f"Creating the tenant failed at step {exc.step}; nothing was left "
                       "behind and the same sign-up can be retried.",
                       headers={"Retry-After": "5"}) from None
    admin = {"email": result.admin_email}
    if result.generated_password:
        admin["password"] = result.generated_password
    return ok(201, tenant=tenant_json(result.tenant), admin=admin)
