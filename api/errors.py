"""Every error leaves in the envelope: HTTP errors, validation errors, our own, and crashes."""

from __future__ import annotations

import logging
from typing import Literal

from flask import Flask, make_response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from api.responses import failure
from api.tenancy.backends import UnknownServer
from api.tenancy.connections import PoolExhausted
from api.tenancy.routing import (
    RoutingError,
    TenantMismatch,
    TenantMoving,
    TenantProvisioning,
    TenantRequired,
    TenantSuspended,
)

log = logging.getLogger(__name__)

CODES = {413: "payload_too_large", 500: "internal_error"}
ROUTING_STATUS = {TenantRequired: 400, TenantMismatch: 400, TenantSuspended: 403,
                  TenantProvisioning: 503, TenantMoving: 503}


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorEnvelope(BaseModel):
    """The error shape every endpoint may answer with (documented once, for all)."""

    success: Literal[False] = False
    error: ErrorDetail


def error_answers(*statuses: int) -> dict[int, type[BaseModel]]:
    """``responses=`` of an operation that may answer ``statuses`` with the error envelope."""
    return dict.fromkeys(statuses, ErrorEnvelope)


# What any operation may answer (api/blueprints.py adds what each one's machinery answers).
COMMON_RESPONSES = error_answers(400, 500)
CONFLICT = error_answers(409)  # a view that refuses what clashes with what is stored


class ApiError(Exception):
    """An error a client can act on: status, snake_case code, message, fields at fault."""

    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.headers = headers or {}


def invalid_field(field: str, problem: str) -> ApiError:
    """A 400 validation_error about one field (a rule pydantic alone cannot check)."""
    return ApiError(400, "validation_error", f"{field}: {problem}", {field: problem})


def _field_name(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "body"


def validation_error_response(error: ValidationError):
    """flask-openapi3's validation callback: 400 with every field that is wrong, by name."""
    if request.get_data() and request.get_json(silent=True) is None:
        return make_response(failure(400, "malformed_json", "The request body is not valid JSON."))
    fields = {}
    for problem in error.errors(include_url=False):
        fields.setdefault(_field_name(problem["loc"]), problem["msg"])
    return make_response(failure(400, "validation_error", "Some fields are not valid.", fields))


def register_error_handlers(app: Flask) -> None:
    """Answer every failure in the envelope, never with an HTML page."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        response = failure(error.status, error.code, error.message, error.fields)
        response[0].headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.response is not None:  # already a full response (validation errors)
            return error.response
        code = CODES.get(error.code) or (error.name or "error").lower().replace(" ", "_")
        response = failure(error.code or 500, code, error.description or error.name)
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response[0].headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(RoutingError)
    def routing_error(error: RoutingError):
        response = failure(ROUTING_STATUS.get(type(error), 404), error.code, str(error))
        if isinstance(error, TenantProvisioning | TenantMoving):
            response[0].headers["Retry-After"] = "5"
        return response

    @app.errorhandler(PoolExhausted)
    @app.errorhandler(PoolTimeout)
    def connections_busy(error: Exception):
        log.warning("tenant connections exhausted: %s", error)
        response = failure(503, "database_busy", "All database connections are busy; retry.")
        response[0].headers["Retry-After"] = "1"
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(UnknownServer)
    def database_unavailable(error: OperationalError | UnknownServer):
        log.error("database unavailable on %s %s: %s", request.method, request.path,
                  error if isinstance(error, UnknownServer) else type(error.orig).__name__)
        response = failure(503, "database_unavailable", "The database cannot be reached now.")
        response[0].headers["Retry-After"] = "2"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return failure(500, "internal_error", "Something went wrong on our side.")
