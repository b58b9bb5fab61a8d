"""Reading and maintaining tenant_master as a whole: live tenants, key rotation."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.tenancy.databases import Databases

LIVE_STATUSES = ("active", "suspended")
# Tenants whose database must not be dropped: live ones, and those being moved (whose row
# still names the old server until the switch).
HELD_STATUSES = (*LIVE_STATUSES, "moving")


def live_tenants(dbs: Databases, subdomains: list[str] | None = None) -> list[TenantMaster]:
    """Active and suspended tenants (those named, when given), by subdomain."""
    query = sa.select(TenantMaster).where(TenantMaster.status.in_(LIVE_STATUSES))
    if subdomains is not None:
        query = query.where(TenantMaster.subdomain.in_(subdomains))
    with Session(dbs.master_engine) as session:
        return list(session.scalars(query.order_by(TenantMaster.subdomain)))


def rotate_connection_keys(dbs: Databases, batch_size: int = 500) -> int:
    """Re-encrypt every tenant's connection info under the first ENCRYPTION_KEY.

    Afterwards the other keys can be removed from ENCRYPTION_KEY. Each batch commits on its own,
    and a rerun is harmless, so an interrupted rotation is finished by running it again. A row
    whose info changed meanwhile (a move switched it) is left as written: that is already
    encrypted with the first key.
    """
    rotated, last_id = 0, 0
    while True:
        with Session(dbs.master_engine) as session:
            rows = session.execute(
                sa.select(TenantMaster.id, TenantMaster.db_connection_encrypted)
                .where(TenantMaster.id > last_id,
                       TenantMaster.db_connection_encrypted.is_not(None))
                .order_by(TenantMaster.id).limit(batch_size)).all()
            if not rows:
                return rotated
            for tenant_id, token in rows:
                session.execute(sa.update(TenantMaster).where(
                    TenantMaster.id == tenant_id, TenantMaster.db_connection_encrypted == token)
                    .values(db_connection_encrypted=dbs.cipher.rotate(token)))
            session.commit()
            rotated += len(rows)
            last_id = rows[-1].id
