"""Restoring a tenant's backup as a tenant: ``finvera restore FILE --as-tenant SUBDOMAIN``.

The backup goes into a fresh database named by the tenant rule, is checked against its manifest
and brought to the current schema; only then does tenant_master change, in one transaction: a
free subdomain (or a deleted or failed tenant's) gets an active row pointing at it, and a live
tenant, when asked (``replace``), is switched to it while its previous database is kept. A
failure before the switch drops the new database (and DB user) and changes nothing else; a
process killed half-way leaves at most an orphan database, which ``repair`` lists and drops.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.models.tenant import User
from api.tenancy.backends import Backend, LockTimeout
from api.tenancy.backups import BackupError, Manifest, read_manifest, restore_database
from api.tenancy.databases import Databases
from api.tenancy.migrations import Tier, apply_pending, migration_ids
from api.tenancy.placement import choose_server
from api.tenancy.provisioning import connection_info, subdomain_lock, tenant_db_user
from api.tenancy.registry import LIVE_STATUSES
from api.tenancy.subdomains import SubdomainError, check_subdomain, database_name

log = logging.getLogger(__name__)

# What a tenant restored from another tenant's backup takes from that tenant's row. Not the
# referral: commissions belong to the original sign-up.
COPIED = ("company_name", "contact_name", "email", "phone", "gstin", "subscription_plan",
          "subscription_status", "subscription_ends_at", "storage_limit_mb")
NO_REFERRAL = {"referral_code": None, "referred_by_salesman_id": None,
               "referred_by_distributor_id": None}


@dataclass(frozen=True)
class TenantRestore:
    """A backup restored as a tenant: the row, the new database, and what it replaced."""

    tenant_id: int
    subdomain: str
    database: str
    outcome: str  # "created" (a new row), "revived" (a deleted or failed row), "replaced"
    previous_database: str | None  # when replaced: kept, no longer used by the tenant
    manifest: Manifest
    migrated: list[str]  # applied after loading, when the backup was older than the code


def restore_as_tenant(dbs: Databases, dump_path: Path, subdomain: str, *,
                      replace: bool = False, server: str | None = None) -> TenantRestore:
    """Restore a tenant's backup into a new database and make it tenant ``subdomain``'s.

    A live (active or suspended) tenant is switched only with ``replace``, and keeps its status
    and its server (its DB user, if any, lives there; ``finvera tenants move`` changes servers).
    Any other tenant's database goes on ``server``, or where placement puts a new tenant.
    """
    try:
        check_subdomain(subdomain)
    except SubdomainError as exc:
        raise BackupError(f"subdomain {subdomain!r}: {exc}") from None
    dump_path = Path(dump_path)
    manifest = read_manifest(dump_path)
    if manifest.tier != Tier.TENANT:
        raise BackupError(f"{dump_path.name} is a backup of the {manifest.tier} database "
                          f"{manifest.database}; only a tenant's backup restores as a tenant")
    unknown = sorted(set(manifest.schema_version) - set(migration_ids(Tier.TENANT)))
    if unknown:
        raise BackupError(f"{dump_path.name} has migrations this release does not know "
                          f"({', '.join(unknown)}): restore it with a release that has them")
    try:  # the sign-up's own lock on the subdomain: a restore and a sign-up never interleave
        with dbs.backend.lock(subdomain_lock(dbs, subdomain), timeout=0):
            return _restore(dbs, dump_path, manifest, subdomain, replace, server)
    except LockTimeout:
        raise BackupError(f"a sign-up or restore of {subdomain!r} is under way: try again "
                          "when it has finished") from None


def _restore(dbs: Databases, dump_path: Path, manifest: Manifest, subdomain: str,
             replace: bool, server: str | None) -> TenantRestore:
    with Session(dbs.master_engine, expire_on_commit=False) as session:
        row = session.scalar(sa.select(TenantMaster).where(TenantMaster.subdomain == subdomain))
    if row is not None and row.status == "provisioning":
        raise BackupError(f"tenant {subdomain!r} is being provisioned, or its sign-up was "
                          f"interrupted: repair it first (finvera tenants repair {subdomain})")
    if row is not None and row.status == "moving":
        raise BackupError(f"tenant {subdomain!r} is being moved, or its move was interrupted: "
                          f"let it finish, or undo it first (finvera tenants repair {subdomain})")
    new, live = row is None, row is not None and row.status in LIVE_STATUSES
    if live and not replace:
        raise BackupError(f"tenant {subdomain!r} is {row.status}: ask to replace it "
                          "(--replace) to switch it to the restored database (its current "
                          "database is kept)")
    if live:
        if server not in (None, row.db_server):
            raise BackupError(f"tenant {subdomain!r} lives on server {row.db_server!r}: its "
                              "backup is restored there (move it afterwards with finvera "
                              "tenants move)")
        server = row.db_server
    server = server or choose_server(dbs)
    backend = dbs.backend_of(server)
    name = database_name(dbs.settings.tenant_db_prefix, subdomain, int(time.time() * 1000))
    restore_database(backend, dump_path, name)  # checked against the manifest, or dropped
    made_user = granted_user = None
    try:
        migrated = apply_pending(backend, name, Tier.TENANT)
        with Session(dbs.master_engine, expire_on_commit=False) as session:
            if live:  # the tenant keeps its credentials; its DB user, if any, gets the new one
                info = dbs.cipher.decrypt(row.db_connection_encrypted)
                user, password, values = info.get("user"), info.get("password"), {}
                if user:
                    backend.grant_database(user, name)
                    granted_user = user
            else:
                values = {"status": "active", "status_reason": None, "deleted_at": None,
                          "provisioned_at": datetime.now(UTC).replace(tzinfo=None)}
                if new or manifest.tenant != subdomain:
                    values.update(_details(dbs, backend, manifest, name))
                if new:
                    row = TenantMaster(subdomain=subdomain, **values)
                    session.add(row)
                    session.flush()  # its id names its DB user; nobody sees it before commit
                user = password = None
                if dbs.settings.use_separate_db_users:
                    user, password = tenant_db_user(dbs, row.id), secrets.token_urlsafe(24)
                    backend.drop_user(user)  # a deleted or failed tenant's, if still there
                    backend.create_user(user, password, name)
                    made_user = user
            values.update(db_name=name, db_server=server,
                          db_connection_encrypted=dbs.cipher.encrypt(
                              connection_info(backend, name, user, password)))
            if new:
                for column, value in values.items():
                    setattr(row, column, value)
            elif session.execute(sa.update(TenantMaster).where(  # only the row as read
                    TenantMaster.id == row.id, TenantMaster.status == row.status,
                    TenantMaster.db_name.is_not_distinct_from(row.db_name)).values(
                        **values)).rowcount != 1:
                raise BackupError(f"tenant {subdomain!r} changed while restoring; run the "
                                  "restore again")
            session.commit()
    except BaseException:
        _undo(backend, name, made_user, granted_user)
        raise
    previous = row.db_name if live else None
    dbs.forget_tenant(row.id, previous)
    if granted_user:  # its previous database is kept, but no longer the tenant's to use
        try:
            backend.revoke_database(granted_user, previous)
        except Exception:
            log.exception("could not revoke %s's privileges on %s", granted_user, previous)
    outcome = "replaced" if live else "created" if new else "revived"
    return TenantRestore(tenant_id=row.id, subdomain=subdomain, database=name,
                         outcome=outcome, previous_database=previous, manifest=manifest,
                         migrated=migrated)


def _details(dbs: Databases, backend: Backend, manifest: Manifest, database: str) -> dict:
    """Company details for a tenant made from ``manifest``'s tenant: from that tenant's row
    (any status), else from the restored database's first admin (sign-up names it after the
    company)."""
    with Session(dbs.master_engine) as session:
        source = session.scalar(sa.select(TenantMaster).where(
            TenantMaster.subdomain == manifest.tenant)) if manifest.tenant else None
        if source is not None:
            return {**{column: getattr(source, column) for column in COPIED}, **NO_REFERRAL}
    engine = backend.create_engine(database, poolclass=sa.pool.NullPool)
    try:
        with Session(engine) as session:
            admin = session.scalar(sa.select(User).where(User.role == "admin")
                                   .order_by(User.id).limit(1))
            if admin is None:
                raise BackupError(f"no tenant {manifest.tenant!r} in tenant_master and no "
                                  "admin user in the backup to take the company's details from")
            return {"company_name": admin.full_name or admin.email, "email": admin.email,
                    **NO_REFERRAL}
    finally:
        engine.dispose()


def _undo(backend: Backend, database: str, made_user: str | None,
          granted_user: str | None) -> None:
    """Drop what a restore made before its switch failed; never raises (the cause does)."""
    try:
        if made_user:
            backend.drop_user(made_user)
        if granted_user:
            backend.revoke_database(granted_user, database)
        backend.drop_database(database)
    except Exception:
        log.exception("could not drop %s after a failed restore; `finvera tenants repair "
                      "--all --drop-orphans` drops it", database)
