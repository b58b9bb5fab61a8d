"""Paginated lists: limit and offset in, the page and the total out."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

MAX_LIMIT = 200


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=10**9)


def paginate(session: Session, query: sa.Select, page: PageQuery) -> tuple[list, int]:
    """One page of ``query``'s rows (in its order) and the count of all of them."""
    total = session.scalar(sa.select(sa.func.count()).select_from(
        query.order_by(None).subquery()))
    rows = session.scalars(query.limit(page.limit).offset(page.offset)).all()
    return rows, total
