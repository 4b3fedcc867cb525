"""Behind PgBouncer in transaction mode: the optimize lock (a transaction-level advisory
lock) still keeps two runs apart, VACUUM runs, and the app's engine uses the pooler
settings when the suite runs with TEST_PGBOUNCER=1."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from models import db
from tasks.maintenance_tasks import application_tables
from tests.pgbouncer import pgbouncer_binary, start_pgbouncer
from utils.maintenance import SKIPPED_REASON, maintenance_engine, optimize


@pytest.fixture
def bouncer(postgres_only, pgbouncer, test_settings):
    """The session's PgBouncer when TEST_PGBOUNCER=1, else one started for this test."""
    if pgbouncer is not None:
        yield pgbouncer
        return
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed")
    started = start_pgbouncer(test_settings["DATABASE_URL"])
    try:
        yield started
    finally:
        started.stop()


def test_optimize_lock_holds_through_a_transaction_pooler(app, committed, bouncer,
                                                          test_settings):
    settings = dict(app.config, DATABASE_URL=bouncer.url_for(test_settings["DATABASE_URL"]),
                    DB_POOLER="transaction", MAINTENANCE_DATABASE_URL="")
    tables = application_tables()
    first_engine = maintenance_engine(settings, "worker")
    second_engine = maintenance_engine(settings, "worker")
    inner: dict = {}
    try:
        # PgBouncer refuses an ``options`` startup parameter: connecting at all proves the
        # pooler settings are used.
        assert first_engine.url.port == bouncer.port

        def second_run() -> None:
            # Several server connections of the pool are in use here; the lock must hold
            # whichever one this run's lock attempt lands on.
            inner.update(optimize(second_engine, tables))

        outer = optimize(first_engine, tables, on_locked=second_run)
    finally:
        first_engine.dispose()
        second_engine.dispose()
    assert inner == {"status": "skipped", "reason": SKIPPED_REASON, "backend": "postgresql",
                     "tables": {}}
    assert outer["status"] == "ok"
    assert set(outer["tables"]) == set(tables)


def test_suite_engine_goes_through_pgbouncer_when_asked(app, pgbouncer):
    if pgbouncer is None:
        pytest.skip("runs with TEST_PGBOUNCER=1")
    with app.app_context():
        engine = db.engine
        assert engine.url.port == pgbouncer.port
        assert isinstance(engine.pool, NullPool)
        with engine.connect() as connection:
            name = connection.scalar(sa.text("SELECT current_setting('application_name')"))
    assert name == "rivalscope-web"
