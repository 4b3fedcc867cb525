"""The one error shape for every 4xx/5xx under /api, and the OpenAPI document."""

from __future__ import annotations

import jsonschema_rs
import pytest

from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    empty_queue,
    finished_batch,
    sample_report,
    user_with_token,
)
from tests.routes.test_api_tokens import assert_error


@pytest.fixture
def headers(committed):
    return user_with_token(committed)[1]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/batches/abc", "/api/v2/batches",
                                  "/api/v1/batches/1/nothing", "/api/"])
def test_unknown_routes_are_404_in_the_error_shape(client, headers, path):
    assert_error(client.get(path, headers=headers), 404, "not_found")
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("method, path", [
    ("put", "/api/v1/batches"), ("patch", "/api/v1/batches/1"), ("get", "/api/v1/tokens"),
    ("delete", "/api/v1/batches/1/cancel"), ("post", "/api/v1/sites/1"),
])
def test_wrong_methods_are_405_in_the_error_shape_with_allow(client, headers, method, path):
    response = getattr(client, method)(path, headers=headers)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"]


@pytest.mark.parametrize("body", ['{"urls": [', "not json", "", '{"urls": ["a"]}}', "\xff"])
def test_malformed_json_is_400(client, headers, body):
    response = client.post("/api/v1/batches", data=body.encode("latin-1"),
                           content_type="application/json", headers=headers)
    assert_error(response, 400, "invalid_json")


def test_a_server_error_under_api_keeps_the_shape(app, client, headers, monkeypatch):
    """An unexpected exception becomes a 500 with a generic message (nothing leaked)."""
    from routes import api

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.BatchOps, "list_for_user", explode)
    error = assert_error(client.get("/api/v1/batches", headers=headers), 500, "internal_error")
    assert "secret" not in error["message"]


def _validator(document: dict, name: str) -> jsonschema_rs.Draft202012Validator:
    """A validator for one component schema of the OpenAPI 3.1 document."""
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": document["components"]},
        validate_formats=True)


def test_openapi_document_lists_every_api_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in document["paths"].items()
                  for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.startswith("/api/v1/admin"):
            continue
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented


def test_real_responses_validate_against_the_documented_schemas(client, committed):
    user, headers = user_with_token(committed)
    batch = finished_batch(committed, user, [sample_report("A"), None])
    document = client.get("/api/v1/openapi.json").get_json()
    batch_body = client.get(f"/api/v1/batches/{batch.id}", headers=headers).get_json()
    _validator(document, "Batch").validate(batch_body)
    site_id = batch_body["urls"][0]["id"]
    _validator(document, "Site").validate(
        client.get(f"/api/v1/sites/{site_id}", headers=headers).get_json())
    _validator(document, "Comparison").validate(
        client.get(f"/api/v1/batches/{batch.id}/comparison", headers=headers).get_json())
    _validator(document, "Export").validate(
        client.get(f"/api/v1/batches/{batch.id}/export.json", headers=headers).get_json())
    _validator(document, "EventList").validate(
        client.get(f"/api/v1/batches/{batch.id}/events", headers=headers).get_json())
    _validator(document, "BatchList").validate(
        client.get("/api/v1/batches", headers=headers).get_json())
    error = client.get("/api/v1/batches/999999", headers=headers).get_json()
    _validator(document, "Error").validate(error)
    # A schema that is wrong on purpose fails, so the checks above can fail too.
    with pytest.raises(jsonschema_rs.ValidationError):
        _validator(document, "Batch").validate({**batch_body, "status": "sleeping"})
