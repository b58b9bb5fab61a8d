"""The baseline of ``bench/routing.py``: the routed ledger read, without the platform around it.

``GET /api/ledgers`` (routed: tenant lookup, bearer token, the user's row, query validation,
the tenant's view of the shared pool) is measured against these endpoints, served by the same
gunicorn workers, which read the same 20 ledgers from one fixed tenant database
(``FINVERA_BENCH_BASELINE_DB``) through a plain SQLAlchemy engine of their own, with no tenancy,
no auth and no validation, and answer the same fields in the same envelope:

- ``/bench/baseline/ledgers``: the statement the routed read sends (``ledgers_in_order`` and
  ``page_rows``: the page and its total in one), on a plain Core connection, the rows through
  ``ledger_json`` and ``ok``: the same read, on the same kind of connection. The floor.
- ``/bench/baseline/ledgers-orm``: the page as ORM entities with a separate count
  (``paginate``), as list endpoints that load entities do: "the same view without tenancy" in
  the style django-tenants' and fastapi-tenancy's figures compare against.

Only for benchmarks: the endpoints are open to anyone, so ``register`` is called by the
benchmark's own server (``bench/common.py``), or by ``create_app`` only when
``FINVERA_BENCH_BASELINE=1``. Nothing here touches a database until the first request (gunicorn
forks workers after loading the app).
"""

from __future__ import annotations

import os
import threading

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from api.accounting.chart import ledger_json, ledgers_in_order
from api.listing import PageQuery, page_rows, paginate
from api.models.tenant import Ledger
from api.responses import failure, ok
from api.tenancy.backends import checked_identifier

DATABASE_VARIABLE = "FINVERA_BENCH_BASELINE_DB"
PAGE = 20


class _PlainEngine:
    """One plain pooled engine per process on the fixed database, made on first use."""

    def __init__(self, database: str | None) -> None:
        self.database = checked_identifier(database) if database else None
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def get(self) -> Engine | None:
        if self.database is None:
            return None
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    settings = current_app.extensions["finvera"].settings
                    url = URL.create("mysql+pymysql", username=settings.db_user,
                                     password=settings.db_password, host=settings.db_host,
                                     port=settings.db_port, database=self.database,
                                     query={"charset": "utf8mb4"})
                    ssl = {"ssl_disabled": True} if settings.db_ssl == "disabled" else {}
                    self._engine = sa.create_engine(
                        url, pool_size=settings.max_tenant_connections, max_overflow=0,
                        connect_args=ssl)
        return self._engine


def register(app: Flask, database: str | None = None) -> None:
    """Add the baseline endpoints, reading ``database`` (default: $FINVERA_BENCH_BASELINE_DB)."""
    plain = _PlainEngine(database or os.environ.get(DATABASE_VARIABLE) or None)

    def unconfigured():
        return failure(503, "baseline_not_configured",
                       f"Set {DATABASE_VARIABLE} to the tenant database the baseline reads.")

    def plain_ledgers():
        engine = plain.get()
        if engine is None:
            return unconfigured()
        with engine.connect() as conn:
            rows, total = page_rows(conn, ledgers_in_order(), PageQuery(limit=PAGE))
        return ok(ledgers=[ledger_json(row) for row in rows], total=total)

    def orm_ledgers():
        engine = plain.get()
        if engine is None:
            return unconfigured()
        with Session(engine) as session:
            select = sa.select(Ledger).order_by(Ledger.name, Ledger.id)
            ledgers, total = paginate(session, select, PageQuery(limit=PAGE))
            return ok(ledgers=[ledger_json(ledger) for ledger in ledgers], total=total)

    app.add_url_rule("/bench/baseline/ledgers", "bench_baseline_ledgers", plain_ledgers)
    app.add_url_rule("/bench/baseline/ledgers-orm", "bench_baseline_ledgers_orm", orm_ledgers)
