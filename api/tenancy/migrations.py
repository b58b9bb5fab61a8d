"""yoyo-migrations for the three tiers, and the start-up flow that creates master and main.

Migration files are read once per process per tier; what is pending is read from yoyo's own
``_yoyo_migration`` table with one query, so checking is cheap.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from yoyo import get_backend, read_migrations
from yoyo.migrations import MigrationList

from api.tenancy.backends import Backend

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


def apply_migrations(backend: Backend, database: str, tier: Tier,
                     lock_timeout: float = 120) -> list[str]:
    """Apply the tier's pending migrations to ``database``; return the ids applied."""
    yoyo_backend = get_backend(backend.yoyo_url(database))
    try:
        with yoyo_backend.lock(timeout=lock_timeout):
            pending = yoyo_backend.to_apply(tier_migrations(tier))
            yoyo_backend.apply_migrations(pending)
        return [migration.id for migration in pending]
    finally:
        yoyo_backend.connection.close()


def apply_pending(backend: Backend, database: str, tier: Tier) -> list[str]:
    """apply_migrations, but a database already current costs one query, not a yoyo run."""
    engine = backend.create_engine(database, poolclass=sa.pool.NullPool)
    try:
        pending = pending_ids(engine, tier)
    finally:
        engine.dispose()
    return apply_migrations(backend, database, tier) if pending else []


def applied_ids(connection: sa.Connection) -> set[str]:
    """Ids yoyo recorded as applied on this connection's database (none if yoyo never ran)."""
    if not sa.inspect(connection).has_table(YOYO_TABLE):
        return set()
    rows = connection.exec_driver_sql(f"SELECT migration_id FROM {YOYO_TABLE}")
    return {migration_id for (migration_id,) in rows}


def pending_ids(engine: Engine, tier: Tier) -> list[str]:
    """The tier's migrations not yet applied on ``engine``'s database, in order."""
    with engine.connect() as connection:
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
