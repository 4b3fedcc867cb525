"""Alerts (utils.alerts) against a real HTTP receiver on 127.0.0.1: posted as JSON from a
background thread, rate-limited, bounded by a timeout, recorded and listed on /admin."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from models import SystemLog
from tests.ops.helpers import bearer
from utils import alerts
from utils.alerts import SENDER, send_alert
from utils.db_error_handler import raise_alert


class Receiver:
    """A webhook receiver: records each JSON body; can be held (answers after ``release``)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.arrived.set()
                receiver.release.wait(10)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@contextmanager
def settings(app, **values):
    old = {key: app.config.get(key) for key in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(old)


def stored(committed, logger: str = alerts.ALERT_LOGGER) -> list[SystemLog]:
    committed.rollback()
    return list(committed.scalars(sa.select(SystemLog).where(SystemLog.logger == logger)
                                  .order_by(SystemLog.id)))


def test_an_alert_is_posted_off_the_callers_thread_and_recorded(app, committed, receiver):
    receiver.release.clear()  # the receiver holds the request until we let it go
    marker = uuid.uuid4().hex
    with app.app_context(), settings(app, ALERT_WEBHOOK_URL=receiver.url):
        send_alert("site_failed", f"site {marker} failed", {"site_id": 7})
        # send_alert returned while the POST is still being held by the receiver.
        assert receiver.arrived.wait(10)
        assert not receiver.release.is_set()
        receiver.release.set()
        assert SENDER.flush()
    body = receiver.bodies[0]
    assert body["kind"] == "site_failed"
    assert body["message"] == f"site {marker} failed"
    assert body["details"] == {"site_id": 7}
    assert {"text", "role", "pid", "hostname", "at"} <= set(body)
    rows = stored(committed)
    assert [row.message for row in rows] == [f"[site_failed] site {marker} failed"]
    assert rows[0].level == "CRITICAL"
    assert rows[0].data["delivery"] == "sent: HTTP 204"


def test_identical_alerts_within_the_window_are_sent_once(app, committed, receiver):
    with app.app_context(), settings(app, ALERT_WEBHOOK_URL=receiver.url):
        for _ in range(5):
            send_alert("database", "pool exhausted", {"n": 1})
        send_alert("database", "another message", {})
        assert SENDER.flush()
    assert [body["message"] for body in receiver.bodies] == ["pool exhausted",
                                                             "another message"]
    outcomes = [r["outcome"] for r in SENDER.results[-6:]]
    assert outcomes.count("rate_limited") == 4
    # Another process (empty in-memory memory) is rate-limited by the recorded row.
    SENDER._sent.clear()
    with app.app_context(), settings(app, ALERT_WEBHOOK_URL=receiver.url):
        send_alert("database", "pool exhausted", {"n": 2})
        assert SENDER.flush()
    assert len(receiver.bodies) == 2
    assert len(stored(committed)) == 2


def test_a_receiver_that_never_answers_costs_one_timeout(app, committed, receiver):
    receiver.release.clear()
    with app.app_context(), settings(app, ALERT_WEBHOOK_URL=receiver.url,
                                     ALERT_TIMEOUT_SECONDS=0.5):
        send_alert("database", f"slow receiver {uuid.uuid4().hex}", {})
        assert SENDER.flush(15)
    receiver.release.set()
    assert stored(committed)[0].data["delivery"] == "failed: ReadTimeout"


def test_a_critical_database_error_alerts(app, committed, receiver):
    with app.app_context(), settings(app, ALERT_WEBHOOK_URL=receiver.url):
        raise_alert("ops.save: retryable database error persisted after 3 retries: boom")
        assert SENDER.flush()
    assert receiver.bodies[0]["kind"] == "database"
    assert "persisted after 3 retries" in receiver.bodies[0]["message"]


def test_process_restarts_and_alerts_are_listed_on_admin(app, client, committed, receiver):
    with app.app_context(), settings(app, ALERT_WEBHOOK_URL=receiver.url):
        message = alerts.record_process_event("EXITED", "worker", pid=4242, expected=False,
                                              from_state="RUNNING")
        assert SENDER.flush()
    assert message == "worker (pid 4242) died unexpectedly and was restarted"
    assert receiver.bodies[0]["kind"] == "process_restart"
    assert [row.message for row in stored(committed, alerts.PROCESS_LOGGER)] == [message]
    headers = bearer(committed, admin=True)
    page = client.get("/admin", headers=headers).get_data(as_text=True)
    assert message in page
    assert "[process_restart] " + message in page
    response = app.test_client().get("/api/v1/admin/alerts", headers=headers)
    body = response.get_json()
    assert response.status_code == 200, response.get_data(as_text=True)
    assert body["process_events"][0]["message"] == message
    assert body["alerts"][0]["kind"] == "process_restart"
