"""What tenant users and platform admins have in common: how they are shown, changed, and
how the last one of the top role is kept.

Both tables have the same columns (email, password_hash, full_name, role, is_active,
last_login_at); the two APIs differ only in their session, roles and audit log.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict, create_model, field_validator
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from api.errors import ApiError
from api.listing import PageQuery
from api.responses import shown
from api.schemas import Email, Name, Password, refuse_null
from api.security import hash_password


def account_schemas(prefix: str, roles: Any) -> tuple[type, type, type]:
    """The list query, create body and update body of an account API whose roles are
    ``roles`` (a Literal), named ``<prefix>Query``, ``<prefix>Create``, ``<prefix>Update`` in
    the OpenAPI document. In an update, omitted fields stay as they are; only full_name may be
    set to null."""
    closed = ConfigDict(extra="forbid")
    query = create_model(f"{prefix}Query", __base__=PageQuery, role=(roles | None, None),
                         is_active=(bool | None, None))
    create = create_model(f"{prefix}Create", __config__=closed, email=(Email, ...),
                          password=(Password, ...), role=(roles, ...),
                          full_name=(Name | None, None))
    not_null = field_validator("role", "is_active", "password", mode="before")(refuse_null)
    update = create_model(f"{prefix}Update", __config__=closed,
                          __validators__={"not_null": not_null},
                          full_name=(Name | None, None), role=(roles | None, None),
                          is_active=(bool | None, None), password=(Password | None, None))
    return query, create, update


@shown
class AccountJson(TypedDict):
    id: int
    email: str
    full_name: str | None
    role: str
    is_active: bool
    last_login_at: str | None


def account_json(user: Any) -> AccountJson:
    """An account as the API shows it: never the password hash."""
    return {"id": user.id, "email": user.email, "full_name": user.full_name, "role": user.role,
            "is_active": user.is_active,
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None}


def ensure_email_free(session: Session, model: Any, email: str) -> None:
    if session.scalar(sa.select(model.id).where(model.email == email)) is not None:
        raise ApiError(409, "conflict", f"an account with email {email!r} exists",
                       {"email": "is taken"})


def keep_one(session: Session, model: Any, top_role: str, user: Any, changes: dict) -> None:
    """409 when ``changes`` (or deactivation) would leave no active account of ``top_role``.

    The active ones are locked (on MariaDB), so two of them demoting each other at once cannot
    both succeed.
    """
    demoted = changes.get("role", top_role) != top_role or changes.get("is_active") is False
    if not (user.role == top_role and user.is_active and demoted):
        return
    remaining = session.scalars(sa.select(model.id).where(
        model.role == top_role, model.is_active.is_(True)).with_for_update()).all()
    if set(remaining) <= {user.id}:
        raise ApiError(409, f"last_{top_role}",
                       f"This is the last active {top_role}; give another account that role "
                       "first.")


def apply_changes(user: Any, changes: dict) -> dict:
    """Set the changed fields (hashing a new password); return the account as it is now, with
    ``password_changed`` for the audit log when the password changed."""
    password = changes.pop("password", None)
    if password is not None:
        user.password_hash = hash_password(password)
    for name, value in changes.items():
        setattr(user, name, value)
    after = account_json(user)
    if password is not None:
        after["password_changed"] = True
    return after
