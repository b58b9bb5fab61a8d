"""Backups and restores of single databases, on either backend, checked against a manifest.

A backup is one gzip file per database, ``<database>_<YYYYMMDDTHHMMSSZ>.sql.gz`` (a
mariadb-dump/mysqldump of the database) or ``.sqlite3.gz`` (a copy made with SQLite's backup
API), and beside it ``<file>.manifest.json``: database, tier, tenant, applied migrations, rows
per table and the file's sha256. A restore goes into a new database (or, when asked, replaces
one), refuses a file that does not match its manifest, and checks the rows per table after
loading; a failed restore drops what it created. docs/backups.md describes the format.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from api.tenancy.backends import (
    Backend,
    BackendError,
    MySQLBackend,
    SQLiteBackend,
    checked_identifier,
)
from api.tenancy.migrations import Tier, applied_ids
from api.tenancy.subdomains import SUBDOMAIN

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
FILE_SUFFIXES = {"mysql": ".sql.gz", "sqlite": ".sqlite3.gz"}
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A consistent snapshot without locking writers (--single-transaction), everything a database
# holds besides rows, binary data as hex, and no statements the restore does not need: no
# LOCK TABLES (the target is new), no tablespaces (they need the PROCESS privilege).
DUMP_OPTIONS = ("--single-transaction", "--routines", "--triggers", "--hex-blob",
                "--no-tablespaces", "--skip-add-locks", "--default-character-set=utf8mb4")
# The lines of a dump that create a table and that start inserting rows into one.
DUMP_CREATE_TABLE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(")
DUMP_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES")
# A string literal as the dump tools write it: backslash escapes, so never across lines.
DUMP_STRING = re.compile(rb"'(?:[^'\\]|\\.)*'", re.DOTALL)


class BackupError(Exception):
    """A backup or restore that cannot be done, or a file that must not be trusted."""


def _check_tenant(tenant: object) -> None:
    """Raise ValueError unless ``tenant`` is None or a subdomain (it names a tenant's backups)."""
    if tenant is not None and not (isinstance(tenant, str) and SUBDOMAIN.match(tenant)):
        raise ValueError(f"tenant {tenant!r} is not a subdomain")


@dataclass(frozen=True)
class Manifest:
    """What a backup file holds, and how to know it is intact."""

    file: str
    database: str
    tier: Tier
    tenant: str | None
    backend: str
    created_at: str
    schema_version: list[str]
    row_counts: dict[str, int]
    sha256: str
    size_bytes: int
    format_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        """The manifest as written beside its file: indented JSON, unicode as is."""
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and validate a manifest: every name in it is checked before anything uses it."""
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            raise ValueError(f"its fields must be {', '.join(cls.__dataclass_fields__)}")
        if data["format_version"] != MANIFEST_VERSION:
            raise ValueError(f"format_version {data['format_version']!r} is not supported")
        file = data["file"]
        if not isinstance(file, str) or Path(file).name != file or file.startswith("."):
            raise ValueError(f"file {file!r} is not a plain file name")
        checked_identifier(data["database"])
        _check_tenant(data["tenant"])
        if data["backend"] not in FILE_SUFFIXES:
            raise ValueError(f"backend {data['backend']!r} is not one of mysql, sqlite")
        versions = data["schema_version"]
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise ValueError("schema_version must be a list of migration ids")
        counts = data["row_counts"]
        if not isinstance(counts, dict):
            raise ValueError("row_counts must map table names to row counts")
        for table, rows in counts.items():
            checked_identifier(table, "table name")
            if type(rows) is not int or rows < 0:
                raise ValueError(f"row count {rows!r} of {table} is not a count")
        if not isinstance(data["sha256"], str) or not SHA256.match(data["sha256"]):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return cls(**{**data, "tier": Tier(data["tier"])})


@dataclass(frozen=True)
class RestoreReport:
    """A restore that succeeded: where it went, and the manifest it was checked against."""

    database: str
    manifest: Manifest
    replaced: bool


def manifest_path(dump_path: Path) -> Path:
    """The manifest beside a backup file: ``<file>.manifest.json``."""
    return dump_path.with_name(dump_path.name + MANIFEST_SUFFIX)


def read_manifest(dump_path: Path) -> Manifest:
    """The validated manifest of ``dump_path``; BackupError if it is missing or not valid."""
    path = manifest_path(Path(dump_path))
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{path} is missing: a backup is only restored with its "
                          "manifest") from None
    except (ValueError, TypeError, KeyError, BackendError) as exc:
        raise BackupError(f"{path} is not a valid manifest: {exc}") from None


def file_sha256(path: Path) -> str:
    """The sha256 of a file, hex, read in chunks (backups can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup_database(backend: Backend, database: str, out_dir: Path, *, tier: Tier,
                    tenant: str | None = None) -> Path:
    """Write ``database`` to a new compressed file in ``out_dir``, with its manifest; return it.

    Both files appear under their final names only when complete, and never replace a file.
    """
    checked_identifier(database)
    tier = Tier(tier)
    _check_tenant(tenant)
    if not backend.database_exists(database):
        raise BackupError(f"database {database} does not exist")
    now = datetime.now(UTC)
    out_dir = Path(out_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    dump_path = out_dir / f"{database}_{now.strftime(STAMP_FORMAT)}{FILE_SUFFIXES[backend.name]}"
    dump = _dump_mysql if isinstance(backend, MySQLBackend) else _dump_sqlite
    with _new_file(dump_path) as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=6) as compressed:
        schema_version, row_counts = dump(backend, database, compressed)
    try:
        manifest = Manifest(
            file=dump_path.name, database=database, tier=tier, tenant=tenant,
            backend=backend.name, created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            schema_version=schema_version, row_counts=row_counts,
            sha256=file_sha256(dump_path), size_bytes=dump_path.stat().st_size)
        with _new_file(manifest_path(dump_path)) as out:
            out.write(manifest.to_json().encode("utf-8"))
    except BaseException:
        dump_path.unlink()
        raise
    return dump_path


def restore_database(backend: Backend, dump_path: Path, target_database: str, *,
                     replace: bool = False) -> RestoreReport:
    """Load a backup into ``target_database``, new unless ``replace``; check it on the way.

    The file must match its manifest's checksum before anything is touched, and the restored
    database its rows per table and applied migrations; if not, the target is dropped.
    """
    dump_path = Path(dump_path)
    manifest = read_manifest(dump_path)
    checked_identifier(target_database)
    if manifest.backend != backend.name:
        raise BackupError(f"{dump_path.name} is a {manifest.backend} backup; this platform "
                          f"runs on {backend.name}")
    if file_sha256(dump_path) != manifest.sha256:
        raise BackupError(f"{dump_path.name} does not match the checksum in its manifest: "
                          "refusing to restore a changed or damaged file")
    replaced = backend.database_exists(target_database)
    if replaced and not replace:
        raise BackupError(f"database {target_database} already exists: restore into a new "
                          "name, or ask to replace it")
    if replaced:
        backend.drop_database(target_database)
    if not backend.create_database(target_database):
        raise BackupError(f"database {target_database} was created by someone else meanwhile")
    load = _load_mysql if isinstance(backend, MySQLBackend) else _load_sqlite
    with _dropped_on_failure(backend, target_database):
        load(backend, dump_path, target_database)
        with _connect(backend.create_engine(target_database)) as connection:
            _check_restored(manifest, _schema_version(connection), _row_counts(connection))
    return RestoreReport(database=target_database, manifest=manifest, replaced=replaced)


def _check_restored(manifest: Manifest, schema_version: list[str],
                    row_counts: dict[str, int]) -> None:
    """Raise BackupError unless the restored database has what the manifest says."""
    if schema_version != manifest.schema_version:
        raise BackupError(f"applied migrations {schema_version} differ from the manifest's "
                          f"{manifest.schema_version}")
    differences = [f"{table}: {row_counts.get(table, 'missing')} rows, manifest says "
                   f"{manifest.row_counts.get(table, 'no such table')}"
                   for table in sorted(set(row_counts) | set(manifest.row_counts))
                   if row_counts.get(table) != manifest.row_counts.get(table)]
    if differences:
        raise BackupError("restored rows differ from the manifest: " + "; ".join(differences))


@contextmanager
def _dropped_on_failure(backend: Backend, database: str) -> Iterator[None]:
    """Drop ``database`` if the block fails; report any failure as one BackupError."""
    try:
        yield
    except BaseException as exc:
        backend.drop_database(database)
        if isinstance(exc, BackupError) or not isinstance(exc, Exception):
            raise
        raise BackupError(f"restore into {database} failed (dropped it): "
                          f"{type(exc).__name__}: {exc}") from exc


@contextmanager
def _new_file(final: Path) -> Iterator[IO[bytes]]:
    """A temporary file (mode 0600) beside ``final`` that becomes ``final`` if the block succeeds.

    Linking, not renaming, puts it in place: an existing file is never replaced.
    """
    fd, partial = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        try:
            os.link(partial, final)
        except FileExistsError:
            raise BackupError(f"{final} already exists") from None
    finally:
        os.unlink(partial)


@contextmanager
def _connect(engine: Engine) -> Iterator[sa.Connection]:
    """A connection on ``engine``, which is disposed of afterwards (it is used once)."""
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _schema_version(connection: sa.Connection) -> list[str]:
    """The migration ids applied to the connection's database, sorted."""
    return sorted(applied_ids(connection))


def _row_counts(connection: sa.Connection) -> dict[str, int]:
    """Rows per table of the connection's database."""
    quote = connection.dialect.identifier_preparer.quote_identifier
    return {table: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(table)}").scalar()
            for table in sorted(sa.inspect(connection).get_table_names())}


def _program(*names: str) -> str:
    """The path of the first of ``names`` installed, e.g. mariadb-dump, else mysqldump."""
    for name in names:
        if path := shutil.which(name):
            return path
    raise BackupError(f"neither {' nor '.join(names)} is installed "
                      "(install the MariaDB or MySQL client)")


def _option_value(value: object) -> str:
    """A value quoted for a MySQL option file, where backslash escapes apply."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@contextmanager
def _client_options(backend: MySQLBackend) -> Iterator[str]:
    """A temporary option file (mode 0600) with the server and credentials, for the clients.

    The password goes there, never on a command line or in a log. ``--defaults-file`` also
    keeps the clients from reading any other option file.
    """
    with tempfile.NamedTemporaryFile("w", prefix="finvera-client-", suffix=".cnf",
                                     encoding="utf-8") as handle:
        handle.write("[client]\n" + "".join(
            f"{key}={_option_value(value)}\n" for key, value in (
                ("host", backend.host), ("port", backend.port), ("user", backend.user),
                ("password", backend.password), ("protocol", "TCP"))))
        handle.flush()
        yield handle.name


def _last_line(errors: IO[bytes]) -> str:
    """The last line a client wrote to stderr: where it says what went wrong."""
    errors.seek(0)
    lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no message"


class _DumpRowCounter:
    """Counts the rows of each table in a mariadb-dump/mysqldump stream, line by line.

    The counts come from the dump itself, not from a later SELECT, so they are those of the
    dump's own snapshot even while the database is being written. Once string literals are
    blanked out, each row of an INSERT is the only thing that opens a parenthesis.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._table: str | None = None

    def feed(self, line: bytes) -> None:
        if self._table is None:
            if created := DUMP_CREATE_TABLE.match(line):
                self.counts.setdefault(_dump_name(created), 0)
                return
            if not (insert := DUMP_INSERT.match(line)):
                return
            self._table, line = _dump_name(insert), line[insert.end():]
        values = DUMP_STRING.sub(b"''", line).rstrip()
        self.counts[self._table] = self.counts.get(self._table, 0) + values.count(b"(")
        if values.endswith(b";"):
            self._table = None


def _dump_name(match: re.Match[bytes]) -> str:
    """The table name a dump line names, its backticks unescaped."""
    return match.group(1).replace(b"``", b"`").decode("utf-8")


def _dump_mysql(backend: MySQLBackend, database: str,
                out: IO[bytes]) -> tuple[list[str], dict[str, int]]:
    """Stream a dump of ``database`` into ``out``; return its migrations and rows per table."""
    counter = _DumpRowCounter()
    with _client_options(backend) as options, tempfile.TemporaryFile() as errors:
        command = [_program("mariadb-dump", "mysqldump"), f"--defaults-file={options}",
                   *DUMP_OPTIONS, database]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as dump:
            for line in dump.stdout:
                out.write(line)
                counter.feed(line)
        if dump.returncode:
            raise BackupError(f"{Path(command[0]).name} of {database} failed: "
                              f"{_last_line(errors)}")
    with _connect(backend.create_engine(database)) as connection:
        return _schema_version(connection), counter.counts


def _load_mysql(backend: MySQLBackend, dump_path: Path, database: str) -> None:
    """Feed a dump's SQL to the mariadb/mysql client, connected to ``database``."""
    with _client_options(backend) as options, tempfile.TemporaryFile() as errors, \
            gzip.open(dump_path, "rb") as sql:
        command = [_program("mariadb", "mysql"), f"--defaults-file={options}",
                   "--default-character-set=utf8mb4", f"--database={database}"]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=errors) as client:
            try:
                shutil.copyfileobj(sql, client.stdin, CHUNK)
                client.stdin.close()
            except BrokenPipeError:  # the client stopped at an error: reported below
                with suppress(BrokenPipeError):
                    client.stdin.close()
        if client.returncode:
            raise BackupError(f"loading {dump_path.name} into {database} failed: "
                              f"{_last_line(errors)}")


