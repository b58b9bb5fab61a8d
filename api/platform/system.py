"""Monitoring: the databases' sizes and state, in the seed's shape, plus per server.

Tenant database sizes come from one query per server (information_schema grouped by
database on MySQL, a stat of each file on SQLite), never one query per tenant.
"""

from __future__ import annotations

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
class ServerShare(TypedDict):
    name: str
    tenant_dbs: int
    size_mb: float


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


@bp.get("/databases", responses=DATABASE_REPORT)
@admin_required()
def database_report():
    """main_db, master_db and tenant_dbs as the seed shows them, and each server's share."""
    dbs = databases()
    settings = dbs.settings
    live = dict(master_session().execute(
        sa.select(TenantMaster.db_name, TenantMaster.db_server)
        .where(TenantMaster.status.in_(LIVE_STATUSES))).all())
    sizes = dbs.backend.database_sizes(settings.tenant_db_prefix)
    tenant_sizes = [sizes.get(name, 0) for name in live]
    total = sum(tenant_sizes)
    servers: dict[str, dict] = {}
    for name, server in live.items():
        entry = servers.setdefault(server, {"name": server, "tenant_dbs": 0, "size_mb": 0})
        entry["tenant_dbs"] += 1
        entry["size_mb"] += sizes.get(name, 0)
    for entry in servers.values():
        entry["size_mb"] = _megabytes(entry["size_mb"])
    return ok(main_db=_platform_db(settings.db_name),
              master_db={**_platform_db(settings.master_db_name), "tenants_count": len(live)},
              tenant_dbs={"total": len(live), "total_size_mb": _megabytes(total),
                          "avg_size_mb": _megabytes(total // len(live)) if live else 0},
              servers=list(servers.values()))
