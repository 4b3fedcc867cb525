"""Authentication: Flask-Login sessions for browsers, bearer tokens for the API, roles."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, redirect, request, url_for
from flask_login import LoginManager, current_user

from models import User, db
from utils.db_operations import UserOps

login_manager = LoginManager()


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def init_auth(app: Flask) -> None:
    """Wire Flask-Login: session users, bearer-token users, JSON 401s under /api."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return UserOps.get(db.session, int(user_id)) if user_id.isdigit() else None

    @login_manager.request_loader
    def load_user_from_token(req: Request) -> User | None:
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        user = UserOps.user_for_token(db.session, token.strip())
        if user is not None and db.session.dirty:
            db.session.commit()  # last_used_at (written at most once a minute)
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        from routes.errors import error_response

        if is_api_request():
            return error_response(401, "unauthorized", "authentication required",
                                  headers={"WWW-Authenticate": "Bearer"})
        return redirect(url_for(login_manager.login_view, next=request.full_path))


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Signed-in admins only: 401 (or the sign-in page) when anonymous, 403 otherwise."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from routes.errors import error_response

        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            return error_response(403, "forbidden", "admin users only")
        return view(*args, **kwargs)

    return wrapper
