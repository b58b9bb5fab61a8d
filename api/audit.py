"""Audit logs of both sides: who changed what, when, with the row before and after.

The row is added to the same session as the change, so it commits or rolls back with it. The
tenant API writes to the tenant's audit_logs (actor: the tenant user), the platform API to the
main database's (actor: the platform admin).
"""

from __future__ import annotations

import json
from typing import Any

from flask import g, request
from sqlalchemy.orm import Session

from api.models import main, tenant


def _row(model, actor: dict, action: str, entity_type: str, entity_id: Any,
         before: dict | None, after: dict | None):
    return model(**actor, action=action, entity_type=entity_type,
                 entity_id=None if entity_id is None else str(entity_id),
                 before_data=None if before is None else json.dumps(before, default=str),
                 after_data=None if after is None else json.dumps(after, default=str),
                 ip_address=request.remote_addr)


def audit(session: Session, action: str, entity_type: str, entity_id: Any,
          before: dict | None = None, after: dict | None = None) -> None:
    """Record a tenant user's change in the tenant's audit log."""
    user = g.get("user")
    session.add(_row(tenant.AuditLog, {"user_id": user.id if user else None}, action,
                     entity_type, entity_id, before, after))


def admin_audit(session: Session, action: str, entity_type: str, entity_id: Any,
                before: dict | None = None, after: dict | None = None) -> None:
    """Record a platform admin's change in the main database's audit log."""
    admin = g.get("admin")
    session.add(_row(main.AuditLog, {"admin_user_id": admin.id if admin else None}, action,
                     entity_type, entity_id, before, after))
