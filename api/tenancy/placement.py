"""Where a new tenant's database goes: the open server with the fewest tenants.

The rule (docs/tenancy.md says why): among the servers that TENANT_DB_SERVERS_CLOSED does not
close, the one holding the fewest tenants that are not failed or deleted (sign-ups under way
and moves count on the server their row names), ties broken by server name. Counting rows is
exact, costs one grouped query on tenant_master, and sees sign-ups still in progress; what
limits a server first (open tables and files, connections, the table cache) grows with the
number of tenant databases, while a size would lag behind, since a new tenant is empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.master import TenantMaster
from api.tenancy.databases import Databases

# The rows that hold a database somewhere (or are about to).
PLACED_STATUSES = ("provisioning", "active", "suspended", "moving")


class NoOpenServer(Exception):
    """Every tenant server is closed to new tenants."""


def tenants_per_server(dbs: Databases) -> dict[str, int]:
    """Tenants placed on each configured server (zero included), by server name."""
    with Session(dbs.master_engine) as session:
        counts = dict(session.execute(
            sa.select(TenantMaster.db_server, sa.func.count())
            .where(TenantMaster.status.in_(PLACED_STATUSES))
            .group_by(TenantMaster.db_server)).all())
    return {server: counts.get(server, 0) for server in dbs.settings.server_names}


def choose_server(dbs: Databases) -> str:
    """The open server with the fewest tenants, ties by name. Two sign-ups at once may both
    pick it: the next ones even that out."""
    open_servers = dbs.settings.open_servers
    if not open_servers:  # config refuses this; a guard for settings built by hand
        raise NoOpenServer("every tenant database server is closed to new tenants")
    counts = tenants_per_server(dbs)
    return min(open_servers, key=lambda server: (counts[server], server))
