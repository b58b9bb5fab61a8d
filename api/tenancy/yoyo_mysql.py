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
bookkeeping takes two round trips per migrated database: the switch to it (``USE``), the
rollback, the lock and the read under it of yoyo's schema version and of what is applied; then
the log row, the record, the commit and, with the last migration, the lock's release. On any
other connection (sign-up's, which goes on to serve requests) the same statements go one at a
time.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import socket
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pymysql.constants import CLIENT
from yoyo import exceptions, internalmigrations, utils
from yoyo.backends.base import logger
from yoyo.backends.core.mysql import MySQLBackend
from yoyo.connections import DatabaseURI
from yoyo.migrations import default_migration_table

from api.tenancy.backends import checked_identifier

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
    """yoyo's MySQL backend on ``database``, on an open PyMySQL connection to its server; the
    caller owns the connection and closes it, never the backend.

    The backend switches the connection to ``database`` (``USE``) with the first statement it
    sends, so nothing it sends can land in the database the connection was on before. MySQL
    commits DDL implicitly, so there is no transactional DDL to probe for; sql_mode is read
    once per connection; the lock is a named lock, so there is no lock table to make.
    """

    has_transactional_ddl = False

    def __init__(self, connection, database: str,
                 migration_table: str = default_migration_table) -> None:
        self._given = connection
        self._raw = getattr(connection, "dbapi_connection", connection)  # under a pool's proxy
        self._use: str | None = f"USE `{checked_identifier(database)}`"  # until it is sent
        self._ansi_quotes: bool | None = None
        self._lock_name: str | None = None  # while this backend holds the lock
        self._read_under_lock: tuple[list, list] | None = None  # (version rows, applied rows)
        self._release_with = None  # the migration whose commit gives the lock back
        super().__init__(DatabaseURI("mysql", None, None, None, None, database, {}),
                         migration_table)
        self.has_transactional_ddl = False

    def connect(self, dburi):
        return self._given

    def init_database(self):
        """Nothing to make: yoyo's own tables are made on first use, and the lock needs none."""

    def cursor(self):
        """A cursor on the connection, switched to this backend's database first if nothing
        has been sent yet (yoyo's steps and queries all take their cursors here)."""
        if self._use is not None:
            with self._raw.cursor() as cursor:
                cursor.execute(self._use)
            self._use = None
        return super().cursor()

    def _each(self, *statements: tuple[str, dict | None]) -> Iterator[tuple]:
        """Each ``(sql, named parameters)`` statement's rows, in order, as the caller reads
        them: all sent in one round trip (after the ``USE`` if it is still to be sent) where
        the connection takes several statements, else one statement at a time. An error
        stops there: the statements after it are not run. Read every result, or stop at an
        error: results left unread would leave the connection out of step."""
        if not self._raw.client_flag & CLIENT.MULTI_STATEMENTS:
            for sql, params in statements:
                yield self.execute(sql, params).fetchall()
            return
        with self._raw.cursor() as cursor:
            sql = ";\n".join(
                cursor.mogrify(*utils.change_param_style(self.driver.paramstyle, sql, params))
                for sql, params in statements)
            use, self._use = self._use, None
            cursor.execute(f"{use};\n{sql}" if use else sql)
            if use:
                cursor.nextset()
            yield cursor.fetchall()
            while cursor.nextset():
                yield cursor.fetchall()

    def _run(self, *statements: tuple[str, dict | None]) -> list[tuple]:
        """Each statement's rows, in order (``_each``, read to the end)."""
        return list(self._each(*statements))

    @contextmanager
    def lock(self, timeout=10):
        """yoyo's lock on this database, as the named lock ``migration_lock_name`` held by this
        connection; raises yoyo's LockTimeout if another connection still holds it after
        ``timeout`` seconds. Whatever transaction the connection had open is rolled back
        first, so what is read under the lock is read afresh (as after yoyo's lock commit);
        that read (``get_applied_migration_hashes``) is sent with the lock."""
        if self._is_locked:
            yield
            return
        name = migration_lock_name(self.uri.database)
        results = self._each(("ROLLBACK", None),
                             ("SELECT GET_LOCK(:name, :timeout)", {"name": name,
                                                                   "timeout": timeout}),
                             *self._applied_reads())
        next(results)
        [(got,)] = next(results)
        try:
            version_rows, applied_rows = results
        except self.DatabaseError:  # a table of yoyo's is missing: the read makes them
            version_rows = applied_rows = None
        self._in_transaction = False
        if got != 1:
            raise exceptions.LockTimeout(
                f"another process is migrating {self.uri.database} (it held the migration "
                f"lock for {timeout}s)")
        self._lock_name, self._is_locked = name, True
        if version_rows is not None:
            self._read_under_lock = version_rows, applied_rows
        try:
            yield
        finally:
            self._is_locked, self._read_under_lock = False, None
            if self._lock_name is not None:  # not given back with the last commit
                self._lock_name = None
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

    def _applied_reads(self) -> tuple[tuple[str, None], tuple[str, None]]:
        """The statements that read yoyo's schema version and what it has applied."""
        return ((f"SELECT MAX({self.quote_identifier('version')}) FROM "
                 f"{self.version_table_quoted}", None),
                (self.format_sql(self.applied_migrations_sql), None))

    def get_applied_migration_hashes(self):
        """What yoyo has applied, read with its check of its own tables' version (once per
        backend, not before every migration): the read sent with the lock, or one round
        trip where yoyo's tables are current; yoyo's own check (and upgrade) otherwise."""
        read, self._read_under_lock = self._read_under_lock, None
        if self._internal_schema_updated:
            return [row[0] for row in self._run(self._applied_reads()[1])[0]]
        try:
            [(version,)], applied = read or self._run(*self._applied_reads())
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
            release = ([("SELECT RELEASE_LOCK(:name)", {"name": self._lock_name})]
                       if migration is self._release_with and self._lock_name else [])
            self._run((self.format_sql(self.log_migration_sql), log), *marks, ("COMMIT", None),
                      *release)
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False
        if release:
            self._lock_name = None

    def apply_migrations(self, migrations, force=False):
        """yoyo's; under the lock, the last migration's commit gives the lock back in the same
        round trip, unless post-apply migrations still follow it."""
        last = migrations[-1] if migrations and not migrations.post_apply else None
        self._release_with = last if self._is_locked else None
        try:
            super().apply_migrations(migrations, force=force)
        finally:
            self._release_with = None

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
