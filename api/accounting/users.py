"""A tenant's users and their roles: admins manage users, everyone signed in may read them.

Roles: ``admin`` (everything), ``accountant`` (the books, not users), ``viewer`` (read only).
Users are never hard-deleted (vouchers and audit rows point at them): DELETE deactivates, and a
deactivated user's tokens stop working because ``tenant_user_required`` checks ``is_active``
(at once in this process, within TENANT_CACHE_TTL_SECONDS in the others).
No endpoint ever returns the password hash.
"""

from __future__ import annotations

from typing import Literal

from api.accounts import Accounts, account_schemas
from api.accounts import account_json as user_json
from api.auth import forget_user, tenant_user_required
from api.errors import CONFLICT
from api.models.tenant import User
from api.operations import IN_TENANT
from api.responses import Answers, ok
from api.schemas import IdPath
from api.tenant_request import tenant_blueprint

bp = tenant_blueprint("users", __name__, "users")
Role = Literal["admin", "accountant", "viewer"]


UserQuery, UserCreate, UserUpdate = account_schemas("User", Role)
USERS = Answers("user", "users", user_json)
ACCOUNTS = Accounts(User, IN_TENANT, top_role="admin", entity="user", what="user")


@bp.get("/users", responses=USERS.page)
@tenant_user_required()
def list_users(query: UserQuery):
    """The tenant's users by email, filtered by role or by whether they are active."""
    users, total = ACCOUNTS.page(query)
    return ok(users=[user_json(user) for user in users], total=total)


@bp.post("/users", responses=USERS.created | CONFLICT)
@tenant_user_required("admin")
def create_user(body: UserCreate):
    """A user with a role; the email is unique in the tenant (409), the password is hashed."""
    return ACCOUNTS.create(body)


@bp.get("/users/<int:id>", responses=USERS.one)
@tenant_user_required()
def get_user(path: IdPath):
    return ok(user=user_json(ACCOUNTS.get(path.id)))


@bp.patch("/users/<int:id>", responses=USERS.one | CONFLICT)
@tenant_user_required("admin")
def update_user(path: IdPath, body: UserUpdate):
    """Rename, change role, (de)activate or set a new password; the last admin stays one."""
    answer = ACCOUNTS.update(path.id, body)
    forget_user(path.id)
    return answer


@bp.delete("/users/<int:id>", responses=USERS.one | CONFLICT)
@tenant_user_required("admin")
def deactivate_user(path: IdPath):
    """Deactivate a user (vouchers and audit rows keep pointing at them); returns the user."""
    answer = ACCOUNTS.deactivate(path.id)
    forget_user(path.id)
    return answer
