"""``maintenance.cleanup_stale_db_sessions`` in this process: dead threads' sessions are
reaped; on PostgreSQL this application's idle-in-transaction backends are terminated and
nobody else's; snapshots of silent processes are pruned; every run is recorded."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from models import MaintenanceRun, ProcessSnapshot, db
from models.base import utcnow
from tasks.maintenance_tasks import CLEANUP
from utils.database_access import normalize_database_url
from utils.db_session_manager import SESSION_MANAGER
from utils.maintenance import maintenance_engine, maintenance_lock


def run_cleanup(app, **kwargs) -> dict:
    kwargs.setdefault("reply_timeout", 0.5)
    return app.extensions["celery"].tasks[CLEANUP].apply(kwargs=kwargs).get()


def libpq_dsn(url: str) -> str:
    return make_url(normalize_database_url(url)).set(drivername="postgresql").render_as_string(
        hide_password=False)


def idle_in_transaction_connection(url: str, application_name: str):
    """A raw connection left idle inside a transaction; returns it and its backend pid."""
    connection = psycopg2.connect(libpq_dsn(url), application_name=application_name)
    cursor = connection.cursor()
    cursor.execute("SELECT pg_backend_pid()")
    return connection, cursor.fetchone()[0]


@pytest.mark.no_pg_guard
def test_terminates_only_this_applications_idle_transactions(app, committed, postgres_only,
                                                             test_settings):
    url = test_settings["DATABASE_URL"]
    ours, our_pid = idle_in_transaction_connection(url, "rivalscope-leaktest")
    other, other_pid = idle_in_transaction_connection(url, "other-app")
    young = None
    lock_engine = maintenance_engine(app.config, "worker")
    try:
        with maintenance_lock(lock_engine) as locked:  # a running optimize's lock holder
            assert locked
            holder_pid = None
            with lock_engine.connect() as probe:
                holder_pid = probe.scalar(sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid <> pg_backend_pid() LIMIT 1"))
            time.sleep(1.5)
            young, young_pid = idle_in_transaction_connection(url, "rivalscope-young")
            result = run_cleanup(app, idle_seconds=1)
        listed = {entry["pid"]: entry for entry in result["terminated"]}
        assert listed[our_pid]["terminated"] is True
        assert listed[our_pid]["application_name"] == "rivalscope-leaktest"
        assert other_pid not in listed
        assert young_pid not in listed  # idle for less than the threshold
        assert holder_pid is not None and holder_pid not in listed
        with pytest.raises(psycopg2.Error):
            ours.cursor().execute("SELECT 1")
        for survivor in (other, young):  # still usable
            survivor.cursor().execute("SELECT 1")
            survivor.rollback()
    finally:
        lock_engine.dispose()
        for connection in (ours, other, young):
            if connection is None:
                continue
            try:
                connection.close()
            except psycopg2.Error:
                pass
    run = committed.scalar(sa.select(MaintenanceRun).where(MaintenanceRun.id == result["run_id"]))
    assert run.task == CLEANUP and run.status == "ok"
    assert [entry["pid"] for entry in run.details["terminated"]] == [our_pid]
    assert run.duration_ms is not None and run.duration_ms >= 0
    assert run.finished_at >= run.started_at


def test_reaps_dead_threads_sessions_of_this_process(app, committed):
    holder = {}

    def leak() -> None:
        with app.app_context():
            session = sessionmaker(bind=db.engine)()
            SESSION_MANAGER.register(session, scope="thread", owner="dead-thread")
            session.execute(sa.text("SELECT 1"))
            holder["session"] = session

    thread = threading.Thread(target=leak)
    thread.start()
    thread.join(10)
    assert SESSION_MANAGER.checked_out() == 1
    result = run_cleanup(app)
    assert result["this_process"]["reaped"] == 1
    assert result["this_process"]["reaped_sessions"][0]["owner"] == "dead-thread"
    assert SESSION_MANAGER.open_sessions() == []
    assert SESSION_MANAGER.checked_out() == 0
    assert result["status"] == "ok"


def test_prunes_snapshots_of_processes_that_stopped_reporting(app, committed):
    now = utcnow()
    committed.add_all([
        ProcessSnapshot(hostname="gone", pid=1, role="worker", data={"pid": 1},
                        updated_at=now - timedelta(hours=2)),
        ProcessSnapshot(hostname="alive", pid=2, role="worker", data={"pid": 2},
                        updated_at=now),
    ])
    committed.commit()
    result = run_cleanup(app)
    assert result["snapshots_pruned"] == 1
    committed.expire_all()
    hosts = set(committed.scalars(sa.select(ProcessSnapshot.hostname)))
    assert "gone" not in hosts and "alive" in hosts
