"""The commands of the ``finvera`` CLI: init, serve, migrate, admin; registered on ``app.cli``."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext
from gunicorn.app.base import BaseApplication
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db import databases
from api.models.main import AdminRole, AdminUser
from api.schemas import check_email
from api.security import MIN_PASSWORD_LENGTH, hash_password
from api.tenancy.backends import BackendError
from api.tenancy.migrations import apply_migrations, pending_ids


class GunicornServer(BaseApplication):
    """gunicorn run in-process; each worker builds its own app (no connections cross a fork)."""

    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from api import create_app  # imported here: api imports this module

        return create_app()


def _initialize() -> dict[str, list[str]]:
    try:
        return databases().initialize()
    except (BackendError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # a server that is down or refuses us: one line, not a traceback
        raise click.ClickException(f"start-up failed: {type(exc).__name__}: {exc}") from None


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create and migrate the master and main databases (the start-up flow, without serving)."""
    for database, applied in _initialize().items():
        click.echo(f"{database}: {len(applied)} migrations applied" if applied
                   else f"{database}: up to date")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int) -> None:
    """Run the start-up flow, then serve the API with gunicorn."""
    _initialize()
    databases().dispose()
    GunicornServer({"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                    "worker_class": "gthread", "accesslog": "-", "timeout": 60}).run()


@click.command("migrate")
@click.option("--tier", type=click.Choice(["main", "master"]),
              help="Apply the pending migrations of this tier.")
@click.option("--status", is_flag=True, help="Show what is pending, per tier.")
@with_appcontext
def migrate_command(tier: str | None, status: bool) -> None:
    """Apply a tier's pending migrations, or show what is pending."""
    if not tier and not status:
        raise click.UsageError("give --tier main|master, or --status")
    dbs = databases()
    for each_tier, (name, engine) in dbs.tiers().items():
        if status and not tier or each_tier == tier:
            if status:
                try:
                    pending = pending_ids(engine, each_tier) if dbs.backend.database_exists(
                        name) else ["(database does not exist yet)"]
                except Exception as exc:
                    raise click.ClickException(f"{name}: {exc}") from None
                click.echo(f"{each_tier} ({name}): " + (", ".join(pending) or "up to date"))
            else:
                dbs.backend.create_database(name)
                applied = apply_migrations(dbs.backend, name, each_tier)
                click.echo(f"{each_tier} ({name}): applied {', '.join(applied)}" if applied
                           else f"{each_tier} ({name}): up to date")


@click.group("admin")
def admin_group() -> None:
    """Platform admin users."""


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@admin_group.command("create-user")
@click.option("--email", required=True)
@click.option("--role", default="super_admin", show_default=True)
@click.option("--name", "full_name", default=None, help="Full name.")
@with_appcontext
def create_admin_user(email: str, role: str, full_name: str | None) -> None:
    """Create a platform admin; the password comes from a prompt, or stdin when piped."""
    try:
        email = check_email(email)
    except ValueError:
        raise click.BadParameter(f"{email!r} is not an email address",
                                 param_hint="--email") from None
    _initialize()
    with Session(databases().main_engine) as session:
        roles = session.scalars(select(AdminRole.name)).all()
        if role not in roles:
            raise click.BadParameter(f"{role!r} is not one of {', '.join(roles)}",
                                     param_hint="--role")
        if session.scalar(select(func.count()).where(AdminUser.email == email)):
            raise click.ClickException(f"an admin user with email {email} already exists")
        password = _read_password()
        if len(password) < MIN_PASSWORD_LENGTH:
            raise click.ClickException(
                f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
        user = AdminUser(email=email, role=role, full_name=full_name,
                         password_hash=hash_password(password))
        session.add(user)
        session.commit()
        click.echo(f"created admin user {email} (id {user.id}, role {role})")


def register(app: Flask) -> None:
    """Add the platform's commands to ``app.cli`` (and so to ``finvera``)."""
    for command in (init_command, serve_command, migrate_command, admin_group):
        app.cli.add_command(command)
