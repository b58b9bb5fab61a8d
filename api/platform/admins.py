"""Platform admin users: super admins manage them; every admin may read the list.

Roles: ``super_admin`` (everything), ``admin`` (tenants and the sales network), ``support``
(read only). Admins are never hard-deleted (the audit log points at them): DELETE
deactivates, and the last active super admin stays one.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa

from api.accounts import (
    account_json,
    account_schemas,
    apply_changes,
    ensure_email_free,
    keep_one,
)
from api.audit import admin_audit
from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.db import main_session
from api.errors import CONFLICT, ApiError
from api.listing import paginate
from api.models.main import AdminUser
from api.responses import Answers, ok
from api.schemas import IdPath
from api.security import hash_password

bp = admin_blueprint("admin_users", __name__, "admin users", url_prefix="/api/admin/users")
Role = Literal["super_admin", "admin", "support"]


AdminQuery, AdminCreate, AdminUpdate = account_schemas("Admin", Role)
ADMINS = Answers("admin_user", "admin_users", account_json)


def admin_or_404(admin_id: int) -> AdminUser:
    admin = main_session().get(AdminUser, admin_id)
    if admin is None:
        raise ApiError(404, "not_found", f"No admin user with id {admin_id}.")
    return admin


@bp.get("", responses=ADMINS.page)
@admin_required()
def list_admins(query: AdminQuery):
    select = sa.select(AdminUser).order_by(AdminUser.email)
    if query.role is not None:
        select = select.where(AdminUser.role == query.role)
    if query.is_active is not None:
        select = select.where(AdminUser.is_active.is_(query.is_active))
    admins, total = paginate(main_session(), select, query)
    return ok(admin_users=[account_json(admin) for admin in admins], total=total)


@bp.post("", responses=ADMINS.created | CONFLICT)
@admin_required("super_admin")
def create_admin(body: AdminCreate):
    session = main_session()
    ensure_email_free(session, AdminUser, body.email)
    admin = AdminUser(email=body.email, password_hash=hash_password(body.password),
                      role=body.role, full_name=body.full_name)
    session.add(admin)
    session.flush()
    admin_audit(session, "create", "admin_user", admin.id, after=account_json(admin))
    session.commit()
    return ok(201, admin_user=account_json(admin))


@bp.get("/<int:id>", responses=ADMINS.one)
@admin_required()
def get_admin(path: IdPath):
    return ok(admin_user=account_json(admin_or_404(path.id)))


@bp.patch("/<int:id>", responses=ADMINS.one | CONFLICT)
@admin_required("super_admin")
def update_admin(path: IdPath, body: AdminUpdate):
    """Rename, change role, (de)activate or set a password; the last super admin stays."""
    session, admin = main_session(), admin_or_404(path.id)
    before, changes = account_json(admin), body.model_dump(exclude_unset=True)
    keep_one(session, AdminUser, "super_admin", admin, changes)
    admin_audit(session, "update", "admin_user", admin.id, before, apply_changes(admin, changes))
    session.commit()
    return ok(admin_user=account_json(admin))


@bp.delete("/<int:id>", responses=ADMINS.one | CONFLICT)
@admin_required("super_admin")
def deactivate_admin(path: IdPath):
    """Deactivate an admin (their tokens stop working at once); returns the admin."""
    session, admin = main_session(), admin_or_404(path.id)
    before = account_json(admin)
    keep_one(session, AdminUser, "super_admin", admin, {"is_active": False})
    admin.is_active = False
    admin_audit(session, "deactivate", "admin_user", admin.id, before, account_json(admin))
    session.commit()
    return ok(admin_user=account_json(admin))
