"""The API blueprint, its bearer-token gate, JSON body parsing and error raising.

The API authenticates with ``Authorization: Bearer <token>`` only: a browser session cookie
is never accepted here (the blueprint is exempt from CSRF, so cookies must not count).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, g, request
from flask_login import current_user

from models import User, db
from routes.errors import error_response
from utils.auth import bearer_token, user_for_bearer
from utils.operations.limits import QuotaRefusal, check_batch_quota
from utils.operations.users import TokenIdentity

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Endpoints anyone may call (no token).
PUBLIC_ENDPOINTS = {"api.create_token", "api.openapi_document"}
# Ids in paths are 32-bit database keys; larger numbers cannot name a row.
MAX_ID = 2**31 - 1


class ApiError(Exception):
    """An error answered as ``{"error": {code, message, details}}``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


@bp.before_request
def require_token() -> None:
    """Resolve the bearer token to a user (401 when missing, unknown, expired or revoked)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    if bearer_token() is None:
        raise ApiError(401, "unauthorized", "a bearer token is required",
                       headers={"WWW-Authenticate": "Bearer"})
    user = user_for_bearer()
    if user is None:
        raise ApiError(401, "unauthorized", "the token is invalid, expired or revoked",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    g.api_user = user
    g._login_user = user  # Flask-Login's per-request user: the token's, never the cookie's


def api_user() -> User | TokenIdentity:
    """The user the request's token belongs to (its ``TokenIdentity``: id, email,
    is_admin)."""
    return g.api_user if "api_user" in g else current_user


def json_body() -> Any:
    """The request's JSON document: 415 for another media type, 400 when malformed."""
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_JSON_DEPTH", 32)
    too_deep = ApiError(400, "json_too_deep", f"the JSON body nests deeper than {limit} levels",
                        {"max_depth": limit})
    try:
        document = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", "the body is not valid JSON",
                       {"reason": str(exc)[:200]}) from exc
    if json_depth(document) > limit:
        raise too_deep
    return document


def json_depth(document: Any) -> int:
    """How deep lists and objects nest in a parsed document (iterative: no recursion)."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, dict | list))
    return deepest


def batch_quota_refusal(user_id: int) -> QuotaRefusal | None:
    """Why this user may not create a batch now (per-user limits in config), or None."""
    config = current_app.config
    return check_batch_quota(db.session, user_id,
                             max_running_sites=config["USER_MAX_RUNNING_SITES"],
                             max_batches_per_hour=config["USER_MAX_BATCHES_PER_HOUR"],
                             max_pages_per_day=config["USER_MAX_PAGES_PER_DAY"])


def require_batch_quota(user_id: int) -> None:
    """429 with Retry-After when the user is over a per-user limit."""
    refusal = batch_quota_refusal(user_id)
    if refusal is not None:
        raise ApiError(429, refusal.code, refusal.message,
                       {"limit": refusal.limit, "used": refusal.used,
                        "retry_after": refusal.retry_after},
                       headers={"Retry-After": str(refusal.retry_after)})


def check_id(value: int, what: str) -> int:
    """Path ids beyond a database key's range name nothing: 404."""
    if not 1 <= value <= MAX_ID:
        raise not_found(what)
    return value


def enqueue_start(batch_id: int) -> None:
    """Ring the doorbell after the commit; if the broker is down, beat restarts the batch."""
    from tasks.analysis_tasks import start_batch

    try:
        start_batch.delay(batch_id)
    except Exception:  # noqa: BLE001 - the batch row is safe; requeue_stalled_sites retries
        log.exception("could not enqueue batch %s; the beat requeue will start it", batch_id)


def query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query argument within [low, high]; a 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, f"invalid_{name}", f"{name} must be an integer from {low} to {high}",
                       {name: raw[:100]})
    return int(raw)
