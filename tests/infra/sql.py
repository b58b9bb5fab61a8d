"""The SQL that pulumi-mysql's provider runs for the databases, users and grants a deployment
declared, after its ``formatDatabaseName``/``formatTableName`` (names back-quoted, ``*`` not)."""

from __future__ import annotations

from pymysql.converters import escape_string

from tests.infra.program import DATABASE, GRANT, USER, Deployment, reveal


def statements(deployment: Deployment, endpoint: str) -> list[str]:
    """Databases, then users, then grants declared on the server at ``endpoint``."""
    render = {DATABASE: _create_database, USER: _create_user, GRANT: _grant}
    order = list(render)
    on_server = [r for r in deployment.resources
                 if r.typ in render and deployment.endpoint_of(r) == endpoint]
    return [render[r.typ](reveal(r.inputs))
            for r in sorted(on_server, key=lambda r: order.index(r.typ))]


def _create_database(inputs: dict) -> str:
    return (f"CREATE DATABASE {_name(inputs['name'])} "
            f"CHARACTER SET {inputs['defaultCharacterSet']} "
            f"COLLATE {inputs['defaultCollation']}")


def _create_user(inputs: dict) -> str:
    return f"CREATE USER {_account(inputs)} IDENTIFIED BY {_string(inputs['plaintextPassword'])}"


def _grant(inputs: dict) -> str:
    sql = (f"GRANT {', '.join(inputs['privileges'])} "
           f"ON {_name(inputs['database'])}.{_name(inputs.get('table') or '*')} "
           f"TO {_account(inputs)}")
    return sql + " WITH GRANT OPTION" if inputs.get("grant") else sql


def _account(inputs: dict) -> str:
    return f"{_string(inputs['user'])}@{_string(inputs['host'])}"


def _string(value: str) -> str:
    return f"'{escape_string(value)}'"


def _name(name: str) -> str:
    return name if name == "*" else f"`{name}`"
