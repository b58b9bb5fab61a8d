"""The seed's JSON envelope: ``{"success": true, "data": {...}}`` or an error object."""

from __future__ import annotations

import json
from decimal import Decimal

from flask import jsonify
from flask.json.provider import DefaultJSONProvider
from flask.wrappers import Response


class DecimalJSONProvider(DefaultJSONProvider):
    """Parse JSON numbers with a fraction as Decimal, so no amount ever passes through float."""

    def loads(self, s, **kwargs):
        kwargs.setdefault("parse_float", Decimal)
        return json.loads(s, **kwargs)


def ok(http_status: int = 200, /, **data) -> tuple[Response, int]:
    """A success envelope; pass one object under its singular name or a list and its total."""
    return jsonify({"success": True, "data": data}), http_status


def failure(status: int, code: str, message: str,
            fields: dict[str, str] | None = None) -> tuple[Response, int]:
    """An error envelope: a snake_case code, a sentence, and the fields at fault."""
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return jsonify({"success": False, "error": error}), status
