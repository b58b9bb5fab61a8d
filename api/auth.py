"""Logins and the guards that protect endpoints: platform admins and tenant users.

Wrong password and unknown user answer the same 401 (and take the same time: the hash is
checked either way). Failed logins are counted per account: after five in 15 minutes the
account answers 429 until the window moves.

A tenant user's standing (active, role) is cached per process as long as the tenant's lookup
is: a deactivation or a role change takes effect at once in the process that made it, which
announces it on the tenant's row in master, and in the others at their next check of master
(within TENANT_CACHE_TTL_SECONDS). A change made in the tenant's database by hand is seen when
the entries expire (5 minutes), or within the TTL once the tenant's row is touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, wraps

import sqlalchemy as sa
from flask import current_app, g, request
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from api.blueprints import admin_blueprint
from api.db import databases, main_session
from api.errors import ApiError, error_answers
from api.models.main import AdminUser
from api.models.tenant import User
from api.responses import envelope, ok, shown
from api.schemas import Email
from api.security import hash_password, verify_password
from api.tenancy.tokens import ADMIN, TENANT, Claims, TokenInvalid, TokenService
from api.tenant_request import current_tenant, tenant_blueprint, tenant_session
from api.throttle import LoginThrottle

log = logging.getLogger(__name__)


@cache
def _dummy_hash() -> str:
    """Checked against when the account does not exist, so both failures cost the same; made
    on first use (one scrypt hash: not a cost for every command's start-up)."""
    return hash_password("no such user, no such password")


@dataclass(frozen=True)
class SignedInUser:
    """The tenant user a request is for (``g.user``): who, and with which role."""

    id: int
    role: str


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: str = Field(min_length=1, max_length=1024)


class Token(BaseModel):
    token: str
    token_type: str = "Bearer"
    expires_in: int


class TokenEnvelope(BaseModel):
    success: bool
    data: Token


@shown
class SignedIn(TypedDict):
    id: int
    email: str
    role: str
    full_name: str | None


@shown
class RoutedTenant(TypedDict):
    id: int
    subdomain: str
    company_name: str


# A wrong password is 401; five in 15 minutes, 429 with Retry-After.
LOGIN = {200: TokenEnvelope} | error_answers(401, 429)


def tokens() -> TokenService:
    return current_app.extensions["finvera_tokens"]


def throttle() -> LoginThrottle:
    return current_app.extensions["finvera_throttle"]


def _unauthorized(message: str = "Sign in again: the token is missing, invalid or expired."):
    return ApiError(401, "unauthorized", message)


def _bearer_claims() -> Claims:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized()
    try:
        return tokens().verify(token.strip())
    except TokenInvalid:
        raise _unauthorized() from None


def _login(account_key: str, user, password: str, claims) -> tuple:
    """Check a password with the throttle in front; return the token envelope."""
    wait = throttle().retry_after(account_key)
    if wait:
        raise ApiError(429, "too_many_attempts",
                       f"Too many failed logins; try again in {wait} seconds.",
                       headers={"Retry-After": str(wait)})
    valid = verify_password(user.password_hash if user else _dummy_hash(), password)
    if not (valid and user and user.is_active):
        throttle().failed(account_key)
        raise _unauthorized("Wrong email or password.")
    throttle().succeeded(account_key)
    user.last_login_at = datetime.now(UTC).replace(tzinfo=None)
    return ok(token=tokens().issue(claims(user)), token_type="Bearer",
              expires_in=tokens().ttl_seconds)


def admin_required(*roles: str):
    """Only a platform admin's token, of one of ``roles`` when given; sets ``g.admin``."""
    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            claims = _bearer_claims()
            if claims.scope != ADMIN:
                raise _unauthorized("This endpoint takes a platform admin's token.")
            admin = main_session().get(AdminUser, claims.user_id)
            if admin is None or not admin.is_active:
                raise _unauthorized()
            if roles and admin.role not in roles:
                raise ApiError(403, "forbidden", f"Your role ({admin.role}) cannot do this.")
            g.admin = admin
            return view(*args, **kwargs)
        return guarded
    return decorator


def _standing(tenant, user_id: int) -> tuple[bool, str] | None:
    """(is_active, role) of a user of the request's tenant, cached as the tenant's lookup is;
    None if there is no such user."""
    def load():
        row = tenant_session().execute(
            sa.select(User.is_active, User.role).where(User.id == user_id)).first()
        return None if row is None else ((row.is_active, row.role),
                                         databases().user_standing.ttl)
    return databases().user_standing.get((tenant.id, tenant.db_name, user_id), load)


def forget_user(user_id: int) -> None:
    """Drop this tenant's user's cached standing here, and announce the change so that the
    other processes drop theirs at their next check: call after committing a change to it.
    If master cannot take the announcement, they see it when their entries expire."""
    tenant = current_tenant()
    key = (tenant.id, tenant.db_name, user_id)
    databases().user_standing.forget(lambda cached, _standing: cached == key)
    try:
        databases().directory.announce(tenant.id)
    except sa.exc.SQLAlchemyError:
        log.warning("could not announce a change to user %s of tenant %s: other processes "
                    "see it within %.0f s", user_id, tenant.id,
                    databases().user_standing.ttl, exc_info=True)


def tenant_user_required(*roles: str):
    """Only a token of this tenant's user (of one of ``roles`` when given); sets ``g.user``."""
    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            claims, tenant = _bearer_claims(), current_tenant()
            if claims.scope != TENANT or claims.tenant_id != tenant.id \
                    or claims.tenant_db != tenant.db_name:
                raise _unauthorized("This token is not for this tenant.")
            standing = _standing(tenant, claims.user_id)
            if standing is None or not standing[0]:
                raise _unauthorized()
            role = standing[1]
            if roles and role not in roles:
                raise ApiError(403, "forbidden", f"Your role ({role}) cannot do this.")
            g.user = SignedInUser(claims.user_id, role)
            return view(*args, **kwargs)
        return guarded
    return decorator


admin_bp = admin_blueprint("admin_auth", __name__, "admin auth", url_prefix="/api/admin/auth",
                           secured=False)
tenant_bp = tenant_blueprint("tenant_auth", __name__, "tenant auth", secured=False)


@admin_bp.post("/login", responses=LOGIN)
def admin_login(body: LoginBody):
    """Sign a platform admin in; the token opens /api/admin endpoints only."""
    session = main_session()
    admin = session.scalar(sa.select(AdminUser).where(AdminUser.email == body.email))
    response = _login(f"admin:{body.email}", admin, body.password,
                      lambda user: Claims(scope=ADMIN, user_id=user.id))
    session.commit()
    return response


@admin_bp.get("/me", security=[{"bearer": []}],
              responses={200: envelope("SignedInAdmin", admin=SignedIn)})
@admin_required()
def admin_me():
    """The signed-in platform admin."""
    admin = g.admin
    return ok(admin={"id": admin.id, "email": admin.email, "role": admin.role,
                     "full_name": admin.full_name})


@tenant_bp.post("/auth/login", responses=LOGIN)
def tenant_login(body: LoginBody):
    """Sign a tenant user in; the token opens this tenant's endpoints only."""
    tenant, session = current_tenant(), tenant_session()
    user = session.scalar(sa.select(User).where(User.email == body.email))
    response = _login(f"tenant:{tenant.id}:{body.email}", user, body.password,
                      lambda u: Claims(scope=TENANT, user_id=u.id, tenant_id=tenant.id,
                                       tenant_db=tenant.db_name))
    session.commit()
    return response


@tenant_bp.get("/auth/me", security=[{"bearer": []}],
               responses={200: envelope("SignedInUser", user=SignedIn, tenant=RoutedTenant)})
@tenant_user_required()
def tenant_me():
    """The signed-in tenant user, and the tenant the request was routed to."""
    user, tenant = tenant_session().get(User, g.user.id), current_tenant()
    return ok(user={"id": user.id, "email": user.email, "role": user.role,
                    "full_name": user.full_name},
              tenant={"id": tenant.id, "subdomain": tenant.subdomain,
                      "company_name": tenant.company_name})


def init_app(app, settings) -> None:
    app.extensions["finvera_tokens"] = TokenService(settings.signing_key,
                                                    settings.token_ttl_seconds)
    app.extensions["finvera_throttle"] = LoginThrottle()
    app.register_api(admin_bp)
    app.register_api(tenant_bp)
