"""The HTTP surface of the foundation: probes, the OpenAPI document, and the error envelope."""

import inspect
import typing

from flask_openapi3 import APIBlueprint
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from api import create_app
from api.responses import ok
from api.schemas import QueryModel


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


def test_every_query_model_makes_its_json_schema_once(app):
    """flask-openapi3 asks a view's query model for its JSON schema on every request: each
    one derives from QueryModel, which makes it once per class."""
    query_models = set()
    for view in app.view_functions.values():
        hints = typing.get_type_hints(inspect.unwrap(view))
        if "query" in hints:
            query_models.add(hints["query"])
    assert len(query_models) >= 20  # the app's list and report endpoints
    for model in query_models:
        assert issubclass(model, QueryModel), model
        assert model.model_json_schema() is model.model_json_schema()
