"""JSON API ``/api/v1`` (DESIGN.md "API contract (v1)"): tokens, batches, sites, exports.

Every view parses its input, calls the operations, commits, and returns. Another user's
batch or site answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, current_app, jsonify

from models import Batch, db
from routes import batch_actions
from routes.api_common import (
    ApiError,
    api_user,
    bp,
    check_id,
    enqueue_start,
    json_body,
    not_found,
    query_int,
    require_batch_quota,
)
from routes.api_serializers import batch_body, comparison_body, event_body, iso, site_body
from routes.csrf import csrf
from routes.openapi import openapi_document as build_openapi
from routes.page_lists import MAX_PAGE_LIST_SIZE, PAGE_LIST_SIZE, site_pages
from utils.auth import check_credentials
from utils.batch_input import validate_batch, validate_own_url
from utils.db_operations import (
    BatchOps,
    ComparisonOps,
    EventOps,
    ReportOps,
    SiteOps,
    UserOps,
)
from utils.operations.reporting import SiteNameOps

csrf.exempt(bp)

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _owned_batch(batch_id: int) -> Batch:
    batch = BatchOps.get_for_user(db.session, check_id(batch_id, "batch"), api_user().id)
    if batch is None:
        raise not_found("batch")
    return batch


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3 description of this API."""
    return jsonify(build_openapi())


