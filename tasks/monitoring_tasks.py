"""Monitoring tasks: the per-minute dispatcher, change detection and notifications.

Thin: each task calls the operations, commits, and only then rings the next doorbell.
No transaction is open while a notification waits on the network.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models.base import utcnow
from tasks.analysis_tasks import start_batch
from tasks.task_retry import retry_on_database_error
from utils.notify import NotifyError, deliver
from utils.operations.watchlists import ChangeOps, NotificationOps, RunOps

log = logging.getLogger(__name__)

NOTIFY_BACKOFF_SECONDS = 30.0
DISPATCH_CHUNK = 200
MAX_CHUNKS = 50  # 10,000 watchlists in one minute; the rest stay due for the next


def _enqueue(task, *args) -> None:
    """Ring a doorbell; the database keeps the work, so a broker outage only delays it."""
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - the dispatcher sweeps up what was not enqueued
        log.exception("could not enqueue %s%s", task.name, args)


def dispatch_once(session: Session, now: datetime) -> dict:
    """The dispatcher's unit of work (bench/dispatcher.py times exactly this): runs of due
    watchlists in chunks, one short transaction each, started after each commit; then the
    sweeps for lost change detections and notifications."""
    batch_ids: list[int] = []
    for _chunk in range(MAX_CHUNKS):
        created, claimed = RunOps.dispatch_chunk(session, now, DISPATCH_CHUNK)
        session.commit()
        batch_ids += created
        for batch_id in created:
            _enqueue(start_batch, batch_id)
        if claimed < DISPATCH_CHUNK:
            break
    unchecked = RunOps.finished_uncomputed(session)
    overdue = NotificationOps.overdue(session, now)
    session.commit()
    for batch_id in unchecked:
        _enqueue(detect_changes, batch_id)
    for notification_id in overdue:
        _enqueue(send_notification, notification_id)
    return {"runs": batch_ids, "detect": unchecked, "notify": overdue}


@shared_task(name="monitoring.dispatch_watchlists", bind=True, max_retries=3)
def dispatch_watchlists(self) -> dict:
    """Beat, every minute: create the runs of due watchlists and re-enqueue what a lost
    message left undone (duplicates are harmless: runs are unique per slot)."""
    try:
        return dispatch_once(self.session, utcnow())
    except SQLAlchemyError as error:
        retry_on_database_error(self, error)
    return {}


@shared_task(name="monitoring.detect_changes", bind=True, max_retries=8)
def detect_changes(self, batch_id: int) -> int:
    """Store the changes of a finished run (idempotent) and enqueue its notifications."""
    try:
        notification_ids = ChangeOps.detect(self.session, batch_id)
        self.session.commit()
    except SQLAlchemyError as error:
        retry_on_database_error(self, error)
    for notification_id in notification_ids or []:
        _enqueue(send_notification, notification_id)
    return len(notification_ids or [])


def on_batch_finished(batch_id: int, status: str | None = "completed") -> None:
    """The pipeline's hook, called after the commit that may have finished a batch
    (``status`` is what ``SiteOps.finish`` returned: None = not finished, nothing to do).
    Only runs of a watchlist have changes; for other batches the task is a no-op."""
    if status is not None:
        _enqueue(detect_changes, batch_id)


@shared_task(name="monitoring.send_notification", bind=True, max_retries=3)
def send_notification(self, notification_id: int) -> str:
    """Send one digest outside any transaction; retry with backoff, 5 attempts at most."""
    try:
        payload = NotificationOps.payload(self.session, notification_id)
        self.session.commit()  # nothing stays open while we wait on the network
    except SQLAlchemyError as error:
        retry_on_database_error(self, error)
    if payload is None:
        return "nothing to send"
    try:
        deliver(payload, current_app.config)
        error = None
    except NotifyError as exc:
        error = str(exc)
    delay = random.uniform(0.5, 1.0) * NOTIFY_BACKOFF_SECONDS * 2 ** payload["attempts"]
    try:
        outcome = NotificationOps.record(self.session, notification_id, error, delay)
        self.session.commit()
    except SQLAlchemyError as db_error:
        retry_on_database_error(self, db_error)
    if outcome == "retry":
        try:
            send_notification.apply_async(args=[notification_id], countdown=delay)
        except Exception:  # noqa: BLE001 - stays pending; visible on the watchlist page
            log.exception("could not schedule the retry of notification %s", notification_id)
    return outcome
