"""Admin pages (admin users only) and their JSON twins under ``/api/v1/admin``: database
sessions and pools per process, error stats, system logs, maintenance history, queue depth
and a link to Flower."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from models import db
from routes.errors import error_response
from utils.alerts import recent_alerts, recent_process_events
from utils.auth import admin_required
from utils.db_error_handler import get_error_stats
from utils.db_operations import MaintenanceOps, SnapshotOps, SystemLogOps
from utils.maintenance import queue_depth
from utils.operations.reporting import OverviewOps
from utils.snapshots import collect_stats, snapshot_age_seconds

bp = Blueprint("admin", __name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_QUERY = 200
MAX_LIMIT = 500
PROCESS_FIELDS = ("role", "pid", "hostname", "open_sessions", "by_scope", "oldest_age_s",
                  "checked_out", "pools", "reaped_total", "leaked_total", "sessions")


class BadFilter(ValueError):
    """A query-string filter that cannot be used."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _limit(default: int) -> int:
    raw = request.args.get("limit", "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadFilter(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


# --- figures shared by the pages and the JSON ---------------------------------------------
def live_window() -> timedelta:
    """Snapshots newer than this come from processes still reporting."""
    interval = float(current_app.config.get("SNAPSHOT_INTERVAL_SECONDS", 30.0))
    return timedelta(seconds=max(90.0, 3 * interval + 5))


def _process_row(data: dict[str, Any], *, updated_at: datetime | None, current: bool
                 ) -> dict[str, Any]:
    row = {field: data.get(field) for field in PROCESS_FIELDS}
    row.update(updated_at=_iso(updated_at),
               age_s=snapshot_age_seconds(updated_at) if updated_at else 0.0,
               this_process=current)
    return row


def db_figures() -> dict[str, Any]:
    """Sessions and pools per process (live snapshots, this process from memory)."""
    this = collect_stats()
    processes = []
    for snapshot in SnapshotOps.live(db.session, live_window()):
        current = (snapshot.hostname, snapshot.pid) == (this["hostname"], this["pid"])
        data = this if current else snapshot.data
        processes.append(_process_row(data, updated_at=snapshot.updated_at, current=current))
    if not any(row["this_process"] for row in processes):
        processes.append(_process_row(this, updated_at=None, current=True))
    processes.sort(key=lambda row: (row["role"] or "", row["hostname"] or "", row["pid"] or 0))
    celery = current_app.extensions["celery"]
    return {
        "processes": processes,
        "totals": {
            "processes": len(processes),
            "open_sessions": sum(row["open_sessions"] or 0 for row in processes),
            "checked_out": sum(row["checked_out"] or 0 for row in processes),
            "reaped_total": sum(row["reaped_total"] or 0 for row in processes),
        },
        "this_process": {field: this.get(field) for field in PROCESS_FIELDS},
        "queue": queue_depth(celery, celery.conf.task_default_queue or "celery"),
        "flower_url": current_app.config.get("FLOWER_URL", ""),
    }


def error_figures() -> dict[str, Any]:
    """Error counters of this process and of every reporting process."""
    this = get_error_stats()
    processes = [{"role": s.role, "pid": s.pid, "hostname": s.hostname,
                  "updated_at": _iso(s.updated_at), "errors": s.data.get("errors") or {}}
                 for s in SnapshotOps.live(db.session, live_window())]
    return {"this_process": this, "processes": processes}


def log_entries() -> dict[str, Any]:
    """Stored system logs, newest first; filters ``level``, ``q`` and ``limit``."""
    level = request.args.get("level", "").strip().upper()
    if level and level not in LOG_LEVELS:
        raise BadFilter(f"level must be one of {', '.join(LOG_LEVELS)}")
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise BadFilter(f"q is limited to {MAX_QUERY} characters")
    rows = SystemLogOps.recent(db.session, level=level or None, contains=query or None,
                               limit=_limit(100))
    return {"filters": {"level": level or None, "q": query or None},
            "items": [{"id": r.id, "created_at": _iso(r.created_at), "level": r.level,
                       "logger": r.logger, "message": r.message, "role": r.role,
                       "pid": r.pid, "data": r.data} for r in rows]}


def maintenance_history() -> dict[str, Any]:
    """Maintenance runs, newest first, with durations and details."""
    rows = MaintenanceOps.recent(db.session, limit=_limit(50))
    return {"items": [{"id": r.id, "task": r.task, "status": r.status,
                       "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
                       "duration_ms": r.duration_ms, "details": r.details} for r in rows]}


@bp.errorhandler(BadFilter)
def bad_filter(error: BadFilter):
    return error_response(400, "invalid_filter", str(error))


# --- HTML -----------------------------------------------------------------------------------
def overview_figures() -> dict[str, Any]:
    """Health of every process that reported in the last 24 h (red when it stopped
    reporting, with how long ago), and counts of users, batches, running batches and sites
    failed in the last 24 h."""
    now = datetime.now(UTC)
    since = now - timedelta(hours=24)
    window = live_window().total_seconds()
    health = []
    for snapshot in OverviewOps.snapshots_since(db.session, since):
        age = snapshot_age_seconds(snapshot.updated_at)
        health.append({"role": snapshot.role, "hostname": snapshot.hostname,
                       "pid": snapshot.pid, "updated_at": _iso(snapshot.updated_at),
                       "age_s": age, "age_text": _ago(age), "ok": age <= window})
    health.sort(key=lambda row: (row["ok"], row["role"] or ""))
    return {"health": health, "counts": OverviewOps.counts(db.session, since),
            "window_s": round(window)}


def _ago(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            value = seconds // size
            return f"{value} {unit}{'' if value == 1 else 's'} ago"
    return f"{seconds} second{'' if seconds == 1 else 's'} ago"


@bp.get("/admin")
@admin_required
def index():
    figures = db_figures()
    runs = maintenance_history()["items"][:5]
    return render_template("admin/index.html", figures=figures, runs=runs,
                           overview=overview_figures(),
                           alerts=recent_alerts(db.session, 10),
                           restarts=recent_process_events(db.session, 10))


@bp.get("/admin/db")
@admin_required
def database_page():
    return render_template("admin/db.html", figures=db_figures())


@bp.get("/admin/errors")
@admin_required
def errors_page():
    return render_template("admin/errors.html", figures=error_figures())


@bp.get("/admin/logs")
@admin_required
def logs_page():
    return render_template("admin/logs.html", logs=log_entries(), levels=LOG_LEVELS)


@bp.get("/admin/maintenance")
@admin_required
def maintenance_page():
    return render_template("admin/maintenance.html", history=maintenance_history())


# --- JSON -----------------------------------------------------------------------------------
@bp.get("/api/v1/admin/db")
@admin_required
def database_json():
    return jsonify(db_figures())


@bp.get("/api/v1/admin/errors")
@admin_required
def errors_json():
    return jsonify(error_figures())


@bp.get("/api/v1/admin/logs")
@admin_required
def logs_json():
    return jsonify(log_entries())


@bp.get("/api/v1/admin/maintenance")
@admin_required
def maintenance_json():
    return jsonify(maintenance_history())


@bp.get("/api/v1/admin/alerts")
@admin_required
def alerts_json():
    """Recorded alerts and process-manager events (restarts), newest first."""
    limit = _limit(50)
    return jsonify({"alerts": recent_alerts(db.session, limit),
                    "process_events": recent_process_events(db.session, limit)})

