"""Creating a tenant, the seed's way.

``provision_tenant`` runs the steps in order; a failure at any step drops what this attempt
made (database, DB user) and marks the tenant failed with the reason. A process killed
half-way leaves a row in ``provisioning``, which ``api.tenancy.repair`` cleans. A named lock per
subdomain is held for the whole of a sign-up, so concurrent sign-ups of one subdomain cannot
both proceed, and repair can tell a live sign-up (lock held) from a dead one.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.models.main import ReferralCode, SubscriptionPlan
from api.models.master import TenantMaster
from api.models.tenant import User
from api.security import hash_password
from api.tenancy import pool
from api.tenancy.backends import DEFAULT_SERVER, Backend, BackendError, LockTimeout
from api.tenancy.databases import Databases
from api.tenancy.migrations import Tier, apply_pending
from api.tenancy.placement import choose_server
from api.tenancy.ready_passwords import generate_password
from api.tenancy.registry import HELD_STATUSES
from api.tenancy.subdomains import database_name

log = logging.getLogger(__name__)

PAUSE_VARIABLE = "FINVERA_TEST_PAUSE_AT"
STEPS = ("create_database", "create_user", "migrate", "create_admin", "store_connection",
         "activate")


@dataclass(frozen=True)
class SignUp:
    """What a new tenant gives us; the subdomain is already checked (``check_subdomain``)."""

    company_name: str
    subdomain: str
    email: str
    admin_password: str | None = None
    referral_code: str | None = None
    plan: str | None = None


@dataclass(frozen=True)
class Provisioned:
    tenant: TenantMaster
    admin_email: str
    generated_password: str | None


class SignUpInvalid(ValueError):
    """A sign-up field that refers to something that does not exist."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class TenantConflict(Exception):
    """The subdomain belongs to another tenant, or another sign-up for it is under way."""


class ProvisioningError(Exception):
    """A step failed; what the attempt made was dropped and the tenant marked failed."""

    def __init__(self, tenant_id: int, step: str, reason: str) -> None:
        super().__init__(f"provisioning failed at {step}: {reason}")
        self.tenant_id, self.step, self.reason = tenant_id, step, reason


def tenant_db_user(dbs: Databases, tenant_id: int) -> str:
    """The DB user of a tenant when separate users are on; derived, so repair can find it."""
    return f"{dbs.settings.tenant_db_prefix}u{tenant_id}"


def subdomain_lock(dbs: Databases, subdomain: str) -> str:
    """The named lock a sign-up, a move and repair of one subdomain each hold while at work."""
    return f"{dbs.settings.tenant_db_prefix}s_{subdomain.replace('-', '_')}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check_references(dbs: Databases, signup: SignUp) -> None:
    """The plan and referral code named in a sign-up exist in the main database."""
    with Session(dbs.main_engine) as session:
        if signup.plan and not session.scalar(sa.select(SubscriptionPlan.id).where(
                SubscriptionPlan.code == signup.plan, SubscriptionPlan.is_active)):
            raise SignUpInvalid("plan", f"no active subscription plan {signup.plan!r}")
        if signup.referral_code and not session.scalar(sa.select(ReferralCode.id).where(
                ReferralCode.code == signup.referral_code.upper(), ReferralCode.is_active)):
            raise SignUpInvalid("referral_code",
                                f"no active referral code {signup.referral_code!r}")


def _record(dbs: Databases, signup: SignUp) -> tuple[int, str]:
    """Step 1: a tenant_master row in ``provisioning`` on the server placement chose (the row
    says where before anything exists there); a failed earlier attempt is taken over."""
    values = {"company_name": signup.company_name, "email": signup.email,
              "subscription_plan": signup.plan, "referral_code": signup.referral_code,
              "status": "provisioning", "status_reason": None, "db_server": choose_server(dbs)}
    with Session(dbs.master_engine) as session:
        row = TenantMaster(subdomain=signup.subdomain, **values)
        session.add(row)
        try:
            session.commit()
            return row.id, row.db_server
        except IntegrityError:
            session.rollback()
        failed = session.scalar(sa.select(TenantMaster).where(
            TenantMaster.subdomain == signup.subdomain, TenantMaster.status == "failed"))
        if failed is None:
            raise TenantConflict(f"subdomain {signup.subdomain!r} is taken")
        clean_leftovers(dbs, failed)
        for name, value in values.items():
            setattr(failed, name, value)
        failed.db_name = failed.db_connection_encrypted = None
        session.commit()
        return failed.id, failed.db_server


