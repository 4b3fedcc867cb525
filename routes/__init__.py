"""Blueprints: web (HTML pages), api (JSON /api/v1), admin, health."""

from routes.admin import bp as admin_bp
from routes.api import bp as api_bp
from routes.auth import bp as auth_bp
from routes.health import bp as health_bp
from routes.watchlists_api import bp as watchlists_api_bp
from routes.watchlists_web import bp as watchlists_web_bp
from routes.web import bp as web_bp

BLUEPRINTS = [health_bp, auth_bp, web_bp, api_bp, admin_bp, watchlists_api_bp, watchlists_web_bp]
