"""Per-IP throttling of sign-in, sign-up and token creation (Flask-Limiter).

Counts live in Redis when Redis is the broker (shared by every web process), in memory
otherwise (per process). Settings: ``RATELIMIT_ENABLED``, ``AUTH_RATE_LIMIT`` (a limits
string such as ``"10 per minute"``, read at each request), ``RATELIMIT_STORAGE_URI``
(overrides the choice), ``RATELIMIT_KEY_PREFIX``. A refusal is a 429 with ``Retry-After``,
in the error envelope under ``/api``.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

# Limits that apply to every request; only when one is set does each request consult the
# limiter before its view.
APP_WIDE_LIMITS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")
THROTTLED_ENDPOINTS = ("auth.login", "auth.signup", "auth.create_token", "api.create_token")


def storage_uri(config: dict) -> str:
    """Redis when the broker is Redis, memory otherwise (unless set explicitly)."""
    explicit = config.get("RATELIMIT_STORAGE_URI") or ""
    if explicit:
        return explicit
    broker = config.get("CELERY_BROKER_URL") or ""
    return broker if broker.startswith(("redis://", "rediss://")) else "memory://"


def auth_limit() -> str:
    return current_app.config["AUTH_RATE_LIMIT"]


def retry_after_seconds(limiter: Limiter) -> int:
    """Seconds until the breached window resets (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def init_throttle(app: Flask) -> Limiter:
    """Create this app's limiter and wrap the throttled views (after the blueprints)."""
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app.config)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    limiter = Limiter(key_func=get_remote_address, app=app)
    app.extensions["rivalscope_limiter"] = limiter
    for endpoint in THROTTLED_ENDPOINTS:
        view = app.view_functions.get(endpoint)
        if view is not None:
            app.view_functions[endpoint] = limiter.limit(auth_limit, methods=["POST"])(view)
    if not any(app.config.get(key) for key in APP_WIDE_LIMITS):
        # The limiter's before-request hook checks app-wide limits on every request (about
        # 0.2 ms of CPU each); with none configured it has nothing to check, and the
        # decorated views above check their own limits when called.
        hooks = app.before_request_funcs.get(None, [])
        hooks[:] = [hook for hook in hooks if hook != limiter._check_request_limit]

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error: RateLimitExceeded):
        error_response = current_app.extensions["error_response"]
        wait = retry_after_seconds(limiter)
        return error_response(429, "rate_limited",
                              f"Too many attempts from your address; try again in {wait} s.",
                              {"retry_after": wait, "limit": str(error.description)},
                              headers={"Retry-After": str(wait)})

    return limiter
