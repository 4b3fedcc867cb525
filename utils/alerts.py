"""Alerts that reach someone: a JSON POST to ``ALERT_WEBHOOK_URL``, sent from a background
thread, rate-limited, and recorded so ``/admin`` lists them.

``send_alert(kind, message, details)`` only queues the alert and returns at once, so it is
safe on a request's thread and costs nothing while the caller holds a transaction; call it
AFTER the commit anyway (an alert about work that was rolled back is noise). The sender
thread, per process, for each alert:

1. drops it when an identical alert (same kind and message) was recorded in the last
   ``ALERT_RATE_LIMIT_SECONDS`` (default 300) by any process (looked up in ``system_logs``),
   or sent by this process;
2. POSTs ``{"kind", "message", "details", "text", "role", "pid", "hostname", "at"}`` with a
   timeout (``ALERT_TIMEOUT_SECONDS``, default 5) when a webhook is configured;
3. records it as a ``system_logs`` row (logger ``rivalscope.alerts``, level CRITICAL) with
   the delivery result, on the background engine (AUTOCOMMIT: no transaction is open while
   the POST waits, none is left open after).

Process events from the process manager are recorded under ``rivalscope.process``.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import SystemLog
from utils.background_db import BackgroundDatabase
from utils.db_operations import SystemLogOps
from utils.error_text import error_line

log = logging.getLogger(__name__)

ALERT_LOGGER = "rivalscope.alerts"
PROCESS_LOGGER = "rivalscope.process"
DEFAULT_RATE_LIMIT = 300.0
DEFAULT_TIMEOUT = 5.0


@dataclass
class Alert:
    kind: str
    message: str
    details: dict[str, Any]
    webhook_url: str
    settings: dict[str, Any]
    role: str = field(default_factory=lambda: os.environ.get("RIVALSCOPE_ROLE", "web"))
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        return f"[{self.kind}] {self.message}"[:10_000]

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "details": self.details,
                "text": f"Rivalscope {self.kind}: {self.message}", "role": self.role,
                "pid": os.getpid(), "hostname": socket.gethostname(),
                "at": self.at.isoformat()}


class AlertOps:
    """Alert and process-event rows in ``system_logs`` (written and read by utils only)."""

    @staticmethod
    def recorded_since(session: Session, key: str, since: datetime) -> bool:
        found = session.scalar(sa.select(SystemLog.id).where(
            SystemLog.logger == ALERT_LOGGER, SystemLog.message == key,
            SystemLog.created_at >= since).limit(1))
        return found is not None

    @staticmethod
    def record(session: Session, *, logger: str, level: str, message: str, role: str,
               data: dict[str, Any], at: datetime | None = None) -> None:
        SystemLogOps.add_many(session, [{
            "level": level, "logger": logger, "message": message[:10_000], "role": role[:20],
            "pid": os.getpid(), "data": data, "created_at": at or datetime.now(UTC)}])

    @staticmethod
    def recent(session: Session, logger: str, limit: int = 20) -> list[SystemLog]:
        return list(session.scalars(sa.select(SystemLog).where(SystemLog.logger == logger)
                                    .order_by(SystemLog.id.desc()).limit(limit)))


def _settings() -> dict[str, Any]:
    """The current app's settings, else the environment's config."""
    from flask import current_app, has_app_context

    if has_app_context():
        return dict(current_app.config)
    from celery import current_app as current_celery

    flask_app = getattr(current_celery, "flask_app", None)
    if flask_app is not None:  # a worker thread outside a task, or a test
        return dict(flask_app.config)
    from config import config_from_env

    config = config_from_env()
    return {name: getattr(config, name) for name in dir(config) if name.isupper()}


class AlertSender:
    """One daemon thread per process that rate-limits, posts and records alerts."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sent: dict[str, float] = {}
        self._databases: dict[str, BackgroundDatabase] = {}
        self._pid = os.getpid()
        self.results: list[dict[str, Any]] = []

    def submit(self, alert: Alert) -> None:
        if self._pid != os.getpid():
            self._reset()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alert-sender",
                                                daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            log.warning("alert dropped (queue full): %s", alert.key[:200])

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was handled (tests, process exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def _database(self, settings: Mapping[str, Any]) -> BackgroundDatabase | None:
        url = settings.get("DATABASE_URL")
        if not url:
            return None
        if url not in self._databases:
            self._databases[url] = BackgroundDatabase(url, settings, role="alerts")
        return self._databases[url]

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is not None:
                    self._handle(alert)
            except Exception:  # noqa: BLE001 - alerting never takes anything down
                log.warning("alert handling failed", exc_info=True)
            finally:
                self._queue.task_done()

    def _handle(self, alert: Alert) -> None:
        window = float(alert.settings.get("ALERT_RATE_LIMIT_SECONDS", DEFAULT_RATE_LIMIT))
        now = time.monotonic()
        last = self._sent.get(alert.key)
        database = self._database(alert.settings)
        if last is not None and now - last < window:
            self._result(alert, "rate_limited")
            return
        if database is not None:
            since = alert.at - timedelta(seconds=window)
            try:
                with database.session("alerts.rate_limit") as session:
                    if AlertOps.recorded_since(session, alert.key, since):
                        self._result(alert, "rate_limited")
                        return
            except sa.exc.SQLAlchemyError as exc:
                log.warning("alert rate-limit lookup failed: %s", error_line(exc))
        self._sent[alert.key] = now
        delivery = self._post(alert)
        if database is not None:
            try:
                with database.session("alerts.record") as session:
                    AlertOps.record(session, logger=ALERT_LOGGER, level="CRITICAL",
                                    message=alert.key, role=alert.role, at=alert.at,
                                    data={"kind": alert.kind, "details": alert.details,
                                          "delivery": delivery})
            except sa.exc.SQLAlchemyError as exc:
                log.warning("alert not recorded: %s", error_line(exc))
        self._result(alert, delivery)

    def _post(self, alert: Alert) -> str:
        if not alert.webhook_url:
            return "no webhook configured"
        timeout = float(alert.settings.get("ALERT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT))
        try:
            response = httpx.post(alert.webhook_url, json=alert.body(), timeout=timeout)
        except httpx.HTTPError as exc:
            log.warning("alert webhook failed: %s: %s", type(exc).__name__, exc)
            return f"failed: {type(exc).__name__}"
        if response.status_code >= 400:
            log.warning("alert webhook answered %s", response.status_code)
            return f"failed: HTTP {response.status_code}"
        return f"sent: HTTP {response.status_code}"

    def _result(self, alert: Alert, outcome: str) -> None:
        self.results.append({"key": alert.key, "outcome": outcome})
        del self.results[:-100]


SENDER = AlertSender()


def send_alert(kind: str, message: str, details: dict[str, Any] | None = None, *,
               webhook_url: str | None = None) -> None:
    """Queue an alert (returns at once; call it after the commit). ``kind`` is a short
    category such as ``database``, ``site_failed`` or ``process_restart``; ``message`` one
    line; ``details`` JSON-serialisable facts. Identical alerts within 5 minutes are sent
    once. The webhook is ``ALERT_WEBHOOK_URL`` unless given."""
    settings = _settings()
    url = settings.get("ALERT_WEBHOOK_URL", "") if webhook_url is None else webhook_url
    SENDER.submit(Alert(kind=kind, message=str(message).strip()[:2000],
                        details=dict(details or {}), webhook_url=url or "",
                        settings=settings))


def record_process_event(event: str, process: str, *, pid: int | None, expected: bool,
                         from_state: str = "", details: dict[str, Any] | None = None
                         ) -> str:
    """Record what the process manager did to a process (``system_logs``, logger
    ``rivalscope.process``) and alert on unexpected exits; returns the message."""
    if event == "FATAL":
        message = f"{process} could not be started; the process manager gave up"
        level = "CRITICAL"
    elif expected:
        message = f"{process} (pid {pid}) exited as expected"
        level = "INFO"
    else:
        message = f"{process} (pid {pid}) died unexpectedly and was restarted"
        level = "ERROR"
    settings = _settings()
    data = {"event": event, "process": process, "pid": pid, "expected": expected,
            "from_state": from_state, **(details or {})}
    database = SENDER._database(settings)
    if database is not None:
        with database.session("process-events") as session:
            AlertOps.record(session, logger=PROCESS_LOGGER, level=level, message=message,
                            role="supervisor", data=data)
    if level != "INFO":
        send_alert("process_restart" if event != "FATAL" else "process_fatal", message, data)
    return message


def recent_alerts(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """Recorded alerts, newest first (for /admin)."""
    return [_row(r) for r in AlertOps.recent(session, ALERT_LOGGER, limit)]


def recent_process_events(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """Process restarts and failures recorded by the process manager, newest first."""
    return [_row(r) for r in AlertOps.recent(session, PROCESS_LOGGER, limit)]


def _row(row: SystemLog) -> dict[str, Any]:
    data = row.data or {}
    return {"id": row.id, "created_at": row.created_at.isoformat() if row.created_at else None,
            "level": row.level, "message": row.message, "role": row.role,
            "kind": data.get("kind") or data.get("event"), "delivery": data.get("delivery"),
            "data": data}
