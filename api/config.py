"""Settings from the environment, validated once: a bad value is one clear line naming it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from api.tenancy.crypto import KeyFormatError, derive_key, parse_keys

# Database names and prefixes that end up in SQL: letters, digits and underscores only.
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")
# A tenant database is <prefix><subdomain up to 30>_<13-digit unix ms>: 64 characters at most
# leaves 20 for the prefix.
TENANT_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
KEY_FILE = "encryption.key"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A configuration value that stops start-up; the message names the variable."""


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

    @property
    def backend_name(self) -> str:
        """``mysql`` when DB_HOST is set, else the embedded ``sqlite``."""
        return "mysql" if self.db_host else "sqlite"


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

    settings = Settings(
        db_host=db_host,
        db_port=_integer(env, "DB_PORT", 3306, 1, 65535),
        db_user=env.get("DB_USER", "").strip() or "root",
        db_password=env.get("DB_PASSWORD", ""),
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
    )
    if settings.db_name == settings.master_db_name:
        raise ConfigError(f"DB_NAME and MASTER_DB_NAME must differ, both are {settings.db_name!r}")
    for name in ("DB_NAME", "MASTER_DB_NAME"):
        if getattr(settings, name.lower()).startswith(settings.tenant_db_prefix):
            raise ConfigError(f"{name} must not start with TENANT_DB_PREFIX "
                              f"{settings.tenant_db_prefix!r}: it would be taken for a tenant's")
    return settings
