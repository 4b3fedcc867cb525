"""Retention: prune what is old enough to forget (batch events, maintenance history)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import FINISHED_BATCH_STATUSES, Batch, BatchEvent, MaintenanceRun
from models.base import utcnow


class RetentionOps:
    """Deletes by age; each returns the number of rows removed."""

    @staticmethod
    def prune_finished_batch_events(session: Session, older_than: timedelta) -> int:
        """Events older than ``older_than`` of batches that are finished (never a running
        batch's timeline)."""
        finished = sa.select(Batch.id).where(Batch.status.in_(FINISHED_BATCH_STATUSES))
        result = session.execute(sa.delete(BatchEvent).where(
            BatchEvent.created_at < utcnow() - older_than,
            BatchEvent.batch_id.in_(finished)).execution_options(synchronize_session=False))
        return result.rowcount or 0

    @staticmethod
    def prune_maintenance_runs(session: Session, older_than: timedelta) -> int:
        """Maintenance history older than ``older_than``."""
        result = session.execute(sa.delete(MaintenanceRun).where(
            MaintenanceRun.started_at < utcnow() - older_than
        ).execution_options(synchronize_session=False))
        return result.rowcount or 0
