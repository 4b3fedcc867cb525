"""Request scope under a real threaded server: no shared sessions, no leftover transactions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
from flask import Blueprint, jsonify
from werkzeug.serving import make_server

from app import create_app
from config import TestConfig
from models import User, db
from utils.db_session_manager import SESSION_MANAGER

CONCURRENT = 8


@pytest.fixture
def served(test_settings, app):
    """A second app instance with test-only views, served by a threaded werkzeug server."""
    application = create_app(TestConfig, role="web", **test_settings)
    probe = Blueprint("probe", __name__)
    barrier = threading.Barrier(CONCURRENT, timeout=20)

    @probe.get("/_probe/session")
    def session_identity():
        session = db.session()
        session.execute(sa.text("SELECT 1"))
        barrier.wait()  # every request holds its session at the same moment
        return jsonify(session=id(session), thread=threading.get_ident(),
                       registered=[s["owner"] for s in SESSION_MANAGER.open_sessions()])

    @probe.get("/_probe/raise")
    def raise_after_write():
        db.session.add(User(email="never@example.test", password_hash="x"))
        db.session.flush()  # a transaction is open on a connection now
        raise RuntimeError("view failed")

    application.register_blueprint(probe)
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    with application.app_context():
        db.engine.dispose()


def test_concurrent_requests_never_share_a_session(served):
    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{served}/_probe/session", timeout=30)
                                .json(), range(CONCURRENT)))
    assert len({a["session"] for a in answers}) == CONCURRENT
    assert len({a["thread"] for a in answers}) == CONCURRENT
    assert all("probe.session_identity" in a["registered"] for a in answers)


def test_view_that_raises_leaves_no_transaction(served, engine):
    response = httpx.get(f"{served}/_probe/raise", timeout=30)
    assert response.status_code == 500
    assert "view failed" not in response.text
    assert SESSION_MANAGER.open_sessions() == []
    assert SESSION_MANAGER.checked_out() == 0
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(User)).scalar()
    assert count == 0
