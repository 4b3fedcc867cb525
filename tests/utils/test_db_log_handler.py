"""The database log handler: batched, bounded, never raising or recursing when the database
is down, storing what was kept once it is back; ``emit`` never writes on the caller's
thread."""

from __future__ import annotations

import logging
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from models import SystemLog
from tests.conftest import free_port
from utils.background_db import BackgroundDatabase
from utils.db_log_handler import DatabaseLogHandler, install_db_log_handler


@pytest.fixture
def test_logger():
    """A logger of its own (no propagation), so only the handler under test sees it."""
    logger = logging.getLogger(f"rivalscope.test.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.handlers.clear()


def unreachable_database(app) -> BackgroundDatabase:
    """A closed port on 127.0.0.1 (the app's settings otherwise, e.g. DB_POOLER)."""
    return BackgroundDatabase(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
                              app.config, role="web")


def stored(session, marker: str) -> list[str]:
    session.rollback()
    return list(session.scalars(sa.select(SystemLog.message).where(
        SystemLog.message.contains(marker)).order_by(SystemLog.id)))


def test_database_down_neither_raises_nor_recurses_then_recovers(
        app, committed, test_settings, test_logger):
    marker = uuid.uuid4().hex
    database = unreachable_database(app)
    handler = DatabaseLogHandler(database, role="web", flush_interval=0.05)
    root = logging.getLogger()
    root.addHandler(handler)  # as installed: on the root logger
    test_logger.addHandler(handler)
    # Anything logged while connecting happens on the flusher thread: it must be ignored,
    # not queued (queuing it would make every failed flush produce more records to flush).
    chatter = logging.getLogger(f"rivalscope.test.chatter.{marker[:8]}")
    # Only the handler under test may see it: through the root logger the app's own handler
    # would store it too whenever its flusher happens to run before ``stored`` reads.
    chatter.propagate = False
    chatter.addHandler(handler)

    def chatty_connect(*_args, **_kwargs):
        chatter.warning("connecting from the flusher %s", marker)

    engine = database.engine()
    event.listen(engine, "do_connect", chatty_connect)
    try:
        test_logger.warning("during outage %s one", marker)
        test_logger.error("during outage %s two", marker)
        assert handler.flush_now(timeout=10) is False
        assert handler.flush_now(timeout=10) is False
        assert handler.failures >= 2
        assert handler.pending() == 2  # kept for later, nothing added by the failed flushes
        assert "OperationalError" in handler.last_error

        database.retarget(test_settings["DATABASE_URL"])  # "recovery"
        test_logger.warning("after recovery %s three", marker)
        assert handler.flush_now(timeout=10) is True
    finally:
        root.removeHandler(handler)
        chatter.removeHandler(handler)
        handler.close()
        database.dispose()
    assert stored(committed, marker) == [f"during outage {marker} one",
                                         f"during outage {marker} two",
                                         f"after recovery {marker} three"]
    assert handler.dropped == 0 and handler.written == 3


def test_bounded_queue_drops_the_oldest_and_counts_them(app, committed, test_settings,
                                                        test_logger):
    marker = uuid.uuid4().hex
    database = unreachable_database(app)
    handler = DatabaseLogHandler(database, role="web", capacity=3, flush_interval=0.05)
    test_logger.addHandler(handler)
    try:
        for number in range(1, 6):
            test_logger.warning("record %s %d", marker, number)
        handler.flush_now(timeout=10)
        assert handler.dropped == 2
        assert handler.pending() == 3
        database.retarget(test_settings["DATABASE_URL"])
        assert handler.flush_now(timeout=10) is True
    finally:
        handler.close()
        database.dispose()
    assert stored(committed, marker) == [f"record {marker} {n}" for n in (3, 4, 5)]


def test_emit_only_queues_and_below_warning_is_ignored(app, committed, test_settings,
                                                       test_logger):
    marker = uuid.uuid4().hex
    database = BackgroundDatabase(test_settings["DATABASE_URL"], app.config, "web")
    handler = DatabaseLogHandler(database, role="worker", flush_interval=3600)
    test_logger.addHandler(handler)
    try:
        test_logger.info("not stored %s", marker)
        try:
            raise ValueError("boom")
        except ValueError:
            test_logger.exception("failed %s", marker)
        assert handler.pending() == 1
        assert stored(committed, marker) == []  # nothing written on this thread
        assert handler.flush_now(timeout=10) is True
    finally:
        handler.close()
        database.dispose()
    committed.rollback()
    row = committed.scalar(sa.select(SystemLog).where(SystemLog.message.contains(marker)))
    assert (row.level, row.role, row.logger) == ("ERROR", "worker", test_logger.name)
    assert "ValueError: boom" in row.message  # the traceback is kept
    assert row.data["exception"] == "ValueError"


def test_create_app_installs_one_handler_on_the_root_logger(app):
    handler = install_db_log_handler(app)
    installed = [h for h in logging.getLogger().handlers if isinstance(h, DatabaseLogHandler)]
    assert installed == [handler]
    assert handler.role == app.config["ROLE"]
    assert install_db_log_handler(app) is handler  # idempotent for the same app settings
