"""The reliability suite's kit: the ``reliability`` marker, the scale, and ready platforms.

Fast tests run in the default ``pytest`` run at a CI-sized scale; long ones carry
``@pytest.mark.reliability`` and are skipped unless selected with ``-m reliability``.
``FINVERA_RELIABILITY_SCALE`` (default 1) multiplies the sizes of both (threads, tenants,
seconds, examples), e.g. ``FINVERA_RELIABILITY_SCALE=5 pytest -s tests/reliability``.

Every database and DB user made here carries the run's prefix (``mysql_server.prefix`` on
MariaDB, a temp directory on SQLite) and is dropped at the end.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api import create_app
from api.config import Settings, load_settings
from api.models.main import AdminUser
from api.models.tenant import AccountGroup, Ledger, User
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.tokens import ADMIN, TENANT, Claims
from tests.conftest import mysql_environment

SCALE_VARIABLE = "FINVERA_RELIABILITY_SCALE"
ROOT = Path(__file__).resolve().parents[2]
# The app's own settings must never leak from the shell into a subprocess we start.
APP_PREFIXES = ("DB_", "FINVERA_", "TENANT_", "MASTER_DB_", "ENCRYPTION_KEY", "SECRET_KEY",
                "USE_SEPARATE_DB_USERS", "MAX_TENANT_CONNECTIONS", "BASE_DOMAIN", "TOKEN_TTL",
                "STORAGE_CACHE")
_apps = itertools.count(1)


def _scale() -> float:
    raw = os.environ.get(SCALE_VARIABLE, "").strip() or "1"
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{SCALE_VARIABLE} must be a number, got {raw!r}") from None
    if not 0 < value <= 1000:
        raise pytest.UsageError(f"{SCALE_VARIABLE} must be between 0 and 1000, got {value}")
    return value


SCALE = _scale()


def scaled(size: float, minimum: int = 1) -> int:
    """``size`` times FINVERA_RELIABILITY_SCALE, at least ``minimum``."""
    return max(minimum, round(size * SCALE))


def figures(title: str, **values) -> None:
    """Print one line of figures (seen with ``pytest -s``; docs/reliability.md keeps them)."""
    shown = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in values.items())
    print(f"\n[reliability] {title}: {shown}", flush=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability: long reliability run (minutes, real HTTP, big thread counts); "
        "skipped unless selected with -m reliability")


def pytest_collection_modifyitems(config, items):
    """Skip the long runs unless the -m expression names the marker."""
    if "reliability" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="long reliability run: select it with -m reliability")
    for item in items:
        if item.get_closest_marker("reliability"):
            item.add_marker(skip)


# ---- backends ----

BACKENDS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]


def environment_for(kind: str, request, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The app's environment on SQLite (under ``tmp_path``) or on the test MariaDB."""
    base = {"FINVERA_BACKUP_DIR": str(tmp_path / "backups"),
            "FINVERA_DATA_DIR": str(tmp_path / "var")}
    if kind == "sqlite":
        return {**base, **extra}
    return {**base, **mysql_environment(request.getfixturevalue("mysql_server"), **extra)}


