"""Celery bound to Flask: every task runs inside an app context and owns one
thread-scoped session for its run, always closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import beat_init, worker_init, worker_process_init, worker_ready
from flask import Flask
from sqlalchemy.orm import Session

import celeryconfig
from utils.broker import broker_settings as embedded_broker_settings
from utils.db_session_manager import SESSION_MANAGER


class DatabaseTask(Task):
    """Base task: app context pushed, one session per run (commit on success, rollback on
    error, always closed) reachable as ``self.session`` from the running thread only."""

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flask_app: Flask = self.app.flask_app
        from models import db

        with flask_app.app_context():
            owner = f"{self.name}[{self.request.id or 'eager'}]"
            with SESSION_MANAGER.managed_session(db.engine, scope="task", owner=owner) as s:
                SESSION_MANAGER.bind_thread_session(s)
                try:
                    return self.run(*args, **kwargs)
                finally:
                    SESSION_MANAGER.bind_thread_session(None)

    @property
    def session(self) -> Session:
        """The running task's session (thread-scoped)."""
        return SESSION_MANAGER.thread_session()


def broker_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Broker URL and transport options for the filesystem transport or Redis."""
    url = config["CELERY_BROKER_URL"]
    if url.startswith("filesystem"):
        return embedded_broker_settings(Path(config["BROKER_FOLDER"]))
    options = {"visibility_timeout": celeryconfig.REDIS_VISIBILITY_TIMEOUT,
               "socket_connect_timeout": 3, "socket_timeout": 10,
               "retry_on_timeout": True, "health_check_interval": 25}
    return {"broker_url": url, "broker_transport_options": options}


def _verify_database_on_start(app: Flask) -> None:
    """Workers and beat refuse to start on an unreachable or unmigrated database."""

    def verify(**_kwargs: Any) -> None:
        from utils.db_init import DatabaseNotReady, verify_app_database

        try:
            verify_app_database(app)
        except DatabaseNotReady as exc:
            raise SystemExit(f"Rivalscope cannot start: {exc}") from exc

    worker_init.connect(verify, weak=False)
    beat_init.connect(verify, weak=False)


def _prepare_crawl_tools_on_start(celery: Celery) -> None:
    """Every process that runs tasks builds its crawl tools and analysis children at start."""

    def prepare(**_kwargs: Any) -> None:
        from tasks.crawl_tools import prepare_worker_process

        prepare_worker_process(celery)

    def prepare_threads(sender: Any = None, **kwargs: Any) -> None:
        # prefork children and the solo pool send worker_process_init from where tasks run
        pool = type(getattr(sender, "pool", None)).__module__
        if pool not in ("celery.concurrency.prefork", "celery.concurrency.solo"):
            prepare(**kwargs)

    worker_process_init.connect(prepare, weak=False)
    worker_ready.connect(prepare_threads, weak=False)


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for this Flask app and store it in ``app.extensions``."""
    celery = Celery(app.import_name, task_cls=DatabaseTask)
    celery.config_from_object(celeryconfig)
    celery.conf.update(broker_settings(app.config))
    celery.conf.task_always_eager = app.config.get("CELERY_TASK_ALWAYS_EAGER", False)
    celery.conf.task_default_queue = app.config.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
    celery.flask_app = app
    celery.set_default()
    _verify_database_on_start(app)
    _prepare_crawl_tools_on_start(celery)
    app.extensions["celery"] = celery
    return celery
