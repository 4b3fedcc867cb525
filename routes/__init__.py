"""Blueprints: web (HTML pages), api (JSON /api/v1), admin, health."""

from routes.health import bp as health_bp

BLUEPRINTS = [health_bp]
