"""Maintenance tasks run by workers on beat's schedule (the worker remote-control commands
they use live in ``utils.worker_control``).

- ``maintenance.cleanup_stale_db_sessions`` (every 5 min): every worker process reaps its
  own session registry (remote-control broadcast), this process too; on PostgreSQL this
  application's backends idle in a transaction too long are terminated; snapshots of
  processes that stopped reporting are pruned; the embedded broker's dead event queues and
  expired messages are pruned (``utils.broker.prune``).
- ``maintenance.optimize_database`` (nightly): VACUUM/ANALYZE, never two runs at once.
- ``maintenance.prune_retention`` (nightly): old system logs and finished batches' events.
Every run is recorded as a ``MaintenanceRun`` with what it did and how long it took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import db
from utils import maintenance
from utils.broker import prune_celery_broker
from utils.db_operations import MaintenanceOps, RetentionOps, SnapshotOps, SystemLogOps
from utils.db_session_manager import SESSION_MANAGER
from utils.error_text import error_line
from utils.snapshots import collect_stats
from utils.worker_control import reap_summary

log = logging.getLogger(__name__)

CLEANUP = "maintenance.cleanup_stale_db_sessions"
OPTIMIZE = "maintenance.optimize_database"
RETENTION = "maintenance.prune_retention"


@shared_task(name="maintenance.publish_snapshot", bind=True)
def publish_snapshot(self) -> dict:
    """Store this worker process's session and pool figures for the admin pages."""
    stats = collect_stats()
    SnapshotOps.publish(self.session, stats)
    return {"pid": stats["pid"], "open_sessions": stats["open_sessions"]}


def snapshot_stale_after(config: Mapping[str, Any]) -> timedelta:
    """A process whose snapshot is older than this stopped reporting."""
    return timedelta(seconds=max(300.0, 10 * float(config["SNAPSHOT_INTERVAL_SECONDS"])))


@shared_task(name=CLEANUP, bind=True)
def cleanup_stale_db_sessions(self, max_age: float | None = None,
                              idle_seconds: float | None = None,
                              reply_timeout: float | None = None) -> dict:
    """Reap dead threads' sessions in every process, terminate this application's backends
    idle in a transaction, prune silent processes' snapshots; record the run."""
    config = current_app.config
    started = time.time()
    max_age = float(config["STALE_SESSION_SECONDS"] if max_age is None else max_age)
    idle_seconds = float(config["IDLE_IN_TX_TERMINATE_SECONDS"] if idle_seconds is None
                         else idle_seconds)
    timeout = float(config["MAINTENANCE_REPLY_TIMEOUT"] if reply_timeout is None
                    else reply_timeout)
    details: dict[str, Any] = {"max_age_s": max_age, "idle_in_tx_s": idle_seconds}
    local = SESSION_MANAGER.reap_stale(max_age)
    details["this_process"] = reap_summary(local)
    try:
        details["workers"] = maintenance.broadcast_reap(self.app, max_age, timeout)
    except Exception as exc:  # noqa: BLE001 - the broker may be down; the rest still runs
        details["workers"] = {}
        details["broadcast_error"] = f"{type(exc).__name__}: {exc}"[:300]
    # Before this task's own session touches the database, so it is never a candidate.
    try:
        details["terminated"] = maintenance.terminate_idle_in_transaction(db.engine,
                                                                          idle_seconds)
    except SQLAlchemyError as exc:
        details["terminated"] = []
        details["terminate_error"] = error_line(exc, 300)
    try:
        details["broker"] = prune_celery_broker(self.app)
    except OSError as exc:
        details["broker"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    details["snapshots_pruned"] = SnapshotOps.prune(self.session,
                                                    snapshot_stale_after(config))
    details["reaped_total"] = details["this_process"]["reaped"] + sum(
        reply.get("reaped", 0) for reply in details["workers"].values()
        if isinstance(reply, dict))
    failed = "broadcast_error" in details or "terminate_error" in details
    run = MaintenanceOps.record(self.session, CLEANUP, status="partial" if failed else "ok",
                                started=started, details=details)
    return {**details, "run_id": run.id, "status": run.status, "duration_ms": run.duration_ms}


def application_tables() -> list[str]:
    """Every table of the application's models."""
    return [table.name for table in db.metadata.sorted_tables]


def run_optimize(session: Session, config: Mapping[str, Any],
                 on_locked: Callable[[], None] | None = None) -> dict[str, Any]:
    """Optimize the database under the maintenance lock and record the run (the task and
    ``flask maintenance run optimize`` share this)."""
    started = time.time()
    engine = maintenance.maintenance_engine(config, config.get("ROLE", "worker"))
    try:
        result = maintenance.optimize(engine, application_tables(), on_locked)
    except SQLAlchemyError as exc:
        log.error("optimize_database failed: %s", exc)
        result = {"status": "failed", "backend": engine.dialect.name, "tables": {},
                  "error": error_line(exc, 300)}
    finally:
        engine.dispose()
    run = MaintenanceOps.record(session, OPTIMIZE, status=result["status"], started=started,
                                details=result)
    return {**result, "run_id": run.id, "duration_ms": run.duration_ms}


@shared_task(name=OPTIMIZE, bind=True, soft_time_limit=3300, time_limit=3600)
def optimize_database(self) -> dict:
    """Nightly VACUUM (ANALYZE) per table (PostgreSQL) or ANALYZE/optimize/VACUUM (SQLite);
    a second run while one holds the lock records "skipped"."""
    return run_optimize(self.session, current_app.config)


@shared_task(name=RETENTION, bind=True)
def prune_retention(self) -> dict:
    """Delete system logs and finished batches' events past their retention ages."""
    config = current_app.config
    started = time.time()
    log_age = timedelta(days=int(config["LOG_RETENTION_DAYS"]))
    event_age = timedelta(days=int(config["EVENT_RETENTION_DAYS"]))
    details = {
        "log_retention_days": log_age.days,
        "event_retention_days": event_age.days,
        "system_logs": SystemLogOps.prune(self.session, log_age),
        "batch_events": RetentionOps.prune_finished_batch_events(self.session, event_age),
        "maintenance_runs": RetentionOps.prune_maintenance_runs(
            self.session, max(log_age, timedelta(days=7))),
    }
    run = MaintenanceOps.record(self.session, RETENTION, status="ok", started=started,
                                details=details)
    return {**details, "run_id": run.id, "duration_ms": run.duration_ms}
