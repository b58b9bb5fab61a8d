"""The ``finvera backup`` and ``finvera restore`` commands; ``register(app)`` adds them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from api.db import databases
from api.tenancy.backends import DEFAULT_SERVER, BackendError
from api.tenancy.backups import BackupError, backup_database, read_manifest, restore_database
from api.tenancy.migrations import Tier
from api.tenancy.registry import live_tenants
from api.tenancy.tenant_restore import TenantRestore, restore_as_tenant


@contextmanager
def _one_line_errors(action: str) -> Iterator[None]:
    """Report a failure of ``action`` as one line and a non-zero exit, not a traceback."""
    try:
        yield
    except (BackupError, BackendError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # a server that is down or refuses us
        raise click.ClickException(f"{action} failed: {type(exc).__name__}: {exc}") from None


@click.command("backup")
@click.option("--tier", type=click.Choice(["main", "master", "tenant", "all"]), default="all",
              show_default=True,
              help="Which databases to back up (all: main, master and every live tenant).")
@click.option("--tenant", "subdomain", default=None, help="Back up this tenant's database.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("backups"), show_default=True, help="Directory for the files.")
@with_appcontext
def backup_command(tier: str, subdomain: str | None, out_dir: Path) -> None:
    """Back up databases: one compressed file per database, each with a manifest beside it."""
    dbs = databases()
    jobs = [(each_tier, DEFAULT_SERVER, name, None)
            for each_tier, (name, _engine) in dbs.tiers().items()
            if tier in ("all", each_tier) and not subdomain]
    if tier in ("all", Tier.TENANT) or subdomain:
        tenants = live_tenants(dbs, [subdomain] if subdomain else None)
        if subdomain and not tenants:
            raise click.ClickException(f"no active or suspended tenant {subdomain!r}")
        jobs += [(Tier.TENANT, tenant.db_server, tenant.db_name, tenant.subdomain)
                 for tenant in tenants]
    for each_tier, server, name, tenant in jobs:
        with _one_line_errors(f"backup of {name}"):
            path = backup_database(dbs.backend_of(server), name, out_dir, tier=each_tier,
                                   tenant=tenant)
            counts = read_manifest(path).row_counts
        click.echo(f"{each_tier} ({tenant or name}): {path} "
                   f"({len(counts)} tables, {sum(counts.values())} rows)")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as-database", "target", default=None,
              help="Restore into this database instead of the one the backup was taken of.")
@click.option("--as-tenant", "subdomain", default=None,
              help="Restore a tenant's backup into a new database and make it this tenant's.")
@click.option("--replace", is_flag=True,
              help="Drop the target database first if it exists (otherwise refused); with "
                   "--as-tenant, switch a live tenant to the restored database, keeping its "
                   "current one.")
@click.option("--server", default=None,
              help="The tenant database server to restore a tenant backup onto (default: "
                   "the default server; with --as-tenant, the tenant's own server when it is "
                   "live, else the one placement picks).")
@with_appcontext
def restore_command(file: Path, target: str | None, subdomain: str | None,
                    replace: bool, server: str | None) -> None:
    """Restore a backup into a new database, checked against its manifest."""
    dbs = databases()
    if subdomain:
        if target:
            raise click.UsageError("--as-tenant names its own new database: leave out "
                                   "--as-database")
        with _one_line_errors(f"restore of {file.name}"):
            report = restore_as_tenant(dbs, file, subdomain, replace=replace, server=server)
        _echo_tenant_restore(report)
        return
    server = server or DEFAULT_SERVER
    with _one_line_errors(f"restore of {file.name}"):
        manifest = read_manifest(file)
        target = target or manifest.database
        for tier, (name, _engine) in dbs.tiers().items():
            if target == name and tier != manifest.tier:
                raise BackupError(f"{target} is the {tier} database; {file.name} is a backup "
                                  f"of the {manifest.tier} tier")
        if server != DEFAULT_SERVER and manifest.tier != Tier.TENANT:
            raise BackupError(f"{file.name} is a backup of the {manifest.tier} tier, which "
                              f"lives on the {DEFAULT_SERVER} server only")
        report = restore_database(dbs.backend_of(server), file, target, replace=replace)
    counts = report.manifest.row_counts
    where = "" if server == DEFAULT_SERVER else f" on server {server}"
    click.echo(f"restored {manifest.database} ({manifest.tier}) into {target}{where}"
               f"{' (replaced)' if report.replaced else ''}: {len(counts)} tables, "
               f"{sum(counts.values())} rows, as the manifest says")


def _echo_tenant_restore(report: TenantRestore) -> None:
    """What a restore as a tenant did, and where the database it replaced is."""
    manifest, counts = report.manifest, report.manifest.row_counts
    became = {"created": "new tenant", "revived": "tenant", "replaced": "tenant"}[report.outcome]
    what = {"created": "active", "revived": "active again",
            "replaced": "switched from its previous database"}[report.outcome]
    click.echo(f"restored {manifest.database} (tenant {manifest.tenant}) as {became} "
               f"{report.subdomain} (id {report.tenant_id}, {what}) into {report.database}: "
               f"{len(counts)} tables, {sum(counts.values())} rows, as the manifest says"
               + (f"; then applied {len(report.migrated)} migrations" if report.migrated
                  else ""))
    if report.previous_database:
        click.echo(f"kept its previous database {report.previous_database}: `finvera tenants "
                   "repair --all` lists it as an orphan, `--drop-orphans` drops it")


def register(app: Flask) -> None:
    """Add ``backup`` and ``restore`` to ``app.cli`` (and so to ``finvera``)."""
    for command in (backup_command, restore_command):
        app.cli.add_command(command)
