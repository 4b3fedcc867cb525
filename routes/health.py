"""Liveness and readiness.

``/health/ready`` tells anonymous callers only the status (and the 503). Checks, latencies,
pool figures and the database host are for admins and for callers on this machine
(loopback); credentials never appear, not even in error text.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from models import db
from utils.broker import check_broker
from utils.db_operations import HealthCheckOps
from utils.db_session_manager import get_session_stats

bp = Blueprint("health", __name__)

LOOPBACK = ("127.0.0.1", "::1")


@bp.get("/health")
def health():
    """The process is up (no dependencies checked)."""
    return jsonify(status="ok")


def may_see_details() -> bool:
    """Admins, and callers on this machine (set TRUSTED_PROXY_COUNT behind a proxy)."""
    if request.remote_addr in LOOPBACK:
        return True
    return bool(current_user.is_authenticated and current_user.is_admin)


def _secrets() -> list[str]:
    """Passwords of the configured URLs, to be cut out of any text we return."""
    found = []
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "SQLALCHEMY_DATABASE_URI"):
        value = current_app.config.get(key) or ""
        try:
            password = sa.engine.make_url(value).password if "://" in value else None
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: nothing to hide
            password = None
        if password:
            found.append(str(password))
    return found


def scrub(value: Any, secrets: list[str]) -> Any:
    """The value with every secret replaced by ``***`` (strings inside dicts and lists)."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    return value


@bp.get("/health/ready")
def ready():
    """Database and broker reachable: 200, else 503 (details for admins and loopback)."""
    database = HealthCheckOps.ping(db.engine)
    broker = check_broker(current_app.extensions["celery"])
    ok = database["ok"] and broker["ok"]
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
    if may_see_details():
        stats = get_session_stats()
        body.update({
            "checks": {"database": database, "broker": broker},
            "database": {"backend": db.engine.dialect.name, "host": db.engine.url.host},
            "pool": stats["pools"],
            "sessions": {"open": stats["open_sessions"], "checked_out": stats["checked_out"]},
        })
        if not ok:
            failed = [name for name, check in body["checks"].items() if not check["ok"]]
            body["reason"] = "; ".join(f"{name}: {body['checks'][name]['error']}"
                                       for name in failed)
        body = scrub(body, _secrets())
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    if not ok:
        response.headers["Retry-After"] = "5"
    return response
