"""kill -9 during provisioning, at every step, then ``finvera tenants repair --all
--drop-orphans``: nothing is left in provisioning, no orphan database or DB user survives, and
the same sign-up, tried again, succeeds.

Each sign-up is a real ``python -m api tenants create`` process with
``FINVERA_TEST_PAUSE_AT=<step>``: it prints ``paused before <step>`` on stderr and waits there,
and the test kills it with SIGKILL (its own pid only). All six steps crash side by side (one
process each, on its own subdomain), and one repair cleans up after all of them. The default
run does this on SQLite and on MariaDB with a DB user per tenant (USE_SEPARATE_DB_USERS=true,
so DB users are checked too); ``-m reliability`` adds MariaDB with the shared user and one
crash at a time, with every retry as a process too.

A stopped or frozen database *server* is another fault: tests/test_outage.py covers it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api import create_app
from api.config import load_settings
from api.models.master import TenantMaster
from api.tenancy.databases import Databases
from api.tenancy.provisioning import PAUSE_VARIABLE, STEPS, tenant_db_user
from tests.reliability.conftest import (
    LineWatcher,
    environment_for,
    figures,
    run_cli,
    start_cli,
)

PAUSE_TIMEOUT = 90  # seconds for a process to start and reach its step (2 cores, 6 at once)
LOCK_TIMEOUT = 15  # seconds for the server to notice a killed process's lock connection

VARIANTS = {
    "sqlite": {},
    "mysql-separate-users": {"USE_SEPARATE_DB_USERS": "true"},
    "mysql-shared-user": {"USE_SEPARATE_DB_USERS": "false"},
}


def subdomain_for(step: str) -> str:
    return "crash-" + step.replace("_", "-")


def create_args(subdomain: str) -> list[str]:
    return ["tenants", "create", "--company-name", f"{subdomain.title()} Pvt Ltd",
            "--subdomain", subdomain, "--email", f"owner@{subdomain}.in"]


class CrashSite:
    """A platform's databases, seen from the test process (the app's own view of them)."""

    def __init__(self, variant: str, request, tmp_path) -> None:
        kind = "sqlite" if variant == "sqlite" else "mysql"
        self.env = environment_for(kind, request, tmp_path, **VARIANTS[variant])
        self.server = request.getfixturevalue("mysql_server") if kind == "mysql" else None
        self.dbs = Databases(load_settings(self.env))
        self.dbs.initialize()  # so that the crashing processes do not all migrate at once

    @property
    def prefix(self) -> str:
        return self.dbs.settings.tenant_db_prefix

    def statuses(self) -> dict[str, str]:
        with Session(self.dbs.master_engine) as session:
            return {s: v for s, v in session.execute(
                sa.select(TenantMaster.subdomain, TenantMaster.status))}

    def tenant_ids(self) -> dict[str, int]:
        with Session(self.dbs.master_engine) as session:
            return {s: v for s, v in session.execute(
                sa.select(TenantMaster.subdomain, TenantMaster.id))}

    def databases(self) -> list[str]:
        return self.dbs.backend.list_databases(self.prefix)

    def live(self) -> list[TenantMaster]:
        with Session(self.dbs.master_engine) as session:
            return list(session.scalars(sa.select(TenantMaster).where(
                TenantMaster.status == "active")))

    def orphan_databases(self) -> list[str]:
        """Tenant databases no active tenant owns (tenants retried earlier own theirs)."""
        owned = {tenant.db_name for tenant in self.live()}
        return [name for name in self.databases() if name not in owned]

    def orphan_db_users(self) -> list[str]:
        owned = {tenant_db_user(self.dbs, tenant.id) for tenant in self.live()}
        return [user for user in self.db_users() if user not in owned]

    def db_users(self) -> list[str]:
        """DB users under the tenant prefix, as root sees them in mysql.user."""
        if self.server is None:
            return []
        like = self.prefix.replace("_", r"\_") + "%"
        with self.server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT User FROM mysql.user WHERE User LIKE %s ORDER BY User", (like,))
            return [user for (user,) in cur.fetchall()]

    def wait_for_locks(self, subdomains: list[str]) -> None:
        """On MariaDB a killed process's GET_LOCK goes when the server drops its connection:
        wait (bounded) until it has, so that repair does not take the sign-up for a live one."""
        if self.server is None:
            return  # flock: the kernel released it with the process
        names = [f"{self.prefix}s_{s.replace('-', '_')}" for s in subdomains]
        deadline = time.monotonic() + LOCK_TIMEOUT
        with self.server.connect() as conn, conn.cursor() as cur:
            while True:
                held = []
                for name in names:
                    cur.execute("SELECT IS_FREE_LOCK(%s)", (name,))
                    if cur.fetchone()[0] != 1:
                        held.append(name)
                if not held:
                    return
                assert time.monotonic() < deadline, f"locks still held after kill -9: {held}"
                time.sleep(0.05)

    def close(self) -> None:
        self.dbs.dispose()
        backend = self.dbs.backend
        for name in (self.dbs.settings.db_name, self.dbs.settings.master_db_name,
                     *self.databases()):
            backend.drop_database(name)
        if self.server is not None:
            for user in self.db_users():
                backend.drop_user(user)
        backend.dispose()


@pytest.fixture
def site(request, tmp_path):
    made = CrashSite(request.param, request, tmp_path)
    yield made
    made.close()


def crash(site: CrashSite, steps: tuple[str, ...]) -> dict[str, int]:
    """Start one ``tenants create`` per step, each pausing before its step; kill -9 each once
    it says it paused. Returns what the crashes left behind."""
    processes = {}
    try:
        for step in steps:
            process = start_cli({**site.env, PAUSE_VARIABLE: step},
                                *create_args(subdomain_for(step)))
            watchers = (LineWatcher(process.stdout), LineWatcher(process.stderr))
            for watcher in watchers:
                watcher.start()
            processes[step] = (process, watchers)
        for step, (process, (out, err)) in processes.items():
            paused = err.wait_for(f"paused before {step}", PAUSE_TIMEOUT)
            assert paused, (f"{step}: no pause (exit {process.poll()}):\n{out.text}\n{err.text}")
            os.kill(process.pid, signal.SIGKILL)
        for process, _watchers in processes.values():
            assert process.wait(30) == -signal.SIGKILL
    finally:
        for process, _watchers in processes.values():
            if process.poll() is None:  # a failed wait above: never leave one running
                os.kill(process.pid, signal.SIGKILL)
                process.wait(30)
    statuses = site.statuses()
    left = {"provisioning": sum(1 for s in statuses.values() if s == "provisioning"),
            "databases": len(site.orphan_databases()), "db_users": len(site.orphan_db_users())}
    # Every crashed sign-up is still "provisioning"; a database exists from the step after
    # create_database on, and a DB user (separate users only) from the step after create_user.
    assert left["provisioning"] == len(steps)
    assert left["databases"] == sum(STEPS.index(s) > 0 for s in steps)
    if site.dbs.settings.use_separate_db_users:
        assert left["db_users"] == sum(STEPS.index(s) > 1 for s in steps)
    return left


def repair_and_check(site: CrashSite, steps: tuple[str, ...]) -> str:
    site.wait_for_locks([subdomain_for(step) for step in steps])
    repaired = run_cli(site.env, "tenants", "repair", "--all", "--drop-orphans")
    assert repaired.returncode == 0, repaired.stderr
    for step in steps:
        assert f"cleaned {subdomain_for(step)}" in repaired.stdout, repaired.stdout
    assert "still running" not in repaired.stdout
    statuses = site.statuses()
    assert "provisioning" not in statuses.values(), statuses
    assert {statuses[subdomain_for(step)] for step in steps} == {"failed"}
    assert site.orphan_databases() == []
    assert site.orphan_db_users() == []
    return repaired.stdout


def retry_in_process(site: CrashSite, steps: tuple[str, ...]) -> None:
    """The same ``tenants create`` commands, run by the CLI in this process (no start-up)."""
    app = create_app(load_settings(site.env))
    runner = app.test_cli_runner()
    try:
        for step in steps:
            result = runner.invoke(args=create_args(subdomain_for(step)))
            assert result.exit_code == 0, (step, result.output)
            assert f"created tenant {subdomain_for(step)}" in result.output
    finally:
        app.extensions["finvera"].dispose()


def retry_as_processes(site: CrashSite, steps: tuple[str, ...]) -> None:
    for step in steps:
        result = run_cli(site.env, *create_args(subdomain_for(step)))
        assert result.returncode == 0, (step, result.stderr)
        assert f"created tenant {subdomain_for(step)}" in result.stdout


def check_retried(site: CrashSite, steps: tuple[str, ...]) -> None:
    statuses, ids = site.statuses(), site.tenant_ids()
    assert {statuses[subdomain_for(step)] for step in steps} == {"active"}
    assert sorted(site.databases()) == sorted(t.db_name for t in site.live())
    assert len(site.databases()) == len(steps)  # one each, the failed attempts' all gone
    if site.dbs.settings.use_separate_db_users:
        assert site.db_users() == sorted(tenant_db_user(site.dbs, ids[subdomain_for(s)])
                                         for s in steps)
    else:
        assert site.db_users() == []


@pytest.mark.parametrize("site", ["sqlite", pytest.param(
    "mysql-separate-users", marks=pytest.mark.mysql)], indirect=True)
def test_kill_9_at_every_step_then_repair_leaves_nothing_and_the_sign_up_retries(site):
    started = time.monotonic()
    left = crash(site, STEPS)
    output = repair_and_check(site, STEPS)
    retry_in_process(site, STEPS)
    check_retried(site, STEPS)
    figures(f"crash during provisioning ({site.dbs.backend.name}, separate DB users "
            f"{site.dbs.settings.use_separate_db_users})",
            steps_killed=len(STEPS), left_in_provisioning=left["provisioning"],
            databases_left=left["databases"], db_users_left=left["db_users"],
            repair_lines=len(output.splitlines()), after_repair="0 provisioning, 0 orphan "
            "databases, 0 orphan DB users", retries_succeeded=len(STEPS),
            seconds=round(time.monotonic() - started, 1))


@pytest.mark.reliability
@pytest.mark.parametrize("site", ["sqlite", pytest.param(
    "mysql-separate-users", marks=pytest.mark.mysql), pytest.param(
    "mysql-shared-user", marks=pytest.mark.mysql)], indirect=True)
def test_one_crash_at_a_time_each_repaired_and_retried_by_the_cli(site):
    started = time.monotonic()
    for step in STEPS:
        crash(site, (step,))
        repair_and_check(site, (step,))
        retry_as_processes(site, (step,))
    check_retried(site, STEPS)
    figures(f"one crash at a time ({site.dbs.backend.name}, separate DB users "
            f"{site.dbs.settings.use_separate_db_users})", steps_killed=len(STEPS),
            repairs=len(STEPS), retries_succeeded=len(STEPS),
            seconds=round(time.monotonic() - started, 1))
