"""Which tenant a request is for, from its Host or X-Tenant-ID, looked up in tenant_master.

Lookups are cached in-process for up to ENTRY_SECONDS, and checked every TTL: once per
TENANT_CACHE_TTL_SECONDS a process asks master which tenants' rows changed since its last
check (one indexed query on updated_at) and drops those entries, so other processes see a
change (a suspension, a move) within the TTL, as when entries lived for the TTL only; a busy
process no longer reads and decrypts every tenant of the Zipf tail anew each TTL. ``forget``
drops an entry at once (this process suspended or deleted the tenant); ``announce`` marks a
tenant's row changed without changing it, so that every process's next check drops what it
holds of the tenant (``on_change``: its users' standing too). Only found tenants are cached: a
tenant created elsewhere is found on its first request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.models.master import TenantMaster
from api.tenancy.connections import TenantTarget
from api.tenancy.crypto import ConnectionCipher
from api.tenancy.expiring import ExpiringCache
from api.tenancy.subdomains import SUBDOMAIN

MAX_CACHED = 10_000
# A lookup that misses also reads anew the recently used tenants whose entries expire within
# REFRESH_WITHIN seconds (of the REFRESH_AMONG most recently used): busy tenants stay cached,
# and master is asked once where it would be asked several times.
REFRESH_WITHIN, REFRESH_AMONG = 1.0, 32
# How long an entry lives when no check finds its row changed. Bounded all the same, for what a
# check cannot see: a row deleted outright, or master restored from a backup.
ENTRY_SECONDS = 300.0
# A check asks for rows changed since the last check's start on master's clock, less this much
# more than the TTL: updated_at is set when a statement runs, seen when its transaction commits
# (and kept to the second by MySQL's DATETIME).
CHECK_OVERLAP = 1.0


class RoutingError(Exception):
    """A request that cannot be routed to a tenant; ``code`` says why."""

    code = "tenant_not_found"


class TenantRequired(RoutingError):
    code = "tenant_required"


class TenantMismatch(RoutingError):
    code = "tenant_mismatch"


class TenantNotFound(RoutingError):
    code = "tenant_not_found"


class TenantSuspended(RoutingError):
    code = "tenant_suspended"


class TenantProvisioning(RoutingError):
    code = "tenant_provisioning"


class TenantMoving(RoutingError):
    """The tenant's database is being moved to another server (``finvera tenants move``)."""

    code = "tenant_moving"


@dataclass(frozen=True)
class TenantRecord:
    """What a routed request knows of its tenant (from tenant_master, decrypted)."""

    id: int
    subdomain: str
    company_name: str
    status: str
    db_server: str
    db_name: str | None
    storage_limit_mb: int
    target: TenantTarget | None  # None until provisioning stored the connection info


def host_label(host: str | None, base_domain: str) -> str | None:
    """The subdomain in a Host header under ``base_domain``; any port, any letter case."""
    if not host:
        return None
    name = host.strip().lower()
    if not name.endswith("]"):  # not a bare IPv6 literal: drop the port
        name = name.rsplit(":", 1)[0]
    name = name.rstrip(".")
    suffix = "." + base_domain
    if name.endswith(suffix) and "." not in name[: -len(suffix)]:
        return name[: -len(suffix)] or None
    return None


