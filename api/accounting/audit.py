"""The tenant's audit log: who changed what, when, with the row before and after."""

from __future__ import annotations

import json
from typing import Any

from flask import g, request
from sqlalchemy.orm import Session

from api.models.tenant import AuditLog


def audit(session: Session, action: str, entity_type: str, entity_id: Any,
          before: dict | None = None, after: dict | None = None) -> None:
    """Add an audit row to ``session``: it commits, or rolls back, with the change itself."""
    user = g.get("user")
    session.add(AuditLog(
        user_id=user.id if user else None, action=action, entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before_data=None if before is None else json.dumps(before, default=str),
        after_data=None if after is None else json.dumps(after, default=str),
        ip_address=request.remote_addr))
