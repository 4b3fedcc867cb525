"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``).

Kept by hand next to the views in ``routes/api.py``; the schemathesis test checks that what
the endpoints accept and return conforms to it.
"""

from __future__ import annotations

from typing import Any

from utils.batch_input import DEFAULT_MAX_PAGES, MAX_NAME_LENGTH, MAX_PAGES_RANGE

MAX_ID = 2**31 - 1
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BATCH_STATUSES = ["pending", "running", "completed", "partial", "failed", "cancelled"]
SITE_STATUSES = ["pending", "running", "completed", "failed", "cancelled"]
ISSUE_CODES = ["missing_title", "missing_description", "duplicate_title", "missing_h1",
               "multiple_h1", "images_missing_alt", "broken_link", "slow_page",
               "parse_budget_exceeded"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required}


STRING = {"type": "string"}
INT = {"type": "integer"}
COUNT = {"type": "integer", "minimum": 0}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
STRINGS = {"type": "array", "items": STRING}
SCORE = {"type": "integer", "minimum": 0, "maximum": 100}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({
        "code": STRING, "message": STRING,
        "details": {"description": "what was wrong, e.g. URL errors keyed by index"}})}),
    "TokenRequest": {**_obj({"email": {"type": "string", "minLength": 1},
                             "password": {"type": "string", "minLength": 1},
                             "name": {"type": "string", "maxLength": 100}},
                            ["email", "password"])},
    "Token": _obj({"token": STRING, "expires_at": TIME}),
    "BatchRequest": _obj({
        "name": {"type": ["string", "null"], "maxLength": MAX_NAME_LENGTH},
        "urls": {"type": "array", "minItems": 1, "items": STRING,
                 "description": "http(s) URLs or host names; duplicates are merged; at most "
                                "MAX_URLS_PER_BATCH (default 50) distinct URLs"},
        "max_pages": {"type": "integer", "minimum": MAX_PAGES_RANGE[0],
                      "maximum": MAX_PAGES_RANGE[1], "default": DEFAULT_MAX_PAGES},
        "own_url": {"type": ["string", "null"],
                    "description": "your own site: one of urls (after normalisation); the "
                                   "comparison is then framed around it"},
    }, ["urls"]),
    "SiteSummary": _obj({"id": INT, "url": STRING,
                         "status": {"type": "string", "enum": SITE_STATUSES},
                         "error": {"type": ["string", "null"]}}),
    "Batch": _obj({
        "id": INT, "name": STRING,
        "status": {"type": "string", "enum": BATCH_STATUSES},
        "progress": SCORE, "total_urls": COUNT,
        "max_pages": {"type": "integer", "minimum": 1, "maximum": 200},
        "urls": {"type": "array", "items": _ref("SiteSummary")},
        "own_site_id": {"type": ["integer", "null"], "description": "the site marked yours"},
        "created_at": TIME, "started_at": _nullable(TIME), "finished_at": _nullable(TIME),
    }),
    "BatchList": _obj({"items": {"type": "array", "items": _ref("Batch")},
                       "next": {"type": ["integer", "null"],
                                "description": "pass as ?cursor= for the next page"}}),
    "Scores": _obj({key: SCORE for key in ("seo", "performance", "security", "content",
                                           "overall")}),
    "Metric": _obj({
        "key": STRING, "label": STRING, "better": {"type": "string", "enum": ["higher", "lower"]},
        "values": {"type": "object", "description": "site id -> value; null = not available",
                   "additionalProperties": {"type": ["number", "boolean", "null"]}},
        "winners": STRINGS,
    }),
    "Gap": _obj({"key": STRING, "category": STRING, "absent": BOOL, "text": STRING,
                 "points": {"type": "number", "description": "score points it is worth"},
                 "holders": COUNT, "rivals": COUNT, "advice": STRING}),
    "Strength": _obj({"key": STRING, "category": STRING, "text": STRING, "measured": STRING,
                      "points": {"type": "number"}, "rivals_behind": COUNT, "rivals": COUNT}),
    "Comparison": _obj({
        "metrics": {"type": "array", "items": _ref("Metric")},
        "scores": {"type": "object", "additionalProperties": _nullable(_ref("Scores"))},
        "gaps": {"type": "object", "additionalProperties": STRINGS},
        "gap_details": {"type": "object", "description": "site id -> gaps, most valuable "
                        "first", "additionalProperties": {"type": "array",
                                                          "items": _ref("Gap")}},
        "strengths": {"type": "object", "description": "site id -> what it does better than "
                      "every rival", "additionalProperties": {"type": "array",
                                                              "items": _ref("Strength")}},
        "names": {"type": "object", "additionalProperties": STRING},
        "own_site_id": {"type": ["integer", "null"]},
        "standing": {"type": "object", "description": "metric key -> lead, tie or trail for "
                     "the own site (null: no winner or no value)",
                     "additionalProperties": {"enum": ["lead", "tie", "trail", None]}},
    }, ["metrics", "scores", "gaps"]),
    "SiteName": _obj({"name": {"type": ["string", "null"], "maxLength": 200}}),
    "Report": _obj({
        "final_url": {"type": ["string", "null"]},
        "status_code": {"type": ["integer", "null"]},
        "redirect_chain": {"type": "array", "items": _obj({"url": STRING, "status": INT})},
        "response_time_ms": {"type": ["number", "null"]},
        "page_bytes": {"type": ["integer", "null"]},
        "https": BOOL,
        "security_headers": {"type": "object", "additionalProperties": BOOL},
        "title": {"type": ["string", "null"]},
        "meta_description": {"type": ["string", "null"]},
        "canonical": {"type": ["string", "null"]},
        "lang": {"type": ["string", "null"]},
        "has_viewport": BOOL, "h1": STRINGS, "h2_count": COUNT, "word_count": COUNT,
        "internal_links": COUNT, "external_links": COUNT, "images": COUNT,
        "images_missing_alt": COUNT,
        "open_graph": {"type": "object", "additionalProperties": STRING},
        "jsonld_types": STRINGS, "technologies": STRINGS,
        "robots": _obj({"found": BOOL, "disallow_count": COUNT,
                        "crawl_delay": {"type": ["number", "null"]}, "sitemaps": STRINGS}),
        "sitemap": _obj({"found": BOOL, "url_count": COUNT}),
        "emails": STRINGS,
        "social_profiles": {"type": "object", "additionalProperties": STRING},
        "pages_crawled": COUNT,
        "issues": {"type": "array", "items": _obj({
            "code": {"type": "string", "enum": ISSUE_CODES}, "count": COUNT})},
    }),
    "Page": _obj({
        "url": STRING, "final_url": {"type": ["string", "null"]},
        "status_code": {"type": ["integer", "null"]}, "analysed": BOOL, "is_homepage": BOOL,
        "title": {"type": ["string", "null"]},
        "response_time_ms": {"type": ["number", "null"]},
        "error": {"type": ["string", "null"]},
        "linked_from": {"type": ["string", "null"],
                        "description": "the first crawled page that links here"},
        "issues": {"type": "array", "items": {"type": "string", "enum": ISSUE_CODES}},
        "truncated": BOOL,
    }, ["url", "final_url", "status_code", "analysed", "is_homepage", "title",
        "response_time_ms", "error", "issues"]),
    "Site": _obj({
        "id": INT, "batch_id": INT, "url": STRING, "name": STRING, "is_own": BOOL,
        "status": {"type": "string", "enum": SITE_STATUSES},
        "error": {"type": ["string", "null"]},
        "report": _nullable(_ref("Report")),
        "scores": _nullable(_ref("Scores")),
        "pages": {"type": "array", "items": _ref("Page")},
        "pages_total": COUNT, "pages_page": INT, "pages_per_page": INT, "pages_last": INT,
        "pages_next": {"type": ["integer", "null"]},
    }),
    "Event": _obj({"id": INT, "kind": STRING, "message": STRING,
                   "site_id": {"type": ["integer", "null"]},
                   "data": {"type": ["object", "null"]}, "created_at": TIME}),
    "EventList": _obj({"items": {"type": "array", "items": _ref("Event")}}),
    "Export": _obj({
        "batch": _ref("Batch"),
        "sites": {"type": "array", "items": _obj({
            "id": INT, "url": STRING, "status": {"type": "string", "enum": SITE_STATUSES},
            "error": {"type": ["string", "null"]},
            "scores": _nullable(_ref("Scores")), "report": _nullable(_ref("Report")),
            "pages": {"type": "array", "items": _ref("Page")}})},
        "comparison": _nullable(_ref("Comparison")),
    }),
}

CHANGE_KINDS = ["title", "meta_description", "h1", "canonical", "lang", "open_graph",
                "pages_added", "pages_removed", "technology_added", "technology_removed",
                "email_added", "email_removed", "social_added", "social_removed",
                "security_header_gained", "security_header_lost", "score_changed",
                "robots_changed", "sitemap_changed", "site_down", "site_up", "word_count"]
SCHEDULE = _obj({
    "every": {"type": "string", "enum": ["off", "day", "week"]},
    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
    "weekday": {"type": ["integer", "null"], "minimum": 0, "maximum": 6,
                "description": "0 = Monday; weekly schedules only"},
    "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
}, ["every"])
NOTIFY = _obj({"emails": {"type": "array", "maxItems": 20, "items": STRING},
               "webhook_url": {"type": ["string", "null"]}}, [])
WATCHLIST_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
    "urls": {"type": "array", "minItems": 2, "items": STRING,
             "description": "2 to MAX_URLS_PER_BATCH distinct sites"},
    "own_url": {"type": ["string", "null"], "description": "one of urls"},
    "max_pages": {"type": "integer", "minimum": MAX_PAGES_RANGE[0],
                  "maximum": MAX_PAGES_RANGE[1], "default": DEFAULT_MAX_PAGES},
    "schedule": SCHEDULE, "notify": NOTIFY, "paused": BOOL,
}
SCHEMAS.update({
    "WatchlistRequest": _obj(WATCHLIST_FIELDS, ["name", "urls"]),
    "WatchlistPatch": _obj({**WATCHLIST_FIELDS, "rotate_feed_token": {
        "type": "boolean", "description": "true revokes the feed URL (a new one is issued)"}},
        []),
    "Watchlist": _obj({
        "id": INT, "name": STRING, "urls": STRINGS, "own_url": {"type": ["string", "null"]},
        "max_pages": {"type": "integer", "minimum": 1, "maximum": 200},
        "schedule": _obj({"every": {"type": "string", "enum": ["off", "day", "week"]},
                          "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                          "weekday": {"type": ["integer", "null"]}, "timezone": STRING}),
        "notify": _obj({"emails": STRINGS, "webhook_url": {"type": ["string", "null"]}}),
        "paused": BOOL, "next_run_at": _nullable(TIME), "feed_url": STRING,
        "created_at": TIME, "updated_at": TIME,
        "webhook_secret": {"type": "string",
                           "description": "only in the answer that set the webhook URL"},
    }, ["id", "name", "urls", "own_url", "max_pages", "schedule", "notify", "paused",
        "next_run_at", "feed_url", "created_at", "updated_at"]),
    "WatchlistList": _obj({"items": {"type": "array", "items": _ref("Watchlist")},
                           "next": {"type": ["integer", "null"]}}),
    "RunCreated": _obj({"batch_id": INT}),
    "Run": _obj({"batch_id": INT, "status": {"type": "string", "enum": BATCH_STATUSES},
                 "scheduled_for": TIME, "started_at": _nullable(TIME),
                 "finished_at": _nullable(TIME)}),
    "RunList": _obj({"items": {"type": "array", "items": _ref("Run")},
                     "next": {"type": ["integer", "null"]}}),
    "Change": _obj({"id": INT, "batch_id": INT, "site_url": STRING,
                    "kind": {"type": "string", "enum": CHANGE_KINDS},
                    "before": {"description": "the value before (null for an addition)"},
                    "after": {"description": "the value after (null for a removal)"},
                    "detected_at": TIME}),
    "ChangeList": _obj({"items": {"type": "array", "items": _ref("Change")},
                        "next": {"type": ["integer", "null"]}}),
})

ERRORS = {
    400: "Invalid input (malformed JSON, invalid fields; URL errors keyed by index)",
    401: "Missing, invalid, expired or revoked token (or wrong credentials)",
    404: "No such resource among the caller's own",
    409: "Conflict with the batch's state",
    413: "The body is larger than MAX_CONTENT_LENGTH (1 MiB by default)",
    415: "The body is not application/json",
    429: "Too many requests (per-address throttle or per-user limit); see Retry-After",
}


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema_name)}}}


def _responses(ok: int, ok_body: dict[str, Any] | None, *errors: int) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): ok_body or {"description": "No content"}}
    for status in errors:
        responses[str(status)] = _json("Error", ERRORS[status])
    return responses


def _id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"the {what}'s id",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def _query(name: str, description: str, low: int, high: int) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": low, "maximum": high}}


def _body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


BATCH_ID = _id("batch_id", "batch")


WATCHLIST_ID = _id("watchlist_id", "watchlist")


def _watchlist_paths() -> dict[str, Any]:
    cursor = _query("cursor", "the `next` value of the previous page", 1, MAX_ID)
    limit = _query("limit", "page size", 1, 100)
    return {
        "/api/v1/watchlists": {
            "post": {"operationId": "createWatchlist", "summary": "Create a watchlist",
                     "requestBody": _body("WatchlistRequest"),
                     "responses": _responses(201, _json("Watchlist", "The stored watchlist"),
                                             400, 401, 415)},
            "get": {"operationId": "listWatchlists", "summary": "Own watchlists, newest first",
                    "parameters": [cursor, limit],
                    "responses": _responses(200, _json("WatchlistList", "A page"), 400, 401)}},
        "/api/v1/watchlists/{watchlist_id}": {
            "get": {"operationId": "getWatchlist", "summary": "A watchlist",
                    "parameters": [WATCHLIST_ID],
                    "responses": _responses(200, _json("Watchlist", "The watchlist"), 401, 404)},
            "patch": {"operationId": "updateWatchlist", "summary": "Change some fields",
                      "parameters": [WATCHLIST_ID], "requestBody": _body("WatchlistPatch"),
                      "responses": _responses(200, _json("Watchlist", "The watchlist"),
                                              400, 401, 404, 415)},
            "delete": {"operationId": "deleteWatchlist",
                       "summary": "Delete a watchlist (its runs stay as batches)",
                       "parameters": [WATCHLIST_ID],
                       "responses": _responses(204, None, 401, 404)}},
        "/api/v1/watchlists/{watchlist_id}/runs": {
            "post": {"operationId": "runWatchlistNow", "summary": "Run now",
                     "parameters": [WATCHLIST_ID],
                     "responses": _responses(201, _json("RunCreated", "The run's batch"),
                                             401, 404)},
            "get": {"operationId": "listWatchlistRuns", "summary": "Runs, newest first",
                    "parameters": [WATCHLIST_ID, cursor, limit],
                    "responses": _responses(200, _json("RunList", "A page of runs"),
                                            400, 401, 404)}},
        "/api/v1/watchlists/{watchlist_id}/changes": {"get": {
            "operationId": "listWatchlistChanges", "summary": "Changes, newest first",
            "parameters": [
                WATCHLIST_ID,
                {"name": "since", "in": "query", "required": False,
                 "description": "RFC 3339; only changes detected at or after it",
                 "schema": {"type": "string", "format": "date-time"}},
                cursor, limit,
                {"name": "site", "in": "query", "required": False,
                 "description": "only this site URL", "schema": STRING},
                {"name": "kind", "in": "query", "required": False,
                 "description": "only this kind", "schema": {"type": "string",
                                                             "enum": CHANGE_KINDS}}],
            "responses": _responses(200, _json("ChangeList", "A page of changes"),
                                    400, 401, 404)}},
    }


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/tokens": {"post": {
            "operationId": "createToken", "summary": "Exchange e-mail and password for a token",
            "security": [], "requestBody": _body("TokenRequest"),
            "responses": _responses(201, _json("Token", "A new bearer token"),
                                    400, 401, 413, 415, 429)}},
        "/api/v1/batches": {
            "post": {"operationId": "createBatch", "summary": "Submit a batch of sites",
                     "requestBody": _body("BatchRequest"),
                     "responses": _responses(201, _json("Batch", "The stored batch"),
                                             400, 401, 413, 415, 429)},
            "get": {"operationId": "listBatches", "summary": "Own batches, newest first",
                    "parameters": [
                        _query("cursor", "the `next` value of the previous page", 1, MAX_ID),
                        _query("limit", "page size (default 20)", 1, 100)],
                    "responses": _responses(200, _json("BatchList", "A page of batches"),
                                            400, 401)}},
        "/api/v1/batches/{batch_id}": {
            "get": {"operationId": "getBatch", "summary": "A batch with its sites",
                    "parameters": [BATCH_ID],
                    "responses": _responses(200, _json("Batch", "The batch"), 401, 404)},
            "delete": {"operationId": "deleteBatch", "summary": "Delete a batch",
                       "parameters": [BATCH_ID],
                       "responses": _responses(204, None, 401, 404)}},
        "/api/v1/batches/{batch_id}/comparison": {"get": {
            "operationId": "getComparison", "summary": "Metrics, winners, scores and gaps",
            "parameters": [BATCH_ID],
            "responses": _responses(200, _json("Comparison", "The comparison"),
                                    401, 404, 409)}},
        "/api/v1/batches/{batch_id}/events": {"get": {
            "operationId": "listEvents", "summary": "The batch's activity timeline",
            "parameters": [BATCH_ID, _query("after", "only events with a larger id", 0, MAX_ID)],
            "responses": _responses(200, _json("EventList", "Events, oldest first"),
                                    400, 401, 404)}},
        "/api/v1/batches/{batch_id}/cancel": {"post": {
            "operationId": "cancelBatch", "summary": "Cancel an unfinished batch",
            "parameters": [BATCH_ID],
            "responses": _responses(200, _json("Batch", "The cancelled batch"),
                                    401, 404, 409)}},
        "/api/v1/batches/{batch_id}/export.csv": {"get": {
            "operationId": "exportCsv",
            "summary": "One CSV row per site, one column per value (RFC 4180); ?excel=1 "
                       "adds a UTF-8 byte order mark so Excel reads the accents",
            "parameters": [BATCH_ID, _query("excel", "1: the Excel variant (UTF-8 BOM)", 0, 1)],
            "responses": _responses(200, {"description": "CSV file", "content": {
                "text/csv": {"schema": {"type": "string"}}}}, 400, 401, 404)}},
        "/api/v1/batches/{batch_id}/export.xlsx": {"get": {
            "operationId": "exportXlsx",
            "summary": "Workbook with the sheets sites, metrics, pages and issues",
            "parameters": [BATCH_ID],
            "responses": _responses(200, {"description": "XLSX file", "content": {
                XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}}}, 401, 404)}},
        "/api/v1/batches/{batch_id}/export.json": {"get": {
            "operationId": "exportJson", "summary": "Batch, sites, reports, pages, comparison",
            "parameters": [BATCH_ID],
            "responses": _responses(200, _json("Export", "JSON file"), 401, 404)}},
        "/api/v1/sites/{site_id}": {
            "get": {"operationId": "getSite", "summary": "A site's report and crawled pages",
                    "parameters": [_id("site_id", "site"),
                                   _query("page", "page of the pages list (see pages_next)",
                                          1, 1_000_000),
                                   _query("per_page", "pages per page (default 50)", 1, 200)],
                    "responses": _responses(200, _json("Site", "The site"), 400, 401, 404)},
            "patch": {"operationId": "renameSite",
                      "summary": "Name the site (empty or null: the name its pages give)",
                      "parameters": [_id("site_id", "site")], "requestBody": _body("SiteName"),
                      "responses": _responses(200, _json("Site", "The renamed site"),
                                              400, 401, 404, 415)}},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}},
    }


def openapi_document() -> dict[str, Any]:
    """The whole document (a fresh dict each call)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Rivalscope API", "version": "1.0.0",
                 "description": "Batch competitor website analysis. Authenticate with "
                                "`Authorization: Bearer <token>` from POST /api/v1/tokens. "
                                "Errors are {\"error\": {code, message, details}}."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths() | _watchlist_paths(),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }
