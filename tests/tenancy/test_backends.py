"""Both backends: databases made, listed, measured and dropped; names checked; users; locks."""

import threading
import time

import pymysql
import pytest
import sqlalchemy as sa

from api.tenancy.backends import BackendError, LockTimeout, backend_for, checked_identifier


@pytest.fixture
def backend(settings):
    backend = backend_for(settings)
    yield backend
    backend.dispose()


def test_create_list_size_drop(backend, settings):
    prefix = settings.tenant_db_prefix
    first, second = f"{prefix}alpha", f"{prefix}beta"
    assert backend.create_database(first) is True
    assert backend.create_database(first) is False
    backend.create_database(second)
    assert backend.list_databases(prefix) == [first, second]
    assert backend.database_exists(first)

    engine = backend.create_engine(first)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute(sa.text("INSERT INTO t (id, body) VALUES (:i, :b)"),
                     [{"i": i, "b": "x" * 500} for i in range(200)])
    engine.dispose()
    if backend.name == "mysql":  # InnoDB reports sizes from its statistics
        backend._execute(f"ANALYZE TABLE `{first}`.t")
    assert backend.database_size(first) > 0

    assert backend.drop_database(first) is True
    assert backend.drop_database(first) is False
    assert backend.list_databases(prefix) == [second]


@pytest.mark.parametrize("name", ["", "a-b", "x`; DROP DATABASE mysql; --", "../etc", "a" * 65,
                                  "名前", "a b", "a.b"])
def test_names_that_are_not_identifiers_are_refused(backend, name):
    with pytest.raises(BackendError, match="invalid"):
        backend.create_database(name)
    with pytest.raises(BackendError):
        checked_identifier(name)


def test_lock_is_exclusive_across_holders(backend):
    held, release = threading.Event(), threading.Event()

    def hold():
        with backend.lock("finvera_test_lock"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        with pytest.raises(LockTimeout), backend.lock("finvera_test_lock", timeout=0.3):
            pass
    finally:
        release.set()
        holder.join()
    with backend.lock("finvera_test_lock", timeout=5):
        pass


def test_sqlite_has_no_users(tmp_path):
    from api.config import load_settings

    backend = backend_for(load_settings({"FINVERA_DATA_DIR": str(tmp_path)}))
    with pytest.raises(BackendError, match="no database users"):
        backend.create_user("someone", "pw", "finvera_db")


@pytest.mark.mysql
def test_a_db_user_reaches_its_own_database_only(mysql_server):
    from api.config import load_settings
    from tests.conftest import mysql_environment

    settings = load_settings(mysql_environment(mysql_server))
    backend = backend_for(settings)
    own, other = f"{settings.tenant_db_prefix}own", f"{settings.tenant_db_prefix}other"
    look_alike = own[::-1].replace("_", "X", 1)[::-1]  # what an unescaped "_" would match
    user = f"{mysql_server.prefix}u1"
    try:
        backend.create_database(own)
        backend.create_database(other)
        backend.create_database(look_alike)
        backend.create_user(user, "Pw-123456789", own)
        as_user = mysql_server.connect(own, user=user, password="Pw-123456789")
        with as_user.cursor() as cur:
            cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            cur.execute("INSERT INTO t VALUES (1)")
            for forbidden in (f"SELECT * FROM `{other}`.t", f"SELECT * FROM `{look_alike}`.t",
                              "SELECT * FROM mysql.user"):
                with pytest.raises(pymysql.err.OperationalError):
                    cur.execute(forbidden)
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute(f"CREATE DATABASE `{settings.tenant_db_prefix}sneaky`")
        as_user.close()
        assert backend.drop_user(user) is True
        assert backend.drop_user(user) is False
        with pytest.raises(pymysql.err.OperationalError):
            mysql_server.connect(own, user=user, password="Pw-123456789")
    finally:
        backend.drop_user(user)
        for name in (own, other, look_alike):
            backend.drop_database(name)
        backend.dispose()


@pytest.mark.mysql
@pytest.mark.parametrize("mode", ["preferred", "disabled"])
def test_every_tls_mode_reaches_the_server(mysql_server, mode):
    from api.tenancy.backends import MySQLBackend

    backend = MySQLBackend(mysql_server.host, mysql_server.port, mysql_server.user,
                           mysql_server.password, ssl_mode=mode)
    name = f"{mysql_server.prefix}tls_{mode}"
    try:
        assert backend.create_database(name)
        from api.tenancy.migrations import Tier, apply_migrations

        assert apply_migrations(backend, name, Tier.MASTER)  # yoyo's URL carries the mode too
    finally:
        backend.drop_database(name)
        backend.dispose()


@pytest.mark.mysql
def test_a_tenant_connection_rolls_back_only_when_there_is_something_to_undo(mysql_server):
    from api.config import load_settings
    from tests.conftest import mysql_environment

    settings = load_settings(mysql_environment(mysql_server))
    backend = backend_for(settings)
    name = f"{settings.tenant_db_prefix}rollbacks"
    backend.create_database(name)
    engine = backend.create_engine(name)
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    closed = []
    conn = backend.connect_counted(cargs, cparams, closed.append)

    def one(sql):
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()

    try:
        one("CREATE TABLE t (id INTEGER PRIMARY KEY) ENGINE=InnoDB")
        conn.commit()
        one("INSERT INTO t VALUES (1)")
        conn.rollback()
        assert one("SELECT COUNT(*) FROM t") == (0,)  # a write is undone

        sent_before = int(one("SHOW SESSION STATUS LIKE 'Com_rollback'")[1])
        conn.rollback()  # the SHOW ran since: sent
        conn.rollback()  # nothing ran since: not sent
        assert int(one("SHOW SESSION STATUS LIKE 'Com_rollback'")[1]) == sent_before + 1

        one("INSERT INTO t VALUES (2)")
        with pytest.raises(pymysql.err.IntegrityError):
            one("INSERT INTO t VALUES (2)")
        conn.rollback()  # after a failed statement the earlier write is still undone
        assert one("SELECT COUNT(*) FROM t") == (0,)
    finally:
        conn.close()
        engine.dispose()
        backend.drop_database(name)
        backend.dispose()
    assert closed == [conn]


@pytest.mark.mysql
def test_a_query_waits_for_its_answer_no_longer_than_the_query_timeout(mysql_server):
    """DB_QUERY_TIMEOUT bounds each wait for the server's answer: a statement that outlasts it
    fails as a lost connection, and the pool goes on with a new one. The wait is the kernel's
    (SO_RCVTIMEO) on a blocking socket, not a Python poll before every read."""
    from api.tenancy.backends import MySQLBackend

    backend = MySQLBackend(mysql_server.host, mysql_server.port, mysql_server.user,
                           mysql_server.password, ssl_mode="disabled", query_timeout=1)
    engine = backend.create_engine(None)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT SLEEP(0.3)").scalar() == 0  # within the limit
            assert conn.connection.dbapi_connection._sock.gettimeout() is None
        began = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as caught, engine.connect() as conn:
            conn.exec_driver_sql("SELECT SLEEP(5)")
        assert 0.9 < time.monotonic() - began < 3
        assert caught.value.orig.args[0] == 2013  # CR_SERVER_LOST: "Lost connection"
        assert isinstance(caught.value.orig.__context__, TimeoutError)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
        backend.dispose()
