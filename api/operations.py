"""The steps the resource handlers of both APIs share: a row or 404, a value no other row
holds (409), and writes committed together with their audit row.

``IN_TENANT`` writes in the request's tenant database and its audit log (actor: the tenant
user), ``IN_MAIN`` in the main database and its audit log (actor: the platform admin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.audit import admin_audit, audit
from api.db import main_session
from api.errors import ApiError, invalid_field
from api.responses import ok
from api.tenant_request import tenant_session


def get_or_404(session: Session, model, entity_id: int, what: str):
    """The row of ``model`` with ``entity_id`` in ``session``'s database, or a 404."""
    row = session.get(model, entity_id)
    if row is None:
        raise ApiError(404, "not_found", f"No {what} with id {entity_id}.")
    return row


def referenced(session: Session, model, entity_id: int | None, field: str, what: str):
    """The row ``field`` refers to (None when it refers to none), or a 400 naming ``field``."""
    if entity_id is None:
        return None
    row = session.get(model, entity_id)
    if row is None:
        raise invalid_field(field, f"no {what} with id {entity_id}")
    return row


def ensure_unique(session: Session, model, field: str, value: Any,
                  except_id: int | None = None) -> None:
    """409 on ``field`` when another row of ``model`` already has ``value``."""
    select = sa.select(model.id).where(getattr(model, field) == value)
    if except_id is not None:
        select = select.where(model.id != except_id)
    if session.scalar(select) is not None:
        raise ApiError(409, "conflict", f"{value!r} is taken.", {field: "is taken"})


@dataclass(frozen=True)
class AuditedWrites:
    """Writes on one side's database, each committed with its audit row."""

    session: Callable[[], Session]
    audit: Callable[..., None]

    def save(self, row: Any, entity_type: str, as_json: Callable[[Any], dict], *,
             before: dict | None = None, action: str | None = None,
             unique_field: str | None = None, conflict: str | None = None):
        """Insert ``row`` (no ``before``: 201) or write its changes (200); audit the change
        as ``action`` (create or update by default), commit, and answer with the row under
        ``entity_type``. A unique clash on ``unique_field`` at the write (a concurrent request
        won the race its pre-check lost) is a 409 saying ``conflict`` (by default: taken);
        any other clash is a bug (500)."""
        session = self.session()
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            if unique_field is None:
                raise
            session.rollback()
            raise ApiError(409, "conflict", conflict or f"The {unique_field} is taken.",
                           {unique_field: conflict or "is taken"}) from None
        self.audit(session, action or ("create" if before is None else "update"),
                   entity_type, row.id, before, as_json(row))
        session.commit()  # the answer shows the row as stored (e.g. DATETIME's whole seconds)
        return ok(201 if before is None else 200, **{entity_type: as_json(row)})

    def delete(self, row: Any, entity_type: str, as_json: Callable[[Any], dict]):
        """Delete ``row`` for good, audited with what it was; a row something came to refer to
        since the handler looked is kept (the foreign key refuses) with a 409 ``in_use``."""
        session, entity_id = self.session(), row.id
        self.audit(session, "delete", entity_type, entity_id, before=as_json(row))
        session.delete(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise ApiError(409, "in_use", f"The {entity_type} came into use meanwhile; it "
                           "cannot be deleted.") from None
        return ok(deleted={"id": entity_id})


IN_TENANT = AuditedWrites(tenant_session, audit)
IN_MAIN = AuditedWrites(main_session, admin_audit)