def pause_if_asked(step: str) -> None:
    """Crash-test hook: with FINVERA_TEST_PAUSE_AT=<step> in the environment, announce the
    step on stderr and wait there for ever, so a test can kill -9 the process at that point."""
    if os.environ.get(PAUSE_VARIABLE) == step:
        print(f"paused before {step}", file=sys.stderr, flush=True)
        threading.Event().wait()


def provision_tenant(dbs: Databases, signup: SignUp,
                     on_step: Callable[[str], None] = pause_if_asked) -> Provisioned:
    """Create a tenant: record, database, DB user, migrations, admin user, connection, active.

    The admin's password is hashed in a thread from the start, beside the database steps (or,
    generated, was hashed ahead of time: ``api.tenancy.ready_passwords``), and the migrations
    and the admin row share one connection to the new database.

    ``on_step(name)`` is called before each step after the record; tests use it to inject
    faults or to pause (the default pauses only when FINVERA_TEST_PAUSE_AT names the step).
    """
    ready = None if signup.admin_password else dbs.ready_passwords.take()
    if ready:  # generated and hashed ahead of time (with the pool of ready databases)
        password, password_hash = ready[0], Future()
        password_hash.set_result(ready[1])
    else:
        password = signup.admin_password or generate_password()
        password_hash = _hash_in_background(password)  # scrypt's ~70 ms, beside the steps
    _check_references(dbs, signup)
    try:
        with dbs.backend.lock(subdomain_lock(dbs, signup.subdomain), timeout=0):
            tenant_id, server = _record(dbs, signup)
            tenant = _provision(dbs, signup, tenant_id, dbs.backend_of(server), password_hash,
                                on_step)
    except LockTimeout:
        raise TenantConflict(
            f"a sign-up for subdomain {signup.subdomain!r} is already under way") from None
    generated = None if signup.admin_password else password
    return Provisioned(tenant=tenant, admin_email=signup.email, generated_password=generated)


def _hash_in_background(password: str) -> Future[str]:
    """The password's hash, computed in a thread of its own: hashlib's scrypt lets go of the
    GIL, so the sign-up's database steps go on meanwhile. A thread per sign-up rather than a
    shared executor, whose threads would not survive gunicorn's fork into workers."""
    hashed: Future[str] = Future()

    def run() -> None:
        try:
            hashed.set_result(hash_password(password))
        except BaseException as exc:  # handed to whoever waits for the hash
            hashed.set_exception(exc)

    threading.Thread(target=run, name="signup-password-hash", daemon=True).start()
    return hashed


