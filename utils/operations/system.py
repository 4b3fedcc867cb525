"""System logs, maintenance runs, process snapshots and health checks."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import MaintenanceRun, ProcessSnapshot, SystemLog
from models.base import utcnow
from utils.error_text import error_line
from utils.operations.common import upsert


class SystemLogOps:
    """Stored WARNING+ log records."""

    @staticmethod
    def add_many(session: Session, rows: list[dict[str, Any]]) -> None:
        if rows:
            session.execute(sa.insert(SystemLog), rows)

    @staticmethod
    def recent(session: Session, *, level: str | None = None, contains: str | None = None,
               limit: int = 100) -> list[SystemLog]:
        query = sa.select(SystemLog)
        if level:
            query = query.where(SystemLog.level == level.upper())
        if contains:
            query = query.where(SystemLog.message.contains(contains, autoescape=True))
        return list(session.scalars(query.order_by(SystemLog.id.desc()).limit(limit)))

    @staticmethod
    def prune(session: Session, older_than: timedelta) -> int:
        result = session.execute(sa.delete(SystemLog).where(
            SystemLog.created_at < utcnow() - older_than))
        return result.rowcount or 0


class MaintenanceOps:
    """Records of maintenance runs."""

    @staticmethod
    def record(session: Session, task: str, *, status: str, started: float,
               details: dict[str, Any]) -> MaintenanceRun:
        duration_ms = int((time.time() - started) * 1000)
        run = MaintenanceRun(task=task, status=status, finished_at=utcnow(),
                             duration_ms=duration_ms, details=details)
        run.started_at = utcnow() - timedelta(milliseconds=duration_ms)
        session.add(run)
        session.flush()
        return run

    @staticmethod
    def recent(session: Session, limit: int = 50) -> list[MaintenanceRun]:
        return list(session.scalars(sa.select(MaintenanceRun)
                                    .order_by(MaintenanceRun.id.desc()).limit(limit)))


class SnapshotOps:
    """Per-process session and pool figures, one row per (hostname, pid)."""

    @staticmethod
    def publish(session: Session, stats: dict[str, Any]) -> None:
        upsert(session, ProcessSnapshot.__table__, [{
            "hostname": stats["hostname"], "pid": stats["pid"], "role": stats["role"],
            "updated_at": utcnow(), "data": stats}], keys=["hostname", "pid"],
            update=["role", "updated_at", "data"])

    @staticmethod
    def live(session: Session, max_age: timedelta) -> list[ProcessSnapshot]:
        return list(session.scalars(sa.select(ProcessSnapshot).where(
            ProcessSnapshot.updated_at >= utcnow() - max_age).order_by(ProcessSnapshot.role)))

    @staticmethod
    def prune(session: Session, older_than: timedelta) -> int:
        result = session.execute(sa.delete(ProcessSnapshot).where(
            ProcessSnapshot.updated_at < utcnow() - older_than))
        return result.rowcount or 0


class HealthCheckOps:
    """Readiness checks of the database."""

    @staticmethod
    def ping(engine: Engine) -> dict[str, Any]:
        """SELECT 1 on a pooled connection: ok, latency and the error when down."""
        started = time.perf_counter()
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return {"ok": False, "error": error_line(exc, 300),
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
