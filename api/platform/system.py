"""Monitoring: the databases' sizes and state, in the seed's shape, plus per server.

Tenant database sizes come from one query per server (information_schema grouped by
database on MySQL, a stat of each file on SQLite), never one query per tenant. A server that
does not answer is reported ``unreachable`` (its size unknown); the others are still measured.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Required

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from typing_extensions import TypedDict

from api.auth import admin_required
from api.blueprints import admin_blueprint
from api.db import databases, master_session
from api.models.master import TenantMaster
from api.responses import envelope, ok, shown
from api.tenancy.registry import LIVE_STATUSES

bp = admin_blueprint("system", __name__, "system", url_prefix="/api/admin/system")
MIB = 2**20


@shown
class PlatformDatabase(TypedDict):
    name: str
    size_mb: float | None  # None when it cannot be reached
    status: str


@shown
class MasterDatabase(PlatformDatabase):
    tenants_count: int


@shown
class TenantDatabases(TypedDict):
    total: int
    total_size_mb: float
    avg_size_mb: float


@shown
class ServerShare(TypedDict, total=False):
    name: Required[str]
    open: Required[bool]  # takes new tenants
    host: str  # MySQL servers only
    port: int
    tenant_dbs: Required[int]
    size_mb: Required[float | None]  # None when it cannot be reached or is not configured
    status: Required[str]  # healthy, unreachable or not_configured


DATABASE_REPORT = {200: envelope("DatabaseReport", main_db=PlatformDatabase,
                                 master_db=MasterDatabase, tenant_dbs=TenantDatabases,
                                 servers=list[ServerShare])}


def _megabytes(size: int) -> float:
    return round(size / MIB, 2)


def _platform_db(name: str) -> PlatformDatabase:
    try:
        return {"name": name, "size_mb": _megabytes(databases().backend.database_size(name)),
                "status": "healthy"}
    except SQLAlchemyError:
        return {"name": name, "size_mb": None, "status": "unreachable"}


def _server(name: str, databases_there: list[str]) -> tuple[ServerShare, int]:
    """One tenant server: where it is, open or closed, its live tenants and their size; and
    that size in bytes (0 when unknown)."""
    dbs = databases()
    entry = {"name": name, "open": name in dbs.settings.open_servers,
             "tenant_dbs": len(databases_there), "size_mb": None, "status": "healthy"}
    backend = dbs.servers.get(name)
    if backend is None:  # a row names a server the configuration lost
        return {**entry, "open": False, "status": "not_configured"}, 0
    if backend.name == "mysql":
        entry.update(host=backend.host, port=backend.port)
    try:
        sizes = backend.database_sizes(dbs.settings.tenant_db_prefix)
    except SQLAlchemyError:
        return {**entry, "status": "unreachable"}, 0
    size = sum(sizes.get(database, 0) for database in databases_there)
    return {**entry, "size_mb": _megabytes(size)}, size


@bp.get("/databases", responses=DATABASE_REPORT)
@admin_required()
def database_report():
    """main_db, master_db and tenant_dbs as the seed shows them, and each server's share:
    every configured server (open or closed), and any server a tenant's row names."""
    settings = databases().settings
    live = master_session().execute(
        sa.select(TenantMaster.db_server, TenantMaster.db_name)
        .where(TenantMaster.status.in_(LIVE_STATUSES))).all()
    by_server: dict[str, list[str]] = defaultdict(list)
    for server, name in live:
        by_server[server].append(name)
    names = (*settings.server_names, *sorted(set(by_server) - set(settings.server_names)))
    servers, sizes = zip(*(_server(name, by_server[name]) for name in names), strict=True)
    total = sum(sizes)
    return ok(main_db=_platform_db(settings.db_name),
              master_db={**_platform_db(settings.master_db_name), "tenants_count": len(live)},
              tenant_dbs={"total": len(live), "total_size_mb": _megabytes(total),
                          "avg_size_mb": _megabytes(total // len(live)) if live else 0},
              servers=list(servers))
