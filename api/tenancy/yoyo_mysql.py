"""yoyo's own MySQL backend, on a connection we hand it, without its extra round trips.

yoyo-migrations' MySQL backend opens a connection of its own and a second one for every
migration it applies, sends ``SHOW VARIABLES LIKE 'sql_mode'`` each time it quotes a name,
probes every new database for transactional DDL (a table created and dropped), looks its own
schema version up again before each migration and resolves the host's FQDN for every log row.
``SharedConnectionBackend`` is that backend with those costs taken out, nothing else: yoyo still
reads what is applied, takes and releases its lock row, applies each migration with its steps
and rollback steps, and writes ``_yoyo_migration``, ``_yoyo_log`` and ``_yoyo_version`` as it
always does, so the ``yoyo`` CLI and ``finvera migrate`` see the same records either way.
"""

from __future__ import annotations

import functools
import getpass
import socket
import uuid
import weakref
from datetime import UTC, datetime

from yoyo import internalmigrations
from yoyo.backends.base import logger
from yoyo.backends.core.mysql import MySQLBackend
from yoyo.connections import DatabaseURI
from yoyo.migrations import default_migration_table

# Whether ANSI_QUOTES is in each connection's sql_mode, read once per connection.
_ANSI_QUOTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.cache
def _log_identity() -> tuple[str, str]:
    """The user and host yoyo writes in each ``_yoyo_log`` row, looked up once per process."""
    return getpass.getuser(), socket.getfqdn()


class SharedConnectionBackend(MySQLBackend):
    """yoyo's MySQL backend on an open PyMySQL connection whose current database (``USE``) is
    ``database``; the caller owns the connection and closes it, never the backend.

    MySQL commits DDL implicitly, so there is no transactional DDL to probe for; the lock table
    is made with IF NOT EXISTS (one statement, no error to catch); sql_mode is read once.
    """

    has_transactional_ddl = False
    create_lock_table_sql = MySQLBackend.create_lock_table_sql.replace(
        "CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)

    def __init__(self, connection, database: str,
                 migration_table: str = default_migration_table) -> None:
        self._given = connection
        self._ansi_quotes: bool | None = None
        super().__init__(DatabaseURI("mysql", None, None, None, None, database, {}),
                         migration_table)
        self.has_transactional_ddl = False

    def connect(self, dburi):
        return self._given

    def init_database(self):
        self.create_lock_table()

    def quote_identifier(self, identifier):
        if self._ansi_quotes is None:
            raw = getattr(self._given, "dbapi_connection", self._given)  # a pool's proxy
            if raw not in _ANSI_QUOTES:
                sql_mode = self.execute("SHOW VARIABLES LIKE 'sql_mode'").fetchone()[1]
                _ANSI_QUOTES[raw] = "ansi_quotes" in sql_mode.lower()
            self._ansi_quotes = _ANSI_QUOTES[raw]
        if self._ansi_quotes:
            return super(MySQLBackend, self).quote_identifier(identifier)
        return f"`{identifier}`"

    def copy(self):
        """The backend yoyo applies each migration's steps with: on the same connection (yoyo
        opens a second one), with a transaction state of its own."""
        return self.__class__(self._given, self.uri.database, self.migration_table)

    def __exit__(self, exc_type, exc_value, traceback):
        """Leave the connection open: it is the caller's."""

    def ensure_internal_schema_updated(self):
        """yoyo's check of its own tables' version, once per backend rather than before every
        migration, and one query where they are current; yoyo's own check (and upgrade)
        otherwise."""
        if self._internal_schema_updated:
            return
        try:
            version = self.execute(
                f"SELECT (SELECT MAX({self.quote_identifier('version')}) FROM "
                f"{self.version_table_quoted}), (SELECT COUNT(*) FROM "
                f"{self.migration_table_quoted} WHERE 1 = 0)").fetchone()[0]
        except self.DatabaseError:  # a table is missing: yoyo makes it
            version = None
        if version != max(internalmigrations.schema_versions):
            super().ensure_internal_schema_updated()
        self._internal_schema_updated = True

    def apply_one(self, migration, force=False, mark=True):
        """yoyo's apply_one, with its log row and its record of the migration committed
        together (yoyo commits them one after the other)."""
        logger.info("Applying %s", migration.id)
        self.ensure_internal_schema_updated()
        migration.process_steps(self.copy(), "apply", force=force)
        with self.transaction():
            self.log_migration(migration, "apply")
            if mark:
                self.mark_one(migration, log=False)

    def get_log_data(self, migration=None, operation="apply"):
        """yoyo's ``_yoyo_log`` row, with the user and host looked up once per process."""
        assert operation in {"apply", "rollback", "mark", "unmark"}
        username, hostname = _log_identity()
        return {"id": str(uuid.uuid1()),
                "migration_id": migration.id if migration else None,
                "migration_hash": migration.hash if migration else None,
                "username": username, "hostname": hostname,
                "created_at_utc": datetime.now(UTC).replace(tzinfo=None),
                "operation": operation}
