"""Celery remote control for the database layer, registered in every process that builds
the app (so ``celery inspect``/``control`` know the commands too):

- ``reap_db_sessions`` (control): the worker process reaps its own session registry and
  replies with what it closed (``maintenance.cleanup_stale_db_sessions`` broadcasts it);
- ``db_session_stats`` (inspect): the process's sessions, pools and error counters;
- a worker bootstep adds the same figures to ``inspect stats`` (Flower's worker page).
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.signals import worker_init
from celery.worker.control import control_command, inspect_command

from utils.db_session_manager import SESSION_MANAGER
from utils.snapshots import collect_stats

FLOWER_FIELDS = ("role", "pid", "open_sessions", "by_scope", "oldest_age_s", "checked_out",
                 "pools", "reaped_total", "leaked_total", "errors")


def reap_summary(result: dict[str, Any]) -> dict[str, Any]:
    """A ``reap_stale`` result as counts plus the sessions concerned."""
    return {"pid": result["pid"], "role": SESSION_MANAGER.role,
            "reaped": len(result["reaped"]), "stale": len(result["stale"]),
            "reaped_sessions": result["reaped"], "stale_sessions": result["stale"]}


@control_command(args=[("max_age", float)], signature="[max_age=300]")
def reap_db_sessions(state: Any, max_age: float = 300.0) -> dict:
    """Reap this worker process's database sessions left by dead threads."""
    return reap_summary(SESSION_MANAGER.reap_stale(float(max_age)))


@inspect_command()
def db_session_stats(state: Any) -> dict:
    """This worker process's database sessions, pools and error counters."""
    return collect_stats()


class DatabaseStatsStep(bootsteps.StartStopStep):
    """Adds the session figures to ``celery inspect stats`` (shown on Flower's worker page)."""

    name = "rivalscope-db-stats"

    def info(self, worker: Any) -> dict:
        stats = collect_stats()
        return {"rivalscope_db": {key: stats[key] for key in FLOWER_FIELDS}}



@worker_init.connect(weak=False, dispatch_uid="rivalscope-worker-control-init")
def _on_worker_init(sender: Any = None, **_kwargs: Any) -> None:
    app = sender.app
    if DatabaseStatsStep not in app.steps["worker"]:
        app.steps["worker"].add(DatabaseStatsStep)