def copy_database(source: MySQLBackend, database: str, target: MySQLBackend,
                  target_database: str) -> None:
    """Stream a dump of ``database`` on ``source`` into ``target_database`` (which exists and
    is empty) on ``target``: the dump tool piped into the client, no file and no compression,
    so that a tenant's move takes as little time as it can. The caller checks the copy."""
    with _client_options(source) as source_options, _client_options(target) as target_options, \
            tempfile.TemporaryFile() as dump_errors, tempfile.TemporaryFile() as load_errors:
        dump_command = [_program("mariadb-dump", "mysqldump"),
                        f"--defaults-file={source_options}", *DUMP_OPTIONS, database]
        load_command = [_program("mariadb", "mysql"), f"--defaults-file={target_options}",
                        "--default-character-set=utf8mb4", f"--database={target_database}"]
        with subprocess.Popen(dump_command, stdout=subprocess.PIPE,
                              stderr=dump_errors) as dump, \
                subprocess.Popen(load_command, stdin=dump.stdout, stdout=subprocess.DEVNULL,
                                 stderr=load_errors) as load:
            dump.stdout.close()  # the client holds the pipe now: a failed load stops the dump
        if load.returncode:  # the cause, when both failed
            raise BackupError(f"copying {database} into {target_database} on {target.server} "
                              f"failed: {_last_line(load_errors)}")
        if dump.returncode:
            raise BackupError(f"{Path(dump_command[0]).name} of {database} failed: "
                              f"{_last_line(dump_errors)}")


