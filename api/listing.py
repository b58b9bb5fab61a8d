"""Paginated lists: limit and offset in, the page and the total out.

``paginate`` loads ORM entities (a count, then the page); ``page_rows``, for the hot lists,
plain rows and the total in one statement (``COUNT(*) OVER ()``).
"""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import ConfigDict, Field
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from api.schemas import QueryModel

MAX_LIMIT = 200


class PageQuery(QueryModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=10**9)


def paginate(session: Session, query: sa.Select, page: PageQuery) -> tuple[list, int]:
    """One page of ``query``'s rows (in its order) and the count of all of them."""
    total = _count(session, query)
    rows = session.scalars(query.limit(page.limit).offset(page.offset)).all()
    return rows, total


def page_rows(on: Session | Connection, query: sa.Select, page: PageQuery) -> tuple[list[Row], int]:
    """One page of ``query``'s rows (in its order) and the count of all of them, in one
    statement; a page past the end costs a second one, for the count."""
    counted = query.add_columns(sa.func.count().over().label("total_rows"))
    rows = on.execute(counted.limit(page.limit).offset(page.offset)).all()
    if rows:
        return rows, rows[0].total_rows
    if page.offset == 0:
        return rows, 0
    return rows, _count(on, query)


def _count(on: Session | Connection, query: sa.Select) -> int:
    return on.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
