"""Per-process snapshots: every web, worker and beat process publishes its session and pool
figures (``SESSION_MANAGER.stats()``) through ``SnapshotOps`` every N seconds, so the admin
pages see all processes, not only the one serving the page.

A daemon thread per process, started lazily (first request, worker ready, beat start) and
restarted in a forked child. It writes on the background engine
(``utils.background_db``), never on the application's pool.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from utils.background_db import BackgroundDatabase
from utils.db_error_handler import get_error_stats
from utils.db_operations import SnapshotOps
from utils.db_session_manager import SESSION_MANAGER

log = logging.getLogger(__name__)


def collect_stats() -> dict[str, Any]:
    """This process's figures: sessions, pools, error counters and the log handler."""
    from utils.db_log_handler import installed_handler

    stats = SESSION_MANAGER.stats()
    errors = get_error_stats()
    stats["errors"] = {"counts": errors["counts"], "retries": errors["retries"],
                       "alerts": errors["alerts"], "recent": errors["recent"][-5:]}
    handler = installed_handler()
    if handler is not None:
        stats["log_handler"] = handler.stats()
    stats["published_at"] = datetime.now(UTC).isoformat()
    return stats


class SnapshotPublisher:
    """Publishes ``collect_stats()`` every ``interval`` seconds from a daemon thread."""

    def __init__(self) -> None:
        self.database: BackgroundDatabase | None = None
        self.interval = 30.0
        self.published = 0
        self.last_error = ""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._was_running = False

    def configure(self, database: BackgroundDatabase, interval: float) -> None:
        """Target database and period (the latest app configured wins)."""
        self.database = database
        self.interval = max(0.2, float(interval))

    def publish_once(self) -> dict[str, Any]:
        """Publish this process's snapshot now; returns what was stored."""
        if self.database is None:
            raise RuntimeError("snapshot publisher is not configured")
        stats = collect_stats()
        with self.database.session(owner="snapshot-publisher") as session:
            SnapshotOps.publish(session, stats)
        self.published += 1
        return stats

    def ensure_started(self, *_args: Any, **_kwargs: Any) -> None:
        """Start the publishing thread in this process unless it runs already."""
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        if self.database is None:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._run, name="snapshot-publisher",
                                            daemon=True)
            self._thread.start()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        me = threading.current_thread()
        failing = False
        # The first snapshot after one interval: a starting process has nothing to show
        # yet, and a task's own snapshot (maintenance.publish_snapshot) is not overwritten
        # at once.
        if self._wake.wait(self.interval):
            return
        while self._thread is me:
            try:
                self.publish_once()
                if failing:
                    log.warning("snapshot publisher: database reachable again")
                failing = False
            except Exception as exc:  # noqa: BLE001 - keep publishing when it comes back
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if not failing:
                    log.warning("snapshot publisher cannot store snapshots: %s",
                                self.last_error)
                failing = True
            if self._wake.wait(self.interval):
                return

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread is gone; restart if it was running."""
        self._was_running = self._thread is not None
        self._lock = threading.Lock()
        self._thread = None
        self._pid = os.getpid()
        self.published = 0
        if self._was_running:
            self.ensure_started()


PUBLISHER = SnapshotPublisher()
os.register_at_fork(after_in_child=PUBLISHER._after_fork)


def install_snapshots(app: Flask) -> SnapshotPublisher:
    """Configure the process publisher for ``app`` and start it lazily: on the first request,
    when a worker is ready (or a prefork child starts), when beat starts. Registers the
    Celery remote-control commands that expose the same figures (``utils.worker_control``)."""
    from celery.signals import beat_init, worker_process_init, worker_ready

    import utils.worker_control  # noqa: F401 - the inspect/control commands, the bootstep
    from utils.db_log_handler import installed_handler

    handler = installed_handler()
    if handler is not None and handler.database.url == app.config["DATABASE_URL"]:
        database = handler.database
    else:
        database = BackgroundDatabase(app.config["DATABASE_URL"], app.config,
                                      app.config["ROLE"])
    PUBLISHER.configure(database, app.config.get("SNAPSHOT_INTERVAL_SECONDS", 30.0))
    app.before_request(PUBLISHER.ensure_started)
    for signal in (worker_ready, worker_process_init, beat_init):
        signal.connect(PUBLISHER.ensure_started, weak=False,
                       dispatch_uid=f"rivalscope-snapshots-{signal.name}")
    return PUBLISHER


def snapshot_age_seconds(updated_at: datetime) -> float:
    """Seconds since a snapshot's ``updated_at``."""
    return round(time.time() - updated_at.timestamp(), 1)
