"""Cleaning up after what did not finish (``finvera tenants repair``), on every server.

- A sign-up whose process died (row ``provisioning``, its subdomain lock free) or that failed:
  its database and DB user are dropped and the row is ``failed``, so the sign-up can be retried.
- A move whose process died (row ``moving``, lock free): undone, so the tenant is served from
  its old server, whole (``moves.undo_interrupted``).
- With no subdomain named: tenant databases that no tenant owns on the server they are on are
  listed, and with ``drop_orphans`` dropped, with the DB users of failed and deleted tenants.

Whatever holds a subdomain's lock (a sign-up, a move) is still running and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.tenancy import moves, pool
from api.tenancy.backends import LockTimeout
from api.tenancy.databases import Databases
from api.tenancy.provisioning import (
    clean_leftovers,
    drop_tenant_database,
    subdomain_lock,
    tenant_db_user,
)
from api.tenancy.registry import HELD_STATUSES
from api.tenancy.subdomains import quarantine_name


class Located(NamedTuple):
    """A database or DB user on a server."""

    server: str
    name: str


@dataclass
class RepairReport:
    cleaned: dict[str, list[str]] = field(default_factory=dict)  # subdomain -> what was dropped
    moves_undone: dict[str, str] = field(default_factory=dict)  # subdomain -> what was done
    in_progress: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # subdomain -> why it was not repaired
    orphan_databases: list[Located] = field(default_factory=list)
    dropped: list[Located] = field(default_factory=list)  # orphan databases and DB users


def repair(dbs: Databases, subdomains: list[str] | None = None,
           drop_orphans: bool = False) -> RepairReport:
    """Clean interrupted sign-ups, undo interrupted moves; list (or drop) orphans everywhere.

    Orphans are only looked for when no subdomain is named.
    """
    report = RepairReport()
    prefix = dbs.settings.tenant_db_prefix
    existing = [Located(server, name) for server, backend in dbs.servers.items()
                for name in backend.list_databases(prefix)]  # before the rows are read
    with Session(dbs.master_engine) as session:
        query = sa.select(TenantMaster).where(
            TenantMaster.status.in_(("provisioning", "failed", "moving")))
        if subdomains is not None:
            query = query.where(TenantMaster.subdomain.in_(subdomains))
        cleaned: set[Located] = set()
        for tenant in session.scalars(query).all():
            try:
                with dbs.backend.lock(subdomain_lock(dbs, tenant.subdomain), timeout=0):
                    if tenant.status == "moving":
                        _undo_move(dbs, tenant, report)
                        continue
                    report.cleaned[tenant.subdomain] = clean_leftovers(dbs, tenant)
                    cleaned.update(Located(tenant.db_server, name)
                                   for name in report.cleaned[tenant.subdomain])
                    if tenant.status == "provisioning":
                        tenant.status = "failed"
                        tenant.status_reason = "interrupted while provisioning; cleaned by repair"
                    session.commit()
            except LockTimeout:
                report.in_progress.append(tenant.subdomain)
        if subdomains is not None:
            return report
        session.expire_all()  # the rows repaired above changed in sessions of their own
        report.orphan_databases = [
            located for located in existing if located not in _owned(dbs, session) | cleaned
            and not located.name.startswith(pool.pool_prefix(dbs))]
        if drop_orphans:
            report.dropped += [located for located in report.orphan_databases
                               if drop_tenant_database(dbs, located.name, located.server)]
            gone = list(session.scalars(sa.select(TenantMaster.id).where(
                TenantMaster.status.in_(("failed", "deleted")))))
            for server, backend in dbs.servers.items():
                if backend.name == "mysql":
                    report.dropped += [
                        Located(server, tenant_db_user(dbs, tenant_id)) for tenant_id in gone
                        if backend.drop_user(tenant_db_user(dbs, tenant_id))]
    return report


def _undo_move(dbs: Databases, tenant: TenantMaster, report: RepairReport) -> None:
    """Undo one interrupted move into the report; a failure is noted, the row stays moving."""
    try:
        report.moves_undone[tenant.subdomain] = moves.undo_interrupted(dbs, tenant)
    except Exception as exc:
        report.failed[tenant.subdomain] = f"{type(exc).__name__}: {exc}"


def _owned(dbs: Databases, session: Session) -> set[Located]:
    """Where tenants' databases are: live, signing up, or moving (a move in progress also owns
    its quarantine and the copy on its target)."""
    owned = set()
    for tenant in session.scalars(sa.select(TenantMaster).where(
            TenantMaster.db_name.is_not(None),
            TenantMaster.status.in_((*HELD_STATUSES, "provisioning")))):
        owned.add(Located(tenant.db_server, tenant.db_name))
        if tenant.status == "moving":
            owned.add(Located(tenant.db_server,
                              quarantine_name(dbs.settings.tenant_db_prefix, tenant.id)))
            owned.add(Located(tenant.moving_to, tenant.db_name))
    return owned
