"""The two database servers we run on, behind one small interface.

MySQL/MariaDB (through PyMySQL) is the production backend; SQLite, one file per database under
the data directory, is the embedded default. Every database or user name is checked against
``IDENTIFIER`` and quoted before it reaches SQL.
"""

from __future__ import annotations

import fcntl
import io
import re
import select
import socket
import sqlite3
import ssl
import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Every engine is made with hide_parameters=True: statement parameters carry passwords
# (CREATE USER ... IDENTIFIED BY) and encrypted connection info, and must never reach a log
# or an error message, whatever logging an operator turns on.
# What a tenant's own DB user may do on its database: data, DDL for its migrations, and the
# locks and temporary tables migrations and reports use. infra/databases.py grants the app
# exactly these (with GRANT OPTION) on the tenant prefix; a test keeps the two lists equal.
TENANT_PRIVILEGES = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "INDEX", "REFERENCES",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "CREATE VIEW", "SHOW VIEW", "TRIGGER",
)
DEFAULT_SERVER = "default"  # the DB_HOST server (or SQLite): main, master, and tenants too
ER_DB_CREATE_EXISTS = 1007
ER_DB_DROP_EXISTS = 1008
ER_CANNOT_USER = 1396
# A pooled connection idle at least this long is pinged on checkout; one used more recently is
# only looked at (see MySQLBackend._check): HikariCP's trade (it skips its check within 500 ms
# of a connection's last use).
PING_AFTER_IDLE = 1.0
TCP_ESTABLISHED = 1  # tcp_info.tcpi_state (linux/tcp_states.h)


class BackendError(Exception):
    """An operation the backend cannot do, or a name it refuses."""


class UnknownServer(BackendError):
    """A tenant's row names a database server that the configuration does not list."""


class LockTimeout(BackendError):
    """Another process held a named lock for longer than we were willing to wait."""


