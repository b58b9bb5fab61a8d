"""yoyo's own MySQL backend, on a connection we hand it, without its extra round trips.

yoyo-migrations' MySQL backend opens a connection of its own and a second one for every
migration it applies, sends ``SHOW VARIABLES LIKE 'sql_mode'`` each time it quotes a name,
probes every new database for transactional DDL (a table created and dropped), looks its own
schema version up again before each migration and resolves the host's FQDN for every log row;
its lock is a row written and deleted in ``yoyo_lock``, a commit each, and a migration's steps
commit apart from its record.

``SharedConnectionBackend`` is that backend with those costs taken out. yoyo still reads what is
applied under its lock, applies each migration with its steps and rollback steps, and writes
``_yoyo_migration``, ``_yoyo_log`` and ``_yoyo_version`` as it always does, so the ``yoyo`` CLI
and ``finvera migrate`` see the same records. Two things differ, both on purpose:

- the lock is a MariaDB named lock (``GET_LOCK``) held by the connection, named for the
  database (``migration_lock_name``): no commit to take or release it, and a process that dies
  releases it with its connection, where yoyo's row stays behind until ``yoyo break-lock``.
  Every path of ours that migrates a database takes it; the ``yoyo`` CLI does not see it;
- a migration's steps, its log row and its record are one transaction. MySQL commits each DDL
  statement on its own anyway; what follows the last DDL (a data step) now commits with the
  record, so a crash can no longer leave it done but unrecorded, and there is one commit less.

On a connection opened with ``CLIENT.MULTI_STATEMENTS`` (the fleet's: ``MULTI_STATEMENTS``) the
bookkeeping takes three round trips per migrated database: the rollback and the lock; yoyo's
schema version and what is applied; the log row, the record and the commit. On any other
connection (sign-up's, which goes on to serve requests) the same statements go one at a time.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import socket
import uuid
import weakref
from contextlib import contextmanager
from datetime import UTC, datetime

from pymysql.constants import CLIENT
from yoyo import exceptions, internalmigrations, utils
from yoyo.backends.base import logger
from yoyo.backends.core.mysql import MySQLBackend
from yoyo.connections import DatabaseURI
from yoyo.migrations import default_migration_table

# connect_args for a connection that takes several statements at once (see the docstring).
MULTI_STATEMENTS = {"client_flag": CLIENT.MULTI_STATEMENTS}


def migration_lock_name(database: str) -> str:
    """The named lock migrating ``database`` holds: a digest, so that any database name (up
    to 64 characters) fits MariaDB's 64-character lock names."""
    return "yoyo_" + hashlib.sha256(database.encode()).hexdigest()[:40]


# Whether ANSI_QUOTES is in each connection's sql_mode, read once per connection.
_ANSI_QUOTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.cache
def _log_identity() -> tuple[str, str]:
    """The user and host yoyo writes in each ``_yoyo_log`` row, looked up once per process."""
    return getpass.getuser(), socket.getfqdn()


