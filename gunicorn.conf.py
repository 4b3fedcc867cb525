"""gunicorn settings for the web role; the database is checked before serving."""

import os

workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 20
accesslog = "-"


def when_ready(server):
    """Refuse to serve when the database is unreachable or not migrated to head."""
    from app import app
    from utils.db_init import DatabaseNotReady, verify_app_database

    try:
        verify_app_database(app)
    except DatabaseNotReady as exc:
        server.log.error("Rivalscope cannot start: %s", exc)
        raise SystemExit(3) from exc
