"""What tenant users and platform admins have in common: their request models, how they are
shown, and ``Accounts``, the one implementation of listing, creating, changing and
deactivating them (keeping the last one of the top role).

Both tables have the same columns (email, password_hash, full_name, role, is_active,
last_login_at); the two APIs differ only in their session, roles and audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict, create_model, field_validator
from typing_extensions import TypedDict

from api.errors import ApiError
from api.filters import where_given
from api.listing import PageQuery, paginate
from api.operations import AuditedWrites, get_or_404
from api.responses import iso, ok, shown
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
            "last_login_at": iso(user.last_login_at)}


@dataclass(frozen=True)
class Accounts:
    """One side's accounts: its model, where it writes (session and audit log), the top role
    of which one active account always stays, and its name in answers, audit rows and 404s."""

    model: Any
    writes: AuditedWrites
    top_role: str
    entity: str  # "user": answers {"user": ...}, audit rows of entity type "user"
    what: str  # "admin user": "No admin user with id 7."

    def page(self, query) -> tuple[list, int]:
        """A page of the accounts by email, filtered by role and is_active when given."""
        select = where_given(sa.select(self.model).order_by(self.model.email), self.model,
                             query, "role", "is_active")
        return paginate(self.writes.session(), select, query)

    def get(self, account_id: int):
        return get_or_404(self.writes.session(), self.model, account_id, self.what)

    def create(self, body):
        """An account with a role; the email is unique (409), the password is hashed."""
        session = self.writes.session()
        taken = session.scalar(sa.select(self.model.id).where(self.model.email == body.email))
        if taken is not None:
            raise ApiError(409, "conflict", f"an account with email {body.email!r} exists",
                           {"email": "is taken"})
        account = self.model(email=body.email, password_hash=hash_password(body.password),
                             role=body.role, full_name=body.full_name, is_active=True)
        return self.writes.save(account, self.entity, account_json, unique_field="email")

    def update(self, account_id: int, body):
        """Rename, change role, (de)activate or set a new password; the audit row says
        ``password_changed`` (never the password)."""
        session, account = self.writes.session(), self.get(account_id)
        before, changes = account_json(account), body.model_dump(exclude_unset=True)
        self._keep_one(account, changes)
        password = changes.pop("password", None)
        if password is not None:
            account.password_hash = hash_password(password)
        for name, value in changes.items():
            setattr(account, name, value)
        after = account_json(account)
        if password is not None:
            after["password_changed"] = True
        self.writes.audit(session, "update", self.entity, account.id, before, after)
        session.commit()
        return ok(**{self.entity: account_json(account)})

    def deactivate(self, account_id: int):
        """Deactivate an account (rows keep pointing at it; its tokens stop working)."""
        account = self.get(account_id)
        before = account_json(account)
        self._keep_one(account, {"is_active": False})
        account.is_active = False
        return self.writes.save(account, self.entity, account_json, before=before,
                                action="deactivate")

    def _keep_one(self, account: Any, changes: dict) -> None:
        """409 when ``changes`` (or deactivation) would leave no active account of the top
        role. The active ones are locked (on MariaDB), so two of them demoting each other at
        once cannot both succeed."""
        top = self.top_role
        demoted = changes.get("role", top) != top or changes.get("is_active") is False
        if not (account.role == top and account.is_active and demoted):
            return
        remaining = self.writes.session().scalars(sa.select(self.model.id).where(
            self.model.role == top, self.model.is_active.is_(True)).with_for_update()).all()
        if set(remaining) <= {account.id}:
            raise ApiError(409, f"last_{top}", f"This is the last active {top}; give another "
                           "account that role first.")
