"""The seed's start-up flow: master and main created and migrated from nothing, idempotent,
also with two processes starting at once against the same empty server."""

import os
import subprocess
import sys

import sqlalchemy as sa

from api.tenancy.backends import backend_for
from api.tenancy.databases import Databases
from api.tenancy.migrations import Tier, migration_ids, pending_ids


def test_initialize_creates_both_tiers_from_nothing(settings):
    dbs = Databases(settings)
    assert not dbs.backend.database_exists(settings.master_db_name)
    assert not dbs.backend.database_exists(settings.db_name)
    applied = dbs.initialize()
    assert applied == {settings.master_db_name: migration_ids(Tier.MASTER),
                       settings.db_name: migration_ids(Tier.MAIN)}
    for tier, (_, engine) in dbs.tiers().items():
        assert pending_ids(engine, tier) == []
    assert dbs.initialize() == {settings.master_db_name: [], settings.db_name: []}
    dbs.dispose()


def test_two_processes_starting_at_once_both_come_up(environment, settings):
    env = {**os.environ, **environment}
    processes = [subprocess.Popen([sys.executable, "-m", "api", "init"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs

    backend = backend_for(settings)
    for name, tier in ((settings.master_db_name, Tier.MASTER), (settings.db_name, Tier.MAIN)):
        engine = backend.create_engine(name)
        with engine.connect() as conn:
            applies = conn.execute(sa.text(
                "SELECT migration_id, COUNT(*) FROM _yoyo_log WHERE operation = 'apply' "
                "GROUP BY migration_id")).all()
        engine.dispose()
        assert dict(applies) == dict.fromkeys(migration_ids(tier), 1)
    backend.dispose()
