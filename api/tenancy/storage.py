"""Tenant database sizes, measured and kept for a while: sizes move slowly, and measuring
costs a query against the server's statistics (or a stat of the SQLite file)."""

from __future__ import annotations

import threading
import time

from api.tenancy.backends import Backend

MIB = 2**20


class StorageMeter:
    def __init__(self, backend: Backend, ttl_seconds: float = 60) -> None:
        self.backend, self.ttl = backend, ttl_seconds
        self._sizes: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def size(self, database: str) -> int:
        """Bytes ``database`` takes, at most ``ttl`` seconds old."""
        now = time.monotonic()
        with self._lock:
            cached = self._sizes.get(database)
        if cached and cached[0] > now:
            return cached[1]
        size = self.backend.database_size(database)
        with self._lock:
            self._sizes[database] = (now + self.ttl, size)
        return size

    def over_limit(self, database: str, limit_mb: int) -> bool:
        return self.size(database) > limit_mb * MIB

    def forget(self, database: str) -> None:
        with self._lock:
            self._sizes.pop(database, None)
