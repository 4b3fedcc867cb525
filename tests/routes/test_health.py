"""Liveness and readiness against the real database and a closed port."""

from __future__ import annotations

from app import create_app
from config import TestConfig
from tests.conftest import free_port


def test_liveness(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_when_database_and_broker_answer(app, client):
    response = client.get("/health/ready")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert body["checks"]["broker"]["ok"] is True
    pooled = app.config.get("DB_POOLER") != "transaction"  # NullPool behind PgBouncer
    pools = body["pool"]  # every engine of this process (tests build a few of their own)
    assert any(p["pool"] == ("QueuePool" if pooled else "NullPool") for p in pools), pools
    assert all(("checkedout" in p) == (p["pool"] == "QueuePool") for p in pools), pools


def test_not_ready_when_database_port_is_closed(test_settings):
    port = free_port()
    settings = dict(test_settings,
                    DATABASE_URL=f"postgresql://postgres:secret@127.0.0.1:{port}/nothing")
    app = create_app(TestConfig, role="web", **settings)
    try:
        response = app.test_client().get("/health/ready")
        body = response.get_json()
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert body["checks"]["database"]["ok"] is False
        assert "database:" in body["reason"]
        assert "secret" not in response.get_data(as_text=True)
    finally:
        with app.app_context():
            from models import db

            db.engine.dispose()


def test_not_ready_when_broker_is_down(test_settings):
    port = free_port()
    app = create_app(TestConfig, role="web",
                     **dict(test_settings, CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0"))
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["broker"]["ok"] is False
    assert "broker:" in response.get_json()["reason"]
