"""Test only: a worker remote-control command that leaks a database session the way a
crashed thread would. Loaded into a test worker with ``celery worker --include
tests.ops.leak_injector``; never part of the application."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import sqlalchemy as sa
from celery.worker.control import control_command

log = logging.getLogger(__name__)
_LEAKED: list[Any] = []


def leak_session_from_dead_thread(flask_app: Any) -> dict[str, Any]:
    """Open and register a session on a thread that then exits without closing it, as a
    crashed thread would. The session is kept referenced so only ``reap_stale`` can close
    it."""
    from sqlalchemy.orm import sessionmaker

    from models import db
    from utils.db_session_manager import SESSION_MANAGER

    holder: dict[str, Any] = {}
    # Logged before the thread starts: a thread started after it exits (the log flusher,
    # lazily) could otherwise reuse its ident and hide it from ``reap_stale``.
    log.warning("test support: leaving a database session open on a thread that will exit")

    def leak() -> None:
        with flask_app.app_context():
            session = sessionmaker(bind=db.engine)()
            SESSION_MANAGER.register(session, scope="thread", owner="debug-leak")
            session.execute(sa.text("SELECT 1"))
            holder["session"] = session

    thread = threading.Thread(target=leak, name="debug-leak")
    thread.start()
    thread.join(10)
    if "session" not in holder:
        return {"error": "the leaking thread did not open its session"}
    _LEAKED.append(holder["session"])
    return {"ok": "leaked", "pid": os.getpid(), "thread": thread.name}


@control_command(name="debug_leak_db_session")
def debug_leak_db_session(state: Any) -> dict:
    """Leave a session opened by a thread that has exited."""
    return leak_session_from_dead_thread(state.app.flask_app)
