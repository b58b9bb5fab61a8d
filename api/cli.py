"""The ``finvera`` console script: a Flask CLI group on the app factory."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from api import create_app
from api.config import ConfigError
from api.migrate_command import migrate_command


def _app_or_one_line_error():
    """Build the app; a configuration error becomes one line and a non-zero exit."""
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_app_or_one_line_error, add_default_commands=False,
             load_dotenv=False, set_debug_flag=False)
def cli() -> None:
    """Finvera's tenant database platform."""


# Here rather than on the app: ``finvera migrate`` needs the databases, not the API.
cli.add_command(migrate_command)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="finvera")
