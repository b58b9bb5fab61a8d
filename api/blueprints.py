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

Views that take only a path and a query-string model (the reads) get a leaner view function
than flask-openapi3's, which validates the same way; see ``ApiBlueprint.create_view_func``.
"""

from __future__ import annotations

import inspect
from functools import wraps
from http import HTTPMethod

from flask import abort, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ValidationError

from api.errors import error_answers

WRITES = (HTTPMethod.POST, HTTPMethod.PUT, HTTPMethod.PATCH)
SECURITY = [{"bearer": []}]


def reads_as_a_dict(query: type[BaseModel]) -> bool:
    """Whether flask-openapi3 reads ``query`` from the query string as
    ``request.args.to_dict()`` would: each field under one key (its alias, or its name), none
    list- or null-typed, so each takes the key's first value and other keys pass as they are."""
    properties = query.model_json_schema().get("properties", {})

    def scalar(schema: dict) -> bool:
        return schema.get("type") not in ("array", "null") and not any(
            option.get("type") == "array" for option in schema.get("anyOf", []))

    one_key = not (query.model_config.get("populate_by_name")
                   or query.model_config.get("validate_by_name"))
    return all((field.alias is None or one_key) and scalar(properties.get(field.alias or name, {}))
               for name, field in query.model_fields.items())


class ApiBlueprint(APIBlueprint):
    """An APIBlueprint whose operations document the errors our machinery answers."""

    @staticmethod
    def create_view_func(func, header, cookie, path, query, form, body, raw, view_class=None,
                         view_kwargs=None, responses=None, validate_response=None):
        """flask-openapi3's view function, except for a view that takes only ``path`` and a
        ``query`` that ``reads_as_a_dict``: the same validation and the same 400 without the
        walk over the model's fields and schema that flask-openapi3 makes on every request
        (about 25 µs of a routed read's 0.8 ms of CPU; ``bench.routing --profile``). The
        order is flask-openapi3's: the blueprint's guard (auth, tenant) runs before it."""
        if (header or cookie or form or body or raw or view_class or not (path or query)
                or (query and not reads_as_a_dict(query)) or inspect.iscoroutinefunction(func)
                or getattr(func, "__delay_validate_request__", False)):
            return APIBlueprint.create_view_func(
                func, header, cookie, path, query, form, body, raw, view_class=view_class,
                view_kwargs=view_kwargs, responses=responses,
                validate_response=validate_response)

        @wraps(func)
        def view_func(**path_values):
            models = {}
            try:
                if path:
                    models["path"] = path.model_validate(path_values)
                if query:
                    models["query"] = query.model_validate(request.args.to_dict())
            except ValidationError as error:
                abort(current_app.validation_error_callback(error))
            response = func(**models)
            if responses and (validate_response if validate_response is not None
                              else getattr(current_app, "validate_response", False)):
                return current_app.validate_response_callback(response, responses)
            return response

        if not hasattr(func, "view"):  # as flask-openapi3 does: one view per function
            func.view = view_func
        return func.view

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
