"""Tenant database sizes, measured and kept for a while: sizes move slowly, and measuring
costs a query against the server's statistics (or a stat of the SQLite file)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from api.tenancy.backends import Backend, server_backend

MIB = 2**20


class StorageMeter:
    """Sizes of tenant databases by (server, database): one name may exist on two servers
    for a moment while a tenant moves."""

    def __init__(self, backends: Mapping[str, Backend], ttl_seconds: float = 60) -> None:
        self.backends, self.ttl = backends, ttl_seconds
        self._sizes: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def size(self, server: str, database: str) -> int:
        """Bytes ``database`` takes on ``server``, at most ``ttl`` seconds old."""
        now, key = time.monotonic(), (server, database)
        with self._lock:
            cached = self._sizes.get(key)
        if cached and cached[0] > now:
            return cached[1]
        size = server_backend(self.backends, server).database_size(database)
        with self._lock:
            self._sizes[key] = (now + self.ttl, size)
        return size

    def over_limit(self, server: str, database: str, limit_mb: int) -> bool:
        return self.size(server, database) > limit_mb * MIB

    def forget(self, database: str) -> None:
        """Drop what is known of ``database`` on every server."""
        with self._lock:
            for key in [key for key in self._sizes if key[1] == database]:
                del self._sizes[key]
