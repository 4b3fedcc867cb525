"""A logging handler that stores WARNING+ records through ``SystemLogOps``, in batches.

``emit`` only appends to a bounded in-memory queue (the oldest record is dropped, and
counted, when it is full); a daemon thread writes batches on its own small engine
(``utils.background_db``), so no request or task ever waits for a log write. It never
recurses: whatever the flushing thread itself logs is ignored (thread-local flag), and
records from SQLAlchemy or this module are ignored while a flush is running. When the
database is down, batches are kept (bounded) and retried with backoff; one line goes to
stderr per outage.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from utils.background_db import BackgroundDatabase
from utils.db_error_handler import backoff_delay
from utils.db_operations import SystemLogOps

LOGGER_NAME = __name__
IGNORED_WHILE_FLUSHING = ("sqlalchemy", LOGGER_NAME)
MAX_MESSAGE = 10_000
_HANDLERS: weakref.WeakSet[DatabaseLogHandler] = weakref.WeakSet()


class DatabaseLogHandler(logging.Handler):
    """Queue WARNING+ records; a background thread stores them in ``system_logs``."""

    def __init__(self, database: BackgroundDatabase, *, role: str = "web",
                 level: int = logging.WARNING, capacity: int = 1000, batch_size: int = 200,
                 flush_interval: float = 2.0, max_backoff: float = 30.0) -> None:
        super().__init__(level)
        self.database = database
        self.role = role
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self.dropped = self.written = self.failures = 0
        self.last_error = ""
        self._local = threading.local()
        self._flushing = threading.Event()
        self._reset_state()
        _HANDLERS.add(self)

    def _reset_state(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False
        self._flush_requested = False
        self._inflight = 0
        self._cycles = 0
        self._last_ok = True
        self._retry_at = 0.0
        self._failures = 0  # consecutive failed writes (the backoff grows with them)

    # --- producer side -------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "flushing", False):
            return  # logged by our own flush: never store (no recursion)
        if self._flushing.is_set() and record.name.startswith(IGNORED_WHILE_FLUSHING):
            return
        try:
            row = self._row(record)
        except Exception:  # noqa: BLE001 - a bad record must not break the caller
            self.handleError(record)
            return
        with self._cond:
            if self._stopping:
                return
            self._ensure_thread()
            if len(self._queue) >= self.capacity:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(row)
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def _row(self, record: logging.LogRecord) -> dict[str, Any]:
        message = self.format(record)
        data: dict[str, Any] = {"module": record.module, "function": record.funcName,
                                "line": record.lineno, "thread": record.threadName}
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = record.exc_info[0].__name__
        return {
            "level": record.levelname[:10],
            "logger": record.name[:200],
            "message": message[:MAX_MESSAGE],
            "role": self.role[:20],
            "pid": os.getpid(),
            "data": data,
            "created_at": datetime.fromtimestamp(record.created, UTC),
        }

    def _ensure_thread(self) -> None:
        """Start the flusher (lazily, once per process; called with the lock held)."""
        if self._pid != os.getpid():  # forked without the hook (should not happen)
            self._reset_state()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="db-log-flusher",
                                            daemon=True)
            self._thread.start()

    # --- consumer side -------------------------------------------------------------------
    def _run(self) -> None:
        self._local.flushing = True
        while True:
            with self._cond:
                self._wait_for_work()
                if not self._queue:
                    if self._stopping:
                        return
                    self._flush_requested = False
                    self._cycles += 1
                    self._cond.notify_all()
                    continue
                take = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(take)]
                self._inflight = len(batch)
            ok = self._write(batch)
            with self._cond:
                self._inflight = 0
                self._cycles += 1
                self._last_ok = ok
                if not ok:
                    self._requeue(batch)
                    self._flush_requested = False
                    self._failures += 1
                    self._retry_at = time.monotonic() + backoff_delay(
                        self._failures, 0.5, self.max_backoff)
                else:
                    self._failures = 0
                    self._retry_at = 0.0
                self._cond.notify_all()
                if self._stopping and not ok:
                    return

    def _wait_for_work(self) -> None:
        deadline = time.monotonic() + self.flush_interval
        while not self._stopping and not self._flush_requested:
            now = time.monotonic()
            if self._retry_at > now:
                self._cond.wait(self._retry_at - now)
                continue
            if len(self._queue) >= self.batch_size or now >= deadline:
                return
            self._cond.wait(deadline - now)

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        """Put a failed batch back in front, dropping the oldest beyond capacity."""
        self._queue.extendleft(reversed(batch))
        while len(self._queue) > self.capacity:
            self._queue.popleft()
            self.dropped += 1

    def _write(self, batch: list[dict[str, Any]]) -> bool:
        self._flushing.set()
        try:
            with self.database.session(owner="db-log-flush") as session:
                SystemLogOps.add_many(session, batch)
        except Exception as exc:  # noqa: BLE001 - the database may be down: keep going
            self.failures += 1
            first_line = (str(exc).strip().splitlines() or [""])[0]
            self.last_error = f"{type(exc).__name__}: {first_line}"[:300]
            if self._last_ok:
                sys.stderr.write(f"db log handler: cannot store logs ({self.last_error});"
                                 " keeping them and retrying\n")
            return False
        finally:
            self._flushing.clear()
        if not self._last_ok:
            sys.stderr.write("db log handler: database reachable again\n")
        self.written += len(batch)
        return True

    # --- control -------------------------------------------------------------------------
    def flush_now(self, timeout: float = 10.0) -> bool:
        """Ask for an immediate write and wait for it: True when everything queued before
        the call is stored, False when a write failed or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._queue and not self._inflight:
                return True
            self._ensure_thread()
            self._flush_requested = True
            self._retry_at = 0.0
            start = self._cycles
            self._cond.notify_all()
            while time.monotonic() < deadline:
                if self._cycles > start and not self._last_ok:
                    return False
                if not self._queue and not self._inflight:
                    return True
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return False

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight

    def stats(self) -> dict[str, Any]:
        return {"pending": self.pending(), "written": self.written, "dropped": self.dropped,
                "failures": self.failures, "last_error": self.last_error}

    def flush(self) -> None:
        """Wake the flusher (never writes on the caller's thread)."""
        with self._cond:
            if self._queue:
                self._flush_requested = True
                self._cond.notify_all()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the flusher after a last bounded attempt to store what is queued."""
        with self._cond:
            self._stopping = True
            self._flush_requested = True
            self._retry_at = 0.0
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        super().close()

    def _after_fork(self) -> None:
        self._reset_state()  # the parent's queue and thread are not ours


def _reinit_after_fork() -> None:
    for handler in list(_HANDLERS):
        handler._after_fork()


os.register_at_fork(after_in_child=_reinit_after_fork)

# --- installation ----------------------------------------------------------------------
_INSTALLED: dict[str, Any] = {"handler": None, "key": None}


def install_db_log_handler(app: Flask) -> DatabaseLogHandler:
    """Attach one handler per process to the root logger (an earlier app's is replaced);
    Celery workers and beat re-attach it after they set up logging."""
    key = (app.config["DATABASE_URL"], app.config["ROLE"])
    current: DatabaseLogHandler | None = _INSTALLED["handler"]
    if current is not None and _INSTALLED["key"] == key:
        _attach(logging.getLogger())
        return current
    database = BackgroundDatabase(app.config["DATABASE_URL"], app.config, app.config["ROLE"])
    handler = DatabaseLogHandler(database, role=app.config["ROLE"])
    handler.setFormatter(logging.Formatter("%(message)s"))
    _INSTALLED.update(handler=handler, key=key)
    root = logging.getLogger()
    if current is not None:
        for logger in (root, logging.getLogger("celery.task")):
            logger.removeHandler(current)
        current.close(timeout=1.0)
    _attach(root)
    _connect_celery_logging()
    return handler


def uninstall_db_log_handler(timeout: float = 1.0) -> None:
    """Detach and close this process's handler (before its database goes away)."""
    handler: DatabaseLogHandler | None = _INSTALLED["handler"]
    if handler is None:
        return
    for logger in (logging.getLogger(), logging.getLogger("celery.task")):
        logger.removeHandler(handler)
    handler.close(timeout=timeout)
    _INSTALLED.update(handler=None, key=None)


def installed_handler() -> DatabaseLogHandler | None:
    """The handler installed in this process, if any."""
    return _INSTALLED["handler"]


def _attach(logger: logging.Logger) -> None:
    handler = _INSTALLED["handler"]
    if handler is not None and handler not in logger.handlers:
        logger.addHandler(handler)


def _connect_celery_logging() -> None:
    from celery.signals import after_setup_logger, after_setup_task_logger

    def reattach(logger: logging.Logger | None = None, **_kwargs: Any) -> None:
        if logger is not None:
            _attach(logger)

    after_setup_logger.connect(reattach, weak=False, dispatch_uid="rivalscope-db-log-root")
    after_setup_task_logger.connect(reattach, weak=False,
                                    dispatch_uid="rivalscope-db-log-task")
