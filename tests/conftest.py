"""Fixtures shared by every test module: settings on each backend, the app, its clients.

Tests that take ``settings`` (or ``app``/``client``) run twice: on SQLite in a temp directory
and on the real MariaDB, with database names under this run's unique prefix.
"""

import itertools
import os

import pytest
from cryptography.fernet import Fernet

from api import create_app
from api.config import Settings, load_settings
from api.tenancy.backends import backend_for
from tests.mysql_server import URL_VARIABLE, MySQLServer, server_from_environment

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
    backend = backend_for(settings)
    for name in (settings.db_name, settings.master_db_name,
                 *backend.list_databases(settings.tenant_db_prefix)):
        backend.drop_database(name)
    backend.dispose()


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
