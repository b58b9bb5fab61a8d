"""ExpiringCache: a small, thread-safe, bounded map whose entries expire.

The one shape of the per-process caches on the request path (tenant lookups, verified tokens,
users' standing): least recently used entries go first when it is full, an entry is never
served after its expiry, and ``forget`` drops entries at once, including what a load that
began before it would have stored (a suspension is not undone by a lookup already under way).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """Up to ``max_entries`` values, each kept for ``ttl`` seconds (or less, if its load says)."""

    def __init__(self, max_entries: int, ttl: float) -> None:
        self.max_entries, self.ttl = max_entries, ttl
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0  # bumped by forget(): loads begun before it store nothing

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, load: Callable[[], tuple | None]) -> V | None:
        """The cached value of ``key``, or what ``load`` gives: (value or None, seconds to keep
        it, at most ``ttl``[, other entries it read anew, to keep as long]), or None (nothing
        found: returned, not cached)."""
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached[0] > now:
                self._entries.move_to_end(key)
                return cached[1]
            generation = self._generation
        loaded = load()
        if loaded is None:
            return None
        value, seconds, *more = loaded
        entries: Mapping[K, V] = {**(more[0] if more else {}),
                                  **({key: value} if value is not None else {})}
        seconds = min(seconds, self.ttl)
        with self._lock:
            if seconds > 0 and generation == self._generation:
                for entry_key, entry in entries.items():
                    self._entries[entry_key] = (now + seconds, entry)
                    self._entries.move_to_end(entry_key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value

    def expiring(self, within: float, among: int) -> list[tuple[K, V]]:
        """The entries among the ``among`` most recently used that expire within ``within``
        seconds: a load may read them anew on its way, so that busy keys do not miss."""
        soon = time.monotonic() + within
        with self._lock:
            recent = itertools.islice(reversed(self._entries.items()), among)
            return [(key, value) for key, (expires, value) in recent if expires <= soon]

    def forget(self, matches: Callable[[K, V], bool]) -> None:
        """Drop every entry for which ``matches(key, value)``, and any a load under way
        would store."""
        with self._lock:
            self._generation += 1
            for key in [k for k, (_, v) in self._entries.items() if matches(k, v)]:
                del self._entries[key]
