"""Fixtures shared by every test module: settings on each backend, the app, its clients.

Tests that take ``settings`` (or ``app``/``client``) run twice: on SQLite in a temp directory
and on the real MariaDB, with database names under this run's unique prefix.
"""

import contextlib
import itertools
import json
import os

import pytest
import sqlalchemy.exc
from cryptography.fernet import Fernet

from api import create_app
from api.config import Settings, load_settings
from api.tenancy.backends import backends_for
from tests.mysql_server import URL_VARIABLE, MySQLServer, server_from_environment
from tests.throwaway_mariadb import ThrowawayMariaDB, unavailable_reason

SECOND = "tenants-2"  # the name of the second tenant server in tests

_names = itertools.count(1)


@pytest.fixture(scope="session")
def mysql_server() -> MySQLServer:
    """The real MariaDB the MySQL tests use; skipped without one, a failure under CI=true."""
    server, problem = server_from_environment()
    if problem:
        message = f"{problem}; set {URL_VARIABLE}=mysql://user:password@host:port to enable"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but MariaDB tests cannot run: {message}", pytrace=False)
        pytest.skip(message)
    yield server
    server.drop_everything_made()


def mysql_environment(server: MySQLServer, **extra: str) -> dict[str, str]:
    """Environment variables for an app on the test server, with fresh database names."""
    unique = f"{server.prefix}{next(_names)}"
    return {
        "DB_HOST": server.host, "DB_PORT": str(server.port), "DB_USER": server.user,
        "DB_PASSWORD": server.password, "DB_NAME": f"{unique}_db",
        "MASTER_DB_NAME": f"{unique}_master", "TENANT_DB_PREFIX": f"{unique}_t_",
        "ENCRYPTION_KEY": Fernet.generate_key().decode(), "DB_SSL": "disabled", **extra,
    }


@pytest.fixture(scope="session")
def second_mariadb() -> ThrowawayMariaDB:
    """A throwaway mariadbd beside the test server (own datadir, port, socket): the second
    tenant server. Skipped if MariaDB is not installed, a failure under CI=true."""
    reason = unavailable_reason()
    if reason:
        message = f"{reason}; tests of several tenant servers start a second one"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the second-server tests cannot run: {message}",
                        pytrace=False)
        pytest.skip(message)
    with ThrowawayMariaDB() as server:
        yield server


def two_server_environment(server: MySQLServer, second: ThrowawayMariaDB,
                           **extra: str) -> dict[str, str]:
    """mysql_environment with the throwaway server as tenant server ``tenants-2``."""
    servers = {SECOND: {"host": second.host, "port": second.port, "user": second.user,
                        "password": second.password}}
    return mysql_environment(server, TENANT_DB_SERVERS=json.dumps(servers), **extra)


def drop_made_on_every_server(settings: Settings) -> None:
    """Drop main, master and every tenant-prefixed database, on every server that answers (a
    test may configure one that does not exist: nothing was made there)."""
    for backend in backends_for(settings).values():
        platform = (settings.db_name, settings.master_db_name) if backend.server == "default" \
            else ()
        try:
            made = backend.list_databases(settings.tenant_db_prefix)
        except sqlalchemy.exc.OperationalError:
            if backend.server == "default":
                raise
            made = []
        for name in (*platform, *made):
            backend.drop_database(name)
        backend.dispose()


@contextlib.contextmanager
def initialized_app(environment: dict[str, str]):
    """An app on ``environment`` with master and main migrated; everything it made on any
    server is dropped afterwards."""
    settings = load_settings(environment)
    app = create_app(settings)
    try:
        app.extensions["finvera"].initialize()
        yield app
    finally:
        app.extensions["finvera"].dispose()
        drop_made_on_every_server(settings)


@contextlib.contextmanager
def same_databases(environment: dict[str, str]):
    """A second app (other settings) on the databases of one that exists; it drops nothing."""
    app = create_app(load_settings(environment))
    try:
        yield app
    finally:
        app.extensions["finvera"].dispose()


@pytest.fixture
def servers_environment(mysql_server, second_mariadb, tmp_path) -> dict[str, str]:
    """The environment of an app whose tenants may go to ``default`` or ``tenants-2``."""
    return two_server_environment(mysql_server, second_mariadb, TENANT_CACHE_TTL_SECONDS="1",
                                  FINVERA_BACKUP_DIR=str(tmp_path / "backups"))


@pytest.fixture
def servers_app(servers_environment):
    """An app with two tenant servers, master and main migrated."""
    with initialized_app(servers_environment) as app:
        yield app


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def environment(request, tmp_path) -> dict[str, str]:
    """The environment of an app on SQLite (temp data dir) or on the test MariaDB."""
    if request.param == "sqlite":
        return {"FINVERA_DATA_DIR": str(tmp_path / "var")}
    return mysql_environment(request.getfixturevalue("mysql_server"))


@pytest.fixture
def settings(environment) -> Settings:
    settings = load_settings(environment)
    yield settings
    drop_made_on_every_server(settings)


@pytest.fixture
def app(settings):
    """An app whose master and main databases exist and are migrated."""
    app = create_app(settings)
    dbs = app.extensions["finvera"]
    dbs.initialize()
    yield app
    dbs.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def admin_headers(app) -> dict[str, dict]:
    """Request headers of a platform admin of each role: {"super_admin": {...}, ...}.

    Tokens are issued by the app's own TokenService; logins are tested on their own.
    """
    return make_admin_headers(app)


def make_admin_headers(app) -> dict[str, dict]:
    """Add a platform admin of each role to ``app``'s main database; their request headers."""
    from sqlalchemy.orm import Session

    from api.models.main import AdminUser
    from api.tenancy.tokens import ADMIN, Claims

    headers = {}
    with Session(app.extensions["finvera"].main_engine) as session:
        for role in ("super_admin", "admin", "support"):
            admin = AdminUser(email=f"{role}@finvera.in", role=role,
                              password_hash="unused: tokens are issued directly")
            session.add(admin)
            session.flush()
            token = app.extensions["finvera_tokens"].issue(Claims(scope=ADMIN, user_id=admin.id))
            headers[role] = {"Authorization": f"Bearer {token}"}
        session.commit()
    return headers
