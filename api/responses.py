"""The seed's JSON envelope: ``{"success": true, "data": {...}}`` or an error object, and the
models that document the success envelopes in the OpenAPI document.

A view answers with ``ok(**data)``; what it answers is documented with ``envelope(title,
**data)`` (a pydantic model of the envelope), or for a resource with ``Answers``, whose models
come from the resource's serialiser: its return type, a TypedDict marked ``@shown``, is the
schema of the row. Rows are closed objects in the document (no undeclared keys), so a key a
serialiser gains without its TypedDict fails the document's check (tests/reliability).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal, get_type_hints

from flask import jsonify
from flask.json.provider import DefaultJSONProvider
from flask.wrappers import Response
from pydantic import BaseModel, ConfigDict, create_model, with_config
from typing_extensions import TypedDict

# The TypedDict of what a serialiser returns, as a closed object of the OpenAPI document.
shown = with_config(ConfigDict(extra="forbid"))
_envelopes: dict[str, tuple[dict, type[BaseModel]]] = {}


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


def iso(moment) -> str | None:
    """A date or datetime as ISO 8601 text, as every answer shows them; None stays None."""
    return moment.isoformat() if moment is not None else None


def envelope(title: str, **data: Any) -> type[BaseModel]:
    """The model of the success envelope ``ok(**data)`` answers, ``<title>Answer`` in the
    document (its data ``<title>Data``): each of ``data`` is a type, or a (type, pydantic
    Field) pair for an alias."""
    known = _envelopes.get(title)
    if known is not None:
        if known[0] != data:  # the document keeps one schema per name: never two meanings
            raise ValueError(f"two different success envelopes are named {title!r}")
        return known[1]
    fields = {name: value if isinstance(value, tuple) else (value, ...)
              for name, value in data.items()}
    model = create_model(f"{title}Answer", success=(Literal[True], ...),
                         data=(create_model(f"{title}Data", **fields), ...))
    _envelopes[title] = (data, model)
    return model


class Answers:
    """The documented success answers of a resource that ``serialiser`` shows: one row under
    ``singular`` (``one``, 200; ``created``, 201) and a page under ``plural`` with its total
    (``page``). Each is a ``responses=`` dict of a view; join others to it with ``|``."""

    def __init__(self, singular: str, plural: str, serialiser) -> None:
        row = get_type_hints(serialiser)["return"]
        name = singular.title().replace("_", "")
        one = envelope(name, **{singular: row})
        self.one, self.created = {200: one}, {201: one}
        self.page = {200: envelope(f"{name}Page", **{plural: list[row], "total": int})}


@shown
class DeletedJson(TypedDict):
    id: int


DELETED = {200: envelope("Deleted", deleted=DeletedJson)}