@bp.post("/tokens")
def create_token():
    """Exchange an e-mail and password for a bearer token (401 when wrong, unknown or
    locked: the same answer). Throttled per IP (utils/throttle.py)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "validation_error", "expected a JSON object",
                       {"body": "expected an object with email and password"})
    problems = {key: "required string" for key in ("email", "password")
                if not isinstance(body.get(key), str) or not body.get(key)}
    if problems:
        raise ApiError(400, "validation_error", "email and password are required", problems)
    user = check_credentials(body["email"], body["password"])
    if user is None:
        raise ApiError(401, "invalid_credentials",
                       "wrong e-mail or password, or too many attempts on this account")
    name = body.get("name") if isinstance(body.get("name"), str) else "api"
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    token, row = UserOps.issue_token(db.session, user, ttl, name=(name or "api")[:100])
    db.session.commit()
    return jsonify(token=token, expires_at=iso(row.expires_at)), 201


@bp.post("/batches")
def create_batch():
    """Validate and store a batch, then enqueue its start after the commit."""
    body = json_body()
    checked = validate_batch(body, current_app.config["MAX_URLS_PER_BATCH"])
    own_url, own_errors = validate_own_url(body, checked.urls) if checked.ok else (None, {})
    if not checked.ok or own_errors:
        raise ApiError(400, "validation_error", "the batch is invalid",
                       {**checked.errors, **own_errors})
    require_batch_quota(api_user().id)
    batch = BatchOps.create(db.session, api_user().id, checked.name, checked.urls,
                            checked.max_pages, own_url=own_url,
                            scheme_guessed=checked.scheme_guessed)
    db.session.commit()
    enqueue_start(batch.id)
    sites = ReportOps.sites(db.session, batch.id)
    return jsonify(batch_body(batch, 0, sites)), 201


@bp.get("/batches")
def list_batches():
    """Own batches, newest first; ``next`` is the cursor of the following page."""
    cursor = query_int("cursor", None, 1, 2**31 - 1)
    limit = query_int("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    rows, next_cursor = BatchOps.list_for_user(db.session, api_user().id, before_id=cursor,
                                               limit=limit)
    finished = ReportOps.finished_site_counts(db.session, [b.id for b in rows])
    items = [batch_body(b, BatchOps.progress_from(b, finished.get(b.id, 0))) for b in rows]
    return jsonify(items=items, next=next_cursor)


@bp.get("/batches/<int:batch_id>")
def get_batch(batch_id: int):
    found = BatchOps.status_for_user(db.session, check_id(batch_id, "batch"), api_user().id)
    if found is None:
        raise not_found("batch")
    batch, sites, progress = found
    return jsonify(batch_body(batch, progress, sites))


@bp.get("/batches/<int:batch_id>/comparison")
def get_comparison(batch_id: int):
    """The comparison: 409 until the batch has finished (a cancelled batch has none)."""
    batch = _owned_batch(batch_id)
    data = ComparisonOps.for_batch(db.session, batch.id)
    if data is None:
        message = ("the batch was cancelled; it has no comparison"
                   if batch.status == "cancelled" else "the batch has not finished yet")
        raise ApiError(409, "not_finished", message,
                       {"status": batch.status,
                        "progress": BatchOps.progress(db.session, batch)})
    return jsonify(comparison_body(data, ReportOps.sites(db.session, batch.id)))


@bp.get("/batches/<int:batch_id>/events")
def list_events(batch_id: int):
    """The activity timeline, oldest first; ``?after=<event id>`` for the newer ones."""
    batch = _owned_batch(batch_id)
    after = query_int("after", 0, 0, 2**31 - 1) or 0
    events = EventOps.for_batch(db.session, batch.id, after_id=after)
    return jsonify(items=[event_body(e) for e in events])


@bp.post("/batches/<int:batch_id>/cancel")
def cancel_batch(batch_id: int):
    """Cancel an unfinished batch (409 when it already finished)."""
    batch = _owned_batch(batch_id)
    if not batch_actions.cancel_batch(batch):
        raise ApiError(409, "already_finished", f"the batch already finished ({batch.status})",
                       {"status": batch.status})
    return jsonify(batch_body(batch, BatchOps.progress(db.session, batch),
                              ReportOps.sites(db.session, batch.id)))


@bp.delete("/batches/<int:batch_id>")
def delete_batch(batch_id: int):
    """Delete a batch with its sites, pages, events and comparison (cancelled first)."""
    batch_actions.delete_batch(_owned_batch(batch_id))
    return Response(status=204)


@bp.get("/batches/<int:batch_id>/export.csv")
def export_csv(batch_id: int):
    """RFC 4180 CSV; ``?excel=1`` adds the UTF-8 byte order mark Excel needs."""
    excel = bool(query_int("excel", 0, 0, 1))
    return batch_actions.export_response(_owned_batch(batch_id), "excel.csv" if excel else "csv")


@bp.get("/batches/<int:batch_id>/export.xlsx")
def export_xlsx(batch_id: int):
    """A workbook: sites, metrics grid, pages, issues."""
    return batch_actions.export_response(_owned_batch(batch_id), "xlsx")


@bp.get("/batches/<int:batch_id>/export.json")
def export_json(batch_id: int):
    return batch_actions.export_response(_owned_batch(batch_id), "json")


@bp.get("/sites/<int:site_id>")
def get_site(site_id: int):
    site = SiteOps.get_for_user(db.session, check_id(site_id, "site"), api_user().id)
    if site is None:
        raise not_found("site")
    return jsonify(_site_with_pages(site))


@bp.patch("/sites/<int:site_id>")
def rename_site(site_id: int):
    """``{"name": "..."}`` names the site; an empty or null name restores the derived one."""
    site = SiteOps.get_for_user(db.session, check_id(site_id, "site"), api_user().id)
    if site is None:
        raise not_found("site")
    body = json_body()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(body, dict) or "name" not in body or not (
            name is None or isinstance(name, str)):
        raise ApiError(400, "validation_error", "expected {\"name\": string or null}",
                       {"name": "required: a string (empty or null: the derived name)"})
    if isinstance(name, str) and len(name) > SiteNameOps.MAX_LENGTH:
        raise ApiError(400, "validation_error", "the name is too long",
                       {"name": f"at most {SiteNameOps.MAX_LENGTH} characters"})
    SiteNameOps.rename(db.session, site, name)
    db.session.commit()
    return jsonify(_site_with_pages(site))


def _site_with_pages(site) -> dict:
    """The site's body with one window of its pages (``?page=``, ``?per_page=``), never
    every record of a large site."""
    number = query_int("page", 1, 1, 1_000_000)
    size = query_int("per_page", PAGE_LIST_SIZE, 1, MAX_PAGE_LIST_SIZE)
    listing = site_pages(db.session, site.id, number, size)
    body = site_body(site, [])
    body["pages"] = listing.pop("items")
    body.update({f"pages_{key}": value for key, value in listing.items()})
    return body