def _provision(dbs: Databases, signup: SignUp, tenant_id: int, backend: Backend,
               password_hash: Future[str], on_step: Callable[[str], None]) -> TenantMaster:
    settings = dbs.settings
    made: dict[str, str] = {}
    db_user = db_password = None
    step = STEPS[0]
    try:
        on_step(step)
        db_name = pool.claim(dbs, tenant_id, backend) if settings.tenant_pool_size else None
        if db_name is None:
            db_name = database_name(settings.tenant_db_prefix, signup.subdomain,
                                    int(time.time() * 1000))
            _update(dbs, tenant_id, db_name=db_name)  # named before it exists: repair finds it
            if not backend.create_database(db_name):
                raise BackendError(f"database {db_name} already exists")
        made["database"] = db_name

        step = "create_user"
        on_step(step)
        if settings.use_separate_db_users:
            db_user, db_password = tenant_db_user(dbs, tenant_id), secrets.token_urlsafe(24)
            backend.create_user(db_user, db_password, db_name)
            made["user"] = db_user

        # One connection does both steps when the admin row is written with the app's own
        # credentials; with separate DB users it is written as the tenant's user.
        engine = backend.create_engine(db_name, poolclass=sa.pool.NullPool,
                                       user=db_user, password=db_password)
        try:
            with engine.connect() as connection:
                step = "migrate"
                on_step(step)  # a claimed database is usually current: then this is one query
                apply_pending(backend, db_name, Tier.TENANT,
                              connection=None if db_user else connection)

                step = "create_admin"
                on_step(step)
                connection.execute(sa.insert(User).values(
                    email=signup.email, role="admin", full_name=signup.company_name,
                    password_hash=password_hash.result()))
                connection.commit()
        finally:
            engine.dispose()

        step = "store_connection"
        on_step(step)
        info = connection_info(backend, db_name, db_user, db_password)
        _update(dbs, tenant_id, db_connection_encrypted=dbs.cipher.encrypt(info))

        step = "activate"
        on_step(step)
        tenant = _update(dbs, tenant_id, status="active", provisioned_at=_now())
    except Exception as exc:
        # A database error's text is the driver's message; the statement and its parameters
        # (connection info, passwords) stay out of a reason admins can read.
        cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig else exc
        reason = f"{type(cause).__name__}: {cause}"[:500]
        _compensate(dbs, backend, tenant_id, made, f"{step}: {reason}")
        raise ProvisioningError(tenant_id, step, reason) from exc
    if settings.tenant_pool_size:
        pool.refill_in_background(dbs)
    return tenant


def connection_info(backend: Backend, database: str, user: str | None,
                    password: str | None) -> dict:
    """What a tenant's row keeps, encrypted, of where its database is and whom to connect as."""
    info = {"server": backend.server, "database": database}
    if backend.name == "mysql":
        info.update(host=backend.host, port=backend.port)
    if user:
        info.update(user=user, password=password)
    return info


def _update(dbs: Databases, tenant_id: int, **values) -> TenantMaster:
    """Write ``values`` to the tenant's row and commit; return the row, detached."""
    with Session(dbs.master_engine, expire_on_commit=False) as session:
        row = session.get(TenantMaster, tenant_id)
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()
        return row


def _compensate(dbs: Databases, backend: Backend, tenant_id: int, made: dict[str, str],
                reason: str) -> None:
    """Drop what a failed attempt made and mark the tenant failed; never raises."""
    try:
        if "user" in made:
            backend.drop_user(made["user"])
        if "database" in made:
            drop_tenant_database(dbs, made["database"], backend.server)
        _update(dbs, tenant_id, status="failed", status_reason=reason)
    except Exception:  # the row stays in provisioning: `finvera tenants repair` finishes this
        log.exception("compensation of tenant %s failed; run finvera tenants repair", tenant_id)


def drop_tenant_database(dbs: Databases, name: str, server: str = DEFAULT_SERVER) -> bool:
    """Drop a tenant database on ``server``, refusing one that a live tenant (or one being
    moved) has there."""
    if not name.startswith(dbs.settings.tenant_db_prefix):
        raise BackendError(f"{name} is not a tenant database")
    with Session(dbs.master_engine) as session:
        owner = session.scalar(sa.select(TenantMaster.subdomain).where(
            TenantMaster.db_name == name, TenantMaster.db_server == server,
            TenantMaster.status.in_(HELD_STATUSES)))
    if owner:
        raise BackendError(f"{name} belongs to live tenant {owner!r}: not dropped")
    return dbs.backend_of(server).drop_database(name)


def clean_leftovers(dbs: Databases, tenant: TenantMaster) -> list[str]:
    """Drop whatever a tenant that is not live may still have on its server: its database and
    DB user."""
    dropped, backend = [], dbs.backend_of(tenant.db_server)
    if backend.name == "mysql" and backend.drop_user(tenant_db_user(dbs, tenant.id)):
        dropped.append(tenant_db_user(dbs, tenant.id))
    if tenant.db_name and drop_tenant_database(dbs, tenant.db_name, tenant.db_server):
        dropped.append(tenant.db_name)
    return dropped
