"""Limits against a hostile user: per-IP throttling (Flask-Limiter, Redis storage when the
broker is Redis), request size, JSON depth, bounded form errors, per-user batch limits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from config import TestConfig
from models import Batch, db
from models.base import utcnow
from tests.conftest import REDIS_URL, free_port
from tests.factories import DEFAULT_PASSWORD, BatchFactory, PageFactory, SiteFactory, UserFactory
from tests.routes.api_support import empty_queue, user_with_token  # noqa: F401 - fixture

LIMIT = 3


@pytest.fixture
def limited_app(app, test_settings):
    """An app with throttling on at 3 requests per minute per address (the session app has
    it off), counting under a key prefix of its own."""
    application = create_app(TestConfig, role="web", **{
        **test_settings, "RATELIMIT_ENABLED": True, "AUTH_RATE_LIMIT": f"{LIMIT} per minute",
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    yield application
    with application.app_context():
        db.engine.dispose()
    app.extensions["celery"].set_default()


def test_storage_is_redis_when_the_broker_is_redis(limited_app):
    storage = type(limited_app.extensions["rivalscope_limiter"].storage).__name__
    assert storage == ("RedisStorage" if REDIS_URL else "MemoryStorage")


@pytest.mark.parametrize("path, body", [
    ("/api/v1/tokens", {"json": {"email": "who@example.test", "password": "guess"}}),
    ("/login", {"data": {"email": "who@example.test", "password": "guess"}}),
    ("/signup", {"data": {"email": "new@example.test", "password": "short",
                          "confirm": "short"}}),
])
def test_sign_in_sign_up_and_tokens_are_throttled_per_address(limited_app, committed, path,
                                                              body):
    client = limited_app.test_client()
    for _ in range(LIMIT):
        assert client.post(path, **body).status_code in (400, 401)
    refused = client.post(path, **body)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 61  # the window is a minute (rounded up)
    if path.startswith("/api/"):
        error = refused.get_json()["error"]
        assert error["code"] == "rate_limited"
        assert error["details"]["retry_after"] == wait
    # Reading the form is not throttled; another address has its own allowance.
    if not path.startswith("/api/"):
        assert client.get(path).status_code == 200
    other = limited_app.test_client()
    other.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    assert other.post(path, **body).status_code in (400, 401)


def test_sign_in_still_works_when_the_throttle_storage_is_down(app, test_settings, committed):
    application = create_app(TestConfig, role="web", **{
        **test_settings, "RATELIMIT_ENABLED": True, "AUTH_RATE_LIMIT": f"{LIMIT} per minute",
        "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        UserFactory(email="me@example.test")
        committed.commit()
        client = application.test_client()
        ok = client.post("/api/v1/tokens", json={"email": "me@example.test",
                                                 "password": DEFAULT_PASSWORD})
        assert ok.status_code == 201
        statuses = [client.post("/api/v1/tokens", json={"email": "x@example.test",
                                                        "password": "guess"}).status_code
                    for _ in range(LIMIT + 1)]
        assert statuses[-1] == 429  # counted in memory meanwhile
    finally:
        with application.app_context():
            db.engine.dispose()
        app.extensions["celery"].set_default()


def test_throttling_can_be_switched_off(client, committed):
    for _ in range(LIMIT + 5):
        response = client.post("/api/v1/tokens", json={"email": "x@example.test",
                                                       "password": "guess"})
        assert response.status_code == 401


# --- request size and shape ---------------------------------------------------------------
def test_a_body_over_max_content_length_is_413_in_the_envelope(client):
    response = client.post("/api/v1/tokens", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"]
    form = client.post("/login", data={"email": "a@example.test", "password": "x" * 2_000_000})
    assert form.status_code == 413


@pytest.mark.parametrize("depth", [33, 5000, 200_000])
def test_json_nested_deeper_than_32_is_400(client, committed, depth):
    _user, auth = user_with_token(committed)
    body = "[" * depth + "]" * depth
    response = client.post("/api/v1/batches", data=body, headers=auth,
                           content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "json_too_deep"


def test_json_at_32_levels_is_parsed(client, committed):
    _user, auth = user_with_token(committed)
    nested: object = "x"
    for _ in range(31):
        nested = [nested]
    response = client.post("/api/v1/batches", json={"urls": nested}, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"


def test_the_form_lists_at_most_50_bad_lines_and_counts_the_rest(client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    client.post("/login", data={"email": "me@example.test", "password": DEFAULT_PASSWORD})
    lines = "\n".join(f"ftp://bad{i}.example" for i in range(400))
    response = client.post("/batches/new", data={"urls": lines, "max_pages": "3"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert page.count("<li data-line=") == 50
    assert "and 350 more lines" in page


# --- per-user limits ------------------------------------------------------------------------
def _batch_request(client, auth, urls=("https://a.example/",)):
    return client.post("/api/v1/batches", json={"urls": list(urls), "max_pages": 1},
                       headers=auth)


def test_too_many_unfinished_sites_is_429(client, committed, app, monkeypatch):
    monkeypatch.setitem(app.config, "USER_MAX_RUNNING_SITES", 3)
    user, auth = user_with_token(committed)
    batch = BatchFactory(owner=user, status="running")
    for i in range(3):
        SiteFactory(batch=batch, url=f"https://s{i}.example/", status="pending")
    committed.commit()
    refused = _batch_request(client, auth)
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["code"] == "too_many_running_sites"
    assert "3 sites waiting or running" in error["message"]
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])
    # Another user is not affected.
    _other, other_auth = user_with_token(committed)
    assert _batch_request(client, other_auth).status_code == 201


def test_batches_per_hour_is_429_with_the_wait(client, committed, app, monkeypatch):
    monkeypatch.setitem(app.config, "USER_MAX_BATCHES_PER_HOUR", 2)
    _user, auth = user_with_token(committed)
    assert _batch_request(client, auth).status_code == 201
    assert _batch_request(client, auth, ["https://b.example/"]).status_code == 201
    refused = _batch_request(client, auth, ["https://c.example/"])
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_batches"
    assert 3000 < int(refused.headers["Retry-After"]) <= 3600
    # An hour later the oldest no longer counts.
    committed.execute(sa.update(Batch).values(created_at=utcnow() - timedelta(minutes=61)))
    committed.execute(sa.update(Batch).values(status="completed"))
    committed.commit()
    assert _batch_request(client, auth, ["https://c.example/"]).status_code == 201


def test_pages_per_day_is_429(client, committed, app, monkeypatch):
    monkeypatch.setitem(app.config, "USER_MAX_PAGES_PER_DAY", 5)
    user, auth = user_with_token(committed)
    batch = BatchFactory(owner=user, status="completed")
    site = SiteFactory(batch=batch, url="https://done.example/", status="completed")
    for i in range(5):
        PageFactory(site_id=site.id, url=f"https://done.example/{i}")
    committed.commit()
    refused = _batch_request(client, auth)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_pages"
    assert int(refused.headers["Retry-After"]) > 3600


def test_the_form_shows_the_limit_with_429(client, committed, app, monkeypatch):
    monkeypatch.setitem(app.config, "USER_MAX_BATCHES_PER_HOUR", 1)
    user = UserFactory(email="me@example.test")
    BatchFactory(owner=user, status="completed")
    committed.commit()
    client.post("/login", data={"email": "me@example.test", "password": DEFAULT_PASSWORD})
    response = client.post("/batches/new", data={"urls": "a.example", "max_pages": "3"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    page = response.get_data(as_text=True)
    assert "Limit reached" in page and "limit 1" in page
    assert committed.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1


def test_the_limiter_runs_before_every_request_only_with_an_app_wide_limit(app, test_settings):
    """Without an app-wide limit the per-request hook is dropped (the throttled views check
    their own); with one, every request is counted again."""
    plain = create_app(TestConfig, role="web", **{**test_settings, "RATELIMIT_ENABLED": True})
    limited = create_app(TestConfig, role="web", **{
        **test_settings, "RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "2 per minute",
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    try:
        hook = plain.extensions["rivalscope_limiter"]._check_request_limit
        assert hook not in plain.before_request_funcs[None]
        assert all(plain.test_client().get("/api/v1/openapi.json").status_code == 200
                   for _ in range(4))
        client = limited.test_client()
        statuses = [client.get("/api/v1/openapi.json").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
    finally:
        for application in (plain, limited):
            with application.app_context():
                db.engine.dispose()
        app.extensions["celery"].set_default()
