"""Sign-up: from POST /api/admin/tenants to a tenant that answers, against raw DDL.

    python -m bench.signup [--tenants 50] [--pool 5]

What is measured, per tenant, over HTTP on gunicorn (``finvera serve``'s options): the seconds
from sending POST /api/admin/tenants (company, subdomain, email: the password is generated and
returned) to the first answered read with the returned credentials, GET /api/ledgers. The
read needs a token, so the admin logs in between (POST /api/auth/login with that password):
the login is timed and reported on its own line but is not in the total, which is the sign-up
call plus the first read. The login is the user's own password check (one scrypt verify, about
70 ms here), the same for any tenant however it was made; the sign-up's own hash of that
password is in the total, and in the floor. One sign-up at a time.

Two series of the app: ``app``, the sign-up as the issue's target means it (no pool: the
database is created and migrated during the sign-up), and ``app, pool``, a second server with
TENANT_POOL_SIZE=5, whose sign-ups claim a database created and migrated ahead of time (the
pool is let refill between measurements, so its background refill does not overlap the next
one). ``--pool 0`` leaves the second series out.

Against what (the floor), interleaved with the sign-ups (each series first by turns): CREATE
DATABASE and every statement of migrations/tenant/*.sql, in order, as yoyo reads them
(``read_sql_migration``), sent over one raw PyMySQL connection, plus the admin user: one
password hashed with the app's scrypt (``api.security.hash_password``) and one INSERT. No
bookkeeping, no locks, no yoyo tables, no tenant_master row.

Reported: p50 and p95 of each over N tenants (after two uncounted warm-ups per server, so that
each worker has read the migration files), the split (sign-up call, login, read), the ratios to
the floor, and, to say where the time goes, the steps of ``provision_tenant`` (no pool) timed
in-process with its ``on_step`` hook, and what one scrypt hash and one verify cost here.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from yoyo.migrations import read_sql_migration

from bench.common import (
    ROOT,
    BenchRun,
    BenchServer,
    check_stop,
    percentile,
    platform_databases,
    print_machine,
    request,
    table,
)

MIGRATIONS = ROOT / "migrations" / "tenant"
TARGET = 1.5
POOL_TARGET = 0.1  # seconds, p95 of the total, with the pool
COMPETITORS = ("django-tenants 0.18 s p50 / 0.22 s p95; "
               "fastapi-tenancy 0.118 s p50 / 0.135 s p95")


def tenant_statements() -> list[str]:
    """Every statement of the tenant migrations, in order, as yoyo sends them."""
    statements = []
    for path in sorted(Path(MIGRATIONS).glob("*.sql")):
        if not path.name.endswith(".rollback.sql"):
            statements += read_sql_migration(str(path))[2]
    return statements


def floor_signup(run: BenchRun, name: str, statements: list[str]) -> float:
    """CREATE DATABASE, the tenant DDL and seed, one scrypt hash and the admin's INSERT, over
    one raw connection; returns the seconds it took."""
    from api.security import hash_password

    began = time.perf_counter()
    conn = run.admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_unicode_ci")
            cur.execute(f"USE `{name}`")
            for statement in statements:
                cur.execute(statement)
            cur.execute("INSERT INTO users (email, password_hash, full_name, role) "
                        "VALUES (%s, %s, %s, 'admin')",
                        (f"owner@{name}.in", hash_password(secrets.token_urlsafe(12)),
                         "Floor Company"))
    finally:
        conn.close()
    return time.perf_counter() - began


def app_signup(port: int, admin: dict, number: int) -> dict[str, float]:
    """Sign a tenant up over HTTP, log its admin in, read its ledgers; seconds of each part."""
    subdomain = f"s{number:05d}"
    began = time.perf_counter()
    status, body = request(port, "POST", "/api/admin/tenants", headers=admin, body={
        "company_name": f"Signup Company {number}", "subdomain": subdomain,
        "email": f"owner@{subdomain}.in"})
    if status != 201:
        raise RuntimeError(f"sign-up {subdomain}: {status} {body}")
    created = time.perf_counter()
    credentials = body["data"]["admin"]
    status, body = request(port, "POST", "/api/auth/login", headers={"X-Tenant-ID": subdomain},
                           body={"email": credentials["email"],
                                 "password": credentials["password"]})
    if status != 200:
        raise RuntimeError(f"login {subdomain}: {status} {body}")
    logged_in = time.perf_counter()
    status, body = request(port, "GET", "/api/ledgers", headers={
        "X-Tenant-ID": subdomain, "Authorization": f"Bearer {body['data']['token']}"})
    if status != 200 or not body["success"]:
        raise RuntimeError(f"first read {subdomain}: {status} {body}")
    answered = time.perf_counter()
    return {"total": (created - began) + (answered - logged_in),
            "sign-up call": created - began, "first read": answered - logged_in,
            "login (not in the total)": logged_in - created,
            "total with the login": answered - began}


def admin_headers(run: BenchRun, dbs) -> dict[str, str]:
    """A super admin in the main database, and a token for it from the app's TokenService."""
    from api.models.main import AdminUser
    from api.tenancy.tokens import ADMIN, Claims, TokenService

    with Session(dbs.main_engine) as session:
        admin = AdminUser(email="bench@finvera.in", role="super_admin",
                          password_hash="unused: the token is issued directly")
        session.add(admin)
        session.commit()
        settings = dbs.settings
        token = TokenService(settings.signing_key, settings.token_ttl_seconds).issue(
            Claims(scope=ADMIN, user_id=admin.id))
    return {"Authorization": f"Bearer {token}"}