def checked_identifier(name: str, what: str = "database name") -> str:
    """Return ``name`` if it is safe to quote into SQL, else raise BackendError."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise BackendError(f"invalid {what} {name!r}: letters, digits and underscores, 1-64")
    return name


class Backend(ABC):
    """What the platform needs from a database server."""

    name: str
    # The server's name in TENANT_DB_SERVERS and tenant_master.db_server ("default": DB_HOST).
    server: str = DEFAULT_SERVER
    # Can one connection serve every database on the server (statements naming the database)?
    shares_connections: bool

    @abstractmethod
    def url(self, database: str, user: str | None = None, password: str | None = None) -> URL:
        """The SQLAlchemy URL of ``database`` (as ``user`` when given)."""

    @abstractmethod
    def yoyo_url(self, database: str) -> str:
        """The connection URI yoyo-migrations takes for ``database``."""

    @abstractmethod
    def create_engine(self, database: str, **options) -> Engine:
        """An engine on ``database`` with this backend's connection settings."""

    @abstractmethod
    def create_database(self, name: str) -> bool:
        """Create ``name`` unless it exists; True when this call created it."""

    @abstractmethod
    def drop_database(self, name: str) -> bool:
        """Drop ``name`` if it exists; True when this call dropped it."""

    @abstractmethod
    def list_databases(self, prefix: str) -> list[str]:
        """Names of the databases that start with ``prefix``, sorted."""

    @abstractmethod
    def database_size(self, name: str) -> int:
        """Bytes the database takes on disk (data and indexes)."""

    @abstractmethod
    def database_sizes(self, prefix: str) -> dict[str, int]:
        """Bytes of every database starting with ``prefix``, measured in one go."""

    @abstractmethod
    def create_user(self, user: str, password: str, database: str) -> None:
        """Create a DB user with all privileges on ``database`` and nothing else."""

    @abstractmethod
    def grant_database(self, user: str, database: str) -> None:
        """Give an existing DB user the tenant privileges on one more ``database``."""

    @abstractmethod
    def revoke_database(self, user: str, database: str) -> None:
        """Take the tenant privileges on ``database`` away from a DB user."""

    @abstractmethod
    def drop_user(self, user: str) -> bool:
        """Drop a DB user if it exists; True when this call dropped it."""

    @abstractmethod
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold a server-wide named lock, so that processes take turns (context manager)."""

    def database_exists(self, name: str) -> bool:
        return name in self.list_databases(checked_identifier(name))

    @abstractmethod
    def dispose(self) -> None:
        """Close whatever connections the backend keeps for itself."""

    @abstractmethod
    def connect_counted(self, cargs: tuple, cparams: dict,
                        on_close: Callable[[object], None]) -> object:
        """Open a DBAPI connection that calls ``on_close(connection)`` once it is closed.

        The connection manager counts open connections with this: a slot is given back only
        after the server has been told the connection is gone, never before.
        """


class MySQLBackend(Backend):
    """MySQL or MariaDB through PyMySQL; an admin engine on the server does the DDL."""

    name = "mysql"
    shares_connections = True
    user_host = "%"

    def __init__(self, host: str, port: int, user: str, password: str,
                 connect_timeout: int = 5, ssl_mode: str = "preferred",
                 query_timeout: int = 60, server: str = DEFAULT_SERVER) -> None:
        self.server = server
        self.host, self.port, self.user, self.password = host, port, user, password
        self.connect_timeout, self.query_timeout = connect_timeout, query_timeout
        self.ssl_mode = ssl_mode
        # PyMySQL builds a fresh TLS context (about 16 ms of CA loading) for every connection
        # in its default "preferred" mode; "required" shares one verifying context instead,
        # and "disabled" (a trusted network) skips TLS.
        self._connect_args = {"connect_timeout": connect_timeout, **{
            "preferred": {}, "disabled": {"ssl_disabled": True},
            "required": {"ssl": ssl.create_default_context()} if ssl_mode == "required" else {},
        }[ssl_mode]}
        self._admin = sa.create_engine(
            self.url(None), pool_size=2, max_overflow=8, pool_pre_ping=True,
            isolation_level="AUTOCOMMIT", connect_args=self._connect_args,
            hide_parameters=True)
        # A lock lives as long as its connection: one each, outside the pool, so that a process
        # killed while holding one releases it, and held locks never starve the admin pool.
        self._locks = sa.create_engine(
            self.url(None), poolclass=sa.pool.NullPool, connect_args=self._connect_args,
            hide_parameters=True)

    def url(self, database, user=None, password=None):
        return URL.create(
            "mysql+pymysql", username=user or self.user,
            password=self.password if user is None else password,
            host=self.host, port=self.port,
            database=checked_identifier(database) if database else None,
            query={"charset": "utf8mb4"})

    def yoyo_url(self, database):
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        options = {"preferred": "", "disabled": "&ssl_disabled=1",
                   "required": f"&ssl=1&sslca={quote(ssl.get_default_verify_paths().cafile or '')}"}
        return (f"mysql://{credentials}@{self.host}:{self.port}/"
                f"{checked_identifier(database)}?charset=utf8mb4{options[self.ssl_mode]}")

    def create_engine(self, database, **options):
        """An engine whose waits are all bounded: a server that stops answering (not just one
        that refuses connections) costs a request the connect timeout, never a hang."""
        options.setdefault("pool_recycle", 3600)
        # PyMySQL's connect_timeout covers only the TCP connect: bound the handshake's reads
        # and writes too, then give queries their own, longer limit once connected.
        connect_args = {**self._connect_args, "read_timeout": self.connect_timeout,
                        "write_timeout": self.connect_timeout,
                        **options.pop("connect_args", {})}
        user, password = options.pop("user", None), options.pop("password", None)
        engine = sa.create_engine(self.url(database, user, password),
                                  connect_args=connect_args, hide_parameters=True, **options)
        sa.event.listen(engine, "connect", self._after_connect)
        sa.event.listen(engine, "checkin", _mark_idle)
        sa.event.listen(engine, "checkout", self._check)
        return engine

    def _after_connect(self, dbapi_connection, _record) -> None:
        _set_timeouts(dbapi_connection, self.query_timeout)

    def _check(self, dbapi_connection, record, _proxy) -> None:
        """Check a pooled connection before use, and replace a dead one (DisconnectionError:
        SQLAlchemy retries the checkout on another).

        One idle for PING_AFTER_IDLE or more is pinged, within the connect timeout; one used
        more recently is only looked at, at no round trip: a server that closed it (restart,
        KILL, wait_timeout) has made its socket readable. A server that hangs within that
        second costs the query its read timeout, as a hang in mid-query always does. A ping
        that times out (the server accepts but does not answer) fails the checkout at once:
        a retry would wait another connect timeout on the same server.
        """
        idle_since = record.info.get("idle_since")
        if idle_since is None:  # it has just connected
            return
        if time.monotonic() - idle_since < PING_AFTER_IDLE:
            if _closed_by_server(dbapi_connection):
                raise sa.exc.DisconnectionError("connection closed by the server")
            return
        _set_timeouts(dbapi_connection, self.connect_timeout)
        try:
            dbapi_connection.ping(reconnect=False)
        except pymysql.err.Error as exc:
            if isinstance(exc.__context__, TimeoutError):  # PyMySQL's "Lost connection"
                raise
            raise sa.exc.DisconnectionError(f"stale connection: {exc}") from exc
        finally:
            _set_timeouts(dbapi_connection, self.query_timeout)

    def _execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._admin.connect() as conn:
            result = conn.exec_driver_sql(sql, params) if params else conn.exec_driver_sql(sql)
            return list(result) if result.returns_rows else []

    def create_database(self, name):
        try:
            self._execute(f"CREATE DATABASE `{checked_identifier(name)}` "
                          "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        except sa.exc.DatabaseError as exc:
            if _mysql_errno(exc) == ER_DB_CREATE_EXISTS:
                return False
            raise
        return True

    def drop_database(self, name):
        try:
            self._execute(f"DROP DATABASE `{checked_identifier(name)}`")
        except sa.exc.DatabaseError as exc:
            if _mysql_errno(exc) == ER_DB_DROP_EXISTS:
                return False
            raise
        return True

    def list_databases(self, prefix):
        like = checked_identifier(prefix, "prefix").replace("_", r"\_") + "%"
        rows = self._execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                             "WHERE SCHEMA_NAME LIKE %s ORDER BY SCHEMA_NAME", (like,))
        return [name for (name,) in rows]

    def database_size(self, name):
        rows = self._execute("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) "
                             "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                             (checked_identifier(name),))
        return int(rows[0][0])

    def database_sizes(self, prefix):
        like = checked_identifier(prefix, "prefix").replace("_", r"\_") + "%"
        rows = self._execute("SELECT TABLE_SCHEMA, SUM(DATA_LENGTH + INDEX_LENGTH) "
                             "FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE %s "
                             "GROUP BY TABLE_SCHEMA", (like,))
        return {name: int(size or 0) for name, size in rows}

    def create_user(self, user, password, database):
        self._execute("CREATE USER %s@%s IDENTIFIED BY %s",
                      (checked_identifier(user, "user name"), self.user_host, password))
        self.grant_database(user, database)

    def grant_database(self, user, database):
        self._execute(f"GRANT {', '.join(TENANT_PRIVILEGES)} ON {_grant_target(database)} "
                      "TO %s@%s", (checked_identifier(user, "user name"), self.user_host))

    def revoke_database(self, user, database):
        self._execute(f"REVOKE {', '.join(TENANT_PRIVILEGES)} ON {_grant_target(database)} "
                      "FROM %s@%s", (checked_identifier(user, "user name"), self.user_host))

    def drop_user(self, user):
        # Not DROP USER IF EXISTS plus a look in mysql.user: the app's least-privilege account
        # may not read mysql.user. A failed DROP USER (1396) means there was no such user.
        try:
            self._execute("DROP USER %s@%s", (checked_identifier(user, "user name"),
                                              self.user_host))
        except sa.exc.DatabaseError as exc:
            if _mysql_errno(exc) == ER_CANNOT_USER:
                return False
            raise
        return True

    @contextmanager
    def lock(self, name, timeout=60.0):
        with self._locks.connect() as conn:
            got = conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)",
                                       (checked_identifier(name, "lock name"), timeout)).scalar()
            if got != 1:
                raise LockTimeout(f"lock {name!r} still held by another process after {timeout}s")
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))

    def dispose(self):
        self._admin.dispose()
        self._locks.dispose()

    def connect_counted(self, cargs, cparams, on_close):
        class CountedConnection(_RollbackWhenDirty):
            def close(self):
                try:
                    super().close()
                finally:
                    on_close(self)

        return CountedConnection(*cargs, **cparams)


class _RollbackWhenDirty(pymysql.connections.Connection):
    """A PyMySQL connection that sends ROLLBACK only when a statement ran since the last
    COMMIT or ROLLBACK.

    A tenant request's session rolls back when it closes and the pool rolls back again on
    check-in: the second one has nothing to undo (with autocommit off, no transaction is open
    until the next statement) and cost a round trip per request. Every statement, failed ones
    included, goes through ``query`` (cursors call it) or ``begin``, so neither is ever skipped
    after a statement.
    """

    _dirty = True  # until the first COMMIT or ROLLBACK: a new connection's state is the server's

    def query(self, sql, unbuffered=False):
        self._dirty = True
        return super().query(sql, unbuffered)

    def begin(self):
        self._dirty = True
        super().begin()

    def commit(self):
        super().commit()
        self._dirty = False

    def rollback(self):
        if self._dirty:
            super().rollback()
            self._dirty = False


def _mark_idle(_dbapi_connection, record) -> None:
    """checkin hook: remember when the connection went idle (the next checkout's check)."""
    record.info["idle_since"] = time.monotonic()


def _closed_by_server(dbapi_connection) -> bool:
    """Whether the server has closed an idle PyMySQL connection (restart, KILL, wait_timeout),
    at no round trip: its FIN has moved the socket out of ESTABLISHED (to CLOSE_WAIT).

    Read with getsockopt(TCP_INFO), which keeps the GIL, where poll() lets go of it: under a
    threaded server's load every release hands the GIL to another thread and back, a cost
    per request (docs/benchmarks.md, lever 14). Where TCP_INFO is missing (not Linux), poll().
    """
    sock = dbapi_connection._sock
    if sock is None:
        return True
    if not hasattr(socket, "TCP_INFO"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_ESTABLISHED


def _set_timeouts(dbapi_connection, seconds: float) -> None:
    """Bound every read and write of an open PyMySQL connection to ``seconds`` (from its next
    I/O on).

    Kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO) on a blocking socket, not by Python's socket
    timeout: a socket with a timeout polls before each send and receive, and each poll lets go
    of the GIL (see _closed_by_server). TLS connections keep Python's timeout, as PyMySQL sets
    it: a kernel timeout there surfaces as an SSL error this code does not claim to handle.
    """
    if dbapi_connection._secure or dbapi_connection._sock is None:
        dbapi_connection._read_timeout = dbapi_connection._write_timeout = seconds
        return
    dbapi_connection._read_timeout = dbapi_connection._write_timeout = None
    sock = dbapi_connection._sock
    timeval = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    if not isinstance(dbapi_connection._rfile.raw, _KernelTimedIO):
        # Between statements PyMySQL's reader holds nothing unread (the server only answers),
        # so it can be swapped for one that knows the kernel's timeout.
        dbapi_connection._rfile = io.BufferedReader(_KernelTimedIO(sock, "rb"))


class _KernelTimedIO(socket.SocketIO):
    """A socket's raw reader that raises TimeoutError when SO_RCVTIMEO runs out, as a socket
    with Python's timeout does (PyMySQL then closes the connection: "Lost connection ... (timed
    out)"); the stock reader returns None there, which PyMySQL does not expect."""

    def readinto(self, buffer):
        read = super().readinto(buffer)
        if read is None:  # EAGAIN on a blocking socket: the kernel's timeout ran out
            raise TimeoutError("timed out")
        return read


def _grant_target(database: str) -> str:
    """``db``.* for GRANT and REVOKE, its "_" escaped: there it is a wildcard, and the grant
    must cover this one name."""
    return "`" + checked_identifier(database).replace("_", r"\_") + "`.*"


def _mysql_errno(exc: sa.exc.DatabaseError) -> int | None:
    original = exc.orig
    if isinstance(original, pymysql.MySQLError) and original.args:
        return original.args[0]
    return None


class SQLiteBackend(Backend):
    """The embedded default: each database is ``<data_dir>/<name>.sqlite3``."""

    name = "sqlite"
    shares_connections = False
    suffix = ".sqlite3"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()

    def path(self, database: str) -> Path:
        return self.data_dir / f"{checked_identifier(database)}{self.suffix}"

    def url(self, database, user=None, password=None):
        return URL.create("sqlite", database=str(self.path(database)))

    def yoyo_url(self, database):
        return f"sqlite:///{self.path(database)}"

    def create_engine(self, database, **options):
        for unsupported in ("user", "password"):
            if options.pop(unsupported, None):
                raise BackendError("SQLite has no database users")
        options.pop("connect_args", None)
        engine = sa.create_engine(self.url(database), connect_args={"timeout": 30},
                                  hide_parameters=True, **options)
        sa.event.listen(engine, "connect", _configure_sqlite_connection)
        return engine

    def create_database(self, name):
        path = self.path(name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            path.touch(exist_ok=False)
        except FileExistsError:
            return False
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        return True

    def drop_database(self, name):
        path = self.path(name)
        existed = path.exists()
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        return existed

    def list_databases(self, prefix):
        checked_identifier(prefix, "prefix")
        return sorted(p.name.removesuffix(self.suffix)
                      for p in self.data_dir.glob(f"{prefix}*{self.suffix}"))

    def database_size(self, name):
        path = self.path(name)
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())

    def database_sizes(self, prefix):
        return {name: self.database_size(name) for name in self.list_databases(prefix)}

    def create_user(self, user, password, database):
        raise BackendError("SQLite has no database users")

    def grant_database(self, user, database):
        raise BackendError("SQLite has no database users")

    def revoke_database(self, user, database):
        raise BackendError("SQLite has no database users")

    def drop_user(self, user):
        raise BackendError("SQLite has no database users")

    def dispose(self):
        """Nothing to close: the backend itself keeps no SQLite connection open."""

    def connect_counted(self, cargs, cparams, on_close):
        class CountedConnection(sqlite3.Connection):
            def close(self):
                try:
                    super().close()
                finally:
                    on_close(self)

        return sqlite3.connect(*cargs, **cparams, factory=CountedConnection)
    @contextmanager
    def lock(self, name, timeout=60.0):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        with open(self.data_dir / f".{checked_identifier(name, 'lock name')}.lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockTimeout(
                            f"lock {name!r} still held by another process after {timeout}s"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    """Enforce foreign keys and wait for locks on every new SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def backend_for(settings) -> Backend:
    """The backend the settings ask for: MySQL when DB_HOST is set, else SQLite."""
    if settings.backend_name == "mysql":
        return MySQLBackend(settings.db_host, settings.db_port, settings.db_user,
                            settings.db_password, settings.db_connect_timeout_seconds,
                            settings.db_ssl, settings.db_query_timeout_seconds)
    return SQLiteBackend(settings.data_dir)


def server_backend(backends: Mapping[str, Backend], server: str) -> Backend:
    """``backends[server]``, or UnknownServer naming the servers there are."""
    try:
        return backends[server]
    except KeyError:
        raise UnknownServer(f"database server {server!r} is not configured (servers: "
                            f"{', '.join(backends)}; see TENANT_DB_SERVERS)") from None


def backends_for(settings) -> dict[str, Backend]:
    """A backend per tenant database server, by name: ``default`` (DB_HOST, or SQLite) first,
    then those of TENANT_DB_SERVERS, each with its own credentials."""
    backends = {DEFAULT_SERVER: backend_for(settings)}
    for server in settings.tenant_db_servers:
        backends[server.name] = MySQLBackend(
            server.host, server.port, server.user, server.password,
            settings.db_connect_timeout_seconds, settings.db_ssl,
            settings.db_query_timeout_seconds, server=server.name)
    return backends
