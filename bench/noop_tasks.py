"""No-op tasks for ``bench/task_overhead.py`` (benchmark code only, never imported by the app).

``ours_app``: Rivalscope's Celery app; its ``bench.noop`` task runs through the base task
(``tasks.celery_app.DatabaseTask``: Flask app context pushed, a session opened, registered,
closed). ``bare_app``: a separate Celery app with plain ``celery.Task`` on the same broker
and the same settings (``celeryconfig``, without the project's task modules).

Workers load them as ``-A bench.noop_tasks:ours_app`` / ``-A bench.noop_tasks:bare_app``;
each attribute is built on first access, so a bare worker never builds the Flask app.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

_built: dict[str, Celery] = {}


def build_ours() -> Celery:
    """Rivalscope's Celery app (from the environment) plus the no-op task."""
    from app import create_app

    flask_app = create_app(role=os.environ.get("RIVALSCOPE_ROLE", "worker"))
    celery = flask_app.extensions["celery"]

    @celery.task(name="bench.noop", bind=True)
    def noop(self) -> None:
        """Nothing, through DatabaseTask (app context + session opened and closed)."""
        self.session  # noqa: B018 - the task's session exists (raises if it does not)

    return celery


def build_bare() -> Celery:
    """A plain Celery app with the same broker and settings as Rivalscope's."""
    import celeryconfig
    from tasks.celery_app import broker_settings

    celery = Celery("bench_bare", set_as_current=False)
    celery.config_from_object(celeryconfig)
    celery.conf.update(broker_settings({"CELERY_BROKER_URL": os.environ["CELERY_BROKER_URL"]}))
    celery.conf.update(imports=(), beat_schedule={},
                       task_default_queue=os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery"))

    @celery.task(name="bench.bare_noop")
    def bare_noop() -> None:
        """Nothing, through a plain celery.Task."""

    return celery


def __getattr__(name: str) -> Any:
    builders = {"ours_app": build_ours, "bare_app": build_bare}
    if name not in builders:
        raise AttributeError(name)
    if name not in _built:
        _built[name] = builders[name]()
    return _built[name]
