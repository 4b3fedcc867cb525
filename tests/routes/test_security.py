"""Low findings of the security review: headers on every response, no-store on admin pages
and exports, cookies never count on /api/v1/admin, /health/ready details only for admins and
loopback, and identical 500s do not flood system_logs."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from app import create_app
from config import TestConfig
from models import SystemLog, db
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.routes.api_support import (  # noqa: F401 - fixture
    empty_queue,
    finished_batch,
    sample_report,
    user_with_token,
)
from utils.db_log_handler import installed_handler
from utils.log_throttle import THROTTLED_LOGGERS, RepeatedErrorFilter

HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
           "Referrer-Policy")


def sign_in(client, email: str) -> None:
    assert client.post("/login", data={"email": email,
                                       "password": DEFAULT_PASSWORD}).status_code == 302


def assert_security_headers(response, path: str) -> None:
    for name in HEADERS:
        assert response.headers.get(name), (path, name, response.status_code)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_every_kind_of_response_carries_the_security_headers(client, committed):
    UserFactory(email="admin@example.test", is_admin=True)
    committed.commit()
    anonymous = ["/login", "/signup", "/no/such/page", "/api/v1/no/such", "/api/v1/batches",
                 "/health", "/static/app.css", "/admin"]
    for path in anonymous:
        assert_security_headers(client.get(path), path)
    assert_security_headers(client.delete("/login"), "405 /login")
    sign_in(client, "admin@example.test")
    for path in ("/admin", "/admin/logs", "/admin/db", "/account", "/", "/no/such/page"):
        response = client.get(path)
        assert_security_headers(response, path)
        if response.mimetype == "text/html":
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_admin_pages_and_exports_are_no_store(client, committed):
    admin = UserFactory(email="admin@example.test", is_admin=True)
    batch = finished_batch(committed, admin, [sample_report("A")])
    committed.commit()
    sign_in(client, "admin@example.test")
    for path in ("/admin", "/admin/logs", f"/batches/{batch.id}/export.csv",
                 f"/batches/{batch.id}/export.json"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path


def test_admin_api_takes_a_token_never_a_cookie(app, client, committed):
    admin, auth = user_with_token(committed, email="admin@example.test", is_admin=True)
    sign_in(client, "admin@example.test")
    assert client.get("/admin/logs").status_code == 200  # the page takes the cookie
    refused = client.get("/api/v1/admin/logs")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    tokens_only = app.test_client(use_cookies=False)
    response = tokens_only.get("/api/v1/admin/logs", headers=auth)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    # A non-admin's token with an admin's cookie is still a non-admin.
    _user, user_auth = user_with_token(committed)
    assert client.get("/api/v1/admin/logs", headers=user_auth).status_code == 403


def test_ready_shows_anonymous_remote_callers_only_the_status(app, client, committed):
    remote = app.test_client()
    remote.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    body = remote.get("/health/ready").get_json()
    assert body == {"status": "ready"}
    local = client.get("/health/ready").get_json()
    assert local["pool"] and local["checks"]["database"]["ok"] and "database" in local
    _admin, auth = user_with_token(committed, is_admin=True)
    admin_remote = app.test_client(use_cookies=False)
    admin_remote.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    assert "pool" in admin_remote.get("/health/ready", headers=auth).get_json()
    _user, user_auth = user_with_token(committed)
    assert admin_remote.get("/health/ready", headers=user_auth).get_json() == {
        "status": "ready"}


def test_ready_never_shows_credentials(test_settings):
    settings = dict(test_settings,
                    DATABASE_URL="postgresql://scott:t1ger-secret@127.0.0.1:9/nothing")
    application = create_app(TestConfig, role="web", **settings)
    try:
        response = application.test_client().get("/health/ready")
        assert response.status_code == 503
        text = response.get_data(as_text=True)
        assert "t1ger-secret" not in text and "127.0.0.1" in text
    finally:
        with application.app_context():
            db.engine.dispose()


@pytest.fixture
def failing_app(app, test_settings):
    """An app with one route that always fails, and a 1-second repeat window."""
    application = create_app(TestConfig, role="web",
                             **{**test_settings, "ERROR_LOG_REPEAT_SECONDS": 1})
    marker = uuid.uuid4().hex

    @application.get("/boom/<int:n>")
    def boom(n: int):
        raise ValueError(f"boom {marker} {n}")

    yield application, marker
    log_filter = next(f for f in __import__("logging").getLogger(THROTTLED_LOGGERS[0]).filters
                      if isinstance(f, RepeatedErrorFilter))
    log_filter.window = float(app.config["ERROR_LOG_REPEAT_SECONDS"])
    with application.app_context():
        db.engine.dispose()
    app.extensions["celery"].set_default()


def test_identical_anonymous_500s_do_not_flood_system_logs(failing_app, committed):
    application, marker = failing_app
    client = application.test_client()
    for n in range(30):
        response = client.get(f"/boom/{n}")
        assert response.status_code == 500
        assert response.get_json() is None  # a page, not a traceback
        assert marker not in response.get_data(as_text=True)
    time.sleep(1.2)  # the window ends: the next one is logged with the count
    client.get("/boom/99")
    assert installed_handler().flush_now()
    rows = committed.scalars(sa.select(SystemLog).where(
        SystemLog.message.contains("unhandled error on GET /boom"))).all()
    assert len(rows) == 2, [r.message[:120] for r in rows]
    assert "29 more times" in rows[-1].message or "29 more times" in rows[0].message
