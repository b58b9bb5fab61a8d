"""A tenant's users and their roles: admins manage users, everyone signed in may read them.

Roles: ``admin`` (everything), ``accountant`` (the books, not users), ``viewer`` (read only).
Users are never hard-deleted (vouchers and audit rows point at them): DELETE deactivates, and a
deactivated user's tokens stop working because ``tenant_user_required`` checks ``is_active``.
No endpoint ever returns the password hash.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from flask_openapi3 import Tag

from api.accounting.chart import SECURITY, IdPath, commit_or_conflict, get_or_404
from api.accounts import account_json as user_json
from api.accounts import account_schemas, apply_changes, ensure_email_free, keep_one
from api.audit import audit
from api.auth import tenant_user_required
from api.errors import CONFLICT
from api.listing import paginate
from api.models.tenant import User
from api.responses import Answers, ok
from api.security import hash_password
from api.tenant_request import tenant_blueprint, tenant_session

bp = tenant_blueprint("users", __name__, Tag(name="users"))
Role = Literal["admin", "accountant", "viewer"]


UserQuery, UserCreate, UserUpdate = account_schemas("User", Role)
USERS = Answers("user", "users", user_json)


@bp.get("/users", security=SECURITY, responses=USERS.page)
@tenant_user_required()
def list_users(query: UserQuery):
    """The tenant's users by email, filtered by role or by whether they are active."""
    select = sa.select(User).order_by(User.email)
    if query.role is not None:
        select = select.where(User.role == query.role)
    if query.is_active is not None:
        select = select.where(User.is_active.is_(query.is_active))
    users, total = paginate(tenant_session(), select, query)
    return ok(users=[user_json(user) for user in users], total=total)


@bp.post("/users", security=SECURITY, responses=USERS.created | CONFLICT)
@tenant_user_required("admin")
def create_user(body: UserCreate):
    """A user with a role; the email is unique in the tenant (409), the password is hashed."""
    session = tenant_session()
    ensure_email_free(session, User, body.email)
    user = User(email=body.email, password_hash=hash_password(body.password), role=body.role,
                full_name=body.full_name, is_active=True)
    session.add(user)
    session.flush()
    audit(session, "create", "user", user.id, after=user_json(user))
    commit_or_conflict("email", "is taken")
    return ok(201, user=user_json(user))


@bp.get("/users/<int:id>", security=SECURITY, responses=USERS.one)
@tenant_user_required()
def get_user(path: IdPath):
    return ok(user=user_json(get_or_404(User, path.id, "user")))


@bp.patch("/users/<int:id>", security=SECURITY, responses=USERS.one | CONFLICT)
@tenant_user_required("admin")
def update_user(path: IdPath, body: UserUpdate):
    """Rename, change role, (de)activate or set a new password; the last admin stays one."""
    user = get_or_404(User, path.id, "user")
    before = user_json(user)
    changes = body.model_dump(exclude_unset=True)
    keep_one(tenant_session(), User, "admin", user, changes)
    after = apply_changes(user, changes)
    audit(tenant_session(), "update", "user", user.id, before, after)
    tenant_session().commit()
    return ok(user=user_json(user))


@bp.delete("/users/<int:id>", security=SECURITY, responses=USERS.one | CONFLICT)
@tenant_user_required("admin")
def deactivate_user(path: IdPath):
    """Deactivate a user (vouchers and audit rows keep pointing at them); returns the user."""
    user = get_or_404(User, path.id, "user")
    before = user_json(user)
    keep_one(tenant_session(), User, "admin", user, {"is_active": False})
    user.is_active = False
    audit(tenant_session(), "deactivate", "user", user.id, before, user_json(user))
    tenant_session().commit()
    return ok(user=user_json(user))
