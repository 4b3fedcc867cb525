"""Identical errors are logged once per window, not once per request.

An anonymous caller who finds a 500 could otherwise write one full traceback into
``system_logs`` per request. ``RepeatedErrorFilter`` keys a record with an exception on the
exception type and the frames of its traceback (not the path or message, which a caller
varies at will); within ``ERROR_LOG_REPEAT_SECONDS`` the repeats are counted, not logged,
and the next record logged for that key says how many were left out.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict

from flask import Flask

THROTTLED_LOGGERS = ("routes.errors",)
MAX_KEYS = 1000


def fingerprint(exc_info: tuple) -> tuple:
    """Exception type and traceback frames (file, line, function)."""
    exc_type, _exc, tb = exc_info
    frames = tuple((f.filename, f.lineno, f.name) for f in traceback.extract_tb(tb))
    return (getattr(exc_type, "__qualname__", str(exc_type)), frames)


class RepeatedErrorFilter(logging.Filter):
    """Let the first record of an error through per window; count the rest."""

    def __init__(self, window_seconds: float) -> None:
        super().__init__()
        self.window = window_seconds
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple, list] = OrderedDict()  # key -> [logged_at, repeats]

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or self.window <= 0:
            return True
        key = fingerprint(record.exc_info)
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
                return False
            repeats = entry[1] if entry is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
        if repeats:
            record.msg = (f"{record.msg} [the same error happened {repeats} more times in the "
                          f"previous {int(self.window)} s, not logged]")
        return True


def install_error_log_throttle(app: Flask) -> RepeatedErrorFilter:
    """One filter per throttled logger and process (a later app updates its window)."""
    window = float(app.config.get("ERROR_LOG_REPEAT_SECONDS", 300))
    found = None
    for name in THROTTLED_LOGGERS:
        logger = logging.getLogger(name)
        existing = [f for f in logger.filters if isinstance(f, RepeatedErrorFilter)]
        if existing:
            found = existing[0]
            found.window = window
        else:
            found = RepeatedErrorFilter(window)
            logger.addFilter(found)
    assert found is not None
    return found
