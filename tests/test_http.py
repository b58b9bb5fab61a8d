"""The HTTP surface of the foundation: probes, the OpenAPI document, and the error envelope."""

import inspect
import typing
from urllib.parse import urlencode

from flask import request
from flask_openapi3 import APIBlueprint
from flask_openapi3.request import _validate_query
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import create_app
from api.blueprints import ApiBlueprint, reads_as_a_dict
from api.responses import ok
from api.schemas import IdPath, QueryModel


class Echo(BaseModel):
    name: str = Field(min_length=1)
    amount: int = Field(gt=0)


def add_probe_routes(app):
    """A test-only blueprint with a validated body and a crash, to exercise the envelope."""
    bp = APIBlueprint("probe", __name__)

    @bp.post("/probe/echo")
    def echo(body: Echo):
        return ok(echo=body.model_dump())

    @bp.get("/probe/crash")
    def crash():
        raise RuntimeError("boom")

    app.register_api(bp)


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"success": True, "data": {"status": "up"}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["data"]["master_db"]["status"] == "ready"
    assert ready.json["data"]["main_db"]["status"] == "ready"


def test_readiness_names_what_is_missing(settings):
    app = create_app(settings)  # not initialized: neither database is migrated
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["success"] is False
    assert set(response.json["error"]["fields"]) == {"main_db", "master_db"}
    app.extensions["finvera"].dispose()


def test_openapi_document_is_valid(client):
    document = client.get("/api/openapi.json").json
    validate(document)
    assert "/readyz" in document["paths"]


def test_unknown_route_and_wrong_method_answer_in_the_envelope(client):
    missing = client.get("/no/such/thing")
    assert missing.status_code == 404 and missing.is_json
    assert missing.json["error"]["code"] == "not_found"
    wrong = client.delete("/healthz")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


def test_bad_bodies_are_400_with_the_fields_named(app):
    add_probe_routes(app)
    client = app.test_client()
    good = client.post("/probe/echo", json={"name": "a", "amount": 5})
    assert good.json == {"success": True, "data": {"echo": {"name": "a", "amount": 5}}}

    malformed = client.post("/probe/echo", data="{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.json["error"]["code"] == "malformed_json"

    invalid = client.post("/probe/echo", json={"name": "", "amount": -1})
    assert invalid.status_code == 400
    assert invalid.json["error"]["code"] == "validation_error"
    assert set(invalid.json["error"]["fields"]) == {"name", "amount"}

    too_big = client.post("/probe/echo", data="x" * (2 * 1024 * 1024),
                          content_type="application/json")
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == "payload_too_large"


def test_a_crash_is_a_500_envelope_without_details(app):
    add_probe_routes(app)
    response = app.test_client().get("/probe/crash")
    assert response.status_code == 500
    assert response.json == {"success": False, "error": {
        "code": "internal_error", "message": "Something went wrong on our side."}}


def query_models(app) -> set[type[BaseModel]]:
    """The query-string models of the app's views (``query: SomeQuery``)."""
    models = set()
    for view in app.view_functions.values():
        hints = typing.get_type_hints(inspect.unwrap(view))
        if "query" in hints:
            models.add(hints["query"])
    return models


def test_every_query_model_makes_its_json_schema_once(app):
    """flask-openapi3 asks a view's query model for its JSON schema on every request: each
    one derives from QueryModel, which makes it once per class."""
    models = query_models(app)
    assert len(models) >= 20  # the app's list and report endpoints
    for model in models:
        assert issubclass(model, QueryModel), model
        assert model.model_json_schema() is model.model_json_schema()


QUERY_VALUES = ("1", "-1", "abc", "", "2026-04-01", "true", "a" * 300)


def validated(read, model):
    """What a query-string reading makes of the request: a model's fields, or the errors."""
    try:
        return read(model).model_dump()
    except ValidationError as error:
        return [(e["loc"], e["type"]) for e in error.errors()]


def test_a_lean_view_reads_each_query_as_flask_openapi3_does(app):
    """ApiBlueprint's lean view reads the query string as ``request.args.to_dict()``: for every
    query model of the app that it takes, the same model or the same errors as flask-openapi3's
    own reading, over values good and bad, repeated keys and keys the model does not have."""
    lean = {model for model in query_models(app) if reads_as_a_dict(model)}
    assert len(lean) >= 20  # every list and report endpoint of the app today

    def openapi3(model):
        kwargs = {}
        _validate_query(model, kwargs)
        return kwargs["query"]

    def as_a_dict(model):
        return model.model_validate(request.args.to_dict())

    for model in lean:
        keys = [field.alias or name for name, field in model.model_fields.items()]
        for value in QUERY_VALUES:
            strings = [urlencode(dict.fromkeys(keys, value)),
                       *(f"{key}={value}&{key}=2&other=x" for key in keys)]
            for string in strings:
                with app.test_request_context(f"/?{string}"):
                    assert validated(as_a_dict, model) == validated(openapi3, model), \
                        (model, string)


class Tags(QueryModel):
    tags: list[str] = []


class Aliased(QueryModel):
    model_config = ConfigDict(populate_by_name=True)  # read under "type" or "kind"
    kind: str | None = Field(default=None, alias="type")


class Count(QueryModel):
    n: int = Field(default=1, gt=0)


def test_a_query_the_lean_view_cannot_read_goes_to_flask_openapi3(app):
    """A list-typed field, or one read under either of two keys, is not a dict's first value
    per key: those views keep flask-openapi3's own reading (all of a key's values; the alias,
    or the name when the alias is empty), and a flat one gets the lean view, same 400."""
    assert not reads_as_a_dict(Tags) and not reads_as_a_dict(Aliased)
    assert reads_as_a_dict(Count)
    bp = ApiBlueprint("probe_query", __name__)

    @bp.get("/probe/tags")
    def tags(query: Tags):
        return ok(tags=query.tags)

    @bp.get("/probe/aliased")
    def aliased(query: Aliased):
        return ok(kind=query.kind)

    @bp.get("/probe/count/<int:id>")
    def count(path: IdPath, query: Count):
        return ok(id=path.id, n=query.n)

    app.register_api(bp)
    client = app.test_client()
    assert client.get("/probe/tags?tags=a&tags=b").json["data"] == {"tags": ["a", "b"]}
    assert client.get("/probe/aliased?type=&kind=sale").json["data"] == {"kind": "sale"}
    assert client.get("/probe/count/7?n=3").json["data"] == {"id": 7, "n": 3}
    for bad in ("/probe/count/7?n=0", "/probe/count/7?n=abc"):
        answer = client.get(bad)
        assert answer.status_code == 400, bad
        assert answer.json["error"]["code"] == "validation_error"
        assert set(answer.json["error"]["fields"]) == {"n"}
    assert client.get("/probe/count/0").status_code == 400  # the path model, too
