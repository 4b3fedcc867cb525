"""Request-scoped sessions: Flask-SQLAlchemy's ``db.session``, registered with the session
manager for the life of the request and removed at app-context teardown."""

from __future__ import annotations

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy

from utils.db_session_manager import SESSION_MANAGER


def init_request_scope(app: Flask, db: SQLAlchemy) -> None:
    """Register each request's session; roll back and remove it when the context ends."""

    @app.before_request
    def register_request_session() -> None:
        SESSION_MANAGER.register(db.session(), scope="request",
                                 owner=request.endpoint or request.path)

    @app.teardown_appcontext
    def remove_request_session(_exc: BaseException | None) -> None:
        if db.session.registry.has():
            session = db.session()
            SESSION_MANAGER.unregister(session)
            db.session.remove()