def _sqlite_copy(source: Path, target: Path, journal_mode: str) -> None:
    """Copy one SQLite database into another through the backup API (a consistent snapshot)."""
    with closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as reader, \
            closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)
        writer.execute(f"PRAGMA journal_mode={journal_mode}")


@contextmanager
def _scratch_file(backend: SQLiteBackend, database: str) -> Iterator[Path]:
    """A temporary file in the data directory, for a snapshot of ``database``; removed after."""
    fd, name = tempfile.mkstemp(dir=backend.data_dir, prefix=f".{database}.", suffix=".scratch")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        os.unlink(name)


def _dump_sqlite(backend: SQLiteBackend, database: str,
                 out: IO[bytes]) -> tuple[list[str], dict[str, int]]:
    """Snapshot ``database`` into one self-contained file, count it, and copy it to ``out``."""
    with _scratch_file(backend, database) as snapshot:
        _sqlite_copy(backend.path(database), snapshot, "DELETE")
        with _connect(sa.create_engine(URL.create("sqlite", database=str(snapshot)))) as conn:
            state = _schema_version(conn), _row_counts(conn)
        with open(snapshot, "rb") as copy:
            shutil.copyfileobj(copy, out, CHUNK)
    return state


def _load_sqlite(backend: SQLiteBackend, dump_path: Path, database: str) -> None:
    """Decompress a backup and copy it into ``database`` through the backup API."""
    with _scratch_file(backend, database) as copy:
        with gzip.open(dump_path, "rb") as source, open(copy, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        _sqlite_copy(copy, backend.path(database), "WAL")
