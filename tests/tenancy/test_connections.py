"""The connection bound keeps its count true when a connection goes astray: an engine let go
(its tenant evicted) while a request still had it, and a DBAPI connection dropped without
being closed. Both on per-tenant engines, where engines are let go: SQLite, and MariaDB with a
DB user per tenant. A slot counted for a connection nobody holds is a 503 for every request
once enough of them are lost."""

import gc

import pytest
import sqlalchemy as sa

from api.tenancy.connections import PoolExhausted
from api.tenancy.provisioning import SignUp, provision_tenant
from tests.conftest import initialized_app, mysql_environment


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def one_connection(request, tmp_path):
    """An app allowed one tenant connection, with tenants ``alpha`` and ``beta``; its manager."""
    bound = {"MAX_TENANT_CONNECTIONS": "1", "TENANT_CHECKOUT_TIMEOUT_MS": "300"}
    if request.param == "sqlite":
        environment = {"FINVERA_DATA_DIR": str(tmp_path / "var"), **bound}
    else:
        environment = mysql_environment(request.getfixturevalue("mysql_server"),
                                        USE_SEPARATE_DB_USERS="true", **bound)
    with initialized_app(environment) as app:
        dbs = app.extensions["finvera"]
        for name in ("alpha", "beta"):
            provision_tenant(dbs, SignUp(f"Company {name}", name, f"o@{name}.in"))
        yield dbs.connections, [dbs.directory.find(name).target for name in ("alpha", "beta")]


def select_one(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT 1")).scalar()


def test_a_request_that_had_the_engine_of_an_evicted_tenant_strands_no_connection(
        one_connection):
    connections, (a, b) = one_connection
    engine = connections.engine(a)  # a request has a's engine...
    connections.evict(a.tenant_id)  # ...when a is suspended or moved
    assert select_one(engine) == 1  # the request goes on with the engine it has
    assert connections.open_connections == 1
    # The connection it made came back to the retired pool: closed to make room for b.
    assert select_one(connections.engine(b)) == 1
    assert connections.open_connections == 1


def test_a_connection_dropped_unclosed_gives_its_slot_back(one_connection):
    connections, (a, b) = one_connection
    lost = connections.engine(a).raw_connection()
    lost.detach()  # the pool forgets it: nothing will close it
    with pytest.raises(PoolExhausted):
        select_one(connections.engine(b))
    del lost
    gc.collect()
    assert connections.open_connections == 0
    assert select_one(connections.engine(b)) == 1
