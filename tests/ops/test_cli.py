"""``flask maintenance run cleanup|optimize|retention`` runs the task here and says what it
did."""

from __future__ import annotations

import json

import sqlalchemy as sa

from models import MaintenanceRun


def invoke(runner, *args: str):
    result = runner.invoke(args=["maintenance", "run", *args])
    assert result.exit_code == 0, result.output
    header, _, payload = result.output.partition("\n")
    return header, json.loads(payload)


def test_each_maintenance_command_runs_and_is_recorded(runner, committed):
    header, retention = invoke(runner, "retention")
    assert header.startswith("maintenance.prune_retention: ok in ")
    assert {"system_logs", "batch_events", "run_id"} <= set(retention)

    header, optimize = invoke(runner, "optimize")
    assert header.startswith("maintenance.optimize_database: ok in ")
    assert optimize["tables"]

    header, cleanup = invoke(runner, "cleanup", "--max-age", "600", "--idle-seconds", "3600")
    assert header.startswith("maintenance.cleanup_stale_db_sessions: ")
    assert cleanup["max_age_s"] == 600 and cleanup["idle_in_tx_s"] == 3600
    assert cleanup["this_process"]["reaped"] == 0

    tasks = dict(committed.execute(sa.select(MaintenanceRun.id, MaintenanceRun.task)).all())
    assert tasks == {retention["run_id"]: "maintenance.prune_retention",
                     optimize["run_id"]: "maintenance.optimize_database",
                     cleanup["run_id"]: "maintenance.cleanup_stale_db_sessions"}


def test_unknown_maintenance_is_refused(runner):
    result = runner.invoke(args=["maintenance", "run", "everything"])
    assert result.exit_code != 0
    assert "cleanup" in result.output and "optimize" in result.output
