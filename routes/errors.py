"""Error responses: JSON ``{"error": {code, message, details}}`` under /api, pages elsewhere.

Database errors map by category: retryable -> 503 + Retry-After, integrity -> 409,
data -> 400, not found -> 404, anything else -> 500 with a generic message.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, make_response, render_template, render_template_string, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from models import db
from utils.db_error_handler import record_error

log = logging.getLogger(__name__)

DB_STATUS = {"retryable": 503, "integrity": 409, "data": 400, "programming": 500}

ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ status }} {{ title }} · Rivalscope</title></head>
<body><main><h1>{{ status }} {{ title }}</h1><p>{{ message }}</p>
<p><a href="/">Back to Rivalscope</a></p></main></body></html>"""


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/health")


def error_page(status: int, title: str, message: str) -> str:
    """The error page in the site's layout; the bare page if the layout cannot render
    (e.g. the database behind the signed-in user is down)."""
    try:
        return render_template("error.html", status=status, title=title, message=message)
    except Exception:  # noqa: BLE001 - an error page must always render
        log.warning("error page: the layout failed; sending the bare page", exc_info=True)
        db.session.rollback()
        return render_template_string(ERROR_PAGE, status=status, title=title, message=message)


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None):
    """The one error shape of the API (or a small page for browsers)."""
    if wants_json():
        response = jsonify(error={"code": code, "message": message, "details": details})
    else:
        response = make_response(error_page(status, code.replace("_", " "), message))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """HTTP errors, database errors by category, and a generic 500."""
    # The database layer's auth and throttling answer in the same shape without importing
    # the routes (utils never imports routes): they look the builder up here.
    app.extensions["error_response"] = error_response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        headers = {}
        if error.code == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_response(error.code or 500, code, error.description or error.name,
                              getattr(error, "details", None), headers)

    @app.errorhandler(SQLAlchemyError)
    def database_error(error: SQLAlchemyError):
        db.session.rollback()
        info = record_error(error, request.endpoint or request.path)
        if info.not_found:
            return error_response(404, "not_found", info.message)
        status = DB_STATUS.get(info.category, 500)
        details = {"constraint": info.constraint} if info.category == "integrity" else None
        headers = {"Retry-After": "5"} if status == 503 else None
        return error_response(status, f"database_{info.category}", info.message, details,
                              headers)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return error_response(500, "internal_error", "An internal error occurred.")
