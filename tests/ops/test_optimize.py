"""``maintenance.optimize_database`` on both backends: per-table durations recorded, VACUUM
never inside a transaction, and two overlapping runs do the work once (one is skipped)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from models import MaintenanceRun, db
from models.base import utcnow
from tasks.maintenance_tasks import OPTIMIZE, application_tables, run_optimize
from utils.database_access import get_sync_session
from utils.db_operations import SystemLogOps
from utils.maintenance import SKIPPED_REASON, maintenance_engine, maintenance_lock


def run_task(app) -> dict:
    return app.extensions["celery"].tasks[OPTIMIZE].apply().get()


@pytest.fixture
def maintenance_statements():
    """Every VACUUM/ANALYZE/PRAGMA optimize executed, with whether a transaction was open."""
    seen: list[tuple[str, bool]] = []

    def record(connection, _cursor, statement, _params, _context, _many):
        words = statement.split()
        if words and words[0].upper() in ("VACUUM", "ANALYZE") or "optimize" in statement:
            dbapi = connection.connection.dbapi_connection
            if connection.dialect.name == "postgresql":
                import psycopg2.extensions as ext

                in_tx = (not dbapi.autocommit
                         or dbapi.get_transaction_status() != ext.TRANSACTION_STATUS_IDLE)
            else:
                in_tx = dbapi.in_transaction
            seen.append((statement.strip(), in_tx))

    event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sa.Engine, "before_cursor_execute", record)


def test_optimize_records_per_table_durations_outside_transactions(
        app, committed, backend, maintenance_statements):
    tables = application_tables()
    before = vacuum_counts(committed) if backend == "postgresql" else {}
    result = run_task(app)
    assert result["status"] == "ok"
    assert result["backend"] == backend
    assert set(result["tables"]) == set(tables)
    assert all(isinstance(ms, int) and ms >= 0 for ms in result["tables"].values())
    run = committed.scalar(sa.select(MaintenanceRun).where(MaintenanceRun.id == result["run_id"]))
    assert (run.task, run.status) == (OPTIMIZE, "ok")
    assert run.details["tables"] == result["tables"]
    assert run.duration_ms >= 0
    statements = [statement for statement, _ in maintenance_statements]
    keyword = "VACUUM (ANALYZE)" if backend == "postgresql" else "ANALYZE"
    for table in tables:
        assert any(s.startswith(keyword) and table in s for s in statements), (table, statements)
    assert maintenance_statements and not any(in_tx for _, in_tx in maintenance_statements)
    if backend == "postgresql":
        after = vacuum_counts(committed)
        assert all(after[table] > before.get(table, 0) for table in tables), (before, after)


def vacuum_counts(session) -> dict[str, int]:
    session.rollback()
    session.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    rows = session.execute(sa.text(
        "SELECT relname, vacuum_count FROM pg_stat_user_tables")).all()
    session.rollback()
    return {name: count for name, count in rows}


def test_two_overlapping_runs_do_the_work_once(app, committed):
    results: dict[str, dict] = {}
    errors: list[BaseException] = []
    first_holds_lock = threading.Event()
    second_done = threading.Event()

    def hold_until_second_is_done() -> None:
        first_holds_lock.set()
        assert second_done.wait(60), "the second run never finished"

    def run(name: str, on_locked) -> None:
        try:
            with app.app_context(), get_sync_session(db.engine, owner=name) as session:
                results[name] = run_optimize(session, app.config, on_locked)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            if name == "second":
                second_done.set()

    first = threading.Thread(target=run, args=("first", hold_until_second_is_done))
    first.start()
    assert first_holds_lock.wait(30)
    second = threading.Thread(target=run, args=("second", None))
    second.start()
    second.join(60)
    first.join(60)
    assert not errors, errors
    assert results["second"]["status"] == "skipped"
    assert results["second"]["reason"] == SKIPPED_REASON
    assert results["first"]["status"] == "ok"
    assert set(results["first"]["tables"]) == set(application_tables())
    runs = {r.id: r for r in committed.scalars(sa.select(MaintenanceRun).where(
        MaintenanceRun.task == OPTIMIZE))}
    assert runs[results["second"]["run_id"]].status == "skipped"
    assert runs[results["second"]["run_id"]].details["reason"] == "another run holds the lock"
    assert runs[results["first"]["run_id"]].status == "ok"


def test_task_is_skipped_while_another_run_holds_the_lock(app, committed):
    engine = maintenance_engine(app.config, "worker")
    try:
        with maintenance_lock(engine) as locked:
            assert locked
            skipped = run_task(app)
        assert skipped["status"] == "skipped"
        done = run_task(app)  # the lock is released with its transaction (or file lock)
        assert done["status"] == "ok"
    finally:
        engine.dispose()


def test_sqlite_vacuums_when_the_free_list_is_worth_it(app, committed, backend):
    if backend != "sqlite":
        pytest.skip("SQLite only (PostgreSQL always runs VACUUM (ANALYZE))")
    SystemLogOps.add_many(committed, [
        {"level": "WARNING", "logger": "bulk", "message": "x" * 2000, "role": "test", "pid": 0,
         "created_at": utcnow()} for _ in range(1500)])
    committed.commit()
    committed.execute(sa.text("DELETE FROM system_logs WHERE logger = 'bulk'"))
    committed.commit()
    committed.close()
    result = run_task(app)
    assert result["status"] == "ok"
    assert result["vacuumed"] is True
    assert result["freelist_before"] >= 500
    assert result["freelist_after"] < result["freelist_before"]
    assert result["steps"]["vacuum"] >= 0
    again = run_task(app)  # nothing left to reclaim: no VACUUM this time
    assert again["vacuumed"] is False
