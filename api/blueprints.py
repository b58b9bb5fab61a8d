"""The blueprints of both APIs, and the error answers the OpenAPI document declares for them.

A view declares in ``responses=`` what only it knows: its success envelope (api/responses.py)
and a 409 where it may refuse a clash (``CONFLICT``). What the shared machinery answers is
declared here, once, for every operation it applies to:

- 400 ``validation_error``, 500, and 503 ``database_unavailable`` / ``database_busy``: any;
- 401 ``unauthorized``: an operation that takes a bearer token;
- 404 ``not_found``: a URL that names a row (``<int:id>``);
- 413 ``payload_too_large``: a body, and every POST, PUT and PATCH (create_app refuses a
  chunked one that reaches the limit);
- platform API: 403 ``forbidden`` on a write, which takes a writing role;
- tenant API (``api/tenant_request.py``): the routing's 400, 403, 404 and 503 on all, 507 on
  writes.
"""

from __future__ import annotations

import inspect
from http import HTTPMethod

from flask_openapi3 import APIBlueprint, Tag

from api.errors import error_answers

WRITES = (HTTPMethod.POST, HTTPMethod.PUT, HTTPMethod.PATCH)
SECURITY = [{"bearer": []}]


class ApiBlueprint(APIBlueprint):
    """An APIBlueprint whose operations document the errors our machinery answers."""

    def machinery_errors(self, endpoint: str, method: str, secured: bool) -> set[int]:
        """What a kind of blueprint adds to the errors of ``endpoint`` (none here)."""
        return set()

    def _collect_openapi_info(self, rule, func, *, responses=None, security=None,
                              method=HTTPMethod.GET, **kwargs):
        """flask-openapi3 documents each route here: add the errors before it does."""
        secured = bool(security or self.abp_security)
        statuses = {400, 500, 503}
        if secured:
            statuses.add(401)
        if "<" in rule:
            statuses.add(404)
        if method in WRITES or "body" in inspect.signature(func).parameters:
            statuses.add(413)
        statuses |= self.machinery_errors(f"{self.name}.{func.__name__}", method, secured)
        documented = error_answers(*sorted(statuses)) | (responses or {})
        return super()._collect_openapi_info(rule, func, responses=documented,
                                             security=security, method=method, **kwargs)


class AdminBlueprint(ApiBlueprint):
    """The platform API: every write takes a writing role (403 for the others)."""

    def machinery_errors(self, endpoint: str, method: str, secured: bool) -> set[int]:
        return {403} if secured and method != HTTPMethod.GET else set()


def admin_blueprint(name: str, import_name: str, tag: str, url_prefix: str = "/api/admin",
                    secured: bool = True) -> AdminBlueprint:
    """A blueprint of the platform API; its endpoints take an admin's token unless not
    ``secured`` (then each view that does says so with ``security=SECURITY``)."""
    return AdminBlueprint(name, import_name, url_prefix=url_prefix, abp_tags=[Tag(name=tag)],
                          abp_security=SECURITY if secured else None)
