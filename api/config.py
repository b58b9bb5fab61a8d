"""Settings from the environment, validated once: a bad value is one clear line naming it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from api.tenancy.backends import DEFAULT_SERVER
from api.tenancy.crypto import KeyFormatError, derive_key, parse_keys

# Database names and prefixes that end up in SQL: letters, digits and underscores only.
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")
# A tenant database is <prefix><subdomain up to 30>_<13-digit unix ms>: 64 characters at most
# leaves 20 for the prefix.
TENANT_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
# A tenant database server's name, as tenant_master.db_server and infra's tenantServers spell it.
SERVER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SERVER_KEYS = ("host", "port", "user", "password")
KEY_FILE = "encryption.key"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A configuration value that stops start-up; the message names the variable."""


@dataclass(frozen=True)
class DbServer:
    """A further MySQL/MariaDB server for tenant databases (TENANT_DB_SERVERS); the password
    stays out of every repr."""

    name: str
    host: str
    port: int
    user: str
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the platform reads from its environment, with the seed's defaults."""

    db_host: str | None = None
    db_port: int = 3306
    db_user: str = "root"
    db_password: str = field(default="", repr=False)
    db_name: str = "finvera_db"
    master_db_name: str = "finvera_master"
    tenant_db_prefix: str = "finvera_tenant_"
    use_separate_db_users: bool = False
    max_tenant_connections: int = 50
    encryption_keys: tuple[bytes, ...] = field(default=(), repr=False)
    signing_key: bytes = field(default=b"", repr=False)
    data_dir: Path = Path("var")
    backup_dir: Path = Path("backups")
    base_domain: str = "localhost"
    token_ttl_seconds: int = 3600
    tenant_cache_ttl_seconds: int = 5
    storage_cache_seconds: int = 60
    tenant_pool_size: int = 0
    tenant_idle_seconds: int = 300
    tenant_checkout_timeout_seconds: float = 2.0
    db_connect_timeout_seconds: int = 3
    db_ssl: str = "preferred"
    db_query_timeout_seconds: int = 60
    tenant_db_servers: tuple[DbServer, ...] = ()
    closed_db_servers: frozenset[str] = frozenset()

    @property
    def backend_name(self) -> str:
        """``mysql`` when DB_HOST is set, else the embedded ``sqlite``."""
        return "mysql" if self.db_host else "sqlite"

    @property
    def server_names(self) -> tuple[str, ...]:
        """Every tenant database server: ``default`` (the DB_HOST one), then the others."""
        return (DEFAULT_SERVER, *(server.name for server in self.tenant_db_servers))

    @property
    def open_servers(self) -> tuple[str, ...]:
        """The servers that take new tenants, by name."""
        return tuple(sorted(set(self.server_names) - self.closed_db_servers))


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _boolean(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, got {env[name]!r}")


def _name(env: Mapping[str, str], name: str, default: str, pattern: re.Pattern[str]) -> str:
    value = env.get(name, "").strip() or default
    if not pattern.match(value):
        raise ConfigError(
            f"{name} must be letters, digits and underscores ({pattern.pattern}), got {value!r}")
    return value


def _signing_key(env: Mapping[str, str], first_encryption_key: bytes) -> bytes:
    """SECRET_KEY signs tokens; without it, a key derived from the first ENCRYPTION_KEY does."""
    secret = env.get("SECRET_KEY", "")
    if not secret:
        return derive_key(first_encryption_key, "token signing")
    if len(secret) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    return secret.encode()


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _hostname(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip().lower().rstrip(".") or default
    if not HOSTNAME.match(value):
        raise ConfigError(f"{name} must be a host name such as finvera.in, got {value!r}")
    return value


def _unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json object_pairs_hook: a name given twice is an error, not silently the last one."""
    names = [name for name, _ in pairs]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise ConfigError(f"TENANT_DB_SERVERS names server {twice[0]!r} twice")
    return dict(pairs)


def _db_server(name: object, entry: object, default_user: str, default_password: str,
               ) -> DbServer:
    """One entry of TENANT_DB_SERVERS, checked; messages never quote a password."""
    where = f"TENANT_DB_SERVERS[{name!r}]"
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        raise ConfigError(f"TENANT_DB_SERVERS: server name {name!r} must be lower-case "
                          f"letters, digits and hyphens, starting with a letter "
                          f"({SERVER_NAME.pattern})")
    if name == DEFAULT_SERVER:
        raise ConfigError(f"TENANT_DB_SERVERS: {DEFAULT_SERVER!r} is the DB_HOST server; "
                          "set it with DB_HOST, DB_PORT, DB_USER and DB_PASSWORD")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with the keys {', '.join(SERVER_KEYS)}")
    if unknown := sorted(set(entry) - set(SERVER_KEYS)):
        raise ConfigError(f"{where} has an unknown key {unknown[0]!r}; "
                          f"expected {', '.join(SERVER_KEYS)}")
    host = entry.get("host")
    if not isinstance(host, str) or not HOSTNAME.match(host.strip().lower().rstrip(".")):
        raise ConfigError(f"{where}.host must be a host name or IPv4 address, got {host!r}")
    port = entry.get("port", 3306)
    if type(port) is not int or not 1 <= port <= 65535:
        raise ConfigError(f"{where}.port must be a whole number between 1 and 65535, "
                          f"got {port!r}")
    user, password = entry.get("user", default_user), entry.get("password")
    if not isinstance(user, str) or not user.strip():
        raise ConfigError(f"{where}.user must be a non-empty string")
    if password is None:
        if "user" in entry:
            raise ConfigError(f"{where} gives a user but no password "
                              '(use "password": "" for none)')
        password = default_password  # the same application user as on the DB_HOST server
    elif not isinstance(password, str):
        raise ConfigError(f"{where}.password must be a string")
    return DbServer(name, host.strip().lower().rstrip("."), port, user.strip(), password)


def _db_servers(env: Mapping[str, str], db_host: str | None, db_port: int, default_user: str,
                default_password: str) -> tuple[DbServer, ...]:
    """TENANT_DB_SERVERS: a JSON object of further tenant servers by name (MySQL only)."""
    raw = env.get("TENANT_DB_SERVERS", "").strip()
    if not raw:
        return ()
    if not db_host:
        raise ConfigError("TENANT_DB_SERVERS needs MySQL/MariaDB (set DB_HOST): the embedded "
                          "SQLite backend keeps every database on one server")
    try:
        parsed = json.loads(raw, object_pairs_hook=_unique_object)
    except json.JSONDecodeError as exc:  # its message gives a position, never the text
        raise ConfigError(f"TENANT_DB_SERVERS is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ConfigError('TENANT_DB_SERVERS must be a JSON object such as '
                          '{"tenants-2": {"host": "db2.internal", "port": 3306}}')
    servers = [_db_server(name, entry, default_user, default_password)
               for name, entry in parsed.items()]
    seen = {(db_host.strip().lower().rstrip("."), db_port): DEFAULT_SERVER}
    for server in servers:
        other = seen.setdefault((server.host, server.port), server.name)
        if other != server.name:
            raise ConfigError(f"TENANT_DB_SERVERS[{server.name!r}] is {server.host}:"
                              f"{server.port}, the same server as {other!r}")
    return tuple(sorted(servers, key=lambda server: server.name))


def _closed_servers(env: Mapping[str, str], names: tuple[str, ...]) -> frozenset[str]:
    """TENANT_DB_SERVERS_CLOSED: servers that keep their tenants but take no new ones."""
    closed = [name.strip() for name in env.get("TENANT_DB_SERVERS_CLOSED", "").split(",")
              if name.strip()]
    for name in closed:
        if name not in names:
            raise ConfigError(f"TENANT_DB_SERVERS_CLOSED names {name!r}, which is not a tenant "
                              f"server (they are {', '.join(names)})")
    if set(names) <= set(closed):
        raise ConfigError("TENANT_DB_SERVERS_CLOSED closes every tenant server: new tenants "
                          "would have nowhere to go")
    return frozenset(closed)


def _embedded_key(data_dir: Path) -> str:
    """Read the embedded default's key, generating it once (mode 0600) if there is none."""
    path = data_dir / KEY_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"FINVERA_DATA_DIR {str(data_dir)!r} is not writable: {exc}") from None
    with os.fdopen(fd, "w") as out:
        out.write(Fernet.generate_key().decode() + "\n")
    return path.read_text().strip()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from environment variables (``os.environ`` unless given)."""
    env = os.environ if env is None else env
    db_host = env.get("DB_HOST", "").strip() or None
    data_dir = Path(env.get("FINVERA_DATA_DIR", "").strip() or "var")
    separate_users = _boolean(env, "USE_SEPARATE_DB_USERS")
    if separate_users and not db_host:
        raise ConfigError("USE_SEPARATE_DB_USERS=true needs MySQL/MariaDB (set DB_HOST): "
                          "SQLite has no database users")

    key_text = env.get("ENCRYPTION_KEY", "").strip()
    if not key_text:
        if db_host:
            raise ConfigError("ENCRYPTION_KEY must be set when DB_HOST is set "
                              "(a Fernet key or a 32-character secret)")
        key_text = _embedded_key(data_dir)
    try:
        keys = tuple(parse_keys(key_text))
    except KeyFormatError as exc:
        raise ConfigError(f"ENCRYPTION_KEY is not valid: {exc}") from None

    db_port = _integer(env, "DB_PORT", 3306, 1, 65535)
    db_user, db_password = env.get("DB_USER", "").strip() or "root", env.get("DB_PASSWORD", "")
    servers = _db_servers(env, db_host, db_port, db_user, db_password)
    settings = Settings(
        db_host=db_host,
        db_port=db_port,
        db_user=db_user,
        db_password=db_password,
        db_name=_name(env, "DB_NAME", "finvera_db", DATABASE_NAME),
        master_db_name=_name(env, "MASTER_DB_NAME", "finvera_master", DATABASE_NAME),
        tenant_db_prefix=_name(env, "TENANT_DB_PREFIX", "finvera_tenant_", TENANT_PREFIX),
        use_separate_db_users=separate_users,
        max_tenant_connections=_integer(env, "MAX_TENANT_CONNECTIONS", 50, 1, 10000),
        encryption_keys=keys,
        signing_key=_signing_key(env, keys[0]),
        data_dir=data_dir,
        backup_dir=Path(env.get("FINVERA_BACKUP_DIR", "").strip() or "backups"),
        base_domain=_hostname(env, "BASE_DOMAIN", "localhost"),
        token_ttl_seconds=_integer(env, "TOKEN_TTL_SECONDS", 3600, 60, 7 * 24 * 3600),
        tenant_cache_ttl_seconds=_integer(env, "TENANT_CACHE_TTL_SECONDS", 5, 0, 3600),
        storage_cache_seconds=_integer(env, "STORAGE_CACHE_SECONDS", 60, 0, 24 * 3600),
        tenant_pool_size=_integer(env, "TENANT_POOL_SIZE", 0, 0, 1000),
        tenant_idle_seconds=_integer(env, "TENANT_IDLE_SECONDS", 300, 1, 24 * 3600),
        tenant_checkout_timeout_seconds=_integer(
            env, "TENANT_CHECKOUT_TIMEOUT_MS", 2000, 0, 60000) / 1000,
        db_connect_timeout_seconds=_integer(env, "DB_CONNECT_TIMEOUT", 3, 1, 60),
        db_ssl=_choice(env, "DB_SSL", ("preferred", "disabled", "required")),
        db_query_timeout_seconds=_integer(env, "DB_QUERY_TIMEOUT", 60, 1, 24 * 3600),
        tenant_db_servers=servers,
        closed_db_servers=_closed_servers(
            env, (DEFAULT_SERVER, *(server.name for server in servers))),
    )
    if settings.db_name == settings.master_db_name:
        raise ConfigError(f"DB_NAME and MASTER_DB_NAME must differ, both are {settings.db_name!r}")
    for name in ("DB_NAME", "MASTER_DB_NAME"):
        if getattr(settings, name.lower()).startswith(settings.tenant_db_prefix):
            raise ConfigError(f"{name} must not start with TENANT_DB_PREFIX "
                              f"{settings.tenant_db_prefix!r}: it would be taken for a tenant's")
    return settings
