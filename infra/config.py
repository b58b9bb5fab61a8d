"""The stack's config, read and checked in one place before any resource is declared.

Every problem is one ``InvalidConfig`` (a ``pulumi.RunError``: a clean exit, no stack trace)
whose message starts with the config key at fault, e.g. ``finvera:dbName: ...``.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi.runtime.config import is_config_secret

from infra.databases import FinveraDatabasesArgs, ServerArgs

IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
SERVER_NAME = re.compile(r"[a-z][a-z0-9-]*")
HOST = re.compile(r"[A-Za-z0-9.-]+")
USER_HOST = re.compile(r"[A-Za-z0-9.%_:-]+")
MAX_DATABASE_NAME = 64
MAX_USER_NAME = 80  # MariaDB's limit; MySQL 8 allows 32.
PRIMARY = "primary"
API_DEFAULT = "default"  # the API's name for the primary server: not a further server's
SERVER_KEYS = {"name", "endpoint", "adminUser", "adminPassword", "tenantDatabases"}


class InvalidConfig(pulumi.RunError):
    """A config value the program cannot use."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


def args_from_config(config: pulumi.Config) -> FinveraDatabasesArgs:
    """Read the stack's config into the component's arguments, or raise InvalidConfig."""
    key = config.full_key
    prefix = _name(key("tenantDbPrefix"), config.get("tenantDbPrefix", "finvera_tenant_"),
                   MAX_DATABASE_NAME - 1)
    separate = config.get_bool("useSeparateDbUsers", False)
    names = {}
    for option, default in (("dbName", "finvera_db"), ("masterDbName", "finvera_master")):
        names[option] = _name(key(option), config.get(option, default))
        if names[option].startswith(prefix):
            raise InvalidConfig(key(option), f"must not start with the tenantDbPrefix {prefix!r}")

    taken: set[str] = set()
    primary = ServerArgs(
        PRIMARY, *_endpoint(key("endpoint"), config.require("endpoint")),
        admin_user=_name(key("adminUser"), config.get("adminUser", "root"), MAX_USER_NAME),
        admin_password=config.require_secret("adminPassword"),
        tenant_databases=_tenant_databases(key("tenantDatabases"),
                                           config.get_object("tenantDatabases", []),
                                           prefix, separate, taken),
    )
    return FinveraDatabasesArgs(
        primary=primary,
        tenant_servers=_tenant_servers(config, prefix, separate, taken),
        db_name=names["dbName"],
        master_db_name=names["masterDbName"],
        tenant_db_prefix=prefix,
        app_user=_name(key("appUser"), config.get("appUser", "finvera_app"), MAX_USER_NAME),
        user_host=_match(key("userHost"), config.get("userHost", "%"), USER_HOST, 255),
        app_password=config.get_secret("appPassword"),
        use_separate_db_users=separate,
    )


def _tenant_servers(config: pulumi.Config, prefix: str, separate: bool,
                    taken: set[str]) -> tuple[ServerArgs, ...]:
    """The further tenant servers; their admin passwords sit inside the list, so the key must
    have been set with --secret."""
    key = config.full_key("tenantServers")
    entries = config.get_object("tenantServers", [])
    if not isinstance(entries, list):
        raise InvalidConfig(key, "must be a list of servers")
    if entries and not is_config_secret(key):
        raise InvalidConfig(key, "holds admin passwords: set each one with `pulumi config set "
                                 "--secret --path 'tenantServers[N].adminPassword' <password>`")
    servers: list[ServerArgs] = []
    for index, entry in enumerate(entries):
        at = f"{key}[{index}]"
        if not isinstance(entry, dict):
            raise InvalidConfig(at, f"must be an object with the keys {sorted(SERVER_KEYS)}")
        if unknown := sorted(set(entry) - SERVER_KEYS):
            raise InvalidConfig(f"{at}.{unknown[0]}",
                                f"unknown key; expected one of {sorted(SERVER_KEYS)}")
        name = _match(f"{at}.name", entry.get("name"), SERVER_NAME, 32)
        if name in (PRIMARY, API_DEFAULT) or name in {server.name for server in servers}:
            raise InvalidConfig(f"{at}.name", f"{name!r} is already taken")
        password = entry.get("adminPassword")
        if not isinstance(password, str) or not password:
            raise InvalidConfig(f"{at}.adminPassword", "is required")
        servers.append(ServerArgs(
            name, *_endpoint(f"{at}.endpoint", entry.get("endpoint")),
            admin_user=_name(f"{at}.adminUser", entry.get("adminUser", "root"), MAX_USER_NAME),
            admin_password=pulumi.Output.secret(password),
            tenant_databases=_tenant_databases(f"{at}.tenantDatabases",
                                               entry.get("tenantDatabases", []),
                                               prefix, separate, taken),
        ))
    return tuple(servers)


def _tenant_databases(key: str, value: Any, prefix: str, separate: bool,
                      taken: set[str]) -> tuple[str, ...]:
    """Tenant databases that get a DB user of their own (named after the database); only with
    useSeparateDbUsers, each under the prefix and listed once across all servers."""
    if not isinstance(value, list):
        raise InvalidConfig(key, "must be a list of tenant database names")
    if value and not separate:
        raise InvalidConfig(key, "lists tenant DB users, which needs useSeparateDbUsers: true")
    for index, name in enumerate(value):
        at = f"{key}[{index}]"
        _name(at, name, min(MAX_DATABASE_NAME, MAX_USER_NAME))
        if not name.startswith(prefix) or name == prefix:
            raise InvalidConfig(at, f"{name!r} does not start with the tenantDbPrefix {prefix!r}")
        if name in taken:
            raise InvalidConfig(at, f"{name!r} is listed twice")
        taken.add(name)
    return tuple(value)


def _endpoint(key: str, value: Any) -> tuple[str, int]:
    """Split ``host[:port]`` (port 3306 by default)."""
    if not isinstance(value, str) or not value:
        raise InvalidConfig(key, "is required, as host or host:port")
    host, _, port = value.partition(":")
    _match(key, host, HOST, 255)
    if not port:
        return host, 3306
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidConfig(key, f"{value!r} has no valid port")
    return host, int(port)


def _name(key: str, value: Any, max_length: int = MAX_DATABASE_NAME) -> str:
    """A database or user name: letters, digits and underscores only, safe in any DDL."""
    return _match(key, value, IDENTIFIER, max_length)


def _match(key: str, value: Any, pattern: re.Pattern, max_length: int) -> str:
    """Return ``value`` if it is a string matching ``pattern`` of at most ``max_length``."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidConfig(key, f"{value!r} must match {pattern.pattern}")
    if len(value) > max_length:
        raise InvalidConfig(key, f"{value!r} is longer than {max_length} characters")
    return value
