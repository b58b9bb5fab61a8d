"""Migrating the fleet: every live tenant's database brought to the newest tenant schema.

``FleetMigrator`` reads what each tenant database has applied from yoyo's own records (on
MySQL one UNION ALL statement per server, up to ``BATCH_SIZE`` databases; on SQLite one query
per database), counts the current ones as such without opening yoyo, and hands the rest to an
executor: one tenant after another, or a pool of threads. Each tenant is migrated by
``apply_migrations`` on its own server, under yoyo's lock on that database, on a connection
the run keeps for it: N workers hold at most N connections per server, reused from tenant to
tenant. A named lock on the default server, held for the whole run, keeps a second run from
starting. A server that cannot be read fails its tenants, not the run. No
Flask here: the ``finvera migrate`` command (``api/migrate_command.py``) drives it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

import sqlalchemy as sa
import yoyo.exceptions

from api.tenancy.backends import DEFAULT_SERVER, Backend, LockTimeout, checked_identifier
from api.tenancy.databases import Databases
from api.tenancy.migrations import (
    YOYO_TABLE,
    Tier,
    applied_ids,
    apply_migrations,
    migration_ids,
    tier_migrations,
    yoyo_backend,
)
from api.tenancy.registry import live_tenants
from api.tenancy.yoyo_mysql import MULTI_STATEMENTS

BATCH_SIZE = 1000  # databases read by one UNION ALL statement on MySQL
# How long a tenant waits for the migration lock on its database: on MySQL a named lock whose
# holder is alive (the tenant then fails, to be picked up by the next run); on SQLite yoyo's
# lock row, which only a killed run can have left there (see FleetMigrator._apply).
YOYO_LOCK_WAIT = 1.0
REASON_LENGTH = 300

Item = TypeVar("Item")
Result = TypeVar("Result")


class FleetError(Exception):
    """A run or check that cannot start; nothing was changed."""


class FleetBusy(FleetError):
    """Another run holds the fleet lock."""


class UnknownTenants(FleetError):
    """Tenants were named that are not active or suspended."""


class NoTenantRegistry(FleetError):
    """The master database does not exist yet, so there are no tenants to speak of."""


@dataclass(frozen=True)
class TenantResult:
    """One tenant: the migrations still pending, those applied by this run, or why it failed."""

    subdomain: str
    database: str
    pending: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    error: str | None = None
    note: str | None = None
    server: str = DEFAULT_SERVER

    @property
    def state(self) -> str:
        """``failed``, ``applied``, ``pending`` or ``current``."""
        if self.error:
            return "failed"
        if self.applied:
            return "applied"
        return "pending" if self.pending else "current"


@dataclass(frozen=True)
class FleetReport:
    """The results of a check or a run, by subdomain."""

    results: tuple[TenantResult, ...]

    def of(self, state: str) -> list[TenantResult]:
        return [result for result in self.results if result.state == state]

    @property
    def ok(self) -> bool:
        return not self.of("failed")


class Executor(Protocol):
    """How the tenants of a run are spread over workers (django-tenants' migration executors)."""

    workers: int  # at most this many tenants at once

    def map_unordered(self, fn: Callable[[Item], Result],
                      items: Sequence[Item]) -> Iterator[Result]:
        """``fn(item)`` for every item, yielded in the calling thread as each one finishes."""


class SequentialExecutor:
    """One tenant after another, in the calling thread."""

    workers = 1

    def map_unordered(self, fn, items):
        for item in items:
            yield fn(item)


class ThreadedExecutor:
    """Up to ``workers`` tenants at once, one worker thread each.

    Once the caller stops (an error, Ctrl-C) no further tenant is started, and the tenants
    under way are finished before the caller goes on.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_unordered(self, fn, items):
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="fleet")
        try:
            futures = [pool.submit(fn, item) for item in items]
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def executor_for(parallel: int) -> Executor:
    """The executor for ``--parallel N``."""
    return SequentialExecutor() if parallel == 1 else ThreadedExecutor(parallel)


def _reason(exc: BaseException) -> str:
    """An exception as one short line, for a report: the error that started it first.

    An error raised while another was being handled (yoyo undoing a failed step, say) is
    shown after it: the first error is the one that says what went wrong.
    """
    first = exc
    while first.__context__ is not None:
        first = first.__context__
    text = f"{type(first).__name__}: {first}"
    if first is not exc:
        text += f" (then {type(exc).__name__}: {exc})"
    text = " ".join(text.split())
    return text if len(text) <= REASON_LENGTH else text[:REASON_LENGTH - 3] + "..."


class FleetMigrator:
    """Checks and migrates the tenant databases of the live (active and suspended) tenants.

    ``before_tenant(result)`` is called in the worker before each tenant is migrated; tests use
    it to pause a run.
    """

    def __init__(self, dbs: Databases, executor: Executor | None = None,
                 before_tenant: Callable[[TenantResult], None] = lambda result: None,
                 batch_size: int = BATCH_SIZE) -> None:
        self.dbs = dbs
        self.executor = executor or SequentialExecutor()
        self.before_tenant = before_tenant
        self.batch_size = batch_size

    @property
    def lock_name(self) -> str:
        """The server-wide lock a run holds: one run at a time per fleet."""
        return f"{self.dbs.settings.tenant_db_prefix}fleet"

    def tenants(self, subdomains: Iterable[str] | None = None) -> list[TenantResult]:
        """The live tenants (or those named, all of them live), nothing known of them yet."""
        master = self.dbs.settings.master_db_name
        if not self.dbs.backend.database_exists(master):  # before SQLite makes an empty file
            raise NoTenantRegistry(f"the master database {master} is missing: "
                                   "run finvera init first")
        named = sorted(set(subdomains)) if subdomains else None
        rows = live_tenants(self.dbs, named)
        if named and len(rows) < len(named):
            missing = sorted(set(named) - {row.subdomain for row in rows})
            raise UnknownTenants(f"no active or suspended tenant {', '.join(missing)}")
        return [TenantResult(row.subdomain, row.db_name, server=row.db_server) for row in rows]

    def check(self, subdomains: Iterable[str] | None = None) -> FleetReport:
        """What each tenant still lacks; changes nothing (``--status``, ``--dry-run``)."""
        tenants = self.tenants(subdomains)
        ids = migration_ids(Tier.TENANT)
        known: dict[str, TenantResult] = {}
        for server in sorted({tenant.server for tenant in tenants}):
            on_server = [tenant for tenant in tenants if tenant.server == server]
            try:
                applied, problems = self._read_applied(
                    self.dbs.backend_of(server), [tenant.database for tenant in on_server])
            except Exception as exc:  # the server is down or not configured: its tenants fail
                reason = f"server {server}: {_reason(exc)}"
                known.update((tenant.subdomain, replace(tenant, error=reason))
                             for tenant in on_server)
                continue
            for tenant in on_server:
                error = problems.get(tenant.database)
                pending = () if error else tuple(
                    migration_id for migration_id in ids
                    if migration_id not in applied[tenant.database])
                known[tenant.subdomain] = replace(tenant, pending=pending, error=error)
        return FleetReport(tuple(known[tenant.subdomain] for tenant in tenants))

    def run(self, subdomains: Iterable[str] | None = None,
            on_result: Callable[[TenantResult, int], None] = lambda result, total: None,
            ) -> FleetReport:
        """Apply the pending tenant migrations of the live tenants (or of those named).

        Holds the fleet lock throughout; raises ``FleetBusy`` at once if another run has it.
        ``on_result(result, total)`` is called in the calling thread as each tenant is done,
        current ones first. One tenant's failure is reported in its result, and the others go
        on. Tenants created meanwhile are not in the run: sign-up migrates them to the newest
        schema itself.
        """
        with ExitStack() as held:
            try:
                held.enter_context(self.dbs.backend.lock(self.lock_name, timeout=0))
            except LockTimeout:
                raise FleetBusy(f"another tenant migration run holds lock {self.lock_name}: "
                                "let it finish, then run again") from None
            for migration in tier_migrations(Tier.TENANT):
                migration.load()  # parse each file here, once, not in every worker at once
            checked = self.check(subdomains).results
            results = []
            for result in checked:
                if result.state != "pending":
                    results.append(result)
                    on_result(result, len(checked))
            to_migrate = [result for result in checked if result.state == "pending"]
            engines = held.enter_context(_ServerEngines(self.executor.workers))
            migrate = functools.partial(self._migrate, engines)
            for result in self.executor.map_unordered(migrate, to_migrate):
                results.append(result)
                on_result(result, len(checked))
        return FleetReport(tuple(sorted(results, key=lambda result: result.subdomain)))

    def _migrate(self, engines: _ServerEngines, result: TenantResult) -> TenantResult:
        """Migrate one tenant (in a worker), on a connection of the run's; a failure becomes
        the result's error."""
        self.before_tenant(result)
        try:
            backend = self.dbs.backend_of(result.server)
            with engines.connection(backend) as connection:
                applied, note = self._apply(backend, result.database, connection)
        except Exception as exc:
            return replace(result, error=_reason(exc))
        return replace(result, pending=(), applied=tuple(applied), note=note)

    def _apply(self, backend: Backend, database: str,
               connection) -> tuple[list[str], str | None]:
        """Apply what ``database`` on ``backend``'s server lacks (yoyo decides again, under its
        lock), on ``connection`` where the server shares them; returns the ids applied and a
        note when a stale yoyo lock row had to be cleared (SQLite)."""
        try:
            return apply_migrations(backend, database, Tier.TENANT, YOYO_LOCK_WAIT,
                                    connection=connection), None
        except yoyo.exceptions.LockTimeout:
            if backend.shares_connections:
                raise  # a named lock: it went with the connection of any run that died
            # While the fleet lock is held nothing else migrates a live tenant's database
            # (a sign-up migrates its own before the tenant goes live), so this lock row is
            # one a killed run left behind: clear it and go on.
            with yoyo_backend(backend, database, connection) as stale:
                stale.break_lock()
            return (apply_migrations(backend, database, Tier.TENANT, YOYO_LOCK_WAIT,
                                     connection=connection),
                    "cleared a yoyo lock left by a killed run")

    def _read_applied(self, backend: Backend, databases: list[str],
                      ) -> tuple[dict[str, set[str]], dict[str, str]]:
        """The migration ids applied in each database on ``backend``'s server, and why any
        could not be read.

        On MySQL one connection to that server reads a whole batch (up to ``batch_size``
        databases: the whole fleet of most servers) with one statement. A batch that fails is
        read again without the databases that are missing, and if it fails still (a database
        without yoyo's table), one database at a time, as on SQLite.
        """
        if not backend.shares_connections or not databases:
            return self._read_each(backend, databases)
        applied: dict[str, set[str]] = {}
        problems: dict[str, str] = {}
        engine = backend.create_engine(None, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                for start in range(0, len(databases), self.batch_size):
                    batch = databases[start:start + self.batch_size]
                    try:
                        applied.update(self._read_batch(connection, batch))
                        continue
                    except sa.exc.DBAPIError:
                        connection.rollback()
                    existing = self._existing(backend)
                    missing = _missing(batch, existing)
                    problems.update(missing)
                    rest = [name for name in batch if name not in missing]
                    if missing:  # without them, the statement may work
                        try:
                            applied.update(self._read_batch(connection, rest))
                            continue
                        except sa.exc.DBAPIError:
                            connection.rollback()
                    each_applied, each_problems = self._read_each(backend, rest, existing)
                    applied.update(each_applied)
                    problems.update(each_problems)
        finally:
            engine.dispose()
        return applied, problems

    def _existing(self, backend: Backend) -> set[str]:
        """The tenant databases on ``backend``'s server."""
        return set(backend.list_databases(self.dbs.settings.tenant_db_prefix))

    def _read_batch(self, connection: sa.Connection, batch: list[str]) -> dict[str, set[str]]:
        """One UNION ALL over ``db``.``_yoyo_migration`` of every database in the batch."""
        if not batch:
            return {}
        sql = " UNION ALL ".join(
            f"SELECT '{name}', migration_id FROM `{name}`.`{YOYO_TABLE}`"
            for name in map(checked_identifier, batch))
        applied: dict[str, set[str]] = {name: set() for name in batch}
        for name, migration_id in connection.exec_driver_sql(sql):
            applied[name].add(migration_id)
        return applied

    def _read_each(self, backend: Backend, databases: list[str],
                   existing: set[str] | None = None,
                   ) -> tuple[dict[str, set[str]], dict[str, str]]:
        """One connection and one read per database that exists (``existing``: the server's
        tenant databases, when the caller has just listed them)."""
        applied: dict[str, set[str]] = {}
        problems: dict[str, str] = {}
        existing = self._existing(backend) if existing is None else existing
        problems.update(_missing(databases, existing))
        for name in (name for name in databases if name in existing):
            engine = backend.create_engine(name, poolclass=sa.pool.NullPool)
            try:
                with engine.connect() as connection:
                    applied[name] = applied_ids(connection)
            except Exception as exc:
                problems[name] = f"cannot read its migrations: {_reason(exc)}"
            finally:
                engine.dispose()
        return applied, problems


class _ServerEngines:
    """The connections of one run: per server, a pool of at most ``workers`` connections to the
    server (no database: each migration switches to its own), reused from tenant to tenant,
    each taking several statements at once (yoyo's bookkeeping in fewer round trips)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.engines: dict[str, sa.Engine] = {}
        self.guard = threading.Lock()

    def __enter__(self) -> _ServerEngines:
        return self

    def __exit__(self, *exc_info) -> None:
        for engine in self.engines.values():
            engine.dispose()

    @contextmanager
    def connection(self, backend: Backend) -> Iterator[object]:
        """A DBAPI connection to ``backend``'s server for one tenant, or None on SQLite (yoyo
        opens its own there)."""
        if not backend.shares_connections:
            yield None
            return
        with self.guard:
            engine = self.engines.get(backend.server)
            if engine is None:
                # No reset when a connection comes back: yoyo ends its transactions, and the
                # next tenant's migration lock rolls back first whatever was left.
                engine = self.engines[backend.server] = backend.create_engine(
                    None, pool_size=self.workers, max_overflow=0, pool_reset_on_return=None,
                    connect_args=MULTI_STATEMENTS)
        connection = engine.raw_connection()
        try:
            yield connection
        finally:
            connection.close()


def _missing(databases: Iterable[str], existing: set[str]) -> dict[str, str]:
    """The problem of each of ``databases`` that is not among ``existing``."""
    return {name: f"database {name} does not exist" for name in databases
            if name not in existing}
