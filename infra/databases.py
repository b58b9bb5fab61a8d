"""The FinveraDatabases component: the main and master databases, the application's DB user
with least privilege on every server, and one DB user per listed tenant database.

The application user gets its schema privileges on main and master, on tenant databases only
through the tenant-prefix pattern, and the right to create users (and to grant on tenant
databases) only when every tenant gets a DB user of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_mysql as mysql
import pulumi_random as random
from pulumi import Input, Output, ResourceOptions

# What the application and its migrations do inside a database it owns: data, DDL, and the
# locking and temporary tables that migrations and reports use. Nothing outside these.
SCHEMA_PRIVILEGES = (
    "SELECT", "INSERT", "UPDATE", "DELETE",
    "CREATE", "ALTER", "DROP", "INDEX", "REFERENCES",
    "CREATE TEMPORARY TABLES", "LOCK TABLES",
    "CREATE VIEW", "SHOW VIEW", "TRIGGER",
)
CHARACTER_SET = "utf8mb4"
COLLATION = "utf8mb4_unicode_ci"
PASSWORD_LENGTH = 32  # letters and digits only: safe unquoted in a URL or an env file
# What the API calls the primary server (its DB_HOST) in TENANT_DB_SERVERS and tenant_master.
API_DEFAULT_SERVER = "default"


def literal_pattern(name: str) -> str:
    """Escape ``_`` (a wildcard in GRANT ... ON db.*) so a grant covers ``name`` alone; names
    are letters, digits and ``_`` only (``infra.config`` checks), so nothing else needs it."""
    return name.replace("_", r"\_")


def tenant_pattern(prefix: str) -> str:
    """The database pattern of every tenant database, e.g. ``finvera\\_tenant\\_%``."""
    return literal_pattern(prefix) + "%"


@dataclass(frozen=True)
class ServerArgs:
    """A MySQL/MariaDB server reached as its admin, and the tenant databases on it that get
    a DB user of their own."""

    name: str
    host: str
    port: int
    admin_user: str
    admin_password: Input[str]
    tenant_databases: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FinveraDatabasesArgs:
    """Everything the component declares; built from stack config by ``infra.config``."""

    primary: ServerArgs
    tenant_servers: tuple[ServerArgs, ...]
    db_name: str
    master_db_name: str
    tenant_db_prefix: str
    app_user: str
    user_host: str
    app_password: Input[str] | None
    use_separate_db_users: bool


class FinveraDatabases(pulumi.ComponentResource):
    """Finvera's database tiers on the primary server and on any further tenant servers."""

    environment: dict[str, Input[str]]
    """The API's environment variables (DB_HOST ... TENANT_DB_SERVERS); DB_PASSWORD is secret.
    TENANT_DB_SERVERS names no user or password: the API reaches every server as DB_USER."""
    tenant_users: Output[dict]
    """Secret: ``{database: {"server", "user", "password"}}`` for each listed tenant database."""

    def __init__(self, name: str, args: FinveraDatabasesArgs,
                 opts: ResourceOptions | None = None) -> None:
        super().__init__("finvera:infra:FinveraDatabases", name, None, opts)
        self._base_name = name
        self._args = args
        app_password = self._password("app", args.app_password)

        primary = self._mysql_provider(args.primary)
        main = self._database("main", args.db_name, primary)
        master = self._database("master", args.master_db_name, primary)
        app_user = self._app_user(args.primary, primary, app_password,
                                  {"main": main, "master": master})
        tenant_users = self._tenant_users(args.primary, primary, API_DEFAULT_SERVER)
        for server in args.tenant_servers:
            provider = self._mysql_provider(server)
            self._app_user(server, provider, app_password, {})
            tenant_users.update(self._tenant_users(server, provider, server.name))

        self.environment = {
            "DB_HOST": args.primary.host,
            "DB_PORT": str(args.primary.port),
            "DB_NAME": main.name,
            "MASTER_DB_NAME": master.name,
            "DB_USER": app_user.user,
            "DB_PASSWORD": app_password,
            "USE_SEPARATE_DB_USERS": "true" if args.use_separate_db_users else "false",
            "TENANT_DB_PREFIX": args.tenant_db_prefix,
            "TENANT_DB_SERVERS": json.dumps(
                {s.name: {"host": s.host, "port": s.port} for s in args.tenant_servers},
                separators=(",", ":")) if args.tenant_servers else "",
        }
        self.tenant_users = Output.secret(tenant_users)
        self.register_outputs({
            "environment": self.environment,
            "tenantUsers": self.tenant_users,
        })

    def _child(self, provider: mysql.Provider | None = None, protect: bool = False
               ) -> ResourceOptions:
        """Options of a child resource: under this component, on ``provider``'s server."""
        return ResourceOptions(parent=self, provider=provider, protect=protect)

    def _password(self, label: str, given: Input[str] | None) -> Output[str]:
        """The given password, or a generated one; secret either way."""
        if given is None:
            given = random.RandomPassword(f"{self._base_name}-{label}-password",
                                          length=PASSWORD_LENGTH, special=False,
                                          opts=self._child()).result
        return Output.secret(given)

    def _mysql_provider(self, server: ServerArgs) -> mysql.Provider:
        """An explicit provider per server, reached as its admin."""
        return mysql.Provider(f"{self._base_name}-{server.name}", endpoint=server.endpoint,
                              username=server.admin_user,
                              password=Output.secret(server.admin_password),
                              opts=self._child())

    def _database(self, label: str, name: str, provider: mysql.Provider) -> mysql.Database:
        """A platform database; protected, since deleting or renaming it would drop its data."""
        return mysql.Database(f"{self._base_name}-{label}-db", name=name,
                              default_character_set=CHARACTER_SET, default_collation=COLLATION,
                              opts=self._child(provider, protect=True))

    def _grant(self, resource_name: str, user: mysql.User, database: Input[str],
               provider: mysql.Provider, privileges: tuple[str, ...] = SCHEMA_PRIVILEGES,
               grant: bool = False) -> mysql.Grant:
        return mysql.Grant(resource_name, user=user.user, host=user.host, database=database,
                           table="*", privileges=list(privileges), grant=grant,
                           opts=self._child(provider))

    def _app_user(self, server: ServerArgs, provider: mysql.Provider, password: Output[str],
                      databases: dict[str, mysql.Database]) -> mysql.User:
        """Declare the application user on one server with the grants it needs there."""
        args = self._args
        base = f"{self._base_name}-{server.name}-app"
        user = mysql.User(base, user=args.app_user, host=args.user_host,
                          plaintext_password=password, opts=self._child(provider))
        for label, database in databases.items():
            self._grant(f"{base}-{label}", user, database.name.apply(literal_pattern), provider)
        # GRANT OPTION on the tenant pattern lets the app give a new tenant user its database.
        self._grant(f"{base}-tenants", user, tenant_pattern(args.tenant_db_prefix), provider,
                    grant=args.use_separate_db_users)
        if args.use_separate_db_users:
            self._grant(f"{base}-create-user", user, "*", provider, privileges=("CREATE USER",))
        return user

    def _tenant_users(self, server: ServerArgs, provider: mysql.Provider,
                      api_name: str) -> dict[str, dict]:
        """Declare a DB user per listed tenant database, named after it and with privileges on
        that database alone; each is reported under the server's name in the API."""
        users = {}
        for database in server.tenant_databases:
            password = self._password(database, None)
            user = mysql.User(f"{self._base_name}-{database}", user=database,
                              host=self._args.user_host, plaintext_password=password,
                              opts=self._child(provider, protect=True))
            self._grant(f"{self._base_name}-{database}-grant", user, literal_pattern(database),
                        provider)
            users[database] = {"server": api_name, "user": user.user, "password": password}
        return users
