"""The MariaDB server the MySQL-backed tests run against, and the clean-up of what they made.

Every run gets a unique name prefix (``ft<hex>_``): databases and DB users a test creates carry it,
and the session fixture drops all of them at the end, so runs sharing the machine's server never
see each other's leftovers.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pymysql

DEFAULT_URL = "mysql://root@127.0.0.1:3306"
URL_VARIABLE = "FINVERA_TEST_MYSQL_URL"


@dataclass(frozen=True)
class MySQLServer:
    """Where the test server is, as an admin account, and this run's name prefix."""

    host: str
    port: int
    user: str
    password: str
    prefix: str

    @classmethod
    def from_url(cls, url: str) -> MySQLServer:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            prefix=f"ft{secrets.token_hex(3)}_",
        )

    def connect(self, database: str | None = None, **kwargs) -> pymysql.Connection:
        """Open an autocommit admin connection (or as ``user``/``password`` given in kwargs)."""
        params = {"host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "database": database, "autocommit": True,
                  "connect_timeout": 5}
        params.update(kwargs)
        return pymysql.connect(**params)

    def drop_everything_made(self) -> None:
        """Drop every database and DB user whose name starts with this run's prefix."""
        like = self.prefix.replace("_", r"\_") + "%"
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                            "WHERE SCHEMA_NAME LIKE %s", (like,))
                for (name,) in cur.fetchall():
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute("SELECT User, Host FROM mysql.user WHERE User LIKE %s", (like,))
                for user, host in cur.fetchall():
                    cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
        finally:
            conn.close()


def server_from_environment() -> tuple[MySQLServer, str | None]:
    """Return the configured server and, when it cannot be reached, why."""
    url = os.environ.get(URL_VARIABLE, DEFAULT_URL)
    server = MySQLServer.from_url(url)
    try:
        server.connect().close()
    except pymysql.MySQLError as exc:
        return server, f"no MySQL/MariaDB server at {url} ({exc.args[-1]})"
    return server, None
