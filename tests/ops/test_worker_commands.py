"""A real worker process: the broadcast reap reaches it and closes a session whose thread
died; its inspect command and ``inspect stats`` show its figures; its snapshots and this
process's make two live processes on the admin page."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from models import MaintenanceRun, ProcessSnapshot, SystemLog, db
from tasks.maintenance_tasks import CLEANUP
from tests.ops.helpers import RunningWorker, bearer, wait_for
from tests.tasks.test_worker_process import ROOT, worker_env
from utils.background_db import BackgroundDatabase
from utils.snapshots import SnapshotPublisher


@pytest.fixture(scope="module")
def worker(app, test_settings):
    """One worker for this module, publishing snapshots every second."""
    running = RunningWorker(app, test_settings, f"ops-{os.getpid()}",
                            env={"SNAPSHOT_INTERVAL_SECONDS": "1"})
    try:
        running.wait_ready()
        yield running
    finally:
        output = running.stop()
        with app.app_context():  # its last snapshot must not confuse later tests
            with db.engine.begin() as connection:
                connection.execute(sa.delete(ProcessSnapshot).where(
                    ProcessSnapshot.pid == running.process.pid))
        assert "Traceback" not in output, output


def test_broadcast_reap_closes_a_dead_threads_session_in_the_worker(app, committed, worker):
    leaked = worker.command("debug_leak_db_session")
    assert leaked == {"ok": "leaked", "pid": worker.process.pid, "thread": "debug-leak"}
    before = worker.command("db_session_stats")
    assert [s["owner"] for s in before["sessions"]] == ["debug-leak"]
    assert before["by_scope"]["thread"] == 1

    result = app.extensions["celery"].tasks[CLEANUP].apply(
        kwargs={"reply_timeout": 3.0}).get()

    reply = result["workers"][worker.node]
    assert reply["pid"] == worker.process.pid
    assert reply["role"] == "worker"
    assert reply["reaped"] == 1
    assert reply["reaped_sessions"][0]["owner"] == "debug-leak"
    after = worker.command("db_session_stats")
    assert after["open_sessions"] == 0
    assert after["checked_out"] == 0
    assert after["reaped_total"] == before["reaped_total"] + 1
    run = committed.scalar(sa.select(MaintenanceRun).where(MaintenanceRun.id == result["run_id"]))
    assert run.status == "ok"
    assert run.details["workers"][worker.node]["reaped"] == 1
    assert run.details["reaped_total"] >= 1
    # The worker's WARNING went to system_logs through its own log handler, which survived
    # Celery's logging set-up.
    stored = wait_for(lambda: committed.rollback() or committed.scalar(sa.select(SystemLog).where(
        SystemLog.pid == worker.process.pid, SystemLog.message.contains("thread that will exit"))),
        20, "the worker's warning in system_logs")
    assert (stored.role, stored.level) == ("worker", "WARNING")


def test_inspect_stats_carries_the_database_figures_for_flower(app, worker):
    replies = app.extensions["celery"].control.inspect(
        destination=[worker.node], timeout=3.0).stats() or {}
    figures = replies[worker.node]["rivalscope_db"]
    assert figures["role"] == "worker"
    assert figures["pid"] == worker.process.pid
    assert figures["pools"] and figures["pools"][0]["pool"] in ("QueuePool", "NullPool")


def test_admin_sees_two_live_processes(app, committed, test_settings, worker):
    headers = bearer(committed, admin=True)
    wait_for(lambda: committed.rollback() or committed.scalar(sa.select(ProcessSnapshot).where(
        ProcessSnapshot.pid == worker.process.pid)), 30, "the worker's snapshot")
    publisher = SnapshotPublisher()  # this process publishes its own snapshot
    publisher.configure(BackgroundDatabase(test_settings["DATABASE_URL"], app.config, "web"),
                        30.0)
    try:
        published = publisher.publish_once()
    finally:
        publisher.database.dispose()
    assert published["pid"] == os.getpid()

    client = app.test_client(use_cookies=False)
    response = client.get("/api/v1/admin/db", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    by_pid = {row["pid"]: row for row in body["processes"]}
    assert by_pid[worker.process.pid]["role"] == "worker"
    assert by_pid[worker.process.pid]["this_process"] is False
    assert by_pid[worker.process.pid]["updated_at"]
    assert isinstance(by_pid[worker.process.pid]["open_sessions"], int)
    assert by_pid[worker.process.pid]["pools"]
    assert by_pid[os.getpid()]["this_process"] is True
    assert by_pid[os.getpid()]["role"] == "web"
    assert body["totals"]["processes"] >= 2
    assert isinstance(body["queue"]["depth"], int), body["queue"]
    assert body["flower_url"] == app.config["FLOWER_URL"]

    page = client.get("/admin/db", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-pid="{worker.process.pid}"' in html
    assert f'data-pid="{os.getpid()}"' in html


def test_celery_inspect_cli_knows_the_stats_command(test_settings, worker):
    completed = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "app:celery_app", "inspect", "db_session_stats",
         "-d", worker.node, "--json", "-t", "5"],
        cwd=ROOT, env=worker_env(test_settings), capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    replies = json.loads(completed.stdout.strip().splitlines()[-1])
    assert replies[worker.node]["pid"] == worker.process.pid
    assert replies[worker.node]["role"] == "worker"
