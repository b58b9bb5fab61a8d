"""Moving a tenant's database to another server (``finvera tenants move``) without losing a write.

A status flag alone cannot stop writes to the old copy: other processes trust a tenant lookup for
TENANT_CACHE_TTL_SECONDS, and a request that found the tenant before the move began may still be
running. So the fence is at the database itself. The steps, each committed before the next:

1. ``mark_moving``: the row becomes ``moving`` and names the target; routing answers
   503 ``tenant_moving`` with Retry-After.
2. ``wait_for_caches``: TENANT_CACHE_TTL_SECONDS and a margin, after which no process routes a
   new request to the old copy.
3. ``quarantine``: one ``RENAME TABLE`` moves every table into ``<prefix>_moving_<id>`` on the same
   server, which nothing routes to. It waits (at most MOVE_LOCK_WAIT_SECONDS) for the
   transactions in flight to finish, so their writes come along; any statement after it fails
   instead of writing to the old copy. The emptied database is dropped.
4. ``copy``: the quarantined tables, dumped and piped into a database of the same name on the
   target (and, with separate DB users, the tenant's user there). The name stays, so tokens
   (bound to it) stay good.
5. ``verify``: the same tables, and per table the same row count and checksum.
6. ``switch``: one UPDATE of the row: the new server and connection info, the old status.
7. ``drop_source``: the quarantined copy is dropped (or kept, as ``<prefix>_kept_<id>_<ms>``),
   and the tenant's old DB user. A failure here is reported; the move stands.

A failure in steps 1-6 undoes, in reverse, what was done (the copy is dropped, the tables renamed
back, the status restored): the tenant is served from the old server, whole. A process killed
meanwhile leaves the row ``moving``: ``finvera tenants repair`` undoes it the same way
(``undo_interrupted``) once the move's subdomain lock is free. Moves need MySQL/MariaDB.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.tenancy.backends import Backend, LockTimeout, checked_identifier
from api.tenancy.backups import copy_database
from api.tenancy.databases import Databases
from api.tenancy.provisioning import (
    connection_info,
    pause_if_asked,
    subdomain_lock,
    tenant_db_user,
)
from api.tenancy.registry import LIVE_STATUSES
from api.tenancy.subdomains import kept_name, quarantine_name

log = logging.getLogger(__name__)

STEPS = ("mark_moving", "wait_for_caches", "quarantine", "copy", "verify", "switch",
         "drop_source")
CACHE_MARGIN_SECONDS = 1.0  # beyond the TTL: lookups that began just before the mark
MOVE_LOCK_WAIT_SECONDS = 10  # how long RENAME TABLE waits for transactions in flight


class MoveError(Exception):
    """A move refused before anything changed, or one that failed and was undone: either way
    the tenant is served from where it was."""


class MoveStuck(MoveError):
    """A move that failed and could not be undone: the row stays ``moving`` (requests get 503)
    until ``finvera tenants repair`` undoes it."""


@dataclass(frozen=True)
class Moved:
    """A finished move."""

    subdomain: str
    source: str
    target: str
    database: str
    tables: int
    rows: int
    kept: str | None = None  # the old copy's name, with keep_source
    cleanup_error: str | None = None  # why the old copy is still there (repair --all lists it)


@contextmanager
def _on_server(backend: Backend) -> Iterator[sa.Connection]:
    """A connection of its own to ``backend``'s server, on no database."""
    engine = backend.create_engine(None, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def tables_of(backend: Backend, database: str) -> list[str]:
    """The tables of ``database`` on ``backend``'s server, by name."""
    with _on_server(backend) as connection:
        return list(connection.execute(sa.text(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :database "
            "ORDER BY TABLE_NAME"), {"database": checked_identifier(database)}).scalars())


def rename_tables(backend: Backend, tables: list[str], source: str, target: str) -> None:
    """Move every table of ``tables`` from database ``source`` to ``target`` in one atomic
    RENAME TABLE, waiting at most MOVE_LOCK_WAIT_SECONDS for the transactions that use them.
    Foreign keys between the tables move with them."""
    source, target = checked_identifier(source), checked_identifier(target)
    pairs = ", ".join(f"`{source}`.`{table}` TO `{target}`.`{table}`"
                      for table in (checked_identifier(t, "table name") for t in tables))
    with _on_server(backend) as connection:
        connection.exec_driver_sql(
            f"SET SESSION lock_wait_timeout = {int(MOVE_LOCK_WAIT_SECONDS)}")
        connection.exec_driver_sql(f"RENAME TABLE {pairs}")


def table_checksums(backend: Backend, database: str) -> dict[str, tuple[int, int]]:
    """(rows, checksum) of every table of ``database``, computed on its server.

    The checksum is the XOR of a 64-bit MD5 prefix of each row's columns (NULLs marked apart),
    so it does not depend on row order, row format or server version, as CHECKSUM TABLE does.
    """
    database = checked_identifier(database)
    with _on_server(backend) as connection:
        columns: dict[str, list[str]] = defaultdict(list)
        for table, column in connection.execute(sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = :database ORDER BY TABLE_NAME, ORDINAL_POSITION"),
                {"database": database}):
            columns[table].append(f"`{checked_identifier(column, 'column name')}`")
        sums = {}
        for table, quoted in columns.items():
            row = (f"CONCAT_WS(CHAR(31), {', '.join(quoted)}, "
                   f"CONCAT({', '.join(f'ISNULL({column})' for column in quoted)}))")
            count, digest = connection.exec_driver_sql(
                f"SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5({row}), 16), 16, 10) "
                f"AS UNSIGNED)), 0) FROM `{database}`.`{checked_identifier(table)}`").one()
            sums[table] = (int(count), int(digest))
    return sums


def _differences(expected: dict[str, tuple[int, int]], found: dict[str, tuple[int, int]],
                 ) -> list[str]:
    """What differs between two sets of table checksums, one phrase per table."""
    problems = []
    for table in sorted(set(expected) | set(found)):
        if table not in found:
            problems.append(f"{table} missing")
        elif table not in expected:
            problems.append(f"{table} not in the source")
        elif expected[table][0] != found[table][0]:
            problems.append(f"{table}: {found[table][0]} rows, source {expected[table][0]}")
        elif expected[table] != found[table]:
            problems.append(f"{table}: checksum differs")
    return problems


def _restore_status(dbs: Databases, tenant: TenantMaster, status: str) -> None:
    """End a move that did not happen: back to ``status`` (the one it had), no target."""
    with Session(dbs.master_engine) as session:
        session.execute(sa.update(TenantMaster).where(
            TenantMaster.id == tenant.id, TenantMaster.status == "moving").values(
            status=status, moving_to=None, status_before_move=None))
        session.commit()
    dbs.forget_tenant(tenant.id, tenant.db_name)


def _put_back(dbs: Databases, source: Backend, target: Backend | None, tenant: TenantMaster,
              quarantined: list[str]) -> None:
    """Undo the data side of a move: the target's copy (and DB user) go, the quarantined
    tables return to their database, the quarantine database goes."""
    quarantine = quarantine_name(dbs.settings.tenant_db_prefix, tenant.id)
    if target is not None:
        if dbs.settings.use_separate_db_users:
            target.drop_user(tenant_db_user(dbs, tenant.id))
        target.drop_database(tenant.db_name)
    if quarantined:
        if not source.create_database(tenant.db_name) and tables_of(source, tenant.db_name):
            raise MoveStuck(f"both {tenant.db_name} and {quarantine} on {source.server} hold "
                            "tables: nothing was dropped; compare them before going on")
        rename_tables(source, quarantined, quarantine, tenant.db_name)
    source.drop_database(quarantine)


class TenantMove:
    """One move, step by step; remembers what it did, so that a failure can be undone."""

    def __init__(self, dbs: Databases, tenant: TenantMaster, target: str, keep_source: bool,
                 on_step: Callable[[str], None], cache_wait: float) -> None:
        self.dbs, self.tenant, self.keep_source = dbs, tenant, keep_source
        self.on_step, self.cache_wait = on_step, cache_wait
        self.source = dbs.backend_of(tenant.db_server)
        self.target = dbs.backend_of(target)
        self.quarantine_db = quarantine_name(dbs.settings.tenant_db_prefix, tenant.id)
        self.tables: list[str] = []
        self.sums: dict[str, tuple[int, int]] = {}
        self.done: set[str] = set()  # marked, quarantined, copied

    def run(self) -> Moved:
        """Every step; a failure before the switch is undone, then raised as MoveError."""
        try:
            for step in STEPS[:-1]:
                self.on_step(step)
                getattr(self, step)()
        except MoveStuck:
            raise  # not undone: the switch may have committed
        except (Exception, KeyboardInterrupt) as exc:
            self._undo(exc)
        self.on_step("drop_source")
        return self.drop_source()

    def mark_moving(self) -> None:
        tenant = self.tenant
        with Session(self.dbs.master_engine) as session:
            marked = session.execute(sa.update(TenantMaster).where(
                TenantMaster.id == tenant.id, TenantMaster.status == tenant.status,
                TenantMaster.db_server == tenant.db_server).values(
                status="moving", moving_to=self.target.server,
                status_before_move=tenant.status)).rowcount
            session.commit()
        if marked != 1:
            raise MoveError(f"tenant {tenant.subdomain!r} changed meanwhile: not moved")
        self.done.add("marked")
        self.dbs.forget_tenant(tenant.id, tenant.db_name)

    def wait_for_caches(self) -> None:
        time.sleep(self.cache_wait)

    def quarantine(self) -> None:
        self.tables = tables_of(self.source, self.tenant.db_name)
        if not self.tables:
            raise MoveError(f"{self.tenant.db_name} on {self.source.server} has no tables")
        if not self.source.create_database(self.quarantine_db):
            raise MoveError(f"{self.quarantine_db} appeared on {self.source.server} meanwhile")
        self.done.add("quarantined")
        rename_tables(self.source, self.tables, self.tenant.db_name, self.quarantine_db)
        self.source.drop_database(self.tenant.db_name)  # empty; _put_back makes it again

    def copy(self) -> None:
        if not self.target.create_database(self.tenant.db_name):
            raise MoveError(f"{self.tenant.db_name} appeared on {self.target.server} meanwhile")
        self.done.add("copied")
        copy_database(self.source, self.quarantine_db, self.target, self.tenant.db_name)

    def verify(self) -> None:
        self.sums = table_checksums(self.source, self.quarantine_db)
        if problems := _differences(self.sums,
                                    table_checksums(self.target, self.tenant.db_name)):
            raise MoveError("the copy differs from the source: " + "; ".join(problems))

    def switch(self) -> None:
        user = password = None
        if self.dbs.settings.use_separate_db_users:
            user, password = tenant_db_user(self.dbs, self.tenant.id), secrets.token_urlsafe(24)
            self.target.drop_user(user)  # one an earlier move away from here left
            self.target.create_user(user, password, self.tenant.db_name)
        info = connection_info(self.target, self.tenant.db_name, user, password)
        try:
            with Session(self.dbs.master_engine) as session:
                switched = session.execute(sa.update(TenantMaster).where(
                    TenantMaster.id == self.tenant.id, TenantMaster.status == "moving",
                    TenantMaster.db_server == self.source.server).values(
                    db_server=self.target.server, status=self.tenant.status, moving_to=None,
                    status_before_move=None,
                    db_connection_encrypted=self.dbs.cipher.encrypt(info))).rowcount
                session.commit()
        except Exception as exc:
            if self._switched():  # the commit went through; its answer did not come back
                switched = 1
            else:
                raise MoveError(f"switching tenant_master failed: {exc}") from exc
        if switched != 1:
            raise MoveError(f"tenant {self.tenant.subdomain!r} is no longer moving: not moved")
        self.done.add("switched")
        self.dbs.forget_tenant(self.tenant.id, self.tenant.db_name)

    def _switched(self) -> bool:
        """Whether the row names the target; MoveStuck if master cannot say (the switch may
        have committed: undoing it could drop the live copy)."""
        try:
            with Session(self.dbs.master_engine) as session:
                server = session.scalar(sa.select(TenantMaster.db_server).where(
                    TenantMaster.id == self.tenant.id))
        except Exception as exc:
            raise MoveStuck(f"the switch of {self.tenant.subdomain!r} may or may not have "
                            f"committed and master cannot be read ({exc}); run `finvera "
                            f"tenants repair {self.tenant.subdomain}` once it can") from exc
        return server == self.target.server

    def drop_source(self) -> Moved:
        """After the switch: drop (or keep) the old copy and DB user; failures are reported."""
        kept = cleanup_error = None
        try:
            if self.keep_source:
                kept = kept_name(self.dbs.settings.tenant_db_prefix, self.tenant.id,
                                 int(time.time() * 1000))
                self.source.create_database(kept)
                rename_tables(self.source, self.tables, self.quarantine_db, kept)
            self.source.drop_database(self.quarantine_db)
            if self.dbs.settings.use_separate_db_users:
                self.source.drop_user(tenant_db_user(self.dbs, self.tenant.id))
        except Exception as exc:
            log.exception("tenant %s moved; dropping its old copy failed", self.tenant.subdomain)
            cleanup_error = f"{type(exc).__name__}: {exc}"
        return Moved(self.tenant.subdomain, self.source.server, self.target.server,
                     self.tenant.db_name, len(self.tables),
                     sum(rows for rows, _ in self.sums.values()), kept, cleanup_error)

    def _undo(self, cause: BaseException) -> None:
        """Put everything back as it was and raise MoveError (MoveStuck if that fails)."""
        reason = cause if isinstance(cause, MoveError) else f"{type(cause).__name__}: {cause}"
        try:
            if "quarantined" in self.done:
                _put_back(self.dbs, self.source,
                          self.target if "copied" in self.done else None, self.tenant,
                          self.tables if tables_of(self.source, self.quarantine_db) else [])
            if "marked" in self.done:
                _restore_status(self.dbs, self.tenant, self.tenant.status)
        except Exception as exc:
            raise MoveStuck(f"moving {self.tenant.subdomain!r} failed ({reason}) and undoing "
                            f"it failed too ({type(exc).__name__}: {exc}); the tenant stays "
                            f"'moving' until `finvera tenants repair {self.tenant.subdomain}` "
                            "undoes it") from cause
        if isinstance(cause, KeyboardInterrupt):
            raise cause
        raise MoveError(f"moving {self.tenant.subdomain!r} failed ({reason}); undone: it is "
                        f"served from {self.source.server} as before") from cause


def _refusal(dbs: Databases, tenant: TenantMaster | None, subdomain: str,
             target: str) -> str | None:
    """Why this move cannot start (nothing has changed), or None."""
    if tenant is not None and tenant.status == "moving":
        return (f"tenant {subdomain!r} is being moved (or its move was interrupted: "
                f"`finvera tenants repair {subdomain}` undoes it)")
    if tenant is None or tenant.status not in LIVE_STATUSES:
        return f"no active or suspended tenant {subdomain!r}"
    if target == tenant.db_server:
        return f"tenant {subdomain!r} is already on server {target!r}"
    target_backend, source = dbs.backend_of(target), dbs.backend_of(tenant.db_server)
    if target in dbs.settings.closed_db_servers:
        return f"server {target!r} is closed to new tenants (TENANT_DB_SERVERS_CLOSED)"
    quarantine = quarantine_name(dbs.settings.tenant_db_prefix, tenant.id)
    if source.database_exists(quarantine):
        return (f"{quarantine} on {tenant.db_server!r} is left from an earlier move: see "
                "`finvera tenants repair --all`")
    if target_backend.database_exists(tenant.db_name):
        return (f"a database {tenant.db_name} already exists on {target!r} (a leftover, or the "
                "same server under two names): not moved")
    return None


def move_tenant(dbs: Databases, subdomain: str, target: str, *, keep_source: bool = False,
                on_step: Callable[[str], None] = pause_if_asked,
                cache_wait: float | None = None) -> Moved:
    """Move a live tenant's database to server ``target`` (see the module's docstring).

    Holds the tenant's subdomain lock throughout, so that a sign-up, another move or repair of
    it waits its turn. ``on_step(name)`` is called before each step (tests inject faults or
    pause there); ``cache_wait`` defaults to TENANT_CACHE_TTL_SECONDS plus a margin.
    """
    if dbs.settings.backend_name != "mysql":
        raise MoveError("moves need MySQL/MariaDB and TENANT_DB_SERVERS")
    wait = (dbs.settings.tenant_cache_ttl_seconds + CACHE_MARGIN_SECONDS
            if cache_wait is None else cache_wait)
    try:
        with dbs.backend.lock(subdomain_lock(dbs, subdomain), timeout=0):
            with Session(dbs.master_engine, expire_on_commit=False) as session:
                tenant = session.scalar(sa.select(TenantMaster).where(
                    TenantMaster.subdomain == subdomain))
            if problem := _refusal(dbs, tenant, subdomain, target):
                raise MoveError(problem)
            return TenantMove(dbs, tenant, target, keep_source, on_step, wait).run()
    except LockTimeout:
        raise MoveError(f"a sign-up, move or repair of {subdomain!r} is under way") from None


def undo_interrupted(dbs: Databases, tenant: TenantMaster) -> str:
    """Undo a move whose process died (the caller holds the subdomain lock): the tenant is
    served from its old server again, whole. Returns what was done, in a phrase."""
    source = dbs.backend_of(tenant.db_server)
    target = dbs.servers.get(tenant.moving_to) if tenant.moving_to else None
    quarantine = quarantine_name(dbs.settings.tenant_db_prefix, tenant.id)
    quarantined = tables_of(source, quarantine)
    # The copy comes after the quarantine: with no table there, nothing reached the target.
    _put_back(dbs, source, target if quarantined else None, tenant, quarantined)
    # The mark always records the status; were it missing, suspended is the one that opens
    # nothing.
    _restore_status(dbs, tenant, tenant.status_before_move or "suspended")
    return (f"undid the interrupted move to {tenant.moving_to}: served from "
            f"{tenant.db_server} again"
            + (f" ({len(quarantined)} tables renamed back)" if quarantined else ""))
