"""The commands of the ``finvera`` CLI: init, serve, admin; registered on ``app.cli``."""

from __future__ import annotations

import os
import sys
import tempfile

import click
from flask import Flask
from flask.cli import with_appcontext
from gunicorn.app.base import BaseApplication
from prometheus_client.multiprocess import mark_process_dead
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db import databases
from api.metrics import MULTIPROCESS_VARIABLE
from api.models.main import AdminRole, AdminUser
from api.models.master import TenantMaster
from api.platform.commissions import record_signup_referral
from api.platform.tenants import TenantCreate
from api.schemas import check_email
from api.security import MIN_PASSWORD_LENGTH, hash_password
from api.tenancy import moves, pool
from api.tenancy.backends import BackendError
from api.tenancy.provisioning import (
    ProvisioningError,
    SignUp,
    SignUpInvalid,
    TenantConflict,
    pause_if_asked,
    provision_tenant,
)
from api.tenancy.registry import rotate_connection_keys
from api.tenancy.repair import repair


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
    if not os.environ.get(MULTIPROCESS_VARIABLE):
        # Metrics of several workers add up through files, a mode prometheus_client chooses
        # when it is first imported: start again with the directory set from the outset.
        os.environ[MULTIPROCESS_VARIABLE] = tempfile.mkdtemp(prefix="finvera-metrics-")
        os.execv(sys.executable, [sys.executable, "-m", "api", *sys.argv[1:]])
    _initialize()
    databases().dispose()
    GunicornServer({"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                    "worker_class": "gthread", "accesslog": "-", "timeout": 60,
                    "child_exit": lambda _server, worker: mark_process_dead(worker.pid)}).run()


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


@click.group("tenants")
def tenants_group() -> None:
    """Create and move tenants, and clean up after sign-ups and moves that did not finish."""


@tenants_group.command("create")
@click.option("--company-name", required=True)
@click.option("--subdomain", required=True)
@click.option("--email", required=True, help="The tenant admin's email.")
@click.option("--plan", default=None)
@click.option("--referral-code", default=None)
@click.option("--password-stdin", is_flag=True,
              help="Read the admin's password from stdin instead of generating one.")
@with_appcontext
def create_tenant_command(company_name, subdomain, email, plan, referral_code, password_stdin):
    """Create a tenant, as POST /api/admin/tenants does (same rules); prints a generated
    password once."""
    _initialize()
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        body = TenantCreate(company_name=company_name, subdomain=subdomain, email=email,
                            plan=plan, referral_code=referral_code, admin_password=password)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        field = str(problem["loc"][0]) if problem["loc"] else "input"
        raise click.ClickException(f"{field.replace('_', '-')}: {problem['msg']}") from None
    try:
        result = provision_tenant(databases(), SignUp(**body.model_dump()))
    except (SignUpInvalid, TenantConflict) as exc:
        raise click.ClickException(str(exc)) from None
    except ProvisioningError as exc:
        raise click.ClickException(f"{exc}; run `finvera tenants repair {subdomain}` "
                                   "or retry the same command") from None
    tenant = result.tenant
    if body.referral_code:
        with Session(databases().main_engine) as session:
            record_signup_referral(session, tenant.id, body.referral_code, body.plan)
    click.echo(f"created tenant {tenant.subdomain} (id {tenant.id}, database {tenant.db_name})")
    if result.generated_password:
        click.echo(f"admin {result.admin_email} password: {result.generated_password}")


