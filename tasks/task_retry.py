"""Retrying a task on a retryable database error: exponential backoff with full jitter."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from utils.db_error_handler import backoff_delay, record_error

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


def retry_delay(retries: int) -> float:
    """The countdown before a task's next run (the database layer's backoff)."""
    return backoff_delay(retries + 1, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)


def retry_on_database_error(task: Any, error: SQLAlchemyError, **retry_options: Any) -> None:
    """Re-raise as a Celery retry when the error is retryable; else re-raise it."""
    info = record_error(error, task.name)
    try:
        task.session.rollback()
    except SQLAlchemyError:
        pass
    if info.retryable:
        raise task.retry(exc=error, countdown=retry_delay(task.request.retries),
                         **retry_options)
    raise error
