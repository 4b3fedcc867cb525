"""JSON API for monitoring: ``/api/v1/watchlists`` (issue 11; shapes are a contract).

Same token gate and error envelope as ``routes/api.py``; a watchlist of another user
answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from analysis.changes import KINDS
from analysis.ssrf import parse_allow_networks
from models import Watchlist, db
from models.base import utcnow
from routes.api_common import (
    ApiError,
    api_error,
    api_user,
    check_id,
    enqueue_start,
    json_body,
    not_found,
    query_int,
    require_token,
)
from routes.api_serializers import iso
from routes.csrf import csrf
from utils.operations.watchlists import (
    ChangeOps,
    RunOps,
    WatchlistOps,
    change_body,
)
from utils.watchlist_input import validate_watchlist

bp = Blueprint("watchlists_api", __name__, url_prefix="/api/v1")
bp.before_request(require_token)
bp.register_error_handler(ApiError, api_error)
csrf.exempt(bp)

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CURSOR = 2**31 - 1


def watchlist_body(watchlist: Watchlist, secret: str | None = None) -> dict[str, Any]:
    """The API shape; ``webhook_secret`` only in the answer that set the webhook."""
    body = {
        "id": watchlist.id, "name": watchlist.name, "urls": list(watchlist.urls),
        "own_url": watchlist.own_url, "max_pages": watchlist.max_pages,
        "schedule": {"every": watchlist.schedule_every, "hour": watchlist.schedule_hour,
                     "weekday": watchlist.schedule_weekday, "timezone": watchlist.timezone},
        "notify": {"emails": list(watchlist.notify_emails or []),
                   "webhook_url": watchlist.webhook_url},
        "paused": watchlist.paused,
        "next_run_at": iso(watchlist.next_due_at),
        "feed_url": url_for("watchlists_web.feed", token=watchlist.feed_token, _external=True),
        "created_at": iso(watchlist.created_at), "updated_at": iso(watchlist.updated_at),
    }
    if secret is not None:
        body["webhook_secret"] = secret
    return body


def _owned(watchlist_id: int) -> Watchlist:
    watchlist = WatchlistOps.get_for_user(db.session, check_id(watchlist_id, "watchlist"),
                                          api_user().id)
    if watchlist is None:
        raise not_found("watchlist")
    return watchlist


def _since() -> datetime | None:
    raw = request.args.get("since")
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ApiError(400, "invalid_since", "since must be an RFC 3339 timestamp with offset",
                       {"since": raw[:100]})
    return value


def _validated(payload: Any, current: dict[str, Any] | None = None):
    checked = validate_watchlist(
        payload, current_app.config["MAX_URLS_PER_BATCH"], current,
        tuple(parse_allow_networks(current_app.config.get("FETCH_ALLOW_NETWORKS", ""))))
    if not checked.ok:
        raise ApiError(400, "validation_error", "the watchlist is invalid", checked.errors)
    return checked


@bp.post("/watchlists")
def create_watchlist():
    """Store a watchlist; its first scheduled run is the next slot."""
    checked = _validated(json_body())
    watchlist, secret = WatchlistOps.create(db.session, api_user().id, checked)
    db.session.commit()
    return jsonify(watchlist_body(watchlist, secret)), 201


@bp.get("/watchlists")
def list_watchlists():
    cursor = query_int("cursor", None, 1, MAX_CURSOR)
    limit = query_int("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    rows, next_cursor = WatchlistOps.list_for_user(db.session, api_user().id,
                                                   before_id=cursor, limit=limit)
    return jsonify(items=[watchlist_body(w) for w in rows], next=next_cursor)


@bp.get("/watchlists/<int:watchlist_id>")
def get_watchlist(watchlist_id: int):
    return jsonify(watchlist_body(_owned(watchlist_id)))


@bp.patch("/watchlists/<int:watchlist_id>")
def update_watchlist(watchlist_id: int):
    """Change any fields; ``rotate_feed_token: true`` revokes the feed URL."""
    watchlist = _owned(watchlist_id)
    payload = json_body()
    rotate = isinstance(payload, dict) and payload.pop("rotate_feed_token", False)
    if rotate not in (True, False):
        raise ApiError(400, "validation_error", "the watchlist is invalid",
                       {"rotate_feed_token": "must be true or false"})
    checked = _validated(payload, WatchlistOps.as_input(watchlist))
    secret = WatchlistOps.apply(watchlist, checked, utcnow())
    if rotate:
        WatchlistOps.rotate_feed_token(watchlist)
    db.session.commit()
    return jsonify(watchlist_body(watchlist, secret))


@bp.delete("/watchlists/<int:watchlist_id>")
def delete_watchlist(watchlist_id: int):
    WatchlistOps.delete(db.session, _owned(watchlist_id))
    db.session.commit()
    return Response(status=204)


@bp.post("/watchlists/<int:watchlist_id>/runs")
def run_now(watchlist_id: int):
    """Start a run now: an ordinary batch linked to the watchlist."""
    batch_id = RunOps.run_now(db.session, _owned(watchlist_id))
    db.session.commit()
    enqueue_start(batch_id)
    return jsonify(batch_id=batch_id), 201


@bp.get("/watchlists/<int:watchlist_id>/runs")
def list_runs(watchlist_id: int):
    watchlist = _owned(watchlist_id)
    cursor = query_int("cursor", None, 1, MAX_CURSOR)
    limit = query_int("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    rows, next_cursor = RunOps.list_for(db.session, watchlist.id, before_id=cursor,
                                        limit=limit)
    return jsonify(items=[{"batch_id": r.batch_id, "status": r.status,
                           "scheduled_for": iso(r.scheduled_for),
                           "started_at": iso(r.started_at), "finished_at": iso(r.finished_at)}
                          for r in rows], next=next_cursor)


@bp.get("/watchlists/<int:watchlist_id>/changes")
def list_changes(watchlist_id: int):
    """Changes newest first; ``since`` (RFC 3339), ``cursor``, ``site`` and ``kind`` filter."""
    watchlist = _owned(watchlist_id)
    since = _since()
    cursor = query_int("cursor", None, 1, MAX_CURSOR)
    limit = query_int("limit", 50, 1, MAX_PAGE_SIZE)
    kind = request.args.get("kind")
    if kind is not None and kind not in KINDS:
        raise ApiError(400, "invalid_kind", "kind must be one of the change kinds",
                       {"kind": kind[:100], "kinds": list(KINDS)})
    rows, next_cursor = ChangeOps.for_watchlist(
        db.session, watchlist.id, since=since, before_id=cursor,
        site_url=request.args.get("site") or None, kind=kind, limit=limit)
    return jsonify(items=[change_body(c) for c in rows], next=next_cursor)
