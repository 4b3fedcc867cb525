"""Classify database errors, retry units of work that may succeed again, keep error stats.

Categories: retryable (disconnects, pool timeout, serialization failure, deadlock, lock
timeout), integrity (constraint named), data (bad value), query (no row / several rows),
programming (everything else; details logged, never shown to users).
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, exc
from sqlalchemy.orm import exc as orm_exc

from utils.db_session_manager import SESSION_MANAGER
from utils.error_text import error_line

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE, INTEGRITY, DATA, QUERY, PROGRAMMING = (
    "retryable", "integrity", "data", "query", "programming")

USER_MESSAGES = {
    RETRYABLE: "The database is briefly unavailable; please retry.",
    INTEGRITY: "This conflicts with data that already exists.",
    DATA: "A value was not accepted by the database.",
    QUERY: "The requested record was not found.",
    PROGRAMMING: "An internal error occurred.",
}

# SQLSTATE codes that mean "the same unit of work may succeed if run again".
RETRYABLE_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout)
    "57P01",  # admin_shutdown (pg_terminate_backend)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
}
SQLITE_RETRYABLE = ("database is locked", "database table is locked", "disk i/o error")
SQLITE_CONSTRAINT = re.compile(
    r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?::\s*(.+))?")


@dataclass(frozen=True)
class DbErrorInfo:
    """What ``classify`` decided about one exception."""

    category: str
    message: str
    detail: str
    constraint: str | None = None
    sqlstate: str | None = None
    not_found: bool = False

    @property
    def retryable(self) -> bool:
        return self.category == RETRYABLE


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    return getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)


def _constraint_name(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    match = SQLITE_CONSTRAINT.search(str(orig or error))
    if match:
        return match.group(2) or match.group(1).lower()
    return None


def classify(error: BaseException) -> DbErrorInfo:
    """Put a database exception into one category, with a user-facing message."""
    detail = error_line(error)
    state = _sqlstate(error)

    def info(category: str, **extra: Any) -> DbErrorInfo:
        return DbErrorInfo(category, USER_MESSAGES[category], detail, sqlstate=state, **extra)

    if isinstance(error, orm_exc.NoResultFound | exc.NoResultFound):
        return info(QUERY, not_found=True)
    if isinstance(error, exc.MultipleResultsFound):
        return info(QUERY)
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):
        return info(RETRYABLE)
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated or (state and state in RETRYABLE_SQLSTATES):
            return info(RETRYABLE)
        if state and state.startswith("08"):
            return info(RETRYABLE)
        if isinstance(error, exc.IntegrityError):
            return info(INTEGRITY, constraint=_constraint_name(error))
        if isinstance(error, exc.DataError) or (state and state.startswith("22")):
            return info(DATA)
        if isinstance(error, exc.OperationalError):
            if hasattr(error.orig, "sqlite_errorcode"):
                if any(marker in detail.lower() for marker in SQLITE_RETRYABLE):
                    return info(RETRYABLE)
            elif state is None or state.startswith(("53", "57", "58")):
                # PostgreSQL without SQLSTATE: the server went away before answering.
                return info(RETRYABLE)
    if isinstance(error, exc.StatementError) and isinstance(getattr(error, "orig", None),
                                                             ValueError | TypeError):
        return info(DATA)
    return info(PROGRAMMING)


class ErrorStats:
    """Counters per category and the last N errors of this process."""

    def __init__(self, keep: int = 50) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.retries = 0
        self.recovered = 0
        self.alerts = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)

    def record(self, info: DbErrorInfo, operation: str) -> None:
        with self._lock:
            self.counts[info.category] += 1
            self.recent.append({"at": time.time(), "operation": operation, **asdict(info)})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": dict(self.counts),
                "retries": self.retries,
                "recovered": self.recovered,
                "alerts": self.alerts,
                "recent": list(self.recent),
            }

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.recent.clear()
            self.retries = self.recovered = self.alerts = 0


ERROR_STATS = ErrorStats()


def get_error_stats() -> dict[str, Any]:
    """This process's error counters and last errors."""
    return ERROR_STATS.snapshot()


def record_error(error: BaseException, operation: str = "") -> DbErrorInfo:
    """Classify and count an error; log programming errors with their details."""
    info = classify(error)
    ERROR_STATS.record(info, operation)
    if info.category == PROGRAMMING:
        log.error("database error in %s: %s", operation or "?", info.detail)
    return info


def raise_alert(message: str, webhook_url: str = "", details: dict[str, Any] | None = None
                ) -> None:
    """A critical database error: a CRITICAL log line and an alert (``utils.alerts``:
    posted to the webhook from a background thread, rate-limited, listed on /admin)."""
    from utils.alerts import send_alert

    ERROR_STATS.alerts += 1
    log.critical(message)
    send_alert("database", message, details, webhook_url=webhook_url or None)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: about ``base * 2**(attempt-1)``, at most ``cap``."""
    return min(cap, base * 2 ** max(0, attempt - 1)) * (0.5 + random.random())


def run_with_retries(unit: Callable[[], T], *, operation: str, retries: int,
                     backoff: float, max_backoff: float, alert_webhook: str = "") -> T:
    """Run ``unit`` (one whole unit of work: it must leave nothing open when it raises);
    run it again after a backoff when it fails with a retryable database error, up to
    ``retries`` more times. Other errors propagate at once; a retryable error that
    persists raises a critical alert. The one retry loop of the database layer."""
    attempt = 0
    while True:
        try:
            result = unit()
            if attempt:
                ERROR_STATS.recovered += 1
            return result
        except exc.SQLAlchemyError as error:
            info = record_error(error, operation)
            if not info.retryable:
                raise
            if attempt >= retries:
                raise_alert(f"{operation}: retryable database error persisted after "
                            f"{retries} retries: {info.detail}", alert_webhook,
                            {"operation": operation, "category": info.category,
                             "sqlstate": info.sqlstate, "retries": retries})
                raise
            attempt += 1
            ERROR_STATS.retries += 1
            delay = backoff_delay(attempt, backoff, max_backoff)
            log.warning("%s: %s (%s), unit of work re-run in %.2f s", operation,
                        type(error).__name__, info.detail, delay)
            time.sleep(delay)


def with_db_error_handling(engine_getter: Callable[[], Engine], *, retries: int = 3,
                           backoff: float = 0.05, max_backoff: float = 2.0,
                           scope: str = "thread", alert_webhook: str = ""):
    """Run ``func(*, session=...)`` as one unit of work; re-run it in a new session on
    retryable errors (exponential backoff with jitter), up to ``retries`` more times.
    Other errors propagate at once. Persistent retryable errors raise a critical alert."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        operation = func.__qualname__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            def unit() -> Any:
                with SESSION_MANAGER.managed_session(engine_getter(), scope=scope,
                                                     owner=operation) as session:
                    return func(*args, session=session, **kwargs)

            return run_with_retries(unit, operation=operation, retries=retries,
                                    backoff=backoff, max_backoff=max_backoff,
                                    alert_webhook=alert_webhook)
        return wrapper

    return decorator
