"""``flask maintenance run cleanup|optimize|retention``: run a maintenance task in this
process (the same code beat schedules on workers) and print what it did."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

import tasks.maintenance_tasks  # noqa: F401 - registers the tasks

TASKS = {
    "cleanup": "maintenance.cleanup_stale_db_sessions",
    "optimize": "maintenance.optimize_database",
    "retention": "maintenance.prune_retention",
}

maintenance_cli = AppGroup("maintenance", help="Run database maintenance now.")


@maintenance_cli.command("run")
@click.argument("which", type=click.Choice(sorted(TASKS)))
@click.option("--max-age", type=float, default=None,
              help="cleanup: report live sessions older than this (seconds).")
@click.option("--idle-seconds", type=float, default=None,
              help="cleanup: terminate backends idle in a transaction this long (seconds).")
def run_maintenance(which: str, max_age: float | None, idle_seconds: float | None) -> None:
    """Run WHICH (cleanup, optimize or retention) in-process and print the result."""
    celery = current_app.extensions["celery"]
    kwargs = {}
    if which == "cleanup":
        kwargs = {"max_age": max_age, "idle_seconds": idle_seconds}
    result = celery.tasks[TASKS[which]].apply(kwargs=kwargs)
    if result.failed():
        raise click.ClickException(f"{TASKS[which]} failed: {result.result!r}")
    outcome = result.get()
    click.echo(f"{TASKS[which]}: {outcome.get('status', 'ok')} "
               f"in {outcome.get('duration_ms', '?')} ms (run {outcome.get('run_id')})")
    click.echo(json.dumps(outcome, indent=2, sort_keys=True, default=str))
