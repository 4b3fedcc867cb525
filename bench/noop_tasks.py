"""No-op tasks for ``bench/task_overhead.py`` (benchmark code only, never imported by the app).

Both tasks do the database work every real task does: open a session, run one SELECT,
commit, close. So the ratio measures what the base task adds, not "database or not".

``ours_app``: Rivalscope's Celery app; its ``bench.noop`` task runs through the base task
(``tasks.celery_app.DatabaseTask``: Flask app context pushed, the task's session opened and
registered with the session manager, then ``SELECT 1`` and a commit on it, closed).
``bare_app``: a separate Celery app with plain ``celery.Task`` on the same broker and the
same settings (``celeryconfig``, without the project's task modules); its task opens a
plain SQLAlchemy ``Session`` on a plain engine (QueuePool, same database, same psycopg2
driver), runs ``SELECT 1``, commits and closes it.

Workers load them as ``-A bench.noop_tasks:ours_app`` / ``-A bench.noop_tasks:bare_app``;
each attribute is built on first access, so a bare worker never builds the Flask app.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import sessionmaker

SELECT_ONE = sa.text("SELECT 1")

_built: dict[str, Celery] = {}


def build_ours() -> Celery:
    """Rivalscope's Celery app (from the environment) plus the no-op task."""
    from app import create_app

    flask_app = create_app(role=os.environ.get("RIVALSCOPE_ROLE", "worker"))
    celery = flask_app.extensions["celery"]

    @celery.task(name="bench.noop", bind=True)
    def noop(self) -> None:
        """SELECT 1 and commit on the task's session, through DatabaseTask."""
        self.session.execute(SELECT_ONE)
        self.session.commit()

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

    engine = sa.create_engine(
        os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1),
        pool_size=int(os.environ.get("BENCH_POOL_SIZE", "8")))
    sessions = sessionmaker(bind=engine)

    @celery.task(name="bench.bare_noop")
    def bare_noop() -> None:
        """SELECT 1 and commit on a plain Session, through a plain celery.Task."""
        with sessions() as session:
            session.execute(SELECT_ONE)
            session.commit()

    return celery


def __getattr__(name: str) -> Any:
    builders = {"ours_app": build_ours, "bare_app": build_bare}
    if name not in builders:
        raise AttributeError(name)
    if name not in _built:
        _built[name] = builders[name]()
    return _built[name]