def subprocess_environment(env: dict[str, str]) -> dict[str, str]:
    """os.environ without any of the app's own variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(APP_PREFIXES)}
    return {**clean, "PYTHONUNBUFFERED": "1", **env}


# ---- a platform: app, admins, tenants ----

@dataclass
class TenantRef:
    """A provisioned tenant and the headers of its admin user."""

    id: int
    subdomain: str
    db_name: str
    headers: dict[str, str]
    marker: str  # the name of the one ledger it starts with

    def owns(self, ledger_name: str) -> bool:
        return ledger_name == self.marker or ledger_name.startswith(self.marker + " #")


@dataclass
class Platform:
    """An app with migrated main and master, admins of each role, and tenants made on demand."""

    env: dict[str, str]
    settings: Settings
    app: object
    admin: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> headers
    tenants: list[TenantRef] = field(default_factory=list)

    @property
    def dbs(self):
        return self.app.extensions["finvera"]

    @property
    def tokens(self):
        return self.app.extensions["finvera_tokens"]

    def tenant_headers(self, tenant_id: int, db_name: str, subdomain: str,
                       user_id: int = 1) -> dict[str, str]:
        token = self.tokens.issue(Claims(scope=TENANT, user_id=user_id, tenant_id=tenant_id,
                                         tenant_db=db_name))
        return {"Authorization": f"Bearer {token}", "X-Tenant-ID": subdomain}

    def add_tenant(self, subdomain: str, ledgers: int = 1) -> TenantRef:
        """Provision a tenant (its admin is user 1) holding a marker ledger named after it."""
        tenant = provision_tenant(self.dbs, SignUp(
            f"{subdomain.title()} Traders", subdomain, f"admin@{subdomain}.in",
            admin_password="reliability pw")).tenant
        marker = f"Marker {subdomain}"
        with self.tenant_session(subdomain) as session:
            group = session.scalar(sa.select(AccountGroup.id).where(
                AccountGroup.code == "cash_in_hand"))
            session.add_all([Ledger(name=marker if n == 0 else f"{marker} #{n}",
                                    account_group_id=group) for n in range(ledgers)])
            session.commit()
            admin_id = session.scalar(sa.select(User.id).where(User.role == "admin"))
        ref = TenantRef(tenant.id, subdomain, tenant.db_name,
                        self.tenant_headers(tenant.id, tenant.db_name, subdomain, admin_id),
                        marker)
        self.tenants.append(ref)
        return ref

    def tenant_session(self, subdomain: str) -> Session:
        dbs = self.dbs
        return Session(dbs.connections.engine(dbs.directory.find(subdomain).target))

    def close(self) -> None:
        dbs = self.dbs
        dbs.dispose()
        backend = dbs.backend
        for name in (self.settings.db_name, self.settings.master_db_name,
                     *backend.list_databases(self.settings.tenant_db_prefix)):
            backend.drop_database(name)
        backend.dispose()


def build_platform(env: dict[str, str]) -> Platform:
    settings = load_settings(env)
    app = create_app(settings)
    app.extensions["finvera"].initialize()
    platform = Platform(env, settings, app)
    with Session(platform.dbs.main_engine) as session:
        for role in ("super_admin", "admin", "support"):
            admin = AdminUser(email=f"{role}-{next(_apps)}@finvera.in", role=role,
                              password_hash="unused: tokens are issued directly")
            session.add(admin)
            session.flush()
            token = platform.tokens.issue(Claims(scope=ADMIN, user_id=admin.id))
            platform.admin[role] = {"Authorization": f"Bearer {token}"}
        session.commit()
    return platform


@pytest.fixture(params=BACKENDS)
def platform(request, tmp_path) -> Iterator[Platform]:
    """A fresh platform on each backend (function scope)."""
    built = build_platform(environment_for(request.param, request, tmp_path))
    yield built
    built.close()


# ---- subprocesses ----

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LineWatcher(threading.Thread):
    """Reads a pipe line by line (so the child never blocks on a full pipe) and lets a test
    wait, with a deadline, for a line containing some text."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []
        self._changed = threading.Condition()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append(None)  # end of stream
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if any(line is not None and text in line for line in self.lines):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    return False
                self._changed.wait(left)

    @property
    def text(self) -> str:
        return "\n".join(line for line in self.lines if line is not None)


def start_cli(env: dict[str, str], *args: str, new_session: bool = False) -> subprocess.Popen:
    """``python -m api <args>`` with ``env`` on top of a clean environment."""
    return subprocess.Popen([sys.executable, "-m", "api", *args], cwd=ROOT,
                            env=subprocess_environment(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=new_session)


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=ROOT,
                          env=subprocess_environment(env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)


def kill_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a child we started in a session of its own: SIGTERM to its group (its pid), then
    SIGKILL if it has not exited within ``grace`` seconds."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Server:
    """``python -m api serve`` on a free port of 127.0.0.1, in a session of its own (so that
    its gunicorn workers are stopped with it), its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2,
                 threads: int = 8) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(self.port),
             "--workers", str(workers), "--threads", str(threads)],
            cwd=ROOT, env=subprocess_environment(env), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"finvera serve exited {self.process.returncode}:\n"
                                     f"{self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"finvera serve not ready after {timeout}s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        kill_group(self.process)
        self._log.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
