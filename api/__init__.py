"""Finvera's tenant database platform: the app factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

if TYPE_CHECKING:
    from flask_openapi3 import OpenAPI

    from api.config import Settings

MAX_BODY_BYTES = 1024 * 1024


def _refuse_oversized_chunked_body() -> None:
    """413 for a body sent without Content-Length (chunked) that reaches the limit: Werkzeug
    cuts such a body at MAX_CONTENT_LENGTH silently, and the cut body would be read as if it
    were all (or refused as malformed JSON)."""
    if request.content_length is None and request.method in ("POST", "PUT", "PATCH") \
            and len(request.get_data(cache=True)) >= MAX_BODY_BYTES:
        raise RequestEntityTooLarge()


def create_app(settings: Settings | None = None) -> OpenAPI:
    """Build the API from ``settings`` (read from the environment when not given).

    Nothing touches a database here: ``Databases.initialize()`` (``finvera init``, ``finvera
    serve``) creates and migrates them. The API's modules are imported here, as in Flask's
    tutorial, so that importing ``api.tenancy`` (``finvera migrate``) does not import them all.
    """
    from flask_openapi3 import Info, OpenAPI

    from api import (
        auth,
        backup_commands,
        commands,
        db,
        errors,
        health,
        metrics,
        migrate_command,
        responses,
        tenant_request,
    )
    from api.accounting import chart, gst, reports, tds, users, vouchers
    from api.config import load_settings
    from api.platform import admins, commissions, leads, sales, system, tenants
    from api.tenancy.databases import Databases

    settings = settings or load_settings()
    app = OpenAPI(
        __name__,
        info=Info(title="Finvera platform API", version="0.1.0"),
        doc_ui=False,
        # Declared even before any endpoint needs it: an empty securitySchemes is invalid.
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        validation_error_status=400,
        validation_error_callback=errors.validation_error_response,
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json = responses.DecimalJSONProvider(app)
    app.json.sort_keys = False
    db.init_app(app, Databases(settings))
    tenant_request.init_app(app)
    metrics.init_app(app)
    errors.register_error_handlers(app)
    commands.register(app)
    backup_commands.register(app)
    migrate_command.register(app)
    app.register_api(health.bp)
    auth.init_app(app, settings)
    for platform_api in (admins, tenants, system, sales, leads, commissions):
        app.register_api(platform_api.bp)
    for tenant_api in (users, chart, vouchers, gst, tds, reports):
        app.register_api(tenant_api.bp)
    app.add_url_rule("/api/openapi.json", "openapi_document", lambda: jsonify(app.api_doc))
    app.before_request(_refuse_oversized_chunked_body)
    return app
