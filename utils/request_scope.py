"""Request-scoped sessions: Flask-SQLAlchemy's ``db.session``, registered with the session
manager for the life of the request and removed at app-context teardown.

An API read (GET or HEAD under ``/api/``) on PostgreSQL runs its statements without a
transaction (``read_without_transaction``): psycopg2 would otherwise send ``BEGIN`` before
the first statement and the pool ``ROLLBACK`` after the last, two round trips of four for
the token check plus one read. Under READ COMMITTED every statement sees its own snapshot
in a transaction too, so a read sees exactly what it saw before; API reads take no locks
and write nothing but the token's ``last_used_at`` (one statement, at most once a minute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from utils.database_access import autocommit_until_checkin
from utils.db_session_manager import SESSION_MANAGER


def init_request_scope(app: Flask, db: SQLAlchemy) -> None:
    """Register each request's session; roll back and remove it when the context ends."""

    @app.before_request
    def register_request_session() -> None:
        SESSION_MANAGER.register(db.session(), scope="request",
                                 owner=request.endpoint or request.path)

    # A read (GET/HEAD) whose pooled connection died since its last use (a restarted
    # database; idle connections are pinged, busy ones are not) runs once more on a fresh
    # connection. Writes never re-run. Covers the before_request hooks (token lookup) and
    # the view, the two places a request first touches the database.
    app.preprocess_request = _reads_retried_once(app.preprocess_request, db)
    app.dispatch_request = _reads_retried_once(app.dispatch_request, db)

    @app.teardown_appcontext
    def remove_request_session(_exc: BaseException | None) -> None:
        if db.session.registry.has():
            session = db.session()
            SESSION_MANAGER.unregister(session)
            db.session.remove()


def _reads_retried_once(step: Callable[[], Any], db: SQLAlchemy) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return step()
        except DBAPIError as error:
            if request.method not in ("GET", "HEAD") or not error.connection_invalidated:
                raise
            db.session.rollback()
            return step()
    return run


API_PREFIX = "/api/"  # the JSON API: bearer tokens only, no cookie session
READ_METHODS = ("GET", "HEAD")


def read_without_transaction(session: Session) -> bool:
    """For an API read, run the session's statements without a transaction (PostgreSQL with
    psycopg2; ``autocommit_until_checkin``). Call it before the session's first statement.
    True when its statements run without a transaction."""
    if request.method not in READ_METHODS or not request.path.startswith(API_PREFIX):
        return False
    if session.in_transaction():  # something ran already: keep its transaction
        return False
    return autocommit_until_checkin(session.connection())
