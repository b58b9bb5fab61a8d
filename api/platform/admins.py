"""Platform admin users: super admins manage them; every admin may read the list.

Roles: ``super_admin`` (everything), ``admin`` (tenants and the sales network), ``support``
(read only). Admins are never hard-deleted (the audit log points at them): DELETE
deactivates, and the last active super admin stays one.
"""

from __future__ import annotations

from typing import Literal

from api.accounts import Accounts, account_json, account_schemas
from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.errors import CONFLICT
from api.models.main import AdminUser
from api.operations import IN_MAIN
from api.responses import Answers, ok
from api.schemas import IdPath

bp = admin_blueprint("admin_users", __name__, "admin users", url_prefix="/api/admin/users")
Role = Literal["super_admin", "admin", "support"]


AdminQuery, AdminCreate, AdminUpdate = account_schemas("Admin", Role)
ADMINS = Answers("admin_user", "admin_users", account_json)
ACCOUNTS = Accounts(AdminUser, IN_MAIN, top_role="super_admin", entity="admin_user",
                    what="admin user")


@bp.get("", responses=ADMINS.page)
@admin_required()
def list_admins(query: AdminQuery):
    admins, total = ACCOUNTS.page(query)
    return ok(admin_users=[account_json(admin) for admin in admins], total=total)


@bp.post("", responses=ADMINS.created | CONFLICT)
@admin_required("super_admin")
def create_admin(body: AdminCreate):
    return ACCOUNTS.create(body)


@bp.get("/<int:id>", responses=ADMINS.one)
@admin_required()
def get_admin(path: IdPath):
    return ok(admin_user=account_json(ACCOUNTS.get(path.id)))


@bp.patch("/<int:id>", responses=ADMINS.one | CONFLICT)
@admin_required("super_admin")
def update_admin(path: IdPath, body: AdminUpdate):
    """Rename, change role, (de)activate or set a password; the last super admin stays."""
    return ACCOUNTS.update(path.id, body)


@bp.delete("/<int:id>", responses=ADMINS.one | CONFLICT)
@admin_required("super_admin")
def deactivate_admin(path: IdPath):
    """Deactivate an admin (their tokens stop working at once); returns the admin."""
    return ACCOUNTS.deactivate(path.id)
