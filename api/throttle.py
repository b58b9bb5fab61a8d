"""Login attempts per account: a few failures in a window, then 429 until the window moves."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

MAX_ACCOUNTS = 100_000


class LoginThrottle:
    """In-process failure counts per account key (each worker process keeps its own)."""

    def __init__(self, max_failures: int = 5, window_seconds: float = 900) -> None:
        self.max_failures, self.window = max_failures, window_seconds
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(key)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if not failures or len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window - now) + 1)

    def failed(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, deque()).append(time.monotonic())
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_ACCOUNTS:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