def provisioning_steps(dbs, count: int) -> dict[str, list[float]]:
    """``provision_tenant`` in-process ``count`` times: seconds per step (on_step marks)."""
    from api.tenancy.provisioning import SignUp, provision_tenant

    steps: dict[str, list[float]] = {}
    for number in range(count):
        marks: list[tuple[str, float]] = [("record (check, lock, tenant_master row)",
                                           time.perf_counter())]
        subdomain = f"p{number:05d}"
        provision_tenant(dbs, SignUp(f"Steps Company {number}", subdomain,
                                     f"owner@{subdomain}.in"),
                         on_step=lambda step, marks=marks: marks.append(
                             (step, time.perf_counter())))
        marks.append(("end", time.perf_counter()))
        for (step, began), (_next, ended) in zip(marks, marks[1:], strict=False):
            steps.setdefault(step, []).append(ended - began)
    return steps


def wait_for_full_pool(dbs, size: int, timeout: float = 60) -> None:
    """Wait until the pool holds ``size`` ready databases, every one migrated, so that its
    refill (a background thread of the server) does not run during the next measurement."""
    import sqlalchemy as sa

    from api.tenancy import pool
    from api.tenancy.migrations import Tier, pending_ids

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = pool.pooled(dbs)
        if len(ready) >= size:
            engines = [dbs.backend.create_engine(name, poolclass=sa.pool.NullPool)
                       for name in ready]
            try:
                if not any(pending_ids(engine, Tier.TENANT) for engine in engines):
                    return
            except sa.exc.DBAPIError:  # yoyo is still making its own tables there
                pass
            finally:
                for engine in engines:
                    engine.dispose()
        time.sleep(0.05)
    raise RuntimeError(f"the pool did not refill to {size} within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50, help="sign-ups measured (50)")
    parser.add_argument("--pool", type=int, default=5, metavar="SIZE",
                        help="also measure sign-ups on a second server with TENANT_POOL_SIZE="
                             "SIZE (5; 0: not at all)")
    parser.add_argument("--steps", type=int, default=10,
                        help="in-process sign-ups timed step by step (10)")
    args = parser.parse_args(argv)

    with BenchRun() as run:
        print_machine(run)
        dbs = platform_databases(run)
        admin = admin_headers(run, dbs)
        statements = tenant_statements()
        servers = {"app": BenchServer(run).start()}
        if args.pool:
            from api.tenancy import pool

            pool.fill(dbs, args.pool)
            servers["app, pool"] = BenchServer(
                run, env={**run.env, "TENANT_POOL_SIZE": str(args.pool)}).start()
        print(f"server: gunicorn, 2 gthread workers x 8 threads (finvera serve's options)"
              f"{f'; a second one with TENANT_POOL_SIZE={args.pool}' if args.pool else ''}; "
              f"floor: {len(statements)} statements of {MIGRATIONS.relative_to(ROOT)} + "
              f"scrypt + INSERT over one PyMySQL connection; {args.tenants} of each, "
              "interleaved", flush=True)
        for index, server in enumerate(servers.values()):  # two each, uncounted: one per
            for warm in range(2):                         # worker, likely, to read the files
                app_signup(server.port, admin, 90000 + 100 * index + warm)
        if args.pool:
            wait_for_full_pool(dbs, args.pool)
        floor_signup(run, f"{run.prefix}floor_warm", statements)

        app: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
        floor: list[float] = []
        series = [*servers, "floor"]
        for number in range(args.tenants):
            turn = number % len(series)
            for name in series[turn:] + series[:turn]:  # each series first by turns
                check_stop()
                if name == "floor":
                    floor.append(floor_signup(run, f"{run.prefix}floor_{number}", statements))
                    continue
                offset = 0 if name == "app" else 50000
                for part, seconds in app_signup(servers[name].port, admin,
                                                number + offset).items():
                    app[name].setdefault(part, []).append(seconds)
                if name != "app":
                    wait_for_full_pool(dbs, args.pool)
            if (number + 1) % 10 == 0:
                print(f"  {number + 1} sign-ups: " + ", ".join(
                    f"{name} p50 {statistics.median(app[name]['total']):.3f} s"
                    for name in servers) + f", floor p50 {statistics.median(floor):.3f} s",
                      flush=True)
        for server in servers.values():
            server.stop()

        rows = [[f"{name}: {part}", f"{percentile(values, 0.5):.3f}",
                 f"{percentile(values, 0.95):.3f}", f"{statistics.mean(values):.3f}"]
                for name in servers for part, values in app[name].items()]
        rows.append(["floor: raw DDL + seed + scrypt + INSERT", f"{percentile(floor, 0.5):.3f}",
                     f"{percentile(floor, 0.95):.3f}", f"{statistics.mean(floor):.3f}"])
        table(["seconds", "p50", "p95", "mean"], rows,
              f"Sign-up to first answered request, {args.tenants} tenants each"
              f"{' (app, pool: sign-ups claim a ready database)' if args.pool else ''}:")
        print()
        for name in servers:
            p50 = percentile(app[name]["total"], 0.5) / percentile(floor, 0.5)
            p95 = percentile(app[name]["total"], 0.95) / percentile(floor, 0.95)
            verdict = "met" if max(p50, p95) <= TARGET else "NOT met"
            print(f"ratio {name} / floor: p50 {p50:.2f}x, p95 {p95:.2f}x" + (
                f" (target, without a pool: within {TARGET}x: {verdict})" if name == "app"
                else ""))
            if name != "app":
                p95_seconds = percentile(app[name]["total"], 0.95)
                print(f"{name}: total p95 {p95_seconds:.3f} s (target: under {POOL_TARGET} s: "
                      f"{'met' if p95_seconds < POOL_TARGET else 'NOT met'})")
        print(f"for comparison (from the issue): {COMPETITORS}")

        from api.security import hash_password, verify_password

        hashes, verifies = [], []
        for _ in range(5):
            began = time.perf_counter()
            hashed = hash_password("a password of twelve")
            hashes.append(time.perf_counter() - began)
            began = time.perf_counter()
            verify_password(hashed, "a password of twelve")
            verifies.append(time.perf_counter() - began)
        print(f"one scrypt hash here: {statistics.median(hashes) * 1000:.0f} ms, one verify "
              f"{statistics.median(verifies) * 1000:.0f} ms (medians of 5). The total and the "
              "floor each hold one hash (the app's beside its database steps); the login's "
              "verify is the login's, on its own line")

        steps = provisioning_steps(dbs, args.steps)
        table(["provision_tenant step (in-process)", "median ms", "share"],
              [[step, f"{statistics.median(values) * 1000:.1f}",
                f"{statistics.median(values) / sum(map(statistics.median, steps.values())):.0%}"]
               for step, values in steps.items()],
              f"Where the sign-up call's time goes: provision_tenant's steps, {args.steps} "
              "in-process sign-ups (each row is the time from that step's start to the next):")
        with dbs.master_engine.connect() as conn:
            made = conn.execute(sa.text("SELECT COUNT(*) FROM tenant_master "
                                        "WHERE status = 'active'")).scalar()
        print(f"\n{made} active tenants made by the app in this run", flush=True)
        dbs.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
