"""``finvera migrate``: apply a tier's pending migrations, or show what is pending.

Main and master are one database each, migrated here directly. The tenant tier is the fleet,
migrated by ``api.tenancy.fleet.FleetMigrator``; this module parses options, calls it and
prints: a progress bar on a terminal, one line per tenant otherwise, then a summary.

``finvera migrate`` runs without building the app (a deploy's migrate step then starts in the
time it takes to import the tenancy package, not the whole API); within an app's own CLI
(``app.cli``, the tests) it runs on that app's databases.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, has_app_context
from flask.cli import with_appcontext
from tqdm import tqdm

from api.config import ConfigError, load_settings
from api.db import databases
from api.tenancy.backends import DEFAULT_SERVER
from api.tenancy.databases import Databases
from api.tenancy.fleet import (
    FleetError,
    FleetMigrator,
    FleetReport,
    NoTenantRegistry,
    TenantResult,
    executor_for,
)
from api.tenancy.migrations import Tier, apply_migrations, migration_ids, pending_ids


@click.command("migrate")
@click.option("--tier", type=click.Choice([tier.value for tier in Tier]),
              help="Apply the pending migrations of this tier.")
@click.option("--tenant", "subdomains", multiple=True, metavar="SUBDOMAIN",
              help="With --tier tenant (or --status): this tenant only; repeatable.")
@click.option("--all", "every_tenant", is_flag=True,
              help="With --tier tenant: every active and suspended tenant.")
@click.option("--parallel", type=click.IntRange(1, 64), default=None,
              help="With --tier tenant: how many tenants are migrated at once  [default: 1]")
@click.option("--dry-run", is_flag=True, help="List what would be applied; change nothing.")
@click.option("--status", is_flag=True, help="Show what is pending, per tier and per tenant.")
def migrate_command(tier: str | None, subdomains: tuple[str, ...], every_tenant: bool,
                    parallel: int | None, dry_run: bool, status: bool) -> None:
    """Apply a tier's pending migrations, or show what is pending."""
    _check_options(tier, subdomains, every_tenant, parallel, dry_run, status)
    with _command_databases() as dbs:
        _migrate(dbs, tier, subdomains, parallel, dry_run, status)


