"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from models import db
from utils.broker import check_broker
from utils.db_operations import HealthCheckOps
from utils.db_session_manager import get_session_stats

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """The process is up (no dependencies checked)."""
    return jsonify(status="ok")


@bp.get("/health/ready")
def ready():
    """Database and broker reachable: 200 with latencies and pool figures, else 503."""
    database = HealthCheckOps.ping(db.engine)
    broker = check_broker(current_app.extensions["celery"])
    stats = get_session_stats()
    ok = database["ok"] and broker["ok"]
    body = {
        "status": "ready" if ok else "not_ready",
        "checks": {"database": database, "broker": broker},
        "pool": stats["pools"],
        "sessions": {"open": stats["open_sessions"], "checked_out": stats["checked_out"]},
    }
    if not ok:
        failed = [name for name, check in body["checks"].items() if not check["ok"]]
        body["reason"] = "; ".join(f"{name}: {body['checks'][name]['error']}" for name in failed)
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    if not ok:
        response.headers["Retry-After"] = "5"
    return response
