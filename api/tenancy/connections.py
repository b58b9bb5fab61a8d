"""TenantConnectionManager: cached connections to tenant databases, bounded in number.

Two ways, one bound (MAX_TENANT_CONNECTIONS) on the DBAPI connections open at once:

- Shared (MySQL when tenants have no DB users of their own): one pool per server, and per
  tenant a view of its server's pool whose ``schema_translate_map`` names the tenant's database
  in every statement (``db`.`table``). Connections belong to no tenant, so none is ever closed
  to make room for another tenant on the same server, and each pool's size is the bound. With
  several servers, an idle connection of one server's pool may be closed to make room on
  another, least recently used pool first. The pools' connections have no default database: a
  statement that does not name one fails, it cannot land in another tenant's.
- Per tenant (SQLite files, or MySQL with a DB user per tenant): one engine per tenant; a new
  connection is only made when a slot is free, otherwise the least recently used tenant's idle
  connections are closed to make room.

Either way the bound counts every connection of the process, to whichever server. When every
connection is busy the caller waits a short, configured time and then
gets ``PoolExhausted`` (or SQLAlchemy's pool TimeoutError). Connections idle longer than the
idle timeout are closed by a reaper thread. Dropped connections are replaced by the backend's
check on checkout (a bounded ping after a second idle, a look at the socket before).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.tenancy.backends import DEFAULT_SERVER, Backend, server_backend


class PoolExhausted(Exception):
    """Every allowed connection is busy and none came free in time."""


@dataclass(frozen=True)
class TenantTarget:
    """Where one tenant's database is and whom to connect as (None: the app's own user)."""

    tenant_id: int
    database: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    server: str = DEFAULT_SERVER  # which backend of the manager's serves it


class _Slots:
    """The count of open DBAPI connections, and the condition waiters sleep on."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.waiting = 0  # threads in _take_slot's wait: a check-in wakes one only then
        self.condition = threading.Condition()


class _Slot:
    """One connection's slot, given back once: when the connection is closed, or when it is
    garbage collected unclosed (its socket goes with it) so that a connection lost by a bug
    can never hold a slot for the rest of the process's life."""

    def __init__(self, slots: _Slots) -> None:
        self._slots = slots
        self._held = True

    def give_back(self, *_connection) -> None:
        with self._slots.condition:
            if self._held:
                self._held = False
                self._slots.open -= 1
                self._slots.condition.notify()