@contextmanager
def _command_databases() -> Iterator[Databases]:
    """The app's Databases within an app context; else Databases of their own, from the
    environment, closed at the end."""
    if has_app_context():
        yield databases()
        return
    try:
        dbs = Databases(load_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield dbs
    finally:
        dbs.dispose()


def _migrate(dbs: Databases, tier: str | None, subdomains: tuple[str, ...],
             parallel: int | None, dry_run: bool, status: bool) -> None:
    if status or dry_run:
        _show_tiers(dbs, tier, dry_run)
        if tier in (None, Tier.TENANT):
            _show_tenants(dbs, subdomains, dry_run)
    elif tier == Tier.TENANT:
        _migrate_tenants(dbs, subdomains, parallel or 1)
    else:
        name, _engine = dbs.tiers()[Tier(tier)]
        dbs.backend.create_database(name)
        applied = apply_migrations(dbs.backend, name, Tier(tier))
        click.echo(f"{tier} ({name}): applied {', '.join(applied)}" if applied
                   else f"{tier} ({name}): up to date")


def _check_options(tier, subdomains, every_tenant, parallel, dry_run, status) -> None:
    """Refuse combinations that mean nothing, each with one line saying why."""
    if not tier and not status:
        raise click.UsageError("give --tier main|master|tenant, or --status")
    if status and dry_run:
        raise click.UsageError("--dry-run goes with --tier, not with --status")
    if subdomains and every_tenant:
        raise click.UsageError("give --tenant or --all, not both")
    if tier not in (None, Tier.TENANT) and (subdomains or every_tenant or parallel):
        raise click.UsageError("--tenant, --all and --parallel go with --tier tenant")
    if tier == Tier.TENANT and not status and not (subdomains or every_tenant):
        raise click.UsageError("--tier tenant needs --all or at least one --tenant SUBDOMAIN")
    if parallel and (status or dry_run):
        raise click.UsageError("--parallel goes with a run, not with --status or --dry-run")


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A run or check that cannot start, or a server that is down: one line, not a traceback."""
    try:
        yield
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        raise click.ClickException(
            f"tenant migrations failed: {type(exc).__name__}: {exc}") from None


def _show_tiers(dbs: Databases, tier: str | None, dry_run: bool) -> None:
    """What main and master (or the one asked for) still lack."""
    for each_tier, (name, engine) in dbs.tiers().items():
        if tier not in (None, each_tier):
            continue
        try:
            exists = dbs.backend.database_exists(name)
            pending = pending_ids(engine, each_tier) if exists else migration_ids(each_tier)
        except Exception as exc:
            raise click.ClickException(f"{name}: {exc}") from None
        if not exists:
            text = ("would create it and apply " + ", ".join(pending) if dry_run
                    else "(database does not exist yet)")
        elif pending:
            text = ("would apply " if dry_run else "") + ", ".join(pending)
        else:
            text = "up to date"
        click.echo(f"{each_tier} ({name}): {text}")


def _show_tenants(dbs: Databases, subdomains: tuple[str, ...], dry_run: bool) -> None:
    """One line per tenant with what it lacks, then the counts; fails if any was unreadable."""
    with _one_line_errors():
        try:
            report = FleetMigrator(dbs).check(subdomains or None)
        except NoTenantRegistry as exc:
            if subdomains:
                raise
            click.echo(f"tenant: no tenants yet ({exc})")  # before init: nothing is wrong
            return
    for result in report.results:
        click.echo(_line(result, dry_run))
    _summary(report)
    unreadable = report.of("failed")
    if unreadable:
        raise click.ClickException(f"{len(unreadable)} of {len(report.results)} tenant "
                                   "databases could not be checked")


def _migrate_tenants(dbs: Databases, subdomains: tuple[str, ...], parallel: int) -> None:
    """The fleet run: progress as tenants finish, a summary, and exit 1 if any failed."""
    progress = _Progress()
    try:
        with _one_line_errors():
            report = FleetMigrator(dbs, executor_for(parallel)).run(
                subdomains or None, on_result=progress)
    finally:
        progress.close()
    _summary(report)
    failed = report.of("failed")
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(report.results)} tenants failed; fix the cause and run the "
            "same command again: it applies only what is left")


class _Progress:
    """Where each finished tenant goes: a progress bar on a terminal, else one line each."""

    def __init__(self) -> None:
        self.on_terminal = sys.stdout.isatty()
        self.bar: tqdm | None = None

    def __call__(self, result: TenantResult, total: int) -> None:
        if not self.on_terminal:
            click.echo(_line(result))
            return
        if self.bar is None:
            self.bar = tqdm(total=total, desc="tenants", unit="tenant", file=sys.stdout)
        self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _line(result: TenantResult, dry_run: bool = False) -> str:
    """``tenant <subdomain>: <what happened, or what is pending>``."""
    state = result.state
    if state == "failed":
        text = f"failed: {result.error}"
    elif state == "applied":
        text = "applied " + ", ".join(result.applied)
    elif state == "pending":
        text = ("would apply " if dry_run else "") + ", ".join(result.pending)
    else:
        text = "up to date"
    note = f" ({result.note})" if result.note else ""
    where = "" if result.server == DEFAULT_SERVER else f" ({result.server})"
    return f"tenant {result.subdomain}{where}: {text}{note}"


def _summary(report: FleetReport) -> None:
    """Counts by state; after a run, also which tenants got what and why any failed."""
    if not report.results:
        click.echo("tenant: no active or suspended tenants")
        return
    applied, pending = report.of("applied"), report.of("pending")
    counts = [f"{len(applied)} applied ({_migrations(r.applied for r in applied)})"
              if applied else None,
              f"{len(pending)} pending ({_migrations(r.pending for r in pending)})"
              if pending else None,
              f"{len(report.of('current'))} current", f"{len(report.of('failed'))} failed"]
    click.echo(f"summary: {', '.join(filter(None, counts))} ({len(report.results)} tenants)")
    if applied:
        click.echo("applied: " + ", ".join(result.subdomain for result in applied))
    for result in report.of("failed"):
        click.echo(f"failed: {result.subdomain}: {result.error}")


def _migrations(id_lists) -> str:
    """``1 migration``, ``5 migrations``: the total over the tenants' lists of ids."""
    total = sum(map(len, id_lists))
    return f"{total} migration{'' if total == 1 else 's'}"


def register(app: Flask) -> None:
    """Add ``migrate`` to ``app.cli``, run within the app's context, on its databases
    (``finvera`` itself has the command without the app: ``api/cli.py``)."""
    app.cli.add_command(click.Command(
        migrate_command.name, callback=with_appcontext(migrate_command.callback),
        params=migrate_command.params, help=migrate_command.help))