class SharedConnectionBackend(MySQLBackend):
    """yoyo's MySQL backend on an open PyMySQL connection whose current database (``USE``) is
    ``database``; the caller owns the connection and closes it, never the backend.

    MySQL commits DDL implicitly, so there is no transactional DDL to probe for; sql_mode is
    read once; the lock is a named lock, so there is no lock table to make.
    """

    has_transactional_ddl = False

    def __init__(self, connection, database: str,
                 migration_table: str = default_migration_table) -> None:
        self._given = connection
        self._raw = getattr(connection, "dbapi_connection", connection)  # under a pool's proxy
        self._ansi_quotes: bool | None = None
        super().__init__(DatabaseURI("mysql", None, None, None, None, database, {}),
                         migration_table)
        self.has_transactional_ddl = False

    def connect(self, dburi):
        return self._given

    def init_database(self):
        """Nothing to make: yoyo's own tables are made on first use, and the lock needs none."""

    def _run(self, *statements: tuple[str, dict | None]) -> list[tuple]:
        """Each ``(sql, named parameters)`` statement's rows, in order: in one round trip where
        the connection takes several statements, else one statement at a time."""
        if not self._raw.client_flag & CLIENT.MULTI_STATEMENTS:
            return [self.execute(sql, params).fetchall() for sql, params in statements]
        with self._raw.cursor() as cursor:
            cursor.execute(";\n".join(
                cursor.mogrify(*utils.change_param_style(self.driver.paramstyle, sql, params))
                for sql, params in statements))
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
        return results

    @contextmanager
    def lock(self, timeout=10):
        """yoyo's lock on this database, as the named lock ``migration_lock_name`` held by this
        connection; raises yoyo's LockTimeout if another connection still holds it after
        ``timeout`` seconds. Whatever transaction the connection had open is rolled back
        first, so what is read under the lock is read afresh (as after yoyo's lock commit)."""
        if self._is_locked:
            yield
            return
        name = migration_lock_name(self.uri.database)
        _, [(got,)] = self._run(("ROLLBACK", None), ("SELECT GET_LOCK(:name, :timeout)",
                                                     {"name": name, "timeout": timeout}))
        self._in_transaction = False
        if got != 1:
            raise exceptions.LockTimeout(
                f"another process is migrating {self.uri.database} (it held the migration "
                f"lock for {timeout}s)")
        self._is_locked = True
        try:
            yield
        finally:
            self._is_locked = False
            self.execute("SELECT RELEASE_LOCK(:name)", {"name": name})

    def quote_identifier(self, identifier):
        if self._ansi_quotes is None:
            if self._raw not in _ANSI_QUOTES:
                sql_mode = self.execute("SHOW VARIABLES LIKE 'sql_mode'").fetchone()[1]
                _ANSI_QUOTES[self._raw] = "ansi_quotes" in sql_mode.lower()
            self._ansi_quotes = _ANSI_QUOTES[self._raw]
        if self._ansi_quotes:
            return super(MySQLBackend, self).quote_identifier(identifier)
        return f"`{identifier}`"

    def savepoint(self, id):
        """No savepoints: MySQL commits each DDL statement, and every savepoint with it, and
        undoes a failed statement by itself, so yoyo's savepoint around each step could only
        fail to roll back (``SAVEPOINT sp_1 does not exist``, after the real error)."""

    def savepoint_release(self, id):
        """No savepoint to release (see ``savepoint``)."""

    def savepoint_rollback(self, id):
        """No savepoint to roll back to (see ``savepoint``): the failed statement undid
        itself, and the migration's transaction is rolled back as the error goes up."""

    def copy(self):
        """The backend yoyo applies each migration's steps with: on the same connection (yoyo
        opens a second one), with a transaction state of its own."""
        return self.__class__(self._given, self.uri.database, self.migration_table)

    def __exit__(self, exc_type, exc_value, traceback):
        """Leave the connection open: it is the caller's."""

    def ensure_internal_schema_updated(self):
        """yoyo's check of its own tables, made with the read of what is applied."""
        if not self._internal_schema_updated:
            self.get_applied_migration_hashes()

    def get_applied_migration_hashes(self):
        """What yoyo has applied, read with its check of its own tables' version (once per
        backend, not before every migration) in one round trip where they are current;
        yoyo's own check (and upgrade) otherwise."""
        applied_sql = (self.format_sql(self.applied_migrations_sql), None)
        if self._internal_schema_updated:
            return [row[0] for row in self._run(applied_sql)[0]]
        try:
            [(version,)], applied = self._run((
                f"SELECT MAX({self.quote_identifier('version')}) FROM "
                f"{self.version_table_quoted}", None), applied_sql)
        except self.DatabaseError:  # a table is missing: yoyo makes it
            version = None
        if version != max(internalmigrations.schema_versions):
            super().ensure_internal_schema_updated()
            self._internal_schema_updated = True
            return super().get_applied_migration_hashes()
        self._internal_schema_updated = True
        return [row[0] for row in applied]

    def apply_one(self, migration, force=False, mark=True):
        """yoyo's apply_one, with the migration's steps, its log row and its record in one
        transaction (yoyo commits the steps, then the log row, then the record); a migration
        marked ``-- transactional: false`` is applied as yoyo applies it."""
        migration.load()  # reads use_transactions from the file
        if not migration.use_transactions:
            super().apply_one(migration, force=force, mark=mark)
            return
        logger.info("Applying %s", migration.id)
        self.ensure_internal_schema_updated()
        # PyMySQL runs with autocommit off: the statements are in a transaction already, so
        # there is no BEGIN to send.
        self._in_transaction = True
        try:
            migration.process_steps(self, "apply", force=force)
            log = self.get_log_data(migration, "apply")
            record = {"migration_hash": migration.hash, "migration_id": migration.id,
                      "when": log["created_at_utc"]}
            marks = [(self.format_sql(self.mark_migration_sql), record)] if mark else []
            self._run((self.format_sql(self.log_migration_sql), log), *marks, ("COMMIT", None))
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False

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