class TenantDirectory:
    """Finds tenants by subdomain or id, with a short in-process cache."""

    def __init__(self, master_engine: Engine, cipher: ConnectionCipher, ttl_seconds: float,
                 on_change: Callable[[set[int]], None] = lambda tenant_ids: None) -> None:
        self._engine, self._cipher, self.ttl = master_engine, cipher, ttl_seconds
        self._on_change = on_change  # called with the ids of the changed tenants a check saw
        # How long an entry lives unless a check finds its tenant changed.
        self.entry_seconds = max(ttl_seconds, ENTRY_SECONDS) if ttl_seconds > 0 else 0.0
        self._cache: ExpiringCache[str, TenantRecord] = ExpiringCache(MAX_CACHED,
                                                                      self.entry_seconds)
        self._check_lock = threading.Lock()
        self._next_check = 0.0  # time.monotonic() of the next check of master for changes
        self._since = None  # master's clock: rows changed at or after it are dropped

    def resolve(self, header: str | None, subdomain: str | None) -> TenantRecord:
        """The tenant a request may be served for, or the RoutingError that says why not.

        ``header`` is X-Tenant-ID (a subdomain or an id), ``subdomain`` the Host's label; when
        both are given they must name the same tenant.
        """
        header = header.strip().lower() if header and header.strip() else None
        if not header and not subdomain:
            raise TenantRequired("name the tenant by subdomain (Host) or X-Tenant-ID")
        tenant = self.find(header or subdomain)
        if header and subdomain and (tenant is None or tenant.subdomain != subdomain):
            raise TenantMismatch("the Host and X-Tenant-ID name different tenants")
        if tenant is None or tenant.status in ("failed", "deleted"):
            raise TenantNotFound("no such tenant")
        if tenant.status == "suspended":
            raise TenantSuspended("this tenant is suspended")
        if tenant.status == "moving":
            raise TenantMoving("this tenant's data is being moved to another server; "
                               "retry in a few seconds")
        if tenant.status == "provisioning" or tenant.target is None:
            raise TenantProvisioning("this tenant is still being created")
        return tenant

    def find(self, key: str) -> TenantRecord | None:
        """A tenant by subdomain or numeric id (cached), or None."""
        if key.isdigit() and len(key) <= 12:
            column, value = TenantMaster.id, int(key)
        elif SUBDOMAIN.match(key):
            column, value = TenantMaster.subdomain, key
        else:
            return None  # cannot be a tenant: no query is made
        if self.ttl > 0 and time.monotonic() >= self._next_check:
            self._check()
        return self._cache.get(key, lambda: self._load(column, value))

    def _check(self) -> None:
        """Drop the entries of tenants whose rows changed since the last check: one query, once
        per TTL per process. Requests wait for it (no entry is served unchecked for longer
        than the TTL); if master cannot answer, neither can they, as on a cache miss."""
        with self._check_lock:
            started = time.monotonic()
            if started < self._next_check:
                return  # another thread checked meanwhile
            with self._engine.connect() as conn:
                now = conn.scalar(sa.select(sa.func.now()))
                changed = set() if self._since is None else set(conn.scalars(
                    sa.select(TenantMaster.id).where(TenantMaster.updated_at >= self._since)))
            if changed:
                self._cache.forget(lambda _key, tenant: tenant.id in changed)
                self._on_change(changed)
            self._since = now - timedelta(seconds=self.ttl + CHECK_OVERLAP)
            self._next_check = started + self.ttl

    def _load(self, column, value) -> tuple:
        """The tenant whose ``column`` is ``value`` and the cached tenants about to expire,
        read from tenant_master in one statement and decrypted, to keep until a check finds
        them changed (ENTRY_SECONDS at most)."""
        expiring = self._cache.expiring(REFRESH_WITHIN, REFRESH_AMONG)
        where = column == value
        if expiring:
            where = sa.or_(where, TenantMaster.id.in_({tenant.id for _, tenant in expiring}))
        with self._engine.connect() as conn:
            rows = {row.id: row._mapping for row in
                    conn.execute(sa.select(TenantMaster).where(where))}
        found = next((self._record(row) for row in rows.values()
                      if row[column.key] == value), None)
        again = {key: self._record(rows[tenant.id]) for key, tenant in expiring
                 if tenant.id in rows and key in (str(tenant.id), rows[tenant.id]["subdomain"])}
        return found, self._cache.ttl, again

    def forget(self, tenant_id: int) -> None:
        """Drop every cached entry of a tenant, so this process sees its change at once."""
        self._cache.forget(lambda _key, tenant: tenant.id == tenant_id)

    def announce(self, tenant_id: int) -> None:
        """Mark a tenant's row changed (its ``updated_at`` only), so that every process's next
        check drops what it holds of the tenant: for a change kept elsewhere, such as a user's
        standing in the tenant's own database."""
        with self._engine.begin() as conn:
            conn.execute(sa.update(TenantMaster).where(TenantMaster.id == tenant_id)
                         .values(updated_at=sa.func.now()))

    def _record(self, row) -> TenantRecord:
        target = None
        if row["db_connection_encrypted"]:
            info = self._cipher.decrypt(row["db_connection_encrypted"])
            target = TenantTarget(tenant_id=row["id"], database=info["database"],
                                  user=info.get("user"), password=info.get("password"),
                                  server=row["db_server"])
        return TenantRecord(id=row["id"], subdomain=row["subdomain"],
                            company_name=row["company_name"], status=row["status"],
                            db_server=row["db_server"], db_name=row["db_name"],
                            storage_limit_mb=row["storage_limit_mb"],
                            target=target)