@tenants_group.command("repair")
@click.argument("subdomains", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every tenant, and look for orphans.")
@click.option("--drop-orphans", is_flag=True,
              help="Drop tenant databases and DB users that no live tenant owns.")
@with_appcontext
def repair_tenants_command(subdomains, everything, drop_orphans):
    """Clean tenants left in provisioning or failed, undo interrupted moves; list or drop
    orphans."""
    if bool(subdomains) == everything:
        raise click.UsageError("name tenants by subdomain, or give --all")
    if drop_orphans and not everything:
        raise click.UsageError("--drop-orphans goes with --all")
    report = repair(databases(), list(subdomains) or None, drop_orphans=drop_orphans)
    for subdomain, dropped in report.cleaned.items():
        click.echo(f"cleaned {subdomain}: " + (", ".join(dropped) or "nothing left to drop")
                   + "; status failed, the same sign-up can be retried")
    for subdomain, done in report.moves_undone.items():
        click.echo(f"{subdomain}: {done}")
    for subdomain in report.in_progress:
        click.echo(f"skipped {subdomain}: its sign-up or move is still running")
    for orphan in report.orphan_databases:
        click.echo(f"orphan database {orphan.name} on {orphan.server}"
                   + (" dropped" if orphan in report.dropped else ""))
    for user in report.dropped:
        if user not in report.orphan_databases:
            click.echo(f"dropped DB user {user.name} on {user.server}")
    if not (report.cleaned or report.moves_undone or report.in_progress or report.failed
            or report.orphan_databases or report.dropped):
        click.echo("nothing to repair")
    if report.failed:
        raise click.ClickException("; ".join(f"{subdomain} not repaired: {why}"
                                             for subdomain, why in report.failed.items()))


MOVE_STEPS = {
    "mark_moving": "marking {subdomain} moving (its requests get 503 tenant_moving)",
    "wait_for_caches": "waiting {wait:.0f} s for other processes' cached lookups to expire",
    "quarantine": "fencing the old copy off on {source}",
    "copy": "copying {database} to {target}",
    "verify": "checking rows and checksums, table by table",
    "switch": "switching tenant_master to {target}",
    "drop_source": "{dropping} the old copy on {source}",
}


@tenants_group.command("move")
@click.argument("subdomain")
@click.option("--to", "target", required=True, metavar="SERVER",
              help="The tenant database server to move to (see TENANT_DB_SERVERS).")
@click.option("--keep-source", is_flag=True,
              help="Keep the old copy (renamed <prefix>_kept_<id>_<ms>) instead of dropping it.")
@with_appcontext
def move_tenant_command(subdomain: str, target: str, keep_source: bool) -> None:
    """Move a tenant's database to another server: copy, verify, switch, drop the old copy.

    Its requests get 503 with Retry-After meanwhile; a failure puts everything back.
    """
    dbs = databases()
    facts = {"subdomain": subdomain, "target": target,
             "wait": dbs.settings.tenant_cache_ttl_seconds + moves.CACHE_MARGIN_SECONDS,
             "dropping": "keeping" if keep_source else "dropping"}

    def announce(step: str) -> None:
        if step == "mark_moving":  # the move has read the row and found nothing against it
            with Session(dbs.master_engine) as session:
                tenant = session.scalar(select(TenantMaster).where(
                    TenantMaster.subdomain == subdomain))
            facts.update(source=tenant.db_server, database=tenant.db_name)
        click.echo(MOVE_STEPS[step].format(**facts))
        pause_if_asked(step)

    try:
        moved = moves.move_tenant(dbs, subdomain, target, keep_source=keep_source,
                                  on_step=announce)
    except (moves.MoveError, BackendError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # a server that is down before anything changed
        raise click.ClickException(f"move failed: {type(exc).__name__}: {exc}") from None
    click.echo(f"moved {moved.subdomain} from {moved.source} to {moved.target}: "
               f"{moved.tables} tables, {moved.rows} rows, checksums match")
    if moved.kept:
        click.echo(f"the old copy is kept as {moved.kept} on {moved.source}")
    if moved.cleanup_error:
        raise click.ClickException(
            f"the move stands, but the old copy on {moved.source} could not be dropped "
            f"({moved.cleanup_error}); `finvera tenants repair --all --drop-orphans` drops it")


@tenants_group.group("pool")
def pool_group() -> None:
    """The pool of ready tenant databases (TENANT_POOL_SIZE) that sign-ups claim."""


@pool_group.command("fill")
@click.option("--size", type=click.IntRange(0, 1000), default=None,
              help="How many ready databases to keep (default: TENANT_POOL_SIZE).")
@with_appcontext
def fill_pool_command(size: int | None) -> None:
    """Create and migrate databases until the pool of every open server holds SIZE ready ones."""
    _initialize()
    dbs = databases()
    made = pool.fill(dbs, size)
    ready = sum(len(pool.pooled(dbs, server)) for server in dbs.settings.open_servers)
    click.echo(f"made {len(made)} ready databases; {ready} in the pool")


@pool_group.command("status")
@with_appcontext
def pool_status_command() -> None:
    """How many ready databases wait for a sign-up, per server."""
    dbs = databases()
    ready = {server: pool.pooled(dbs, server) for server in dbs.settings.server_names}
    click.echo(f"{sum(map(len, ready.values()))} ready databases (TENANT_POOL_SIZE="
               f"{dbs.settings.tenant_pool_size} per open server)")
    for server, names in ready.items():
        if len(ready) > 1:
            closed = " (closed)" if server in dbs.settings.closed_db_servers else ""
            click.echo(f"server {server}{closed}: {len(names)}")
        for name in names:
            click.echo(f"  {name}")


@click.command("rotate-key")
@with_appcontext
def rotate_key_command() -> None:
    """Re-encrypt every tenant's connection info with the first ENCRYPTION_KEY."""
    count = rotate_connection_keys(databases())
    click.echo(f"re-encrypted the connection info of {count} tenants with the first key; "
               "older keys can now be removed from ENCRYPTION_KEY")


def register(app: Flask) -> None:
    """Add the platform's commands to ``app.cli`` (and so to ``finvera``)."""
    for command in (init_command, serve_command, admin_group, tenants_group, rotate_key_command):
        app.cli.add_command(command)
