"""A private, throwaway MariaDB server for tests that need to stop, kill or freeze a server.

The shared test server (``mysql_server`` in conftest, normally the machine's own on port 3306)
must never be stopped by a test, so outage tests run against a server of their own: a fresh
data directory, socket, pid file and error log under a temp directory, a free TCP port on
127.0.0.1, and ``mariadbd`` as a child process of the test run. ``--no-defaults`` keeps the
machine's /etc/mysql configuration out of it. Every signal goes to that child's own pid only.

Start-up here takes about 0.1 s for the server and 0.5 s for ``mariadb-install-db``, so a
fresh server costs well under a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql

MARIADBD = "mariadbd"
INSTALL_DB = "mariadb-install-db"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin")
# Unix socket paths are limited to 108 bytes (sun_path) on Linux.
MAX_SOCKET_PATH = 100
PROTECTED_PORTS = frozenset({3306})  # the machine's own server: never ours to touch

# Small and quick to start; nothing here changes what SQL the server accepts.
SERVER_OPTIONS = (
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-use-native-aio=0",      # containers often refuse io_setup; plain I/O starts surely
    "--innodb-doublewrite=0",
    "--innodb-flush-log-at-trx-commit=2",  # survives a process crash (SIGKILL), not an OS crash
    "--skip-log-bin",
    "--performance-schema=OFF",
    "--loose-feedback=OFF",
    "--max-connections=200",
)


class ThrowawayMariaDBError(RuntimeError):
    """The throwaway server could not be set up, started or stopped; says why, with its log."""


def _find(program: str) -> str | None:
    """The path of a MariaDB program, on PATH or in the usual sbin directories."""
    found = shutil.which(program)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / program
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def unavailable_reason() -> str | None:
    """Why a throwaway server cannot be made on this machine, or None when it can."""
    missing = [program for program in (MARIADBD, INSTALL_DB) if _find(program) is None]
    if missing:
        return f"MariaDB is not installed here ({', '.join(missing)} not found)"
    return None


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in PROTECTED_PORTS:
            return port


def _parent_death_signal():
    """A preexec_fn that has Linux SIGKILL the server if the test process dies uncleaned.

    Resolved here, in the parent: the child between fork and exec must not import anything.
    The kernel sends the signal when the thread that started the server ends, so start()
    belongs on the main thread (as pytest fixtures and tests run). None elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)