class TenantConnectionManager:
    """Engines per tenant, all drawing on one bounded set of connections. Thread-safe."""

    def __init__(self, backends: Mapping[str, Backend], max_connections: int, *,
                 idle_seconds: float = 300, checkout_timeout: float = 2.0,
                 max_engines: int | None = None, max_views: int = 10_000) -> None:
        self.backends = backends  # by server name
        self.idle_seconds = idle_seconds
        self.checkout_timeout = checkout_timeout
        self.max_engines = max_engines or max(64, 4 * max_connections)
        # Views hold no connection (a few KiB each): as many as the directory caches tenants.
        self.max_views = max_views
        self._slots = _Slots(max_connections)
        self._engines: OrderedDict[int, tuple[TenantTarget, Engine, float]] = OrderedDict()
        # Pools of engines we let go of: connections in use when they were let go (or made
        # since by a request that still had the engine) come back to them and are closed from
        # there. Held weakly: a pool nobody can use any more goes with its engine.
        self._retired: weakref.WeakSet[sa.pool.Pool] = weakref.WeakSet()
        self._lock = threading.Lock()  # guards _engines, _retired and _views
        self._shared: dict[str, Engine] = {}  # by server
        self._shared_used: dict[str, float] = {}
        self._views: OrderedDict[int, tuple[TenantTarget, Engine]] = OrderedDict()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.evictions = 0

    @property
    def open_connections(self) -> int:
        return self._slots.open

    @property
    def cached_engines(self) -> int:
        return len(self._engines)

    @contextmanager
    def session(self, target: TenantTarget) -> Iterator[Session]:
        """A session on the tenant's database; rolled back unless committed, then closed."""
        with Session(self.engine(target)) as session:
            yield session

    def engine(self, target: TenantTarget) -> Engine:
        """The tenant's engine, made on first use; marks the tenant most recently used."""
        self._start_reaper()
        if target.user is None and server_backend(self.backends,
                                                  target.server).shares_connections:
            return self._view(target)
        with self._lock:
            cached = self._engines.get(target.tenant_id)
            if cached and cached[0] == target:
                self._engines[target.tenant_id] = (target, cached[1], time.monotonic())
                self._engines.move_to_end(target.tenant_id)
                return cached[1]
        engine = self._make_engine(target)
        with self._lock:
            stale = self._engines.pop(target.tenant_id, None)
            self._engines[target.tenant_id] = (target, engine, time.monotonic())
        if stale:
            self._retire(stale[1])
        self._trim_engines()
        return engine

    def _view(self, target: TenantTarget) -> Engine:
        """The tenant's view of the shared pool: every table qualified with its database. Marks
        the pool used now (the reaper and the least-recently-used eviction go by it)."""
        with self._lock:
            self._shared_used[target.server] = time.monotonic()
            cached = self._views.get(target.tenant_id)
            if cached and cached[0] == target:
                self._views.move_to_end(target.tenant_id)
                return cached[1]
            shared = self._shared.get(target.server)
            if shared is None:
                shared = self._shared[target.server] = self._make_engine(None, target.server)
            view = shared.execution_options(
                schema_translate_map={None: target.database})
            self._views[target.tenant_id] = (target, view)
            while len(self._views) > self.max_views:
                self._views.popitem(last=False)
            return view

    def evict(self, tenant_id: int) -> None:
        """Forget a tenant (suspended, deleted, moved): its idle connections close now, the
        ones in use when they come back."""
        with self._lock:
            self._views.pop(tenant_id, None)
            cached = self._engines.pop(tenant_id, None)
        if cached:
            self._retire(cached[1])

    def dispose(self) -> None:
        """Close every idle connection and stop the reaper (shutdown, tests)."""
        self._stop.set()
        with self._lock:
            engines = [engine for _, engine, _ in self._engines.values()]
            self._engines.clear()
            self._views.clear()
            shared = list(self._shared.values())
            self._shared.clear()
        for engine in engines + shared:
            self._retire(engine)
        self._close_retired()

    def _retire(self, engine: Engine) -> None:
        """Let an engine go: close its idle connections, and watch its pool for those still
        in use. The engine keeps its pool (not ``engine.dispose()``, which gives it a new one
        nobody watches): a request that got the engine just before keeps using a pool whose
        connections are closed as they come back."""
        engine.pool.dispose()
        with self._lock:
            self._retired.add(engine.pool)

    def _close_retired(self) -> bool:
        """Close connections that came back to retired pools."""
        with self._lock:
            retired = list(self._retired)
        closed = False
        for pool in retired:
            if pool.checkedin():
                pool.dispose()
                closed = True
        return closed

    def _make_engine(self, target: TenantTarget | None,
                     server: str = DEFAULT_SERVER) -> Engine:
        """A tenant's own engine, or (``target`` None) ``server``'s shared one on no database."""
        backend = server_backend(self.backends, target.server if target else server)
        engine = backend.create_engine(
            target.database if target else None, user=target.user if target else None,
            password=target.password if target else None,
            pool_size=self._slots.limit, max_overflow=0, pool_timeout=self.checkout_timeout)
        sa.event.listen(engine, "do_connect",
                        lambda _dialect, _record, cargs, cparams:
                        self._connect(backend, cargs, cparams))
        sa.event.listen(engine.pool, "checkin", lambda _dbapi, _record: self._notify())
        return engine

    def _connect(self, backend: Backend, cargs, cparams):
        """do_connect hook: take a slot (evicting or waiting if need be), then connect with a
        connection that gives the slot back when it is closed or collected."""
        self._take_slot()
        slot = _Slot(self._slots)
        try:
            connection = backend.connect_counted(cargs, cparams, slot.give_back)
        except BaseException:
            slot.give_back()
            raise
        weakref.finalize(connection, slot.give_back)
        return connection

    def _take_slot(self) -> None:
        slots = self._slots
        deadline = time.monotonic() + self.checkout_timeout
        while True:
            with slots.condition:
                if slots.open < slots.limit:
                    slots.open += 1
                    return
            if self._close_least_recently_used_idle():
                continue
            with slots.condition:
                remaining = deadline - time.monotonic()
                if slots.open < slots.limit:
                    continue
                if remaining <= 0:
                    raise PoolExhausted(
                        f"all {slots.limit} tenant connections are busy")
                slots.waiting += 1
                try:
                    slots.condition.wait(min(remaining, 0.05))
                finally:
                    slots.waiting -= 1

    def _close_least_recently_used_idle(self) -> bool:
        """Close the idle connections of the least recently used tenant (or server's shared
        pool) that has any."""
        if self._close_retired():
            return True
        with self._lock:
            candidates = [(used, engine) for _, engine, used in self._engines.values()]
            candidates += [(self._shared_used[server], engine)
                           for server, engine in self._shared.items()]
        for _used, engine in sorted(candidates, key=lambda candidate: candidate[0]):
            if engine.pool.checkedin() > 0:
                engine.pool.dispose()
                self.evictions += 1
                return True
        return False

    def _notify(self) -> None:
        """On check-in: wake a thread waiting for a slot, which may now close an idle
        connection. Read without the lock, so a waiter that has just begun to wait may miss
        it; its wait is 50 ms at most before it looks again."""
        if self._slots.waiting:
            with self._slots.condition:
                self._slots.condition.notify()

    def _trim_engines(self) -> None:
        """Drop the engines of least recently used tenants beyond max_engines, if unused."""
        with self._lock:
            surplus = len(self._engines) - self.max_engines
            idle = [tenant_id for tenant_id, (_, engine, _) in self._engines.items()
                    if engine.pool.checkedout() == 0][:max(surplus, 0)]
            dropped = [self._engines.pop(tenant_id)[1] for tenant_id in idle]
        for engine in dropped:
            self._retire(engine)

    def _start_reaper(self) -> None:
        if self._reaper is None:
            with self._lock:
                if self._reaper is None:
                    self._reaper = threading.Thread(target=self._reap, daemon=True,
                                                    name="tenant-connection-reaper")
                    self._reaper.start()

    def _reap(self) -> None:
        """Close the idle connections of tenants unused for longer than idle_seconds."""
        interval = max(0.05, min(self.idle_seconds / 2, 30))
        while not self._stop.wait(interval):
            cutoff = time.monotonic() - self.idle_seconds
            with self._lock:
                idle = [engine for _, engine, used in self._engines.values() if used < cutoff]
                idle += [engine for server, engine in self._shared.items()
                         if self._shared_used[server] < cutoff]
            for engine in idle:
                if engine.pool.checkedin():
                    engine.pool.dispose()
            self._close_retired()
