"""Beat's schedule store: one pickle file, replaced atomically, readable in any state.

Celery's default ``PersistentScheduler`` keeps its state in a ``shelve`` (dbm) file that is
written in place; a beat killed mid-write leaves a file that makes the next start fail
(``EOFError: Ran out of input``). ``SafeScheduler`` keeps the same behaviour (last run times
survive restarts) with a store that is written to a temporary file and renamed, and that
starts empty, with one warning, when the file is missing, empty, truncated or garbage.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any

from celery.beat import PersistentScheduler

from utils.broker import write_atomic

log = logging.getLogger(__name__)


class ScheduleStore(dict):
    """A dict saved as one pickle by ``sync`` (temp file + rename)."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self.filename = filename
        self.update(self._load())

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.filename, "rb") as stream:
                data = pickle.load(stream)  # noqa: S301 - beat's own file under instance/
            if not isinstance(data, dict):
                raise TypeError(f"expected a dict, found {type(data).__name__}")
            return data
        except FileNotFoundError:
            return {}
        except Exception as exc:  # noqa: BLE001 - any unreadable state means "start fresh"
            log.warning("beat schedule %s is unreadable (%s: %s); starting with a fresh one",
                        self.filename, type(exc).__name__, str(exc)[:200])
            return {}

    def sync(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.filename))
        os.makedirs(folder, exist_ok=True)
        write_atomic(self.filename, pickle.dumps(dict(self), protocol=pickle.HIGHEST_PROTOCOL),
                     fsync=True)

    def close(self) -> None:
        self.sync()


class _Persistence:
    """What ``PersistentScheduler`` expects of ``shelve``: ``open(filename, writeback)``."""

    @staticmethod
    def open(filename: str, writeback: bool = True) -> ScheduleStore:  # noqa: A003
        return ScheduleStore(filename)


class SafeScheduler(PersistentScheduler):
    """``PersistentScheduler`` on ``ScheduleStore``; a schedule that cannot be loaded is
    rebuilt from ``beat_schedule`` instead of stopping beat."""

    persistence = _Persistence
    known_suffixes = ("",)

    def setup_schedule(self) -> None:
        try:
            super().setup_schedule()
        except Exception as exc:  # noqa: BLE001 - entries that unpickle but do not work
            log.warning("beat schedule %s could not be used (%s: %s); rebuilding it",
                        self.schedule_filename, type(exc).__name__, str(exc)[:200])
            self._remove_db()
            self._store = None
            super().setup_schedule()