class ThrowawayMariaDB:
    """One private mariadbd: install, start, stop, kill, freeze, start again, clean up.

    The port is chosen once, so a restarted server listens where clients already point.
    Root connects over TCP with an empty password (``--auth-root-authentication-method=normal``).
    """

    host = "127.0.0.1"
    user = "root"
    password = ""

    def __init__(self, *, startup_timeout: float = 30.0, shutdown_timeout: float = 30.0,
                 options: tuple[str, ...] = ()) -> None:
        reason = unavailable_reason()
        if reason:
            raise ThrowawayMariaDBError(reason)
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        # Server options after SERVER_OPTIONS (the last of an option wins); changed between a
        # stop() and a start() they restart the same data with other settings.
        self.options = tuple(options)
        self.root = Path(tempfile.mkdtemp(prefix="finvera-mariadb-"))
        if len(str(self.root / "mysqld.sock")) > MAX_SOCKET_PATH:  # a long $TMPDIR
            shutil.rmtree(self.root)
            self.root = Path(tempfile.mkdtemp(prefix="finvera-mariadb-", dir="/tmp"))
        self.datadir = self.root / "data"
        self.socket = self.root / "mysqld.sock"
        self.pid_file = self.root / "mysqld.pid"
        self.log = self.root / "error.log"
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self._stopped: bool = False  # SIGSTOPped (frozen), see freeze()
        self._installed = False

    # -- life cycle -------------------------------------------------------------------------

    def install(self) -> None:
        """Create the data directory and system tables (once; start() calls it when needed)."""
        command = [_find(INSTALL_DB), "--no-defaults", f"--datadir={self.datadir}",
                   "--auth-root-authentication-method=normal", "--skip-test-db",
                   "--skip-name-resolve", *self._run_as(), *SERVER_OPTIONS, *self.options]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise ThrowawayMariaDBError(
                f"{INSTALL_DB} failed (exit {result.returncode}):\n" + "\n".join(output))
        self._installed = True

    def start(self) -> None:
        """Start the server (installing it first if need be) and wait until root can connect.

        Raises ThrowawayMariaDBError with the log's tail if it exits or does not answer within
        ``startup_timeout`` seconds (and then ends the process it started).
        """
        if self.running:
            return
        if not self._installed:
            self.install()
        command = [_find(MARIADBD), "--no-defaults", f"--datadir={self.datadir}",
                   f"--socket={self.socket}", f"--pid-file={self.pid_file}",
                   f"--port={self.port}", f"--log-error={self.log}", *self._run_as(),
                   *SERVER_OPTIONS, *self.options]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=_parent_death_signal())
        self._stopped = False
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ThrowawayMariaDBError(
                    f"mariadbd exited with status {code} while starting; "
                    f"log {self.log}:\n{self.log_tail()}")
            try:
                self._check_it_is_ours()
                return
            except pymysql.MySQLError as exc:
                last_error = exc
                time.sleep(0.02)
        self._end_process()
        raise ThrowawayMariaDBError(
            f"mariadbd did not accept connections on {self.host}:{self.port} within "
            f"{self.startup_timeout:.0f}s (last error: {last_error}); log {self.log}:\n"
            f"{self.log_tail()}")

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM, mariadbd's normal shutdown) and wait."""
        if self.process is None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=self.shutdown_timeout)
        except subprocess.TimeoutExpired:
            self._end_process()
            raise ThrowawayMariaDBError(
                f"mariadbd did not shut down within {self.shutdown_timeout:.0f}s; killed it. "
                f"Log:\n{self.log_tail()}") from None
        self.process = None

    def kill(self) -> None:
        """SIGKILL the server, like a crash: no shutdown, clients find their sockets dead."""
        self._end_process()

    def freeze(self) -> None:
        """SIGSTOP the server: the kernel still accepts TCP connections, nothing answers.

        This is a hung server (or a black-holed network after the handshake); resume() or
        any of stop(), kill(), cleanup() lets it run again.
        """
        if self.process is None:
            raise ThrowawayMariaDBError("the server is not running")
        self.process.send_signal(signal.SIGSTOP)
        self._stopped = True

    def resume(self) -> None:
        """SIGCONT a frozen server."""
        if self.process is not None and self._stopped:
            self.process.send_signal(signal.SIGCONT)
            self._stopped = False

    def cleanup(self) -> None:
        """End the server process (ours, by pid) and delete the temp directory."""
        self._end_process()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- use --------------------------------------------------------------------------------

    def connect(self, database: str | None = None, **kwargs) -> pymysql.Connection:
        """An autocommit root connection over TCP (not the socket: as the app connects)."""
        params = {"host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "database": database, "autocommit": True,
                  "connect_timeout": 2, "read_timeout": 10, "write_timeout": 10}
        params.update(kwargs)
        return pymysql.connect(**params)

    def environment(self, **extra: str) -> dict[str, str]:
        """The DB_* variables that point an app at this server."""
        return {"DB_HOST": self.host, "DB_PORT": str(self.port), "DB_USER": self.user,
                "DB_PASSWORD": self.password, "DB_SSL": "disabled", **extra}

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ThrowawayMariaDB:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.cleanup()

    # -- inside -----------------------------------------------------------------------------

    @staticmethod
    def _run_as() -> list[str]:
        """mariadbd refuses to run as root unless told to: say so, and only then."""
        return ["--user=root"] if os.geteuid() == 0 else []

    def _check_it_is_ours(self) -> None:
        """Connect as root and make sure the server answering is this one (by its datadir)."""
        conn = self.connect(connect_timeout=1, read_timeout=2, write_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@datadir")
                (datadir,) = cur.fetchone()
        finally:
            conn.close()
        if Path(datadir).resolve() != self.datadir.resolve():
            self._end_process()
            raise ThrowawayMariaDBError(
                f"port {self.port} is answered by another server (datadir {datadir})")

    def _end_process(self) -> None:
        """SIGKILL our child (by its pid, via Popen) and reap it; nothing else is signalled."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()  # SIGKILL is delivered to a stopped process too
            process.wait(timeout=30)
        self._stopped = False


@contextlib.contextmanager
def throwaway_mariadb(**options) -> Iterator[ThrowawayMariaDB]:
    """A started ThrowawayMariaDB, ended and deleted on exit."""
    with ThrowawayMariaDB(**options) as server:
        yield server
