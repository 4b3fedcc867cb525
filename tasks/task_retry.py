"""Retrying a task on a retryable database error: exponential backoff with full jitter."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from utils.db_error_handler import record_error

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


def retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** retries))


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
