"""Maintenance tasks run by workers on beat's schedule."""

from __future__ import annotations

from celery import shared_task

from utils.db_operations import SnapshotOps
from utils.db_session_manager import get_session_stats


@shared_task(name="maintenance.publish_snapshot", bind=True)
def publish_snapshot(self) -> dict:
    """Store this worker process's session and pool figures for the admin pages."""
    stats = get_session_stats()
    SnapshotOps.publish(self.session, stats)
    return {"pid": stats["pid"], "open_sessions": stats["open_sessions"]}
