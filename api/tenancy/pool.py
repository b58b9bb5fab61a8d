"""A pool of ready tenant databases: created and migrated ahead of time, claimed at sign-up.

With TENANT_POOL_SIZE > 0, a sign-up claims a pooled database instead of creating and
migrating one, so it only writes the tenant's own rows; the pool is refilled in the
background, and by `finvera tenants pool fill`. The pool is per server: each open server keeps
TENANT_POOL_SIZE ready databases, and a sign-up claims one on the server placement chose for
it (a closed server gets no refills; what it still holds waits there). Pooled databases are
named ``<TENANT_DB_PREFIX>_pool_<unix ms><4 hex>``: a subdomain starts with a letter, so no
tenant's own database name can look like one. A claim is the tenant's row taking the name
(db_name is unique in tenant_master), so two sign-ups can never claim the same database; a
claimed database is brought to the newest schema before it is handed out.

A pooled database is listed (and may be claimed) from the moment it exists; see ``fill``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.tenancy.backends import DEFAULT_SERVER, Backend
from api.tenancy.databases import Databases
from api.tenancy.migrations import Tier, apply_migrations

log = logging.getLogger(__name__)
_filling = threading.Lock()  # one refill at a time in this process


def pool_prefix(dbs: Databases) -> str:
    return f"{dbs.settings.tenant_db_prefix}_pool_"


def pooled(dbs: Databases, server: str = DEFAULT_SERVER) -> list[str]:
    """The ready databases on ``server`` that no tenant has claimed, oldest first."""
    names = dbs.backend_of(server).list_databases(pool_prefix(dbs))
    with Session(dbs.master_engine) as session:
        claimed = set(session.scalars(sa.select(TenantMaster.db_name).where(
            TenantMaster.db_name.in_(names))))
    return [name for name in names if name not in claimed]


def fill(dbs: Databases, size: int | None = None) -> list[str]:
    """Create and migrate databases until ``size`` (TENANT_POOL_SIZE) are ready on every open
    server; return the new ones. One being migrated may already be claimed: the claim's own
    migration run waits on yoyo's lock for the database and then finds nothing left to apply."""
    size = dbs.settings.tenant_pool_size if size is None else size
    made = []
    with _filling:
        for server in dbs.settings.open_servers:
            backend = dbs.backend_of(server)
            for _ in range(max(0, size - len(pooled(dbs, server)))):
                name = f"{pool_prefix(dbs)}{int(time.time() * 1000)}{secrets.token_hex(2)}"
                backend.create_database(name)
                apply_migrations(backend, name, Tier.TENANT)
                made.append(name)
    return made


def claim(dbs: Databases, tenant_id: int, backend: Backend) -> str | None:
    """Give tenant ``tenant_id`` a ready database on ``backend``'s server (its row, which
    already names that server, takes the name); None when that pool is empty. The sign-up's
    migrate step then brings it to the newest schema."""
    for name in pooled(dbs, backend.server):
        try:
            with dbs.master_engine.begin() as connection:
                connection.execute(sa.update(TenantMaster).where(TenantMaster.id == tenant_id)
                                   .values(db_name=name))
        except IntegrityError:  # another sign-up claimed it a moment ago
            continue
        return name
    return None


def refill_in_background(dbs: Databases) -> None:
    """Top the pools up again without keeping the sign-up waiting."""
    def run() -> None:
        try:
            fill(dbs)
        except Exception:  # the next sign-up creates its own database; nothing is lost
            log.exception("refilling the tenant database pool failed")

    threading.Thread(target=run, name="tenant-pool-refill", daemon=True).start()
