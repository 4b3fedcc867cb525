"""``maintenance.prune_retention``: old system logs and old events of finished batches go;
running batches' timelines and recent rows stay; the run is recorded."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from models import BatchEvent, MaintenanceRun, SystemLog
from models.base import utcnow
from tasks.maintenance_tasks import RETENTION
from tests.factories import BatchFactory


def test_prunes_old_logs_and_finished_batches_events(app, committed):
    now = utcnow()
    log_days, event_days = app.config["LOG_RETENTION_DAYS"], app.config["EVENT_RETENTION_DAYS"]
    old_log = SystemLog(level="WARNING", logger="t", message="old", role="web", pid=1,
                        created_at=now - timedelta(days=log_days + 1))
    new_log = SystemLog(level="WARNING", logger="t", message="new", role="web", pid=1,
                        created_at=now - timedelta(days=log_days - 1))
    finished = BatchFactory(status="completed")
    running = BatchFactory(status="running")
    old_finished = BatchEvent(batch_id=finished.id, kind="x", message="old finished",
                              created_at=now - timedelta(days=event_days + 1))
    new_finished = BatchEvent(batch_id=finished.id, kind="x", message="new finished",
                              created_at=now - timedelta(days=event_days - 1))
    old_running = BatchEvent(batch_id=running.id, kind="x", message="old running",
                             created_at=now - timedelta(days=event_days + 1))
    ancient_run = MaintenanceRun(task="maintenance.x", status="ok",
                                 started_at=now - timedelta(days=max(log_days, 7) + 1))
    committed.add_all([old_log, new_log, old_finished, new_finished, old_running, ancient_run])
    committed.commit()

    result = app.extensions["celery"].tasks[RETENTION].apply().get()

    assert result["system_logs"] == 1
    assert result["batch_events"] == 1
    assert result["maintenance_runs"] == 1
    committed.expire_all()
    messages = set(committed.scalars(sa.select(SystemLog.message)))
    assert "old" not in messages and "new" in messages
    events = set(committed.scalars(sa.select(BatchEvent.message)))
    assert events == {"new finished", "old running"}
    run = committed.scalar(sa.select(MaintenanceRun).where(MaintenanceRun.id == result["run_id"]))
    assert (run.task, run.status) == (RETENTION, "ok")
    assert run.details["batch_events"] == 1
    assert run.details["log_retention_days"] == log_days
