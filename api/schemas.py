"""Field types shared by request bodies: checked by pydantic, named in 400 answers; and the
base of query-string models."""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from api.tenancy.subdomains import check_subdomain

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(value: str) -> str:
    """A lower-cased email address of a plausible shape (the mailbox is not contacted)."""
    value = value.strip().lower()
    if not EMAIL.match(value):
        raise ValueError("is not an email address")
    return value


def refuse_null(value):
    """For PATCH bodies: a field may be omitted (it stays as it is) but not set to null."""
    if value is None:
        raise ValueError("cannot be null")
    return value


Email = Annotated[str, StringConstraints(max_length=255), AfterValidator(check_email)]
Subdomain = Annotated[str, AfterValidator(check_subdomain)]
Password = Annotated[str, Field(min_length=10, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
# Every id a client sends (in a URL, a body or a query): our ids are positive and fit MariaDB's
# INT, so anything else is a 400 naming the field, never a number the database cannot bind.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class IdPath(BaseModel):
    """The ``<int:id>`` of a resource's URL."""

    id: RowId


class QueryModel(BaseModel):
    """The base of every query-string model (``query: SomeQuery`` in a view)."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """pydantic's JSON schema, made once per query class and arguments: flask-openapi3
        asks for it on every request it validates (to find list-typed fields), and pydantic
        would build it anew each time. Shared: read it, do not change it."""
        return _json_schema(cls, args, tuple(sorted(kwargs.items())))


@cache
def _json_schema(model: type[QueryModel], args: tuple, kwargs: tuple) -> dict[str, Any]:
    return super(QueryModel, model).model_json_schema(*args, **dict(kwargs))
