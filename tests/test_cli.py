"""The finvera CLI: init, migrate, admin create-user, and serve over real HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.main import AdminUser
from api.security import verify_password
from api.tenancy.migrations import Tier, migration_ids


def test_init_is_idempotent(runner):
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0
    assert result.output.count("up to date") == 2


def test_migrate_status_and_apply(runner, app):
    status = runner.invoke(args=["migrate", "--status"])
    assert status.exit_code == 0
    assert "main (" in status.output and "master (" in status.output
    assert status.output.count("up to date") == 2
    assert runner.invoke(args=["migrate", "--tier", "main"]).output.endswith("up to date\n")
    assert runner.invoke(args=["migrate"]).exit_code != 0
    bad_tier = runner.invoke(args=["migrate", "--tier", "nope"])
    assert bad_tier.exit_code != 0 and "--tier" in bad_tier.output


def test_migrate_status_before_init_says_what_is_missing(settings):
    from api import create_app

    app = create_app(settings)
    result = app.test_cli_runner().invoke(args=["migrate", "--status"])
    assert result.exit_code == 0
    assert result.output.count("does not exist yet") == 2
    applied = app.test_cli_runner().invoke(args=["migrate", "--tier", "master"])
    assert ", ".join(migration_ids(Tier.MASTER)) in applied.output
    app.extensions["finvera"].dispose()


def admins(app):
    with Session(app.extensions["finvera"].main_engine) as session:
        return session.scalars(sa.select(AdminUser)).all()


def test_create_admin_user_from_stdin(runner, app):
    result = runner.invoke(args=["admin", "create-user", "--email", "Ops@Finvera.in",
                                 "--role", "support"], input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    [admin] = admins(app)
    assert (admin.email, admin.role) == ("ops@finvera.in", "support")
    assert admin.password_hash.startswith("scrypt:")
    assert "correct horse battery" not in admin.password_hash
    assert verify_password(admin.password_hash, "correct horse battery")

    again = runner.invoke(args=["admin", "create-user", "--email", "ops@finvera.in"],
                          input="another password\n")
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.mark.parametrize("args, password, message", [
    (["--email", "not-an-email"], "long enough pw", "not an email address"),
    (["--email", "a@b.in", "--role", "overlord"], "long enough pw", "'overlord' is not one of"),
    (["--email", "a@b.in"], "short", "at least 10 characters"),
])
def test_create_admin_user_refuses_bad_input(runner, app, args, password, message):
    result = runner.invoke(args=["admin", "create-user", *args], input=password + "\n")
    assert result.exit_code != 0 and message in result.output
    assert admins(app) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_serve_starts_up_and_answers_over_http(environment):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "1"],
        env={**os.environ, **environment}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = get(f"{base}/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not come up in 60 s"
                time.sleep(0.2)
        assert (status, body["data"]["status"]) == (200, "up")
        status, body = get(f"{base}/readyz")
        assert status == 200 and body["data"]["main_db"]["status"] == "ready"
        status, body = get(f"{base}/missing")
        assert status == 404 and body["error"]["code"] == "not_found"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
