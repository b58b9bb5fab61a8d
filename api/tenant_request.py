"""The seed's request flow for tenant endpoints: resolve the tenant, then open its session.

``g.tenant`` is the tenant (req.tenant in the seed) and ``tenant_session()`` a session on its
database (req.tenantModels), opened on first use and rolled back and closed at teardown;
``tenant_connection()`` a bare Core connection for hot reads that need no ORM, the session's
own when one is open. Platform endpoints never call these, so they never open a tenant database.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_openapi3 import Tag
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from api.blueprints import SECURITY, WRITES, ApiBlueprint
from api.db import databases
from api.errors import ApiError
from api.tenancy.routing import TenantRecord, host_label

STILL_ALLOWED = ("tenant_auth.tenant_login",)  # signing in writes nothing to the books


def load_tenant() -> None:
    """before_request: find the request's tenant or fail closed (RoutingError); a tenant over
    its storage limit may still read, but not write (507)."""
    dbs, asked = databases(), request._get_current_object()  # one context lookup, not four
    g.tenant = tenant = dbs.directory.resolve(asked.headers.get("X-Tenant-ID"),
                                              host_label(asked.host, dbs.settings.base_domain))
    if asked.method in WRITES and asked.endpoint not in STILL_ALLOWED \
            and dbs.storage.over_limit(tenant.db_server, tenant.db_name,
                                       tenant.storage_limit_mb):
        raise ApiError(507, "storage_limit_exceeded",
                       f"The company's data has reached its {tenant.storage_limit_mb} MB "
                       "limit: it can still be read, but not added to.")


def current_tenant() -> TenantRecord:
    return g.tenant


def tenant_session() -> Session:
    """The request's session on its tenant's database, opened on first use: on the request's
    connection when ``tenant_connection()`` opened one (ended first, so that the session
    begins, and commits, a transaction of its own)."""
    if "tenant_session" not in g:
        if "tenant_connection" in g:
            g.tenant_connection.rollback()
            g.tenant_session = Session(g.tenant_connection)
        else:
            g.tenant_session = Session(databases().connections.engine(g.tenant.target))
    return g.tenant_session


def tenant_connection() -> Connection:
    """A Core connection on the request's tenant database, for reads that need no ORM (the
    Session around a statement costs about 0.2 ms): the session's connection when the request
    has opened one, else one of its own, opened on first use. Either way one pooled
    connection per request, rolled back and returned at teardown."""
    context = g._get_current_object()  # once: every use of the proxy is a context lookup
    if "tenant_session" in context:
        return context.tenant_session.connection()
    if "tenant_connection" not in context:
        context.tenant_connection = databases().connections.engine(context.tenant.target).connect()
    return context.tenant_connection


def close_tenant_session(_error: BaseException | None = None) -> None:
    """teardown: roll back and return the request's session and connection, if opened."""
    session, connection = g.pop("tenant_session", None), g.pop("tenant_connection", None)
    try:
        if session is not None:
            session.close()
    finally:
        if connection is not None:
            connection.close()


class TenantBlueprint(ApiBlueprint):
    """The tenant API: ``load_tenant`` answers 400 (no tenant named), 403 (suspended), 404
    (unknown) and 503 (still provisioning) on every request, and 507 on writes."""

    def machinery_errors(self, endpoint: str, method: str, secured: bool) -> set[int]:
        writes = method in WRITES and endpoint not in STILL_ALLOWED
        return {400, 403, 404, 503} | ({507} if writes else set())


def tenant_blueprint(name: str, import_name: str, tag: str,
                     secured: bool = True) -> TenantBlueprint:
    """An API blueprint whose every request is routed to a tenant first; its endpoints take a
    tenant user's token unless not ``secured`` (then each view that does says so)."""
    bp = TenantBlueprint(name, import_name, url_prefix="/api", abp_tags=[Tag(name=tag)],
                         abp_security=SECURITY if secured else None)
    bp.before_request(load_tenant)
    return bp


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_tenant_session)
