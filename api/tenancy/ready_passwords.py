"""Generated admin passwords with their scrypt hashes made ahead of time, for pooled sign-ups.

With the pool of ready databases (TENANT_POOL_SIZE > 0) a sign-up only writes a few rows, and
the scrypt hash of the admin's password (about 70 ms here) would be most of its time. When the
sign-up leaves the password to us, it takes one generated and hashed beforehand by a
background thread. They are held in this process's memory only (never written anywhere), a
few at a time, and each is handed out once; a forked child starts with none of its parent's.
"""

from __future__ import annotations

import os
import secrets
import threading

from api.security import hash_password

READY_PASSWORDS = 2  # per process: one sign-up after another takes one, the next is being made


def generate_password() -> str:
    """A new admin's password when the sign-up gives none (returned to the caller once)."""
    return secrets.token_urlsafe(12)


class ReadyPasswords:
    """Up to ``size`` generated (password, hash) pairs, topped up in a background thread."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ready: list[tuple[str, str]] = []
        self._pid = os.getpid()
        self._guard = threading.Lock()
        self._filling = False

    def take(self) -> tuple[str, str] | None:
        """A generated password and its hash, never handed out before; None when none is ready
        (the caller makes its own) or ``size`` is 0. Starts the top-up."""
        if not self.size:
            return None
        with self._guard:
            if self._pid != os.getpid():  # a forked child: the parent's pairs stay its own
                self._ready, self._pid, self._filling = [], os.getpid(), False
            ready = self._ready.pop() if self._ready else None
            start = not self._filling
            self._filling = True
        if start:
            threading.Thread(target=self._fill, name="ready-passwords", daemon=True).start()
        return ready

    def _fill(self) -> None:
        try:
            while True:
                with self._guard:
                    if len(self._ready) >= self.size:
                        return
                password = generate_password()
                pair = (password, hash_password(password))
                with self._guard:
                    self._ready.append(pair)
        finally:
            with self._guard:
                self._filling = False
