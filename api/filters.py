"""Filters of list endpoints: equality on the fields a query gives, a case-insensitive search."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel


def where_given(select: sa.Select, model, query: BaseModel, *names: str) -> sa.Select:
    """Filter ``select`` on each of ``names`` the query gives (equality)."""
    for name in names:
        value = getattr(query, name)
        if value is not None:
            select = select.where(getattr(model, name) == value)
    return select


def matching(select: sa.Select, text: str | None, *fields) -> sa.Select:
    """Rows where any of ``fields`` contains ``text``, case-insensitively and literally
    (``%``, ``_`` and backslashes are no wildcards)."""
    if not text:
        return select
    escaped = text.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return select.where(sa.or_(*(sa.func.lower(field).like(f"%{escaped}%", escape="\\")
                                 for field in fields)))
