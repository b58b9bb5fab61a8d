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


def test_finvera_migrate_runs_on_the_environment_without_building_the_app(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from api import cli

    monkeypatch.setattr(cli, "create_app", lambda: pytest.fail("finvera migrate built the app"))
    env = {"FINVERA_DATA_DIR": str(tmp_path / "var")}
    applied = CliRunner().invoke(cli.cli, ["migrate", "--tier", "master"], env=env)
    assert applied.exit_code == 0, applied.output
    assert ", ".join(migration_ids(Tier.MASTER)) in applied.output
    status = CliRunner().invoke(cli.cli, ["migrate", "--status"], env=env)
    assert status.output.splitlines()[0] == "master (finvera_master): up to date"
    bad = CliRunner().invoke(cli.cli, ["migrate", "--status"], env={**env, "DB_PORT": "nope"})
    assert bad.exit_code == 1 and "DB_PORT" in bad.output and "Traceback" not in bad.output


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


def test_tenants_create_repair_and_rotate_key(runner, app):
    created = runner.invoke(args=["tenants", "create", "--company-name", "Acme Traders",
                                  "--subdomain", "acme", "--email", "owner@acme.in"])
    assert created.exit_code == 0, created.output
    assert "created tenant acme" in created.output and "password: " in created.output
    chosen = runner.invoke(args=["tenants", "create", "--company-name", "Beta", "--subdomain",
                                 "beta", "--email", "o@beta.in", "--password-stdin"],
                           input="a chosen password\n")
    assert chosen.exit_code == 0 and "password" not in chosen.output

    taken = runner.invoke(args=["tenants", "create", "--company-name", "X", "--subdomain",
                                "acme", "--email", "x@acme.in"])
    assert taken.exit_code == 1 and "taken" in taken.output
    bad = runner.invoke(args=["tenants", "create", "--company-name", "X", "--subdomain",
                              "Bad_Name", "--email", "x@acme.in"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: subdomain: ")

    dbs = app.extensions["finvera"]
    orphan = f"{dbs.settings.tenant_db_prefix}leftover_1"
    dbs.backend.create_database(orphan)
    assert runner.invoke(args=["tenants", "repair"]).exit_code == 2
    listed = runner.invoke(args=["tenants", "repair", "--all"])
    assert f"orphan database {orphan} on default\n" in listed.output
    dropped = runner.invoke(args=["tenants", "repair", "--all", "--drop-orphans"])
    assert f"orphan database {orphan} on default dropped" in dropped.output
    assert runner.invoke(args=["tenants", "repair", "acme"]).output == "nothing to repair\n"

    rotated = runner.invoke(args=["rotate-key"])
    assert rotated.exit_code == 0 and "of 2 tenants" in rotated.output


def test_rotate_key_lets_the_old_key_go(settings, app):
    """Tokens written under the old key read under [new, old]; after rotate-key, under new."""
    import dataclasses

    from cryptography.fernet import Fernet

    from api import create_app
    from api.tenancy.provisioning import SignUp, provision_tenant

    provision_tenant(app.extensions["finvera"], SignUp("Acme", "acme", "o@acme.in"))
    new_key = Fernet.generate_key()
    both = create_app(dataclasses.replace(
        settings, encryption_keys=(new_key, *settings.encryption_keys)))
    assert both.test_cli_runner().invoke(args=["rotate-key"]).exit_code == 0
    only_new = create_app(dataclasses.replace(settings, encryption_keys=(new_key,)))
    tenant = only_new.extensions["finvera"].directory.find("acme")
    assert tenant.target.database == tenant.db_name
    for each in (both, only_new):
        each.extensions["finvera"].dispose()
