"""The application factory; ``app`` and ``celery_app`` are built lazily for gunicorn, flask
and celery (``app:app``, ``app:celery_app``) so importing this module does no work."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from config import INSTANCE_DIR, Config, config_from_env, insecure_settings_reason
from utils.database_access import engine_options, normalize_database_url
from utils.db_session_manager import SESSION_MANAGER


def create_app(config: type[Config] | None = None, role: str | None = None,
               **overrides: Any) -> Flask:
    """Build and wire a Flask app; no I/O beyond creating the instance folder."""
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(config or config_from_env())
    app.config.update(overrides)
    role = role or os.environ.get("RIVALSCOPE_ROLE", "web")
    app.config["ROLE"] = role
    refusal = insecure_settings_reason(app.config, role)
    if refusal:
        raise SystemExit(refusal)
    SESSION_MANAGER.role = role
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(app.config["DATABASE_URL"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config, role)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from flask_migrate import Migrate

    from models import db
    from routes.csrf import csrf
    from tasks.celery_app import celery_init_app
    from utils.auth import init_auth
    from utils.database_access import install_engine_events
    from utils.db_log_handler import install_db_log_handler
    from utils.request_scope import init_request_scope
    from utils.snapshots import install_snapshots

    db.init_app(app)
    with app.app_context():
        install_engine_events(db.engine, busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"],
                              ping_idle_seconds=app.config["DB_PING_IDLE_SECONDS"])
    init_auth(app)
    csrf.init_app(app)
    Migrate(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    init_request_scope(app, db)
    celery_init_app(app)
    install_db_log_handler(app)  # WARNING+ to system_logs, written by a background thread
    install_snapshots(app)  # per-process session figures for the admin pages


def register_blueprints(app: Flask) -> None:
    from routes import BLUEPRINTS

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from routes.errors import register_error_handlers

    register_error_handlers(app)


def register_security(app: Flask) -> None:
    """Headers on every response, per-IP throttling (after the blueprints), proxy hops."""
    from routes.web_security import install_security_headers
    from utils.log_throttle import install_error_log_throttle
    from utils.throttle import init_throttle

    install_security_headers(app)
    init_throttle(app)
    install_error_log_throttle(app)
    hops = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_commands(app: Flask) -> None:
    from tasks.demo import demo_command
    from tasks.maintenance_cli import maintenance_cli
    from utils.cli import register_cli

    register_cli(app)
    app.cli.add_command(maintenance_cli)
    app.cli.add_command(demo_command)


_built: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name == "app":
        if "app" not in _built:
            _built["app"] = create_app()
        return _built["app"]
    if name == "celery_app":
        return __getattr__("app").extensions["celery"]
    raise AttributeError(name)
