"""Authentication: Flask-Login sessions for browsers, bearer tokens for the API, roles.

Sign-in attempts are counted and the lock decided in one atomic UPDATE before any password
hash is computed (``UserOps.reserve_attempt``). Sessions and remember cookies carry the
user's ``session_version``: bumping it (sign out, password change, deletion) ends them all.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Request, Response, current_app, g, redirect, request, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user

from models import User, db
from utils import passwords
from utils.db_operations import UserOps
from utils.operations.users import TokenIdentity
from utils.request_scope import API_PREFIX, read_without_transaction

login_manager = LoginManager()



def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


class ApiRequestSession(SecureCookieSession):
    """The session of an API request: always empty, never saved."""


class CookieSessionsOutsideApi(SecureCookieSessionInterface):
    """Browser sessions (signed cookies) everywhere but under ``/api/``: the API
    authenticates with bearer tokens only, so there the session cookie is neither read (no
    signature check, no decoding) nor written (no ``Set-Cookie``, no ``Vary: Cookie``)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIX):
            return ApiRequestSession()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if isinstance(session, ApiRequestSession):
            return
        super().save_session(app, session, response)


def bearer_token(req: Request | None = None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, token = (req or request).headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def user_for_bearer(req: Request | None = None) -> TokenIdentity | None:
    """Who the request's live API token belongs to: one query. ``last_used_at`` is
    written at most once a minute; an API read on PostgreSQL runs without a transaction
    (``read_without_transaction``), so that write is one self-committing statement and the
    read never sends ``COMMIT`` (nor ``BEGIN``/``ROLLBACK``)."""
    token = bearer_token(req)
    if token is None:
        return None
    autocommit = read_without_transaction(db.session())
    user, touch = UserOps.user_for_token(db.session, token)
    if touch is not None:
        UserOps.touch_token(db.session, touch)
        if not autocommit:
            db.session.commit()
    return user


def check_credentials(email: str, password: str) -> User | None:
    """The user when the e-mail and password are right and the account is not locked.

    Unknown and locked accounts cost one dummy hash, so every refusal looks and lasts the
    same. Commits: the attempt is counted before the password is checked.
    """
    config = current_app.config
    reserved = UserOps.reserve_attempt(
        db.session, email, max_failures=config["LOGIN_MAX_FAILURES"],
        lock_for=timedelta(seconds=config["LOGIN_LOCK_SECONDS"]))
    db.session.commit()  # the count is visible to every racing attempt before any hash
    if reserved is None:
        passwords.burn_check(password)
        return None
    user_id, password_hash = reserved
    if not passwords.verify_password(password_hash, password):
        return None
    UserOps.attempt_succeeded(db.session, user_id)
    db.session.commit()
    return UserOps.get(db.session, user_id)


def sign_in(user: User, remember: bool = False) -> None:
    """Start a browser session; a fresh nonce rotates the remember cookie at each login."""
    user.login_nonce = secrets.token_urlsafe(9)
    login_user(user, remember=remember)


def parse_identity(value: str) -> tuple[int, int] | None:
    """``id:version[:nonce]`` from the session or remember cookie, or None."""
    parts = value.split(":")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def init_auth(app: Flask) -> None:
    """Wire Flask-Login: session users, bearer-token users, JSON 401s under /api."""
    app.session_interface = CookieSessionsOutsideApi()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(identity: str) -> User | None:
        parsed = parse_identity(identity)
        if parsed is None:
            return None
        user = UserOps.get(db.session, parsed[0])
        if user is None or user.session_version != parsed[1]:
            return None  # signed out everywhere, password changed, or deleted
        user.login_nonce = identity.split(":", 2)[2] if identity.count(":") >= 2 else ""
        return user

    @login_manager.request_loader
    def load_user_from_token(req: Request) -> User | None:
        """A bearer token outside /api (pages use the full user)."""
        identity = user_for_bearer(req)
        return UserOps.get(db.session, identity.id) if identity is not None else None

    @login_manager.unauthorized_handler
    def unauthorized():
        error_response = current_app.extensions["error_response"]
        if is_api_request():
            return error_response(401, "unauthorized", "authentication required",
                                  headers={"WWW-Authenticate": "Bearer"})
        return redirect(url_for(login_manager.login_view, next=request.full_path))


def _token_user() -> TokenIdentity | None:
    """The bearer token's user for an API request (cookies never count under /api)."""
    user = user_for_bearer()
    if user is not None:
        g._login_user = user  # Flask-Login's per-request user: the token's
    return user


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Admins only: 401 (or the sign-in page) when anonymous, 403 otherwise. Under /api
    only a bearer token counts, never a browser cookie."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        error_response = current_app.extensions["error_response"]
        if is_api_request():
            user = _token_user()
            if user is None:
                return error_response(401, "unauthorized", "a bearer token is required",
                                      headers={"WWW-Authenticate": "Bearer"})
        elif not current_user.is_authenticated:
            return login_manager.unauthorized()
        else:
            user = current_user
        if not user.is_admin:
            return error_response(403, "forbidden", "admin users only")
        return view(*args, **kwargs)

    return wrapper
