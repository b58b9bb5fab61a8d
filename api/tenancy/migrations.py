"""yoyo-migrations for the three tiers, and the start-up flow that creates master and main.

Migration files are read once per process per tier; what is pending is read from yoyo's own
``_yoyo_migration`` table with one query, so checking is cheap. On MySQL yoyo runs on one
connection per database (``api.tenancy.yoyo_mysql``), which the fleet reuses from tenant to
tenant; its lock and records are yoyo's own either way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from yoyo import get_backend, read_migrations
from yoyo.migrations import MigrationList

from api.tenancy.backends import Backend
from api.tenancy.yoyo_mysql import SharedConnectionBackend

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
YOYO_TABLE = "_yoyo_migration"
INIT_LOCK = "finvera_init"


class Tier(StrEnum):
    MAIN = "main"
    MASTER = "master"
    TENANT = "tenant"


@functools.cache
def tier_migrations(tier: Tier) -> MigrationList:
    """The tier's migrations, read from ``migrations/<tier>`` once per process."""
    folder = MIGRATIONS_DIR / tier
    if not folder.is_dir():
        raise FileNotFoundError(f"migrations folder {folder} is missing "
                                "(install the project from its source tree: pip install -e .)")
    return read_migrations(str(folder))


def migration_ids(tier: Tier) -> list[str]:
    return [migration.id for migration in tier_migrations(tier)]


@contextmanager
def yoyo_backend(backend: Backend, database: str, connection=None) -> Iterator[object]:
    """A yoyo backend on ``database``. On MySQL it runs on one PyMySQL connection: the
    ``connection`` given (the backend switches it to ``database`` with its first statement;
    the caller keeps it) or one opened for the block; on SQLite it is yoyo's own."""
    if not backend.shares_connections:
        own = get_backend(backend.yoyo_url(database))
        try:
            yield own
        finally:
            own.connection.close()
        return
    engine = None
    if connection is None:
        engine = backend.create_engine(database, poolclass=sa.pool.NullPool)
        connection = engine.raw_connection()
    try:
        shared = SharedConnectionBackend(connection, database)
        shared.init_database()
        yield shared
    finally:
        if engine is not None:
            connection.close()
            engine.dispose()


def apply_migrations(backend: Backend, database: str, tier: Tier, lock_timeout: float = 120,
                     connection=None) -> list[str]:
    """Apply the tier's pending migrations to ``database`` under yoyo's lock on it; return the
    ids applied. ``connection``: an open DBAPI connection to its server to do it on (MySQL)."""
    with yoyo_backend(backend, database, connection) as migrator:
        with migrator.lock(timeout=lock_timeout):
            pending = migrator.to_apply(tier_migrations(tier))
            migrator.apply_migrations(pending)
        return [migration.id for migration in pending]


def apply_pending(backend: Backend, database: str, tier: Tier,
                  connection: sa.Connection | None = None) -> list[str]:
    """apply_migrations, but a database already current costs one query, not a yoyo run. On
    MySQL the query and yoyo share one connection: ``connection`` (on ``database``) if given."""
    if connection is not None:
        return _apply_pending_on(backend, database, tier, connection)
    engine = backend.create_engine(database, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as own:
            return _apply_pending_on(backend, database, tier, own)
    finally:
        engine.dispose()


def _apply_pending_on(backend: Backend, database: str, tier: Tier,
                      connection: sa.Connection) -> list[str]:
    pending = _pending_on(connection, tier)
    connection.rollback()  # end the read, so yoyo starts afresh (and SQLite is not held)
    if not pending:
        return []
    return apply_migrations(backend, database, tier, connection=(
        connection.connection.dbapi_connection if backend.shares_connections else None))


def applied_ids(connection: sa.Connection) -> set[str]:
    """Ids yoyo recorded as applied on this connection's database (none if yoyo never ran)."""
    if not sa.inspect(connection).has_table(YOYO_TABLE):
        return set()
    rows = connection.exec_driver_sql(f"SELECT migration_id FROM {YOYO_TABLE}")
    return {migration_id for (migration_id,) in rows}


def pending_ids(engine: Engine, tier: Tier) -> list[str]:
    """The tier's migrations not yet applied on ``engine``'s database, in order."""
    with engine.connect() as connection:
        return _pending_on(connection, tier)


def _pending_on(connection: sa.Connection, tier: Tier) -> list[str]:
    done = applied_ids(connection)
    return [migration_id for migration_id in migration_ids(tier) if migration_id not in done]


def initialize(backend: Backend, master_db: str, main_db: str) -> dict[str, list[str]]:
    """The seed's start-up flow: create and migrate master, then main. Idempotent.

    A server-wide lock makes processes starting together take turns, so each migration is
    applied once and none sees a half-made database.
    """
    applied = {}
    with backend.lock(INIT_LOCK):
        for database, tier in ((master_db, Tier.MASTER), (main_db, Tier.MAIN)):
            backend.create_database(database)
            applied[database] = apply_migrations(backend, database, tier)
    return applied
