"""The platform's own databases: a backend per server, engines on the main and master tiers."""

from __future__ import annotations

from api.config import Settings
from api.tenancy import migrations
from api.tenancy.backends import DEFAULT_SERVER, Backend, backends_for, server_backend
from api.tenancy.connections import TenantConnectionManager
from api.tenancy.crypto import ConnectionCipher
from api.tenancy.expiring import ExpiringCache
from api.tenancy.migrations import Tier
from api.tenancy.ready_passwords import READY_PASSWORDS, ReadyPasswords
from api.tenancy.routing import MAX_CACHED, TenantDirectory
from api.tenancy.storage import StorageMeter


class Databases:
    """Settings, a backend per tenant server, main and master engines (on the ``default``
    server), the tenant directory and connections."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.servers: dict[str, Backend] = backends_for(settings)
        self.backend: Backend = self.servers[DEFAULT_SERVER]
        self.main_engine = self.backend.create_engine(settings.db_name)
        self.master_engine = self.backend.create_engine(settings.master_db_name)
        self.cipher = ConnectionCipher(list(settings.encryption_keys))
        self.directory = TenantDirectory(self.master_engine, self.cipher,
                                         settings.tenant_cache_ttl_seconds,
                                         on_change=self._forget_standing)
        # Tenant users' (is_active, role) by (tenant id, database, user id), kept as long as
        # directory entries and dropped with them when a check finds the tenant changed
        # (api/auth.py reads it, and announces a change it made to a user).
        self.user_standing: ExpiringCache[tuple[int, str, int], tuple[bool, str]] = \
            ExpiringCache(MAX_CACHED, self.directory.entry_seconds)
        self.storage = StorageMeter(self.servers, settings.storage_cache_seconds)
        # Generated admin passwords hashed ahead of time, for sign-ups that claim a pooled
        # database (so that scrypt is not most of their time); none without the pool.
        self.ready_passwords = ReadyPasswords(READY_PASSWORDS if settings.tenant_pool_size else 0)
        self.connections = TenantConnectionManager(
            self.servers, settings.max_tenant_connections,
            idle_seconds=settings.tenant_idle_seconds,
            checkout_timeout=settings.tenant_checkout_timeout_seconds, max_views=MAX_CACHED)

    def backend_of(self, server: str) -> Backend:
        """The backend of the server a tenant's row names; UnknownServer if none is set up."""
        return server_backend(self.servers, server)

    def forget_tenant(self, tenant_id: int, database: str | None) -> None:
        """Make this process see a tenant's change at once (suspended, deleted, moved): its
        cached lookup, its users' standing, connections and measured size go."""
        self.directory.forget(tenant_id)
        self._forget_standing({tenant_id})
        self.connections.evict(tenant_id)
        if database:
            self.storage.forget(database)

    def _forget_standing(self, tenant_ids: set[int]) -> None:
        """Drop the cached standing of these tenants' users (their tenants changed)."""
        self.user_standing.forget(lambda key, _standing: key[0] in tenant_ids)

    def initialize(self) -> dict[str, list[str]]:
        """Create and migrate master, then main (the seed's start-up flow); idempotent."""
        return migrations.initialize(
            self.backend, self.settings.master_db_name, self.settings.db_name)

    def tiers(self) -> dict[Tier, tuple[str, object]]:
        """The platform tiers by name: (database name, engine)."""
        return {Tier.MASTER: (self.settings.master_db_name, self.master_engine),
                Tier.MAIN: (self.settings.db_name, self.main_engine)}

    def dispose(self) -> None:
        """Close every pooled connection (after a fork, at shutdown, in tests)."""
        self.connections.dispose()
        self.main_engine.dispose()
        self.master_engine.dispose()
        for backend in self.servers.values():
            backend.dispose()
