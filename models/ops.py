"""Operations: system logs, maintenance runs and per-process snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, db, utcnow


class SystemLog(TimestampMixin, db.Model):
    __tablename__ = "system_logs"
    __table_args__ = (sa.Index("ix_system_logs_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(sa.String(10), index=True)
    logger: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.String(20), default="")
    pid: Mapped[int] = mapped_column(default=0)
    data: Mapped[dict[str, Any] | None]


class MaintenanceRun(db.Model):
    __tablename__ = "maintenance_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(sa.String(60), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]
    details: Mapped[dict[str, Any] | None]


class ProcessSnapshot(db.Model):
    __tablename__ = "process_snapshots"
    __table_args__ = (sa.UniqueConstraint("hostname", "pid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    role: Mapped[str] = mapped_column(sa.String(20))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]]
