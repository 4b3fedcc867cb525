"""Admin pages and their JSON twins: admins only (403 for others, 401 for anonymous API
calls), logs with filters, error stats, maintenance history with durations, queue depth
and the Flower link."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from models import SystemLog, User
from models.base import utcnow
from tasks.maintenance_tasks import RETENTION
from tests.ops.helpers import bearer
from utils.db_error_handler import record_error
from utils.maintenance import queue_depth

PAGES = ["/admin", "/admin/db", "/admin/errors", "/admin/logs", "/admin/maintenance"]
JSON = ["/api/v1/admin/db", "/api/v1/admin/errors", "/api/v1/admin/logs",
        "/api/v1/admin/maintenance"]


@pytest.fixture
def client(app):
    """Bearer-token requests carry no cookie session (as API clients do)."""
    return app.test_client(use_cookies=False)


def test_non_admins_get_403_and_anonymous_api_calls_401(client, committed):
    headers = bearer(committed, admin=False)
    for path in PAGES + JSON:
        response = client.get(path, headers=headers)
        assert response.status_code == 403, path
    for path in JSON:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/v1/admin/db", headers=headers).get_json()["error"]["code"] == \
        "forbidden"
    anonymous_page = client.get("/admin/db")
    assert anonymous_page.status_code == 302
    assert "/login" in anonymous_page.headers["Location"]


def test_admin_pages_render(client, committed):
    headers = bearer(committed, admin=True)
    for path in PAGES:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, path
        assert "<main" in response.get_data(as_text=True)
    overview = client.get("/admin", headers=headers).get_data(as_text=True)
    assert "http://127.0.0.1:5555/" in overview  # the Flower link (FLOWER_URL)
    assert 'data-figure="queue-depth"' in overview


def test_logs_filter_by_level_and_text(client, committed):
    headers = bearer(committed, admin=True)
    marker = uuid.uuid4().hex
    committed.add_all([
        SystemLog(level="WARNING", logger="a", message=f"disk {marker} low", role="web",
                  pid=1, created_at=utcnow()),
        SystemLog(level="ERROR", logger="b", message=f"lost {marker} <script>", role="worker",
                  pid=2, created_at=utcnow()),
        SystemLog(level="ERROR", logger="c", message="unrelated", role="worker", pid=3,
                  created_at=utcnow()),
    ])
    committed.commit()
    body = client.get(f"/api/v1/admin/logs?q={marker}", headers=headers).get_json()
    assert [item["logger"] for item in body["items"]] == ["b", "a"]  # newest first
    body = client.get(f"/api/v1/admin/logs?q={marker}&level=error", headers=headers).get_json()
    assert [item["message"] for item in body["items"]] == [f"lost {marker} <script>"]
    assert body["filters"] == {"level": "ERROR", "q": marker}
    bad = client.get("/api/v1/admin/logs?level=LOUD", headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "invalid_filter"
    page = client.get(f"/admin/logs?q={marker}&level=ERROR", headers=headers)
    html = page.get_data(as_text=True)
    assert f"lost {marker} &lt;script&gt;" in html  # escaped
    assert "disk" not in html


def test_maintenance_history_with_durations(app, client, committed):
    headers = bearer(committed, admin=True)
    result = app.extensions["celery"].tasks[RETENTION].apply().get()
    body = client.get("/api/v1/admin/maintenance", headers=headers).get_json()
    item = next(i for i in body["items"] if i["id"] == result["run_id"])
    assert item["task"] == RETENTION and item["status"] == "ok"
    assert isinstance(item["duration_ms"], int) and item["duration_ms"] >= 0
    assert item["started_at"] and item["finished_at"]
    assert item["details"]["system_logs"] == result["system_logs"]
    html = client.get("/admin/maintenance", headers=headers).get_data(as_text=True)
    assert f'data-run="{result["run_id"]}"' in html


def test_error_stats_of_this_process(client, committed):
    headers = bearer(committed, admin=True)
    email = committed.scalar(sa.select(User.email))
    try:
        committed.add(User(email=email, password_hash="x"))
        committed.flush()
    except IntegrityError as error:
        committed.rollback()
        record_error(error, "test duplicate user")
    else:
        pytest.fail("the duplicate email was accepted")
    body = client.get("/api/v1/admin/errors", headers=headers).get_json()
    assert body["this_process"]["counts"] == {"integrity": 1}
    assert body["this_process"]["recent"][-1]["operation"] == "test duplicate user"
    html = client.get("/admin/errors", headers=headers).get_data(as_text=True)
    assert "test duplicate user" in html


def test_queue_depth_counts_waiting_messages(app):
    celery = app.extensions["celery"]
    queue = f"depth-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    assert queue_depth(celery, queue)["depth"] == 0
    for _ in range(3):
        celery.send_task("maintenance.publish_snapshot", queue=queue)
    try:
        depth = queue_depth(celery, queue)
        assert depth["depth"] == 3, depth
        assert depth["transport"] in ("redis", "filesystem")
    finally:
        drain(celery, queue)


def drain(celery, queue: str) -> None:
    with celery.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)
